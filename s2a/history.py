"""The strip of earlier results: every generated face with what made it, newest first.

Entries live in the user's session only (the app keeps them in a `gr.State`), as PNG
bytes so a dozen of them stay small; nothing is written to disk here. Nothing here
imports Gradio.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image

from s2a.selection import Selection

HISTORY_LENGTH = 12  # entries kept; older ones fall off the end
THUMBNAIL = 96  # px, the faces in the strip


PNG_MODES = {"1", "L", "LA", "I", "I;16", "P", "RGB", "RGBA"}


def png_bytes(image: Image.Image) -> bytes:
    """`image` as PNG bytes (fast compression: entries are made per click).

    Modes PNG can't hold (CMYK, YCbCr, LAB, HSV, from uploaded JPEGs) are stored as RGB.
    """
    if image.mode not in PNG_MODES:
        image = image.convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def from_png(data: bytes | None) -> Image.Image | None:
    """The image stored by `png_bytes`, or None."""
    if data is None:
        return None
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return image.copy()


@dataclass(frozen=True)
class Entry:
    """One generated face and everything needed to get back to it."""

    sketch: bytes  # PNG of the sketch as drawn
    hints: bytes | None  # PNG of the painted RGBA hint layer, None without hints
    refine: float
    k: int
    seed: int
    selection: Selection
    face: bytes  # PNG of the face as shown
    projected: bytes  # PNG of the projected sketch as shown
    neighbors: tuple[tuple[int, float], ...]  # (bank index, weight)
    report: str  # the hint report (Markdown)

    @classmethod
    def make(cls, sketch: Image.Image, hints: Image.Image | None, refine: float, k: int,
             seed: int, selection: Selection, face: Image.Image, projected: Image.Image,
             neighbors, report: str) -> Entry:
        return cls(png_bytes(sketch), None if hints is None else png_bytes(hints),
                   float(refine), int(k), int(seed), selection, png_bytes(face),
                   png_bytes(projected), tuple((int(i), float(w)) for i, w in neighbors),
                   report)

    def caption(self) -> str:
        """A short line of the settings, shown under the face in the strip."""
        text = f"refine {self.refine:g} · k {self.k} · seed {self.seed}"
        if self.selection.include:
            text += f" · {len(self.selection.include)} pinned"
        if self.selection.exclude:
            text += f" · {len(self.selection.exclude)} dropped"
        return text


def remember(history, entry: Entry) -> tuple[Entry, ...]:
    """The history with `entry` first, at most HISTORY_LENGTH entries."""
    return (entry, *tuple(history or ()))[:HISTORY_LENGTH]


def thumbnails(history) -> list[tuple[Image.Image, str]]:
    """(small face, caption) per entry, newest first: the strip's gallery value."""
    return [(from_png(entry.face).resize((THUMBNAIL, THUMBNAIL), Image.LANCZOS),
             entry.caption()) for entry in history or ()]


def pick(history, position) -> Entry:
    """The entry at strip `position`; ValueError when there is none."""
    history = tuple(history or ())
    if isinstance(position, bool) or not isinstance(position, int) \
            or not 0 <= position < len(history):
        raise ValueError("That result is no longer in the history: pick one of the faces "
                         "shown in the strip.")
    return history[position]
