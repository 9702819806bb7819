"""Where each face part looks for its neighbours: the whole face's decoded map, cropped.

A part's own small latent ranks the training parts worse than the whole-face neighbour
cropped to the part's window (degraded val, left eye: 0.32 against 0.41 edge F1): a
broken eye alone says little about which eye was meant, the face around it says more.
The key of a part is therefore read from the whole-face latent: the stage-1 decoder's
feature map at 24 px (96 px models; two up-blocks), cropped to the part's window, and
projected onto its leading principal directions (fitted once on the bank; not centred,
so cosine ranking still sees how much is drawn there). The CANDIDATES nearest keys are
then ranked by key cosine + ``own_weight`` x the cosine of the part's own latent to theirs,
so the neighbours fit the drawn part as well as its face: with keys alone, faces from rough
drawings lost 0.01-0.02 edge F1 (val, 400 items); with ``own_weight`` 4 they keep v1.4's
closeness and realism. Each part keeps its own bank and projection (eyes onto eyes): only
the search for its neighbours moves here.

On disk, per windowed part, ``<part>/keys/``: ``bank/`` (a `s2a.projection.LatentBank`
of the training sketches' keys, in the bank's row order) and ``projection.safetensors``
(``directions``: (features, dims)); the decoder depth is ``keys.json``'s ``level``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from safetensors.numpy import load_file, save_file

from s2a.models import SketchAutoencoder

if TYPE_CHECKING:  # s2a.projection imports faiss, which training machines may lack
    from s2a.parts import PartWindow
    from s2a.projection import LatentBank

KEYS_DIR = "keys"
KEYS_FILE = "keys.json"
PROJECTION_FILE = "projection.safetensors"
# Decoder up-blocks before the crop: 24 px at 96 px. Measured on 300 degraded val items
# (left eye / right eye / nose / mouth, edge F1 1 px): 12 px 0.405 / 0.408 / 0.216 / 0.357,
# 24 px 0.428 / 0.431 / 0.227 / 0.370; the whole-face neighbour cropped 0.405 / 0.404 /
# 0.167 / 0.322.
DEFAULT_LEVEL = 2
# Principal directions kept: 32 ranked as well as all 2,048 features (within 0.01) and
# keeps the four key banks at 1 MB each.
DEFAULT_DIMS = 32
# Nearest keys re-ranked with the part's own latent, and that latent's weight (measured,
# see the module docstring; 2-8 gave the same neighbours within 0.01 edge F1).
CANDIDATES = 100
DEFAULT_OWN_WEIGHT = 4.0
FIT_SAMPLE = 8000  # bank rows the directions are fitted on
CHUNK = 2048  # latents decoded at a time (a 24 px map is 74 KB a latent)


def window_features(maps: torch.Tensor, window: PartWindow, resolution: int) -> torch.Tensor:
    """(B, C, s, s) decoder maps -> (B, C * w * w) the window's cells, flattened."""
    scale = maps.shape[-1] / resolution
    top, left = round(window.top * scale), round(window.left * scale)
    size = max(1, round(window.size * scale))
    return maps[:, :, top:top + size, left:left + size].flatten(1)


