"""The fixed feature network behind the KID realism score, and the corruptions it learns.

The network is trained once, on real faces only (`training.train_realism_net`), to tell
which of a set of corruptions were applied to a face and how strongly: blur, noise,
colour shift, JPEG blocking, down-then-up resampling and a faint periodic grid. Those are
what is wrong with generated faces, so its pooled features move with them, smoothly in
the strength. Nothing is downloaded (no pretrained Inception): the shipped weights live in
`weights/realism/` and every evaluation uses the same net.

    python -m evaluation.realism_net export runs/realism/realism weights/realism --half

Images are (B, 3, R, R) RGB in [0, 1] throughout; normalisation constants and the
feature standardisation (per-dimension mean and one shared scale over real training
faces, stored as buffers in model.safetensors) travel with the model. (No
`from __future__ import annotations`: the hub mixin reads the `config` annotation at run
time.)
"""

import argparse
import io
import json
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from s2a.hub import BUNDLED_WEIGHTS
from s2a.manifest import MANIFEST, read_manifest, sha256_of
from s2a.models import SafeHubMixin, _tuple_fields

REALISM_DIR = "realism"
BUNDLED_REALISM = BUNDLED_WEIGHTS / REALISM_DIR

# Each corruption maps (B, 3, R, R) images in [0, 1], (B,) strengths in [0, 1] and a
# torch.Generator to corrupted images; strength 0 is the mildest visible version.
Corruption = Callable[[torch.Tensor, torch.Tensor, torch.Generator], torch.Tensor]


@dataclass(frozen=True)
class RealismNetConfig:
    """Image (3, R, R) -> feature vector (channels[-1],) + corruption heads."""

    resolution: int = 96
    # One conv per entry; stride 2 where `strides` says so (96 -> 6 px at the end).
    channels: tuple[int, ...] = (16, 32, 64, 64, 128, 128)
    strides: tuple[int, ...] = (1, 2, 2, 1, 2, 2)
    corruptions: tuple[str, ...] = ("blur", "noise", "colour", "jpeg", "resample", "grid")
    image_mean: float = 0.5
    image_std: float = 0.5

    def __post_init__(self):
        _tuple_fields(self)
        if len(self.channels) != len(self.strides) or not self.channels:
            raise ValueError("channels and strides need one entry per convolution.")
        unknown = [name for name in self.corruptions if name not in CORRUPTIONS]
        if unknown:
            raise ValueError(f"Unknown corruptions {unknown}; known: {sorted(CORRUPTIONS)}.")
        steps = math.prod(self.strides)
        if self.resolution % steps != 0:
            raise ValueError(f"resolution {self.resolution} must be divisible by {steps}.")

    @property
    def feature_dim(self) -> int:
        return self.channels[-1]


