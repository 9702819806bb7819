"""Colour hints at inference: a painted RGBA layer -> the tensor the generator reads.

A hint layer is an RGBA image: alpha > 0 marks a hinted pixel and its RGB is the wanted
colour. The generator sees it as a ``(4, r, r)`` float array: RGB in [0, 1] (0 where
unhinted) and a binary mask channel. (Training simulates such layers from the training
images: `training.simulate_hints`.)
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
from PIL import Image

from s2a.images import MAX_SIDE, as_uint8_array, has_alpha
from s2a.sketch import RelativeBox, crop_to_frame

_MAX_RESOLUTION = 4096
# A hint layer padded like a very non-square sketch stays this small.
MAX_PADDED_SIDE = MAX_SIDE


def hints_to_array(hints: np.ndarray | Image.Image | None, resolution: int) -> np.ndarray:
    """Turn a hint layer of any size into the ``(4, resolution, resolution)`` float32 array.

    Channels 0-2 are the hint colour in [0, 1] (0 where unhinted), channel 3 the mask in
    {0, 1}. The layer is stretched to a square. Downsampling is mask-aware: an output
    pixel's colour is the average of the hinted source pixels it covers only (never
    blended with the unhinted background), and its mask is 1 if any covered source pixel
    is hinted, so thin strokes survive. Upsampling uses nearest neighbour.

    Args:
        hints: an HxWx4 uint8 array or a PIL image with an alpha band (alpha > 0 marks a
            hinted pixel), or None for "no hints".
        resolution: the output side in pixels.
    """
    resolution = _check_resolution(resolution)
    if hints is None:
        return np.zeros((4, resolution, resolution), dtype=np.float32)
    rgba = _as_rgba_array(hints)  # (H, W, 4) uint8
    h, w = rgba.shape[:2]

    # Work on contiguous 2-D planes: numpy broadcasting over an (H, W, 3) layout is several
    # times slower than plane-wise arithmetic at these sizes.
    planes = cv2.split(rgba)  # 4 x (H, W) uint8
    mask = (planes[3] > 0).astype(np.float32)  # (H, W)
    # p / 255 is exact for p = 255, so a pure colour stays exactly 1.0 after the division.
    chans = [(p / np.float32(255.0)) * mask for p in planes[:3]] + [mask]  # 4 x (H, W)

    # Per axis: area-average where the layer shrinks, keep size where it grows (nearest
    # below). Resizing the premultiplied colour and the mask with the same weights and
    # dividing gives the mean colour of the hinted pixels only.
    mid_w, mid_h = min(w, resolution), min(h, resolution)
    if (mid_w, mid_h) != (w, h):
        shrunk = cv2.resize(cv2.merge(chans), (mid_w, mid_h), interpolation=cv2.INTER_AREA)
        chans = cv2.split(shrunk.reshape(mid_h, mid_w, 4))  # 4 x (h', w')
        hinted = chans[3] > 0  # (h', w')
        inv = np.divide(1.0, chans[3], out=np.zeros_like(chans[3]), where=hinted)  # (h', w')
        chans = [np.minimum(c * inv, 1.0) for c in chans[:3]] + [hinted.astype(np.float32)]

    result = np.stack(chans)  # (4, h', w') float32
    if (mid_w, mid_h) != (resolution, resolution):
        # Nearest neighbour, as cv2.INTER_NEAREST maps it: source index floor(i * h' / r).
        rows = np.arange(resolution) * mid_h // resolution  # (r,)
        cols = np.arange(resolution) * mid_w // resolution  # (r,)
        result = result[:, rows[:, None], cols[None, :]]  # (4, r, r)
    return result


def hints_to_tensor(hints: np.ndarray | Image.Image | None, resolution: int) -> torch.Tensor:
    """Torch version of :func:`hints_to_array`: a float32 tensor ``(4, resolution, resolution)``.

    ``hints`` is a PIL image with an alpha band (typically "RGBA"), an HxWx4 uint8 array,
    or None (all zeros). A PIL image without alpha raises ValueError, since it cannot say
    which pixels are hinted.
    """
    return torch.from_numpy(hints_to_array(hints, resolution))


def _check_resolution(resolution: int) -> int:
    if (
        isinstance(resolution, bool)
        or not isinstance(resolution, int | np.integer)
        or not 1 <= resolution <= _MAX_RESOLUTION
    ):
        raise ValueError(
            f"resolution must be an integer between 1 and {_MAX_RESOLUTION}, got {resolution!r}."
        )
    return int(resolution)


def _as_rgba_array(hints: np.ndarray | Image.Image) -> np.ndarray:
    """Validate a hint layer and return it as an (H, W, 4) uint8 array."""
    if isinstance(hints, Image.Image) and not has_alpha(hints):
        raise ValueError(
            f"The hint image must have an alpha channel (mode 'RGBA') marking where hints "
            f"were painted; got mode {hints.mode!r}. Make unhinted pixels transparent."
        )
    if not isinstance(hints, (Image.Image, np.ndarray)):
        raise ValueError(f"Hints must be a PIL RGBA image, an HxWx4 uint8 array or None, got "
                         f"{type(hints).__name__}.")
    return np.ascontiguousarray(as_uint8_array(hints, "RGBA", "hint image"))


def pad_like_sketch(hints: np.ndarray, sketch_size: tuple[int, int]) -> np.ndarray:
    """Pad an (h, w, 4) hint layer as `normalize_sketch` pads the sketch to a square.

    The layer is stretched over the sketch's frame, so the padding is in proportion.
    """
    width, height = sketch_size
    if width == height:
        return hints
    h, w = hints.shape[:2]
    # A sketch far wider than tall (or the reverse) would pad a big layer into gigabytes:
    # first thin the layer (nearest rows and columns) so the padded square's side stays
    # near MAX_PADDED_SIDE; such a sliver covers a few model pixels anyway.
    long_side = h * width / height if width > height else w * height / width
    if long_side > MAX_PADDED_SIDE:
        rows, cols = min(h, MAX_PADDED_SIDE), min(w, MAX_PADDED_SIDE)
        if width > height:
            rows = max(1, min(h, int(MAX_PADDED_SIDE * height / width)))
        else:
            cols = max(1, min(w, int(MAX_PADDED_SIDE * width / height)))
        hints = hints[np.arange(rows) * h // rows][:, np.arange(cols) * w // cols]
        h, w = rows, cols
    # The cap keeps a thinned sliver's padded square within the image size limit (its
    # rounding could otherwise add a pixel or two past it).
    if width > height:
        pad = min(round((width - height) / 2 / height * h), (MAX_PADDED_SIDE - h) // 2)
        return np.pad(hints, ((pad, pad), (0, 0), (0, 0)))
    pad = min(round((height - width) / 2 / width * w), (MAX_PADDED_SIDE - w) // 2)
    return np.pad(hints, ((0, 0), (pad, pad), (0, 0)))


# Hints the frame leaves out are moved to the crop's nearest edge, in a band this many
# 96 px model pixels deep: hair painted above a face that the face-aware framing crops at
# the forehead is still hair at the crop's top edge, as in the training crops, and a
# background painted beside a head is still background at the crop's sides.
EDGE_BAND_96 = 2


def frame_like_sketch(hints: np.ndarray, box: RelativeBox | None) -> np.ndarray:
    """Crop an (h, w, 4) hint layer, padded like the sketch, as "frame" cropped the sketch.

    `box` is the sketch's relative frame box (`s2a.sketch.normalize_sketch_and_frame`), so a
    layer of any pixel size crops in proportion; transparent where the box leaves the
    canvas. Hints outside the box are moved onto the crop's nearest edge (EDGE_BAND_96)
    where nothing is painted there already. None (the sketch was not cropped) returns the
    layer unchanged.
    """
    if box is None:
        return hints
    crop = crop_to_frame(hints, box)
    height, width = hints.shape[:2]
    rows, cols = crop.shape[:2]
    y0, x0 = int(round(box[0] * height)), int(round(box[1] * width))
    outside = np.ascontiguousarray(hints[:, :, 3])  # (h, w) alpha, then its outside part
    sy, sx = min(max(y0, 0), height), min(max(x0, 0), width)
    outside[sy:max(sy, y0 + rows), sx:max(sx, x0 + cols)] = 0
    points = cv2.findNonZero(outside)  # x, y in row-major order, or None
    if points is None:
        return crop
    xs, ys = points.reshape(-1, 2).T.astype(np.intp)  # (n,) each
    # A pixel as one uint32: moving hints is then plain 1-D indexing.
    colours = np.ascontiguousarray(hints).view(np.uint32)[ys, xs, 0]  # (n,)
    # Inward steps: down from the top edge, up from the bottom, and so on.
    step_y = np.where(ys < y0, 1, np.where(ys >= y0 + rows, -1, 0))
    step_x = np.where(xs < x0, 1, np.where(xs >= x0 + cols, -1, 0))
    ys, xs = np.clip(ys - y0, 0, rows - 1), np.clip(xs - x0, 0, cols - 1)
    pixels = crop.view(np.uint32).reshape(-1)  # (rows * cols,), a view of the crop
    free = crop[:, :, 3].reshape(-1) == 0  # painted hints inside the frame win
    depth = max(1, int(round(EDGE_BAND_96 * rows / 96)))
    for k in range(depth):
        at = (np.clip(ys + k * step_y, 0, rows - 1) * cols
              + np.clip(xs + k * step_x, 0, cols - 1))  # (n,) flat index in the crop
        keep = free[at]
        pixels[at[keep]] = colours[keep]
    return crop
