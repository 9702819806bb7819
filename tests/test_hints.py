"""Tests for s2a.hints: a painted hint layer -> the mask-aware hint tensor."""

import numpy as np
import pytest
import torch
from PIL import Image

from s2a.hints import hints_to_array, hints_to_tensor
from tests.helpers import textured_image
from training.simulate_hints import simulate_hints

# ---------------------------------------------------------------- hints_to_tensor


def test_hints_to_tensor_shape_and_dtype():
    layer = np.zeros((30, 50, 4), dtype=np.uint8)
    layer[5:10, 5:20] = (0, 255, 0, 255)
    t = hints_to_tensor(Image.fromarray(layer), 16)
    assert isinstance(t, torch.Tensor)
    assert t.shape == (4, 16, 16)
    assert t.dtype == torch.float32
    assert float(t.min()) >= 0.0 and float(t.max()) <= 1.0
    assert set(torch.unique(t[3]).tolist()) <= {0.0, 1.0}


def test_hints_to_array_matches_tensor():
    layer = np.asarray(simulate_hints(textured_image(), np.random.default_rng(1), n_strokes=6))
    arr = hints_to_array(layer, 24)
    assert arr.dtype == np.float32 and arr.shape == (4, 24, 24)
    np.testing.assert_array_equal(arr, hints_to_tensor(layer, 24).numpy())


def test_downsample_keeps_thin_stroke_undarkened():
    layer = np.zeros((512, 512, 4), dtype=np.uint8)  # (H, W, 4)
    layer[300:303, 40:470] = (255, 0, 0, 255)  # a 3 px red stroke
    t = hints_to_tensor(Image.fromarray(layer), 96)
    mask = t[3]
    # The stroke covers rows 300-302 of 512, i.e. output row 56 (300 * 96 / 512 = 56.25).
    row = 56
    cols = slice(8, 88)  # well inside the stroke's 40..470 -> 7.5..88.1
    assert (mask[row, cols] == 1).all()
    assert (t[0, row, cols] == 1).all() and (t[1:3, row, cols] == 0).all()
    # Everywhere the mask is set, the colour is pure red, never blended with the background.
    hinted = mask > 0
    assert (t[0][hinted] == 1).all() and (t[1:3][:, hinted] == 0).all()
    # Nothing leaks far from the stroke, and no colour where unhinted.
    assert mask.sum() <= 2 * 86
    assert (t[:3][:, ~hinted] == 0).all()


def test_downsample_averages_hinted_colours_only():
    layer = np.zeros((8, 8, 4), dtype=np.uint8)  # 2x2 output cells of 4x4 source pixels
    layer[0, 0] = (200, 0, 0, 255)
    layer[0, 1] = (0, 100, 50, 255)
    # The rest of the top-left cell is unhinted (and has junk RGB that must be ignored).
    layer[1:4, 0:4, :3] = 255
    a = hints_to_array(layer, 2)
    np.testing.assert_allclose(a[:3, 0, 0], np.array([100, 50, 25]) / 255, atol=1e-6)
    assert a[3, 0, 0] == 1
    assert a[3].sum() == 1
    assert not a[:3, 1, 1].any()


def test_unhinted_rgb_is_ignored():
    """A transparent pixel with colour (as a canvas eraser leaves) counts as unhinted."""
    layer = np.full((10, 10, 4), 255, dtype=np.uint8)
    layer[..., 3] = 0
    assert not hints_to_array(layer, 10).any()
    assert not hints_to_array(layer, 4).any()


def test_none_gives_zeros():
    t = hints_to_tensor(None, 12)
    assert t.shape == (4, 12, 12) and not t.any()


def test_upsample_is_nearest():
    layer = np.zeros((4, 4, 4), dtype=np.uint8)
    layer[1, 2] = (0, 0, 255, 255)
    layer[3, 0] = (10, 20, 30, 255)
    a = hints_to_array(layer, 8)
    expected_mask = np.zeros((8, 8), dtype=np.float32)
    expected_mask[2:4, 4:6] = 1
    expected_mask[6:8, 0:2] = 1
    np.testing.assert_array_equal(a[3], expected_mask)
    np.testing.assert_array_equal(
        a[:3, 2:4, 4:6], np.broadcast_to([[[0.0]], [[0.0]], [[1.0]]], (3, 2, 2))
    )
    np.testing.assert_allclose(a[:3, 7, 1], np.array([10, 20, 30]) / 255)


def test_non_square_is_stretched():
    layer = np.zeros((10, 40, 4), dtype=np.uint8)  # wide: shrinks in x, grows in y
    layer[:, :20] = (0, 255, 0, 255)  # the left half is hinted
    a = hints_to_array(layer, 20)
    assert (a[3, :, :10] == 1).all() and (a[3, :, 10:] == 0).all()
    assert (a[1, :, :10] == 1).all()


def test_identity_resolution_roundtrip():
    layer = np.asarray(simulate_hints(textured_image(), np.random.default_rng(2), n_strokes=8))
    a = hints_to_array(layer, 64)
    np.testing.assert_array_equal(a[3], layer[..., 3] > 0)
    np.testing.assert_allclose(a[:3], layer[..., :3].transpose(2, 0, 1) / 255, atol=1e-6)


@pytest.mark.parametrize(
    "bad",
    [
        Image.new("RGB", (8, 8)),  # no alpha: cannot tell hinted pixels
        Image.new("L", (8, 8)),
        np.zeros((8, 8), dtype=np.uint8),  # 2-D
        np.zeros((8, 8, 3), dtype=np.uint8),  # no alpha channel
        np.zeros((0, 8, 4), dtype=np.uint8),  # zero-size
        np.zeros((8, 0, 4), dtype=np.uint8),
        np.zeros((8, 8, 4), dtype=np.float32),  # not uint8
        "hints.png",
        [[0, 0, 0, 0]],
    ],
)
def test_bad_hints_raise_value_error(bad):
    with pytest.raises(ValueError):
        hints_to_tensor(bad, 16)


@pytest.mark.parametrize("resolution", [0, -4, 2.5, True, 100_000])
def test_bad_resolution_raises_value_error(resolution):
    with pytest.raises(ValueError):
        hints_to_array(None, resolution)


def test_rgba_modes_with_alpha_are_accepted():
    la = Image.new("LA", (6, 6), (128, 255))
    a = hints_to_array(la, 6)
    assert (a[3] == 1).all()
    np.testing.assert_allclose(a[0], 128 / 255)
