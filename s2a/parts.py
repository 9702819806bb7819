"""Component-wise projection: two eyes, nose, mouth and the rest, each on its own manifold.

As in DeepFaceDrawing, a face is cut into fixed windows (`PartWindow`, measured on the
training sketches by `python -m training.part_windows`). Each windowed part has its own
small completing autoencoder and latent bank. "rest" is read by the whole-face
autoencoder: in DeepFaceDrawing's way (``"rest": "blanked"``) the sketch with the windows
blanked, projected onto a bank of blanked training sketches; with ``"rest": "whole"``
(the bundled weights since v1.5) the whole sketch, projected onto the whole-face bank,
so that outside the windows the per-part model is as close as the whole-face model (model
card, "v1.5"). Each part is projected with its own `refine`, decoded, and the decoded
parts are pasted back at their windows into one projected sketch, from which the spatial
generator draws the face. A good eye is then not dragged along by a bad mouth, and one
eye can stay closed while the other is open.

On disk (`weights/parts/`):

- ``parts.json``: ``{"resolution", "windows": {part: [top, left, size]}, "feather"}``;
- ``<part>/autoencoder/``: config.json + model.safetensors, for each windowed part;
- ``<part>/bank/``: the part's latent bank (`s2a.projection.LatentBank`), "rest" included
  unless parts.json says ``"rest": "whole"`` (the whole-face bank is then used);
- optionally ``keys.json`` and ``<part>/keys/`` (`s2a.part_keys`): where each windowed part
  searches its neighbours, read from the whole face; without them, in its own bank.

Every bank holds the training sketches in the same order, so a bank index names the same
training face in every part (and in the whole-face bank): pins and drops apply to all.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from s2a.models import SketchAutoencoder
from s2a.part_keys import PartKeys

if TYPE_CHECKING:  # s2a.projection imports faiss, which training machines may lack
    from s2a.projection import LatentBank

PART_NAMES = ("left_eye", "right_eye", "nose", "mouth", "rest")
# What "rest" reads: the sketch with the windows blanked (its own bank) or the whole sketch
# (the whole-face bank).
REST_SOURCES = ("blanked", "whole")
WINDOWED_PARTS = PART_NAMES[:-1]
PARTS_FILE = "parts.json"
AUTOENCODER_DIR, BANK_DIR = "autoencoder", "bank"
# Pixels over which a pasted part fades into the rest at its window's border, so strokes
# that cross the border join instead of ending in a seam.
DEFAULT_FEATHER = 3


@dataclass(frozen=True)
class PartWindow:
    """A square window of the model-resolution face: rows top..top+size, same for columns."""

    top: int
    left: int
    size: int

    def slices(self) -> tuple[slice, slice]:
        return slice(self.top, self.top + self.size), slice(self.left, self.left + self.size)

    def check(self, resolution: int, name: str) -> None:
        if self.size < 1 or self.top < 0 or self.left < 0 or \
                self.top + self.size > resolution or self.left + self.size > resolution:
            raise ValueError(f"Window {name} {self} does not fit a {resolution} px face.")


# Measured on the 96 px training sketches (`python -m training.part_windows`): the eyes'
# ink peaks sit at about (38, 27) and (37, 67), the nose's at about (53, 47), the mouth's
# below it, just above the chin line. DeepFaceDrawing's 128/160/192 px windows at 512 px
# are 24/30/36 px at 96; anime eyes are larger than photographed ones. The windows are
# mirror images of each other (a flipped face swaps the eyes and keeps nose and mouth).
DEFAULT_WINDOWS = {
    "left_eye": PartWindow(22, 12, 32),
    "right_eye": PartWindow(22, 52, 32),
    "nose": PartWindow(42, 36, 24),
    "mouth": PartWindow(56, 32, 32),
}


def scaled_windows(resolution: int, multiple: int = 1) -> dict[str, PartWindow]:
    """DEFAULT_WINDOWS (96 px) scaled to a `resolution` px face, each size rounded to a
    multiple of `multiple` (an autoencoder's down-sampling factor) and kept inside."""
    scale = resolution / 96
    windows = {}
    for name, window in DEFAULT_WINDOWS.items():
        size = max(multiple, int(round(window.size * scale / multiple)) * multiple)
        size = min(size, resolution - resolution % multiple)
        centre_row = (window.top + window.size / 2) * scale
        centre_col = (window.left + window.size / 2) * scale
        top = min(max(0, int(round(centre_row - size / 2))), resolution - size)
        left = min(max(0, int(round(centre_col - size / 2))), resolution - size)
        windows[name] = PartWindow(top, left, size)
    return windows


def check_part_refine(refine) -> dict[str, float]:
    """`refine` as one number (every part) or a mapping part -> number (parts not named
    keep 1.0) -> {part: float} for all of PART_NAMES. Raises ValueError on bad input."""
    if isinstance(refine, Mapping):
        unknown = sorted(set(map(str, refine)) - set(PART_NAMES))
        if unknown:
            raise ValueError(f"Unknown face part(s) {', '.join(unknown)} in refine: use "
                             f"{', '.join(PART_NAMES)}.")
        values = {name: refine.get(name, 1.0) for name in PART_NAMES}
    else:
        values = dict.fromkeys(PART_NAMES, refine)
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, (int, float, np.floating,
                                                            np.integer)):
            raise ValueError(f"refine for {name} must be a number between 0 and 1, "
                             f"got {value!r}.")
        if not 0.0 <= float(value) <= 1.0:  # also rejects NaN
            raise ValueError(f"refine for {name} must be between 0 and 1, got {value}.")
        values[name] = float(value)
    return values


