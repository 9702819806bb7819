"""The per-part model's rest read from the whole sketch on the whole-face bank
(parts.json ``"rest": "whole"``), beside DeepFaceDrawing's blanked rest."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from s2a import Sketch2Anime
from s2a.manifest import write_manifest
from s2a.models import SketchAutoencoder
from s2a.parts import PartModel
from s2a.projection import LatentBank
from training.build_part_banks import parse_args as parse_part_bank_args


def _whole_rest_copy(source: str | Path, target: Path) -> Path:
    """A copy of a weights folder whose part model reads the rest from the whole sketch."""
    shutil.copytree(source, target)
    meta_path = target / "parts" / "parts.json"
    meta = json.loads(meta_path.read_text())
    meta["rest"] = "whole"
    meta_path.write_text(json.dumps(meta))
    shutil.rmtree(target / "parts" / "rest")
    write_manifest(target)
    return target


@pytest.fixture(scope="module")
def whole_rest_weights(tiny_part_weights, tmp_path_factory) -> Path:
    return _whole_rest_copy(tiny_part_weights, tmp_path_factory.mktemp("rest") / "weights")


@pytest.fixture(scope="module")
def whole_rest_pipe(whole_rest_weights) -> Sketch2Anime:
    return Sketch2Anime.from_pretrained(whole_rest_weights)


def _sketch(size: int = 64) -> Image.Image:
    picture = np.full((size, size), 255, np.uint8)
    picture[20:24, 10:54] = 0
    picture[40:44, 20:44] = 0
    return Image.fromarray(picture)


def test_the_rest_reads_the_whole_sketch_on_the_whole_face_bank(whole_rest_pipe):
    parts = whole_rest_pipe.parts
    assert parts.rest == "whole" and parts.banks["rest"] is whole_rest_pipe.bank
    sketches = torch.rand(2, 1, parts.resolution, parts.resolution).round()
    assert torch.equal(parts.inputs(sketches)["rest"], sketches)


def test_rest_neighbours_are_the_whole_face_neighbours(whole_rest_pipe):
    out = whole_rest_pipe(_sketch(), refine={"left_eye": 0.0}, k=5)
    sketches, _ = whole_rest_pipe.framed_sketch_tensor(_sketch())  # (1, 1, R, R)
    with torch.no_grad():
        z = whole_rest_pipe.autoencoder.encode(sketches).numpy()
    rest_rows = [row for row, _ in out.part_neighbors["rest"]]
    assert rest_rows == [int(r) for r in whole_rest_pipe.bank.select(z, 5)[0]]


def test_a_whole_rest_folder_saves_no_rest_bank(whole_rest_pipe, tmp_path):
    whole_rest_pipe.parts.save(tmp_path / "parts")
    assert json.loads((tmp_path / "parts" / "parts.json").read_text())["rest"] == "whole"
    assert not (tmp_path / "parts" / "rest").exists()


def test_a_whole_rest_folder_needs_the_whole_face_bank(whole_rest_weights):
    autoencoder = SketchAutoencoder.from_pretrained(whole_rest_weights / "autoencoder")
    with pytest.raises(ValueError, match="load it with the whole-face bank"):
        PartModel.load(whole_rest_weights / "parts", autoencoder)
    bank = LatentBank.load(whole_rest_weights / "bank")
    assert PartModel.load(whole_rest_weights / "parts", autoencoder, bank).banks["rest"] is bank


def test_an_unknown_rest_is_a_clear_error(whole_rest_weights, tmp_path):
    folder = tmp_path / "weights"
    shutil.copytree(whole_rest_weights, folder)
    meta_path = folder / "parts" / "parts.json"
    meta = json.loads(meta_path.read_text())
    meta["rest"] = "half"
    meta_path.write_text(json.dumps(meta))
    autoencoder = SketchAutoencoder.from_pretrained(folder / "autoencoder")
    with pytest.raises(ValueError, match="rest must be one of"):
        PartModel.load(folder / "parts", autoencoder, LatentBank.load(folder / "bank"))


def test_blanked_stays_the_default(part_pipe):
    assert part_pipe.parts.rest == "blanked"


def test_build_part_banks_whole_rest_needs_the_bank(prepared_data, tmp_path, capsys):
    with pytest.raises(SystemExit) as error:
        parse_part_bank_args(["--data", prepared_data, "--parts", str(tmp_path),
                              "--autoencoder", str(tmp_path), "--out", str(tmp_path / "o"),
                              "--rest", "whole"])
    assert error.value.code == 2


def test_the_bundled_part_model_reads_the_whole_sketch():
    folder = Path(__file__).resolve().parents[1] / "weights" / "parts"
    meta = json.loads((folder / "parts.json").read_text())
    if meta.get("rest") != "whole":
        pytest.skip("the bundled part model has a blanked rest")
    assert not (folder / "rest").exists()  # the whole-face bank serves, no copy of it
