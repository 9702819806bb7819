"""Generator v1 (feature maps + synthesis) and the v1 GAN recipe, on tiny models and data."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from s2a import Sketch2Anime
from s2a.models import (
    Discriminator,
    DiscriminatorConfig,
    Generator,
    SimpleGAN,
    SimpleGANConfig,
    SketchAutoencoder,
    SpatialGenerator,
    SpatialGeneratorConfig,
    load_generator,
    traced,
)
from s2a.projection import LatentBank
from tests.helpers import TINY_LATENT, TINY_RESOLUTION, face_sketch, tiny_configs
from training import build_bank, train_autoencoder, train_baseline, train_generator
from training.diffaugment import diff_augment
from training.gan import ema_update, feature_matching, roughen

R = TINY_RESOLUTION
TINY_SPATIAL = SpatialGeneratorConfig(resolution=R, latent_dim=TINY_LATENT, map_channels=(8, 16),
                                      channels=(8, 16), residual_blocks=1)
SHORT = ["--batch-size", "4", "--log-every", "1", "--sample-every", "1", "--checkpoint-every", "1"]
RECIPE = ["--d-channels", "8", "16", "--d-scales", "2", "--fm-weight", "10", "--diffaugment",
          "colour", "translation", "--ema", "0.9", "--l1-weight", "10",
          "--degraded-share", "0.5"]


def random_hints(batch: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    mask = (torch.rand(batch, 1, R, R, generator=g) > 0.9).float()
    return torch.cat([torch.rand(batch, 3, R, R, generator=g) * mask, mask], dim=1)


def tiny_parts() -> tuple[SketchAutoencoder, SimpleGAN]:
    torch.manual_seed(0)
    return (SketchAutoencoder(tiny_configs()["autoencoder"]).eval(),
            SimpleGAN(SimpleGANConfig(resolution=R, channels=(8, 16))).eval())


def test_feature_maps_and_synthesis_shapes():
    generator = SpatialGenerator(TINY_SPATIAL).eval()
    latent = torch.randn(3, TINY_LATENT)
    maps = generator.feature_maps(latent)
    assert sorted(maps) == [0, R // 2, R]  # decoded sketch + the decoder's maps
    assert maps[0].shape == (3, 1, R, R) and maps[R // 2].shape[1] == 8
    with torch.no_grad():
        image = generator(latent, random_hints(3))
    assert image.shape == (3, 3, R, R)
    assert 0.0 <= image.min() and image.max() <= 1.0


def test_pasted_maps_change_the_face_only_through_the_maps():
    # Component-wise synthesis pastes maps of several latents: a map edited inside a window
    # must reach the image, and the untouched path must be the plain forward pass.
    torch.manual_seed(1)
    generator = SpatialGenerator(TINY_SPATIAL)
    for p in generator.inject.parameters():  # zero-started: give the maps some effect
        torch.nn.init.normal_(p, std=0.5)
    generator.eval()
    latent, hints = torch.randn(1, TINY_LATENT), random_hints(1)
    with torch.no_grad():
        maps = generator.feature_maps(latent)
        plain = generator.synthesise(maps, hints)
        torch.testing.assert_close(plain, generator(latent, hints))
        other = generator.feature_maps(torch.randn(1, TINY_LATENT))
        pasted = dict(maps)
        pasted[R] = maps[R].clone()
        pasted[R][..., :8, :8] = other[R][..., :8, :8]
        assert (generator.synthesise(pasted, hints) - plain).abs().max() > 1e-4


def test_traced_blends_the_drawn_sketch_by_one_minus_refine():
    decoded, drawn = torch.full((2, 1, R, R), 0.2), torch.ones(2, 1, R, R)
    maps = {0: decoded, R: torch.randn(2, 8, R, R)}
    assert traced(maps, drawn, 1.0)[0].equal(decoded)
    assert traced(maps, drawn, 0.0)[0].equal(drawn)
    per_item = traced(maps, drawn, torch.tensor([1.0, 0.5]))[0]
    assert per_item[0].equal(decoded[0]) and torch.allclose(per_item[1], torch.tensor(0.6))
    window = torch.ones(1, 1, R, R)
    window[..., :4, :4] = 0.0  # refine 0 only there: the drawn lines only there
    local = traced(maps, drawn, window)[0]
    assert local[..., :4, :4].eq(1.0).all() and local[..., 4:, 4:].eq(0.2).all()
    assert traced(maps, drawn, 0.0)[R] is maps[R]  # the other maps are untouched


def test_only_a_tracing_generator_reads_the_drawn_sketch():
    torch.manual_seed(0)
    latent, hints = torch.randn(1, TINY_LATENT), random_hints(1)
    drawn = torch.ones(1, 1, R, R)
    drawn[..., R // 2, :] = 0.0
    for traces in (False, True):
        generator = SpatialGenerator(SpatialGeneratorConfig(
            **{**TINY_SPATIAL.__dict__, "traces_sketch": traces})).eval()
        with torch.no_grad():
            plain = generator(latent, hints)
            at_one = generator(latent, hints, drawn, 1.0)
            at_zero = generator(latent, hints, drawn, 0.0)
        torch.testing.assert_close(at_one, plain)  # refine 1: the decoded latent only
        assert ((at_zero - plain).abs().max() > 1e-4) == traces


def test_start_from_is_the_baseline_on_the_decoded_sketch():
    autoencoder, baseline = tiny_parts()
    generator = SpatialGenerator(TINY_SPATIAL)
    generator.start_from(autoencoder, baseline)
    generator.eval()
    latent, hints = torch.randn(2, TINY_LATENT), random_hints(2)
    with torch.no_grad():
        expected = baseline(autoencoder.decode(latent), hints)
        torch.testing.assert_close(generator(latent, hints), expected)
        torch.testing.assert_close(generator.feature_maps(latent)[0], autoencoder.decode(latent))


def test_start_from_refuses_networks_of_another_shape():
    autoencoder, _ = tiny_parts()
    other = SpatialGenerator(SpatialGeneratorConfig(resolution=R, latent_dim=TINY_LATENT,
                                                    map_channels=(4, 8), channels=(8, 16)))
    with pytest.raises(ValueError, match="does not fit"):
        other.start_from(autoencoder)


def test_bad_spatial_configs_are_refused():
    with pytest.raises(ValueError, match="divisible"):
        SpatialGeneratorConfig(resolution=30)
    with pytest.raises(ValueError, match="residual_blocks"):
        SpatialGeneratorConfig(residual_blocks=-1)
    with pytest.raises(ValueError, match="scales"):
        DiscriminatorConfig(scales=0)


def test_load_generator_picks_the_architecture(tmp_path):
    torch.manual_seed(0)
    spatial = SpatialGenerator(TINY_SPATIAL)
    vector = Generator(tiny_configs()["generator"])
    spatial.save_pretrained(tmp_path / "spatial")
    vector.save_pretrained(tmp_path / "vector")
    loaded = load_generator(tmp_path / "spatial")
    assert isinstance(loaded, SpatialGenerator) and loaded.config == TINY_SPATIAL
    for name, tensor in spatial.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[name], tensor)
    assert type(load_generator(tmp_path / "vector")) is Generator
    with pytest.raises(ValueError, match="No generator"):
        load_generator(tmp_path / "missing")
    (tmp_path / "vector" / "model.safetensors").unlink()
    with pytest.raises(ValueError, match="only safetensors"):
        load_generator(tmp_path / "vector")


def test_multi_scale_discriminator_judges_every_scale():
    discriminator = Discriminator(DiscriminatorConfig(resolution=R, channels=(8, 16), scales=2))
    discriminator.eval()  # spectral norm would take a power-iteration step per call
    judged = discriminator(torch.rand(2, 3, R, R), random_hints(2), every_scale=True)
    assert len(judged) == 2
    assert judged[0][-1].shape[-1] == 2 * judged[1][-1].shape[-1]  # coarser scale, half size
    image, hints = torch.rand(2, 3, R, R), random_hints(2)
    # The finest scale's logits are the plain forward pass.
    torch.testing.assert_close(discriminator.judge(image, hints)[0][-1],
                               discriminator(image, hints))
    single = Discriminator(DiscriminatorConfig(resolution=R, channels=(8, 16)))
    assert len(single.judge(torch.rand(1, 3, R, R), random_hints(1))) == 1


def test_diffaugment_moves_hints_with_the_image_and_keeps_gradients():
    torch.manual_seed(0)
    image = torch.rand(6, 3, R, R, requires_grad=True)
    hints = torch.cat([image.detach(), torch.ones(6, 1, R, R)], dim=1)
    moved_image, moved_hints = diff_augment(image, hints, ("translation",))
    # Same shift for the pair: the hint colours still sit on the same image pixels.
    torch.testing.assert_close(moved_image, moved_hints[:, :3])
    assert not torch.equal(moved_image, image)  # something moved (6 items, 9x9 shifts)
    coloured, same_hints = diff_augment(image, hints, ("colour",))
    assert torch.equal(same_hints, hints) and not torch.allclose(coloured, image)
    coloured.sum().backward()
    assert image.grad is not None and image.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="Unknown DiffAugment"):
        diff_augment(image, hints, ("cutout",))


def test_ema_and_feature_matching():
    model, average = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    before = average.weight.detach().clone()
    ema_update(average, model, 1.0 - 1e-9)  # nearly all memory: barely moves
    torch.testing.assert_close(average.weight, before)
    ema_update(average, model, 0.0)  # no memory: becomes the model
    torch.testing.assert_close(average.weight, model.weight)
    features = [[torch.ones(2, 3), torch.ones(2, 1)]]
    assert feature_matching(features, features) == 0
    shifted = [[torch.zeros(2, 3), torch.full((2, 1), 5.0)]]  # logits (last) do not count
    assert float(feature_matching(shifted, features)) == pytest.approx(1.0)


def test_roughen_redraws_the_chosen_share():
    sketch = torch.ones(4, 1, R, R)
    sketch[:, :, 8:24, 15:17] = 0.0  # a vertical stroke
    rng = np.random.default_rng(0)
    assert torch.equal(roughen(sketch, 0.0, rng), sketch)
    rough = roughen(sketch, 1.0, rng)
    assert rough.shape == sketch.shape and 0.0 <= rough.min() and rough.max() <= 1.0
    assert all(not torch.equal(rough[i], sketch[i]) for i in range(4))
    assert torch.equal(sketch[:, :, 8:24, 15:17], torch.zeros(4, 1, 16, 2))  # input untouched


@pytest.fixture(scope="module")
def spatial_run(prepared_data, tmp_path_factory) -> dict[str, Path]:
    """Stage 1, a bank, a baseline and a spatial generator trained with the full v1 recipe."""
    out = tmp_path_factory.mktemp("v1")
    tiny_ae = ["--channels", "8", "16", "--latent-dim", str(TINY_LATENT)]
    assert train_autoencoder.main(["--data", prepared_data, "--out", str(out / "ae"),
                                   "--steps", "1", *SHORT, *tiny_ae]) == 0
    autoencoder = out / "ae" / "autoencoder"
    assert build_bank.main(["--data", prepared_data, "--autoencoder", str(autoencoder),
                            "--out", str(out / "bank")]) == 0
    assert train_baseline.main(["--data", prepared_data, "--out", str(out / "base"),
                                "--steps", "2", "--channels", "8", "16", *SHORT, *RECIPE]) == 0
    assert train_generator.main([
        "--data", prepared_data, "--out", str(out / "gen"), "--steps", "2",
        "--autoencoder", str(autoencoder), "--architecture", "spatial",
        "--init-baseline", str(out / "base" / "baseline"), "--residual-blocks", "1",
        "--bank", str(out / "bank"), "--projected-share", "0.5", "--k", "3", *SHORT,
        *RECIPE]) == 0
    return {"autoencoder": autoencoder, "bank": out / "bank", "gen": out / "gen",
            "base": out / "base"}


def test_v1_recipe_trains_and_the_adversarial_gradient_reaches_the_generator(spatial_run):
    for run in (spatial_run["gen"], spatial_run["base"]):
        metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        assert [m["step"] for m in metrics] == [1, 2]
        assert all(m["adv_grad"] > 0 and np.isfinite(m["g_fm"]) for m in metrics)
        state = torch.load(run / "checkpoint.pt", weights_only=True)
        assert {"model", "average", "discriminator"} <= set(state)
        assert state["d_config"]["scales"] == 2
    # What is saved is the moving average, not the last step's weights.
    state = torch.load(spatial_run["gen"] / "checkpoint.pt", weights_only=True)
    saved = load_generator(spatial_run["gen"] / "generator").state_dict()
    name = "to_rgb.weight"
    torch.testing.assert_close(saved[name], state["average"][name])
    assert not torch.equal(state["average"][name], state["model"][name])


def test_resume_keeps_the_moving_average(prepared_data, spatial_run, tmp_path):
    flags = ["--data", prepared_data, "--autoencoder", str(spatial_run["autoencoder"]),
             "--architecture", "spatial", "--residual-blocks", "1", *SHORT, *RECIPE]
    first = tmp_path / "g"
    assert train_generator.main([*flags, "--out", str(first), "--steps", "1"]) == 0
    average = torch.load(first / "checkpoint.pt", weights_only=True)["average"]
    assert train_generator.main([*flags, "--out", str(first), "--steps", "2", "--resume"]) == 0
    state = torch.load(first / "checkpoint.pt", weights_only=True)
    assert state["step"] == 2 and not torch.equal(state["average"]["to_rgb.weight"],
                                                  average["to_rgb.weight"])


def test_trace_sketch_trains_a_generator_that_traces(prepared_data, spatial_run, tmp_path):
    # Starts from the plain run's generator: --init may add tracing (no new parameters).
    assert train_generator.main([
        "--data", prepared_data, "--out", str(tmp_path / "t"), "--steps", "2",
        "--autoencoder", str(spatial_run["autoencoder"]), "--architecture", "spatial",
        "--residual-blocks", "1", "--init-baseline", str(spatial_run["base"] / "baseline"),
        "--init", str(spatial_run["gen"] / "generator"),
        "--bank", str(spatial_run["bank"]), "--trace-sketch", "--k", "3", *SHORT,
        *RECIPE]) == 0
    generator = load_generator(tmp_path / "t" / "generator")
    assert generator.config.traces_sketch
    assert not load_generator(spatial_run["gen"] / "generator").config.traces_sketch


def test_locality_weight_adds_a_logged_term(prepared_data, spatial_run, tmp_path):
    from s2a.parts import scaled_windows

    windows = tmp_path / "parts"
    windows.mkdir()
    (windows / "parts.json").write_text(json.dumps({"resolution": R, "feather": 1, "windows": {
        n: [w.top, w.left, w.size] for n, w in scaled_windows(R).items()}}))
    flags = ["--data", prepared_data, "--steps", "2", "--autoencoder",
             str(spatial_run["autoencoder"]), "--architecture", "spatial", "--residual-blocks",
             "1", "--init-baseline", str(spatial_run["base"] / "baseline"), "--init",
             str(spatial_run["gen"] / "generator"), "--bank", str(spatial_run["bank"]),
             "--trace-sketch", "--k", "3", *SHORT, *RECIPE, "--locality-weight", "100"]
    # The term needs the windows it keeps changes inside.
    with pytest.raises(SystemExit):
        train_generator.main([*flags, "--out", str(tmp_path / "none")])
    assert train_generator.main([*flags, "--part-windows", str(windows),
                                 "--out", str(tmp_path / "t")]) == 0
    metrics = [json.loads(line) for line in (tmp_path / "t" / "metrics.jsonl").read_text()
               .splitlines()]
    assert [m["step"] for m in metrics] == [1, 2]
    assert all(np.isfinite(m["g_local"]) and m["g_local"] >= 0 for m in metrics)
    # Held to the --init generator's change inside the window: both figures logged.
    assert train_generator.main([*flags, "--part-windows", str(windows), "--locality-teacher",
                                 "--out", str(tmp_path / "taught")]) == 0
    last = json.loads((tmp_path / "taught" / "metrics.jsonl").read_text().splitlines()[-1])
    assert np.isfinite(last["g_local"]) and last["local_outside"] >= 0


def test_trace_sketch_needs_a_bank(prepared_data, spatial_run, tmp_path):
    with pytest.raises(SystemExit):
        train_generator.main(["--data", prepared_data, "--out", str(tmp_path / "t"),
                              "--autoencoder", str(spatial_run["autoencoder"]),
                              "--architecture", "spatial", "--trace-sketch"])
    assert not (tmp_path / "t").exists()


def test_pipeline_runs_a_spatial_generator(spatial_run):
    from s2a.models import SketchAutoencoder as AE

    pipe = Sketch2Anime(AE.from_pretrained(spatial_run["autoencoder"]),
                        load_generator(spatial_run["gen"] / "generator"),
                        LatentBank.load(spatial_run["bank"]))
    result = pipe(face_sketch(), k=3, upscale=False)
    assert result.image.size == (R, R)
    assert np.asarray(result.image).std() > 0  # a picture, not a flat fill


def test_pipeline_traces_the_drawn_sketch_by_one_minus_refine(spatial_run):
    from dataclasses import replace

    from s2a.models import SketchAutoencoder as AE

    plain = load_generator(spatial_run["gen"] / "generator")
    tracing = SpatialGenerator(replace(plain.config, traces_sketch=True))
    tracing.load_state_dict(plain.state_dict())
    for p in tracing.stem.parameters():  # make the traced sketch matter visibly
        torch.nn.init.normal_(p, std=0.5)
    faces = {}
    for name, generator in (("plain", plain), ("tracing", tracing)):
        plain.stem.load_state_dict(tracing.stem.state_dict())
        pipe = Sketch2Anime(AE.from_pretrained(spatial_run["autoencoder"]), generator,
                            LatentBank.load(spatial_run["bank"]))
        for refine in (0.0, 1.0):
            faces[name, refine] = np.asarray(pipe(face_sketch(), refine=refine, k=3,
                                                  upscale=False).image, np.float32)
    assert np.array_equal(faces["plain", 1.0], faces["tracing", 1.0])
    assert np.abs(faces["plain", 0.0] - faces["tracing", 0.0]).max() > 1


@pytest.mark.parametrize("extra", [
    ["--degraded-share", "1.5"], ["--ema", "1.0"], ["--d-scales", "0"], ["--fm-weight", "-1"],
    ["--init-baseline", "nowhere"],
])
def test_bad_recipe_flags_fail_before_any_work(prepared_data, spatial_run, tmp_path, extra):
    with pytest.raises(SystemExit):
        train_generator.main(["--data", prepared_data, "--out", str(tmp_path / "g"),
                              "--autoencoder", str(spatial_run["autoencoder"]), *extra])
    assert not (tmp_path / "g").exists()
