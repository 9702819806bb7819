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
    # pix2pixHD's multi-scale D: scale s judges the pair average-pooled 2**s times.
    scales: int = 1

    def __post_init__(self):
        _tuple_fields(self)
        if self.scales < 1:
            raise ValueError("scales must be at least 1.")


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


def _sketch_decoder(chans: tuple[int, ...]) -> nn.Sequential:
    """Stage 1's decoder layers (upsample + conv per level, then a 1-channel conv); generator
    v1's feature mapping is the same stack, so it can start as a copy of a trained one."""
    decoder = []
    for cin, cout in zip(chans[::-1], chans[::-1][1:] + (chans[0],)):
        decoder += [nn.Upsample(scale_factor=2, mode="nearest"), _conv(cin, cout)]
    decoder.append(nn.Conv2d(chans[0], 1, 3, padding=1))
    return nn.Sequential(*decoder)


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
        self.decoder = _sketch_decoder(chans)

    def encode(self, sketch: torch.Tensor) -> torch.Tensor:
        """(B, 1, R, R) sketch in [0, 1], 1 = paper -> (B, latent_dim) latent."""
        x = (sketch - self.config.sketch_mean) / self.config.sketch_std
        features = self.encoder(x)  # (B, C, R/16, R/16)
        return self.to_latent(features.flatten(1))

    def decoder_map(self, latent: torch.Tensor, level: int = 0) -> torch.Tensor:
        """(B, latent_dim) -> (B, C, s, s): the decoder's feature map after `level` of its
        up-blocks (s = bottom * 2**level; 0: the reshaped latent the decoder starts from)."""
        chans = self.config.channels
        if not 0 <= level <= len(chans):
            raise ValueError(f"level must be 0-{len(chans)} (decoder up-blocks), got {level}.")
        x = F.leaky_relu(self.from_latent(latent).view(-1, chans[-1], self.bottom, self.bottom),
                         0.2)
        for layer in self.decoder[:2 * level]:  # each up-block: upsample, conv
            x = layer(x)
        return x

    def decode_logits(self, latent: torch.Tensor) -> torch.Tensor:
        """(B, latent_dim) -> (B, 1, R, R) ink logits (training uses these with BCE)."""
        return self.decoder(self.decoder_map(latent))

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


def _patch_net(channels: tuple[int, ...]) -> nn.Sequential:
    sn = nn.utils.spectral_norm
    layers = []
    cin = 7
    for i, cout in enumerate(channels):
        layers += [sn(nn.Conv2d(cin, cout, 4, stride=2, padding=1)), nn.LeakyReLU(0.2, True)]
        if i == len(channels) - 1:
            layers += [sn(nn.Conv2d(cout, cout, 3, padding=1)), nn.LeakyReLU(0.2, True)]
        cin = cout
    layers.append(sn(nn.Conv2d(cin, 1, 3, padding=1)))
    return nn.Sequential(*layers)


class Discriminator(nn.Module, SafeHubMixin):
    """PatchGAN judging (image, hints): (B, 3+4, R, R) -> (B, 1, R/8, R/8) logits.

    With `scales` > 1, further PatchGANs judge the pair at R/2, R/4, ... (pix2pixHD), and
    `judge` returns every scale's intermediate features for the feature-matching loss.
    """

    def __init__(self, config: DiscriminatorConfig):
        super().__init__()
        self.config = config
        self.net = _patch_net(config.channels)
        self.coarser = nn.ModuleList(_patch_net(config.channels)
                                     for _ in range(config.scales - 1))
        self.register_buffer("mean", torch.tensor(config.image_mean).view(1, 3, 1, 1), False)
        self.register_buffer("std", torch.tensor(config.image_std).view(1, 3, 1, 1), False)

    def _pair(self, image: torch.Tensor, hints: torch.Tensor) -> torch.Tensor:
        x = (image - self.mean) / self.std
        return torch.cat([x, _normalise_hints(hints, self.mean, self.std)], dim=1)

    def forward(self, image: torch.Tensor, hints: torch.Tensor, every_scale: bool = False):
        """Logits of the finest scale; with `every_scale`, what `judge` returns (so a
        DistributedDataParallel wrapper still syncs the gradients)."""
        if every_scale:
            return self.judge(image, hints)
        return self.net(self._pair(image, hints))

    def judge(self, image: torch.Tensor, hints: torch.Tensor) -> list[list[torch.Tensor]]:
        """Per scale, the activations after each LeakyReLU and, last, the logits."""
        x = self._pair(image, hints)
        out = []
        for scale, net in enumerate([self.net, *self.coarser]):
            if scale > 0:
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
            features = []
            h = x
            for layer in net:
                h = layer(h)
                if isinstance(layer, nn.LeakyReLU):
                    features.append(h)
            out.append(features + [h])
        return out


