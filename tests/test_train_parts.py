"""The per-part stages on tiny data: training.train_parts (one-step smoke, dry run, bad
flags, resume), training.build_part_banks, and training.export --parts into a weights
folder that Sketch2Anime loads and runs per part."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open

from s2a import Sketch2Anime
from s2a.manifest import read_manifest
from s2a.models import SketchAutoencoder
from s2a.parts import PART_NAMES, WINDOWED_PARTS, PartModel, scaled_windows
from s2a.projection import LatentBank
from tests.helpers import TINY_LATENT, TINY_RESOLUTION, face_sketch
from tests.test_training import ROOT, SHORT, read_metrics
from training import build_bank, build_part_banks, export, train_parts

TINY_PARTS = ["--channels", "8", "--latent-dim", "8"]


@pytest.fixture(scope="module")
def parts_run(prepared_data, tmp_path_factory) -> Path:
    """A train_parts run of two steps: <part>/autoencoder/ for each part and a checkpoint."""
    out = tmp_path_factory.mktemp("parts_run")
    assert train_parts.main(["--data", prepared_data, "--out", str(out), "--steps", "2",
                             *SHORT, *TINY_PARTS]) == 0
    return out


@pytest.fixture(scope="module")
def parts_model(prepared_data, parts_run, tiny_weights, tmp_path_factory) -> Path:
    """build_part_banks on the run, the rest encoded with tiny_weights' autoencoder."""
    out = tmp_path_factory.mktemp("parts_model") / "parts"
    assert build_part_banks.main([
        "--data", prepared_data, "--parts", str(parts_run), "--autoencoder",
        str(Path(tiny_weights) / "autoencoder"), "--out", str(out), "--batch-size", "7"]) == 0
    return out


@pytest.fixture(scope="module")
def whole_bank(prepared_data, tiny_weights, tmp_path_factory) -> Path:
    """The whole-face bank of the same training sketches, as training.build_bank writes it."""
    out = tmp_path_factory.mktemp("bank") / "bank"
    assert build_bank.main(["--data", prepared_data, "--autoencoder",
                            str(Path(tiny_weights) / "autoencoder"), "--out", str(out)]) == 0
    return out


@pytest.mark.slow
def test_train_parts_does_not_import_faiss():
    """GPU machines may lack FAISS (see test_training): training the part autoencoders must
    not need it; only build_part_banks, which writes banks, does."""
    code = "import sys, training.train_parts; print('faiss' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def _train_count(prepared_data) -> int:
    return len(np.load(Path(prepared_data) / "train_sketches.npy", mmap_mode="r"))


def _export_flags(tiny_weights, bank: Path, out: Path) -> list[str]:
    return ["--autoencoder", str(Path(tiny_weights) / "autoencoder"), "--generator",
            str(Path(tiny_weights) / "generator"), "--bank", str(bank), "--out", str(out)]


# ---------------------------------------------------------------- train_parts


def test_parts_step_writes_a_complete_run(parts_run):
    windows = scaled_windows(TINY_RESOLUTION, 2)  # one down-sampling step: multiples of 2
    for name in WINDOWED_PARTS:
        folder = parts_run / name / "autoencoder"
        assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
        config = SketchAutoencoder.from_pretrained(folder).config
        assert config.resolution == windows[name].size and config.latent_dim == 8
    config = json.loads((parts_run / "config.json").read_text())
    assert config["windows"]["left_eye"] == {"top": windows["left_eye"].top,
                                             "left": windows["left_eye"].left,
                                             "size": windows["left_eye"].size}
    metrics = read_metrics(parts_run)
    assert [m["step"] for m in metrics if "loss" in m] == [1, 2]
    for name in WINDOWED_PARTS:
        assert np.isfinite(metrics[-2][f"{name}_recon"])
        assert np.isfinite(metrics[-1][f"val_{name}_recon"])
    assert (parts_run / "checkpoint.pt").is_file()
    assert len(list((parts_run / "samples").glob("*.png"))) == 2


def test_parts_step_changes_every_part(prepared_data, tmp_path):
    args = train_parts.parse_args(["--data", prepared_data, "--out", "x", *TINY_PARTS])
    torch.manual_seed(args.seed)  # as main seeds them
    before = {n: SketchAutoencoder(c).state_dict() for n, c in args.part_configs.items()}
    assert train_parts.main(["--data", prepared_data, "--out", str(tmp_path), "--steps", "1",
                             *SHORT, *TINY_PARTS]) == 0
    for name in WINDOWED_PARTS:
        after = SketchAutoencoder.from_pretrained(tmp_path / name / "autoencoder").state_dict()
        assert not torch.equal(before[name]["to_latent.weight"], after["to_latent.weight"]), name


