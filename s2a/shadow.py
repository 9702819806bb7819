"""Shadow guidance: a faint view of the projection under the strokes while drawing.

As in DeepFaceDrawing's interface, the pad shows, under what the user draws, a light
rendering of the closest point on the manifold of professional training sketches: the
decoder's view of the projected latent (refine 1, the plain projection, with the user's
pinned and dropped neighbours), of the drawing framed as a call frames it and laid back
where that frame sits on the pad. People trace along it and their drawings get better.

The shadow is never part of the sketch: the app does not put it into the drawing pad at
all. When a stroke ends, the browser (`OVERLAY_JS`) reads the pad as it shows it, shrunk
to a small grey square, and posts those bytes straight to the app's shadow route (not
through Gradio's editor upload and event queue, which take seconds): `shadow_png` turns
them into a small PNG, which the browser lays over the pad with `mix-blend-mode:
multiply`: white leaves the paper as it is and black strokes stay black, so the light
lines look as if they were under the strokes, and nothing the user draws meanwhile can be
overwritten. The strength slider only sets that image's CSS opacity, which over a
multiply blend is the same as `shadow_layer(..., opacity)`. The same overlay shows the
sketch faintly over the hint pad. Nothing here imports Gradio.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from s2a.editor import faint_sketch
from s2a.pipeline import MAX_K, Sketch2Anime, check_arguments
from s2a.sketch import EMPTY_SKETCH_MESSAGE

# Shadow lines at full strength: a light blue, apart from the black pen.
SHADOW_COLOUR = (60, 120, 230)
DEFAULT_OPACITY = 0.6
# Decoded sketches carry a faint haze; ink below this is shown as paper.
HAZE = 0.12
# The browser side: lays a data-URL image over a drawing pad (see the module docstring).
OVERLAY_JS = (Path(__file__).with_name("overlay.js")).read_text()
# The pins and drops ("3,17;5") the shadow requests send, from a hidden gr.HTML's value.
SELECTION_JS = """
const publish = () => {
  window.s2aShadowSelection = props.value || "";
  window.dispatchEvent(new Event("s2a-shadow-selection"));
};
watch("value", publish);
publish();
"""
# The pad read the shadow route takes: a square of MIN_SIDE..MAX_SIDE px (the pad's own
# 512 px at most), one byte per pixel, at most this many pinned or dropped neighbours.
MIN_SIDE, MAX_SIDE = 16, 512
MAX_BODY_BYTES = MAX_SIDE * MAX_SIDE
MAX_SELECTED = 64


def projection_shadow(pipe: Sketch2Anime, sketch, k: int = 10, include=(), exclude=()
                      ) -> Image.Image:
    """The decoded projection of `sketch`, where the drawing is ("L", pipe.resolution px,
    white paper, over the drawing's padded square).

    The drawing is framed as a call frames it (ink extent, then the face locator), so it
    finds the neighbours a call finds; the plain projection (refine 1, seed 0) onto the
    k nearest training sketches, with `include` / `exclude` bank indices pinned /
    dropped as in `pipe(...)`, is decoded and laid back over the frame's place on the
    pad (paper around it). Raises ValueError on bad input, an empty sketch included.
    """
    _, k, _ = check_arguments(1.0, k, 0, len(pipe.bank))
    include, exclude = pipe.bank.check_selection(include, exclude, k)
    with torch.no_grad():
        framed, frame = pipe.framed_sketch_tensor(sketch)  # (1, 1, R, R)
        latents = pipe.encode(framed)  # (1, d)
        refined, _ = pipe.project(latents, 1.0, k, 0, include, exclude)  # (1, d)
        decoded = pipe.decode_projected(torch.from_numpy(refined).to(pipe.device))[0]  # (R, R)
    projected = Image.fromarray((decoded.clamp(0, 1) * 255).round().byte().cpu().numpy(), "L")
    return projected if frame is None else in_place(projected, frame)


def in_place(projected: Image.Image, frame) -> Image.Image:
    """A framed (S, S) picture laid back where its frame (top, left, side: fractions of
    the drawing's padded square) sits on that square, at S px; paper around it."""
    side = projected.width
    top, left, size = frame
    width = max(1, round(size * side))
    canvas = Image.new("L", (side, side), 255)
    canvas.paste(projected.resize((width, width), Image.BILINEAR),
                 (round(left * side), round(top * side)))  # clipped at the edges
    return canvas


def shadow_layer(projected: Image.Image, opacity: float = DEFAULT_OPACITY,
                 colour: tuple[int, int, int] = SHADOW_COLOUR) -> Image.Image:
    """A multiply layer ("RGB", the projection's size): white paper, light `colour` lines.

    `opacity` in [0, 1] scales how dark the lines are (1: `colour` itself where the
    projection is fully inked).
    """
    if isinstance(opacity, bool) or not isinstance(opacity, int | float | np.floating) \
            or not 0.0 <= float(opacity) <= 1.0:
        raise ValueError(f"The shadow opacity must be a number from 0 to 1, got {opacity!r}.")
    ink = 1.0 - np.asarray(projected.convert("L"), np.float32) / 255.0  # (R, R)
    # The decoder draws soft lines; a gamma below 1 lifts their faint parts into view.
    ink = np.clip((ink - HAZE) / (1.0 - HAZE), 0.0, 1.0) ** 0.7 * float(opacity)
    paint = 255.0 - np.asarray(colour, np.float32)  # (3,): how far each channel darkens
    rgb = 255.0 - ink[..., None] * paint  # (R, R, 3)
    return Image.fromarray(rgb.round().astype(np.uint8), "RGB")


def faint_layer(sketch: Image.Image | None) -> Image.Image:
    """The multiply layer over the hint pad: the sketch drawn faintly on white, "L"."""
    return faint_sketch(sketch).convert("L")


def data_url(image: Image.Image) -> str:
    """`image` as a PNG data URL (what the overlay's <img> shows)."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False, compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def read_side(resolution: int) -> int:
    """The side of the pad read the browser posts for a model of `resolution` px: twice
    the model's side (thin pen lines survive the browser's shrinking), within bounds."""
    return max(MIN_SIDE, min(MAX_SIDE, 2 * int(resolution)))


def pad_read(body: bytes, side) -> Image.Image:
    """What the browser posts, `side` x `side` grey bytes row by row (255 paper, 0 ink),
    as an "L" image. Raises ValueError when the size or the byte count is wrong."""
    side = _whole(side, "The side", MIN_SIDE, MAX_SIDE)
    if not isinstance(body, bytes | bytearray) or len(body) != side * side:
        got = len(body) if isinstance(body, bytes | bytearray) else type(body).__name__
        raise ValueError(f"The pad read must be {side} x {side} = {side * side} grey bytes, "
                         f"got {got}.")
    return Image.frombytes("L", (side, side), bytes(body))


def indices(text, what: str) -> tuple[int, ...]:
    """A comma-separated list of bank indices ("" for none), e.g. "3,17"."""
    parts = [part.strip() for part in str(text or "").split(",") if part.strip()]
    if len(parts) > MAX_SELECTED:
        raise ValueError(f"At most {MAX_SELECTED} {what} neighbours, got {len(parts)}.")
    return tuple(_whole(part, f"A {what} neighbour", 0, 2**31 - 1) for part in parts)


def shadow_png(pipe: Sketch2Anime, body: bytes, side, k, include="", exclude="") -> bytes | None:
    """The shadow route's work: the posted pad read (`pad_read`), k and the pinned /
    dropped bank indices (comma-separated) -> the shadow at full strength as PNG bytes,
    or None on an empty pad. Raises ValueError, with a sentence, on bad input."""
    sketch = pad_read(body, side)
    k = _whole(k, "k (neighbours)", 1, MAX_K)
    try:
        projected = projection_shadow(pipe, sketch, k, indices(include, "pinned"),
                                      indices(exclude, "dropped"))
    except ValueError as error:
        if str(error) == EMPTY_SKETCH_MESSAGE:
            return None
        raise
    buffer = io.BytesIO()
    shadow_layer(projected, 1.0).save(buffer, format="PNG", optimize=False, compress_level=1)
    return buffer.getvalue()


def _whole(value, what: str, low: int, high: int) -> int:
    """`value` (an int or its decimal text) as an int in [low, high], or ValueError."""
    text = str(value).strip()
    if isinstance(value, bool) or not (isinstance(value, int) or text.isdecimal()) \
            or len(text) > 12 or not low <= int(text) <= high:
        raise ValueError(f"{what} must be a whole number from {low} to "
                         f"{high}, got {text[:20]!r}.")
    return int(text)
