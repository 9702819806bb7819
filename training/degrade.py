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
    paths: list[np.ndarray], amplitude: float, rng: np.random.Generator, smooth_px: float = 0.0
) -> list[np.ndarray]:
    """Resample every path to 1-px steps, optionally smooth it, and add smooth noise along it.

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
    if smooth_px > 0:
        res = _smooth_along(res, n_out, out_first, smooth_px)

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


def _smooth_along(
    pts: np.ndarray, counts: np.ndarray, first: np.ndarray, radius_px: float
) -> np.ndarray:
    """Two passes of a moving average along each path (about a Gaussian), ends clamped.

    Vectorised over all paths with one cumulative sum: the window of point j of a path is
    cut at the path's own ends, so paths never pull on each other.
    """
    radius = max(1, int(round(radius_px / 2)))  # two box passes of width 2r+1 ~ one of 4r
    start = np.repeat(first, counts)  # (P,) first point of each point's path
    stop = start + np.repeat(counts, counts) - 1  # (P,) last point of each point's path
    j = np.arange(len(pts))
    lo, hi = np.maximum(start, j - radius), np.minimum(stop, j + radius)
    for _ in range(2):
        total = np.vstack([np.zeros((1, 2)), np.cumsum(pts, axis=0)])  # (P + 1, 2)
        pts = (total[hi + 1] - total[lo]) / (hi - lo + 1)[:, None]
    return pts


def degrade_sketch(
    sketch: Image.Image | np.ndarray,
    rng: np.random.Generator,
    drop_range: tuple[float, float] = (0.3, 0.6),
    wobble_px: float = 1.5,
    thickness_range: tuple[int, int] = (1, 2),
    shift_frac: float = 0.08,
    scale_range: tuple[float, float] = (0.85, 1.15),
    smooth_px: float = 0.0,
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
        smooth_px: before the wobble, each stroke is smoothed along its path over about
            this many pixels (0 = off): a confident hand draws smooth curves where the
            edge detector leaves pixel staircases.

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
    wobbly = _wobbly_paths(paths, wobble_px, rng, smooth_px)

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
    # The "rough" style alone is exactly degrade_sketch with its defaults.
    return amateur_batch(sketches, seed, styles=("rough",))


# ---------------------------------------------------------------------------
# Line style: the same drawing made with other tools, hands and framings
# ---------------------------------------------------------------------------

# What `amateur_sketch` may vary. "rough" alone is `degrade_sketch` with its defaults (the
# probe of issue 13); the others add line styles users have and training sketches lack.
STYLES = ("rough", "width", "soft", "smooth", "xdog", "strays", "heavy", "partial", "frame")
# Pen width (px at 96 px) of a restyled drawing, and how often each comes up: thin lines
# are what most canvases give after normalisation, 4 px is a fat marker.
_WIDTHS = np.array([1, 2, 3, 4])
_WIDTH_P = np.array([0.3, 0.35, 0.22, 0.13])
# How often each style fires on a degraded item (when the style is switched on).
_P = {"xdog": 0.2, "clean_lines": 0.2, "smooth": 0.4, "heavy": 0.25, "strays": 0.3,
      "partial": 0.15, "frame": 0.35, "soft": 0.35}
# A partial face or stray marks must leave a drawing: fewer ink pixels than this and
# the erasure is undone.
_MIN_INK = 20


def soften(sketch: np.ndarray, sigma: float) -> np.ndarray:
    """Soft grey lines: (H, W) uint8 sketch blurred by `sigma` px, line centres kept dark.

    Canvases, pencils and the app's own downscaling give anti-aliased grey strokes where
    training sketches are binary.
    """
    ink = 1.0 - sketch.astype(np.float32) / 255.0  # (H, W) in [0, 1]
    blurred = cv2.GaussianBlur(ink, (0, 0), sigmaX=sigma)
    # Rescale so a 1 px line's centre stays as dark as before the blur.
    radius = int(np.ceil(3 * sigma))
    profile = cv2.getGaussianKernel(2 * radius + 1, sigma)
    peak = float(profile[radius, 0])
    out = np.clip(blurred / peak, 0.0, 1.0)
    return np.round(255.0 * (1.0 - out)).astype(np.uint8)


def add_strays(sketch: np.ndarray, rng: np.random.Generator, dots: int = 4,
               scribbles: int = 2) -> np.ndarray:
    """Up to `dots` specks and `scribbles` short random-walk marks, anywhere on the page."""
    h, w = sketch.shape
    out = sketch.copy()
    for _ in range(int(rng.integers(0, dots + 1))):
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        cv2.circle(out, (x, y), int(rng.integers(0, 2)), 0, -1)
    for _ in range(int(rng.integers(0, scribbles + 1))):
        start = rng.uniform(0, 1, size=2) * np.array([w, h])
        steps = rng.normal(0.0, 2.0, size=(int(rng.integers(4, 10)), 2))
        points = np.round((start + np.cumsum(steps, axis=0)) * 16).astype(np.int32)
        cv2.polylines(out, [points[:, None]], False, 0, 1, cv2.LINE_8, shift=4)
    return out


def erase_part(sketch: np.ndarray, rng: np.random.Generator,
               share: tuple[float, float] = (0.25, 0.5)) -> np.ndarray:
    """A half-finished face: a band of `share` of the side wiped from a random edge."""
    h, w = sketch.shape
    out = sketch.copy()
    side = int(rng.integers(4))  # 0 top, 1 bottom, 2 left, 3 right
    cut = int(round(rng.uniform(*share) * (h if side < 2 else w)))
    region = [slice(None), slice(None)]
    region[side // 2] = slice(0, cut) if side % 2 == 0 else slice((h, w)[side // 2] - cut, None)
    out[tuple(region)] = 255
    return out if (out < _DARK).sum() >= _MIN_INK else sketch


def amateur_sketch(sketch: np.ndarray, rng: np.random.Generator,
                   image: np.ndarray | None = None,
                   styles: tuple[str, ...] = STYLES) -> np.ndarray:
    """One drawing of what `sketch` shows, as a user might make it: (H, W) uint8 -> same.

    With styles ("rough",) this is exactly `degrade_sketch` with its defaults. Each other
    style, when on, fires with its own probability: "xdog" starts from a second line
    extractor on `image` (the face, (H, W, 3) uint8) instead of the Canny sketch; "width"
    draws 1-4 px lines; "smooth" redraws strokes as smooth curves; "heavy" drops more
    strokes; "strays" adds specks and scribbles; "partial" wipes a band from an edge;
    "frame" draws the face smaller (0.5-0.85) on a white pad; "soft" gives grey
    anti-aliased lines. With any line style on, some drawings keep their strokes whole
    and in place (clean lines, another style) instead of roughened.
    """
    unknown = set(styles) - set(STYLES)
    if unknown:
        raise ValueError(f"Unknown styles {sorted(unknown)}: choose from {', '.join(STYLES)}.")
    if tuple(styles) == ("rough",):
        return np.asarray(degrade_sketch(sketch, rng))
    from s2a.sketch import xdog_sketch  # the runtime package, only needed here

    source = sketch
    if "xdog" in styles and image is not None and rng.random() < _P["xdog"]:
        source = np.asarray(xdog_sketch(image, threshold=rng.uniform(0.012, 0.03)))
        if (source < _DARK).sum() < _MIN_INK:
            source = sketch
    kwargs: dict = {}
    rough = "rough" in styles and not rng.random() < _P["clean_lines"]
    if not rough:
        kwargs.update(drop_range=(0.0, 0.0), wobble_px=0.0, shift_frac=0.0,
                      scale_range=(1.0, 1.0))
    else:
        kwargs["wobble_px"] = rng.uniform(0.5, 2.0)
    if "width" in styles:
        width = int(rng.choice(_WIDTHS, p=_WIDTH_P))
        kwargs["thickness_range"] = (max(1, width - 1), width)
    else:
        kwargs["thickness_range"] = (1, 2) if rough else (1, 1)
    if "smooth" in styles and rng.random() < _P["smooth"]:
        kwargs["smooth_px"] = rng.uniform(2.0, 6.0)
    if "heavy" in styles and rng.random() < _P["heavy"]:
        kwargs["drop_range"] = (0.5, 0.8)
    if "frame" in styles and rng.random() < _P["frame"]:
        kwargs["scale_range"] = (0.5, 0.85)
        kwargs["shift_frac"] = 0.05
    out = np.asarray(degrade_sketch(source, rng, **kwargs))
    if "partial" in styles and rng.random() < _P["partial"]:
        out = erase_part(out, rng)
    if "strays" in styles and rng.random() < _P["strays"]:
        out = add_strays(out, rng)
    if "soft" in styles and rng.random() < _P["soft"]:
        out = soften(out, rng.uniform(0.5, 1.0))
    return out


def amateur_batch(sketches: np.ndarray, seed: int, images: np.ndarray | None = None,
                  styles: tuple[str, ...] = STYLES) -> np.ndarray:
    """`amateur_sketch` over an (N, H, W) uint8 stack, item k seeded by [seed, k].

    `images` (N, H, W, 3) uint8, the faces, feed the "xdog" style; without them it is
    skipped. With styles ("rough",) this equals `degrade_batch`.
    """
    sketches = np.asarray(sketches)
    if sketches.ndim != 3 or sketches.dtype != np.uint8:
        raise ValueError(
            f"Expected an (N, H, W) uint8 array of sketches, got shape {sketches.shape} "
            f"and dtype {sketches.dtype}."
        )
    out = np.empty_like(sketches)  # (N, H, W)
    for k, sketch in enumerate(sketches):
        image = None if images is None else np.asarray(images[k])
        out[k] = amateur_sketch(sketch, np.random.default_rng([seed, k]), image, styles)
    return out


# Fixed line-style shifts for the evaluation: the drawing kept whole and in place, only
# the pen changed.
SHIFTS = {
    "thick": dict(thickness_range=(3, 3)),
    "smooth": dict(thickness_range=(2, 2), smooth_px=4.0),
}


def shift_batch(sketches: np.ndarray, shift: str) -> np.ndarray:
    """(N, H, W) uint8 sketches redrawn in the line style `shift` (a key of SHIFTS)."""
    if shift not in SHIFTS:
        raise ValueError(f"Unknown shift {shift!r}: choose from {', '.join(SHIFTS)}.")
    still = dict(drop_range=(0.0, 0.0), wobble_px=0.0, shift_frac=0.0, scale_range=(1.0, 1.0))
    rng = np.random.default_rng(0)  # nothing random is left on; degrade_sketch wants one
    return np.stack([np.asarray(degrade_sketch(s, rng, **still, **SHIFTS[shift]))
                     for s in np.asarray(sketches)])
