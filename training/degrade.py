"""Simulated amateur redrawings of training sketches, for the evaluation.

The method claims that projecting a sketch onto the manifold of professional training
sketches helps with bad drawings. To measure that we need bad drawings whose "clean"
version is known: `degrade_sketch` takes a training sketch (dark 1-px lines on white)
and redraws it the way someone who cannot draw might: strokes missing, lines wobbly and
of uneven weight, the whole face a little off-centre and off-scale.
"""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image

# Pixels darker than this are strokes (the same split as a binary sketch at 128).
_DARK = 128
# Along-stroke smoothing of the wobble noise, in px of arc length: a hand drifts
# over several pixels, it does not jitter pixel by pixel.
_WOBBLE_SIGMA = 8.0
# Return-pass fragments shorter than this (in contour points) are staircase artefacts
# of the contour trace, not real branches of the stroke.
_MIN_FRAGMENT = 3


def _as_array(sketch: Image.Image | np.ndarray) -> np.ndarray:
    """Return the sketch as a 2-D uint8 array, or raise ValueError."""
    if isinstance(sketch, Image.Image):
        return np.asarray(sketch.convert("L"), dtype=np.uint8)
    arr = np.asarray(sketch)
    if arr.ndim != 2 or arr.dtype != np.uint8:
        raise ValueError(
            f"The sketch must be a PIL image or a 2-D uint8 array, got an array of "
            f"shape {arr.shape} and dtype {arr.dtype}."
        )
    return arr


def _stroke_contours(mask: np.ndarray) -> list[np.ndarray]:
    """Outer contour of every 8-connected stroke in `mask`, each (n, 2) float x, y."""
    # RETR_CCOMP, not RETR_EXTERNAL: eyes inside the face outline are strokes too,
    # and EXTERNAL would hide everything inside a closed outline.
    contours, hierarchy = cv2.findContours(
        mask.astype(np.uint8), cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE
    )
    if hierarchy is None:
        return []
    # Top level of the two-level CCOMP hierarchy = outer boundaries (one per stroke).
    return [
        c.reshape(-1, 2).astype(np.float64) for c, h in zip(contours, hierarchy[0]) if h[3] == -1
    ]


def _contour_to_paths(contour: np.ndarray, width: int) -> list[np.ndarray]:
    """Split a stroke's outer contour into polylines that trace each pixel once.

    The contour of a 1-px line walks out along the line and back again; redrawn as is,
    the wobble would split it into two lines. Keeping only the points seen for the first
    time leaves one pass over the line (and one polyline per branch of a forked stroke).
    """
    n = len(contour)
    if n <= 2:
        return [contour]
    pix = contour[:, 1].astype(np.int64) * width + contour[:, 0].astype(np.int64)
    _, first, inverse = np.unique(pix, return_index=True, return_inverse=True)
    is_new = first[inverse.ravel()] == np.arange(n)
    if is_new.all():
        # A closed loop (e.g. a ring-shaped face outline): close the polyline.
        return [np.vstack([contour, contour[:1]])]
    # Runs of consecutive first-visit points: [start, stop) index pairs.
    edges = np.diff(np.concatenate([[0], is_new.astype(np.int8), [0]]))
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    paths = []
    for a, b in zip(starts, stops):
        if b - a < _MIN_FRAGMENT and len(starts) > 1:
            continue
        # Start from the previous (already drawn) point so a branch stays attached.
        paths.append(contour[max(a - 1, 0) : b])
    return paths or [contour[is_new]]


def _wobbly_paths(
    paths: list[np.ndarray], amplitude: float, rng: np.random.Generator
) -> list[np.ndarray]:
    """Resample every path to 1-px steps and add smooth noise along it.

    All paths are handled in one vectorised pass (one interpolation, one convolution):
    a face sketch has dozens of short paths and per-path numpy calls dominate the time.
    Each returned path has at least two points so that cv2.polylines draws it.
    """
    counts = np.array([len(q) for q in paths])
    pts = np.concatenate(paths)  # (P, 2)
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])  # index of each path's start

    # Arc length along each path; steps across path boundaries are zeroed.
    step = np.hypot(*np.diff(pts, axis=0, prepend=pts[:1]).T)
    step[first] = 0.0
    cum = np.cumsum(step)
    arc = cum - np.repeat(cum[first], counts)  # restarts at 0 on every path
    length = arc[np.cumsum(counts) - 1]
    # Paths laid end to end with a 1-px gap give one increasing axis for np.interp.
    offset = np.concatenate([[0.0], np.cumsum(length + 1.0)[:-1]])
    axis = arc + np.repeat(offset, counts)

    # Resample at ~1 px (a single-pixel stroke keeps two coincident points).
    n_out = np.maximum(np.ceil(length).astype(np.int64) + 1, 2)
    out_first = np.concatenate([[0], np.cumsum(n_out)[:-1]])
    k = np.arange(n_out.sum()) - np.repeat(out_first, n_out)
    query = np.repeat(offset, n_out) + k * np.repeat(length / (n_out - 1), n_out)
    res = np.stack([np.interp(query, axis, pts[:, 0]), np.interp(query, axis, pts[:, 1])], 1)

    # Gaussian-smoothed white noise; each path gets its own block of raw noise padded
    # by the kernel radius, so neighbouring paths drift independently.
    radius = int(3 * _WOBBLE_SIGMA)
    t = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = np.exp(-0.5 * (t / _WOBBLE_SIGMA) ** 2)
    # Unit L2 norm keeps the filtered noise at unit variance, whatever the path length.
    kernel /= np.sqrt((kernel**2).sum())
    white = rng.standard_normal((int(n_out.sum()) + 2 * radius * len(paths), 2))
    smooth = np.stack([np.convolve(white[:, c], kernel, mode="valid") for c in range(2)], 1)
    # Valid output j averages white[j : j + 2 * radius + 1]; path i's block starts at
    # out_first[i] + 2 * radius * i.
    take = np.arange(n_out.sum()) + 2 * radius * np.repeat(np.arange(len(paths)), n_out)
    res += amplitude * smooth[take]
    return np.split(res, out_first[1:])


