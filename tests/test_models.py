"""Tests for s2a.models: shapes, ranges, safetensors round trips, strict loading, configs."""

import copy
from dataclasses import replace
from pathlib import Path

import huggingface_hub.hub_mixin
import pytest
import safetensors.torch
import torch
from huggingface_hub.errors import EntryNotFoundError

from s2a.models import (
    Discriminator,
    DiscriminatorConfig,
    Generator,
    GeneratorConfig,
    SimpleGAN,
    SimpleGANConfig,
    SketchAutoencoder,
    SketchAutoencoderConfig,
    downsample_hints,
)
from tests.helpers import TINY_LATENT, TINY_RESOLUTION, tiny_configs

R = TINY_RESOLUTION
B = 2
TINY_DISCRIMINATOR = DiscriminatorConfig(resolution=R, channels=(8, 16))


def _inputs(seed: int = 0) -> dict:
    """Seeded tiny inputs: sketches, images, hints (RGB 0 where unhinted + 0/1 mask), latents."""
    g = torch.Generator().manual_seed(seed)
    mask = (torch.rand(B, 1, R, R, generator=g) > 0.7).float()
    hints = torch.cat([torch.rand(B, 3, R, R, generator=g) * mask, mask], dim=1)
    return {
        "sketch": torch.rand(B, 1, R, R, generator=g),
        "image": torch.rand(B, 3, R, R, generator=g),
        "hints": hints,
        "latent": torch.randn(B, TINY_LATENT, generator=g),
    }


