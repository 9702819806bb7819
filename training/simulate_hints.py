"""Simulated colour hints for training: the strokes a user might paint on a face.

Training (and the evaluation's hinted rows) needs hint layers whose "right" colours are
known: they are painted from the colour image itself. Inference turns painted layers into
tensors with `s2a.hints`.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
from PIL import Image

from s2a.images import as_uint8_array

# Start points per stroke: the lowest-variance of this many uniform candidates wins
# (a cheap tournament instead of sampling from a full probability map).
_START_CANDIDATES = 6
# Candidate directions per polyline segment; the one ending on the flattest colour wins.
_DIR_CANDIDATES = 3
_MAX_SEGMENTS = 3
# Random stroke count ~ Gamma(shape, scale): mean 6, mode ~4.
_COUNT_SHAPE = 2.5
_COUNT_SCALE = 2.4
# Side (in px) at which the local colour statistics are computed.
_STATS_SIDE = 48
# How far (squared RGB distance plus variance, 0-255 scale) a stroke may drift from its
# start's colour before it stops: about 35 levels per channel.
_REGION_TOLERANCE = 3 * 35.0**2


def simulate_hints(
    image: Image.Image | np.ndarray,
    rng: np.random.Generator,
    n_strokes: int | None = None,
    p_none: float = 0.1,
    p_background: float = 0.3,
    max_strokes: int = 20,
    width_range: tuple[float, float] = (0.03, 0.08),
    segment_length_range: tuple[float, float] = (0.08, 0.2),
) -> Image.Image:
    """Simulate the colour strokes a user might paint on ``image`` (training-time hints).

    Each stroke is a short round-brush polyline of one flat colour: the median colour of
    the image under it (snapped to a colour that actually occurs there). Start points and
    directions prefer regions of uniform colour so the median is meaningful.

    Args:
        image: the colour image, a PIL image (converted to RGB) or an HxWx3 uint8 array.
        rng: the random generator; the same seed gives the same hints.
        n_strokes: exact number of strokes (background strokes included), or None for a
            random count: zero with probability ``p_none``, otherwise 1..``max_strokes``
            from a gamma distribution (several strokes typical, many occasionally), plus with
            probability ``p_background`` one or two background strokes.
        p_none: probability of an empty hint layer when ``n_strokes`` is None.
        p_background: probability that one or two strokes run along the image border.
        max_strokes: largest random stroke count.
        width_range: brush width as a fraction of the shorter image side.
        segment_length_range: polyline segment length as a fraction of the shorter side.

    Returns:
        A PIL "RGBA" image of the same size: alpha 255 where hinted, RGB 0 and alpha 0
        elsewhere.
    """
    img = np.ascontiguousarray(as_uint8_array(image, "RGB", "image"))  # (H, W, 3) uint8
    if not isinstance(rng, np.random.Generator):
        raise ValueError("rng must be a numpy.random.Generator, e.g. np.random.default_rng(0).")
    if n_strokes is not None and (
        isinstance(n_strokes, bool) or not isinstance(n_strokes, int | np.integer) or n_strokes < 0
    ):
        raise ValueError(f"n_strokes must be None or a non-negative integer, got {n_strokes!r}.")
    for name, p in (("p_none", p_none), ("p_background", p_background)):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"{name} must be a probability in [0, 1], got {p!r}.")
    if max_strokes < 1:
        raise ValueError(f"max_strokes must be at least 1, got {max_strokes!r}.")
    if not 0.0 < width_range[0] <= width_range[1]:
        raise ValueError(
            f"width_range must be (low, high) with 0 < low <= high, got {width_range}."
        )
    if not 0.0 < segment_length_range[0] <= segment_length_range[1]:
        raise ValueError(
            f"segment_length_range must be (low, high) with 0 < low <= high, "
            f"got {segment_length_range}."
        )

    h, w = img.shape[:2]
    out = np.zeros((h, w, 4), dtype=np.uint8)  # (H, W, 4)

    if n_strokes is None:
        if rng.random() < p_none:
            return Image.fromarray(out)
        # Gamma-distributed count: mode ~4, mean ~6, 1 and max_strokes now and then.
        n_regular = int(round(rng.gamma(_COUNT_SHAPE, _COUNT_SCALE)))
        n_regular = min(max(n_regular, 1), max_strokes)
        n_background = int(rng.integers(1, 3)) if rng.random() < p_background else 0
    else:
        n_strokes = int(n_strokes)
        if n_strokes == 0:
            return Image.fromarray(out)
        n_background = int(rng.integers(1, 3)) if rng.random() < p_background else 0
        n_background = min(n_background, n_strokes)
        n_regular = n_strokes - n_background

    side = min(h, w)
    widths = np.maximum(1, np.rint(rng.uniform(*width_range, n_regular + n_background) * side))

    paths = [
        _background_path(rng, h, w, int(widths[n_regular + i]), segment_length_range)
        for i in range(n_background)
    ]
    # Background strokes first, so the face strokes painted later stay visible on top.
    if n_regular:
        mean, variance = _local_stats(img, max(3, round(width_range[1] * side)))
        paths += _stroke_paths(rng, mean, variance, n_regular, side, segment_length_range)
    stroke_widths = list(widths[n_regular:]) + list(widths[:n_regular])
    for path, width in zip(paths, stroke_widths):
        _paint_stroke(img, out, path, int(width))
    return Image.fromarray(out)


def _local_stats(img: np.ndarray, ksize: int) -> tuple[np.ndarray, np.ndarray]:
    """Local mean colour and colour variance in a ~ksize x ksize box around each pixel.

    Computed at about 48 px and scaled back with nearest neighbour: the maps only rank
    candidate points, and full-size box filters would cost most of the time budget.
    Returns ``mean`` (H, W, 3) and ``variance`` (H, W, summed over channels), float32.
    """
    h, w = img.shape[:2]
    f = max(1, min(h, w) // _STATS_SIDE)
    x = img.astype(np.float32)  # (H, W, 3)
    if f > 1:
        x = cv2.resize(x, (max(1, w // f), max(1, h // f)), interpolation=cv2.INTER_AREA)
    k = max(2, round(ksize / f))
    mean = cv2.blur(x, (k, k))  # (h', w', 3)
    var = cv2.blur(x * x, (k, k)) - mean * mean  # (h', w', 3)
    # Explicit channel sum: ndarray.sum(axis=2) over 3 channels is ~50x slower here.
    var = var[..., 0] + var[..., 1] + var[..., 2]  # (h', w')
    if f > 1:
        mean = cv2.resize(mean, (w, h), interpolation=cv2.INTER_NEAREST)  # (H, W, 3)
        var = cv2.resize(var, (w, h), interpolation=cv2.INTER_NEAREST)  # (H, W)
    return mean, var


def _stroke_paths(
    rng: np.random.Generator,
    mean: np.ndarray,
    variance: np.ndarray,
    n: int,
    side: int,
    segment_length_range: tuple[float, float],
) -> list[np.ndarray]:
    """``n`` short polylines that start on flat colour and stay inside that colour region.

    Each stroke starts at the flattest of a few random points; each segment heads to the
    best of a few directions, scored by local variance plus colour distance to the start,
    and the stroke stops early when even the best leaves the region (a user paints within
    the hair or the eye, not across them). Vectorised over strokes: per-stroke numpy
    overhead would dominate at 96 px.
    """
    h, w = variance.shape
    ys = rng.integers(0, h, (n, _START_CANDIDATES))
    xs = rng.integers(0, w, (n, _START_CANDIDATES))
    best = np.argmin(variance[ys, xs], axis=1)  # (n,)
    rows = np.arange(n)
    x = xs[rows, best].astype(np.float64)  # (n,)
    y = ys[rows, best].astype(np.float64)  # (n,)
    start_colour = mean[ys[rows, best], xs[rows, best]]  # (n, 3)
    # Allow the region's own texture (shading, JPEG noise) on top of the start's.
    budget = 2.0 * variance[ys[rows, best], xs[rows, best]] + _REGION_TOLERANCE  # (n,)

    n_segments = rng.integers(1, _MAX_SEGMENTS + 1, n)  # (n,)
    lengths = rng.uniform(*segment_length_range, (n, _MAX_SEGMENTS)) * side  # (n, S)
    # The first segment may go anywhere; later ones turn by at most ~70 degrees from the
    # previous one, so the path is a smooth scribble rather than a zigzag.
    turns = rng.uniform(-1.2, 1.2, (n, _MAX_SEGMENTS, _DIR_CANDIDATES))  # (n, S, D)
    turns[:, 0] = rng.uniform(0.0, 2.0 * math.pi, (n, _DIR_CANDIDATES))
    heading = np.zeros(n)
    used = np.zeros(n, dtype=np.intp)  # segments kept per stroke
    alive = np.ones(n, dtype=bool)
    points = [np.stack([x, y], axis=1)]  # each (n, 2)
    # Each direction is tried at full and at half length; a full-length segment inside the
    # region wins, a half-length one is the fallback (small regions such as an eye).
    shrink = np.repeat([1.0, 0.5], _DIR_CANDIDATES)  # (2D,)
    fallback = np.repeat([0.0, 1e7], _DIR_CANDIDATES)  # (2D,) above any real cost
    for i in range(_MAX_SEGMENTS):
        if not alive.any():
            break
        angles = np.tile(heading[:, None] + turns[:, i], 2)  # (n, 2D)
        reach = lengths[:, i, None] * shrink  # (n, 2D)
        ex = (x[:, None] + reach * np.cos(angles)).clip(0, w - 1)  # (n, 2D)
        ey = (y[:, None] + reach * np.sin(angles)).clip(0, h - 1)  # (n, 2D)
        iy, ix = ey.astype(np.intp), ex.astype(np.intp)
        drift = mean[iy, ix] - start_colour[:, None]  # (n, 2D, 3)
        cost = variance[iy, ix] + np.einsum("ndc,ndc->nd", drift, drift)  # (n, 2D)
        cost = np.where(cost <= budget[:, None], cost + fallback, np.inf)
        k = np.argmin(cost, axis=1)  # (n,)
        alive &= (i < n_segments) & np.isfinite(cost[rows, k])
        used += alive
        x = np.where(alive, ex[rows, k], x)
        y = np.where(alive, ey[rows, k], y)
        heading = angles[rows, k]
        points.append(np.stack([x, y], axis=1))
    paths = np.rint(np.stack(points, axis=1)).astype(np.int32)  # (n, S + 1, 2) as (x, y)
    return [paths[j, : used[j] + 1] for j in range(n)]


def _background_path(
    rng: np.random.Generator,
    h: int,
    w: int,
    width: int,
    segment_length_range: tuple[float, float],
) -> np.ndarray:
    """A stroke running along one image edge, inset by about half a brush width."""
    side = min(h, w)
    inset = width / 2 + rng.uniform(0.0, 0.04) * side
    length = rng.uniform(2 * segment_length_range[0], 4 * segment_length_range[1]) * side
    edge = int(rng.integers(0, 4))  # 0 top, 1 bottom, 2 left, 3 right
    along = w if edge < 2 else h
    start = rng.uniform(0.0, max(along - length, 0.0))
    t = np.array([start, min(start + length / 2, along - 1), min(start + length, along - 1)])
    wobble = rng.uniform(-0.02, 0.02, 3) * side  # a hand does not draw straight lines
    offset = inset + np.abs(wobble)
    if edge == 0:
        xs, ys = t, offset
    elif edge == 1:
        xs, ys = t, h - 1 - offset
    elif edge == 2:
        xs, ys = offset, t
    else:
        xs, ys = w - 1 - offset, t
    xs = np.clip(xs, 0, w - 1)
    ys = np.clip(ys, 0, h - 1)
    return np.rint(np.stack([xs, ys], axis=1)).astype(np.int32)  # (3, 2) as (x, y)


def _paint_stroke(img: np.ndarray, out: np.ndarray, path: np.ndarray, width: int) -> None:
    """Draw one round-brush polyline into ``out`` in the median image colour under it."""
    h, w = img.shape[:2]
    r = width // 2 + 1
    # Work on the stroke's bounding box only: most strokes cover a small part of the image.
    x0 = max(int(path[:, 0].min()) - r, 0)
    y0 = max(int(path[:, 1].min()) - r, 0)
    x1 = min(int(path[:, 0].max()) + r + 1, w)
    y1 = min(int(path[:, 1].max()) + r + 1, h)
    local = path - np.array([x0, y0], dtype=np.int32)  # (P, 2)
    mask = np.zeros((y1 - y0, x1 - x0), dtype=np.uint8)  # (h', w')
    cv2.polylines(mask, [local], isClosed=False, color=1, thickness=width, lineType=cv2.LINE_8)
    for px, py in (local[0], local[-1]):
        cv2.circle(mask, (int(px), int(py)), width // 2, color=1, thickness=-1)
    hit = mask.view(bool)  # (h', w'), values are 0/1

    pixels = img[y0:y1, x0:x1][hit]  # (N, 3) uint8, N >= 1 (the start cap is inside)
    # Per-channel median, then snapped to the nearest colour that occurs under the stroke:
    # a colour the image really has there, never a mix of two regions' channels.
    k = len(pixels) // 2
    median = np.partition(pixels, k, axis=0)[k].astype(np.int32)  # (3,)
    diff = pixels.astype(np.int32) - median  # (N, 3)
    dist = np.einsum("ij,ij->i", diff, diff)  # (N,) squared distances
    colour = pixels[int(np.argmin(dist))]  # (3,)

    region = out[y0:y1, x0:x1]  # view into out, (h', w', 4)
    region[hit] = (*colour.tolist(), 255)
