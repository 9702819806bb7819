"""Example sketches and colour hints the project draws itself (no dataset images).

The app offers them as starting points and the README's sample grid uses them. They are
meant to look like what a person who cannot draw well would produce with a mouse: a face
outline, big eyes with pupils, a nose tick, a mouth and a few hair strands, with a slight
wobble in every line.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
from PIL import Image

SIZE = 512
INK = 0
PAPER = 255
PEN = 3  # line width in pixels at 512 px, like a mouse brush

Point = tuple[float, float]


def example_sketches() -> dict[str, Image.Image]:
    """The example sketches by name: PIL "L" images, SIZE x SIZE, dark lines on white."""
    return {name: _draw_sketch(name) for name in _FACES}


def example_hints(name: str) -> Image.Image:
    """The colour hints for the example sketch `name`: a PIL "RGBA" image, SIZE x SIZE.

    A few round-brush strokes (hair, eyes, background); alpha is 255 on the strokes and 0
    elsewhere. Raises ValueError for an unknown name.
    """
    if name not in _HINTS:
        raise ValueError(f"No example called {name!r}: choose one of {', '.join(_HINTS)}.")
    canvas = np.zeros((SIZE, SIZE, 4), np.uint8)
    for colour, width, points in _HINTS[name]:
        rgba = (*_hex_to_rgb(colour), 255)
        _stroke(canvas, points, rgba, width)
    return Image.fromarray(canvas, "RGBA")


# ---------------------------------------------------------------------------
# Drawing helpers
# ---------------------------------------------------------------------------


def _bezier(p0: Point, p1: Point, p2: Point, p3: Point, n: int = 24) -> list[Point]:
    """Points on the cubic Bezier curve p0 -> p3 with control points p1, p2."""
    t = np.linspace(0.0, 1.0, n)[:, None]  # (n, 1)
    p = np.array([p0, p1, p2, p3], dtype=np.float64)  # (4, 2)
    curve = (
        (1 - t) ** 3 * p[0] + 3 * (1 - t) ** 2 * t * p[1] + 3 * (1 - t) * t**2 * p[2] + t**3 * p[3]
    )
    return [tuple(q) for q in curve]


def _arc(centre: Point, axes: Point, start: float, end: float, n: int = 24) -> list[Point]:
    """Points on an elliptic arc, angles in degrees (0 = right, 90 = down, as in OpenCV)."""
    angles = np.radians(np.linspace(start, end, n))
    return [(centre[0] + axes[0] * np.cos(a), centre[1] + axes[1] * np.sin(a)) for a in angles]


def _wobble(points: list[Point], rng: np.random.Generator, amount: float) -> np.ndarray:
    """A hand-drawn look: smooth random drift across the line, ends included."""
    pts = _densify(np.asarray(points, dtype=np.float64))  # (n, 2)
    if amount <= 0 or len(pts) < 5:
        return pts
    noise = rng.normal(0.0, amount, size=pts.shape)
    kernel = np.ones(5) / 5.0
    smooth = np.stack([np.convolve(noise[:, i], kernel, mode="same") for i in range(2)], axis=1)
    return pts + smooth * 2.0


def _densify(pts: np.ndarray, step: float = 6.0) -> np.ndarray:
    """Resample a polyline to about one point every `step` pixels."""
    seg = np.hypot(*np.diff(pts, axis=0).T)  # (n - 1,)
    dist = np.concatenate([[0.0], np.cumsum(seg)])
    if dist[-1] == 0:
        return pts
    t = np.linspace(0.0, dist[-1], max(2, int(dist[-1] / step) + 1))
    return np.stack([np.interp(t, dist, pts[:, i]) for i in range(2)], axis=1)


def _line(canvas: np.ndarray, points, rng: np.random.Generator, width: int = PEN,
          amount: float = 1.2) -> None:
    pts = _wobble(points, rng, amount)
    cv2.polylines(canvas, [np.round(pts * 4).astype(np.int32)], False, INK, width,
                  cv2.LINE_AA, shift=2)


def _fill(canvas: np.ndarray, centre: Point, axes: Point, value: int) -> None:
    cv2.ellipse(canvas, (round(centre[0]), round(centre[1])), (round(axes[0]), round(axes[1])),
                0, 0, 360, value, -1, cv2.LINE_AA)


def _stroke(canvas: np.ndarray, points, rgba, width: int) -> None:
    """A round-brush stroke with hard edges (hint colours must stay exact)."""
    pts = np.round(np.asarray(points, dtype=np.float64)).astype(np.int32)
    if len(pts) == 1:
        cv2.circle(canvas, tuple(int(v) for v in pts[0]), width // 2, rgba, -1)
        return
    cv2.polylines(canvas, [pts], False, rgba, width, cv2.LINE_8)
    for p in (pts[0], pts[-1]):
        cv2.circle(canvas, tuple(int(v) for v in p), width // 2, rgba, -1)


def _hex_to_rgb(colour: str) -> tuple[int, int, int]:
    colour = colour.lstrip("#")
    return int(colour[0:2], 16), int(colour[2:4], 16), int(colour[4:6], 16)


# ---------------------------------------------------------------------------
# Face parts (coordinates on the 512 px canvas)
# ---------------------------------------------------------------------------


def _face_outline(c, rng, cx=256.0, chin=452.0, cheek=118.0, jaw=380.0, top=245.0,
                  tilt=0.0) -> None:
    """Both cheeks from the temples down to a pointed anime chin."""
    for side in (-1, 1):
        half = cheek + side * tilt
        _line(c, _bezier((cx + side * half, top), (cx + side * (half + 6), jaw - 70),
                         (cx + side * (half - 30), jaw), (cx + tilt * 0.5, chin)), rng)


def _eye(c, rng, centre: Point, side: int, look: Point = (0.0, 0.0), size: float = 1.0,
         closed: bool = False) -> None:
    """A big anime eye: thick upper lash line, lower lid, iris, pupil and a highlight."""
    x, y = centre
    w, h = 40.0 * size, 30.0 * size
    if closed:  # a happy ^ eye
        _line(c, _bezier((x - w, y + 6), (x - w / 3, y - h), (x + w / 3, y - h), (x + w, y + 6)),
              rng, PEN + 2)
        return
    lash = _bezier((x - side * w, y - 2), (x - side * w / 2, y - h * 1.25),
                   (x + side * w / 2, y - h * 1.3), (x + side * w * 1.1, y - h * 0.55))
    _line(c, lash, rng, PEN + 3, 0.6)
    _line(c, [(x + side * w * 1.1, y - h * 0.55), (x + side * w * 1.3, y - h * 0.75)], rng, PEN)
    _line(c, _bezier((x - side * w * 0.7, y + h * 0.95), (x - side * w * 0.2, y + h * 1.15),
                     (x + side * w * 0.3, y + h * 1.1), (x + side * w * 0.8, y + h * 0.8)),
          rng, PEN - 1)
    ix, iy = x + look[0] * w * 0.35, y + 6 * size + look[1] * h * 0.2
    iris_axes = (w * 0.55, h * 1.0)
    _line(c, _arc((ix, iy), iris_axes, 200, 520, 40), rng, PEN, 0.5)
    _fill(c, (ix + look[0] * 4, iy + 5), (w * 0.26, h * 0.5), INK)
    _fill(c, (ix - w * 0.2, iy - h * 0.35), (w * 0.13, w * 0.13), PAPER)
    _line(c, _arc((ix, iy + h * 0.55), (w * 0.35, h * 0.25), 20, 160, 12), rng, 2, 0.3)


def _eyebrow(c, rng, centre: Point, side: int, raise_px: float = 0.0) -> None:
    x, y = centre
    _line(c, _bezier((x - side * 34, y + 4 - raise_px), (x - side * 10, y - 8 - raise_px),
                     (x + side * 16, y - 10 - raise_px), (x + side * 38, y - 2 - raise_px)),
          rng, PEN - 1)


def _nose(c, rng, x: float = 256.0, y: float = 360.0) -> None:
    _line(c, [(x + 2, y - 10), (x - 4, y + 6), (x + 4, y + 8)], rng, PEN - 1, 0.4)


def _fringe(c, rng, tips: list[Point], crown: Point = (256.0, 120.0), depth: float = 0.55):
    """Bangs: strands that hang from the crown and end in points over the forehead.

    Consecutive tips are joined through a notch (where two strands part) by curves that
    bow outwards, and a parting line runs from every notch up towards the crown.
    """
    for (tx, ty), (nx, ny) in zip(tips, tips[1:]):
        notch = ((tx + nx) / 2, min(ty, ny) - (min(ty, ny) - crown[1]) * depth * 0.7)
        _line(c, _bezier((tx, ty), (tx + (nx - tx) * 0.05, ty - 30),
                         (notch[0] - (nx - tx) * 0.05, notch[1] + 25), notch), rng)
        _line(c, _bezier(notch, (notch[0] + (nx - tx) * 0.05, notch[1] + 25),
                         (nx - (nx - tx) * 0.05, ny - 30), (nx, ny)), rng)
        top = (crown[0] + (notch[0] - crown[0]) * 0.35, crown[1] + 12)
        _line(c, _bezier(notch, (notch[0], notch[1] - 40), (top[0] + (notch[0] - top[0]) * 0.5,
                         top[1] + 20), top), rng, PEN - 1)


def _hair_cap(c, rng, cx: float = 256.0, top: float = 70.0, width: float = 150.0,
              bottom: float = 300.0) -> None:
    """The outer contour of the hair over the head, ending at the temples."""
    for side in (-1, 1):
        _line(c, _bezier((cx, top), (cx + side * width * 0.9, top + 4),
                         (cx + side * width * 1.08, bottom - 150),
                         (cx + side * width * 0.98, bottom)), rng)


def _mouth(c, rng, x: float = 256.0, y: float = 408.0, kind: str = "small") -> None:
    if kind == "smile":
        _line(c, _bezier((x - 34, y - 8), (x - 20, y + 22), (x + 20, y + 22), (x + 34, y - 8)), rng)
        _line(c, [(x - 34, y - 8), (x + 34, y - 8)], rng, PEN, 0.5)
        _line(c, _bezier((x - 14, y + 10), (x - 6, y + 4), (x + 6, y + 4), (x + 14, y + 10)),
              rng, 2)
    elif kind == "side":
        _line(c, _bezier((x - 10, y), (x, y + 5), (x + 12, y + 4), (x + 20, y - 3)), rng)
    else:
        _line(c, _bezier((x - 16, y), (x - 6, y + 6), (x + 6, y + 6), (x + 16, y)), rng)


def _blush(c, rng, centre: Point) -> None:
    x, y = centre
    for dx in (-14, -2, 10):
        _line(c, [(x + dx + 6, y - 6), (x + dx, y + 6)], rng, 2, 0.2)


def _round_face(c, rng) -> None:
    _hair_cap(c, rng, top=72, width=160, bottom=330)
    _fringe(c, rng, [(120, 300), (160, 238), (205, 258), (250, 226), (300, 252), (345, 232),
                     (392, 300)], crown=(256, 120))
    _face_outline(c, rng, chin=448, cheek=128, jaw=385)
    for side, x in ((-1, 196), (1, 316)):
        _eye(c, rng, (x, 310), side)
        _eyebrow(c, rng, (x, 262), side)
    _nose(c, rng)
    _mouth(c, rng)


def _long_hair(c, rng) -> None:
    _hair_cap(c, rng, top=64, width=150, bottom=300)
    for side in (-1, 1):  # long strands down to the shoulders
        x0 = 256 + side * 148
        _line(c, _bezier((x0, 300), (x0 + side * 10, 380), (x0 + side * 30, 440),
                         (x0 + side * 24, 505)), rng)
        _line(c, _bezier((256 + side * 118, 330), (256 + side * 112, 400),
                         (256 + side * 126, 460), (256 + side * 104, 505)), rng)
        _line(c, _bezier((256 + side * 132, 380), (256 + side * 138, 430),
                         (256 + side * 150, 470), (256 + side * 142, 500)), rng, PEN - 1)
    _fringe(c, rng, [(132, 280), (172, 250), (214, 268), (256, 238), (300, 266), (340, 246),
                     (380, 282)], crown=(256, 112), depth=0.6)
    _face_outline(c, rng, chin=450, cheek=112, jaw=378, top=270)
    for side, x in ((-1, 202), (1, 310)):
        _eye(c, rng, (x, 318), side, size=0.95)
        _eyebrow(c, rng, (x, 270), side)
    _nose(c, rng, y=366)
    _mouth(c, rng, y=410)


def _smiling(c, rng) -> None:
    _hair_cap(c, rng, top=80, width=155, bottom=310)
    _fringe(c, rng, [(126, 290), (170, 232), (214, 246), (258, 218), (298, 246), (342, 228),
                     (386, 290)], crown=(262, 124), depth=0.5)
    _line(c, _bezier((300, 86), (330, 40), (360, 50), (350, 80)), rng)  # an ahoge strand
    _face_outline(c, rng, chin=450, cheek=124, jaw=382)
    for side, x in ((-1, 198), (1, 314)):
        _eye(c, rng, (x, 312), side, closed=True)
        _eyebrow(c, rng, (x, 262), side, raise_px=6)
        _blush(c, rng, (x, 352))
    _nose(c, rng, y=362)
    _mouth(c, rng, y=404, kind="smile")


def _side_glance(c, rng) -> None:
    _hair_cap(c, rng, cx=250, top=70, width=158, bottom=320)
    _fringe(c, rng, [(116, 296), (150, 236), (200, 264), (236, 222), (290, 258), (336, 228),
                     (386, 300)], crown=(236, 118), depth=0.6)
    _line(c, _bezier((100, 300), (96, 360), (110, 400), (96, 440)), rng)  # a side lock
    _face_outline(c, rng, cx=262, chin=446, cheek=120, jaw=380, tilt=8)
    for side, x in ((-1, 204), (1, 322)):
        _eye(c, rng, (x, 314), side, look=(0.9, -0.1))
        _eyebrow(c, rng, (x, 266), side, raise_px=-4 if side < 0 else 4)
    _nose(c, rng, x=270, y=362)
    _mouth(c, rng, x=276, y=408, kind="side")


_FACES: dict[str, Callable[[np.ndarray, np.random.Generator], None]] = {
    "round face": _round_face,
    "long hair": _long_hair,
    "smiling": _smiling,
    "side glance": _side_glance,
}


# Where each example's eyes are: (row, left eye column, right eye column) at SIZE px, the
# centres its _eye calls draw. The face locator's evaluation and docs/framing_oracle.py
# measure where they land in the model input.
EXAMPLE_EYES: dict[str, tuple[float, float, float]] = {
    "round face": (310, 196, 316), "long hair": (318, 202, 310),
    "smiling": (312, 198, 314), "side glance": (314, 204, 322),
}


def _draw_sketch(name: str) -> Image.Image:
    canvas = np.full((SIZE, SIZE), PAPER, np.uint8)
    rng = np.random.default_rng(sum(map(ord, name)))  # the same wobble every time
    _FACES[name](canvas, rng)
    return Image.fromarray(canvas, "L")


# Hint strokes: (colour, brush width, points) per example.
_HINTS: dict[str, list[tuple[str, int, list[Point]]]] = {
    "round face": [
        ("#8b5a2b", 22, [(170, 150), (256, 110), (340, 150)]),  # brown hair
        ("#8b5a2b", 18, [(130, 250), (120, 300)]),
        ("#3f7fd8", 12, [(196, 318), (196, 326)]),  # blue eyes
        ("#3f7fd8", 12, [(316, 318), (316, 326)]),
        ("#ffffff", 26, [(40, 40), (40, 470)]),  # white background
        ("#ffffff", 26, [(472, 40), (472, 470)]),
    ],
    "long hair": [
        ("#1f1d24", 22, [(180, 140), (256, 100), (330, 140)]),  # black hair
        ("#1f1d24", 18, [(118, 330), (110, 480)]),
        ("#1f1d24", 18, [(394, 330), (402, 480)]),
        ("#d8323c", 12, [(202, 326), (202, 334)]),  # red eyes
        ("#d8323c", 12, [(310, 326), (310, 334)]),
        ("#f6d5e0", 26, [(40, 60), (40, 300)]),  # pale pink background
        ("#f6d5e0", 26, [(472, 60), (472, 300)]),
    ],
    "smiling": [
        ("#f2d36b", 24, [(170, 160), (256, 120), (340, 160)]),  # blonde hair
        ("#f2d36b", 18, [(136, 260), (128, 300)]),
        ("#ffe3d1", 20, [(220, 380), (292, 380)]),  # fair skin
        ("#a9d8f5", 26, [(40, 40), (40, 470)]),  # sky-blue background
        ("#a9d8f5", 26, [(472, 40), (472, 470)]),
    ],
    "side glance": [
        ("#f29cc2", 22, [(160, 150), (240, 110), (330, 150)]),  # pink hair
        ("#f29cc2", 16, [(100, 330), (98, 420)]),
        ("#7a4fc2", 12, [(218, 322), (218, 330)]),  # purple eyes
        ("#7a4fc2", 12, [(336, 322), (336, 330)]),
        ("#ffffff", 26, [(472, 40), (472, 470)]),  # white background
    ],
}
