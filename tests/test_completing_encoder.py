"""The completing encoder (training.train_completing_encoder) and its evaluation, on tiny data."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from s2a.models import SketchAutoencoder, SketchAutoencoderConfig
from training import train_completing_encoder as tce

RES = 32
SHORT = ["--batch-size", "4", "--log-every", "1", "--sample-every", "1", "--checkpoint-every", "1",
         "--threads", "1"]


def _faces(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """n tiny (images (n, R, R, 3), 1 px sketches (n, R, R)) uint8 of random faces."""
    images = np.full((n, RES, RES, 3), 230, np.uint8)
    sketches = np.full((n, RES, RES), 255, np.uint8)
    for i in range(n):
        r = int(rng.integers(9, 14))
        for target, ink, fill in ((images[i], (60, 40, 40), -1), (sketches[i], 0, 1)):
            cv2.circle(target, (16, 16), r, ink if fill == 1 else (190, 160, 140), fill)
            cv2.circle(target, (12, 13), 2, ink, fill)
            cv2.circle(target, (20, 13), 2, ink, fill)
            cv2.line(target, (12, 21), (20, 21 + int(rng.integers(-1, 2))), ink, 1)
    return images, sketches


def tiny_data(root: Path, seed: int) -> Path:
    """root/data: a prepared-data folder of 24 train + 8 val tiny faces."""
    data = root / "data"
    data.mkdir()
    rng = np.random.default_rng(seed)
    for split, n in (("train", 24), ("val", 8)):
        images, sketches = _faces(n, rng)
        np.save(data / f"{split}_images.npy", images)
        np.save(data / f"{split}_sketches.npy", sketches)
    (data / "meta.json").write_text(json.dumps({"config": {"resolution": RES}}))
    return data


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict:
    """A prepared-data folder of 24 train + 8 val faces and a tiny seeded teacher."""
    root = tmp_path_factory.mktemp("completing")
    data = tiny_data(root, 0)
    torch.manual_seed(0)
    teacher = SketchAutoencoder(SketchAutoencoderConfig(resolution=RES, latent_dim=16,
                                                        channels=(8, 16)))
    teacher.save_pretrained(root / "teacher")
    return {"data": str(data), "teacher": str(root / "teacher"), "root": root}


def _train(tiny, out: Path, *extra: str) -> int:
    return tce.main(["--data", tiny["data"], "--teacher", tiny["teacher"], "--out", str(out),
                     *SHORT, *extra])


def test_two_steps_write_a_drop_in_autoencoder(tiny, tmp_path):
    assert _train(tiny, tmp_path, "--steps", "2") == 0
    assert sorted(p.name for p in (tmp_path / "autoencoder").iterdir()) == [
        "config.json", "model.safetensors"]
    metrics = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics if "loss" in m] == [1, 2]
    assert all(np.isfinite(m["val_loss"]) for m in metrics if "val_loss" in m)
    assert len(list((tmp_path / "samples").glob("*.png"))) == 2
    teacher = load_file(Path(tiny["teacher"]) / "model.safetensors")
    student = load_file(tmp_path / "autoencoder" / "model.safetensors")
    assert student.keys() == teacher.keys()
    for name in student:
        same = torch.equal(student[name], teacher[name])
        # Only the encoder learns; the decoder (and every BN statistic) is the teacher's.
        trainable = name.startswith(("encoder.", "to_latent.")) and "running" not in name \
            and "num_batches" not in name
        assert same != trainable or not trainable and same, name
    assert any(not torch.equal(student[n], teacher[n]) for n in student if "to_latent" in n)
    loaded = SketchAutoencoder.from_pretrained(tmp_path / "autoencoder")
    assert loaded.config == SketchAutoencoder.from_pretrained(tiny["teacher"]).config


def test_resume_continues_from_the_checkpoint(tiny, tmp_path):
    assert _train(tiny, tmp_path, "--steps", "1", "--styles", "rough") == 0
    assert _train(tiny, tmp_path, "--steps", "2", "--styles", "rough", "--resume") == 0
    steps = [json.loads(line)["step"] for line in (tmp_path / "metrics.jsonl").read_text()
             .splitlines() if "loss" in json.loads(line)]
    assert steps == [1, 2]
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert int(state["step"]) == 2


@pytest.mark.parametrize("extra", [
    ["--degraded-share", "1.5"], ["--mse-weight", "-1"], ["--steps", "0"], ["--resume"],
    ["--styles", "crayon"],
])
def test_bad_flags_fail_before_any_work(tiny, tmp_path, extra):
    with pytest.raises(SystemExit):
        _train(tiny, tmp_path / "run", *extra)
    assert not (tmp_path / "run").exists()


def test_a_teacher_of_another_resolution_is_refused(tiny, tmp_path, capsys):
    SketchAutoencoder(SketchAutoencoderConfig(resolution=64, latent_dim=16, channels=(8, 16))) \
        .save_pretrained(tmp_path / "big")
    with pytest.raises(SystemExit):
        tce.main(["--data", tiny["data"], "--teacher", str(tmp_path / "big"),
                  "--out", str(tmp_path / "run")])
    assert "64 px" in capsys.readouterr().err


def test_dataset_share_and_seeding(tiny):
    sketches = np.load(Path(tiny["data"]) / "train_sketches.npy")
    images = np.load(Path(tiny["data"]) / "train_images.npy")
    clean = tce.CompletingDataset(sketches, images, 0.0, ("rough",))
    drawn = tce.CompletingDataset(sketches, images, 1.0, tce.STYLES, seed=1)
    for i in range(6):
        x, y = clean[i]
        assert torch.equal(x, y)  # flipped together, never degraded
        a, b = drawn[i]
        assert not torch.equal(a, b) and a.shape == b.shape == (1, RES, RES)
        assert torch.equal(drawn[i][0], a)  # seeded by (seed, epoch, index)
    first = drawn[0][0]
    drawn.epoch = 1
    assert not torch.equal(drawn[0][0], first)


def test_completion_loss():
    torch.manual_seed(0)
    target = torch.randn(8, 16)
    same, parts = tce.completion_loss(target.clone(), target, 0.1)
    assert same.item() == pytest.approx(0.0, abs=1e-6) and parts["cosine"] == pytest.approx(1.0)
    worse, _ = tce.completion_loss(target + torch.randn(8, 16), target, 0.1)
    assert worse.item() > 0.05
    # The MSE term is relative to the target's spread: scaling both leaves the loss alone.
    scaled, _ = tce.completion_loss(10 * (target + 0.5), 10 * target, 0.1)
    base, _ = tce.completion_loss(target + 0.5, target, 0.1)
    assert scaled.item() == pytest.approx(base.item(), rel=1e-4)


def test_evaluate_autoencoder_reports_completion(tiny, tmp_path, capsys):
    from evaluation import evaluate_autoencoder as ev
    from s2a.projection import LatentBank

    # A bank of the teacher's train latents, for the grid.
    teacher = SketchAutoencoder.from_pretrained(tiny["teacher"]).eval()
    sketches = np.load(Path(tiny["data"]) / "train_sketches.npy")
    LatentBank(ev.encode_sketches(teacher, sketches, 8, torch.device("cpu")), "flat") \
        .save(tmp_path / "bank")
    grid = tmp_path / "grid.png"
    assert ev.main(["--autoencoder", tiny["teacher"], "--data", tiny["data"], "--items", "6",
                    "--bank-autoencoder", tiny["teacher"],
                    "--k", "3", "--grid", str(grid), "--grid-bank", str(tmp_path / "bank"),
                    "--grid-models", tiny["teacher"], tiny["teacher"]]) == 0
    out = capsys.readouterr().out
    report = json.loads(out[out.index("{"):out.rindex("}") + 1])
    for name in ("degraded", "thick", "smooth", "amateur"):
        assert 0.0 <= report[f"{name}_nn_cosine"] <= 1.0
    for name in ("degraded", "amateur"):
        low, high = report[f"completion_{name}_gain_ci95"]
        assert low <= report[f"completion_{name}_gain"] <= high
        assert report[f"completion_{name}_gain"] == pytest.approx(
            report[f"completion_{name}_projected"] - report[f"completion_{name}_input"])
    assert grid.is_file()


def test_bootstrap_interval_brackets_the_mean():
    from evaluation.evaluate_autoencoder import bootstrap_interval

    values = np.random.default_rng(0).normal(0.3, 0.1, size=200)
    low, high = bootstrap_interval(values)
    assert low < values.mean() < high and high - low < 0.06
    assert bootstrap_interval(np.full(10, 0.5)) == (0.5, 0.5)
