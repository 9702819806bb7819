"""training.locality: the term that keeps a face part's slider inside its window."""

import json

import numpy as np
import pytest
import torch

from s2a.models import SpatialGenerator, SpatialGeneratorConfig
from s2a.parts import WINDOWED_PARTS, PartWindow, read_part_windows, scaled_windows
from tests.helpers import TINY_LATENT, TINY_RESOLUTION
from training.locality import PartWindowMasks, change_mismatch, change_outside

R = TINY_RESOLUTION


def masks() -> PartWindowMasks:
    return PartWindowMasks(scaled_windows(R), R, feather=1)


def test_moved_refine_flips_one_window_and_keeps_the_rest():
    refine = torch.tensor([0.0, 1.0, 0.25])
    moved, inside = masks().moved_refine(refine, np.random.default_rng(0))
    assert moved.shape == (3, 1, R, R) and inside.shape == (3, R, R)
    for item, value in enumerate(refine.tolist()):
        window = inside[item].bool()
        # Exactly one part's square, the model's refine everywhere else.
        assert int(window.sum()) in {w.size ** 2 for w in scaled_windows(R).values()}
        assert torch.allclose(moved[item, 0][~window], torch.tensor(value))
        rows, cols = torch.nonzero(window, as_tuple=True)
        centre = moved[item, 0, rows.float().mean().round().long(),
                       cols.float().mean().round().long()]
        assert centre == pytest.approx(1.0 - value)  # the far end of that part's slider


def test_change_outside_counts_only_pixels_outside_the_window():
    base = torch.zeros(1, 3, 8, 8)
    inside = torch.zeros(1, 8, 8)
    inside[0, 2:4, 2:4] = 1.0
    changed = base.clone()
    changed[0, :, 2:4, 2:4] = 1.0  # all inside: nothing to penalise
    assert change_outside(base, changed, inside) == 0.0
    changed[0, 0, 7, 7] = 0.6  # one channel of one pixel outside
    assert change_outside(base, changed, inside).item() == pytest.approx(0.6 / (60 * 3))


def test_change_mismatch_wants_the_teachers_change_inside_and_none_outside():
    base, inside = torch.zeros(1, 3, 8, 8), torch.zeros(1, 8, 8)
    inside[0, 2:4, 2:4] = 1.0
    teacher_base, teacher_changed = torch.zeros(1, 3, 8, 8), torch.full((1, 3, 8, 8), 0.5)
    taught = base + inside[:, None] * 0.5  # the teacher's change, inside only
    assert change_mismatch(base, taught, inside, teacher_base, teacher_changed) == 0.0
    # No change at all misses the teacher's change inside (4 pixels x 3 colours x 0.5).
    assert change_mismatch(base, base, inside, teacher_base, teacher_changed).item() == \
        pytest.approx(4 * 3 * 0.5 / (64 * 3))
    # Copying the teacher's change everywhere is penalised outside (60 pixels).
    assert change_mismatch(base, teacher_changed, inside, teacher_base, teacher_changed) \
        .item() == pytest.approx(60 * 3 * 0.5 / (64 * 3))


def test_the_term_teaches_a_generator_to_keep_a_part_change_local():
    torch.manual_seed(0)
    config = SpatialGeneratorConfig(resolution=R, latent_dim=TINY_LATENT, map_channels=(8, 16),
                                    channels=(8, 16), residual_blocks=1, traces_sketch=True)
    generator = SpatialGenerator(config)
    # Zero-started inputs would hide the sketch from the synthesis: give them weight.
    for conv in generator.inject.values():
        torch.nn.init.normal_(conv.weight, std=0.3)
    latent, hints = torch.randn(4, TINY_LATENT), torch.zeros(4, 4, R, R)
    sketch = (torch.rand(4, 1, R, R) > 0.2).float()
    refine = torch.tensor([0.0, 1.0, 0.0, 1.0])
    window_masks = masks()
    moved, inside = window_masks.moved_refine(refine, np.random.default_rng(1))

    def outside_change() -> torch.Tensor:
        base = generator(latent, hints, sketch, refine)
        return change_outside(base, generator(latent, hints, sketch, moved), inside)

    before = outside_change().item()
    assert before > 0  # an untrained U-Net spreads a window's change over the face
    optimiser = torch.optim.Adam(generator.parameters(), lr=1e-3)
    for _ in range(30):
        optimiser.zero_grad()
        outside_change().backward()
        optimiser.step()
    assert outside_change().item() < 0.5 * before


def test_read_part_windows_reads_a_part_model_folder(tmp_path):
    windows = scaled_windows(R)
    meta = {"resolution": R, "feather": 2,
            "windows": {n: [w.top, w.left, w.size] for n, w in windows.items()}}
    (tmp_path / "parts.json").write_text(json.dumps(meta))
    read, feather, _ = read_part_windows(tmp_path)
    assert feather == 2 and list(read) == list(WINDOWED_PARTS)
    assert read["mouth"] == PartWindow(*meta["windows"]["mouth"])
    with pytest.raises(ValueError, match="parts.json"):
        read_part_windows(tmp_path / "missing")