def blend_part_latents(own: Mapping[str, np.ndarray], projected: Mapping[str, np.ndarray],
                       refine: Mapping[str, float]) -> dict[str, np.ndarray]:
    """{part: (B, d)} own and projected latents -> {part: (B, d)} blended by the part's
    refine (`s2a.projection.refine_latent`: 0 = own, 1 = projected)."""
    from s2a.projection import refine_latent

    return {name: np.stack([refine_latent(a, b, refine[name])
                            for a, b in zip(own[name], projected[name])]).reshape(own[name].shape)
            for name in own}


def crop_part(sketches: torch.Tensor, window: PartWindow) -> torch.Tensor:
    """(B, 1, R, R) -> (B, 1, size, size): the part's window."""
    rows, cols = window.slices()
    return sketches[:, :, rows, cols]


def blank_windows(sketches: torch.Tensor, windows: Mapping[str, PartWindow]) -> torch.Tensor:
    """(B, 1, R, R) sketches (1 = paper) with every window wiped to paper: the "rest"."""
    out = sketches.clone()
    for window in windows.values():
        rows, cols = window.slices()
        out[:, :, rows, cols] = 1.0
    return out


def window_mask(window: PartWindow, resolution: int, feather: int) -> torch.Tensor:
    """(R, R) weight of a pasted part: 1 inside its window, falling linearly to 0 over the
    `feather` pixels inside the window's border, 0 outside."""
    ramp = torch.ones(window.size)
    steps = torch.arange(1, feather + 1, dtype=torch.float32) / (feather + 1)
    if 0 < feather and 2 * feather < window.size:
        ramp[:feather] = steps
        ramp[-feather:] = steps.flip(0)
    mask = torch.zeros(resolution, resolution)
    rows, cols = window.slices()
    mask[rows, cols] = ramp[:, None] * ramp[None, :]
    return mask


def union_mask(windows: Mapping[str, PartWindow], resolution: int, feather: int) -> torch.Tensor:
    """(R, R): the largest `window_mask` of `windows` at each pixel, where parts replace
    the rest."""
    mask = torch.zeros(resolution, resolution)
    for window in windows.values():
        mask = torch.maximum(mask, window_mask(window, resolution, feather))
    return mask


