"""training/continue_on_gpu.sh and what it needs: the exact faiss stand-in, training.collect_runs,
pack_data --train, train_completing_encoder --init."""

import importlib.util
import json
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load, load_file

from s2a.models import SketchAutoencoder, SketchAutoencoderConfig
from tests.test_completing_encoder import _train, tiny  # noqa: F401 (fixture)
from tests.test_rebuild_script import FLAG, _calls, _defined_flags, _lines
from training import collect_runs, pack_data
from training.data import load_split

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "training" / "continue_on_gpu.sh"
STAND_IN = ROOT / "training" / "exact_faiss"

# Projects the same queries with LatentBank on whatever `faiss` imports: the stand-in when its
# folder leads PYTHONPATH, the real one otherwise. A bank over COARSE_MIN rows searches in two
# passes (fp16 IndexScalarQuantizer, then exact), so both index classes are exercised.
PROJECT = """
import json, sys
import numpy as np, faiss
from s2a.projection import LatentBank
rng = np.random.default_rng(0)
latents = rng.normal(size=(5000, 24)).astype(np.float32)
queries = latents[:40] + 0.3 * rng.normal(size=(40, 24)).astype(np.float32)
out = {"stand_in": getattr(faiss, "STAND_IN", False)}
for metric in ("l2", "cosine"):
    bank = LatentBank(latents, metric=metric)
    projection = bank.project(queries, k=10, skip_same=True)
    out[metric] = [projection.indices.tolist(), projection.weights.tolist()]
print(json.dumps(out))
"""


