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
    return np.where(keep, 255, 0).astype(np.uint8)[labels]  # a uint8 table: a quick gather


# Stroke normalisation: what a canvas drawing may go through after the resize so that it
# looks like a training sketch (1 px Canny-like edges, the face filling the crop).
# "frame": zoom and move the drawing so its ink extent (2nd to 98th percentile of the ink
# pixels' coordinates, the larger of the two axes) spans FRAME_EXTENT of the side around
# the centre, as in the training crops (measured on 5,000 prepared train sketches: median
# extent 89.2 px of 96, 5-95 % range 83-91, centred at (48.0, 47.5)); a small face drawn in
# the middle of a white pad is zoomed in at most MAX_ZOOM times, never zoomed out, and
# zooms under MIN_ZOOM_CHANGE are left alone (at 1.05, 9 % of clean val sketches were
# zoomed and their neighbours got worse; at 1.15, 3 %).
# "binarise": ink where at least INK_THRESHOLD dark; "thin": Zhang-Suen skeleton redrawn
# at `width` px; "specks": drop strokes under MIN_STROKE_PX (what the training filter
# drops); "spurs": drop skeleton branches under SPUR_PX from a junction to a free end.
# Measured with evaluation.evaluate_autoencoder --normalize (completing encoder v0.4, 300
# val sketches): "frame" finds better neighbours for amateur and small-on-a-pad drawings
# (framed +0.042 edge F1, amateur +0.021) at -0.004 on clean ones; "thin", "specks" and
# "spurs" made every drawing style worse (-0.004 to -0.065), "binarise" changed nothing.
# Shipped v0.3 encoder, same 300 val sketches, 5,000 bank items: "frame" takes pad-centred
# drawings' neighbours from 0.235 to 0.360 (cosine edge F1) and their completion from 0.328
# to 0.613, at -0.005 on clean ones (2 % of clean val sketches get zoomed, median 1.22x).
# Only "frame" is on by default: it moves the drawing, so the pipeline crops the hint layer
# with the same box (`normalize_sketch_and_frame`, `s2a.hints.frame_like_sketch`). Training
# and evaluation feed prepared tight sketches as tensors and never pass through here.
STROKE_STEPS = ("frame", "binarise", "thin", "specks", "spurs")
DEFAULT_STEPS: tuple[str, ...] = ("frame",)
FRAME_EXTENT = 89.2 / 96
FRAME_QUANTILES = (2.0, 98.0)
MAX_ZOOM = 4.0
FRAME_MEASURE_SIDE = 256  # the frame box is measured on the drawing max-pooled to this
MIN_ZOOM_CHANGE = 1.15
SPUR_PX = 4
STROKE_WIDTH = 1

# Where "frame" crops a drawing: (top, left, side) as fractions of its padded square's side.
RelativeBox = tuple[float, float, float]


def normalize_sketch(image, resolution: int, steps: tuple[str, ...] | None = None,
                     width: int = STROKE_WIDTH) -> np.ndarray:
    """Turn what a user drew into the model's input: float32 (resolution, resolution).

    1.0 is paper and 0.0 is ink. Any size and PIL mode is accepted (or a numpy array);
    transparency is composited onto a contrasting paper, light-on-dark drawings are
    inverted, a non-square canvas is padded with paper to a square, and downscaling keeps
    thin strokes visible (a 3 px brush on a 512 px canvas still shows at 96 px).
    `steps` (default DEFAULT_STEPS: "frame", a subset of STROKE_STEPS) brings the drawing to
    the training sketches' framing and line style (see STROKE_STEPS above); `width` is
    the pen width in px the skeleton is redrawn with. The output is deterministic.
    Raises ValueError when there is nothing drawn.
    """
    return normalize_sketch_and_frame(image, resolution, steps, width)[0]


