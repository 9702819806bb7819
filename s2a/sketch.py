"""The sketch stage: the training detail filter and the normaliser for what users draw.

Training sketches and user sketches must look alike to the encoder: both end up as
thin dark lines on white at the model's resolution.
"""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image

from s2a.images import as_pil_image, to_grey_array

# Defaults tuned by eye on the 96x96 anime faces (see training/prepare_data's contact sheet):
# sigma 1.5 keeps eyes, mouth and the face outline but drops most hair texture and JPEG
# noise (sigma 1.0 kept too many hair strands to look like a user's drawing);
# Canny 60/140 on the blurred grey image; strokes under 12 px are specks, not lines.
BLUR_SIGMA = 1.5
CANNY_LOW = 60
CANNY_HIGH = 140
MIN_STROKE_PX = 12
REFERENCE_SIDE = 96  # MIN_STROKE_PX is for a 96 px image; larger images scale it.

EMPTY_SKETCH_MESSAGE = "The sketch is empty: draw some lines first."
# A pixel counts as ink at the model's resolution when at least half dark.
INK_THRESHOLD = 0.5
MIN_INK_PIXELS = 3


def extract_sketch(
    image,
    blur_sigma: float = BLUR_SIGMA,
    canny_low: int = CANNY_LOW,
    canny_high: int = CANNY_HIGH,
    min_stroke_px: int = MIN_STROKE_PX,
) -> Image.Image:
    """Turn a colour picture into a simple line sketch: dark 1 px lines on white, mode "L".

    Gaussian blur (`blur_sigma`, pixels) removes texture, Canny (`canny_low`,
    `canny_high` hysteresis thresholds on 0-255 grey) finds edges, and 8-connected
    strokes with fewer than `min_stroke_px` pixels (scaled with the image side relative
    to 96 px) are dropped, so the result is simple and incomplete like a user's drawing.
    The output has the input's size.
    """
    image = as_pil_image(image, "picture")
    grey = np.clip(to_grey_array(image), 0, 255).astype(np.uint8)  # (H, W)
    if blur_sigma > 0:
        grey = cv2.GaussianBlur(grey, (0, 0), sigmaX=blur_sigma)
    edges = cv2.Canny(grey, canny_low, canny_high)  # (H, W), 255 on edges
    scale = max(grey.shape) / REFERENCE_SIDE
    edges = drop_short_strokes(edges, max(1, round(min_stroke_px * scale)))
    return Image.fromarray(255 - edges, mode="L")


