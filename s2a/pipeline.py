"""The Sketch2Anime pipeline: sketch -> latent -> projection onto the bank -> face.

    from s2a import Sketch2Anime
    pipe = Sketch2Anime.from_pretrained()
    out = pipe(sketch, hints=None, refine=1.0, k=10, seed=0, include=(), exclude=())
    out = pipe(sketch, refine={"left_eye": 0.0, "mouth": 0.5})  # per face part

With a parts model in the weights (`s2a.parts`), a refine per part (or per_part=True)
projects each face part on its own bank with its own refine and assembles the projected
parts into one sketch; otherwise the whole face is projected at once.
"""

from __future__ import annotations

import contextlib
import io
import os
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from s2a import hub
from s2a.face_locator import FaceLocator, refine_frame
from s2a.frozen import FrozenNetworks
from s2a.hints import frame_like_sketch, hints_to_tensor, pad_like_sketch
from s2a.hub import (
    AUTOENCODER_DIR,
    BANK_DIR,
    FACE_LOCATOR_DIR,
    GENERATOR_DIR,
    PARTS_DIR,
    resolve_weights,
)
from s2a.images import as_pil_image
from s2a.models import Generator, SketchAutoencoder, SpatialGenerator, load_generator, traced
from s2a.parts import PART_NAMES, PartModel, blend_part_latents, check_part_refine
from s2a.projection import LatentBank, refine_latent
from s2a.sketch import RelativeBox, normalize_sketch, normalize_sketch_and_frame
from s2a.upscale import Upscaler

MAX_K = 64
MAX_SEED = 2**32 - 1
# The steps of one call, in order (timed by `python -m tools.bench`).
STEPS = ("sketch", "hints", "encoder", "projection", "generator", "decoder", "to_pil",
         "upscale")


@dataclass(frozen=True)
class GenerationResult:
    """What one call of the pipeline returns."""

    image: Image.Image  # RGB: upscaled (pipe.output_resolution), or the model's resolution
    projected_sketch: Image.Image  # L, the decoder's view of the projected latent
    neighbors: list[tuple[int, float]]  # (bank_index, weight), k entries, weights sum to 1
    normalized_sketch: Image.Image  # L, pipe.resolution px: the sketch the model received
    # The box the sketch and hints were cropped with ("frame" step, relative to the padded
    # square: `s2a.hints.frame_like_sketch` maps a layer onto the face); None: not cropped.
    frame: RelativeBox | None
    # Per-part model only: {part: (bank_index, weight) pairs} for each of s2a.parts.PART_NAMES
    # (`neighbors` is then the "rest"'s); None on the whole-face path.
    part_neighbors: dict[str, list[tuple[int, float]]] | None = None


