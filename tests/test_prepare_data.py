"""training.prepare_data: folder and zip input, filters, split, reuse, contact sheet."""

import csv
import json
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

from tests.helpers import TINY_RESOLUTION, cartoon_face
from training.prepare_data import (
    PrepareConfig,
    center_crop_resize,
    colourfulness,
    is_validation,
    main,
    prepare,
)


def test_prepared_folder_has_arrays_index_and_sheets(prepared_data):
    folder = Path(prepared_data)
    meta = json.loads((folder / "meta.json").read_text())
    counts = meta["counts"]
    # 48 faces + 1 corrupt file + 1 flat grey image.
    assert counts["skipped_unreadable"] == 1
    assert counts["filtered_monochrome"] == 1
    assert counts["train"] + counts["val"] == 48
    train = np.load(folder / "train_images.npy")
    sketches = np.load(folder / "train_sketches.npy")
    assert train.dtype == np.uint8 and train.shape[1:] == (TINY_RESOLUTION, TINY_RESOLUTION, 3)
    assert sketches.shape == train.shape[:3] and set(np.unique(sketches)) <= {0, 255}
    rows = list(csv.DictReader(open(folder / "index.csv")))
    assert len(rows) == 50
    assert {r["split"] for r in rows} == {"train", "val", "skipped", "filtered"}
    assert (folder / "contact_sheet.png").is_file() and (folder / "filtered_sheet.png").is_file()
    sheet = Image.open(folder / "contact_sheet.png")
    assert sheet.width == 3 * TINY_RESOLUTION * 2  # image | sketch | hints, upscaled 2x


def test_index_rows_point_at_the_right_images(prepared_data, face_folder):
    folder = Path(prepared_data)
    images = np.load(folder / "val_images.npy")
    for row in csv.DictReader(open(folder / "index.csv")):
        if row["split"] == "val":
            source = Image.open(Path(face_folder) / row["file"]).convert("RGB")
            expected = np.asarray(center_crop_resize(source, TINY_RESOLUTION))
            np.testing.assert_array_equal(images[int(row["row_or_reason"])], expected)


def test_zip_input_matches_folder_input(face_folder, prepared_data, tmp_path):
    archive = tmp_path / "faces.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as handle:
        for path in sorted(Path(face_folder).iterdir()):
            handle.write(path, f"faces/{path.name}")
    out = tmp_path / "from_zip"
    assert main(["--images", str(archive), "--out", str(out), "--resolution",
                 str(TINY_RESOLUTION), "--val-percent", "25"]) == 0
    for name in ("train_images.npy", "val_sketches.npy"):
        np.testing.assert_array_equal(np.load(out / name), np.load(Path(prepared_data) / name))


def test_rerun_with_same_arguments_reuses_output(face_folder, tmp_path, capsys):
    config = PrepareConfig(images=face_folder, out=str(tmp_path / "p"),
                           resolution=TINY_RESOLUTION, limit=10)
    prepare(config)
    stamp = (tmp_path / "p" / "train_images.npy").stat().st_mtime_ns
    capsys.readouterr()
    prepare(config)
    assert "Reusing" in capsys.readouterr().out
    assert (tmp_path / "p" / "train_images.npy").stat().st_mtime_ns == stamp
    # Different arguments do redo the work.
    prepare(PrepareConfig(images=face_folder, out=str(tmp_path / "p"),
                          resolution=TINY_RESOLUTION, limit=12))
    assert json.loads((tmp_path / "p" / "meta.json").read_text())["config"]["limit"] == 12


def test_split_is_deterministic_and_about_the_asked_share():
    names = [f"{i}.jpg" for i in range(20000)]
    share = np.mean([is_validation(n, 5.0) for n in names])
    assert 0.04 < share < 0.06
    assert [is_validation(n, 5.0) for n in names[:100]] == [
        is_validation(n, 5.0) for n in names[:100]]


def test_center_crop_resize_of_a_wide_image():
    wide = np.zeros((50, 100, 3), np.uint8)
    wide[:, 25:75] = 255  # the centre square is white, the sides black
    out = np.asarray(center_crop_resize(Image.fromarray(wide), 20))
    assert out.shape == (20, 20, 3) and out.min() > 200


def test_colourfulness_separates_grey_from_colour():
    grey = np.repeat(np.random.default_rng(0).integers(0, 255, (32, 32, 1), np.uint8), 3, 2)
    assert colourfulness(grey) < 1.0
    assert colourfulness(cartoon_face(np.random.default_rng(1))) > 20.0


def test_missing_input_is_a_clear_error(tmp_path, capsys):
    assert main(["--images", str(tmp_path / "nothing"), "--out", str(tmp_path / "o")]) == 2
    assert "does not exist" in capsys.readouterr().err