class RealismNet(nn.Module, SafeHubMixin):
    """A small CNN; `features` is what KID compares, `forward` what training fits.

    `forward` returns (B, 2K) for K corruptions: K presence logits, then K strength
    logits (sigmoid -> strength in [0, 1]).
    """

    def __init__(self, config: RealismNetConfig):
        super().__init__()
        self.config = config
        layers, cin = [], 3
        for cout, stride in zip(config.channels, config.strides):
            layers += [nn.Conv2d(cin, cout, 3, stride=stride, padding=1),
                       nn.GroupNorm(min(8, cout), cout), nn.LeakyReLU(0.2)]
            cin = cout
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(cin, 2 * len(config.corruptions))
        # Mean of the pooled features over real training faces and one shared scale (see
        # training.train_realism_net.standardise_features); identity until training sets them.
        self.register_buffer("feature_mean", torch.zeros(cin))
        self.register_buffer("feature_std", torch.ones(cin))

    def _check(self, images: torch.Tensor) -> None:
        size = self.config.resolution
        if images.ndim != 4 or tuple(images.shape[1:]) != (3, size, size):
            raise ValueError(f"The realism net takes (B, 3, {size}, {size}) images in [0, 1], "
                             f"got {tuple(images.shape)}.")

    def pooled(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, R, R) in [0, 1] -> (B, D) raw pooled features."""
        self._check(images)
        x = (images - self.config.image_mean) / self.config.image_std
        return self.body(x).mean(dim=(2, 3))  # (B, D)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, R, R) in [0, 1] -> (B, 2K) presence and strength logits."""
        return self.head(self.pooled(images))

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, R, R) in [0, 1] -> (B, D) features KID compares.

        Standardised over real faces, then asinh: linear within a few standard deviations
        of real faces, logarithmic beyond, so a badly blurred set (tens of standard
        deviations out) cannot blow up the cubic kernel and drown every other difference.
        """
        return torch.asinh((self.pooled(images) - self.feature_mean) / self.feature_std)


def load_realism_net(folder: str | Path | None = None) -> RealismNet:
    """The realism net in `folder` (default: the bundled weights/realism/), float32, eval.

    Raises ValueError when the folder holds no realism net.
    """
    folder = Path(folder) if folder is not None else BUNDLED_REALISM
    if not (folder / "config.json").is_file() or not (folder / "model.safetensors").is_file():
        raise ValueError(f"No realism net (config.json + model.safetensors) in {folder}: train "
                         "one with `python -m training.train_realism_net`.")
    return RealismNet.from_pretrained(folder).float().eval()


@torch.no_grad()
def extract_features(net: RealismNet, images: np.ndarray, batch_size: int = 128) -> np.ndarray:
    """(N, R, R, 3) uint8 faces -> (N, D) float64 features of `net`.

    Raises ValueError on anything but a non-empty uint8 stack at the net's resolution.
    """
    images = np.asarray(images)
    size = net.config.resolution
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != (size, size, 3):
        raise ValueError(f"Expected (N, {size}, {size}, 3) uint8 faces, got "
                         f"{images.shape} {images.dtype}.")
    if len(images) == 0:
        raise ValueError("No images to extract features from.")
    device = next(net.parameters()).device
    chunks = []
    for start in range(0, len(images), batch_size):
        batch = torch.from_numpy(np.array(images[start:start + batch_size]))  # a writable copy
        batch = batch.to(device).permute(0, 3, 1, 2).float() / 255.0  # (B, 3, R, R)
        chunks.append(net.features(batch).double().cpu().numpy())
    return np.concatenate(chunks)


# ---------------------------------------------------------------------------
# Corruptions (training targets, and the sensitivity table's degraded real faces)
# ---------------------------------------------------------------------------


def _uniform(generator: torch.Generator, count: int) -> torch.Tensor:
    return torch.rand(count, generator=generator)


def gaussian_blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Blur (B, 3, R, R) images with a Gaussian of `sigma` px (reflect padding)."""
    if sigma <= 0:
        return images
    radius = max(1, int(math.ceil(3 * sigma)))
    x = torch.arange(-radius, radius + 1, dtype=images.dtype, device=images.device)
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    kernel = (kernel / kernel.sum()).repeat(3, 1)  # (3, K)
    padded = F.pad(images, (radius, radius, radius, radius), mode="reflect")
    out = F.conv2d(padded, kernel.view(3, 1, 1, -1), groups=3)
    return F.conv2d(out, kernel.view(3, 1, -1, 1), groups=3)


def blur(images, strength, generator):
    """Gaussian blur, sigma 0.4-2.5 px."""
    sigmas = 0.4 + 2.1 * strength
    return torch.stack([gaussian_blur(image[None], float(s))[0]
                        for image, s in zip(images, sigmas)])


def add_noise(images: torch.Tensor, std: float, generator: torch.Generator,
              mono: bool = False) -> torch.Tensor:
    """Add Gaussian noise of `std` (in [0, 1] units), per channel or grey (`mono`)."""
    b, _, h, w = images.shape
    noise = torch.randn(b, 1 if mono else 3, h, w, generator=generator).to(images)
    return (images + std * noise).clamp(0, 1)


def noise(images, strength, generator):
    """Gaussian noise, std 0.01-0.15, colour or grey, sometimes as 2 px speckle."""
    out = []
    for image, s in zip(images, strength):
        std = 0.01 + 0.14 * float(s)
        mono = bool(_uniform(generator, 1) < 0.3)
        if _uniform(generator, 1) < 0.3:  # coarse speckle: noise drawn at half size
            speck = add_noise(torch.zeros_like(image[None, :, ::2, ::2]) + 0.5, std,
                              generator, mono) - 0.5
            speck = F.interpolate(speck, size=image.shape[1:], mode="nearest")
            out.append((image[None] + speck).clamp(0, 1)[0])
        else:
            out.append(add_noise(image[None], std, generator, mono)[0])
    return torch.stack(out)


def colour(images, strength, generator):
    """Washed-out or cast colour: desaturate, lower contrast, per-channel gain and offset."""
    b = len(images)
    s = strength.view(b, 1, 1, 1).to(images)
    grey = images.mean(dim=1, keepdim=True)
    desaturate = 0.1 + 0.6 * s * _uniform(generator, b).view(b, 1, 1, 1).to(images)
    out = images + desaturate * (grey - images)
    mean = out.mean(dim=(1, 2, 3), keepdim=True)
    contrast = 1 - 0.4 * s * _uniform(generator, b).view(b, 1, 1, 1).to(images)
    out = mean + contrast * (out - mean)
    gain = 1 + 0.25 * s * (2 * _uniform(generator, 3 * b).view(b, 3, 1, 1).to(images) - 1)
    offset = 0.1 * s * (2 * _uniform(generator, 3 * b).view(b, 3, 1, 1).to(images) - 1)
    return (out * gain + offset).clamp(0, 1)


