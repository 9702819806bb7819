"""Stroke normalisation in s2a.sketch: a canvas drawing brought to the training line style
(1 px skeleton, no specks or spurs) and the training framing (the face fills the crop)."""

import cv2
import numpy as np
import pytest

from s2a.sketch import (
    FRAME_EXTENT,
    STROKE_STEPS,
    normalize_sketch,
    prune_spurs,
    thin,
)
from tests.helpers import small_face

LINES = ("binarise", "thin", "specks", "spurs")


def ring(size: int = 96, radius: int = 30, pen: int = 6, centre=None) -> np.ndarray:
    """A circle drawn with a `pen` px brush, dark on white, (size, size) uint8."""
    canvas = np.full((size, size), 255, np.uint8)
    centre = centre or (size // 2, size // 2)
    cv2.circle(canvas, centre, radius, 0, pen)
    return canvas


def extent(ink: np.ndarray) -> tuple[float, float, float]:
    """(side, centre y, centre x) of the 2-98 % ink extent of a bool mask."""
    ys, xs = np.nonzero(ink)
    (y0, y1), (x0, x1) = np.percentile(ys, (2, 98)), np.percentile(xs, (2, 98))
    return max(y1 - y0, x1 - x0), (y0 + y1) / 2, (x0 + x1) / 2


def test_thick_circle_becomes_a_thin_ring():
    out = normalize_sketch(ring(pen=6), 96, LINES)
    ink = out < 0.5
    assert set(np.unique(out)) <= {0.0, 1.0}
    ys, xs = np.nonzero(ink)
    radius = np.hypot(ys - 48, xs - 48)
    assert np.abs(radius - 30).max() <= 2.0  # on the circle's centre line
    # One pixel wide: about the circumference, not 6 times it; and still one closed ring.
    assert 0.8 * 2 * np.pi * 30 < ink.sum() < 1.3 * 2 * np.pi * 30
    count, _ = cv2.connectedComponents(ink.astype(np.uint8), connectivity=8)
    assert count == 2
    # Redrawn at 2 px it is about twice as heavy.
    two = normalize_sketch(ring(pen=6), 96, LINES, width=2) < 0.5
    assert 1.6 * ink.sum() < two.sum() < 2.6 * ink.sum()


def test_thinning_a_canvas_drawing_gives_one_pixel_lines():
    # A 12 px brush on a 512 px canvas arrives about 3 px wide at 96 px.
    plain = normalize_sketch(ring(512, 160, 12), 96, ()) < 0.5
    thinned = normalize_sketch(ring(512, 160, 12), 96, LINES) < 0.5
    assert plain.sum() > 2.5 * thinned.sum()
    # No 2x2 block of ink is left in a skeleton of a smooth curve... almost: staircase
    # corners may keep a few.
    blocks = thinned[:-1, :-1] & thinned[1:, :-1] & thinned[:-1, 1:] & thinned[1:, 1:]
    assert blocks.sum() <= 2


def test_small_face_in_the_middle_of_a_pad_fills_the_frame():
    drawing = small_face(512, 60)  # the face spans about a quarter of the pad
    before = normalize_sketch(drawing, 96, ()) < 0.5
    after = normalize_sketch(drawing, 96, ("frame",)) < 0.5
    side_before, _, _ = extent(before)
    side, cy, cx = extent(after)
    assert side_before < 30
    assert abs(side - FRAME_EXTENT * 96) <= 4
    assert abs(cy - 47.5) <= 3 and abs(cx - 47.5) <= 3


def test_an_off_centre_face_is_moved_to_the_centre():
    drawing = small_face(512, 90, centre=(130, 360))
    side, cy, cx = extent(normalize_sketch(drawing, 96, ("frame",)) < 0.5)
    assert abs(side - FRAME_EXTENT * 96) <= 4
    assert abs(cy - 47.5) <= 3 and abs(cx - 47.5) <= 3


def test_a_drawing_that_fills_the_frame_is_left_in_place():
    drawing = ring(96, 44, 1)  # extent 88 px: as training faces
    np.testing.assert_array_equal(normalize_sketch(drawing, 96, ("frame",)),
                                  normalize_sketch(drawing, 96, ()))


def test_frame_zoom_is_capped():
    tiny = np.full((512, 512), 255, np.uint8)
    cv2.circle(tiny, (256, 256), 6, 0, 2)  # a 12 px doodle on a 512 px pad
    side, _, _ = extent(normalize_sketch(tiny, 96, ("frame",)) < 0.5)
    assert side < 0.5 * FRAME_EXTENT * 96  # at most MAX_ZOOM (4x) bigger


def test_specks_are_removed_and_strokes_kept():
    drawing = ring(96, 30, 1)
    for x, y in ((5, 5), (90, 8), (48, 48), (10, 85)):
        cv2.circle(drawing, (x, y), 1, 0, -1)  # 3x3 dots: under the training minimum
    out = normalize_sketch(drawing, 96, LINES) < 0.5
    for x, y in ((5, 5), (90, 8), (48, 48), (10, 85)):
        assert not out[y - 2 : y + 3, x - 2 : x + 3].any()
    assert out.sum() > 0.8 * 2 * np.pi * 30
    # Without the step the dots stay (the test can tell the difference).
    kept = normalize_sketch(drawing, 96, ("binarise", "thin")) < 0.5
    assert kept[3:8, 3:8].any()


def test_short_spurs_are_pruned_and_long_branches_kept():
    skeleton = np.zeros((40, 40), bool)
    skeleton[20, 5:35] = True  # a line
    skeleton[17:20, 15] = True  # a 3 px spur on it
    skeleton[5:20, 28] = True  # a 15 px branch
    pruned = prune_spurs(skeleton, 4)
    assert not pruned[17:19, 15].any()
    assert pruned[20, 5:35].all() and pruned[5:20, 28].all()
    # A lone short line has no junction: it is not a spur (specks are another step).
    lone = np.zeros((10, 10), bool)
    lone[5, 2:5] = True
    np.testing.assert_array_equal(prune_spurs(lone, 4), lone)


def test_thin_keeps_a_skeleton_inside_the_shape():
    block = np.zeros((30, 60), bool)
    block[10:20, 5:55] = True
    skeleton = thin(block)
    assert (skeleton & ~block).sum() == 0
    assert 30 < skeleton.sum() < 60  # about one row along the bar
    assert skeleton[13:17].sum() == skeleton.sum()
    np.testing.assert_array_equal(thin(skeleton), skeleton)  # a skeleton stays put


@pytest.mark.parametrize(
    "blank",
    [
        np.full((512, 512), 255, np.uint8),  # white pad
        np.zeros((512, 512), np.uint8),  # all black (light-on-dark, nothing drawn)
        np.zeros((300, 300, 4), np.uint8),  # fully transparent
        np.full((1, 1), 0, np.uint8),  # 1x1
    ],
)
def test_blank_pads_still_say_empty(blank):
    with pytest.raises(ValueError, match="empty"):
        normalize_sketch(blank, 96, STROKE_STEPS)


@pytest.mark.parametrize(
    "drawing",
    [
        np.pad(np.zeros((2, 2), np.uint8), 1, constant_values=255),  # a 4x4 pad with a dot
        ring(16, 5, 1),  # tiny
        ring(2000, 700, 9),  # huge
        np.array([[0, 255], [255, 0]], np.uint8),  # 2x2 checker
    ],
)
def test_odd_sizes_give_a_sketch(drawing):
    out = normalize_sketch(drawing, 96, STROKE_STEPS)
    assert out.shape == (96, 96) and out.dtype == np.float32
    assert (out < 0.5).sum() >= 3


def test_a_drawing_of_only_specks_is_not_wiped_out():
    dots = np.full((96, 96), 255, np.uint8)
    for x in (20, 40, 60, 80):
        cv2.circle(dots, (x, 48), 1, 0, -1)
    out = normalize_sketch(dots, 96, STROKE_STEPS)
    assert (out < 0.5).sum() >= 4


def test_normalisation_is_deterministic():
    drawing = small_face(384, 70, centre=(150, 200))
    first = normalize_sketch(drawing, 96, STROKE_STEPS)
    np.testing.assert_array_equal(first, normalize_sketch(drawing.copy(), 96, STROKE_STEPS))


def test_bad_steps_and_widths_say_what_is_allowed():
    with pytest.raises(ValueError, match="Unknown steps"):
        normalize_sketch(ring(), 96, ("blur",))
    with pytest.raises(ValueError, match="width"):
        normalize_sketch(ring(), 96, LINES, width=0)