def drop_short_strokes(edges: np.ndarray, min_pixels: int) -> np.ndarray:
    """Zero the 8-connected components of `edges` (uint8, >0 = stroke) under `min_pixels`."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(
        (edges > 0).astype(np.uint8), connectivity=8
    )
    keep = stats[:, cv2.CC_STAT_AREA] >= min_pixels
    keep[0] = False  # label 0 is the background
    return np.where(keep[labels], 255, 0).astype(np.uint8)


def normalize_sketch(image, resolution: int) -> np.ndarray:
    """Turn what a user drew into the model's input: float32 (resolution, resolution).

    1.0 is paper and 0.0 is ink. Any size and PIL mode is accepted (or a numpy array);
    transparency is composited onto a contrasting paper, light-on-dark drawings are
    inverted, a non-square canvas is padded with paper to a square, and downscaling keeps
    thin strokes visible (a 3 px brush on a 512 px canvas still shows at 96 px).
    Raises ValueError when there is nothing drawn.
    """
    if not isinstance(resolution, int) or resolution < 8:
        raise ValueError(f"resolution must be an integer of at least 8, got {resolution!r}.")
    image = as_pil_image(image, "sketch")
    if image.mode == "L" and image.width == image.height:
        ink = _resize_ink(_grey_ink_uint8(image, resolution), resolution, dilated=True)
    else:
        ink = _resize_ink(_pad_to_square(ink_of(image)), resolution)
    if int((ink >= INK_THRESHOLD).sum()) < MIN_INK_PIXELS:
        raise ValueError(EMPTY_SKETCH_MESSAGE)
    return (1.0 - ink).astype(np.float32)


def ink_of(image: Image.Image) -> np.ndarray:
    """Ink amount (H, W) float32 in [0, 1] of a drawing; light-on-dark drawings are inverted."""
    grey = to_grey_array(image)  # (H, W) float32 in [0, 255]
    # Strokes are the minority of pixels, so the median is the paper colour.
    if np.median(grey) < 127.5:
        grey = 255.0 - grey
    return 1.0 - grey / 255.0


def _grey_table() -> np.ndarray:
    """(256,) float32 grey of each "L" level, computed exactly as `to_grey_array` does."""
    levels = np.arange(256, dtype=np.uint8)[:, None, None].repeat(3, axis=2)  # (256, 1, 3)
    return to_grey_array(Image.fromarray(levels, "RGB"))[:, 0]


_GREY_TABLE = _grey_table()
_INK_TABLES = {False: 1.0 - _GREY_TABLE / 255.0, True: 1.0 - (255.0 - _GREY_TABLE) / 255.0}


def _grey_ink_uint8(image: Image.Image, resolution: int) -> np.ndarray:
    """The canvas's common case (square "L") in uint8: the same ink, several times faster.

    Ink is a monotonic table of the grey level, so the median test, the stroke dilation
    (an erosion of the grey levels, or a dilation when the drawing is inverted) and the
    float conversion commute with the table: the result equals the float path's exactly.
    Returns the (S, S) float32 ink, already dilated when `_resize_ink` would dilate it.
    """
    grey = np.asarray(image)  # (S, S) uint8
    counts = np.cumsum(np.bincount(grey.ravel(), minlength=256))
    middle = grey.size // 2  # np.median: mean of the two middle values when size is even
    low = int(np.searchsorted(counts, middle - 1 if grey.size % 2 == 0 else middle, "right"))
    high = int(np.searchsorted(counts, middle, "right"))
    inverted = bool(np.mean(_GREY_TABLE[[low, high]]) < 127.5)
    kernel = int(np.ceil(grey.shape[0] / resolution))
    if grey.shape[0] > resolution and kernel >= 2:
        # Ink falls with the grey level (rises when inverted): grow ink = min/max of grey.
        grow = cv2.dilate if inverted else cv2.erode
        grey = grow(grey, np.ones((kernel, kernel), np.uint8))
    return _INK_TABLES[inverted][grey]


def _pad_to_square(ink: np.ndarray) -> np.ndarray:
    height, width = ink.shape
    side = max(height, width)
    if height == width:
        return ink
    padded = np.zeros((side, side), dtype=np.float32)
    top, left = (side - height) // 2, (side - width) // 2
    padded[top : top + height, left : left + width] = ink
    return padded


def _resize_ink(ink: np.ndarray, resolution: int, dilated: bool = False) -> np.ndarray:
    side = ink.shape[0]
    ink = ink.astype(np.float32)
    if side == resolution:
        return ink
    if side < resolution:
        return np.clip(
            cv2.resize(ink, (resolution, resolution), interpolation=cv2.INTER_LINEAR), 0, 1
        )
    # Grow every stroke by about one output pixel before area-averaging, so a stroke
    # thinner than an output pixel still fills one pixel instead of fading to grey.
    factor = side / resolution
    kernel = int(np.ceil(factor))
    if kernel >= 2 and not dilated:
        ink = cv2.dilate(ink, np.ones((kernel, kernel), np.uint8))
    return np.clip(cv2.resize(ink, (resolution, resolution), interpolation=cv2.INTER_AREA), 0, 1)


# XDoG defaults, tuned by eye on the 96 px faces so that its lines cover about as much of
# a face as the Canny sketches do (5-9 % of pixels), but drawn differently: lines 1-3 px
# wide on the dark side of each edge, where Canny draws 1 px on the edge itself.
XDOG_SIGMA = 0.8
XDOG_K = 1.6
XDOG_THRESHOLD = 0.02
XDOG_SHARPNESS = 60.0


def xdog_sketch(
    image,
    sigma: float = XDOG_SIGMA,
    k: float = XDOG_K,
    threshold: float = XDOG_THRESHOLD,
    sharpness: float = XDOG_SHARPNESS,
    min_stroke_px: int = MIN_STROKE_PX,
) -> Image.Image:
    """A second line extractor beside `extract_sketch`: difference of Gaussians (XDoG).

    Ink where the grey image (0-1) blurred by `sigma` is darker than it blurred by
    `k * sigma` by more than `threshold`, with a soft tanh edge of slope `sharpness`
    (Winnemoeller's XDoG with tau = 1: lines, no filled shadows). Strokes with fewer than
    `min_stroke_px` pixels (scaled with the side relative to 96 px) are dropped. Returns a
    PIL "L" image of the input's size, dark lines on white, binarised at 128.
    """
    image = as_pil_image(image, "picture")
    grey = to_grey_array(image) / 255.0  # (H, W) float32 in [0, 1]
    narrow = cv2.GaussianBlur(grey, (0, 0), sigmaX=sigma)
    wide = cv2.GaussianBlur(grey, (0, 0), sigmaX=sigma * k)
    difference = narrow - wide  # negative on the dark side of an edge
    ink = np.tanh(sharpness * np.maximum(0.0, -difference - threshold))  # (H, W) in [0, 1)
    strokes = np.where(ink >= 0.5, 255, 0).astype(np.uint8)
    scale = max(grey.shape) / REFERENCE_SIDE
    strokes = drop_short_strokes(strokes, max(1, round(min_stroke_px * scale)))
    return Image.fromarray(255 - strokes, mode="L")
