"""Tests for evaluation.evaluate: the end-to-end run on tiny weights, aggregation, bad input."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from evaluation.evaluate import TABLE_HEADER, aggregate_scores, format_table, main

OUTPUT_FILES = ("results.json", "results.md", "psnr_vs_hints.png", "samples.png")


@pytest.fixture(scope="module")
def eval_run(prepared_data, tiny_weights, tmp_path_factory):
    """One small evaluation (8 items, 0 and 5 hints) shared by the checks below."""
    out = tmp_path_factory.mktemp("eval")
    code = main(["--weights", tiny_weights, "--data", prepared_data, "--out", str(out),
                 "--hints", "0,5", "--limit", "8", "--batch-size", "4", "--device", "cpu"])
    return code, out


def test_writes_all_outputs(eval_run):
    code, out = eval_run
    assert code == 0
    for name in OUTPUT_FILES:
        assert (out / name).is_file(), name
    assert TABLE_HEADER in (out / "results.md").read_text(encoding="utf-8")
    for name in ("psnr_vs_hints.png", "samples.png"):
        with Image.open(out / name) as image:
            assert image.width > 0 and image.height > 0


def test_results_rows(eval_run):
    _, out = eval_run
    rows = json.loads((out / "results.json").read_text())
    assert len(rows) == 2 * 4 * 2
    keys = {(r["sketches"], r["system"], r["hints"]) for r in rows}
    assert keys == {
        (s, system, n)
        for s in ("clean", "degraded")
        for system in ("method r=1", "method r=0.5", "method r=0", "simplegan")
        for n in (0, 5)
    }
    for row in rows:
        assert row["count"] == 8
        assert math.isfinite(row["psnr"])
        assert 0.0 <= row["edge_f1"] <= 1.0
        if row["hints"] == 0:
            assert row["delta_e_mean"] is None and row["delta_e_median"] is None
        else:
            assert math.isfinite(row["delta_e_mean"]) and math.isfinite(row["delta_e_median"])
            assert row["delta_e_mean"] >= 0


def test_realism_scores_every_cell(eval_run):
    _, out = eval_run
    rows = json.loads((out / "realism.json").read_text())
    assert {(r["sketches"], r["system"]) for r in rows} == {
        (s, system) for s in ("clean", "degraded")
        for system in ("method r=1", "method r=0.5", "method r=0", "simplegan")}
    assert all(0.0 <= r["realism_accuracy"] <= 1.0 and r["hints"] == 5 for r in rows)
    assert "realism accuracy" in (out / "results.md").read_text(encoding="utf-8")


def test_aggregate_scores_known_numbers():
    result = aggregate_scores(
        [10.0, 20.0, 30.0],
        [0.5, 1.0, 0.0],
        [np.array([1.0, 2.0]), np.array([6.0]), np.zeros(0)],
    )
    assert result["psnr"] == pytest.approx(20.0)
    assert result["edge_f1"] == pytest.approx(0.5)
    # Pooled over hinted pixels (1, 2, 6), not averaged per item.
    assert result["delta_e_mean"] == pytest.approx(3.0)
    assert result["delta_e_median"] == pytest.approx(2.0)
    assert result["count"] == 3


def test_aggregate_scores_without_hints_is_nan():
    result = aggregate_scores([12.0], [0.25], [np.zeros(0)])
    assert math.isnan(result["delta_e_mean"]) and math.isnan(result["delta_e_median"])
    assert result["psnr"] == 12.0 and result["count"] == 1


def test_table_shows_dash_for_nan():
    row = {"sketches": "clean", "system": "simplegan", "hints": 0, "psnr": 12.3456,
           "delta_e_mean": math.nan, "delta_e_median": math.nan, "edge_f1": 0.12345,
           "count": 4}
    table = format_table([row])
    assert table.splitlines()[0] == TABLE_HEADER
    assert "| clean | simplegan | 0 | 12.35 | - | - | 0.123 | 4 |" in table


def test_missing_weights_exit_code(prepared_data, tmp_path, capsys):
    code = main(["--weights", str(tmp_path / "nowhere"), "--data", prepared_data,
                 "--out", str(tmp_path / "out")])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err
    assert not (tmp_path / "out").exists()


def test_missing_data_exit_code(tiny_weights, tmp_path):
    assert main(["--weights", tiny_weights, "--data", str(tmp_path / "nowhere"),
                 "--out", str(tmp_path / "out")]) == 2


def test_empty_val_split_exit_code(tiny_weights, tmp_path):
    data = Path(tmp_path / "data")
    data.mkdir()
    (data / "meta.json").write_text("{}")  # prepared, so the empty split is what fails
    np.save(data / "val_images.npy", np.zeros((0, 32, 32, 3), np.uint8))
    np.save(data / "val_sketches.npy", np.zeros((0, 32, 32), np.uint8))
    assert main(["--weights", tiny_weights, "--data", str(data),
                 "--out", str(tmp_path / "out")]) == 2
