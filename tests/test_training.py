"""One optimisation step of every training entry point on tiny data, plus torchrun."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from s2a import Sketch2Anime
from s2a.models import Generator, SketchAutoencoder
from s2a.projection import LatentBank
from training import (
    build_bank,
    common,
    export,
    train_autoencoder,
    train_baseline,
    train_generator,
)

ROOT = Path(__file__).resolve().parent.parent
TINY_AE = ["--channels", "8", "16", "--latent-dim", "16"]
TINY_GAN = ["--d-channels", "8", "16"]
TINY_G = ["--channels", "32", "16", "8", "--hint-resolutions", "16", "32", *TINY_GAN]
TINY_BASE = ["--channels", "8", "16", *TINY_GAN]
SHORT = ["--batch-size", "4", "--log-every", "1", "--sample-every", "1", "--checkpoint-every", "1"]


@pytest.fixture(scope="module")
def stage1(prepared_data, tmp_path_factory) -> Path:
    """A stage-1 run of two steps: its folder holds autoencoder/ and a checkpoint."""
    out = tmp_path_factory.mktemp("stage1")
    assert train_autoencoder.main(
        ["--data", prepared_data, "--out", str(out), "--steps", "2", *SHORT, *TINY_AE]) == 0
    return out


def read_metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_autoencoder_step_writes_a_complete_run(stage1):
    assert sorted(p.name for p in (stage1 / "autoencoder").iterdir()) == [
        "config.json", "model.safetensors"]
    assert (stage1 / "checkpoint.pt").is_file()
    assert json.loads((stage1 / "config.json").read_text())["model_config"]["latent_dim"] == 16
    metrics = read_metrics(stage1)
    assert [m["step"] for m in metrics] == [1, 2] and np.isfinite(metrics[-1]["loss"])
    assert metrics[-1]["images_per_s"] > 0  # throughput between two log lines
    assert len(list((stage1 / "samples").glob("*.png"))) == 2


def test_autoencoder_step_changes_the_weights(prepared_data, tmp_path):
    torch.manual_seed(0)
    before = SketchAutoencoder(
        train_autoencoder.parse_args(["--data", prepared_data, "--out", "x", *TINY_AE])
        .model_config).state_dict()
    train_autoencoder.main(["--data", prepared_data, "--out", str(tmp_path), "--steps", "1",
                            *SHORT, *TINY_AE])
    after = SketchAutoencoder.from_pretrained(tmp_path / "autoencoder").state_dict()
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert "to_latent.weight" in changed


def test_resume_continues_from_the_checkpoint(prepared_data, stage1, tmp_path):
    run = tmp_path / "resumed"
    shutil.copytree(stage1, run)
    # A step logged after the checkpoint (as when a run dies between two checkpoints)
    # is redone on resume, not listed twice.
    with open(run / "metrics.jsonl", "a") as handle:
        handle.write('{"step": 3, "loss": 9.0}\n')
    assert train_autoencoder.main(["--data", prepared_data, "--out", str(run), "--steps", "3",
                                   "--resume", *SHORT, *TINY_AE]) == 0
    assert [m["step"] for m in read_metrics(run)] == [1, 2, 3]
    assert read_metrics(run)[-1]["loss"] != 9.0
    checkpoint = torch.load(run / "checkpoint.pt", weights_only=True)
    assert checkpoint["step"] == 3


def test_generator_and_baseline_steps(prepared_data, stage1, tmp_path):
    g_run, b_run = tmp_path / "g", tmp_path / "b"
    assert train_generator.main(["--data", prepared_data, "--out", str(g_run), "--steps", "1",
                                 "--autoencoder", str(stage1 / "autoencoder"), *SHORT,
                                 *TINY_G]) == 0
    assert train_baseline.main(["--data", prepared_data, "--out", str(b_run), "--steps", "1",
                                *SHORT, *TINY_BASE]) == 0
    for run, name in ((g_run, "generator"), (b_run, "baseline")):
        assert (run / name / "model.safetensors").is_file()
        metrics = read_metrics(run)[-1]
        assert all(np.isfinite(metrics[k]) for k in ("d_loss", "g_l1", "g_hint", "g_adv"))
        state = torch.load(run / "checkpoint.pt", weights_only=True)
        assert {"model", "discriminator", "g_opt", "d_opt"} <= set(state)
        # The discriminator is kept for later fine-tunes, as safetensors.
        assert (run / "discriminator" / "model.safetensors").is_file()


def test_a_fine_tune_starts_from_a_saved_discriminator(prepared_data, tmp_path, capsys):
    first, second = tmp_path / "first", tmp_path / "second"
    assert train_baseline.main(["--data", prepared_data, "--out", str(first), "--steps", "1",
                                *SHORT, *TINY_BASE]) == 0
    saved = load_file(first / "discriminator" / "model.safetensors")
    # With a zero learning rate the discriminator's parameters stay what it started from.
    assert train_baseline.main(["--data", prepared_data, "--out", str(second), "--steps", "1",
                                "--d-lr", "0", "--init-discriminator",
                                str(first / "discriminator"), *SHORT, *TINY_BASE]) == 0
    kept = load_file(second / "discriminator" / "model.safetensors")
    parameters = [name for name in saved if name.endswith(("weight_orig", "bias"))]
    assert parameters and all(torch.equal(kept[n], saved[n]) for n in parameters)
    # Without it the run starts from a fresh discriminator, which the first run moved from.
    fresh = tmp_path / "fresh"
    assert train_baseline.main(["--data", prepared_data, "--out", str(fresh), "--steps", "1",
                                "--d-lr", "0", *SHORT, *TINY_BASE]) == 0
    other = load_file(fresh / "discriminator" / "model.safetensors")
    assert not all(torch.equal(other[n], saved[n]) for n in parameters)
    # A folder without weights is refused before any work, another architecture with a
    # clear message.
    with pytest.raises(SystemExit):
        train_baseline.main(["--data", prepared_data, "--out", str(tmp_path / "none"),
                             "--init-discriminator", str(tmp_path), *SHORT, *TINY_BASE])
    assert "has no model.safetensors" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="another config"):
        train_baseline.main(["--data", prepared_data, "--out", str(tmp_path / "bad"),
                             "--steps", "1", "--init-discriminator", str(first / "discriminator"),
                             *SHORT, "--channels", "8", "16", "--d-channels", "8", "8"])


def test_bank_and_export_make_a_loadable_weights_folder(prepared_data, stage1, tmp_path):
    g_run = tmp_path / "g"
    train_generator.main(["--data", prepared_data, "--out", str(g_run), "--steps", "1",
                          "--autoencoder", str(stage1 / "autoencoder"), *SHORT, *TINY_G])
    bank_dir = tmp_path / "bank"
    assert build_bank.main(["--data", prepared_data, "--autoencoder",
                            str(stage1 / "autoencoder"), "--out", str(bank_dir)]) == 0
    bank = LatentBank.load(bank_dir)
    train_count = len(np.load(Path(prepared_data) / "train_sketches.npy", mmap_mode="r"))
    assert len(bank) == train_count and bank.dim == 16
    assert bank.length == "affine"  # what the shipped generator is trained on
    assert build_bank.main(["--data", prepared_data, "--autoencoder", str(stage1 / "autoencoder"),
                            "--out", str(tmp_path / "long"), "--length", "neighbours"]) == 0
    assert LatentBank.load(tmp_path / "long").length == "neighbours"

    weights = tmp_path / "weights"
    assert export.main(["--autoencoder", str(stage1 / "autoencoder"), "--generator",
                        str(g_run / "generator"), "--bank", str(bank_dir), "--out",
                        str(weights), "--half"]) == 0
    pipe = Sketch2Anime.from_pretrained(weights)
    assert pipe.resolution == 32 and len(pipe.bank) == train_count
    from tests.helpers import face_sketch

    assert pipe(face_sketch(), k=5, upscale=False).image.size == (32, 32)
    # Half precision on disk, full precision in memory, same values up to fp16 rounding.
    original = Generator.from_pretrained(g_run / "generator").state_dict()
    loaded = pipe.generator.state_dict()
    for name, tensor in original.items():
        torch.testing.assert_close(loaded[name].float(), tensor.half().float())


def test_soft_ink_keeps_line_centres_and_spreads_credit():
    sketch = torch.ones(1, 1, 21, 21)
    sketch[0, 0, :, 10] = 0.0  # one vertical 1 px line of ink
    assert torch.equal(train_autoencoder.soft_ink(sketch, 0.0), 1.0 - sketch)
    soft = train_autoencoder.soft_ink(sketch, 1.0)[0, 0, 10]  # one row across the line
    assert soft[10] == pytest.approx(1.0, abs=1e-5)
    assert 0.5 < soft[9] < 1.0 and soft[9] == pytest.approx(soft[11].item())
    assert soft[9] > soft[8] > soft[7] and soft[0] < 1e-3
    assert soft.min() >= 0.0 and soft.max() <= 1.0


def test_blurred_target_forgives_a_near_miss_more_than_a_far_one():
    sketch = torch.ones(1, 1, 21, 21)
    sketch[0, 0, :, 10] = 0.0

    def loss_of_line_at(column: int, blur: float) -> float:
        logits = torch.full((1, 1, 21, 21), -6.0)
        logits[0, 0, :, column] = 6.0
        return train_autoencoder.reconstruction_loss(logits, sketch, 4.0, blur).item()

    assert loss_of_line_at(11, 0.0) == pytest.approx(loss_of_line_at(15, 0.0), rel=1e-3)
    assert loss_of_line_at(10, 1.0) < loss_of_line_at(11, 1.0) < loss_of_line_at(15, 1.0)


def test_evaluate_autoencoder_scores_a_trained_model(prepared_data, stage1, capsys):
    from evaluation import evaluate_autoencoder

    assert evaluate_autoencoder.main(["--autoencoder", str(stage1 / "autoencoder"),
                                      "--data", prepared_data, "--items", "4"]) == 0
    out = capsys.readouterr().out
    report = json.loads(out[out.index("{"):])
    assert report["items"] == 4
    for name in ("reconstruction", "nn_l2", "nn_cosine", "degraded_nn_l2", "degraded_nn_cosine",
                 "random_neighbour"):
        assert 0.0 <= report[name] <= 1.0


@pytest.mark.parametrize(
    "module, extra",
    [
        (train_autoencoder, ["--steps", "0"]),
        (train_autoencoder, ["--lr", "-1"]),
        (train_autoencoder, ["--channels", "8", "16", "32", "64", "128", "256"]),  # 32 px
        (train_autoencoder, ["--resume"]),
        (train_autoencoder, ["--target-blur", "-1"]),
        (train_baseline, ["--batch-size", "0"]),
        (train_generator, ["--autoencoder", "/nonexistent"]),
    ],
)
def test_bad_flags_fail_before_any_work(module, extra, prepared_data, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        module.main(["--data", prepared_data, "--out", str(tmp_path / "run"), *extra])
    assert exit_info.value.code == 2
    assert not (tmp_path / "run").exists()


def test_missing_data_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(SystemExit):
        train_autoencoder.main(["--data", str(tmp_path), "--out", str(tmp_path / "run")])
    assert "prepare_data" in capsys.readouterr().err


def test_dry_run_trains_nothing(prepared_data, tmp_path, capsys):
    assert train_autoencoder.main(["--data", prepared_data, "--out", str(tmp_path / "run"),
                                   "--dry-run", *TINY_AE]) == 0
    assert json.loads(capsys.readouterr().out)["config"]["latent_dim"] == 16
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_torchrun_two_processes_on_cpu(prepared_data, tmp_path):
    """The same entry point runs unchanged under torchrun with DDP (gloo)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
               "--standalone",
               "-m", "training.train_generator", "--data", prepared_data,
               "--out", str(tmp_path / "ddp"), "--steps", "2", *SHORT, *TINY_G,
               "--autoencoder", str(tmp_path / "ae" / "autoencoder")]
    train_autoencoder.main(["--data", prepared_data, "--out", str(tmp_path / "ae"),
                            "--steps", "1", *SHORT, *TINY_AE])
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "ddp" / "generator" / "model.safetensors").is_file()
    assert [m["step"] for m in read_metrics(tmp_path / "ddp")] == [1, 2]  # rank 0 logs only