def jpeg(images, strength, generator):
    """JPEG compression at quality 60 (strength 0) down to 5 (strength 1)."""
    out = []
    for image, s in zip(images, strength):
        pixels = (image.permute(1, 2, 0).clamp(0, 1) * 255).round().byte().cpu().numpy()
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="JPEG", quality=int(round(60 - 55 * float(s))))
        decoded = np.asarray(Image.open(buffer).convert("RGB"), dtype=np.float32) / 255.0
        out.append(torch.from_numpy(decoded).permute(2, 0, 1))
    return torch.stack(out).to(images)


def resample(images, strength, generator):
    """Down by 1.25-4x (area or bilinear), back up (bilinear or nearest)."""
    size = images.shape[-1]
    out = []
    for image, s in zip(images, strength):
        small = max(4, int(round(size / (1.25 + 2.75 * float(s)))))
        down = "area" if _uniform(generator, 1) < 0.5 else "bilinear"
        up = "bilinear" if _uniform(generator, 1) < 0.7 else "nearest"
        x = F.interpolate(image[None], size=small, mode=down,
                          **({"align_corners": False} if down == "bilinear" else {}))
        x = F.interpolate(x, size=size, mode=up,
                          **({"align_corners": False} if up == "bilinear" else {}))
        out.append(x[0])
    return torch.stack(out).clamp(0, 1)


def grid(images, strength, generator):
    """A faint periodic grid or checkerboard (period 2-4 px), amplitude 0.01-0.08."""
    size = images.shape[-1]
    coords = torch.arange(size, dtype=images.dtype, device=images.device)
    out = []
    for image, s in zip(images, strength):
        period = int(torch.randint(2, 5, (1,), generator=generator))
        phase = 2 * math.pi * coords / period
        pattern = torch.cos(phase)[:, None] * torch.cos(phase)[None, :]  # (R, R)
        amplitude = 0.01 + 0.07 * float(s)
        out.append((image + amplitude * pattern).clamp(0, 1))
    return torch.stack(out)


CORRUPTIONS: dict[str, Corruption] = {
    "blur": blur, "noise": noise, "colour": colour, "jpeg": jpeg, "resample": resample,
    "grid": grid,
}


def corrupt_batch(images: torch.Tensor, corruptions: tuple[str, ...], generator: torch.Generator,
                  clean_share: float = 0.3, apply_share: float = 0.35
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Randomly corrupt (B, 3, R, R) images in [0, 1] for training.

    A `clean_share` of the images stay as they are; each other image gets every corruption
    with probability `apply_share` (at least one), each at a uniform random strength, in a
    random order. Returns (corrupted images, (B, K) presence in {0, 1}, (B, K) strengths,
    0 where absent).
    """
    b, k = len(images), len(corruptions)
    present = (_uniform(generator, b * k).view(b, k) < apply_share).float()
    forced = torch.randint(0, k, (b,), generator=generator)
    none = present.sum(dim=1) == 0
    present[none, forced[none]] = 1.0
    present[_uniform(generator, b) < clean_share] = 0.0
    strength = _uniform(generator, b * k).view(b, k) * present
    out = images.clone()
    for j in torch.randperm(k, generator=generator).tolist():
        rows = present[:, j].nonzero()[:, 0]
        if len(rows):
            out[rows] = CORRUPTIONS[corruptions[j]](out[rows], strength[rows, j], generator)
    return out, present, strength


# ---------------------------------------------------------------------------
# Shipping
# ---------------------------------------------------------------------------


def export(source: str | Path, target: str | Path, half: bool = True) -> Path:
    """Save the realism net from `source` into `target` (fp16 with `half`).

    When `target`'s parent is a weights folder with a manifest, the realism files' entries
    are added to it (the other entries are left as they are). Returns `target`.
    """
    target = Path(target)
    net = load_realism_net(source)
    if half:
        net = net.half()
    net.save_pretrained(target)
    manifest = target.parent / MANIFEST
    if manifest.is_file():
        files = read_manifest(target.parent)
        document = json.loads(manifest.read_text())
        for path in sorted(target.iterdir()):
            if path.is_file() and not path.name.startswith("."):
                files[f"{target.name}/{path.name}"] = {"size": path.stat().st_size,
                                                       "sha256": sha256_of(path)}
        document["files"] = files
        manifest.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Ship a trained realism net.")
    sub = parser.add_subparsers(dest="command", required=True)
    command = sub.add_parser("export", help="copy a trained net into a weights folder")
    command.add_argument("source", help="folder written by training.train_realism_net")
    command.add_argument("target", help="e.g. weights/realism")
    command.add_argument("--half", action="store_true", help="store float16 weights")
    args = parser.parse_args(argv)
    try:
        path = export(args.source, args.target, args.half)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"Exported the realism net to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