def assemble(rest: torch.Tensor, parts: Mapping[str, torch.Tensor],
             windows: Mapping[str, PartWindow], feather: int = DEFAULT_FEATHER) -> torch.Tensor:
    """Paste decoded parts into the decoded rest: (B, 1, R, R) + {part: (B, 1, s, s)} ->
    (B, 1, R, R), 1 = paper.

    Where windows overlap the darker stroke wins (both parts' lines are kept); each part
    fades into the rest over `feather` px at its border.
    """
    layer = torch.ones_like(rest)  # the parts' strokes, paper elsewhere
    for name, part in parts.items():
        rows, cols = windows[name].slices()
        placed = torch.ones_like(rest)
        placed[:, :, rows, cols] = part
        layer = torch.minimum(layer, placed)
    weight = union_mask({n: windows[n] for n in parts}, rest.shape[-1], feather)
    weight = weight.to(rest.device)
    return weight * layer + (1.0 - weight) * rest


def read_part_windows(folder: str | Path) -> tuple[dict[str, PartWindow], int, dict]:
    """(windows, feather, the whole description) from a part model folder's parts.json.
    Raises ValueError when it is missing or malformed."""
    folder = Path(folder)
    meta_path = folder / PARTS_FILE
    if not meta_path.is_file():
        raise ValueError(f"No part model in {folder}: {PARTS_FILE} is missing.")
    try:
        meta = json.loads(meta_path.read_text())
        windows = {n: PartWindow(*map(int, meta["windows"][n])) for n in WINDOWED_PARTS}
        feather = int(meta.get("feather", DEFAULT_FEATHER))
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"{meta_path} is not a valid part description: {error}") from None
    return windows, feather, meta