def test_teacher_run_trains_only_the_students_encoders(prepared_data, parts_run, tmp_path):
    """With --teacher, each part's decoder and latent space stay the teacher's; the
    encoder learns from rough drawings (every item degraded here)."""
    out = tmp_path / "students"
    assert train_parts.main(["--data", prepared_data, "--out", str(out), "--steps", "2",
                             "--teacher", str(parts_run), "--degraded-share", "1", *SHORT]) == 0
    metrics = read_metrics(out)
    for name in WINDOWED_PARTS:
        teacher = SketchAutoencoder.from_pretrained(parts_run / name / "autoencoder").state_dict()
        student = SketchAutoencoder.from_pretrained(out / name / "autoencoder").state_dict()
        for key in teacher:
            same = torch.equal(teacher[key], student[key])
            if key.startswith(("from_latent.", "decoder.")) or "running_" in key \
                    or "num_batches" in key:
                assert same, (name, key)
        assert not torch.equal(teacher["to_latent.weight"], student["to_latent.weight"]), name
        assert -1.0 <= metrics[-2][f"{name}_cosine"] <= 1.0
    assert json.loads((out / "config.json").read_text())["windows"] == \
        json.loads((parts_run / "config.json").read_text())["windows"]


def test_parts_dry_run_trains_nothing(prepared_data, tmp_path, capsys):
    assert train_parts.main(["--data", prepared_data, "--out", str(tmp_path / "run"),
                             "--dry-run", *TINY_PARTS]) == 0
    printed = capsys.readouterr().out
    assert all(f"{name}: window" in printed for name in WINDOWED_PARTS)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("extra", [
    ["--steps", "0"],
    ["--degraded-share", "1.5"],
    ["--mse-weight", "-1"],
    ["--teacher", "no/such/run"],
    ["--ink-weight", "0.5"],
    ["--target-blur", "-1"],
    ["--threads", "-1"],
    ["--resume"],  # no checkpoint in --out
    ["--channels", "8", "16", "32", "64", "128", "256"],  # windows of 64 px in a 32 px face
])
def test_parts_bad_flags_fail_before_any_work(prepared_data, tmp_path, extra):
    with pytest.raises(SystemExit) as exit_info:
        train_parts.main(["--data", prepared_data, "--out", str(tmp_path / "run"),
                          *TINY_PARTS, *extra])
    assert exit_info.value.code == 2
    assert not (tmp_path / "run").exists()


def test_parts_resume_continues_from_the_checkpoint(prepared_data, parts_run, tmp_path):
    run = tmp_path / "resumed"
    shutil.copytree(parts_run, run)
    with open(run / "metrics.jsonl", "a") as handle:  # logged after the last checkpoint
        handle.write('{"step": 3, "loss": 9.0}\n')
    assert train_parts.main(["--data", prepared_data, "--out", str(run), "--steps", "3",
                             "--resume", *SHORT, *TINY_PARTS]) == 0
    steps = [m["step"] for m in read_metrics(run) if "loss" in m]
    assert steps == [1, 2, 3] and read_metrics(run)[-2]["loss"] != 9.0
    assert torch.load(run / "checkpoint.pt", weights_only=True)["step"] == 3


# ---------------------------------------------------------------- build_part_banks


def test_part_banks_hold_every_training_sketch(prepared_data, parts_model, tiny_weights):
    rest = SketchAutoencoder.from_pretrained(Path(tiny_weights) / "autoencoder")
    model = PartModel.load(parts_model, rest)
    assert len(model) == _train_count(prepared_data)
    assert {n: model.banks[n].dim for n in PART_NAMES} == {
        **dict.fromkeys(WINDOWED_PARTS, 8), "rest": TINY_LATENT}
    assert model.windows == scaled_windows(TINY_RESOLUTION, 2)
    assert all(model.banks[n].metric == "cosine" for n in PART_NAMES)


def test_part_banks_of_teachers_ship_the_students(prepared_data, parts_run, parts_model,
                                                  tiny_weights, tmp_path):
    """--students: the banks are the teachers' (as without it), the autoencoders the
    students'."""
    students = tmp_path / "students"
    assert train_parts.main(["--data", prepared_data, "--out", str(students), "--steps", "1",
                             "--teacher", str(parts_run), *SHORT]) == 0
    out = tmp_path / "parts"
    assert build_part_banks.main([
        "--data", prepared_data, "--parts", str(parts_run), "--students", str(students),
        "--autoencoder", str(Path(tiny_weights) / "autoencoder"), "--out", str(out)]) == 0
    rest = SketchAutoencoder.from_pretrained(Path(tiny_weights) / "autoencoder")
    shipped, of_teachers = PartModel.load(out, rest), PartModel.load(parts_model, rest)
    for name in WINDOWED_PARTS:
        assert np.array_equal(shipped.banks[name].latents, of_teachers.banks[name].latents)
        student = SketchAutoencoder.from_pretrained(students / name / "autoencoder")
        assert torch.equal(shipped.autoencoders[name].to_latent.weight,
                           student.to_latent.weight), name


