"""evaluation.evaluate_parts on tiny models: the report's figures exist and behave."""

from __future__ import annotations

import json

import numpy as np

from evaluation.evaluate_parts import closed_eye, eye_gap, eye_pairs, main
from s2a.parts import scaled_windows


def test_eye_pairs_are_symmetric_then_one_eye_closed():
    windows = scaled_windows(96, 8)
    left, right = windows["left_eye"], windows["right_eye"]
    rng = np.random.default_rng(0)
    sketches = np.where(rng.random((3, 96, 96)) < 0.1, 0, 255).astype(np.uint8)
    symmetric, asymmetric = eye_pairs(sketches, left, right)
    assert np.all(eye_gap(symmetric, left, right) == 0)
    assert np.all(eye_gap(asymmetric, left, right) > 0)
    rows, cols = right.slices()
    assert np.array_equal(asymmetric[0, rows, cols], closed_eye(right.size))
    outside = np.ones((96, 96), bool)
    outside[rows, cols] = False
    assert np.array_equal(asymmetric[:, outside], symmetric[:, outside])


def test_report_on_tiny_weights(tiny_part_weights, prepared_data, tmp_path, monkeypatch):
    import evaluation.evaluate_parts as module

    # The tiny banks are random rows, not the prepared data's sketches: give the report
    # as many training sketches as the banks hold.
    real_load = module.load_split

    def load_as_many(data, split):
        images, sketches = real_load(data, split)
        rows = np.resize(np.arange(len(sketches)), 40)
        return np.asarray(images)[rows], np.asarray(sketches)[rows]

    monkeypatch.setattr(module, "load_split", load_as_many)
    out = tmp_path / "eval"
    assert main(["--weights", tiny_part_weights, "--data", prepared_data, "--out", str(out),
                 "--limit", "6", "--k", "3", "--batch-size", "4"]) == 0
    report = json.loads((out / "parts_eval.json").read_text())
    assert report["items"] == 6
    for name, row in report["locality"].items():
        # Only the part's window changes in the projected sketch; the face may spread it,
        # but a share is a share.
        assert 0.0 <= row["share_inside_pooled"] <= 1.0, name
    assert set(report["independence"]) == {"parts r=1", "method r=1", "method r=0", "input"}
    assert report["independence"]["input"]["sketch_kept"] > 0
    for row in report["neighbours"].values():
        assert 0.0 <= row["part_bank"] <= 1.0
    assert (out / "parts_samples.png").is_file()


def test_own_drawings_grid_has_a_row_per_example(tiny_part_weights):
    from evaluation.evaluate_parts import own_drawings_grid
    from s2a import Sketch2Anime

    pipe = Sketch2Anime.from_pretrained(tiny_part_weights)
    grid = own_drawings_grid(pipe, 3)
    assert grid.size == (2 * 5 * pipe.resolution, 2 * 4 * pipe.resolution)  # 2 faces x 2 eyes


def test_drawn_face_puts_its_parts_in_their_windows():
    from evaluation.evaluate_parts import drawn_face

    windows = scaled_windows(96, 8)
    face = drawn_face(96, windows)
    for name, window in windows.items():
        rows, cols = window.slices()
        assert (face[rows, cols] < 128).any(), name  # ink in every window
    left, right = windows["left_eye"], windows["right_eye"]
    assert eye_gap(face[None], left, right)[0] == 0  # both eyes open, mirrored


def test_banks_of_other_data_fail_clearly(tiny_part_weights, prepared_data, tmp_path, capsys):
    assert main(["--weights", tiny_part_weights, "--data", prepared_data,
                 "--out", str(tmp_path / "y"), "--limit", "4"]) == 2
    assert "not the data they were built from" in capsys.readouterr().err


def test_weights_without_parts_fail_clearly(tiny_weights, prepared_data, tmp_path, capsys):
    assert main(["--weights", tiny_weights, "--data", prepared_data,
                 "--out", str(tmp_path / "x"), "--limit", "4"]) == 2
    assert "no per-part model" in capsys.readouterr().err


def test_part_windows_reports_coverage(prepared_data, capsys):
    from training.part_windows import main as windows_main

    assert windows_main(["--data", prepared_data, "--sample", "10"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["sketches"] == 10
    assert set(report["parts"]) == {"left_eye", "right_eye", "nose", "mouth"}
    for row in report["parts"].values():
        assert 0.0 <= row["coverage"] <= 1.0
