"""Neighbours the user controls: pinned ones always in the projection, dropped ones never.

`Selection` is the app's per-session value; `pipe(..., include=s.include, exclude=s.exclude)`
is what it means. Nothing here imports Gradio.
"""

from __future__ import annotations

from dataclasses import dataclass

# What clicking a neighbour in the gallery does.
DROP, PIN = "Drop it", "Pin it"
CLICK_MODES = (DROP, PIN)


@dataclass(frozen=True)
class Selection:
    """Bank indices pinned into (`include`) and dropped from (`exclude`) the neighbours."""

    include: tuple[int, ...] = ()
    exclude: tuple[int, ...] = ()

    def click(self, index: int, mode: str) -> Selection:
        """The selection after clicking neighbour `index` with `mode` (DROP or PIN).

        DROP drops it (unpinning it if it was pinned); PIN pins it, or unpins it when it
        already was.
        """
        if mode not in CLICK_MODES:
            raise ValueError(f"Clicking a neighbour must {' or '.join(CLICK_MODES)}, "
                             f"got {mode!r}.")
        index = int(index)
        include = tuple(i for i in self.include if i != index)
        exclude = tuple(i for i in self.exclude if i != index)
        if mode == DROP:
            return Selection(include, (*exclude, index))
        if index in self.include:
            return Selection(include, exclude)
        return Selection((*include, index), exclude)

    def describe(self) -> str:
        """One Markdown line: what is pinned and dropped, or how to pin and drop."""
        if not self.include and not self.exclude:
            return "No neighbours pinned or dropped: click one to drop or pin it."
        parts = []
        if self.include:
            parts.append("**Pinned:** " + ", ".join(f"#{i}" for i in self.include))
        if self.exclude:
            parts.append("**Dropped:** " + ", ".join(f"#{i}" for i in self.exclude))
        return " · ".join(parts)


def clicked_neighbor(shown: list[int] | None, position) -> int:
    """The bank index of the neighbour at gallery `position` among the `shown` indices."""
    shown = list(shown or [])
    if isinstance(position, bool) or not isinstance(position, int) \
            or not 0 <= position < len(shown):
        raise ValueError("That neighbour is no longer shown: generate a face, then click one "
                         "of its neighbours.")
    return int(shown[position])