def degrade_sketch(
    sketch: Image.Image | np.ndarray,
    rng: np.random.Generator,
    drop_range: tuple[float, float] = (0.3, 0.6),
    wobble_px: float = 1.5,
    thickness_range: tuple[int, int] = (1, 2),
    shift_frac: float = 0.08,
    scale_range: tuple[float, float] = (0.85, 1.15),
) -> Image.Image:
    """Redraw a clean sketch the way an amateur might.

    Args:
        sketch: dark strokes on white, a PIL image (any mode, converted to "L") or a
            2-D uint8 array.
        rng: source of all randomness; the same generator state gives the same result.
        drop_range: the fraction of strokes removed is drawn uniformly from this range
            (at least one stroke is kept when there is any).
        wobble_px: standard deviation, in pixels, of the smooth noise added to each
            stroke's points.
        thickness_range: pen width in px for each redrawn stroke, drawn uniformly
            from this inclusive range. Widths of 3 px and more read as blobs at 96x96,
            hence the default of 1 to 2.
        shift_frac: the drawing is shifted by up to this fraction of the side, per axis.
        scale_range: the drawing is rescaled about the centre by a factor drawn from
            this range.

    Returns:
        A PIL "L" image of the input's size: black (0) strokes on white (255). An input
        without dark pixels gives an all-white image.

    Strokes are traced as 1-px lines (what the training detail filter makes); a thicker
    input stroke comes out as a wobbly outline around it.
    """
    arr = _as_array(sketch)
    h, w = arr.shape
    canvas = np.full((h, w), 255, dtype=np.uint8)

    # 1. Strokes = 8-connected dark components, each as its traced outline.
    contours = _stroke_contours(arr < _DARK)
    if not contours:
        return Image.fromarray(canvas)

    # 2. Amateurs leave strokes out; drop a random subset but never the whole drawing.
    n_drop = int(round(rng.uniform(*drop_range) * len(contours)))
    n_keep = max(1, len(contours) - n_drop)
    keep = rng.choice(len(contours), size=n_keep, replace=False)

    # 4. Amateurs misplace and misjudge the size of the face; drawn now and applied to
    # the points below, because moving points rather than pixels keeps the lines crisp.
    scale = rng.uniform(*scale_range)
    shift = rng.uniform(-shift_frac, shift_frac, size=2) * np.array([w, h])
    centre = np.array([(w - 1) / 2.0, (h - 1) / 2.0])

    paths, widths = [], []
    for i in np.sort(keep):
        # 3. A shaky hand: each stroke redrawn with its own pen weight and a smooth
        # drift along its path (wobble added below, for all paths at once).
        width = int(rng.integers(thickness_range[0], thickness_range[1] + 1))
        for path in _contour_to_paths(contours[i], w):
            paths.append(path)
            widths.append(width)
    wobbly = _wobbly_paths(paths, wobble_px, rng)

    layers: dict[int, list[np.ndarray]] = {}  # pen width in px -> its polylines
    for pts, width in zip(wobbly, widths):
        pts = (pts - centre) * scale + centre + shift
        # Fixed point (4 fractional bits) keeps the sub-pixel wobble when drawing.
        layers.setdefault(width, []).append(np.round(pts * 16).astype(np.int32)[:, None])

    for width, polylines in layers.items():
        # cv2's `thickness` t paints 2t-1 px; a 1-px line dilated by a width x width
        # square gives exactly `width` px, including the even widths cv2 cannot draw.
        ink = np.zeros((h, w), dtype=np.uint8)
        cv2.polylines(ink, polylines, False, 255, 1, cv2.LINE_8, shift=4)
        if width > 1:
            ink = cv2.dilate(ink, np.ones((width, width), dtype=np.uint8))
        canvas[ink > 0] = 0

    return Image.fromarray(canvas)


def degrade_batch(sketches: np.ndarray, seed: int) -> np.ndarray:
    """Degrade a stack of sketches with `degrade_sketch`'s defaults.

    Args:
        sketches: (N, H, W) uint8, dark strokes on white.
        seed: with the item's position, seeds each item's own generator, so the same
            seed gives the same batch and item i does not depend on the items before it.

    Returns:
        (N, H, W) uint8 degraded sketches.
    """
    sketches = np.asarray(sketches)
    if sketches.ndim != 3 or sketches.dtype != np.uint8:
        raise ValueError(
            f"Expected an (N, H, W) uint8 array of sketches, got shape {sketches.shape} "
            f"and dtype {sketches.dtype}."
        )
    out = np.empty_like(sketches)  # (N, H, W)
    for k, sketch in enumerate(sketches):
        out[k] = np.asarray(degrade_sketch(sketch, np.random.default_rng([seed, k])))
    return out
