"""training.pack_data: prepared data -> compact WebP pack -> prepared data again."""

import json
from pathlib import Path

import numpy as np
import pytest

from s2a.metrics import edge_f1
from training import pack_data
from training.data import load_split


@pytest.fixture(scope="module")
def round_trip(prepared_data, tmp_path_factory):
    pack, out = tmp_path_factory.mktemp("pack"), tmp_path_factory.mktemp("unpacked")
    assert pack_data.main(["pack", "--data", prepared_data, "--out", str(pack),
                           "--quality", "90", "--val", "3"]) == 0
    assert pack_data.main(["unpack", "--pack", str(pack), "--out", str(out),
                           "--workers", "1"]) == 0
    return pack, out


def test_pack_is_smaller_than_the_arrays(prepared_data, round_trip):
    pack, _ = round_trip
    packed = sum(f.stat().st_size for f in pack.iterdir())
    arrays = sum(f.stat().st_size for f in Path(prepared_data).glob("*.npy"))
    assert packed < arrays / 2


def test_unpacked_data_matches_the_prepared_split(prepared_data, round_trip):
    _, out = round_trip
    images, sketches = load_split(prepared_data, "train")
    new_images, new_sketches = load_split(out, "train")
    assert new_images.shape == images.shape and new_sketches.shape == sketches.shape
    # Lossy (WebP halves the chroma: ~8 of 255 on these tiny flat cartoons, ~4 on real
    # 96 px faces at quality 75), but the same faces.
    assert np.abs(new_images.astype(float) - images).mean() < 16
    # A shuffled pairing would be far off: the order of the faces is kept.
    assert np.abs(new_images.astype(float) - images[::-1]).mean() > \
        2 * np.abs(new_images.astype(float) - images).mean()
    scores = [edge_f1(a, b) for a, b in zip(new_sketches, sketches)]
    assert np.mean(scores) > 0.8
    assert len(load_split(out, "val")[0]) == min(3, len(load_split(prepared_data, "val")[0]))
    meta = json.loads((out / "meta.json").read_text())
    assert meta["config"]["resolution"] == images.shape[1]
    assert meta["packed"]["quality"] == 90


def test_bad_arguments_are_clear_errors(tmp_path, capsys):
    with pytest.raises(SystemExit):
        pack_data.main(["pack", "--data", str(tmp_path), "--out", str(tmp_path / "p")])
    assert "prepare_data" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        pack_data.main(["unpack", "--pack", str(tmp_path), "--out", str(tmp_path / "d")])
    assert "not a pack" in capsys.readouterr().err
