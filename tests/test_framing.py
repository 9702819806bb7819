"""Stroke framing at inference (issue 13): the pipeline zooms a drawing made small on a big
pad to where training faces sit, and crops the hint layer with the same box."""

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from s2a import Sketch2Anime
from s2a.hint_report import check_hints
from s2a.hints import frame_like_sketch
from s2a.sketch import (
    DEFAULT_STEPS,
    _percentiles,
    crop_to_frame,
    normalize_sketch,
    normalize_sketch_and_frame,
)
from tests.helpers import TINY_RESOLUTION, small_face

R = TINY_RESOLUTION
DOT = (255, 0, 0, 255)


@pytest.fixture(scope="module")
def pipe(tiny_weights) -> Sketch2Anime:
    return Sketch2Anime.from_pretrained(tiny_weights)


def ink_side(sketch: np.ndarray) -> int:
    """The larger side of the bounding box of the ink (< 0.5) of a normalised sketch."""
    ys, xs = np.nonzero(sketch < 0.5)
    return int(max(ys.max() - ys.min(), xs.max() - xs.min())) + 1


def centre_of(mask: np.ndarray) -> np.ndarray:
    """(y, x) centre of mass of a bool mask."""
    return np.argwhere(mask).mean(axis=0)


def ring_with_dot(sketch_size, hint_size, centre, radius: int):
    """A ring drawn at `centre` (in sketch pixels) on a white pad of `sketch_size`, and a
    red hint dot at the same place on a hint layer of `hint_size` (stretched over it)."""
    width, height = sketch_size
    canvas = np.full((height, width), 255, np.uint8)
    cv2.circle(canvas, centre, radius, 0, 3)
    hint_w, hint_h = hint_size
    layer = np.zeros((hint_h, hint_w, 4), np.uint8)
    dot_centre = (round(centre[0] * hint_w / width), round(centre[1] * hint_h / height))
    cv2.circle(layer, dot_centre, max(2, radius * hint_w // (3 * width)), DOT, -1)
    return Image.fromarray(canvas, "L"), Image.fromarray(layer, "RGBA")


def test_frame_is_the_default_step():
    assert DEFAULT_STEPS == ("frame",)


def test_a_small_face_on_a_big_pad_is_zoomed():
    drawing = small_face((512, 512), 50)  # about a fifth of the pad
    plain = normalize_sketch(drawing, 96, steps=())
    framed = normalize_sketch(drawing, 96)
    assert ink_side(plain) < 25
    assert ink_side(framed) > 2.5 * ink_side(plain)  # zoomed (capped at 4x)


def test_a_drawing_that_fills_the_frame_is_unchanged():
    drawing = np.full((256, 256), 255, np.uint8)
    cv2.circle(drawing, (128, 128), 118, 0, 3)  # extent 0.93 of the side: as training faces
    framed, box = normalize_sketch_and_frame(drawing, 96)
    assert box is None
    np.testing.assert_array_equal(framed, normalize_sketch(drawing, 96, steps=()))


def test_the_frame_box_is_relative_to_the_padded_square():
    drawing = small_face((600, 300), 40, centre=(300, 150))  # wide: padded to 600 x 600
    _, box = normalize_sketch_and_frame(drawing, 96)
    top, left, side = box
    # The face spans ~80 of 600 px around the square's centre: a crop ~1/4 of it, centred.
    assert 0.2 < side < 0.3
    assert top + side / 2 == pytest.approx(0.5, abs=0.02)
    assert left + side / 2 == pytest.approx(0.5, abs=0.02)


def test_crop_to_frame_scales_with_the_array_and_pads_with_zeros():
    layer = np.arange(8 * 8 * 4, dtype=np.uint8).reshape(8, 8, 4) + 1  # no zeros inside
    big = np.repeat(np.repeat(layer, 4, axis=0), 4, axis=1)  # the same layer at 32 x 32
    box = (-0.25, 0.5, 0.75)  # starts above the canvas, ends past its right edge
    small_crop, big_crop = crop_to_frame(layer, box), crop_to_frame(big, box)
    assert small_crop.shape == (6, 6, 4) and big_crop.shape == (24, 24, 4)
    np.testing.assert_array_equal(big_crop[::4, ::4], small_crop)
    assert (small_crop[:2] == 0).all() and (small_crop[:, 4:] == 0).all()  # transparent
    np.testing.assert_array_equal(small_crop[2:, :4], layer[:4, 4:])


def test_an_unframed_sketch_leaves_the_hint_layer_alone():
    layer = np.zeros((10, 20, 4), np.uint8)
    assert frame_like_sketch(layer, None) is layer


@pytest.mark.parametrize(
    ("sketch_size", "hint_size", "centre"),
    [
        ((512, 512), (512, 512), (256, 256)),  # square, same size
        ((512, 512), (128, 128), (200, 300)),  # a smaller hint layer, off-centre drawing
        ((640, 400), (320, 200), (300, 220)),  # wide canvas, half-size hints
        ((300, 500), (600, 1000), (160, 240)),  # tall canvas, double-size hints
    ],
)
def test_a_hint_dot_stays_on_the_drawn_ring(pipe, sketch_size, hint_size, centre):
    radius = max(sketch_size) // 10
    sketch, hints = ring_with_dot(sketch_size, hint_size, centre, radius)
    sketch_input, frame = pipe.framed_sketch_tensor(sketch)  # (1, 1, R, R)
    assert frame is not None  # the ring is small: it is zoomed
    hint_input = pipe.hints_tensor(hints, sketch.size, frame)  # (4, R, R)
    ring = sketch_input[0, 0].numpy() < 0.5  # (R, R)
    dot = hint_input[3].numpy() > 0  # (R, R)
    assert ink_side(sketch_input[0, 0].numpy()) > R // 2  # zoomed to fill the frame
    assert np.abs(centre_of(ring) - centre_of(dot)).max() <= 1.5
    torch.testing.assert_close(hint_input[0][hint_input[3] > 0],
                               torch.ones(int(dot.sum())))  # still red


def test_without_framing_the_same_dot_would_miss_the_ring(pipe):
    sketch, hints = ring_with_dot((512, 512), (512, 512), (120, 400), 50)
    sketch_input, _ = pipe.framed_sketch_tensor(sketch)
    unframed_dot = pipe.hints_tensor(hints, sketch.size)[3].numpy() > 0
    ring = sketch_input[0, 0].numpy() < 0.5
    assert np.abs(centre_of(ring) - centre_of(unframed_dot)).max() > 5


def test_an_empty_hint_layer_stays_empty_after_framing(pipe):
    sketch = Image.fromarray(small_face((512, 512), 50), "L")
    _, frame = pipe.framed_sketch_tensor(sketch)
    assert frame is not None
    empty = Image.new("RGBA", (256, 256), (0, 0, 0, 0))
    assert pipe.hints_tensor(empty, sketch.size, frame).abs().sum() == 0
    assert pipe.hints_tensor(None, sketch.size, frame).abs().sum() == 0


def test_the_call_frames_sketch_and_hints_and_returns_what_the_model_received(pipe):
    sketch, hints = ring_with_dot((512, 384), (256, 192), (300, 200), 40)
    out = pipe(sketch, hints=hints, k=3, upscale=False)
    sketch_input, frame = pipe.framed_sketch_tensor(sketch)
    received = out.normalized_sketch
    assert received.mode == "L" and received.size == (R, R)
    assert out.frame == frame is not None
    expected = (sketch_input[0, 0].clamp(0, 1) * 255).round().byte().numpy()
    np.testing.assert_array_equal(np.asarray(received), expected)
    # The same image as feeding the framed inputs to the batched core by hand.
    hint_input = pipe.hints_tensor(hints, sketch.size, frame)[None]
    images, _, neighbors = pipe.generate(sketch_input, hint_input, 1.0, 3, 0)
    face = np.asarray(out.image, dtype=np.float32) / 255  # (R, R, 3)
    np.testing.assert_allclose(face, images[0].permute(1, 2, 0).numpy(), atol=1 / 255 + 1e-6)
    assert out.neighbors == neighbors[0]


def test_the_shadow_input_stays_where_it_was_drawn(pipe):
    drawing = small_face((512, 512), 50)
    unframed = pipe.sketch_tensor(Image.fromarray(drawing, "L"))[0, 0].numpy()
    np.testing.assert_array_equal(unframed, normalize_sketch(drawing, R, steps=()))


def test_the_hint_report_checks_colours_where_the_framed_face_has_them():
    # The face is drawn in the framed (zoomed) geometry: red in its top-left corner. A red
    # hint near the framed region's top-left corner lands there only if the report crops
    # the hint layer with the same frame; unframed it falls on the face's white middle.
    face = np.full((96, 96, 3), 255, np.uint8)
    face[:24, :24] = (220, 20, 20)
    hints = np.zeros((100, 100, 4), np.uint8)
    hints[27:37, 27:37] = (220, 20, 20, 255)
    frame = (0.25, 0.25, 0.5)  # (top, left, side) of the padded square
    (framed,) = check_hints(Image.fromarray(face), Image.fromarray(hints, "RGBA"), (100, 100),
                            frame=frame)
    (unframed,) = check_hints(Image.fromarray(face), Image.fromarray(hints, "RGBA"), (100, 100))
    assert framed.delta_e < 3 < unframed.delta_e


def test_frame_percentiles_from_histograms_are_numpys():
    rng = np.random.default_rng(3)
    for _ in range(50):
        mask = rng.random((64, 80)) < rng.uniform(0.001, 0.2)
        if mask.sum() < 2:
            continue
        ys, xs = np.nonzero(mask)
        for counts, coords in ((mask.sum(axis=1), ys), (mask.sum(axis=0), xs)):
            np.testing.assert_allclose(_percentiles(counts, (2.0, 50.0, 98.0)),
                                       np.percentile(coords, (2.0, 50.0, 98.0)))


def test_hints_outside_the_frame_move_to_its_nearest_edge():
    layer = np.zeros((200, 200, 4), np.uint8)
    layer[10:20, 90:110] = (200, 120, 40, 255)  # hair painted above the frame
    layer[100:110, 185:195] = (40, 90, 230, 255)  # background right of it
    layer[60:64, 60:64] = (0, 255, 0, 255)  # inside, on the top edge: stays as painted
    box = (0.3, 0.2, 0.6)  # rows and columns 60-180 and 40-160
    crop = frame_like_sketch(layer, box)
    assert crop.shape == (120, 120, 4)
    band = max(1, round(2 * 120 / 96))
    top = crop[:band, 50:70]  # the hair's columns, 90-110 on the layer
    assert (top[..., 3] == 255).all() and (top[..., :3] == (200, 120, 40)).all()
    right = crop[40:50, -band:]  # the background's rows, 100-110 on the layer
    assert (right[..., :3] == (40, 90, 230)).all()
    assert (crop[0:4, 20:24, :3] == (0, 255, 0)).all()  # not painted over
    crop[0:4, 20:24] = 0
    assert crop[band:-band, band:-band, 3].sum() == 0  # nothing moved into the middle


def moved_by_hand(layer: np.ndarray, box) -> np.ndarray:
    """frame_like_sketch spelled out pixel by pixel: each hint outside the box, in row
    order, is clamped to the crop and written inward `depth` deep where the crop was
    unpainted; a later write wins."""
    crop = crop_to_frame(layer, box)
    rows, cols = crop.shape[:2]
    y0, x0 = round(box[0] * layer.shape[0]), round(box[1] * layer.shape[1])
    free = crop[:, :, 3] == 0
    outside = [(y, x) for y in range(layer.shape[0]) for x in range(layer.shape[1])
               if layer[y, x, 3] and not (y0 <= y < y0 + rows and x0 <= x < x0 + cols)]
    for k in range(max(1, round(2 * rows / 96))):
        for y, x in outside:
            dy = 1 if y < y0 else -1 if y >= y0 + rows else 0
            dx = 1 if x < x0 else -1 if x >= x0 + cols else 0
            ty = min(max(min(max(y - y0, 0), rows - 1) + k * dy, 0), rows - 1)
            tx = min(max(min(max(x - x0, 0), cols - 1) + k * dx, 0), cols - 1)
            if free[ty, tx]:
                crop[ty, tx] = layer[y, x]
    return crop


def test_hints_move_as_spelled_out_pixel_by_pixel():
    rng = np.random.default_rng(5)
    for _ in range(40):
        h, w = rng.integers(4, 40, 2)
        layer = np.zeros((h, w, 4), np.uint8)
        n = int(rng.integers(0, h * w))
        layer[rng.integers(0, h, n), rng.integers(0, w, n)] = rng.integers(1, 256, (n, 4))
        box = (rng.uniform(-0.3, 0.8), rng.uniform(-0.3, 0.8), rng.uniform(0.1, 1.5))
        np.testing.assert_array_equal(frame_like_sketch(layer, box), moved_by_hand(layer, box))
