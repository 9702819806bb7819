"""The networks of a live call frozen with TorchScript, for CPU inference.

Traced and frozen (`torch.jit.freeze`: weights become constants, convolutions fused with
what follows them), the spatial generator's whole-face path (feature maps, tracing the
drawing, synthesis: one graph) runs about 15 % faster at batch 1 on the 2-core CPU and
the autoencoder's decoder and encoder about as much (A/B interleaved, 150 rounds; `python -m
tools.bench` times a call both ways). A frozen copy holds its own weights, so it is built
only from weights that no longer change (`Sketch2Anime.from_pretrained`), and the eager
modules stay the fallback: a failed trace is logged, never fatal.
"""

from __future__ import annotations

import logging
import threading
import warnings

import torch

from s2a.models import SketchAutoencoder, SpatialGenerator, traced

logger = logging.getLogger(__name__)


class _Face(torch.nn.Module):
    """The whole-face path: latent, hints, drawn sketch and refine (B,) -> face."""

    def __init__(self, generator: SpatialGenerator):
        super().__init__()
        self.generator = generator

    def forward(self, latent, hints, sketch, refine):
        maps = self.generator.feature_maps(latent)
        if self.generator.config.traces_sketch:
            maps = traced(maps, sketch, refine)
        return self.generator.synthesise(maps, hints)


class _Synthesis(torch.nn.Module):
    """`synthesise` with its maps as positional tensors (tracing takes no dicts)."""

    def __init__(self, generator: SpatialGenerator, keys: tuple[int, ...]):
        super().__init__()
        self.generator = generator
        self.keys = keys

    def forward(self, hints, *maps):
        return self.generator.synthesise(dict(zip(self.keys, maps)), hints)


class _Decode(torch.nn.Module):
    def __init__(self, autoencoder: SketchAutoencoder):
        super().__init__()
        self.autoencoder = autoencoder

    def forward(self, latent):
        return self.autoencoder.decode(latent)


class _Encode(_Decode):
    def forward(self, sketch):
        return self.autoencoder.encode(sketch)


def _freeze(module: torch.nn.Module, example: tuple) -> torch.jit.ScriptModule:
    with warnings.catch_warnings():  # the tracer's notes on shapes it takes as constants
        warnings.simplefilter("ignore")
        # check_trace would trace a second time (1.3 s on the CPU); the tests compare
        # the frozen networks with the eager ones instead.
        frozen = torch.jit.freeze(torch.jit.trace(module.eval(), example, check_trace=False))
    for _ in range(2):  # the profiling executor optimises on the second call
        frozen(*example)
    return frozen


class FrozenNetworks:
    """Frozen copies of a spatial generator's paths and an autoencoder's decoder; each
    method takes and returns what its eager counterpart does (within float error). Each
    graph is traced on its first use (0.1-0.3 s), so a whole-face app never pays for the
    per-part one; a graph that fails to trace is logged and its eager module runs."""

    def __init__(self, autoencoder: SketchAutoencoder, generator: SpatialGenerator):
        self._autoencoder, self._generator = autoencoder, generator
        self._keys = tuple(generator.map_sizes) + (0,)  # the keys of `feature_maps`
        self._synthesis = _Synthesis(generator, self._keys)  # traced, or run eagerly
        self._graphs: dict[str, torch.jit.ScriptModule | None] = {}  # None: eager
        self._lock = threading.Lock()

    def _graph(self, name: str) -> torch.jit.ScriptModule | None:
        if name not in self._graphs:
            with self._lock:
                if name not in self._graphs:
                    try:
                        self._graphs[name] = self._build(name)
                    except Exception as error:  # noqa: BLE001 - the eager module works
                        logger.warning("Could not freeze the %s network (%s: %s); running "
                                       "it eagerly.", name, type(error).__name__, error)
                        self._graphs[name] = None
        return self._graphs[name]

    @torch.no_grad()
    def _build(self, name: str) -> torch.jit.ScriptModule:
        generator = self._generator
        device = next(generator.parameters()).device
        r, d = generator.config.resolution, generator.config.latent_dim
        latent = torch.zeros(1, d, device=device)
        hints = torch.zeros(1, 4, r, r, device=device)
        if name == "face":
            sketch = torch.ones(1, 1, r, r, device=device)
            return _freeze(_Face(generator), (latent, hints, sketch, torch.ones(1, device=device)))
        if name == "synthesis":
            maps = generator.feature_maps(latent)
            return _freeze(self._synthesis, (hints, *(maps[key] for key in self._keys)))
        if name == "encode":
            return _freeze(_Encode(self._autoencoder), (torch.ones(1, 1, r, r, device=device),))
        return _freeze(_Decode(self._autoencoder), (latent,))

    def _run(self, name: str, eager, *inputs: torch.Tensor) -> torch.Tensor:
        graph = self._graph(name)
        return eager(*inputs) if graph is None else graph(*inputs)

    def face(self, latent: torch.Tensor, hints: torch.Tensor, sketch: torch.Tensor,
             refine: float) -> torch.Tensor:
        """`SpatialGenerator.forward(latent, hints, sketch, refine)`."""
        refine = torch.full((len(latent),), float(refine), device=latent.device)
        return self._run("face", self._generator, latent, hints, sketch, refine)

    def synthesise(self, maps: dict[int, torch.Tensor], hints: torch.Tensor) -> torch.Tensor:
        """`SpatialGenerator.synthesise(maps, hints)`."""
        return self._run("synthesis", self._synthesis, hints,
                         *(maps[key] for key in self._keys))

    def encode(self, sketch: torch.Tensor) -> torch.Tensor:
        """`SketchAutoencoder.encode(sketch)`."""
        return self._run("encode", self._autoencoder.encode, sketch)

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        """`SketchAutoencoder.decode(latent)`."""
        return self._run("decode", self._autoencoder.decode, latent)
