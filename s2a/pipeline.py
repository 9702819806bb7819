"""The Sketch2Anime pipeline: sketch -> latent -> projection onto the bank -> face.

    from s2a import Sketch2Anime
    pipe = Sketch2Anime.from_pretrained()
    out = pipe(sketch, hints=None, refine=1.0, k=10, seed=0)
"""

from __future__ import annotations

import contextlib
import io
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from s2a.hints import hints_to_tensor
from s2a.images import as_pil_image
from s2a.models import Generator, SketchAutoencoder
from s2a.projection import LatentBank, lle_weights, refine_latent
from s2a.sketch import normalize_sketch

BUNDLED_WEIGHTS = Path(__file__).resolve().parent.parent / "weights"
AUTOENCODER_DIR, GENERATOR_DIR, BANK_DIR = "autoencoder", "generator", "bank"
REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*")
MAX_K = 64
MAX_SEED = 2**32 - 1
MAX_PADDED_SIDE = 4096  # a hint layer padded like a very non-square sketch stays this small
# How far a non-zero seed moves the neighbour weights towards a random mix of the same
# neighbours: variations stay on the local patch of professional sketches.
SEED_VARIATION = 0.35


@dataclass(frozen=True)
class GenerationResult:
    """What one call of the pipeline returns."""

    image: Image.Image  # RGB, resolution x resolution
    projected_sketch: Image.Image  # L, the decoder's view of the projected latent
    neighbors: list[tuple[int, float]]  # (bank_index, weight), k entries, weights sum to 1


