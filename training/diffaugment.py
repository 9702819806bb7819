"""DiffAugment (Zhao et al. 2020): the same differentiable augmentation on everything the
discriminator sees, real and generated, so a small dataset does not let D memorise faces.

Images are (B, 3, R, R) in [0, 1]; hints (B, 4, R, R) move with their image (translation)
but keep their colours, since they are the condition D judges the face against.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

POLICIES = ("colour", "translation")


def _colour(image: torch.Tensor) -> torch.Tensor:
    b = image.shape[0]
    rand = lambda: torch.rand(b, 1, 1, 1, device=image.device, dtype=image.dtype)  # noqa: E731
    image = image + (rand() - 0.5) * 0.5  # brightness
    mean = image.mean(dim=1, keepdim=True)
    image = (image - mean) * (rand() * 2.0) + mean  # saturation
    mean = image.mean(dim=(1, 2, 3), keepdim=True)
    return (image - mean) * (rand() + 0.5) + mean  # contrast


def _translate(image: torch.Tensor, hints: torch.Tensor, ratio: float = 0.125
               ) -> tuple[torch.Tensor, torch.Tensor]:
    # Shift each item by up to `ratio` of its size; what comes in is empty (0).
    b, _, h, w = image.shape
    limit_y, limit_x = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = torch.randint(-limit_y, limit_y + 1, (b,), device=image.device)
    dx = torch.randint(-limit_x, limit_x + 1, (b,), device=image.device)
    both = torch.cat([image, hints], dim=1)
    padded = F.pad(both, (limit_x, limit_x, limit_y, limit_y))
    rows = (torch.arange(h, device=image.device)[None, :] - dy[:, None] + limit_y)  # (B, h)
    cols = (torch.arange(w, device=image.device)[None, :] - dx[:, None] + limit_x)  # (B, w)
    batch = torch.arange(b, device=image.device)[:, None, None]
    moved = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]
    moved = moved.permute(0, 3, 1, 2)
    return moved[:, :3], moved[:, 3:]


def diff_augment(image: torch.Tensor, hints: torch.Tensor, policies: tuple[str, ...]
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Augment a batch of (image, hints) pairs, each item independently."""
    unknown = set(policies) - set(POLICIES)
    if unknown:
        raise ValueError(f"Unknown DiffAugment policies {sorted(unknown)}; known: {POLICIES}.")
    if "colour" in policies:
        image = _colour(image)
    if "translation" in policies:
        image, hints = _translate(image, hints)
    return image, hints