class Sketch2Anime:
    """Sketch (+ colour hints) -> anime face, with projection onto the training sketches."""

    def __init__(self, autoencoder: SketchAutoencoder, generator: Generator | SpatialGenerator,
                 bank: LatentBank, upscaler: Upscaler | None = None,
                 parts: PartModel | str | os.PathLike | None = None, freeze: bool = False,
                 face_locator: FaceLocator | None = None):
        if autoencoder.config.resolution != generator.config.resolution:
            raise ValueError("The autoencoder and generator were trained at different resolutions.")
        if not autoencoder.config.latent_dim == generator.config.latent_dim == bank.dim:
            raise ValueError(
                f"Latent sizes disagree: autoencoder {autoencoder.config.latent_dim}, "
                f"generator {generator.config.latent_dim}, bank {bank.dim}."
            )
        self.autoencoder = autoencoder.eval()
        self.generator = generator.eval()
        # Face-aware framing after the ink-extent framing (s2a.face_locator); None: off.
        self.face_locator = None if face_locator is None else face_locator.eval()
        self.bank = bank
        # The per-part model, or the folder it is loaded from on first use: its banks take
        # about 250 MB of memory that calls with one refine number never need.
        self._parts, self._parts_folder = None, None
        if isinstance(parts, PartModel):
            self._parts = self._fitting(parts)
        elif parts is not None:
            self._parts_folder = Path(parts)
        self._parts_lock = threading.Lock()
        self.device = torch.device("cpu")
        self._step_times: dict[str, list[float]] | None = None  # see record_step_times
        # Started on first use: it loads a native engine that the training and evaluation
        # code, which never upscale, should not pay for.
        self._upscaler = upscaler
        self._upscaler_lock = threading.Lock()
        # `freeze` (public, may be switched off): run the generator and the decoder
        # frozen on the CPU (`s2a.frozen`), built on first use. Only for weights that no
        # longer change: the frozen copies keep their own.
        self.freeze = bool(freeze)
        self._frozen = None
        self._frozen_lock = threading.Lock()

    @property
    def resolution(self) -> int:
        """The model's square resolution in pixels."""
        return self.generator.config.resolution

    @property
    def has_parts(self) -> bool:
        """Whether the weights have a per-part model (without loading it)."""
        return self._parts is not None or self._parts_folder is not None

    @property
    def parts(self) -> PartModel | None:
        """The per-part model (`s2a.parts`), loaded on first use; None without one."""
        with self._parts_lock:
            if self._parts is None and self._parts_folder is not None:
                self._parts = self._fitting(PartModel.load(
                    self._parts_folder, self.autoencoder, self.bank)).to(self.device)
            return self._parts

    def _fitting(self, parts: PartModel) -> PartModel:
        if parts.resolution != self.autoencoder.config.resolution or len(parts) != len(self.bank):
            raise ValueError("The part model does not fit the whole-face model: "
                             f"{parts.resolution} px and {len(parts)} sketches against "
                             f"{self.autoencoder.config.resolution} px and {len(self.bank)}.")
        return parts

    @property
    def upscaler(self) -> Upscaler:
        """The anime super-resolution stage (`s2a.upscale`), started on first use."""
        with self._upscaler_lock:
            if self._upscaler is None:
                self._upscaler = Upscaler()
            return self._upscaler

    @property
    def output_resolution(self) -> int:
        """The side of `out.image` with `upscale=True` (the default), in pixels."""
        return self.upscaler.output_side(self.resolution)

    @classmethod
    def from_pretrained(
        cls, source: str | os.PathLike | None = None, revision: str | None = None
    ) -> Sketch2Anime:
        """Load weights from the bundled `weights/` (default), a folder, or a Hub repo id.

        The folder holds `autoencoder/`, `generator/` (config.json + model.safetensors
        each), `bank/` (the latent bank) and, for the per-part model, `parts/`
        (`s2a.parts`). A Hub repo id ("user/repo") is downloaded at
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
        if (folder / MANIFEST).is_file() or folder.resolve() == hub.BUNDLED_WEIGHTS.resolve():
            verify_manifest(folder)  # Hub repos: resolve_weights required the manifest
        # huggingface_hub prints a line per local load; the app's log does not need them.
        with contextlib.redirect_stdout(io.StringIO()):
            autoencoder = SketchAutoencoder.from_pretrained(folder / AUTOENCODER_DIR)
            generator = load_generator(folder / GENERATOR_DIR)
            locator = FaceLocator.from_pretrained(folder / FACE_LOCATOR_DIR) \
                if (folder / FACE_LOCATOR_DIR).is_dir() else None
        parts = folder / PARTS_DIR if (folder / PARTS_DIR).is_dir() else None  # loaded on use
        return cls(autoencoder, generator, LatentBank.load(folder / BANK_DIR), parts=parts,
                   freeze=True, face_locator=locator)

    def to(self, device: str | torch.device) -> Sketch2Anime:
        """Move the networks to `device` (the bank stays on the CPU, FAISS runs there)."""
        self.device = torch.device(device)
        self._frozen = None  # rebuilt there if CPU
        self.autoencoder.to(self.device)
        self.generator.to(self.device)
        if self._parts is not None:  # a part model not loaded yet moves when it loads
            self._parts.to(self.device)
        return self

    @torch.no_grad()
    def __call__(
        self, sketch, hints=None, refine: float | Mapping[str, float] = 1.0, k: int = 10,
        seed: int = 0, upscale: bool = True, include=(), exclude=(), per_part: bool | None = None,
    ) -> GenerationResult:
        """Draw the face for `sketch` (PIL image, any size and mode) and `hints` (RGBA).

        `refine` blends the user's own latent (0) with its projection onto the bank (1):
        one number, or with the per-part model a mapping from part (`left_eye`,
        `right_eye`, `nose`, `mouth`, `rest`) to a number, parts not named keeping 1.0.
        `per_part`: None (default) uses the per-part model when `refine` is a mapping,
        else the whole-face model (on the project's own drawings its faces look better;
        model card); True requires the per-part model, False the whole-face one.
        `k` is the number of neighbours; `seed` 0 gives the plain projection, other seeds
        variations on the same neighbours. `upscale` (default) returns the face from the
        anime upscaler at `output_resolution`; False the model's own `resolution` x
        `resolution` face (fast: the live preview). `include` / `exclude`: bank indices
        pinned into / dropped from the neighbour set (pins count in k). Raises ValueError
        on bad input.
        """
        use_parts = self.check_per_part(per_part, refine)
        part_refine = check_part_refine(refine) if use_parts else None
        refine, k, seed = check_arguments(0.0 if use_parts else refine, k, seed, len(self.bank))
        include, exclude = self.bank.check_selection(include, exclude, k)
        if not isinstance(upscale, (bool, np.bool_)):
            raise ValueError(f"upscale must be True or False, got {upscale!r}.")
        with self._step("sketch"):
            sketch = as_pil_image(sketch, "sketch")
            sketch_input, frame = self.framed_sketch_tensor(sketch)  # (1, 1, R, R), 1 = paper
        with self._step("hints"):
            hint_input = self.hints_tensor(hints, sketch.size, frame)[None]  # (1, 4, R, R)
        part_neighbors = None
        if use_parts:
            images, projected, by_part = self.generate_parts(
                sketch_input, hint_input, part_refine, k, seed, include, exclude)
            projected = projected[0, 0]  # (R, R)
            part_neighbors = {name: by_part[name][0] for name in PART_NAMES}
            neighbors = by_part["rest"]
        else:
            images, latents, neighbors = self.generate(sketch_input, hint_input, refine, k,
                                                       seed, include, exclude)
            with self._step("decoder"):
                projected = self.decode_projected(latents)[0]  # (R, R)
        with self._step("to_pil"):
            face, projected = to_pil_rgb(images[0]), to_pil_grey(projected)
            received = to_pil_grey(sketch_input[0, 0])
        if upscale:
            with self._step("upscale"):
                face = self.upscaler(face)
        return GenerationResult(face, projected, neighbors[0], received, frame, part_neighbors)

    def check_per_part(self, per_part, refine) -> bool:
        """Whether a call with these arguments runs the per-part model; ValueError when it
        cannot (no parts in the weights, or a per-part refine on the whole-face path)."""
        if per_part is not None and not isinstance(per_part, (bool, np.bool_)):
            raise ValueError(f"per_part must be True, False or None, got {per_part!r}.")
        use_parts = isinstance(refine, Mapping) if per_part is None else bool(per_part)
        if isinstance(refine, Mapping) and (not use_parts or not self.has_parts):
            raise ValueError("A refine per face part needs the per-part model"
                             + (" (these weights have none)" if not self.has_parts else "")
                             + "; give one number for the whole face.")
        if use_parts and not self.has_parts:
            raise ValueError("These weights have no per-part model (no parts/ folder); "
                             "use per_part=False or weights with parts.")
        return use_parts

    @contextlib.contextmanager
    def record_step_times(self) -> Iterator[dict[str, list[float]]]:
        """Within the block, every call appends each step's seconds to the yielded dict."""
        self._step_times = {step: [] for step in STEPS}
        try:
            yield self._step_times
        finally:
            self._step_times = None

    @contextlib.contextmanager
    def _step(self, name: str) -> Iterator[None]:
        if self._step_times is None:
            yield
            return
        start = time.perf_counter()
        yield
        self._step_times[name].append(time.perf_counter() - start)

    def framed_sketch_tensor(self, sketch) -> tuple[torch.Tensor, RelativeBox | None]:
        """A user's sketch (PIL image) -> the (1, 1, R, R) model input (1 = paper), zoomed
        and centred like the training sketches (`normalize_sketch`'s default steps), and
        the relative box it was cropped with (None: not cropped), for `hints_tensor`."""
        locator = self.face_locator
        if locator is not None and locator.config.resolution != self.resolution:
            locator = None

        def located(array: np.ndarray, frame: RelativeBox | None) -> RelativeBox | None:
            with torch.no_grad():
                found = locator.locate(torch.from_numpy(array)[None, None])[0]
            return refine_frame(frame, tuple(float(v) for v in found))

        array, frame = normalize_sketch_and_frame(  # (R, R)
            sketch, self.resolution, reframe=None if locator is None else located)
        return torch.from_numpy(np.ascontiguousarray(array))[None, None].to(self.device), frame

    def sketch_tensor(self, sketch) -> torch.Tensor:
        """A user's sketch (PIL image) -> (1, 1, R, R), 1 = paper, where it was drawn.

        Not framed: views laid back over the drawing pad (the shadow) need the drawing
        in place. What `__call__` feeds the model is `framed_sketch_tensor`.
        """
        array = normalize_sketch(sketch, self.resolution, steps=())[None]  # (1, R, R)
        return torch.from_numpy(np.ascontiguousarray(array))[:, None].to(self.device)

    def encode(self, sketches: torch.Tensor) -> np.ndarray:
        """(B, 1, R, R) sketches -> (B, d) float32 latents."""
        frozen = self.frozen()
        encode = self.autoencoder.encode if frozen is None else frozen.encode
        return encode(sketches.to(self.device)).cpu().numpy()

    def project(self, latents: np.ndarray, refine: float, k: int, seed: int, include=(),
                exclude=()) -> tuple[np.ndarray, list[list[tuple[int, float]]]]:
        """(B, d) latents -> (B, d) refined latents and each one's (bank_index, weight) pairs.

        The bank's projection (k-NN + constrained least squares, seed variation, pinned and
        dropped neighbours), blended with the user's own latent by `refine`.
        """
        projection = self.bank.project(latents, k, seed=seed, include=include,
                                       exclude=exclude)  # latent (B, d), (B, k) x2
        refined = np.stack([refine_latent(z, p, refine)
                            for z, p in zip(latents, projection.latent)])  # (B, d)
        pairs = [[(int(i), float(w)) for i, w in zip(row_i, row_w)]
                 for row_i, row_w in zip(projection.indices, projection.weights)]
        return refined, pairs

    def decode_projected(self, latents: torch.Tensor) -> torch.Tensor:
        """(B, d) refined latents -> (B, R, R) projected sketches in [0, 1]."""
        frozen = self.frozen()
        decode = self.autoencoder.decode if frozen is None else frozen.decode
        return decode(latents)[:, 0]

    @torch.no_grad()
    def generate(
        self, sketches: torch.Tensor, hints: torch.Tensor, refine: float = 1.0, k: int = 10,
        seed: int = 0, include=(), exclude=(),
    ) -> tuple[torch.Tensor, torch.Tensor, list[list[tuple[int, float]]]]:
        """Batched core, used by `__call__` and the evaluation: (B, 1, R, R) sketches in
        [0, 1], (B, 4, R, R) hints.

        Returns (images (B, 3, R, R) in [0, 1], refined latents (B, d), neighbours per item).
        Arguments are not validated here; `__call__` does that for user input.
        """
        with self._step("encoder"):
            latents = self.encode(sketches)  # (B, d)
        with self._step("projection"):
            refined, neighbors = self.project(latents, refine, k, seed, include, exclude)
            z = torch.from_numpy(refined).to(self.device)  # (B, d)
        with self._step("generator"):
            hints = hints.to(self.device)
            frozen = self.frozen()
            if frozen is not None:
                images = frozen.face(z, hints, sketches.to(self.device), refine)
            elif isinstance(self.generator, SpatialGenerator):  # traces by 1 - refine
                images = self.generator(z, hints, sketches.to(self.device), refine)
            else:
                images = self.generator(z, hints)  # (B, 3, R, R)
        return images, z, neighbors

    @torch.no_grad()
    def generate_parts(
        self, sketches: torch.Tensor, hints: torch.Tensor, refine: Mapping[str, float],
        k: int = 10, seed: int = 0, include=(), exclude=(),
    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, list[list[tuple[int, float]]]]]:
        """Batched per-part core: (B, 1, R, R) sketches, (B, 4, R, R) hints, {part: refine}.

        Each part is projected on its own bank and the decoded parts are assembled into
        one projected sketch; the whole-face encoder reads it (its own latent, no second
        projection) and the generator draws the face from that latent's feature maps; the
        encoder reads the parts at "rest"'s refine, so that a part's slider changes the
        face mainly inside its window (locality, model card "Per-part model"). The
        sketch the synthesis traces is the assembled one inside the part windows (so an
        eye drawn closed stays closed) and the whole-face decoder's reading of it outside
        them. Tracing the assembly everywhere kept parts more local but made faces from
        rough drawings far less realistic (model card, "Per-part model").
        Returns (images (B, 3, R, R), assembled sketches (B, 1, R, R), {part: neighbours
        per item}). Arguments are not validated here.
        """
        with self._step("projection"):  # each part's encoder, k-NN and least squares
            own, projected, neighbors = self.parts.encode_and_project(
                sketches.to(self.device), k, seed, include, exclude)
        with self._step("decoder"):
            assembled, _ = self.parts.decode(blend_part_latents(own, projected, refine))
            # The face's overall look (the latent its feature maps come from) follows
            # "rest"'s refine; a part's own slider acts in its window only (what the
            # synthesis traces there), so moving it does not repaint the whole face.
            overall = dict.fromkeys(PART_NAMES, refine["rest"])
            read = assembled if all(refine[n] == refine["rest"] for n in PART_NAMES) \
                else self.parts.decode(blend_part_latents(own, projected, overall))[0]
        with self._step("encoder"):  # the whole-face encoder reads the assembled sketch
            z = self.autoencoder.encode(read)  # (B, d)
        with self._step("generator"):
            hints = hints.to(self.device)
            if isinstance(self.generator, SpatialGenerator):
                maps = self.generator.feature_maps(z)
                inside = self.parts.windows_mask().to(self.device)  # (R, R)
                maps[0] = inside * assembled + (1.0 - inside) * maps[0]  # (B, 1, R, R)
                if self.generator.config.traces_sketch:  # the drawn lines by 1 - part refine
                    refine_map = self.parts.refine_map(refine).to(self.device)
                    maps = traced(maps, sketches.to(self.device), refine_map[None, None])
                images = self.synthesise(maps, hints)  # (B, 3, R, R)
            else:
                images = self.generator(z, hints)
        return images, assembled, neighbors

    def synthesise(self, maps: dict[int, torch.Tensor], hints: torch.Tensor) -> torch.Tensor:
        """The spatial generator's synthesis (`SpatialGenerator.synthesise`), frozen when
        `frozen()` has the networks."""
        frozen = self.frozen()
        if frozen is not None:
            return frozen.synthesise(maps, hints)
        return self.generator.synthesise(maps, hints)

    def frozen(self) -> FrozenNetworks | None:
        """The frozen networks (`s2a.frozen`) when `freeze` is on, the pipeline runs on
        the CPU and its generator is spatial (each graph traced on first use); else None."""
        if not (self.freeze and self.device.type == "cpu"
                and isinstance(self.generator, SpatialGenerator)):
            return None
        if self._frozen is None:
            with self._frozen_lock:
                if self._frozen is None:
                    self._frozen = FrozenNetworks(self.autoencoder, self.generator)
        return self._frozen

    def hints_tensor(self, hints, sketch_size: tuple[int, int],
                     frame: RelativeBox | None = None) -> torch.Tensor:
        """RGBA hint layer stretched over the sketch's canvas -> (4, R, R) tensor.

        `frame`: the box `framed_sketch_tensor` cropped the sketch with; the layer is
        cropped with it too, so every hint stays on the stroke it was painted on.
        """
        if hints is None:
            return torch.zeros(4, self.resolution, self.resolution)
        hints = as_pil_image(hints, "hint layer")
        if hints.mode != "RGBA":
            raise ValueError(
                "The hint layer must be a transparent RGBA image: paint colours on a "
                f"transparent layer (got mode {hints.mode})."
            )
        padded = pad_like_sketch(np.asarray(hints), sketch_size)  # (h', w', 4)
        return hints_to_tensor(frame_like_sketch(padded, frame), self.resolution)

    def decode_latents(self, indices) -> list[Image.Image]:
        """The decoder's sketches of bank entries (to show the neighbours to the user)."""
        latents = torch.from_numpy(self.bank.latents[np.asarray(indices)]).to(self.device)
        with torch.no_grad():
            sketches = self.autoencoder.decode(latents)[:, 0]  # (n, R, R)
        return [to_pil_grey(s) for s in sketches]


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


def to_pil_rgb(image: torch.Tensor) -> Image.Image:
    """(3, H, W) in [0, 1] -> PIL RGB."""
    array = (image.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(array, "RGB")


def to_pil_grey(sketch: torch.Tensor) -> Image.Image:
    """(H, W) in [0, 1] -> PIL L."""
    return Image.fromarray((sketch.clamp(0, 1) * 255).round().byte().cpu().numpy(), "L")