def _project(stand_in: bool) -> dict:
    path = [str(STAND_IN), str(ROOT)] if stand_in else [str(ROOT)]
    result = subprocess.run([sys.executable, "-c", PROJECT], capture_output=True, text=True,
                            timeout=120, env={"PYTHONPATH": ":".join(path), "PATH": "/usr/bin:/bin",
                                              "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_the_stand_in_projects_exactly_as_faiss_does():
    real, stand_in = _project(False), _project(True)
    assert not real["stand_in"] and stand_in["stand_in"]
    for metric in ("l2", "cosine"):
        assert stand_in[metric][0] == real[metric][0]  # the same neighbours, in order
        np.testing.assert_allclose(stand_in[metric][1], real[metric][1], atol=1e-4)


def test_the_stand_in_refuses_what_it_cannot_do():
    spec = importlib.util.spec_from_file_location("faiss_stand_in", STAND_IN / "faiss.py")
    stand_in = importlib.util.module_from_spec(spec)  # loaded beside the real faiss
    spec.loader.exec_module(stand_in)
    assert stand_in.STAND_IN
    with pytest.raises(NotImplementedError, match="flat banks only"):
        stand_in.IndexHNSWFlat(8, 32)
    with pytest.raises(NotImplementedError, match="flat banks only"):
        stand_in.write_index(stand_in.IndexFlatL2(8), "x.faiss")
    index = stand_in.IndexFlatL2(3)
    index.add(np.eye(3, dtype=np.float32))
    distances, rows = index.search(np.array([[0.9, 0.1, 0.0]], np.float32), 2)
    assert rows.tolist() == [[0, 1]] and index.ntotal == 3
    np.testing.assert_allclose(distances, [[0.02, 1.62]], atol=1e-6)


def _tiny_model(folder: Path) -> Path:
    torch.manual_seed(0)
    SketchAutoencoder(SketchAutoencoderConfig(resolution=32, latent_dim=16,
                                              channels=(8, 16))).save_pretrained(folder)
    return folder


def test_collect_runs_sends_fp16_tars_and_reports_what_is_missing(tmp_path, capsys):
    model = _tiny_model(tmp_path / "run" / "autoencoder")
    out = tmp_path / "out"
    assert collect_runs.main(["--out", str(out), f"completing={model}"]) == 0
    with tarfile.open(out / "completing.tar") as archive:
        assert sorted(archive.getnames()) == ["completing/config.json",
                                              "completing/model.safetensors"]
        tensors = load(archive.extractfile("completing/model.safetensors").read())
    original = load_file(model / "model.safetensors")
    assert tensors.keys() == original.keys()
    for name, tensor in tensors.items():
        if tensor.is_floating_point():
            assert tensor.dtype == torch.float16
            torch.testing.assert_close(tensor.float(), original[name], atol=1e-2, rtol=1e-3)
    # A run stopped before it saved: the others still go back, and the exit status says so.
    assert collect_runs.main(["--out", str(out), f"generator={tmp_path / 'none'}",
                              f"again={model}"]) == 1
    assert "generator: no model" in capsys.readouterr().out
    assert (out / "again.tar").is_file() and not (out / "generator.tar").exists()
    with pytest.raises(SystemExit):
        collect_runs.main(["--out", str(out), "no-equals-sign"])


def test_collect_runs_sends_a_gan_runs_discriminator_with_its_model(tmp_path):
    from s2a.models import Discriminator, DiscriminatorConfig

    model = _tiny_model(tmp_path / "run" / "generator")
    Discriminator(DiscriminatorConfig(resolution=32, channels=(8, 16))).save_pretrained(
        tmp_path / "run" / "discriminator")  # where training.gan saves it
    out = tmp_path / "out"
    assert collect_runs.main(["--out", str(out), f"generator={model}"]) == 0
    with tarfile.open(out / "generator.tar") as archive:
        names = sorted(archive.getnames())
        archive.extractall(tmp_path / "back", filter="data")
    assert names == sorted(f"{folder}/{file}" for folder in ("generator", "generator_discriminator")
                           for file in ("config.json", "model.safetensors"))
    back = Discriminator.from_pretrained(tmp_path / "back" / "generator_discriminator")
    assert back.config.channels == (8, 16)


def test_pack_keeps_the_first_training_faces_when_asked(prepared_data, tmp_path):
    pack, out = tmp_path / "pack", tmp_path / "data"
    assert pack_data.main(["pack", "--data", prepared_data, "--out", str(pack), "--train", "2",
                           "--val", "1"]) == 0
    assert pack_data.main(["unpack", "--pack", str(pack), "--out", str(out),
                           "--workers", "1"]) == 0
    images, _ = load_split(out, "train")
    originals, _ = load_split(prepared_data, "train")
    assert len(originals) > 2 and len(images) == 2
    assert np.abs(images.astype(float) - originals[:2]).mean() < 16
    # A second transfer takes the next faces.
    assert pack_data.main(["pack", "--data", prepared_data, "--out", str(pack), "--train", "2",
                           "--train-start", "2", "--val", "1"]) == 0
    assert pack_data.main(["unpack", "--pack", str(pack), "--out", str(out),
                           "--workers", "1"]) == 0
    images, _ = load_split(out, "train")
    assert len(images) == 2 and np.abs(images.astype(float) - originals[2:4]).mean() < 16
    assert pack_data.main(["pack", "--data", prepared_data, "--out", str(pack),
                           "--train-start", str(len(originals))]) == 2
    with pytest.raises(SystemExit):
        pack_data.main(["pack", "--data", prepared_data, "--out", str(pack), "--train", "-1"])


def test_completing_encoder_init_starts_from_a_trained_student(tiny, tmp_path):  # noqa: F811
    assert _train(tiny, tmp_path / "first", "--steps", "2") == 0
    first = load_file(tmp_path / "first" / "autoencoder" / "model.safetensors")
    # A vanishing lr: nothing moves measurably, so the student stays where --init put it.
    assert _train(tiny, tmp_path / "second", "--steps", "1", "--lr", "1e-12",
                  "--init", str(tmp_path / "first" / "autoencoder")) == 0
    second = load_file(tmp_path / "second" / "autoencoder" / "model.safetensors")
    teacher = load_file(Path(tiny["teacher"]) / "model.safetensors")
    encoder = [k for k in first if k.startswith(("encoder.", "to_latent."))]
    assert encoder and any(not torch.equal(first[k], teacher[k]) for k in encoder)
    for key in first:
        expected = first if key in encoder else teacher  # the decoder stays the teacher's
        torch.testing.assert_close(second[key], expected[key])


def test_completing_encoder_init_must_match_the_teacher(tiny, tmp_path, capsys):  # noqa: F811
    other = tmp_path / "other"
    SketchAutoencoder(SketchAutoencoderConfig(resolution=32, latent_dim=8,
                                              channels=(8, 16))).save_pretrained(other)
    with pytest.raises(SystemExit):
        _train(tiny, tmp_path / "run", "--init", str(other))
    assert "teacher's architecture" in capsys.readouterr().err


def test_script_syntax_and_flags():
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)
    calls = _calls(SCRIPT)
    assert [stage for stage, _ in calls] == [
        "pack_data", "train_completing_encoder", "train_generator", "train_generator",
        "train_baseline", "collect_runs"]
    for stage, line in calls[:-1]:
        unknown = set(FLAG.findall(line.split(f"training.{stage}", 1)[1])) - _defined_flags(stage)
        assert not unknown, f"{stage} has no {sorted(unknown)}"
    lines = " ".join(_lines(SCRIPT))
    # Every run starts from the shipped weights, so the bank's latent space is kept.
    assert "--init \"$WEIGHTS/autoencoder\"" in lines and "--teacher \"$TEACHER\"" in lines
    assert "GENERATOR_INIT=${S2A_GENERATOR_INIT:-$WEIGHTS/generator}" in lines
    assert lines.count("--init \"$GENERATOR_INIT\"") == 1  # in the shared GENERATOR array
    # A later call can start the generators' discriminator from an earlier call's.
    assert ("${S2A_DISCRIMINATOR_INIT:+--init-discriminator \"$S2A_DISCRIMINATOR_INIT\"}"
            in lines)
    assert "--init \"$WEIGHTS/baseline\"" in lines
    assert re.search(r"--locality-weight \d+ --part-windows \"\$WEIGHTS/parts\"", lines)


def test_script_usage_error(tmp_path):
    result = subprocess.run(["bash", str(SCRIPT), "pack"], capture_output=True, text=True,
                            timeout=60, env={"PATH": "/usr/bin:/bin", "PYTHON": sys.executable})
    assert result.returncode != 0 and "usage: continue_on_gpu.sh" in result.stderr