class Sketch2Anime:
    """Sketch (+ colour hints) -> anime face, with projection onto the training sketches."""

    def __init__(self, autoencoder: SketchAutoencoder, generator: Generator, bank: LatentBank):
        if autoencoder.config.resolution != generator.config.resolution:
            raise ValueError("The autoencoder and generator were trained at different resolutions.")
        if not autoencoder.config.latent_dim == generator.config.latent_dim == bank.dim:
            raise ValueError(
                f"Latent sizes disagree: autoencoder {autoencoder.config.latent_dim}, "
                f"generator {generator.config.latent_dim}, bank {bank.dim}."
            )
        self.autoencoder = autoencoder.eval()
        self.generator = generator.eval()
        self.bank = bank
        self.device = torch.device("cpu")

    @property
    def resolution(self) -> int:
        """The model's square resolution in pixels."""
        return self.generator.config.resolution

    @classmethod
    def from_pretrained(
        cls, source: str | os.PathLike | None = None, revision: str | None = None
    ) -> Sketch2Anime:
        """Load weights from the bundled `weights/` (default), a folder, or a Hub repo id.

        The folder holds `autoencoder/`, `generator/` (config.json + model.safetensors
        each) and `bank/` (the latent bank). A Hub repo id ("user/repo") is downloaded at
        `revision` (a branch, tag or commit hash; default "main") into the standard Hugging
        Face cache, and read from that cache when offline (`HF_HUB_OFFLINE=1`). With no
        `source`, `$S2A_WEIGHTS` and `$S2A_REVISION` choose the weights if set. Raises
        ValueError when the weights cannot be found or are incomplete.

        Integrity: a folder's `manifest.json` (SHA-256 and size of every weights file, see
        `s2a.manifest`) is verified before anything is read. The bundled weights and Hub
        repos must carry one; a local folder without one (an old export, hand-made test
        weights) loads unverified.
        """
        # Imported here so `python -m s2a.manifest` does not find itself already imported.
        from s2a.manifest import MANIFEST, verify_manifest

        folder = resolve_weights(source, revision)
        for part in (AUTOENCODER_DIR, GENERATOR_DIR, BANK_DIR):
            if not (folder / part).is_dir():
                raise ValueError(f"{folder} is not a Sketch2Anime weights folder: no {part}/.")
        if (folder / MANIFEST).is_file() or folder.resolve() == BUNDLED_WEIGHTS.resolve():
            verify_manifest(folder)  # Hub repos: resolve_weights required the manifest
        # huggingface_hub prints a line per local load; the app's log does not need them.
        with contextlib.redirect_stdout(io.StringIO()):
            autoencoder = SketchAutoencoder.from_pretrained(folder / AUTOENCODER_DIR)
            generator = Generator.from_pretrained(folder / GENERATOR_DIR)
        return cls(autoencoder, generator, LatentBank.load(folder / BANK_DIR))

    def to(self, device: str | torch.device) -> Sketch2Anime:
        """Move the networks to `device` (the bank stays on the CPU, FAISS runs there)."""
        self.device = torch.device(device)
        self.autoencoder.to(self.device)
        self.generator.to(self.device)
        return self

    @torch.no_grad()
    def __call__(
        self, sketch, hints=None, refine: float = 1.0, k: int = 10, seed: int = 0
    ) -> GenerationResult:
        """Draw the face for `sketch` (PIL image, any size and mode) and `hints` (RGBA).

        `refine` blends the user's own latent (0) with its projection onto the bank (1);
        `k` is the number of neighbours; `seed` 0 gives the plain projection, other seeds
        variations on the same neighbours. Raises ValueError on bad input.
        """
        refine, k, seed = check_arguments(refine, k, seed, len(self.bank))
        sketch = as_pil_image(sketch, "sketch")
        sketch_input = self.sketch_tensor(sketch)  # (1, 1, R, R), 1 = paper
        hint_input = self.hints_tensor(hints, sketch.size)  # (4, R, R)

        images, latents, neighbors = self.generate(sketch_input, hint_input[None], refine, k, seed)
        return self.to_result(images[0], self.decode_projected(latents)[0], neighbors[0])

    # The stages of one call, in order; `__call__` runs them and `tools.bench` times them.

    def sketch_tensor(self, sketch) -> torch.Tensor:
        """Stage 1: a user's sketch (PIL image) -> (1, 1, R, R) model input, 1 = paper."""
        return self._batch(normalize_sketch(sketch, self.resolution)[None])

    def encode(self, sketches: torch.Tensor) -> np.ndarray:
        """Stage 3: (B, 1, R, R) sketches -> (B, d) float32 latents."""
        return self.autoencoder.encode(sketches.to(self.device)).cpu().numpy()

    def search(self, latent: np.ndarray, k: int) -> np.ndarray:
        """Stage 4: (k,) int64 bank rows of the k nearest neighbours of one (d,) latent."""
        return self.bank.neighbors(latent, k)

    def solve(
        self, latent: np.ndarray, indices: np.ndarray, refine: float, seed: int
    ) -> tuple[np.ndarray, list[tuple[int, float]]]:
        """Stage 5: constrained least squares over the neighbours, seed variation, refine.

        Returns the refined (d,) float32 latent and the (bank_index, weight) pairs.
        """
        neighbors = self.bank.latents[indices]  # (k, d)
        weights = vary_weights(lle_weights(latent, neighbors, self.bank.reg), seed)
        projected = weights.astype(np.float64) @ neighbors
        refined = refine_latent(latent, projected.astype(np.float32), refine)
        return refined, [(int(i), float(w)) for i, w in zip(indices, weights)]

    def decode_projected(self, latents: torch.Tensor) -> torch.Tensor:
        """Stage 7: (B, d) refined latents -> (B, R, R) projected sketches in [0, 1]."""
        return self.autoencoder.decode(latents)[:, 0]

    @staticmethod
    def to_result(
        image: torch.Tensor, projected_sketch: torch.Tensor, neighbors: list[tuple[int, float]]
    ) -> GenerationResult:
        """Stage 8: (3, R, R) image and (R, R) sketch tensors -> PIL images in a result."""
        return GenerationResult(to_pil_rgb(image), to_pil_grey(projected_sketch), neighbors)

    @torch.no_grad()
    def generate(
        self, sketches: torch.Tensor, hints: torch.Tensor, refine: float = 1.0, k: int = 10,
        seed: int = 0,
    ) -> tuple[torch.Tensor, torch.Tensor, list[list[tuple[int, float]]]]:
        """Batched core for evaluation: (B, 1, R, R) sketches in [0, 1], (B, 4, R, R) hints.

        Returns (images (B, 3, R, R) in [0, 1], refined latents (B, d), neighbours per item).
        Arguments are not validated here; `__call__` does that for user input.
        """
        latents = self.encode(sketches)  # (B, d)
        refined, neighbors = [], []
        for latent in latents:
            z, pairs = self.solve(latent, self.search(latent, k), refine, seed)
            refined.append(z)
            neighbors.append(pairs)
        z = torch.from_numpy(np.stack(refined)).to(self.device)  # (B, d)
        images = self.generator(z, hints.to(self.device))  # (B, 3, R, R)
        return images, z, neighbors

    def hints_tensor(self, hints, sketch_size: tuple[int, int]) -> torch.Tensor:
        """RGBA hint layer stretched over the sketch's frame -> (4, R, R) tensor."""
        if hints is None:
            return torch.zeros(4, self.resolution, self.resolution)
        hints = as_pil_image(hints, "hint layer")
        if hints.mode != "RGBA":
            raise ValueError(
                "The hint layer must be a transparent RGBA image: paint colours on a "
                f"transparent layer (got mode {hints.mode})."
            )
        return hints_to_tensor(pad_like_sketch(np.asarray(hints), sketch_size), self.resolution)

    def decode_latents(self, indices) -> list[Image.Image]:
        """The decoder's sketches of bank entries (to show the neighbours to the user)."""
        latents = torch.from_numpy(self.bank.latents[np.asarray(indices)]).to(self.device)
        with torch.no_grad():
            sketches = self.autoencoder.decode(latents)[:, 0]  # (n, R, R)
        return [to_pil_grey(s) for s in sketches]

    def _batch(self, sketches: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(sketches))[:, None].to(self.device)


