"""KID with its bootstrap interval, and the realism net it reads features from."""

import json

import numpy as np
import pytest
import torch

from evaluation.kid import (
    _subset_weights,
    _weighted_estimates,
    kid,
    kid_of_images,
    polynomial_kernel,
)
from evaluation.realism_net import (
    CORRUPTIONS,
    RealismNet,
    RealismNetConfig,
    corrupt_batch,
    export,
    extract_features,
    gaussian_blur,
    load_realism_net,
)
from s2a.manifest import read_manifest, verify_manifest, write_manifest
from tests.helpers import TINY_RESOLUTION

TINY = RealismNetConfig(resolution=16, channels=(4, 8), strides=(2, 2))
FAST = {"subsets": 20, "subset_size": 100, "bootstraps": 200}


def gaussian(rng: np.random.Generator, count: int, shift: float = 0.0, dim: int = 8):
    return rng.normal(shift, 1.0, size=(count, dim))


def naive_kid(x: np.ndarray, y: np.ndarray) -> float:
    """The unbiased MMD^2 written out term by term (the paper's formula)."""
    n, m = len(x), len(y)
    k_xx, k_yy, k_xy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
    return ((k_xx.sum() - np.trace(k_xx)) / (n * (n - 1))
            + (k_yy.sum() - np.trace(k_yy)) / (m * (m - 1)) - 2 * k_xy.mean())


def test_kernel_is_the_cubic_polynomial():
    x, y = np.array([[1.0, 2.0]]), np.array([[3.0, -1.0]])
    assert polynomial_kernel(x, y)[0, 0] == pytest.approx((1.0 / 2 + 1) ** 3)


def test_weighted_estimate_is_the_unbiased_statistic():
    rng = np.random.default_rng(0)
    x, y = gaussian(rng, 30), gaussian(rng, 25, 0.5)
    kernels = polynomial_kernel(y, y), polynomial_kernel(x, x), polynomial_kernel(y, x)
    full = _weighted_estimates(*kernels, np.ones((1, 25)), np.ones((1, 30)))[0]
    assert full == pytest.approx(naive_kid(x, y))
    w_f, w_r = _subset_weights(25, 10, 1, rng), _subset_weights(30, 10, 1, rng)
    subset = _weighted_estimates(*kernels, w_f, w_r)[0]
    assert subset == pytest.approx(naive_kid(x[w_r[0] > 0], y[w_f[0] > 0]))


def test_same_distribution_is_near_zero_and_can_be_negative():
    rng = np.random.default_rng(1)
    results = [kid(gaussian(rng, 200), gaussian(rng, 200), seed=s, **FAST) for s in range(6)]
    values = [r.value for r in results]
    assert max(abs(v) for v in values) < 0.05 and abs(np.mean(values)) < 0.02
    assert min(values) < 0.0  # unbiased: no floor at zero
    assert results[0].low < 0.0 < results[0].high
    shifted = kid(gaussian(rng, 200), gaussian(rng, 200, 0.5), **FAST)
    assert shifted.value > 0.5 and shifted.low > 0.3


def test_grows_with_the_shift_instead_of_saturating():
    rng = np.random.default_rng(2)
    real = gaussian(rng, 200)
    values = [kid(real, gaussian(rng, 200, shift), **FAST).value for shift in (0.5, 1.0, 2.0)]
    assert values[0] < values[1] < values[2]
    assert values[2] > 3 * values[1]


def test_interval_contains_the_estimate_and_narrows_with_more_items():
    rng = np.random.default_rng(3)
    small = kid(gaussian(rng, 60), gaussian(rng, 60, 0.4), **FAST)
    large = kid(gaussian(rng, 400), gaussian(rng, 400, 0.4), **FAST)
    for result in (small, large):
        assert result.low < result.value < result.high
    assert large.high - large.low < small.high - small.low
    assert small.subset_size == 60 and large.subset_size == 100


