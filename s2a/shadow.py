"""Shadow guidance: a faint view of the projection under the strokes while drawing.

As in DeepFaceDrawing's interface, the pad shows, under what the user draws, a light
rendering of the closest point on the manifold of professional training sketches: the
decoder's view of the projected latent (refine 1, the plain projection, with the user's
pinned and dropped neighbours). People trace along it and their drawings get better.

The shadow is never part of the sketch: the app does not put it into the drawing pad at
all. It is sent to the browser as a small PNG data URL and drawn by `OVERLAY_JS` as an
image laid over the pad with `mix-blend-mode: multiply`: white leaves the paper as it is
and black strokes stay black, so the light lines look as if they were under the strokes,
and nothing the user draws meanwhile can be overwritten. The same overlay shows the
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
from s2a.pipeline import Sketch2Anime, check_arguments

# Shadow lines at full strength: a light blue, apart from the black pen.
SHADOW_COLOUR = (60, 120, 230)
DEFAULT_OPACITY = 0.6
# Decoded sketches carry a faint haze; ink below this is shown as paper.
HAZE = 0.12
# The browser side: lays a data-URL image over a drawing pad (see the module docstring).
OVERLAY_JS = (Path(__file__).with_name("overlay.js")).read_text()


def projection_shadow(pipe: Sketch2Anime, sketch, k: int = 10, include=(), exclude=()
                      ) -> Image.Image:
    """The decoded projection of `sketch` ("L", pipe.resolution px, white paper).

    The plain projection (refine 1, seed 0) onto the k nearest training sketches, with
    `include` / `exclude` bank indices pinned / dropped as in `pipe(...)`. Raises
    ValueError on bad input, an empty sketch included.
    """
    _, k, _ = check_arguments(1.0, k, 0, len(pipe.bank))
    include, exclude = pipe.bank.check_selection(include, exclude, k)
    with torch.no_grad():
        latents = pipe.encode(pipe.sketch_tensor(sketch))  # (1, d)
        refined, _ = pipe.project(latents, 1.0, k, 0, include, exclude)  # (1, d)
        decoded = pipe.decode_projected(torch.from_numpy(refined).to(pipe.device))[0]  # (R, R)
    return Image.fromarray((decoded.clamp(0, 1) * 255).round().byte().cpu().numpy(), "L")


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