def normalize_sketch_and_frame(image, resolution: int, steps: tuple[str, ...] | None = None,
                               width: int = STROKE_WIDTH, reframe=None
                               ) -> tuple[np.ndarray, RelativeBox | None]:
    """`normalize_sketch`, also returning the box the "frame" step cropped with.

    The box is `relative_frame_box` of the padded square at the canvas's own resolution,
    or None when nothing was cropped. Whatever is laid over the drawing (the hint layer:
    `s2a.hints.frame_like_sketch`) must be cropped with the same box to stay on it.
    `reframe(framed (R, R) array, box)`, with the "frame" step, may return another box on
    the same square (the face locator's, `Sketch2Anime.framed_sketch_tensor`), or None to
    keep the frame; the drawing is then cropped there from the ink already read.
    """
    if not isinstance(resolution, int) or resolution < 8:
        raise ValueError(f"resolution must be an integer of at least 8, got {resolution!r}.")
    steps = DEFAULT_STEPS if steps is None else tuple(steps)
    unknown = set(steps) - set(STROKE_STEPS)
    if unknown:
        raise ValueError(f"Unknown steps {sorted(unknown)}: choose from {', '.join(STROKE_STEPS)}.")
    if not isinstance(width, int) or not 1 <= width <= 8:
        raise ValueError(f"width must be an integer from 1 to 8, got {width!r}.")
    image = as_pil_image(image, "sketch")
    ink, box = None, None
    if "frame" in steps:
        square = _pad_to_square(ink_of(image))  # (S, S) at the canvas's own resolution
        box = relative_frame_box(square)
        if box is not None:
            ink = _resize_ink(crop_to_frame(square, box), resolution)
    if ink is None:  # not framed: exactly the plain resize
        ink = _resize_plain(image, resolution)
    if int((ink >= INK_THRESHOLD).sum()) < MIN_INK_PIXELS:
        raise ValueError(EMPTY_SKETCH_MESSAGE)
    if reframe is not None and "frame" in steps:
        moved = reframe((1.0 - ink).astype(np.float32), box)
        if moved is not None:
            ink, box = _resize_ink(crop_to_frame(square, moved), resolution), moved
            if int((ink >= INK_THRESHOLD).sum()) < MIN_INK_PIXELS:
                raise ValueError(EMPTY_SKETCH_MESSAGE)
    line_steps = [step for step in steps if step != "frame"]
    if line_steps:
        cleaned = clean_strokes(ink >= INK_THRESHOLD, line_steps, width, resolution)
        # Cleaning that leaves (almost) nothing, e.g. a drawing of only dots, is undone.
        if int(cleaned.sum()) >= MIN_INK_PIXELS:
            ink = cleaned.astype(np.float32)
    return (1.0 - ink).astype(np.float32), box


def _resize_plain(image: Image.Image, resolution: int) -> np.ndarray:
    """The drawing's ink padded to a square and resized, no framing: (R, R) float32."""
    if image.mode == "L" and image.width == image.height:
        return _resize_ink(_grey_ink_uint8(image, resolution), resolution, dilated=True)
    return _resize_ink(_pad_to_square(ink_of(image)), resolution)


def frame_box(ink: np.ndarray) -> tuple[int, int, int] | None:
    """Where to crop a square ink array (S, S) so the drawing sits as training faces do.

    The drawing's ink extent (FRAME_QUANTILES of its ink pixels' coordinates, specks
    ignored) is made to span FRAME_EXTENT of the crop's side, centred in it. Returns
    (top, left, side) of the square crop in the array's pixels (it may reach past the
    array's edges: paper there), or None when the drawing already fills the frame (zoom
    under MIN_ZOOM_CHANGE) or has too little ink to measure. Whatever is laid over the
    drawing (a hint layer) must be cropped with the same box to stay aligned with it.
    """
    side = ink.shape[0]
    mask = ink >= INK_THRESHOLD
    strokes = drop_short_strokes(mask.astype(np.uint8),
                                 max(1, round(MIN_STROKE_PX * side / REFERENCE_SIDE))) > 0
    if int(strokes.sum()) >= MIN_INK_PIXELS:
        mask = strokes
    if int(mask.sum()) < MIN_INK_PIXELS:
        return None
    # np.percentile of the ink pixels' rows and columns, from their histograms (faster).
    (y0, y1), (x0, x1) = (_percentiles(mask.sum(axis=1), FRAME_QUANTILES),
                          _percentiles(mask.sum(axis=0), FRAME_QUANTILES))
    extent = max(y1 - y0, x1 - x0, 1.0)
    zoom = min(MAX_ZOOM, FRAME_EXTENT * side / extent)
    if zoom < MIN_ZOOM_CHANGE:
        return None
    crop = max(1, int(round(side / zoom)))
    return int(round((y0 + y1) / 2 - crop / 2)), int(round((x0 + x1) / 2 - crop / 2)), crop


def _percentiles(counts: np.ndarray, qs) -> tuple[float, ...]:
    """np.percentile (linear) of the coordinates 0..L-1 whose histogram is `counts` (L,),
    without listing them: the order statistics are found on the cumulative counts."""
    cumulative = np.cumsum(counts)
    n = int(cumulative[-1])
    values = []
    for q in qs:
        position = q / 100.0 * (n - 1)
        below = int(np.floor(position))
        low = np.searchsorted(cumulative, below, side="right")
        high = np.searchsorted(cumulative, min(below + 1, n - 1), side="right")
        values.append(float(low + (high - low) * (position - below)))
    return tuple(values)


