"""The networks: sketch autoencoder, hint-conditioned generator, discriminator, SimpleGAN.

Every network takes one frozen dataclass `config` and works in natural units: sketches
are (B, 1, R, R) in [0, 1] with 1 = paper, images (B, 3, R, R) RGB in [0, 1], hints
(B, 4, R, R) = RGB in [0, 1] (0 where unhinted) + a {0, 1} mask. Normalisation constants
live in the configs, so callers never copy them. Weights are saved as config.json +
model.safetensors through huggingface_hub's PyTorchModelHubMixin, loaded strictly, and
pickle files are refused. (No `from __future__ import annotations` here: the mixin reads
the `config` annotation at run time to rebuild the dataclass from config.json.)
"""


from dataclasses import dataclass, fields
from pathlib import Path

import torch
import torch.nn.functional as F
from huggingface_hub import PyTorchModelHubMixin
from torch import nn


class SafeHubMixin(PyTorchModelHubMixin):
    """PyTorchModelHubMixin that loads strictly and never falls back to a pickle."""

    @classmethod
    def _from_pretrained(cls, *, strict: bool = True, **kwargs):  # noqa: ARG003
        folder = Path(kwargs["model_id"])
        if folder.is_dir() and not (folder / "model.safetensors").is_file():
            raise ValueError(f"No model.safetensors in {folder}: only safetensors weights load.")
        # A missing or extra tensor means the files do not match the config: fail loudly.
        return super()._from_pretrained(strict=True, **kwargs)

    def save_pretrained(self, save_directory, **kwargs):
        """Write exactly config.json + model.safetensors into `save_directory`."""
        card = Path(save_directory) / "README.md"
        had_card = card.exists()
        result = super().save_pretrained(save_directory, **kwargs)
        if not had_card:
            # One model card for the whole weights folder (weights/README.md), not per network.
            card.unlink(missing_ok=True)
        return result

    @classmethod
    def _load_as_pickle(cls, model, model_file, map_location, strict):
        raise ValueError(
            f"Refusing to load {model_file}: only model.safetensors weights are accepted."
        )


def _tuple_fields(config) -> None:
    # config.json stores tuples as lists; turn them back so configs compare equal.
    for item in fields(config):
        value = getattr(config, item.name)
        if isinstance(value, list):
            object.__setattr__(config, item.name, tuple(value))


def _check_resolution(resolution: int, levels: int) -> None:
    if resolution % (2**levels) != 0:
        raise ValueError(
            f"resolution {resolution} must be divisible by {2**levels} "
            f"({levels} down-sampling steps)."
        )


@dataclass(frozen=True)
class SketchAutoencoderConfig:
    """Stage 1: sketch (1, R, R) -> latent (latent_dim,) -> sketch."""

    resolution: int = 96
    latent_dim: int = 512
    # One stride-2 step each: 96 -> 6x6x128 at the bottleneck. A coarser 3x3 bottleneck
    # leaves the decoder too little room to place strokes: it reconstructs blobs.
    channels: tuple[int, ...] = (16, 32, 64, 128)
    sketch_mean: float = 0.5
    sketch_std: float = 0.5

    def __post_init__(self):
        _tuple_fields(self)
        _check_resolution(self.resolution, len(self.channels))


@dataclass(frozen=True)
class GeneratorConfig:
    """Stage 2: latent + hints -> face.

    `hint_resolutions` are the feature-map sizes at which the hint RGB + mask is
    concatenated to the features (several points, so hints steer both the coarse
    colour layout and the fine colour edges).
    """

    resolution: int = 96
    latent_dim: int = 512
    # From the coarsest map (3x3 at 96 px) up; thin at full resolution to stay fast on CPU.
    channels: tuple[int, ...] = (256, 192, 128, 96, 48, 24)
    # Every scale: a hint then also sets the coarse colour layout of its whole region
    # (the ablation in weights/README.md).
    hint_resolutions: tuple[int, ...] = (3, 6, 12, 24, 48, 96)
    image_mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    image_std: tuple[float, float, float] = (0.5, 0.5, 0.5)

    def __post_init__(self):
        _tuple_fields(self)
        levels = len(self.channels) - 1
        _check_resolution(self.resolution, levels)
        sizes = {self.resolution // 2**i for i in range(levels + 1)}
        unknown = set(self.hint_resolutions) - sizes
        if unknown:
            raise ValueError(
                f"hint_resolutions {sorted(unknown)} are not feature-map sizes {sorted(sizes)}."
            )


@dataclass(frozen=True)
class DiscriminatorConfig:
    """Patch discriminator on (image, hints): 3 + 4 input channels."""

    resolution: int = 96
    channels: tuple[int, ...] = (32, 64, 128)  # narrow: D dominated the CPU step time
    image_mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    image_std: tuple[float, float, float] = (0.5, 0.5, 0.5)

    def __post_init__(self):
        _tuple_fields(self)


@dataclass(frozen=True)
class SimpleGANConfig:
    """The pix2pix-style baseline: U-Net from sketch + hints (5 channels) to face."""

    resolution: int = 96
    channels: tuple[int, ...] = (32, 64, 128, 256)
    sketch_mean: float = 0.5
    sketch_std: float = 0.5
    image_mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    image_std: tuple[float, float, float] = (0.5, 0.5, 0.5)

    def __post_init__(self):
        _tuple_fields(self)
        _check_resolution(self.resolution, len(self.channels))


def _down(cin: int, cout: int, norm: bool = True) -> nn.Sequential:
    layers = [nn.Conv2d(cin, cout, 4, stride=2, padding=1, bias=not norm)]
    if norm:
        layers.append(nn.BatchNorm2d(cout))
    layers.append(nn.LeakyReLU(0.2, inplace=True))
    return nn.Sequential(*layers)


def _conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.LeakyReLU(0.2, inplace=True),
    )