@pytest.mark.slow
def test_time_budget_ends_the_run_and_drives_the_schedule(prepared_data, tmp_path):
    """A run with far more steps than it can take stops on the clock, fully decayed."""
    run = tmp_path / "timed"
    assert train_autoencoder.main(
        ["--data", prepared_data, "--out", str(run), "--steps", "1000000",
         "--time-budget", "0.05", "--batch-size", "4", "--log-every", "1", *TINY_AE]) == 0
    metrics = read_metrics(run)
    assert 1 <= metrics[-1]["step"] < 1_000_000
    assert metrics[-1]["lr"] < 0.2 * 1e-3  # the clock, not the step count, decayed it
    assert metrics[-1]["seconds"] >= 1.2 * 0.9
    checkpoint = torch.load(run / "checkpoint.pt", weights_only=True)
    assert checkpoint["seconds_used"] >= 1.2 and checkpoint["step"] == metrics[-1]["step"]
    assert (run / "autoencoder" / "model.safetensors").is_file()


def test_budget_fraction_follows_steps_or_clock(monkeypatch):
    clock = [100.0]
    monkeypatch.setattr(common.time, "perf_counter", lambda: clock[0])
    by_steps = common.Budget(steps=10)
    assert by_steps.fraction(5) == 0.5 and by_steps.fraction(12) == 1.0
    timed = common.Budget(steps=1000, minutes=1.0, seconds_before=15.0)
    assert timed.fraction(0) == 0.25  # time spent before a resume counts
    clock[0] += 30.0
    assert timed.fraction(10) == 0.75
    assert timed.fraction(900) == 0.9  # the steps can still end it first
    assert common.decayed_lr(1.0, 0.25) == 1.0
    assert common.decayed_lr(1.0, 1.0) == pytest.approx(0.05)
    assert 0.05 < common.decayed_lr(1.0, 0.75) < 1.0