# What a Hub weights repo must hold, and the only files downloaded from one (never a
# pickle, never the training runs a repo may also carry). The baseline rides along under
# "*/": evaluation compares against it.
HUB_ALLOW_PATTERNS = (
    "*/config.json", "*/model.safetensors", f"{BANK_DIR}/*", "manifest.json", "README.md",
)
HUB_REQUIRED_FILES = (
    f"{AUTOENCODER_DIR}/config.json", f"{AUTOENCODER_DIR}/model.safetensors",
    f"{GENERATOR_DIR}/config.json", f"{GENERATOR_DIR}/model.safetensors",
    f"{BANK_DIR}/bank_latents.safetensors", "manifest.json",
)
_TRUE = {"1", "ON", "YES", "TRUE"}


def resolve_weights(source: str | os.PathLike | None, revision: str | None = None) -> Path:
    """Folder of weights for `source`: None -> $S2A_WEIGHTS or bundled, a path, or a repo id.

    With no `source`, `$S2A_WEIGHTS` (a folder or a Hub repo id) and `$S2A_REVISION` are
    used, else the bundled `weights/`. An existing folder is returned as is. A Hub repo id
    ("user/repo") is fetched with `huggingface_hub.snapshot_download` at `revision`
    (default "main"; a commit hash pins it) into the standard Hugging Face cache, only the
    files in `HUB_ALLOW_PATTERNS`. With `HF_HUB_OFFLINE=1`, or when the Hub cannot be
    reached, a cached copy of that revision is used. Raises ValueError when the repo or
    revision does not exist, is not cached while offline, or lacks a weights file.
    """
    if source is None:
        source = os.environ.get("S2A_WEIGHTS") or BUNDLED_WEIGHTS
        revision = revision or os.environ.get("S2A_REVISION") or None
    path = Path(source)
    if path.is_dir():
        return path
    text = str(source)
    if not REPO_ID.fullmatch(text):
        raise ValueError(f"No weights folder at {text}, and it is not a Hub repo id (user/repo).")
    folder = _download_weights(text, revision)
    missing = [name for name in HUB_REQUIRED_FILES if not (folder / name).is_file()]
    if missing:
        raise ValueError(
            f"The Hub repo {text!r} (revision {revision or 'main'}) is not a complete "
            f"Sketch2Anime weights repo: missing {', '.join(missing)}."
        )
    return folder