def _normalise_hints(hints: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    # (B, 4, H, W): colour to the network's range, zero where unhinted; mask kept as is.
    rgb, mask = hints[:, :3], hints[:, 3:4]
    return torch.cat([(rgb - mean) / std * mask, mask], dim=1)


def downsample_hints(hints: torch.Tensor, size: int) -> torch.Tensor:
    """Mask-aware resize of (B, 4, H, W) hints to (B, 4, size, size).

    Colour is the mean over hinted pixels only; mask is 1 where any pixel was hinted.
    """
    if hints.shape[-1] == size:
        return hints
    rgb, mask = hints[:, :3], hints[:, 3:4]
    mask_sum = F.adaptive_avg_pool2d(mask, size)  # (B, 1, s, s)
    rgb_sum = F.adaptive_avg_pool2d(rgb * mask, size)  # (B, 3, s, s)
    hinted = (mask_sum > 0).to(hints.dtype)
    return torch.cat([rgb_sum / mask_sum.clamp_min(1e-6) * hinted, hinted], dim=1)


class SketchAutoencoder(nn.Module, SafeHubMixin):
    """Encoder sketch -> latent and decoder latent -> sketch (stage 1)."""

    def __init__(self, config: SketchAutoencoderConfig):
        super().__init__()
        self.config = config
        chans = config.channels
        self.bottom = config.resolution // 2 ** len(chans)
        encoder = [nn.Conv2d(1, chans[0], 3, padding=1), nn.LeakyReLU(0.2, inplace=True)]
        for cin, cout in zip((chans[0],) + chans[:-1], chans):
            encoder.append(_down(cin, cout))
        self.encoder = nn.Sequential(*encoder)
        flat = chans[-1] * self.bottom**2
        self.to_latent = nn.Linear(flat, config.latent_dim)
        self.from_latent = nn.Linear(config.latent_dim, flat)
        decoder = []
        for cin, cout in zip(chans[::-1], chans[::-1][1:] + (chans[0],)):
            decoder += [nn.Upsample(scale_factor=2, mode="nearest"), _conv(cin, cout)]
        decoder.append(nn.Conv2d(chans[0], 1, 3, padding=1))
        self.decoder = nn.Sequential(*decoder)

    def encode(self, sketch: torch.Tensor) -> torch.Tensor:
        """(B, 1, R, R) sketch in [0, 1], 1 = paper -> (B, latent_dim) latent."""
        x = (sketch - self.config.sketch_mean) / self.config.sketch_std
        features = self.encoder(x)  # (B, C, R/16, R/16)
        return self.to_latent(features.flatten(1))

    def decode_logits(self, latent: torch.Tensor) -> torch.Tensor:
        """(B, latent_dim) -> (B, 1, R, R) ink logits (training uses these with BCE)."""
        chans = self.config.channels
        x = self.from_latent(latent).view(-1, chans[-1], self.bottom, self.bottom)
        return self.decoder(F.leaky_relu(x, 0.2))

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        """(B, latent_dim) -> (B, 1, R, R) sketch in [0, 1], 1 = paper."""
        return 1.0 - torch.sigmoid(self.decode_logits(latent))

    def forward(self, sketch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (latent, ink logits of the reconstruction)."""
        latent = self.encode(sketch)
        return latent, self.decode_logits(latent)


class Generator(nn.Module, SafeHubMixin):
    """Latent -> spatial features -> RGB face, with hints injected at several sizes."""

    def __init__(self, config: GeneratorConfig):
        super().__init__()
        self.config = config
        chans = config.channels
        self.bottom = config.resolution // 2 ** (len(chans) - 1)
        self.from_latent = nn.Linear(config.latent_dim, chans[0] * self.bottom**2)
        self.blocks = nn.ModuleList()
        self.block_sizes = []
        size = self.bottom
        for cin, cout in zip(chans[:-1], chans[1:]):
            size *= 2
            extra = 4 if size in config.hint_resolutions else 0
            self.blocks.append(_conv(cin + extra, cout))
            self.block_sizes.append(size)
        self.hint_at_bottom = self.bottom in config.hint_resolutions
        first_in = chans[0] + (4 if self.hint_at_bottom else 0)
        self.first = _conv(first_in, chans[0])
        self.to_rgb = nn.Conv2d(chans[-1], 3, 3, padding=1)
        self.register_buffer("mean", torch.tensor(config.image_mean).view(1, 3, 1, 1), False)
        self.register_buffer("std", torch.tensor(config.image_std).view(1, 3, 1, 1), False)

    def forward(self, latent: torch.Tensor, hints: torch.Tensor) -> torch.Tensor:
        """(B, latent_dim), (B, 4, R, R) hints -> (B, 3, R, R) image in [0, 1]."""
        hints = _normalise_hints(hints, self.mean, self.std)
        x = self.from_latent(latent).view(-1, self.config.channels[0], self.bottom, self.bottom)
        x = F.leaky_relu(x, 0.2)
        if self.hint_at_bottom:
            x = torch.cat([x, downsample_hints(hints, self.bottom)], dim=1)
        x = self.first(x)
        for block, size in zip(self.blocks, self.block_sizes):
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
            if size in self.config.hint_resolutions:
                x = torch.cat([x, downsample_hints(hints, size)], dim=1)
            x = block(x)
        return torch.tanh(self.to_rgb(x)) * self.std + self.mean


class Discriminator(nn.Module, SafeHubMixin):
    """PatchGAN judging (image, hints): (B, 3+4, R, R) -> (B, 1, R/8, R/8) logits."""

    def __init__(self, config: DiscriminatorConfig):
        super().__init__()
        self.config = config
        sn = nn.utils.spectral_norm
        layers = []
        cin = 7
        for i, cout in enumerate(config.channels):
            layers += [sn(nn.Conv2d(cin, cout, 4, stride=2, padding=1)), nn.LeakyReLU(0.2, True)]
            if i == len(config.channels) - 1:
                layers += [sn(nn.Conv2d(cout, cout, 3, padding=1)), nn.LeakyReLU(0.2, True)]
            cin = cout
        layers.append(sn(nn.Conv2d(cin, 1, 3, padding=1)))
        self.net = nn.Sequential(*layers)
        self.register_buffer("mean", torch.tensor(config.image_mean).view(1, 3, 1, 1), False)
        self.register_buffer("std", torch.tensor(config.image_std).view(1, 3, 1, 1), False)

    def forward(self, image: torch.Tensor, hints: torch.Tensor) -> torch.Tensor:
        x = (image - self.mean) / self.std
        return self.net(torch.cat([x, _normalise_hints(hints, self.mean, self.std)], dim=1))


class SimpleGAN(nn.Module, SafeHubMixin):
    """pix2pix-style U-Net: (sketch, hints) -> face, no latent and no projection."""

    def __init__(self, config: SimpleGANConfig):
        super().__init__()
        self.config = config
        chans = config.channels
        self.stem = nn.Sequential(nn.Conv2d(5, chans[0], 3, padding=1), nn.LeakyReLU(0.2, True))
        self.downs = nn.ModuleList(
            _down(cin, cout) for cin, cout in zip((chans[0],) + chans[:-1], chans)
        )
        self.ups = nn.ModuleList()
        for level in reversed(range(len(chans))):
            cin = chans[level] + (chans[level] if level < len(chans) - 1 else 0)
            cout = chans[level - 1] if level > 0 else chans[0]
            self.ups.append(_conv(cin, cout))
        self.to_rgb = nn.Conv2d(chans[0] * 2, 3, 3, padding=1)
        self.register_buffer("mean", torch.tensor(config.image_mean).view(1, 3, 1, 1), False)
        self.register_buffer("std", torch.tensor(config.image_std).view(1, 3, 1, 1), False)

    def forward(self, sketch: torch.Tensor, hints: torch.Tensor) -> torch.Tensor:
        """(B, 1, R, R) sketch, (B, 4, R, R) hints -> (B, 3, R, R) image in [0, 1]."""
        s = (sketch - self.config.sketch_mean) / self.config.sketch_std
        x = self.stem(torch.cat([s, _normalise_hints(hints, self.mean, self.std)], dim=1))
        skips = [x]
        for down in self.downs:
            x = down(x)
            skips.append(x)
        skips.pop()  # the bottleneck itself is not a skip
        for i, up in enumerate(self.ups):
            if i > 0:
                x = torch.cat([x, skips.pop()], dim=1)
            x = F.interpolate(up(x), scale_factor=2.0, mode="nearest")
        x = torch.cat([x, skips.pop()], dim=1)  # (B, 2*C0, R, R)
        return torch.tanh(self.to_rgb(x)) * self.std + self.mean


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters (for model cards and logs)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)

