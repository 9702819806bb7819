"""The frozen (TorchScript) networks compute what the eager ones do, and fall back to them."""

import logging

import numpy as np
import pytest
import torch

from s2a import Sketch2Anime, frozen
from s2a.frozen import FrozenNetworks
from s2a.models import SketchAutoencoder, SpatialGenerator, SpatialGeneratorConfig
from s2a.projection import LatentBank
from tests.helpers import TINY_LATENT, TINY_RESOLUTION, face_sketch, tiny_configs

R = TINY_RESOLUTION


def tiny_networks(traces_sketch: bool) -> tuple[SketchAutoencoder, SpatialGenerator]:
    torch.manual_seed(0)
    generator = SpatialGenerator(SpatialGeneratorConfig(
        resolution=R, latent_dim=TINY_LATENT, map_channels=(8, 16), channels=(8, 16),
        residual_blocks=1, traces_sketch=traces_sketch)).eval()
    with torch.no_grad():  # zero-started injections would hide the maps and hints
        for parameter in generator.inject.parameters():
            parameter.normal_(0.0, 0.2)
    return SketchAutoencoder(tiny_configs()["autoencoder"]).eval(), generator


def inputs(batch: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    latent = torch.randn(batch, TINY_LATENT, generator=g)
    hints = torch.rand(batch, 4, R, R, generator=g)
    sketch = torch.rand(batch, 1, R, R, generator=g)
    return latent, hints, sketch


@pytest.mark.parametrize("traces_sketch", [True, False])
@pytest.mark.parametrize("batch", [1, 3])
@torch.no_grad()
def test_frozen_networks_compute_what_the_eager_ones_do(traces_sketch, batch):
    autoencoder, generator = tiny_networks(traces_sketch)
    networks = FrozenNetworks(autoencoder, generator)
    latent, hints, sketch = inputs(batch)
    for refine in (0.0, 0.3, 1.0):
        torch.testing.assert_close(networks.face(latent, hints, sketch, refine),
                                   generator(latent, hints, sketch, refine))
    maps = generator.feature_maps(latent)
    maps[0] = sketch  # what the per-part path does: its own sketch to trace
    torch.testing.assert_close(networks.synthesise(maps, hints), generator.synthesise(maps, hints))
    torch.testing.assert_close(networks.encode(sketch), autoencoder.encode(sketch))
    torch.testing.assert_close(networks.decode(latent), autoencoder.decode(latent))
    # The inputs matter: a frozen graph is not a constant of its example inputs.
    other_latent, other_hints, other_sketch = inputs(batch, seed=1)
    assert not torch.allclose(networks.face(other_latent, other_hints, other_sketch, 0.3),
                              networks.face(latent, hints, sketch, 0.3))


@torch.no_grad()
def test_a_network_that_fails_to_freeze_runs_eagerly(monkeypatch, caplog):
    autoencoder, generator = tiny_networks(True)

    def broken(module, example):
        raise RuntimeError("tracing is broken here")

    monkeypatch.setattr(frozen, "_freeze", broken)
    networks = FrozenNetworks(autoencoder, generator)
    latent, hints, sketch = inputs(2)
    with caplog.at_level(logging.WARNING, logger="s2a.frozen"):
        face = networks.face(latent, hints, sketch, 0.5)
        decoded = networks.decode(latent)
    torch.testing.assert_close(face, generator(latent, hints, sketch, 0.5))
    torch.testing.assert_close(decoded, autoencoder.decode(latent))
    assert "Could not freeze the face network" in caplog.text
    assert "tracing is broken here" in caplog.text


def test_a_frozen_pipeline_draws_the_eager_face():
    autoencoder, generator = tiny_networks(True)
    bank = LatentBank(np.random.default_rng(0).standard_normal((30, TINY_LATENT)))
    pipe = Sketch2Anime(autoencoder, generator, bank, freeze=True)
    sketch = face_sketch()
    fast = pipe(sketch, refine=0.5, upscale=False)
    assert pipe.frozen() is not None
    pipe.freeze = False
    assert pipe.frozen() is None
    slow = pipe(sketch, refine=0.5, upscale=False)
    for a, b in ((fast.image, slow.image), (fast.projected_sketch, slow.projected_sketch)):
        assert np.abs(np.asarray(a, np.int16) - np.asarray(b, np.int16)).max() <= 1
    assert [i for i, _ in fast.neighbors] == [i for i, _ in slow.neighbors]
    np.testing.assert_allclose([w for _, w in fast.neighbors], [w for _, w in slow.neighbors],
                               atol=1e-5)


def test_only_a_spatial_generator_on_the_cpu_is_frozen(whole_pipe):
    # `whole_pipe` comes from from_pretrained (freeze on) but has a vector generator.
    assert whole_pipe.freeze and whole_pipe.frozen() is None
    autoencoder, generator = tiny_networks(True)
    bank = LatentBank(np.random.default_rng(0).standard_normal((30, TINY_LATENT)))
    assert Sketch2Anime(autoencoder, generator, bank).frozen() is None  # freeze is opt-in


def test_frozen_networks_serve_calls_from_several_threads():
    """The app runs two model slots at once: the first calls race to build the graphs."""
    from concurrent.futures import ThreadPoolExecutor

    autoencoder, generator = tiny_networks(True)
    networks = FrozenNetworks(autoencoder, generator)
    batches = [inputs(1, seed) for seed in range(8)]
    with torch.no_grad():
        expected = [generator(*batch, 0.5) for batch in batches]
        with ThreadPoolExecutor(4) as pool:
            got = list(pool.map(lambda batch: networks.face(*batch, 0.5), batches))
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b)