def _add_unet(module: nn.Module, chans: tuple[int, ...]) -> None:
    """The SimpleGAN's U-Net layers (stem, downs, ups, to_rgb) on `module`: one definition,
    so generator v1's synthesis keeps the parameter names it is initialised from."""
    module.stem = nn.Sequential(nn.Conv2d(5, chans[0], 3, padding=1), nn.LeakyReLU(0.2, True))
    module.downs = nn.ModuleList(
        _down(cin, cout) for cin, cout in zip((chans[0],) + chans[:-1], chans)
    )
    module.ups = nn.ModuleList()
    for level in reversed(range(len(chans))):
        cin = chans[level] + (chans[level] if level < len(chans) - 1 else 0)
        cout = chans[level - 1] if level > 0 else chans[0]
        module.ups.append(_conv(cin, cout))
    module.to_rgb = nn.Conv2d(chans[0] * 2, 3, 3, padding=1)


class SimpleGAN(nn.Module, SafeHubMixin):
    """pix2pix-style U-Net: (sketch, hints) -> face, no latent and no projection."""

    def __init__(self, config: SimpleGANConfig):
        super().__init__()
        self.config = config
        chans = config.channels
        _add_unet(self, chans)
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



@dataclass(frozen=True)
class SpatialGeneratorConfig:
    """Generator v1: latent -> spatial feature maps -> face (DeepFaceDrawing's two halves).

    Feature mapping: the stage-1 decoder's layers (same `map_channels`, so it starts as a
    copy of the trained decoder) turn the latent into maps at R/4, R/2 and R plus the
    decoded sketch. Image synthesis: a U-Net (the SimpleGAN's shape, so it can start from
    the trained baseline) reads the decoded sketch + hints, takes the maps in at their
    scales, runs `residual_blocks` one step up from its bottleneck (R/8 with 4 levels) and
    draws the face. Hints enter at every scale.
    """

    resolution: int = 96
    latent_dim: int = 512
    map_channels: tuple[int, ...] = (16, 32, 64, 128)  # = SketchAutoencoderConfig.channels
    channels: tuple[int, ...] = (32, 64, 128, 256)  # = SimpleGANConfig.channels
    residual_blocks: int = 2
    # Trained to trace the user's own sketch by (1 - refine) beside the decoded latent
    # (`traced`); False: v1.0, which traces the decoded latent only.
    traces_sketch: bool = False
    sketch_mean: float = 0.5
    sketch_std: float = 0.5
    image_mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    image_std: tuple[float, float, float] = (0.5, 0.5, 0.5)

    def __post_init__(self):
        _tuple_fields(self)
        _check_resolution(self.resolution, len(self.map_channels))
        _check_resolution(self.resolution, len(self.channels))
        if not self.channels or not self.map_channels:
            raise ValueError("channels and map_channels need at least one level each.")
        if self.residual_blocks < 0:
            raise ValueError("residual_blocks must not be negative.")


