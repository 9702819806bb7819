"""The hint report: how closely the face followed each colour the user painted.

For each distinct hint colour, the CIEDE2000 difference between it and the face's median
colour where it was painted; shown under the face in the app.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from s2a.editor import PALETTE
from s2a.hints import frame_like_sketch, pad_like_sketch
from s2a.metrics import delta_e_ciede2000, rgb_to_lab
from s2a.sketch import RelativeBox

NOT_FOLLOWED_DELTA_E = 10.0  # a hint colour further than this from the output is flagged
MIN_HINT_PIXELS = 8  # hint colours covering fewer pixels are brush edge noise, not hints
SOLID_ALPHA = 128  # hint pixels at least this opaque define the hint colours




@dataclass(frozen=True)
class HintCheck:
    """How well one hinted colour came out."""

    wanted: tuple[int, int, int]
    got: tuple[int, int, int]  # the output's median colour where this colour was hinted
    delta_e: float  # CIEDE2000 between wanted and got
    pixels: int  # hinted pixels of this colour (at the hint layer's size)

    @property
    def followed(self) -> bool:
        return self.delta_e <= NOT_FOLLOWED_DELTA_E


def check_hints(image: Image.Image, hints: Image.Image | None,
                sketch_size: tuple[int, int] | None = None,
                frame: RelativeBox | None = None) -> list[HintCheck]:
    """For each distinct hint colour: ΔE between it and the output's median colour there.

    `hints` is stretched over the sketch's frame as the pipeline does (padded like a
    non-square sketch of `sketch_size`, then cropped to the sketch's `frame` when the
    pipeline zoomed the drawing: `GenerationResult.frame`); the output is resized onto the
    hint layer's grid.
    Colours covering fewer than MIN_HINT_PIXELS solid pixels (brush edges) are skipped.
    Sorted by area, largest first.
    """
    if hints is None:
        return []
    rgba = np.asarray(hints.convert("RGBA"))  # (h, w, 4)
    if sketch_size is not None:
        rgba = pad_like_sketch(rgba, sketch_size)
    if frame is not None:
        rgba = frame_like_sketch(rgba, frame)
    height, width = rgba.shape[:2]
    output = np.asarray(image.convert("RGB").resize((width, height), Image.BILINEAR))
    solid = rgba[..., 3] >= SOLID_ALPHA  # (h, w)
    if not solid.any():
        return []
    colours, inverse, counts = np.unique(rgba[..., :3][solid], axis=0, return_inverse=True,
                                         return_counts=True)
    under = output[solid]  # (N, 3)
    checks = []
    for i in np.argsort(-counts):
        if counts[i] < MIN_HINT_PIXELS:
            continue
        wanted = tuple(int(v) for v in colours[i])
        got = tuple(int(v) for v in np.median(under[inverse.ravel() == i], axis=0).round())
        delta = float(delta_e_ciede2000(rgb_to_lab(np.array(wanted)), rgb_to_lab(np.array(got))))
        checks.append(HintCheck(wanted, got, delta, int(counts[i])))
    return checks


def hex_colour(rgb: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def format_hint_report(checks: list[HintCheck]) -> str:
    """The hint report as Markdown: one line per hint colour, ΔE and whether followed."""
    if not checks:
        return "**Hint report:** no colour hints painted, the colours are the model's choice."
    names = {value: name for name, value in PALETTE.items()}
    followed = sum(check.followed for check in checks)
    lines = [f"**Hint report:** {followed} of {len(checks)} hint colours followed "
             f"(CIEDE2000 ΔE ≤ {NOT_FOLLOWED_DELTA_E:.0f} between the colour you painted and "
             "the face's median colour there)."]
    for check in checks:
        wanted, got = hex_colour(check.wanted), hex_colour(check.got)
        verdict = "followed" if check.followed else "**not followed**"
        name = names.get(wanted, "hint")
        lines.append(f"- {swatch(wanted)} {name} `{wanted}` → {swatch(got)} `{got}`: "
                     f"ΔE {check.delta_e:.1f}, {verdict}")
    return "\n".join(lines)


def swatch(colour: str) -> str:
    return f'<span style="color:{colour};font-size:1.3em">■</span>'
