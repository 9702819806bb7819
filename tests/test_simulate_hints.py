"""Tests for training.simulate_hints: the colour strokes simulated on training faces."""

import numpy as np
import pytest
from PIL import Image

from tests.helpers import BLUE, RED, alpha_of, textured_image, two_colour_image
from training.simulate_hints import simulate_hints

# ---------------------------------------------------------------- simulate_hints


def test_simulate_hints_mode_and_size():
    img = Image.new("RGB", (40, 30), (10, 200, 30))
    hints = simulate_hints(img, np.random.default_rng(0), n_strokes=3)
    assert hints.mode == "RGBA"
    assert hints.size == img.size


def test_simulate_hints_accepts_array():
    hints = simulate_hints(two_colour_image(32), np.random.default_rng(0), n_strokes=2)
    assert hints.mode == "RGBA"
    assert hints.size == (32, 32)


def test_simulate_hints_deterministic_for_same_seed():
    img = textured_image()
    a = np.asarray(simulate_hints(img, np.random.default_rng(7)))
    b = np.asarray(simulate_hints(img, np.random.default_rng(7)))
    np.testing.assert_array_equal(a, b)
    # ...and a different seed gives different hints (the seed is actually used).
    others = [np.asarray(simulate_hints(img, np.random.default_rng(s))) for s in range(8, 12)]
    assert any(not np.array_equal(a, o) for o in others)


def test_simulate_hints_zero_strokes_is_empty():
    hints = simulate_hints(textured_image(), np.random.default_rng(0), n_strokes=0)
    assert not np.asarray(hints).any()


@pytest.mark.parametrize("seed", range(5))
def test_simulate_hints_five_strokes_paint_something(seed):
    hints = np.asarray(simulate_hints(textured_image(), np.random.default_rng(seed), n_strokes=5))
    alpha = hints[..., 3]
    assert set(np.unique(alpha)) == {0, 255}
    # Unhinted pixels carry no colour.
    assert not hints[alpha == 0, :3].any()


def test_simulate_hints_more_strokes_cover_more():
    img = textured_image()
    covered = {
        n: np.mean(
            [
                (alpha_of(simulate_hints(img, np.random.default_rng(s), n_strokes=n)) > 0).mean()
                for s in range(20)
            ]
        )
        for n in (1, 5, 20)
    }
    assert 0 < covered[1] < covered[5] < covered[20]


@pytest.mark.parametrize("seed", range(20))
def test_simulate_hints_colour_is_the_colour_under_the_stroke(seed):
    img = two_colour_image()
    hints = np.asarray(simulate_hints(img, np.random.default_rng(seed), n_strokes=10))
    hinted = hints[hints[..., 3] > 0, :3]  # (N, 3)
    assert len(hinted) > 0
    is_red = (hinted == RED).all(axis=1)
    is_blue = (hinted == BLUE).all(axis=1)
    assert (is_red | is_blue).all(), "a stroke's colour must be a colour under it, not a mix"


def test_simulate_hints_colour_is_never_a_channel_mix():
    """On fine red/green/blue stripes every stroke covers all three colours with no
    majority; a per-channel median would give black, the stroke must still be one of them."""
    img = np.zeros((48, 48, 3), dtype=np.uint8)  # (H, W, 3)
    for c in range(3):
        img[:, c::3, c] = 255
    for seed in range(10):
        hints = np.asarray(simulate_hints(img, np.random.default_rng(seed), n_strokes=5))
        hinted = hints[hints[..., 3] > 0, :3]  # (N, 3)
        assert len(hinted) > 0
        assert ((hinted == 255).sum(axis=1) == 1).all()
        assert ((hinted == 0).sum(axis=1) == 2).all()