def test_part_banks_dry_run_and_bad_flags(prepared_data, parts_run, tiny_weights, tmp_path,
                                          capsys):
    flags = ["--data", prepared_data, "--parts", str(parts_run), "--autoencoder",
             str(Path(tiny_weights) / "autoencoder"), "--out", str(tmp_path / "parts")]
    assert build_part_banks.main([*flags, "--dry-run"]) == 0
    assert f"{_train_count(prepared_data)} sketches" in capsys.readouterr().out
    assert not (tmp_path / "parts").exists()
    no_windows = tmp_path / "run"
    shutil.copytree(parts_run, no_windows, ignore=shutil.ignore_patterns("config.json"))
    for bad in (["--parts", str(no_windows)], ["--parts", str(tmp_path)],
                ["--autoencoder", str(tmp_path)], ["--data", str(tmp_path)],
                ["--students", str(tmp_path)],
                ["--batch-size", "0"],
                *([["--device", "cuda"]] if not torch.cuda.is_available() else [])):
        with pytest.raises(SystemExit) as exit_info:
            build_part_banks.main([*flags, *bad])
        assert exit_info.value.code == 2
        assert not (tmp_path / "parts").exists()


# ---------------------------------------------------------------- export --parts


def test_export_with_parts_runs_per_part(prepared_data, parts_model, whole_bank, tiny_weights,
                                         tmp_path, capsys):
    weights = tmp_path / "weights"
    flags = [*_export_flags(tiny_weights, whole_bank, weights), "--parts", str(parts_model)]
    assert export.main([*flags, "--dry-run"]) == 0
    assert "per-part model" in capsys.readouterr().out and not weights.exists()
    assert export.main([*flags, "--half"]) == 0
    assert any(name.startswith("parts/nose/bank/") for name in read_manifest(weights))
    pipe = Sketch2Anime.from_pretrained(weights)
    assert pipe.parts is not None and len(pipe.parts) == _train_count(prepared_data)
    out = pipe(face_sketch(), refine={"left_eye": 0.0, "mouth": 0.5}, k=5, upscale=False)
    assert out.image.size == (TINY_RESOLUTION, TINY_RESOLUTION)
    assert set(out.part_neighbors) == set(PART_NAMES)
    # The part autoencoders are float16 on disk, float32 in memory, equal up to rounding.
    stored = weights / "parts" / "nose" / "autoencoder" / "model.safetensors"
    with safe_open(str(stored), "pt") as handle:
        assert all(handle.get_tensor(k).dtype == torch.float16 for k in handle.keys()
                   if handle.get_tensor(k).is_floating_point())
    original = SketchAutoencoder.from_pretrained(parts_model / "nose" / "autoencoder")
    for name, tensor in original.state_dict().items():
        if tensor.is_floating_point():
            torch.testing.assert_close(pipe.parts.autoencoders["nose"].state_dict()[name],
                                       tensor.half().float())
    # The banks are written as they are (int8 codes may shift with the base, not the values).
    for name in PART_NAMES:
        source = LatentBank.load(parts_model / name / "bank")
        assert np.array_equal(pipe.parts.banks[name].latents, source.latents)
        assert pipe.parts.banks[name].storage == source.storage == "int8"


def test_export_without_parts_removes_stale_parts(parts_model, whole_bank, tiny_weights,
                                                  tmp_path):
    weights = tmp_path / "weights"
    flags = _export_flags(tiny_weights, whole_bank, weights)
    assert export.main([*flags, "--parts", str(parts_model)]) == 0
    assert (weights / "parts" / "parts.json").is_file()
    assert export.main(flags) == 0
    assert not (weights / "parts").exists()
    assert not any(name.startswith("parts/") for name in read_manifest(weights))
    pipe = Sketch2Anime.from_pretrained(weights)
    assert pipe.parts is None
    assert pipe(face_sketch(), k=5, upscale=False).part_neighbors is None


def test_export_refuses_broken_parts_before_writing(parts_model, whole_bank, tiny_weights,
                                                    tmp_path, capsys):
    weights = tmp_path / "weights"
    flags = _export_flags(tiny_weights, whole_bank, weights)
    assert export.main(flags) == 0
    before = read_manifest(weights)
    # Parts of another set of sketches (40, not the training set's) do not fit the bank.
    other = tmp_path / "other_bank"
    shutil.copytree(Path(tiny_weights) / "bank", other)
    assert export.main([*_export_flags(tiny_weights, other, weights),
                        "--parts", str(parts_model)]) == 2
    assert "does not fit" in capsys.readouterr().err
    # A parts folder missing a part autoencoder.
    broken = tmp_path / "broken"
    shutil.copytree(parts_model, broken)
    shutil.rmtree(broken / "mouth" / "autoencoder")
    assert export.main([*flags, "--parts", str(broken)]) == 2
    assert "No mouth autoencoder" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # not a parts folder at all
        export.main([*flags, "--parts", str(tmp_path / "nowhere")])
    assert read_manifest(weights) == before  # the earlier export is untouched
    assert not (weights / "parts").exists()
    Sketch2Anime.from_pretrained(weights)