class PartModel:
    """Per-part autoencoders and banks; "rest" uses the whole-face autoencoder it is given."""

    def __init__(self, windows: Mapping[str, PartWindow],
                 autoencoders: Mapping[str, SketchAutoencoder], banks: Mapping[str, LatentBank],
                 rest_autoencoder: SketchAutoencoder, feather: int = DEFAULT_FEATHER,
                 keys: PartKeys | None = None, rest: str = "blanked"):
        resolution = rest_autoencoder.config.resolution
        if rest not in REST_SOURCES:
            raise ValueError(f"rest must be one of {REST_SOURCES}, got {rest!r}.")
        self.rest = rest
        missing = [n for n in WINDOWED_PARTS if n not in windows or n not in autoencoders]
        missing += [n for n in PART_NAMES if n not in banks]
        if missing:
            raise ValueError(f"The part model lacks {', '.join(sorted(set(missing)))}.")
        for name in WINDOWED_PARTS:
            windows[name].check(resolution, name)
            size = autoencoders[name].config.resolution
            if size != windows[name].size:
                raise ValueError(f"The {name} autoencoder is a {size} px model but its "
                                 f"window is {windows[name].size} px.")
        all_autoencoders = {**autoencoders, "rest": rest_autoencoder}
        sizes = {len(banks[n]) for n in PART_NAMES}
        if len(sizes) != 1:
            raise ValueError(f"The part banks hold different numbers of sketches: {sorted(sizes)}.")
        for name in PART_NAMES:
            if banks[name].dim != all_autoencoders[name].config.latent_dim:
                raise ValueError(f"The {name} bank's latents ({banks[name].dim}-d) do not fit "
                                 f"its autoencoder ({all_autoencoders[name].config.latent_dim}-d).")
        self.windows = {n: windows[n] for n in WINDOWED_PARTS}
        self.autoencoders = {n: all_autoencoders[n].eval() for n in PART_NAMES}
        self.banks = {n: banks[n] for n in PART_NAMES}
        self.feather = int(feather)
        self.resolution = resolution
        if keys is not None and (set(keys.banks) != set(WINDOWED_PARTS)
                                 or len(keys) != len(self.banks["rest"])):
            raise ValueError(f"The part keys cover {sorted(keys.banks)} with {len(keys)} "
                             f"sketches; the part model needs {list(WINDOWED_PARTS)} with "
                             f"{len(self.banks['rest'])}.")
        # Where each windowed part's neighbours are searched (`s2a.part_keys`); without
        # keys, in the part's own bank.
        self.keys = keys
        # Each window's feathered mask and their union, computed once at load: per-part
        # calls trace by them (`refine_map`).
        self._window_masks = {n: window_mask(w, resolution, self.feather)
                              for n, w in self.windows.items()}
        self._windows_mask = union_mask(self.windows, resolution, self.feather)

    def __len__(self) -> int:
        return len(self.banks["rest"])

    def windows_mask(self) -> torch.Tensor:
        """(R, R): 1 inside any window, fading to 0 over `feather` px at the borders, 0 in
        the rest: where the assembled sketch is the parts' (computed once, at load)."""
        return self._windows_mask

    def refine_map(self, refine: Mapping[str, float]) -> torch.Tensor:
        """(R, R): each pixel's refine, its window's part inside a window and "rest"
        outside (feathered like the assembly; where windows overlap, their mean weighted by
        the masks), for a generator that traces the drawn sketch by 1 - refine."""
        rest = 1.0 - self._windows_mask
        masks = self._window_masks
        total = rest * refine["rest"] + sum(m * refine[n] for n, m in masks.items())
        return total / (rest + sum(masks.values()))

    def to(self, device: str | torch.device) -> PartModel:
        for name in WINDOWED_PARTS:
            self.autoencoders[name].to(device)
        return self

    def inputs(self, sketches: torch.Tensor) -> dict[str, torch.Tensor]:
        """(B, 1, R, R) framed sketches -> each part's encoder input."""
        crops = {n: crop_part(sketches, w) for n, w in self.windows.items()}
        crops["rest"] = sketches if self.rest == "whole" else blank_windows(sketches, self.windows)
        return crops

    @torch.no_grad()
    def project(self, sketches: torch.Tensor, refine: Mapping[str, float], k: int, seed: int,
                include=(), exclude=()) -> tuple[torch.Tensor, dict[str, torch.Tensor],
                                                  dict[str, list[list[tuple[int, float]]]]]:
        """(B, 1, R, R) sketches -> (assembled projected sketch (B, 1, R, R), each part's
        decoded sketch, each part's (bank_index, weight) pairs per item).

        `refine`: {part: value in [0, 1]} for every part (see `check_part_refine`).
        """
        latents, neighbors = self.project_latents(sketches, refine, k, seed, include, exclude)
        assembled, decoded = self.decode(latents)
        return assembled, decoded, neighbors

    @torch.no_grad()
    def project_latents(self, sketches: torch.Tensor, refine: Mapping[str, float], k: int,
                        seed: int, include=(), exclude=()
                        ) -> tuple[dict[str, np.ndarray], dict[str, list[list[tuple[int, float]]]]]:
        """Encode each part and project it on its bank: {part: (B, d_part) refined latents}
        and {part: (bank_index, weight) pairs per item}."""
        own, projected, neighbors = self.encode_and_project(sketches, k, seed, include, exclude)
        return blend_part_latents(own, projected, refine), neighbors

    @torch.no_grad()
    def encode_and_project(self, sketches: torch.Tensor, k: int, seed: int, include=(),
                           exclude=()) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray],
                                                dict[str, list[list[tuple[int, float]]]]]:
        """Each part's own latents {part: (B, d_part)}, their projections on the part's
        bank (same shapes) and {part: (bank_index, weight) pairs per item}; blend them with
        `blend_part_latents`."""
        own, projected, neighbors = {}, {}, {}
        for name, crop in self.inputs(sketches).items():
            autoencoder = self.autoencoders[name]
            device = next(autoencoder.parameters()).device
            own[name] = autoencoder.encode(crop.to(device)).cpu().numpy()  # (B, d)
        found = self.key_neighbors(sketches, k, include, exclude, own)  # {part: (B, k)}
        for name, bank in self.banks.items():
            projection = bank.project(own[name], k, seed=seed, include=include,
                                      exclude=exclude, neighbor_rows=found.get(name))
            projected[name] = projection.latent
            neighbors[name] = [[(int(i), float(w)) for i, w in zip(row_i, row_w)]
                               for row_i, row_w in zip(projection.indices, projection.weights)]
        return own, projected, neighbors

    @torch.no_grad()
    def key_neighbors(self, sketches: torch.Tensor, k: int, include=(), exclude=(),
                      own: Mapping[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
        """{windowed part: (B, k) bank rows} found by the part keys from the whole sketch,
        re-ranked with the parts' own latents when given ({part: (B, d_part)}; with a
        whole-sketch rest, its latent is the whole sketch's and is not encoded again); empty
        without keys (each part then searches its own bank)."""
        if self.keys is None:
            return {}
        whole = self.autoencoders["rest"]
        device = next(whole.parameters()).device
        if own is not None and "rest" in own and self.rest == "whole":
            latents = torch.from_numpy(own["rest"]).to(device)  # the rest is the whole sketch
        else:
            latents = whole.encode(sketches.to(device))  # (B, d)
        return self.keys.neighbors(whole, latents, self.windows, k, include, exclude,
                                   own, self.banks)

    @torch.no_grad()
    def decode(self, latents: Mapping[str, np.ndarray]
               ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """{part: (B, d_part) latents} -> (assembled sketch (B, 1, R, R), {part: decoded})."""
        decoded = {}
        for name, z in latents.items():
            autoencoder = self.autoencoders[name]
            device = next(autoencoder.parameters()).device
            decoded[name] = autoencoder.decode(torch.from_numpy(z).to(device))
        # The rest is not wiped inside the windows: where a part fades out at its border
        # the rest's own strokes show, instead of a white seam around every window.
        rest = decoded["rest"]
        parts = {n: decoded[n].to(rest.device) for n in WINDOWED_PARTS}
        return assemble(rest, parts, self.windows, self.feather), decoded

    def save(self, folder: str | Path) -> Path:
        """Write parts.json, each windowed part's autoencoder and every part's bank."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        meta = {"resolution": self.resolution, "feather": self.feather, "rest": self.rest,
                "windows": {n: [w.top, w.left, w.size] for n, w in self.windows.items()}}
        (folder / PARTS_FILE).write_text(json.dumps(meta, indent=2) + "\n")
        for name in WINDOWED_PARTS:
            self.autoencoders[name].save_pretrained(folder / name / AUTOENCODER_DIR)
            self.banks[name].save(folder / name / BANK_DIR)
        if self.rest == "blanked":  # "whole" uses the whole-face bank, saved on its own
            self.banks["rest"].save(folder / "rest" / BANK_DIR)
        if self.keys is not None:
            self.keys.save(folder)
        return folder

    @classmethod
    def load(cls, folder: str | Path, rest_autoencoder: SketchAutoencoder,
             whole_bank: LatentBank | None = None) -> PartModel:
        """Read a folder written by `save`; "rest" uses `rest_autoencoder` (the whole-face
        one) and, for ``"rest": "whole"``, `whole_bank` (the whole-face bank). Raises
        ValueError when the folder is incomplete or disagrees with itself."""
        folder = Path(folder)
        meta_path = folder / PARTS_FILE
        windows, feather, meta = read_part_windows(folder)
        if int(meta.get("resolution", rest_autoencoder.config.resolution)) != \
                rest_autoencoder.config.resolution:
            raise ValueError(f"{meta_path} is for {meta['resolution']} px faces, the "
                             f"autoencoder for {rest_autoencoder.config.resolution} px.")
        from s2a.projection import LatentBank

        autoencoders, banks = {}, {}
        # huggingface_hub prints a line per local load; callers' logs do not need them.
        with contextlib.redirect_stdout(io.StringIO()):
            for name in WINDOWED_PARTS:
                path = folder / name / AUTOENCODER_DIR
                if not (path / "config.json").is_file():
                    raise ValueError(f"No {name} autoencoder in {path}.")
                autoencoders[name] = SketchAutoencoder.from_pretrained(path)
        rest = meta.get("rest", "blanked")
        if rest not in REST_SOURCES:
            raise ValueError(f"{meta_path}: rest must be one of {REST_SOURCES}, got {rest!r}.")
        for name in PART_NAMES if rest == "blanked" else WINDOWED_PARTS:
            try:
                banks[name] = LatentBank.load(folder / name / BANK_DIR)
            except FileNotFoundError as error:
                raise ValueError(str(error)) from None
        if rest == "whole":
            if whole_bank is None:
                raise ValueError(f"{meta_path} says the rest is the whole face: load it with "
                                 "the whole-face bank.")
            banks["rest"] = whole_bank
        return cls(windows, autoencoders, banks, rest_autoencoder, feather,
                   PartKeys.load(folder, WINDOWED_PARTS), rest)
