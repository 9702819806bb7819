"""Weights integrity: manifest.json round trip, damaged files named, no unpickling anywhere."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from s2a import Sketch2Anime, hub
from s2a.manifest import MANIFEST, main, read_manifest, verify_manifest, write_manifest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def weights(tiny_weights, tmp_path) -> Path:
    folder = tmp_path / "weights"
    shutil.copytree(tiny_weights, folder)
    write_manifest(folder)
    return folder


def test_round_trip(weights):
    files = read_manifest(weights)
    assert "generator/model.safetensors" in files and "bank/bank_latents.safetensors" in files
    assert MANIFEST not in files and "README.md" not in files
    verify_manifest(weights)
    assert Sketch2Anime.from_pretrained(weights).resolution == 32


def test_bundled_weights_carry_a_valid_manifest():
    verify_manifest(hub.BUNDLED_WEIGHTS)
    listed = set(read_manifest(hub.BUNDLED_WEIGHTS))
    assert {"autoencoder/model.safetensors", "generator/model.safetensors",
            "bank/bank_latents.safetensors"} <= listed


def test_truncated_file_is_named(weights):
    path = weights / "generator" / "model.safetensors"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(ValueError, match="generator/model.safetensors.*truncated"):
        verify_manifest(weights)
    with pytest.raises(ValueError, match="generator/model.safetensors"):
        Sketch2Anime.from_pretrained(weights)


def test_one_flipped_byte_is_named(weights):
    path = weights / "bank" / "bank_latents.safetensors"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="bank/bank_latents.safetensors.*altered"):
        Sketch2Anime.from_pretrained(weights)


def test_missing_file_is_named(weights):
    (weights / "autoencoder" / "config.json").unlink()
    with pytest.raises(ValueError, match="autoencoder/config.json is missing"):
        verify_manifest(weights)


def test_extra_files_and_an_edited_card_are_fine(weights):
    (weights / "notes.txt").write_text("mine")
    (weights / "README.md").write_text("# my edited card\n")
    verify_manifest(weights)
    Sketch2Anime.from_pretrained(weights)


@pytest.mark.parametrize("text", ["not json", "[]", '{"format": "other", "files": {}}',
                                  json.dumps({"format": "sketch2anime-weights-manifest",
                                              "version": 1, "files": {"../x": {}}})])
def test_bad_manifest_is_a_value_error(weights, text):
    (weights / MANIFEST).write_text(text)
    with pytest.raises(ValueError, match="manifest"):
        verify_manifest(weights)


def test_local_folder_without_manifest_loads_but_bundled_must_have_one(weights, monkeypatch):
    (weights / MANIFEST).unlink()
    Sketch2Anime.from_pretrained(weights)  # an old export or hand-made folder
    monkeypatch.setattr(hub, "BUNDLED_WEIGHTS", weights)
    with pytest.raises(ValueError, match="manifest.json is missing"):
        Sketch2Anime.from_pretrained()


def test_hub_repos_must_carry_a_manifest():
    assert "manifest.json" in hub.HUB_REQUIRED_FILES
    assert "manifest.json" in hub.HUB_ALLOW_PATTERNS


def test_cli(weights, capsys):
    assert main(["verify", str(weights)]) == 0
    (weights / "generator" / "config.json").write_text("{}")
    assert main(["verify", str(weights)]) == 1
    assert "generator/config.json" in capsys.readouterr().err
    assert main(["write", str(weights)]) == 0
    assert main(["verify", str(weights)]) == 0


def test_export_writes_the_manifest_last():
    source = (ROOT / "training" / "export.py").read_text()
    assert source.index("write_manifest(out)") > source.index("pipe.bank.save(")


def test_no_code_path_unpickles():
    """torch.load only with weights_only=True; no pickle module; np.load never allow_pickle."""
    sources = [*(ROOT / "s2a").rglob("*.py"), *(ROOT / "training").rglob("*.py"), ROOT / "app.py"]
    problems = []
    for path in sources:
        text = path.read_text()
        for match in re.finditer(r"torch\.load\(", text):
            call = text[match.start(): text.find(")", match.start()) + 1]
            if "weights_only=True" not in call:
                problems.append(f"{path.name}: {call}")
        if re.search(r"^\s*(import pickle|from pickle|import dill|import joblib)", text, re.M):
            problems.append(f"{path.name}: imports a pickle library")
        if re.search(r"allow_pickle\s*=\s*True", text):
            problems.append(f"{path.name}: allow_pickle=True")
        if re.search(r"\b(pickle|cloudpickle)\.loads?\(", text):
            problems.append(f"{path.name}: pickle.load")
    assert problems == []