def relative_frame_box(ink: np.ndarray) -> RelativeBox | None:
    """`frame_box` of a square ink array (S, S) as fractions of S: (top, left, side).

    Relative, so the same box crops a layer of another pixel size stretched over the same
    square (the hint layer). None when the drawing is not to be cropped.
    """
    measured = _max_pool_to(ink, FRAME_MEASURE_SIDE)
    box = frame_box(measured)
    return None if box is None else tuple(value / measured.shape[0] for value in box)


def _max_pool_to(ink: np.ndarray, side: int) -> np.ndarray:
    """A square ink array shrunk by a whole factor to at most about `side` px, keeping
    every stroke (max over each block): the frame is measured there, 4x+ cheaper on a
    big pad, and a box in fractions of the side does not care about the pixel size."""
    factor = int(np.ceil(ink.shape[0] / side))
    if factor <= 1:
        return ink
    extra = -ink.shape[0] % factor
    padded = np.pad(ink, ((0, extra),) * 2) if extra else ink  # paper to a whole multiple
    pooled = padded[::factor, ::factor].copy()
    for dy in range(factor):  # strided maxima: much faster than a reshaped max(axis=...)
        for dx in range(factor):
            np.maximum(pooled, padded[dy::factor, dx::factor], out=pooled)
    return pooled


def crop_to_frame(array: np.ndarray, box: RelativeBox) -> np.ndarray:
    """Crop an (H, W, ...) array to a relative box: rows in fractions of H, columns of W.

    Where the box reaches past the array's edges the result is 0, which is paper for ink
    and transparent for an RGBA layer. Returns (round(side * H), round(side * W), ...).
    """
    top, left, side = box
    height, width = array.shape[:2]
    y0, x0 = int(round(top * height)), int(round(left * width))
    rows, cols = max(1, int(round(side * height))), max(1, int(round(side * width)))
    out = np.zeros((rows, cols, *array.shape[2:]), array.dtype)
    sy, sx = max(y0, 0), max(x0, 0)
    ey, ex = min(y0 + rows, height), min(x0 + cols, width)
    if ey > sy and ex > sx:
        out[sy - y0 : ey - y0, sx - x0 : ex - x0] = array[sy:ey, sx:ex]
    return out


def clean_strokes(mask: np.ndarray, steps, width: int = STROKE_WIDTH,
                  resolution: int = REFERENCE_SIDE) -> np.ndarray:
    """Binary (R, R) ink mask -> the same drawing in the training line style, bool (R, R).

    `steps` from ("binarise", "thin", "specks", "spurs"): the mask is already binarised;
    "thin" reduces strokes to a Zhang-Suen skeleton and redraws it `width` px wide;
    "specks" drops strokes under MIN_STROKE_PX (scaled with `resolution`); "spurs" drops
    skeleton branches under SPUR_PX that end free.
    """
    mask = np.asarray(mask, bool)
    scale = resolution / REFERENCE_SIDE
    if "thin" in steps:
        mask = thin(mask)
        if "spurs" in steps:
            mask = prune_spurs(mask, max(1, round(SPUR_PX * scale)))
    if "specks" in steps:
        mask = drop_short_strokes(mask.astype(np.uint8), max(1, round(MIN_STROKE_PX * scale))) > 0
    if "thin" in steps and width > 1:
        mask = cv2.dilate(mask.astype(np.uint8), np.ones((width, width), np.uint8)) > 0
    return mask


def _neighbour_codes(mask: np.ndarray) -> np.ndarray:
    """(H, W) uint8 code of each pixel's 8 neighbours: bit i is P(i+2) of Zhang-Suen.

    P2 is north, then clockwise: P3 north-east, P4 east, ..., P9 north-west.
    """
    padded = np.pad(mask.astype(np.uint8), 1)
    h, w = mask.shape
    offsets = ((0, 1), (0, 2), (1, 2), (2, 2), (2, 1), (2, 0), (1, 0), (0, 0))  # P2..P9
    code = np.zeros((h, w), np.uint8)
    for bit, (dy, dx) in enumerate(offsets):
        code |= padded[dy : dy + h, dx : dx + w] << bit
    return code


def _zhang_suen_tables() -> tuple[np.ndarray, np.ndarray]:
    """(256,) bool: may a pixel with this neighbour code be deleted, in each sub-iteration."""
    codes = np.arange(256)
    p = [(codes >> bit) & 1 for bit in range(8)]  # p[0] = P2 ... p[7] = P9
    count = sum(p)
    transitions = sum((p[i] == 0) & (p[(i + 1) % 8] == 1) for i in range(8))
    base = (count >= 2) & (count <= 6) & (transitions == 1)
    first = base & (p[0] * p[2] * p[4] == 0) & (p[2] * p[4] * p[6] == 0)
    second = base & (p[0] * p[2] * p[6] == 0) & (p[0] * p[4] * p[6] == 0)
    return first, second