def _build(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    configs = tiny_configs()
    model = {
        "autoencoder": lambda: SketchAutoencoder(configs["autoencoder"]),
        "generator": lambda: Generator(configs["generator"]),
        "discriminator": lambda: Discriminator(TINY_DISCRIMINATOR),
        "baseline": lambda: SimpleGAN(configs["baseline"]),
    }[name]()
    return model.eval()


def _outputs(name: str, model: torch.nn.Module, x: dict) -> list[torch.Tensor]:
    """Every output a network produces for the inputs `x`, as a flat list of tensors."""
    with torch.no_grad():
        if name == "autoencoder":
            latent, logits = model(x["sketch"])
            return [latent, logits, model.decode(latent)]
        if name == "generator":
            return [model(x["latent"], x["hints"])]
        if name == "discriminator":
            return [model(x["image"], x["hints"])]
        return [model(x["sketch"], x["hints"])]


NAMES = ["autoencoder", "generator", "discriminator", "baseline"]


# ---------------------------------------------------------------- shapes and ranges


def test_autoencoder_shapes_and_range():
    model, x = _build("autoencoder"), _inputs()
    with torch.no_grad():
        latent = model.encode(x["sketch"])
        assert latent.shape == (B, TINY_LATENT)
        logits = model.decode_logits(latent)
        assert logits.shape == (B, 1, R, R)
        sketch = model.decode(latent)
        assert sketch.shape == (B, 1, R, R)
        assert sketch.min() >= 0 and sketch.max() <= 1
        # decode is 1 - sigmoid(logits): ink (positive logit) is dark.
        torch.testing.assert_close(sketch, 1 - torch.sigmoid(logits))
        forward_latent, forward_logits = model(x["sketch"])
    torch.testing.assert_close(forward_latent, latent)
    torch.testing.assert_close(forward_logits, logits)


@pytest.mark.parametrize("name", ["generator", "baseline"])
def test_image_networks_shape_and_range(name):
    model, x = _build(name), _inputs()
    # Extreme latents push tanh to saturation: the output must still stay in [0, 1].
    x["latent"] = x["latent"] * 100
    image = _outputs(name, model, x)[0]
    assert image.shape == (B, 3, R, R)
    assert image.dtype == torch.float32
    assert image.min() >= 0 and image.max() <= 1
    assert image.std() > 0  # not a constant image


def test_discriminator_patch_logits_shape():
    model, x = _build("discriminator"), _inputs()
    logits = _outputs("discriminator", model, x)[0]
    side = R // 2 ** len(TINY_DISCRIMINATOR.channels)
    assert logits.shape == (B, 1, side, side)
    assert torch.isfinite(logits).all()


def test_networks_are_batch_independent_in_eval():
    model, x = _build("generator"), _inputs()
    with torch.no_grad():
        both = model(x["latent"], x["hints"])
        first = model(x["latent"][:1], x["hints"][:1])
    torch.testing.assert_close(both[:1], first, atol=1e-6, rtol=1e-5)


# ---------------------------------------------------------------- save / load round trip


@pytest.mark.parametrize("name", NAMES)
def test_save_pretrained_writes_exactly_config_and_safetensors(name, tmp_path):
    model = _build(name)
    model.save_pretrained(tmp_path / "model")
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == [
        "config.json",
        "model.safetensors",
    ]


@pytest.mark.parametrize("name", NAMES)
def test_round_trip_identical_outputs_and_config(name, tmp_path):
    model, x = _build(name), _inputs()
    before = _outputs(name, model, x)
    model.save_pretrained(tmp_path / "model")

    torch.manual_seed(123)  # a different init: the weights must come from the file
    loaded = type(model).from_pretrained(tmp_path / "model")
    assert not loaded.training
    assert type(loaded.config) is type(model.config)
    assert loaded.config == model.config
    assert isinstance(loaded.config.channels, tuple)
    for value in vars(loaded.config).values():
        assert not isinstance(value, list)
    after = _outputs(name, loaded, x)
    for a, b in zip(before, after, strict=True):
        torch.testing.assert_close(a, b, atol=0, rtol=0)


@pytest.mark.parametrize("name", NAMES)
def test_fp16_weights_load_into_fp32_model(name, tmp_path):
    model, x = _build(name), _inputs()
    reference = _outputs(name, model, x)
    copy.deepcopy(model).half().save_pretrained(tmp_path / "half")
    stored = safetensors.torch.load_file(tmp_path / "half" / "model.safetensors")
    assert any(t.dtype == torch.float16 for t in stored.values())

    loaded = type(model).from_pretrained(tmp_path / "half")
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    for ref, out in zip(reference, _outputs(name, loaded, x), strict=True):
        assert out.dtype == torch.float32
        scale = ref.abs().max().clamp_min(1.0)
        assert (ref - out).abs().max() <= 2e-2 * scale


# ---------------------------------------------------------------- strict, pickle-free loading


def _saved(tmp_path: Path) -> tuple[Path, dict]:
    folder = tmp_path / "model"
    _build("autoencoder").save_pretrained(folder)
    return folder, safetensors.torch.load_file(folder / "model.safetensors")


def test_missing_tensor_fails_to_load(tmp_path):
    folder, tensors = _saved(tmp_path)
    dropped = sorted(tensors)[0]
    del tensors[dropped]
    safetensors.torch.save_file(tensors, folder / "model.safetensors")
    with pytest.raises((RuntimeError, ValueError), match="(?i)missing"):
        SketchAutoencoder.from_pretrained(folder)


def test_extra_tensor_fails_to_load(tmp_path):
    folder, tensors = _saved(tmp_path)
    tensors["surprise.weight"] = torch.zeros(3)
    safetensors.torch.save_file(tensors, folder / "model.safetensors")
    with pytest.raises((RuntimeError, ValueError), match="(?i)unexpected"):
        SketchAutoencoder.from_pretrained(folder)


def test_wrong_shape_tensor_fails_to_load(tmp_path):
    folder, tensors = _saved(tmp_path)
    name = next(k for k, v in sorted(tensors.items()) if v.ndim >= 2)
    tensors[name] = torch.zeros(*(s + 1 for s in tensors[name].shape))
    safetensors.torch.save_file(tensors, folder / "model.safetensors")
    with pytest.raises((RuntimeError, ValueError)):
        SketchAutoencoder.from_pretrained(folder)


@pytest.fixture
def no_torch_load(monkeypatch) -> list:
    """Record any call of torch.load (there must be none: no unpickling, ever)."""
    calls = []

    def fake_load(*args, **kwargs):
        calls.append(args)
        raise AssertionError("torch.load must never be called")

    monkeypatch.setattr(torch, "load", fake_load)
    return calls


@pytest.mark.parametrize("with_config", [False, True])
def test_local_pickle_folder_is_refused(tmp_path, no_torch_load, with_config):
    folder, _ = _saved(tmp_path)
    (folder / "model.safetensors").unlink()
    if not with_config:
        (folder / "config.json").unlink()
    (folder / "pytorch_model.bin").write_bytes(b"not really a pickle")
    with pytest.raises(ValueError, match="safetensors"):
        SketchAutoencoder.from_pretrained(folder)
    assert no_torch_load == []


def test_hub_repo_with_only_pickle_is_refused(tmp_path, monkeypatch, no_torch_load):
    folder, _ = _saved(tmp_path)
    (folder / "model.safetensors").unlink()
    (folder / "pytorch_model.bin").write_bytes(b"not really a pickle")

    def fake_download(repo_id, filename, **kwargs):
        if filename == "model.safetensors":
            raise EntryNotFoundError(f"{filename} not in {repo_id}")
        return str(folder / filename)

    monkeypatch.setattr(huggingface_hub.hub_mixin, "hf_hub_download", fake_download)
    with pytest.raises(ValueError, match="safetensors"):
        SketchAutoencoder.from_pretrained("someone/sketch2anime")
    assert no_torch_load == []


# ---------------------------------------------------------------- config validation


@pytest.mark.parametrize(
    "make",
    [
        lambda: SketchAutoencoderConfig(resolution=30, channels=(8, 16)),
        lambda: SketchAutoencoderConfig(resolution=96, channels=(8, 16, 32, 64, 128, 256)),
        lambda: GeneratorConfig(resolution=30, channels=(32, 16, 8), hint_resolutions=(30,)),
        lambda: SimpleGANConfig(resolution=33, channels=(8, 16)),
    ],
)
def test_resolution_not_divisible_is_refused(make):
    with pytest.raises(ValueError, match="divisible"):
        make()


def test_divisible_resolutions_are_accepted():
    SketchAutoencoderConfig(resolution=96)
    GeneratorConfig(resolution=96)
    SimpleGANConfig(resolution=96)
    replace(tiny_configs()["generator"], hint_resolutions=(8,))


@pytest.mark.parametrize("sizes", [(12,), (16, 24), (64,), (4,)])
def test_generator_hint_resolution_must_be_a_feature_map_size(sizes):
    # Tiny generator: channels (32, 16, 8) at 32 px -> feature maps 8, 16, 32.
    with pytest.raises(ValueError, match="hint_resolutions"):
        replace(tiny_configs()["generator"], hint_resolutions=sizes)


# ---------------------------------------------------------------- hints


def test_generator_output_depends_on_hints():
    model, x = _build("generator"), _inputs()
    latent = x["latent"]
    no_hints = torch.zeros(B, 4, R, R)
    red = torch.zeros(B, 4, R, R)
    red[:, 0] = 1.0
    red[:, 3] = 1.0
    blue = red[:, [2, 1, 0, 3]]
    with torch.no_grad():
        outs = [model(latent, h) for h in (no_hints, red, blue)]
        again = model(latent, red)
    torch.testing.assert_close(outs[1], again, atol=0, rtol=0)  # same inputs, same output
    for i in range(3):
        for j in range(i + 1, 3):
            assert (outs[i] - outs[j]).abs().max() > 1e-4


def test_generator_ignores_colour_where_unhinted():
    # Colour under mask 0 is "no hint": it must not change the output.
    model, x = _build("generator"), _inputs()
    stray = torch.zeros(B, 4, R, R)
    stray[:, :3] = 0.8
    with torch.no_grad():
        a = model(x["latent"], torch.zeros(B, 4, R, R))
        b = model(x["latent"], stray)
    torch.testing.assert_close(a, b, atol=0, rtol=0)


def test_downsample_hints_is_mask_aware():
    hints = torch.zeros(1, 4, 4, 4)
    hints[0, :, 2, 1] = torch.tensor([1.0, 0.0, 0.0, 1.0])  # one red pixel of 16
    out = downsample_hints(hints, 1)
    assert out.shape == (1, 4, 1, 1)
    torch.testing.assert_close(out[0, :, 0, 0], torch.tensor([1.0, 0.0, 0.0, 1.0]))

    empty = downsample_hints(torch.zeros(1, 4, 4, 4), 1)
    torch.testing.assert_close(empty, torch.zeros(1, 4, 1, 1))


def test_downsample_hints_averages_hinted_pixels_only_per_block():
    hints = torch.zeros(1, 4, 8, 8)
    hints[0, :, 0, 0] = torch.tensor([1.0, 0.0, 0.0, 1.0])  # top-left block: red
    hints[0, :, 1, 1] = torch.tensor([0.0, 0.0, 1.0, 1.0])  # top-left block: blue
    hints[0, :, 6, 7] = torch.tensor([0.0, 1.0, 0.0, 1.0])  # bottom-right block: green
    out = downsample_hints(hints, 2)[0]  # (4, 2, 2)
    torch.testing.assert_close(out[:, 0, 0], torch.tensor([0.5, 0.0, 0.5, 1.0]))
    torch.testing.assert_close(out[:, 1, 1], torch.tensor([0.0, 1.0, 0.0, 1.0]))
    torch.testing.assert_close(out[:, 0, 1], torch.zeros(4))
    torch.testing.assert_close(out[:, 1, 0], torch.zeros(4))
