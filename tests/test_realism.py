"""The classifier two-sample test behind the realism score."""

import numpy as np
import pytest

from evaluation.realism import RealismConfig, two_sample_accuracy

FAST = RealismConfig(epochs=4, batch_size=32)


def faces(rng: np.random.Generator, count: int, brightness: float) -> np.ndarray:
    """(count, 32, 32, 3) uint8 noisy images around a given mean brightness."""
    noise = rng.normal(brightness, 30.0, size=(count, 32, 32, 3))
    return np.clip(noise, 0, 255).astype(np.uint8)


def test_obvious_fakes_are_caught():
    rng = np.random.default_rng(0)
    real, fake = faces(rng, 120, 170.0), faces(rng, 120, 60.0)
    assert two_sample_accuracy(real, fake, FAST) > 0.95


def test_same_distribution_is_near_chance():
    rng = np.random.default_rng(1)
    real, fake = faces(rng, 120, 128.0), faces(rng, 120, 128.0)
    assert abs(two_sample_accuracy(real, fake, FAST) - 0.5) < 0.15


def test_deterministic_for_a_seed():
    rng = np.random.default_rng(2)
    real, fake = faces(rng, 40, 140.0), faces(rng, 40, 120.0)
    assert two_sample_accuracy(real, fake, FAST) == two_sample_accuracy(real, fake, FAST)


def test_needs_paired_sets():
    rng = np.random.default_rng(3)
    with pytest.raises(ValueError):
        two_sample_accuracy(faces(rng, 10, 100.0), faces(rng, 9, 100.0))