class PartKeys:
    """Per windowed part: principal directions and a bank of the training sketches' keys."""

    def __init__(self, directions: Mapping[str, np.ndarray], banks: Mapping[str, LatentBank],
                 level: int = DEFAULT_LEVEL, own_weight: float = DEFAULT_OWN_WEIGHT):
        if set(directions) != set(banks):
            raise ValueError(f"Part keys have directions for {sorted(directions)} but banks "
                             f"for {sorted(banks)}.")
        for name, matrix in directions.items():
            if matrix.ndim != 2 or matrix.shape[1] != banks[name].dim:
                raise ValueError(f"The {name} key directions {matrix.shape} do not fit its "
                                 f"{banks[name].dim}-d key bank.")
        self.directions = {n: torch.from_numpy(np.asarray(m, np.float32))
                           for n, m in directions.items()}
        self.banks = dict(banks)
        self.level = int(level)
        if not (np.isfinite(own_weight) and own_weight >= 0):
            raise ValueError(f"own_weight must be a finite number >= 0, got {own_weight}.")
        self.own_weight = float(own_weight)

    def __len__(self) -> int:
        return len(next(iter(self.banks.values())))

    @torch.no_grad()
    def keys(self, autoencoder: SketchAutoencoder, latents: torch.Tensor,
             windows: Mapping[str, PartWindow]) -> dict[str, np.ndarray]:
        """(B, d) whole-face latents -> {part: (B, dims) keys}."""
        maps = autoencoder.decoder_map(latents, self.level)
        resolution = autoencoder.config.resolution
        out = {}
        for name, directions in self.directions.items():
            features = window_features(maps, windows[name], resolution)
            if features.shape[1] != directions.shape[0]:
                raise ValueError(f"The {name} key directions expect {directions.shape[0]} "
                                 f"features, the window gives {features.shape[1]}: keys made "
                                 "for other windows or another autoencoder.")
            out[name] = (features.cpu() @ directions).numpy()
        return out

    def neighbors(self, autoencoder: SketchAutoencoder, latents: torch.Tensor,
                  windows: Mapping[str, PartWindow], k: int, include=(), exclude=(),
                  own: Mapping[str, np.ndarray] | None = None,
                  part_banks: Mapping[str, LatentBank] | None = None
                  ) -> dict[str, np.ndarray]:
        """{part: (B, k) bank rows}, best first, with pins and drops. With the parts' own
        latents {part: (B, d_part)} and their banks, the CANDIDATES nearest keys are
        re-ranked with the own latent (``own_weight``); without, by the keys alone."""
        found = {}
        for name, key in self.keys(autoencoder, latents, windows).items():
            bank = self.banks[name]
            if own is None or part_banks is None or self.own_weight == 0:
                found[name] = bank.select(key, k, include, exclude)
                continue
            rows = bank.select(key, max(k, CANDIDATES), include, exclude)  # (B, M)
            score = _cosines(key, bank.latents[rows]) + self.own_weight * _cosines(
                own[name], part_banks[name].latents[rows])  # (B, M)
            found[name] = _best_rows(rows, score, min(k, rows.shape[1]), include)
        return found

    @classmethod
    def fit(cls, autoencoder: SketchAutoencoder, bank_latents: np.ndarray,
            windows: Mapping[str, PartWindow], dims: int = DEFAULT_DIMS,
            level: int = DEFAULT_LEVEL, seed: int = 0,
            own_weight: float = DEFAULT_OWN_WEIGHT) -> PartKeys:
        """Keys for every row of the whole-face bank (N, d): directions fitted on a seeded
        sample of FIT_SAMPLE rows, int8 cosine key banks in the same row order."""
        from s2a.projection import LatentBank

        features = {name: [] for name in windows}
        resolution = autoencoder.config.resolution
        for start in range(0, len(bank_latents), CHUNK):
            chunk = torch.from_numpy(np.array(bank_latents[start:start + CHUNK], np.float32))
            with torch.no_grad():
                maps = autoencoder.decoder_map(chunk, level)
            for name, window in windows.items():
                features[name].append(window_features(maps, window, resolution).half())
        rng = np.random.default_rng(seed)
        directions, banks = {}, {}
        for name, chunks in features.items():
            values = torch.cat(chunks).float()  # (N, F)
            sample = values[torch.from_numpy(rng.permutation(len(values))[:FIT_SAMPLE])]
            centred = sample - sample.mean(0, keepdim=True)
            rank = min(dims, *centred.shape)
            # The leading right singular vectors of the centred sample: (F, dims).
            _, _, v = torch.linalg.svd(centred, full_matrices=False)
            directions[name] = v[:rank].T.contiguous().numpy()
            keys = (values @ torch.from_numpy(directions[name])).numpy()
            banks[name] = LatentBank(keys, "flat", storage="int8", metric="cosine")
        return cls(directions, banks, level, own_weight)

    def save(self, folder: str | Path) -> None:
        """Write ``<folder>/<part>/keys/`` for each part and ``<folder>/keys.json``."""
        folder = Path(folder)
        meta = {"level": self.level, "own_weight": self.own_weight}
        (folder / KEYS_FILE).write_text(json.dumps(meta, indent=2) + "\n")
        for name, directions in self.directions.items():
            target = folder / name / KEYS_DIR
            self.banks[name].save(target / "bank")
            save_file({"directions": directions.numpy().astype(np.float16)},
                      str(target / PROJECTION_FILE))

    @classmethod
    def load(cls, folder: str | Path, parts: tuple[str, ...]) -> PartKeys | None:
        """The keys saved in `folder` for `parts`, or None when it has none (older part
        models search each part's own bank)."""
        from s2a.projection import LatentBank

        folder = Path(folder)
        if not (folder / KEYS_FILE).is_file():
            return None
        meta = json.loads((folder / KEYS_FILE).read_text())
        directions, banks = {}, {}
        for name in parts:
            target = folder / name / KEYS_DIR
            if not (target / PROJECTION_FILE).is_file():
                raise ValueError(f"{folder / KEYS_FILE} lists part keys but {target} has no "
                                 f"{PROJECTION_FILE}.")
            directions[name] = load_file(str(target / PROJECTION_FILE))["directions"]
            try:
                banks[name] = LatentBank.load(target / "bank")
            except FileNotFoundError as error:
                raise ValueError(str(error)) from None
        return cls(directions, banks, int(meta.get("level", DEFAULT_LEVEL)),
                   float(meta.get("own_weight", DEFAULT_OWN_WEIGHT)))


def _cosines(queries: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """(B, d) queries against their (B, M, d) candidates -> (B, M) cosines."""
    from s2a.projection import _unit_length  # the banks' own normalisation

    return np.einsum("bd,bmd->bm", _unit_length(queries), _unit_length(rows))


def _best_rows(rows: np.ndarray, score: np.ndarray, k: int, include=()) -> np.ndarray:
    """(B, k) of the (B, M) candidate rows: the pinned ones and the best-scoring others,
    best first."""
    pinned = np.isin(rows, np.asarray(include, np.int64))  # (B, M)
    # Pins first, then by score: a pinned row is never pushed out by a better one.
    order = np.lexsort((-score, ~pinned), axis=1)[:, :k]  # (B, k)
    chosen, chosen_score = (np.take_along_axis(a, order, axis=1) for a in (rows, score))
    return np.take_along_axis(chosen, np.argsort(-chosen_score, axis=1, kind="stable"), axis=1)