_ZS_TABLES = _zhang_suen_tables()


def thin(mask: np.ndarray) -> np.ndarray:
    """Zhang-Suen thinning of a bool (H, W) mask to a skeleton about 1 px wide."""
    mask = np.asarray(mask, bool).copy()
    while True:
        changed = False
        for table in _ZS_TABLES:
            delete = mask & table[_neighbour_codes(mask)]
            if delete.any():
                mask &= ~delete
                changed = True
        if not changed:
            return mask


def prune_spurs(skeleton: np.ndarray, max_length: int) -> np.ndarray:
    """Drop branches of a bool (H, W) skeleton shorter than `max_length` px that run from a
    junction (3+ neighbours) to a free end (1 neighbour); strokes without junctions stay."""
    skeleton = np.asarray(skeleton, bool)
    neighbours = cv2.filter2D(skeleton.astype(np.uint8), -1, np.ones((3, 3), np.float32),
                              borderType=cv2.BORDER_CONSTANT) - skeleton
    junctions = skeleton & (neighbours >= 3)
    ends = skeleton & (neighbours == 1)
    if not junctions.any() or not ends.any():
        return skeleton
    count, labels = cv2.connectedComponents((skeleton & ~junctions).astype(np.uint8),
                                            connectivity=8)
    near_junction = cv2.dilate(junctions.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    length = np.bincount(labels.ravel(), minlength=count)
    has_end = np.bincount(labels[ends], minlength=count) > 0
    touches = np.bincount(labels[near_junction & skeleton & ~junctions], minlength=count) > 0
    spur = has_end & touches & (length < max_length)
    spur[0] = False
    return skeleton & ~spur[labels]


def ink_of(image: Image.Image) -> np.ndarray:
    """Ink amount (H, W) float32 in [0, 1] of a drawing; light-on-dark drawings are inverted."""
    if image.mode == "L":  # the common canvas: a table lookup, the float path's values
        levels = np.ascontiguousarray(np.asarray(image))  # (H, W) uint8
        return cv2.LUT(levels, _INK_TABLES[_dark_paper(levels)].reshape(1, 256))
    grey = to_grey_array(image)  # (H, W) float32 in [0, 255]
    if _median_is_dark(grey):
        grey = 255.0 - grey
    return 1.0 - grey / 255.0


def _median_is_dark(grey: np.ndarray) -> bool:
    """np.median(grey) < 127.5: the paper is dark (strokes are the minority of pixels, so
    the median is the paper colour). Decided by counting; the full median only when about
    half the pixels are dark (the count cannot tell)."""
    count = int(np.count_nonzero(grey < 127.5))
    if abs(2 * count - grey.size) > 2:
        return 2 * count > grey.size
    return bool(np.median(grey) < 127.5)


def _grey_table() -> np.ndarray:
    """(256,) float32 grey of each "L" level, computed exactly as `to_grey_array` does."""
    levels = np.arange(256, dtype=np.uint8)[:, None, None].repeat(3, axis=2)  # (256, 1, 3)
    return to_grey_array(Image.fromarray(levels, "RGB"))[:, 0]


_GREY_TABLE = _grey_table()
_INK_TABLES = {False: 1.0 - _GREY_TABLE / 255.0, True: 1.0 - (255.0 - _GREY_TABLE) / 255.0}


def _dark_paper(levels: np.ndarray) -> bool:
    """`_median_is_dark` of an "L" image's grey, exactly, from the histogram of its uint8
    levels (np.median: the mean of the two middle values when the size is even)."""
    counts = np.cumsum(np.bincount(levels.ravel(), minlength=256))
    middle = levels.size // 2
    low = int(np.searchsorted(counts, middle - 1 if levels.size % 2 == 0 else middle, "right"))
    high = int(np.searchsorted(counts, middle, "right"))
    return bool(np.mean(_GREY_TABLE[[low, high]]) < 127.5)


def _grey_ink_uint8(image: Image.Image, resolution: int) -> np.ndarray:
    """The canvas's common case (square "L") in uint8: the same ink, several times faster.

    Ink is a monotonic table of the grey level, so the median test, the stroke dilation
    (an erosion of the grey levels, or a dilation when the drawing is inverted) and the
    float conversion commute with the table: the result equals the float path's exactly.
    Returns the (S, S) float32 ink, already dilated when `_resize_ink` would dilate it.
    """
    grey = np.asarray(image)  # (S, S) uint8
    inverted = _dark_paper(grey)
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
