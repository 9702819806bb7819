"""Turning whatever a user or a browser hands us into a checked PIL image.

Every stage that takes a picture (sketch, hints, "start from a picture") goes through
`as_pil_image`, so bad input fails in one place with one kind of message.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

# 4096 x 4096 covers any canvas or photo people upload; more is a mistake or an attack.
MAX_PIXELS = 4096 * 4096
MAX_SIDE = 4096  # per side too: a 16,777,216 x 1 strip would be padded to a 10^14 px square
# PIL modes that carry an alpha band (a palette image may carry one in its info too).
ALPHA_MODES = ("RGBA", "RGBa", "LA", "La", "PA")
# Premultiplied grey+alpha and CIELAB: PIL converts them only to these.
_CONVERTIBLE = {"La": "LA", "LAB": "RGB"}


def as_pil_image(image, what: str = "image") -> Image.Image:
    """Return `image` as a PIL image, checking it is a real, sensibly sized picture.

    `image` may be a PIL image or a numpy array: (H, W) grey, (H, W, 3) RGB or
    (H, W, 4) RGBA, uint8 or float (floats in [0, 1] or [0, 255]). `what` names the
    input in error messages ("sketch", "hint layer"). Raises `ValueError` otherwise.
    """
    if isinstance(image, np.ndarray):
        image = _array_to_pil(image, what)
    if not isinstance(image, Image.Image):
        raise ValueError(
            f"The {what} is not an image (got {type(image).__name__}): "
            "upload a PNG or JPEG, or draw on the canvas."
        )
    check_size(*image.size, what)
    if image.mode in _CONVERTIBLE:  # modes PIL cannot convert to L/RGB(A) directly
        image = image.convert(_CONVERTIBLE[image.mode])
    return image


def check_size(width: int, height: int, what: str = "image") -> None:
    """Raise ValueError unless a width x height picture is non-empty and within the limits."""
    if width < 1 or height < 1:
        raise ValueError(f"The {what} is empty ({width}x{height} pixels): draw or upload a "
                         "picture.")
    if width * height > MAX_PIXELS or max(width, height) > MAX_SIDE:
        raise ValueError(
            f"The {what} is too large ({width}x{height} pixels): "
            f"use a picture of at most {MAX_SIDE}x{MAX_SIDE} pixels."
        )


def as_uint8_array(image: Image.Image | np.ndarray, mode: str, what: str = "image") -> np.ndarray:
    """A PIL image (converted to `mode`) or a matching uint8 array, as a numpy array.

    `mode` "L" gives (H, W); "RGB" / "RGBA" give (H, W, 3 / 4). For the metrics and the
    training-side image tools, which take both PIL images and arrays. Raises ValueError.
    """
    if isinstance(image, Image.Image):
        check_size(*image.size, what)
        return np.asarray(image.convert(mode))
    arr = np.asarray(image)
    shape = "(H, W)" if mode == "L" else f"(H, W, {len(mode)})"
    if arr.ndim != (2 if mode == "L" else 3) or (mode != "L" and arr.shape[2] != len(mode)):
        raise ValueError(f"The {what} must be a PIL image or a {shape} array, got shape "
                         f"{arr.shape}.")
    if arr.dtype != np.uint8:
        raise ValueError(f"The {what} must be uint8, got {arr.dtype}.")
    check_size(arr.shape[1], arr.shape[0], what)
    return arr


def has_alpha(image: Image.Image) -> bool:
    """Whether a PIL image carries transparency (an alpha band or a palette's)."""
    return image.mode in ALPHA_MODES or (image.mode == "P" and "transparency" in image.info)


def _array_to_pil(array: np.ndarray, what: str) -> Image.Image:
    if array.size == 0 or array.ndim not in (2, 3):
        raise ValueError(
            f"The {what} array has shape {array.shape}: expected (H, W), (H, W, 3) or (H, W, 4)."
        )
    if array.ndim == 3 and array.shape[2] not in (1, 3, 4):
        raise ValueError(
            f"The {what} has {array.shape[2]} channels: expected 1 (grey), 3 (RGB) or 4 (RGBA)."
        )
    if array.dtype == np.bool_:
        array = array.astype(np.uint8) * 255
    elif array.dtype.kind == "f":
        if not np.isfinite(array).all():
            raise ValueError(f"The {what} contains NaN or infinite values: send a real image.")
        # Floats arrive either as [0, 1] (numpy/torch habit) or as [0, 255].
        scale = 255.0 if array.max(initial=0.0) <= 1.0 else 1.0
        array = np.clip(array * scale, 0, 255).round().astype(np.uint8)
    elif array.dtype.kind in "iu":
        # 16-bit images keep their range in the high byte.
        if array.max(initial=0) > 255:
            array = np.clip(array // 257, 0, 255)
        array = np.clip(array, 0, 255).astype(np.uint8)
    else:
        raise ValueError(f"The {what} has an unsupported data type ({array.dtype}).")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    return Image.fromarray(np.ascontiguousarray(array))


def to_grey_array(image: Image.Image) -> np.ndarray:
    """Luminance of any PIL mode as a float32 (H, W) array in [0, 255].

    16-bit and float modes are rescaled, palette images resolved, and transparency
    composited onto whichever of black or white contrasts with the strokes, so a
    light drawing on a transparent canvas stays visible.
    """
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        grey = np.asarray(image, dtype=np.float32)
        return np.clip(grey / 257.0 if grey.max(initial=0) > 255 else grey, 0, 255)
    if mode == "F":
        grey = np.asarray(image, dtype=np.float32)
        if not np.isfinite(grey).all():
            raise ValueError("The image contains NaN or infinite values: send a real image.")
        return np.clip(grey * 255.0 if grey.max(initial=0) <= 1.0 else grey, 0, 255)
    if has_alpha(image):
        rgba = np.asarray(image.convert("RGBA"), dtype=np.float32)
        alpha = rgba[:, :, 3:4] / 255.0
        grey = _luminance(rgba[:, :, :3])
        drawn = alpha[:, :, 0]
        # Strokes are what is opaque; pick the paper colour that contrasts with them.
        ink_level = float((grey * drawn).sum() / max(drawn.sum(), 1e-6))
        paper = 0.0 if ink_level > 127.5 else 255.0
        return grey * drawn + paper * (1.0 - drawn)
    return _luminance(np.asarray(image.convert("RGB"), dtype=np.float32))


def _luminance(rgb: np.ndarray) -> np.ndarray:
    # ITU-R 601 luma, the same weights PIL uses for convert("L").
    return rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114
