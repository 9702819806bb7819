"""The README's sample grid: drawn from the project's own example sketches."""

from PIL import Image

from evaluation.make_samples import TILE, main
from s2a.examples import example_sketches


def test_sample_grid_has_a_row_per_example_and_hint_setting(tiny_weights, tmp_path):
    out = tmp_path / "samples.png"
    assert main(["--weights", tiny_weights, "--out", str(out), "--k", "5"]) == 0
    with Image.open(out) as grid:
        # input, refine 1, 0.5 and 0, SimpleGAN, projected sketch;
        # with and without hints.
        assert grid.width == 6 * TILE
        assert grid.height == 2 * len(example_sketches()) * TILE + 24


def test_missing_weights_is_a_clear_error(tmp_path, capsys):
    assert main(["--weights", str(tmp_path / "nope"), "--out", str(tmp_path / "x.png")]) == 2
    assert "error" in capsys.readouterr().err


def test_before_adds_the_other_version_at_both_refine_settings(tiny_weights, tmp_path):
    out = tmp_path / "samples.png"
    assert main(["--weights", tiny_weights, "--before", tiny_weights, "--out", str(out),
                 "--k", "5"]) == 0
    with Image.open(out) as grid:
        assert grid.width == 8 * TILE  # the 6 columns + before at refine 1 and 0
        # Same weights on both sides: the before column equals refine=1.
        tiles = [grid.crop((c * TILE, 24, (c + 1) * TILE, 24 + TILE)) for c in (1, 3)]
        assert tiles[0].tobytes() == tiles[1].tobytes()


def test_a_per_part_model_adds_the_whole_face_columns(tiny_part_weights, tmp_path):
    out = tmp_path / "parts.png"
    assert main(["--weights", tiny_part_weights, "--out", str(out)]) == 0
    with Image.open(out) as grid:
        assert grid.width == 8 * TILE  # the 6 columns + per part at refine 1 + projected