def _download_weights(repo_id: str, revision: str | None) -> Path:
    """snapshot_download of the weights files; Hub errors become one-sentence ValueErrors."""
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.utils import (
        GatedRepoError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    # Read at call time too: huggingface_hub reads its environment once, at import, and a
    # caller (or a test) may set these after that.
    offline = constants.HF_HUB_OFFLINE or os.environ.get("HF_HUB_OFFLINE", "").upper() in _TRUE
    cache_dir = os.path.expandvars(os.environ.get("HF_HUB_CACHE", "")) or None
    where = f"the Hub repo {repo_id!r} at revision {revision or 'main'}"
    try:
        folder = snapshot_download(
            repo_id=repo_id, revision=revision, cache_dir=cache_dir,
            allow_patterns=list(HUB_ALLOW_PATTERNS), local_files_only=offline,
        )
    except GatedRepoError as error:
        raise ValueError(
            f"{where} is gated: accept its terms on huggingface.co and log in "
            "(`hf auth login` or HF_TOKEN)."
        ) from error
    except RepositoryNotFoundError as error:
        raise ValueError(
            f"No weights folder at {repo_id}, and {where} was not found on the Hub (if it is "
            "private, log in with `hf auth login` or set HF_TOKEN)."
        ) from error
    except RevisionNotFoundError as error:
        raise ValueError(f"{where}: the repo exists but has no such revision.") from error
    except LocalEntryNotFoundError as error:
        if type(error).__name__ == "IncompleteSnapshotError":
            raise ValueError(
                f"{where} is only partly in the local Hugging Face cache and the Hub cannot "
                "be reached: download it again with network access."
            ) from error
        reason = "offline mode is on (HF_HUB_OFFLINE)" if offline else "the Hub cannot be reached"
        raise ValueError(
            f"No weights folder at {repo_id}, and {where} is not in the local Hugging Face "
            f"cache ({cache_dir or constants.HF_HUB_CACHE}) while {reason}: download it once "
            "with network access, or pass a local weights folder."
        ) from error
    except Exception as error:  # network, disk, invalid id: still one clear sentence
        detail = str(error).splitlines()[0] if str(error) else ""
        raise ValueError(
            f"No weights folder at {repo_id}, and {where} could not be loaded "
            f"({type(error).__name__}: {detail})."
        ) from error
    return Path(folder)


def check_arguments(refine, k, seed, bank_size: int) -> tuple[float, int, int]:
    """Validate the user-facing knobs; return them as clean Python numbers."""
    if isinstance(refine, bool) or not isinstance(refine, (int, float, np.floating, np.integer)):
        raise ValueError(f"refine must be a number between 0 and 1, got {refine!r}.")
    refine = float(refine)
    if not 0.0 <= refine <= 1.0:  # also rejects NaN
        raise ValueError(f"refine must be between 0 and 1, got {refine}.")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= MAX_K:
        raise ValueError(f"k (neighbours) must be a whole number from 1 to {MAX_K}, got {k!r}.")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed must be a whole number, got {seed!r}.")
    if not 0 <= seed <= MAX_SEED:
        raise ValueError(f"seed must be between 0 and {MAX_SEED}, got {seed}.")
    return refine, min(int(k), bank_size), int(seed)


def vary_weights(weights: np.ndarray, seed: int) -> np.ndarray:
    """Seed 0: the weights unchanged; other seeds: blended with a random convex mix."""
    if seed == 0:
        return weights
    mix = np.random.default_rng(seed).dirichlet(np.ones(len(weights)))
    varied = (1.0 - SEED_VARIATION) * weights + SEED_VARIATION * mix
    return (varied / varied.sum()).astype(np.float32)


def pad_like_sketch(hints: np.ndarray, sketch_size: tuple[int, int]) -> np.ndarray:
    """Pad an (h, w, 4) hint layer as `normalize_sketch` pads the sketch to a square.

    The layer is stretched over the sketch's frame, so the padding is in proportion.
    """
    width, height = sketch_size
    if width == height:
        return hints
    h, w = hints.shape[:2]
    # A sketch far wider than tall (or the reverse) would pad a big layer into gigabytes:
    # first thin the layer (nearest rows and columns) so the padded square's side stays
    # near MAX_PADDED_SIDE; such a sliver covers a few model pixels anyway.
    long_side = h * width / height if width > height else w * height / width
    if long_side > MAX_PADDED_SIDE:
        rows, cols = min(h, MAX_PADDED_SIDE), min(w, MAX_PADDED_SIDE)
        if width > height:
            rows = max(1, min(h, int(MAX_PADDED_SIDE * height / width)))
        else:
            cols = max(1, min(w, int(MAX_PADDED_SIDE * width / height)))
        hints = hints[np.arange(rows) * h // rows][:, np.arange(cols) * w // cols]
        h, w = rows, cols
    if width > height:
        pad = round((width - height) / 2 / height * h)
        return np.pad(hints, ((pad, pad), (0, 0), (0, 0)))
    pad = round((height - width) / 2 / width * w)
    return np.pad(hints, ((0, 0), (pad, pad), (0, 0)))


def to_pil_rgb(image: torch.Tensor) -> Image.Image:
    """(3, H, W) in [0, 1] -> PIL RGB."""
    array = (image.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(array, "RGB")


def to_pil_grey(sketch: torch.Tensor) -> Image.Image:
    """(H, W) in [0, 1] -> PIL L."""
    return Image.fromarray((sketch.clamp(0, 1) * 255).round().byte().cpu().numpy(), "L")