@pytest.mark.parametrize("p_background", [0.0, 0.3, 1.0])
def test_simulate_hints_flat_strokes(p_background):
    """Each stroke is one flat colour, and with n_strokes=1 exactly one stroke is drawn
    (a background stroke counts toward n), so the layer holds exactly one colour."""
    img = textured_image(seed=3)
    for seed in range(10):
        rng = np.random.default_rng(seed)
        hints = np.asarray(simulate_hints(img, rng, n_strokes=1, p_background=p_background))
        colours = np.unique(hints[hints[..., 3] > 0, :3], axis=0)
        assert len(colours) == 1


@pytest.mark.parametrize("shape", [(1, 1), (3, 7), (7, 3), (200, 50)])
def test_simulate_hints_odd_sizes(shape):
    img = np.random.default_rng(0).integers(0, 256, (*shape, 3), dtype=np.uint8)
    hints = simulate_hints(img, np.random.default_rng(0), n_strokes=4)
    assert hints.size == (shape[1], shape[0])
    assert alpha_of(hints).any()


def _framed_image(size: int = 96, border: int = 8, seed: int = 0) -> np.ndarray:
    """A flat red interior inside a noisy green frame (a busy background)."""
    rng = np.random.default_rng(seed)
    img = np.zeros((size, size, 3), dtype=np.uint8)  # (H, W, 3)
    img[..., 1] = rng.integers(100, 220, (size, size))
    img[border:-border, border:-border] = (200, 40, 40)
    return img


def _has_frame_colour(hints: Image.Image) -> bool:
    rgba = np.asarray(hints)
    hinted = rgba[rgba[..., 3] > 0, :3]  # (N, 3)
    return bool(((hinted[:, 0] == 0) & (hinted[:, 1] > 0)).any())


def test_simulate_hints_random_count_statistics():
    img = _framed_image()
    samples = [simulate_hints(img, np.random.default_rng(seed)) for seed in range(200)]
    empty = sum(not alpha_of(h).any() for h in samples)
    assert 8 <= empty <= 34  # p_none=0.1: 20 expected
    counts = [alpha_of(h).astype(bool).mean() for h in samples if alpha_of(h).any()]
    assert np.median(counts) > 0.02  # typical samples carry several strokes

    # Strokes avoid the noisy frame, so frame-coloured hints are (almost all) background
    # strokes: about 0.9 * 0.3 of the samples, far fewer with p_background=0.
    with_background = sum(_has_frame_colour(h) for h in samples)
    without = sum(
        _has_frame_colour(simulate_hints(img, np.random.default_rng(seed), p_background=0.0))
        for seed in range(200)
    )
    assert with_background >= 30
    assert without < with_background / 2


def test_background_strokes_hug_the_border():
    size = 96
    img = textured_image(size)
    for seed in range(30):
        rng = np.random.default_rng(seed)
        # With p_background=1 and one stroke, that stroke is a background stroke.
        alpha = alpha_of(simulate_hints(img, rng, n_strokes=1, p_background=1.0))
        ys, xs = np.nonzero(alpha)
        assert len(ys) > 0
        to_edge = np.minimum.reduce([ys, xs, size - 1 - ys, size - 1 - xs])
        assert to_edge.max() <= 0.16 * size
        extent = max(np.ptp(ys), np.ptp(xs))
        assert extent >= 0.1 * size  # a stroke along the edge, not a dot


def test_simulate_hints_always_paints_when_not_empty():
    img = textured_image(48)
    for seed in range(50):
        hints = simulate_hints(img, np.random.default_rng(seed), p_none=0.0, p_background=0.0)
        assert alpha_of(hints).any()


def test_simulate_hints_rejects_bad_input():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError):
        simulate_hints(np.zeros((8, 8), dtype=np.uint8), rng)
    with pytest.raises(ValueError):
        simulate_hints(np.zeros((0, 8, 3), dtype=np.uint8), rng)
    with pytest.raises(ValueError):
        simulate_hints("face.png", rng)
    with pytest.raises(ValueError):
        simulate_hints(two_colour_image(16), 0)
    with pytest.raises(ValueError):
        simulate_hints(two_colour_image(16), rng, n_strokes=-1)
    with pytest.raises(ValueError):
        simulate_hints(two_colour_image(16), rng, p_none=1.5)
