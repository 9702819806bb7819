"""A training term that keeps a face part's slider local (issue 15's locality).

With the per-part model a part's refine changes only what the synthesis traces inside that
part's window (`s2a.pipeline.Sketch2Anime.generate_parts`); the latent, and so every other
map, follows "rest". Yet the U-Net sees the whole face at its bottleneck, so a change in
an eye window repainted hair and cheeks too: only about a third of the change stayed in
the window (`evaluation.evaluate_parts`). This term synthesises each training item a second
time with one random part window traced at another refine, as that part's slider would,
and penalises how much the face changes outside that window.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from s2a.parts import PartWindow, window_mask


class PartWindowMasks:
    """Each window's feathered mask (where a part's refine acts, as `PartModel.refine_map`)
    and its hard mask (what `evaluate_parts` counts as inside), stacked (P, R, R)."""

    def __init__(self, windows: Mapping[str, PartWindow], resolution: int, feather: int):
        self.names = list(windows)
        self.soft = torch.stack([window_mask(w, resolution, feather) for w in windows.values()])
        self.hard = torch.stack([window_mask(w, resolution, 0) for w in windows.values()])

    def to(self, device: str | torch.device) -> PartWindowMasks:
        self.soft, self.hard = self.soft.to(device), self.hard.to(device)
        return self

    def moved_refine(self, refine: torch.Tensor, rng: np.random.Generator
                     ) -> tuple[torch.Tensor, torch.Tensor]:
        """(B,) per-item refines -> ((B, 1, R, R) refine map with one random window per
        item set to 1 - refine, the far end of that part's slider; (B, R, R) hard masks of
        the windows chosen)."""
        chosen = torch.from_numpy(rng.integers(0, len(self.names), len(refine)))
        chosen = chosen.to(self.soft.device)
        soft = self.soft[chosen]  # (B, R, R)
        base = refine.view(-1, 1, 1)
        moved = base * (1.0 - soft) + (1.0 - base) * soft
        return moved[:, None], self.hard[chosen]


def change_outside(base: torch.Tensor, changed: torch.Tensor, inside: torch.Tensor
                   ) -> torch.Tensor:
    """Mean |changed - base| over the pixels outside each item's window (and colours):
    (B, 3, R, R) faces, (B, R, R) hard window masks -> scalar."""
    outside = (1.0 - inside)[:, None]  # (B, 1, R, R)
    total = ((changed - base).abs() * outside).sum()
    return total / (outside.sum() * base.shape[1]).clamp_min(1.0)


def change_mismatch(base: torch.Tensor, changed: torch.Tensor, inside: torch.Tensor,
                    teacher_base: torch.Tensor, teacher_changed: torch.Tensor) -> torch.Tensor:
    """Mean |(changed - base) - inside x (teacher_changed - teacher_base)| over every pixel
    and colour: the change the teacher (the generator training started from) made inside
    the window, and none outside it. Penalising only the outside let the change inside
    shrink too, so a part's slider did less to its own part."""
    target = inside[:, None] * (teacher_changed - teacher_base)
    return (changed - base - target).abs().mean()