def test_deterministic_for_a_seed():
    rng = np.random.default_rng(4)
    x, y = gaussian(rng, 50), gaussian(rng, 50, 0.3)
    assert kid(x, y, seed=7, **FAST) == kid(x, y, seed=7, **FAST)


@pytest.mark.parametrize(("real", "fake", "options", "message"), [
    (np.zeros((10, 4)), np.zeros((10, 5)), {}, "same network"),
    (np.zeros((1, 4)), np.zeros((10, 4)), {}, "at least 2"),
    (np.zeros(10), np.zeros((10, 4)), {}, r"\(N, D\)"),
    (np.full((10, 4), np.nan), np.zeros((10, 4)), {}, "NaN"),
    (np.zeros((10, 4)), np.zeros((10, 4)), {"confidence": 1.5}, "confidence"),
    (np.zeros((10, 4)), np.zeros((10, 4)), {"bootstraps": 1}, "bootstraps"),
])
def test_bad_inputs_are_refused(real, fake, options, message):
    with pytest.raises(ValueError, match=message):
        kid(real, fake, **options)


# ---------------------------------------------------------------------------
# The realism net
# ---------------------------------------------------------------------------


def flat_faces(rng: np.random.Generator, count: int, size: int = 16) -> np.ndarray:
    """(count, size, size, 3) uint8 smooth colour blobs: sharp-edged, noise-free 'faces'."""
    yy, xx = np.mgrid[:size, :size] / size
    faces = []
    for _ in range(count):
        cx, cy, r = rng.uniform(0.3, 0.7), rng.uniform(0.3, 0.7), rng.uniform(0.15, 0.3)
        inside = ((xx - cx) ** 2 + (yy - cy) ** 2 < r**2)[..., None]
        face = np.where(inside, rng.uniform(150, 255, 3), rng.uniform(0, 100, 3))
        faces.append(face)
    return np.asarray(faces).round().astype(np.uint8)


def test_corruptions_keep_shape_and_range_and_change_the_image():
    rng = torch.Generator().manual_seed(0)
    images = torch.from_numpy(flat_faces(np.random.default_rng(0), 4)).permute(0, 3, 1, 2) / 255
    for name, corruption in CORRUPTIONS.items():
        out = corruption(images, torch.full((4,), 0.8), rng)
        assert out.shape == images.shape and 0 <= out.min() and out.max() <= 1, name
        assert (out - images).abs().mean() > 1e-3, name
    corrupted, present, strength = corrupt_batch(images, TINY.corruptions, rng, clean_share=0.0)
    assert (present.sum(dim=1) >= 1).all() and ((strength > 0) <= (present > 0)).all()
    assert gaussian_blur(images, 2.0).std() < gaussian_blur(images, 0.5).std() < images.std()


def test_features_need_faces_at_the_nets_resolution():
    net = RealismNet(TINY).eval()
    with pytest.raises(ValueError, match="uint8"):
        extract_features(net, np.zeros((2, 16, 16, 3), np.float32))
    with pytest.raises(ValueError, match="16, 16, 3"):
        extract_features(net, np.zeros((2, 32, 32, 3), np.uint8))
    with pytest.raises(ValueError, match="No images"):
        extract_features(net, np.zeros((0, 16, 16, 3), np.uint8))
    with pytest.raises(ValueError, match="Unknown corruptions"):
        RealismNetConfig(corruptions=("blur", "sepia"))
    with pytest.raises(ValueError, match="No realism net"):
        load_realism_net("/nonexistent/realism")


def test_kid_of_blurred_faces_on_a_tiny_net():
    rng = np.random.default_rng(5)
    torch.manual_seed(0)
    net = RealismNet(TINY).eval()
    real, other = flat_faces(rng, 120), flat_faces(rng, 120)
    blurred = torch.from_numpy(other).permute(0, 3, 1, 2).float() / 255
    blurred = (gaussian_blur(blurred, 1.5) * 255).round().byte().permute(0, 2, 3, 1).numpy()
    same = kid_of_images(net, real, other, **FAST)
    worse = kid_of_images(net, real, blurred, **FAST)
    assert worse.low > same.high