def test_negative_time_budget_is_refused(prepared_data, tmp_path):
    with pytest.raises(SystemExit):
        train_autoencoder.main(["--data", prepared_data, "--out", str(tmp_path / "run"),
                                "--time-budget", "-1"])
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_training_code_does_not_import_faiss():
    """GPU machines may lack FAISS: the training stages must not need it."""
    code = ("import sys, training.train_autoencoder, training.train_generator, "
            "training.train_baseline; print('faiss' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_generator_trains_on_projected_latents(prepared_data, stage1, tmp_path):
    build_bank.main(["--data", prepared_data, "--autoencoder", str(stage1 / "autoencoder"),
                     "--out", str(tmp_path / "bank")])
    first = tmp_path / "g1"
    common_flags = ["--data", prepared_data, "--autoencoder", str(stage1 / "autoencoder"),
                    "--steps", "1", *SHORT, *TINY_G]
    assert train_generator.main([*common_flags, "--out", str(first)]) == 0
    tuned = tmp_path / "g2"
    assert train_generator.main([*common_flags, "--out", str(tuned), "--init",
                                 str(first / "generator"), "--bank", str(tmp_path / "bank"),
                                 "--projected-share", "1.0", "--k", "3"]) == 0
    run_config = json.loads((tuned / "config.json").read_text())
    assert run_config["projected_share"] == 1.0 and run_config["bank_length"] == "affine"
    assert (tuned / "generator" / "model.safetensors").is_file()


def test_projected_share_needs_a_bank(prepared_data, stage1, tmp_path):
    with pytest.raises(SystemExit):
        train_generator.main(["--data", prepared_data, "--autoencoder",
                              str(stage1 / "autoencoder"), "--out", str(tmp_path / "g"),
                              "--projected-share", "0.5"])
    assert not (tmp_path / "g").exists()