class _Residual(nn.Module):
    """conv-BN-act-conv-BN + skip; the last BN starts at zero, so a new block is identity."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
        )
        nn.init.zeros_(self.body[-1].weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def _zero_conv(cin: int, cout: int) -> nn.Conv2d:
    # An input that joins a pretrained path through a zero-initialised 1x1 conv changes
    # nothing at the start; training decides how much it is used.
    conv = nn.Conv2d(cin, cout, 1)
    nn.init.zeros_(conv.weight)
    nn.init.zeros_(conv.bias)
    return conv


class SpatialGenerator(nn.Module, SafeHubMixin):
    """Generator v1: (latent, hints) -> face through spatial feature maps.

    `feature_maps(latent)` and `synthesise(maps, hints)` are separate so that maps of
    several latents (face parts) can be pasted into one before synthesis.
    """

    def __init__(self, config: SpatialGeneratorConfig):
        super().__init__()
        self.config = config
        mchans = config.map_channels
        self.bottom = config.resolution // 2 ** len(mchans)
        # Feature mapping: the stage-1 decoder's shape, parameter names included.
        self.from_latent = nn.Linear(config.latent_dim, mchans[-1] * self.bottom**2)
        self.decoder = _sketch_decoder(mchans)
        # Map sizes and channels the synthesis receives: {size: channels}.
        size, self.map_sizes = self.bottom, {}
        for cout in mchans[::-1][1:] + (mchans[0],):
            size *= 2
            self.map_sizes[size] = cout
        r = config.resolution
        # Image synthesis: the SimpleGAN U-Net (parameter names included) plus zero-started
        # inputs for the maps and hints at each of its scales.
        chans = config.channels
        _add_unet(self, chans)
        # Level i of the U-Net works at r / 2**i (level 0 = the stem).
        self.level_sizes = [r // 2**i for i in range(len(chans) + 1)]
        level_channels = (chans[0],) + chans  # the stem, then each down step
        self.inject = nn.ModuleDict()
        for level, size in enumerate(self.level_sizes[:-1]):
            extra = 4 + self.map_sizes.get(size, 0)
            self.inject[str(size)] = _zero_conv(extra, level_channels[level])
        self.residual = nn.Sequential(*(_Residual(chans[-2])
                                        for _ in range(config.residual_blocks)))
        self.register_buffer("mean", torch.tensor(config.image_mean).view(1, 3, 1, 1), False)
        self.register_buffer("std", torch.tensor(config.image_std).view(1, 3, 1, 1), False)

    def feature_maps(self, latent: torch.Tensor) -> dict[int, torch.Tensor]:
        """(B, latent_dim) -> {size: (B, C, size, size)} maps, and 0: the decoded sketch
        (B, 1, R, R) in [0, 1], 1 = paper."""
        mchans = self.config.map_channels
        x = self.from_latent(latent).view(-1, mchans[-1], self.bottom, self.bottom)
        x = F.leaky_relu(x, 0.2)
        maps = {}
        layers = list(self.decoder)
        for i, size in zip(range(0, len(layers) - 1, 2), self.map_sizes):
            x = layers[i + 1](layers[i](x))  # upsample, conv
            maps[size] = x  # keyed by the known size, not x.shape: traceable (`frozen`)
        maps[0] = 1.0 - torch.sigmoid(layers[-1](x))
        return maps

    def synthesise(self, maps: dict[int, torch.Tensor], hints: torch.Tensor) -> torch.Tensor:
        """Feature maps (as from `feature_maps`) + (B, 4, R, R) hints -> (B, 3, R, R) face."""
        hints = _normalise_hints(hints, self.mean, self.std)
        sketch = (maps[0] - self.config.sketch_mean) / self.config.sketch_std

        def joined(x: torch.Tensor, size: int) -> torch.Tensor:
            extra = [downsample_hints(hints, size)]
            if size in self.map_sizes:
                extra.append(maps[size])
            return x + self.inject[str(size)](torch.cat(extra, dim=1))

        x = joined(self.stem(torch.cat([sketch, hints], dim=1)), self.level_sizes[0])
        skips = [x]
        for level, down in enumerate(self.downs, start=1):
            x = down(x)
            if level < len(self.downs):
                x = joined(x, self.level_sizes[level])
            skips.append(x)
        skips.pop()  # the bottleneck itself is not a skip
        for i, up in enumerate(self.ups):
            if i > 0:
                x = torch.cat([x, skips.pop()], dim=1)
            x = F.interpolate(up(x), scale_factor=2.0, mode="nearest")
            if i == 0:
                x = self.residual(x)  # one step up from the bottleneck
        x = torch.cat([x, skips.pop()], dim=1)  # (B, 2*C0, R, R)
        return torch.tanh(self.to_rgb(x)) * self.std + self.mean

    def forward(self, latent: torch.Tensor, hints: torch.Tensor,
                sketch: torch.Tensor | None = None, refine=1.0) -> torch.Tensor:
        """(B, latent_dim), (B, 4, R, R) hints -> (B, 3, R, R) image in [0, 1].

        With `sketch` (B, 1, R, R) and a generator that `traces_sketch`, the synthesis
        traces it by 1 - `refine` (`traced`)."""
        maps = self.feature_maps(latent)
        if sketch is not None and self.config.traces_sketch:
            maps = traced(maps, sketch, refine)
        return self.synthesise(maps, hints)

    def start_from(self, autoencoder: SketchAutoencoder | None = None,
                   baseline: "SimpleGAN | None" = None) -> None:
        """Copy a trained stage-1 decoder into the feature mapping and a trained SimpleGAN
        into the synthesis (same parameter names and shapes), so training starts from both."""
        own = self.state_dict()
        for source, prefixes in ((autoencoder, ("from_latent.", "decoder.")),
                                 (baseline, ("stem.", "downs.", "ups.", "to_rgb."))):
            if source is None:
                continue
            for name, tensor in source.state_dict().items():
                if name.startswith(prefixes):
                    if own[name].shape != tensor.shape:
                        raise ValueError(f"{name}: shape {tuple(tensor.shape)} does not fit "
                                         f"{tuple(own[name].shape)}; the configs differ.")
                    own[name] = tensor.clone()
        self.load_state_dict(own)


def traced(maps: dict[int, torch.Tensor], sketch: torch.Tensor, refine) -> dict[int, torch.Tensor]:
    """The maps with the sketch the synthesis traces (maps[0]) blended towards the user's
    own `sketch` (B, 1, R, R) by 1 - `refine`: at refine 1 the decoded projection only, at
    0 the user's lines (the decoder's reading of any latent is blurry, so without this a
    clean drawing came out as mush at every refine). `refine` is a number, a (B,) tensor,
    or a (B or 1, 1, R, R) map (one refine per face part's window)."""
    refine = torch.as_tensor(refine, dtype=sketch.dtype, device=sketch.device)
    if refine.dim() == 1:
        refine = refine.view(-1, 1, 1, 1)
    return {**maps, 0: refine * maps[0] + (1.0 - refine) * sketch}


def load_generator(folder: str | Path) -> Generator | SpatialGenerator:
    """The generator in `folder`: v1 (SpatialGenerator) or the v0.3 vector Generator,
    told apart by its config.json."""
    import json

    config_file = Path(folder) / "config.json"
    if not config_file.is_file():
        raise ValueError(f"No generator in {folder}: expected config.json + model.safetensors.")
    config = json.loads(config_file.read_text())
    cls = SpatialGenerator if "map_channels" in config else Generator
    return cls.from_pretrained(folder)