@pytest.mark.slow
def test_training_stage_runs_and_loads_back(prepared_data, tmp_path):
    from training.train_realism_net import main, parse_args

    out = tmp_path / "run"
    assert main(["--data", prepared_data, "--out", str(out), "--steps", "3", "--batch-size", "4",
                 "--channels", "4", "8", "--strides", "2", "2", "--threads", "1"]) == 0
    net = load_realism_net(out / "realism")
    assert net.config.resolution == TINY_RESOLUTION and net.config.channels == (4, 8)
    assert not torch.equal(net.feature_std, torch.ones_like(net.feature_std))
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert lines[-1]["images_seen"] == 12 and "acc_blur" in lines[-1]
    with pytest.raises(SystemExit):
        parse_args(["--data", prepared_data, "--out", str(out), "--clean-share", "1.0"])


def test_export_half_keeps_features_and_extends_the_manifest(tmp_path):
    torch.manual_seed(0)
    net = RealismNet(TINY).eval()
    net.feature_mean.fill_(0.1)
    net.save_pretrained(tmp_path / "run")
    weights = tmp_path / "weights"
    (weights / "other").mkdir(parents=True)
    (weights / "other" / "file.bin").write_bytes(b"keep me")
    write_manifest(weights)
    export(tmp_path / "run", weights / "realism", half=True)
    assert set(read_manifest(weights)) == {"other/file.bin", "realism/config.json",
                                           "realism/model.safetensors"}
    verify_manifest(weights)
    faces = flat_faces(np.random.default_rng(6), 8)
    shipped = load_realism_net(weights / "realism")
    assert next(shipped.parameters()).dtype == torch.float32
    np.testing.assert_allclose(extract_features(shipped, faces), extract_features(net, faces),
                               atol=0.05)


@pytest.mark.slow
def test_evaluate_reports_kid_per_cell(tiny_weights, prepared_data, tmp_path):
    from evaluation.evaluate import main

    torch.manual_seed(0)
    RealismNet(RealismNetConfig(resolution=TINY_RESOLUTION, channels=(4, 8), strides=(2, 2))
               ).save_pretrained(tmp_path / "realism")
    out = tmp_path / "eval"
    assert main(["--weights", tiny_weights, "--data", prepared_data, "--out", str(out),
                 "--hints", "5", "--realism-epochs", "1", "--realism-net",
                 str(tmp_path / "realism")]) == 0
    rows = json.loads((out / "realism.json").read_text())
    # 2 sketch sets x (method r=1, r=0.5, r=0, SimpleGAN)
    assert len(rows) == 8 and all(r["kid_low"] <= r["kid"] <= r["kid_high"] for r in rows)
    assert "KID x1000" in (out / "results.md").read_text(encoding="utf-8")


@pytest.mark.slow
def test_sensitivity_table_with_a_compared_folder(tiny_weights, prepared_data, tmp_path):
    from evaluation.kid_sensitivity import main

    torch.manual_seed(0)
    RealismNet(RealismNetConfig(resolution=TINY_RESOLUTION, channels=(4, 8), strides=(2, 2))
               ).save_pretrained(tmp_path / "realism")
    out = tmp_path / "table"
    assert main(["--weights", tiny_weights, "--data", prepared_data, "--out", str(out),
                 "--realism-net", str(tmp_path / "realism"), "--compare", f"v1.0={tiny_weights}",
                 "--no-two-sample"]) == 0
    rows = {r["faces"]: r for r in json.loads((out / "kid_sensitivity.json").read_text())}
    # 4 reference rows + per weights folder 2 sketch sets x 4 systems
    assert len(rows) == 4 + 2 * 8 and "v1.0 method r=1, degraded sketches" in rows
    assert all(r["kid_low"] <= r["kid_value"] <= r["kid_high"] for r in rows.values())
    assert main(["--weights", tiny_weights, "--data", prepared_data, "--out", str(out),
                 "--realism-net", str(tmp_path / "nowhere")]) == 2
