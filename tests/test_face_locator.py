"""Face-aware framing: the box maths, the network, its use in the pipeline, its training."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from s2a import Sketch2Anime
from s2a.face_locator import (
    TRAINING_EYE_GAP,
    TRAINING_EYE_MIDDLE,
    TRAINING_EYE_ROW,
    FaceLocator,
    FaceLocatorConfig,
    box_to_target,
    eye_box,
    refine_frame,
    target_to_box,
)
from s2a.sketch import (
    _pad_to_square,
    _resize_ink,
    crop_to_frame,
    ink_of,
    normalize_sketch_and_frame,
)
from tests.helpers import TINY_RESOLUTION, face_sketch, small_face

R = TINY_RESOLUTION


def test_eye_box_puts_the_eyes_where_the_training_faces_have_theirs():
    top, left, side = eye_box(300.0, 200.0, 320.0)
    assert (300.0 - top) / side == pytest.approx(TRAINING_EYE_ROW)
    assert (200.0 - left) / side == pytest.approx(TRAINING_EYE_MIDDLE - TRAINING_EYE_GAP / 2)
    assert (320.0 - left) / side == pytest.approx(TRAINING_EYE_MIDDLE + TRAINING_EYE_GAP / 2)


def test_targets_and_boxes_convert_both_ways():
    box = (0.1, -0.05, 0.7)
    target = torch.tensor([box_to_target(box)])
    torch.testing.assert_close(target_to_box(target), torch.tensor([box]))
    assert box_to_target((0.0, 0.0, 1.0)) == (0.5, 0.5, 0.0)  # the whole crop: no change


def test_refine_frame_composes_and_refuses_what_it_should():
    # Half the side, in the lower middle of a frame that is itself a crop of the square.
    assert refine_frame((0.1, 0.2, 0.8), (0.4, 0.25, 0.5)) == pytest.approx((0.42, 0.4, 0.4))
    assert refine_frame(None, (0.4, 0.25, 0.5)) == pytest.approx((0.4, 0.25, 0.5))
    assert refine_frame(None, (0.005, 0.0, 0.99)) is None  # too small a change
    assert refine_frame(None, (0.3, 0.3, 0.3)) is None  # implausibly small face
    assert refine_frame(None, (0.7, 0.25, 0.5)) is None  # centre off the crop's middle


def test_locator_saves_loads_and_locates(tmp_path):
    torch.manual_seed(0)
    locator = FaceLocator(FaceLocatorConfig(resolution=R, channels=(4, 8))).eval()
    locator.save_pretrained(tmp_path)
    loaded = FaceLocator.from_pretrained(tmp_path).eval()
    sketch = torch.rand(3, 1, R, R)
    boxes = loaded.locate(sketch)
    assert boxes.shape == (3, 3) and (boxes[:, 2] > 0).all()
    torch.testing.assert_close(boxes, locator.locate(sketch))
    with pytest.raises(ValueError, match="divisible"):
        FaceLocatorConfig(resolution=R + 2, channels=(4, 8))


class FixedLocator(FaceLocator):
    """Says the same box for every drawing."""

    def __init__(self, box):
        super().__init__(FaceLocatorConfig(resolution=R, channels=(4, 8)))
        self.box = box

    def forward(self, sketch):
        return torch.tensor([box_to_target(self.box)]).expand(len(sketch), 3)


def test_the_pipeline_crops_where_the_locator_says(whole_pipe):
    drawing = Image.fromarray(small_face(512, radius=120))
    extent, frame = normalize_sketch_and_frame(drawing, R)
    pipe = Sketch2Anime(whole_pipe.autoencoder, whole_pipe.generator, whole_pipe.bank,
                        face_locator=FixedLocator((0.3, 0.2, 0.6)))
    sketch, box = pipe.framed_sketch_tensor(drawing)
    expected = refine_frame(frame, (0.3, 0.2, 0.6))
    assert box == pytest.approx(expected)
    in_box = 1.0 - _resize_ink(crop_to_frame(_pad_to_square(ink_of(drawing)), expected), R)
    np.testing.assert_array_equal(sketch[0, 0].numpy(), in_box)
    # The hint layer is cropped with the same box: a dot at the box's centre lands in the
    # middle of the model's hint input.
    hints = np.zeros((512, 512, 4), np.uint8)
    centre = [int(round((expected[i] + expected[2] / 2) * 512)) for i in (0, 1)]
    hints[centre[0] - 12:centre[0] + 12, centre[1] - 12:centre[1] + 12] = (255, 0, 0, 255)
    out = pipe.hints_tensor(Image.fromarray(hints, "RGBA"), drawing.size, box)
    mask = out[3].numpy()
    rows, cols = np.nonzero(mask)
    assert abs(rows.mean() - R / 2) < 2 and abs(cols.mean() - R / 2) < 2
    # A locator that keeps the frame changes nothing; so does no locator.
    keep = Sketch2Anime(whole_pipe.autoencoder, whole_pipe.generator, whole_pipe.bank,
                        face_locator=FixedLocator((0.0, 0.0, 1.0)))
    for other in (keep, whole_pipe):
        same, same_box = other.framed_sketch_tensor(drawing)
        np.testing.assert_array_equal(same[0, 0].numpy(), extent)
        assert same_box == frame


def test_a_call_with_a_locator_draws_a_face(whole_pipe):
    pipe = Sketch2Anime(whole_pipe.autoencoder, whole_pipe.generator, whole_pipe.bank,
                        face_locator=FixedLocator((0.25, 0.2, 0.6)))
    out = pipe(face_sketch(), refine=0.5, upscale=False)
    assert out.image.size == (R, R)
    assert out.frame is not None and out.frame[2] < 1.0


def test_training_writes_a_locator_and_its_metrics(prepared_data, tmp_path):
    from training import train_face_locator

    out = tmp_path / "run"
    assert train_face_locator.main(["--data", prepared_data, "--out", str(out), "--examples",
                                    "60", "--val-examples", "20", "--minutes", "0.02",
                                    "--batch-size", "8", "--workers", "1"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] >= 1 and metrics["examples_seen"] == 8 * metrics["steps"]
    assert math.isfinite(metrics["val"]["centre_px_median"])
    locator = FaceLocator.from_pretrained(out / "face_locator")
    assert locator.config.resolution == R


def test_drawn_heads_have_their_eyes_in_the_box():
    from training.train_face_locator import drawn_head

    rng = np.random.default_rng(0)
    for _ in range(5):
        drawing, (top, left, side) = drawn_head(rng)
        assert drawing.shape == (512, 512) and (drawing < 128).mean() > 0.01
        assert 0.15 < side < 1.2  # a face-sized box, somewhere near the pad
        assert -0.5 < top < 1.0 and -0.5 < left < 1.0


def test_the_evaluation_runs(prepared_data, tiny_weights, tmp_path):
    from evaluation import evaluate_face_locator

    torch.manual_seed(0)
    folder = tmp_path / "locator"
    FaceLocator(FaceLocatorConfig(resolution=R, channels=(4, 8))).save_pretrained(folder)
    out = tmp_path / "eval"
    assert evaluate_face_locator.main(["--weights", tiny_weights, "--locator", str(folder),
                                       "--data", prepared_data, "--out", str(out),
                                       "--items", "6"]) == 0
    report = json.loads((out / "face_locator_eval.json").read_text())
    assert report["plain_faces"]["items"] == 6 and report["example_drawings"]["items"] == 4
    assert Path(out / "face_locator_samples.png").is_file()
