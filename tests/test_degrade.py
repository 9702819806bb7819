"""Tests for training.degrade: simulated amateur redrawings of 1-px training sketches."""

import cv2
import numpy as np
import pytest
from PIL import Image

from training.degrade import degrade_batch, degrade_sketch

SIZE = 96
# Everything but the wobble switched off: isolates one effect at a time.
STILL = dict(drop_range=(0.0, 0.0), shift_frac=0.0, scale_range=(1.0, 1.0))


def _blank() -> np.ndarray:
    return np.full((SIZE, SIZE), 255, dtype=np.uint8)


def _face() -> np.ndarray:
    """A 1-px face: round outline, two eye ellipses, a mouth line (4 strokes)."""
    img = _blank()
    cv2.circle(img, (48, 48), 36, 0, 1)
    cv2.ellipse(img, (34, 40), (7, 4), 0, 0, 360, 0, 1)
    cv2.ellipse(img, (62, 40), (7, 4), 0, 0, 360, 0, 1)
    cv2.line(img, (38, 66), (58, 66), 0, 1)
    return img


def _ten_lines() -> np.ndarray:
    """Ten separate short 1-px lines, 2 columns x 5 rows, 12 px apart vertically."""
    img = _blank()
    for y in range(24, 73, 12):
        cv2.line(img, (16, y), (40, y), 0, 1)
        cv2.line(img, (56, y), (80, y), 0, 1)
    return img


def _n_strokes(img: np.ndarray) -> int:
    """Number of 8-connected dark components."""
    n, _ = cv2.connectedComponents((img < 128).astype(np.uint8), connectivity=8)
    return n - 1


def _mean_distance_to(reference: np.ndarray, img: np.ndarray) -> float:
    """Mean distance from each stroke pixel of `img` to the nearest stroke of `reference`."""
    # distanceTransform measures the distance to the nearest zero pixel: the strokes.
    dist = cv2.distanceTransform((reference >= 128).astype(np.uint8), cv2.DIST_L2, 5)
    return float(dist[img < 128].mean())


def _run(img, seed: int = 0, **kwargs) -> np.ndarray:
    return np.asarray(degrade_sketch(img, np.random.default_rng(seed), **kwargs))


def test_output_is_l_image_of_same_size():
    out = degrade_sketch(Image.fromarray(_face()), np.random.default_rng(0))
    assert isinstance(out, Image.Image)
    assert out.mode == "L"
    assert out.size == (SIZE, SIZE)


def test_non_square_size_is_kept():
    img = np.full((64, 80), 255, dtype=np.uint8)
    cv2.circle(img, (40, 32), 20, 0, 1)
    out = degrade_sketch(img, np.random.default_rng(0))
    assert out.size == (80, 64)


def test_deterministic_for_same_seed_and_varies_with_seed():
    face = _face()
    assert np.array_equal(_run(face, seed=3), _run(face, seed=3))
    outs = [_run(face, seed=s) for s in range(4)]
    assert all(not np.array_equal(outs[0], o) for o in outs[1:])


def test_drops_strokes_from_many_separate_lines():
    lines = _ten_lines()
    assert _n_strokes(lines) == 10
    for seed in range(20):
        out = _run(lines, seed=seed)
        # 30-60 % of 10 dropped leaves 4-7; one less allowed for two lines merging.
        assert 3 <= _n_strokes(out) <= 7, seed
        assert (out < 128).sum() != (lines < 128).sum()


def test_keeps_at_least_one_stroke():
    out = _run(_face(), drop_range=(1.0, 1.0))
    assert (out < 128).any()


def test_edges_move_away_from_the_input():
    face = _face()
    for seed in range(5):
        out = _run(face, seed=seed)
        assert not np.array_equal(out, face)
        assert (out < 128).sum() != (face < 128).sum()
        assert _mean_distance_to(face, out) > 0.5, seed


def test_wobble_alone_moves_edges():
    face = _face()
    wobbly = _run(face, wobble_px=1.5, thickness_range=(1, 1), **STILL)
    assert _mean_distance_to(face, wobbly) > 0.5
    # ...but stays near the drawing it came from (a redrawing, not noise).
    assert _mean_distance_to(face, wobbly) < 3.0


def test_without_any_degradation_the_sketch_is_retraced():
    # Guards the distance metric above and the stroke tracing: no wobble, no drop, no
    # move must land back on the input's strokes, none missing.
    face = _face()
    out = _run(face, wobble_px=0.0, thickness_range=(1, 1), **STILL)
    assert _mean_distance_to(face, out) < 0.5
    assert _mean_distance_to(out, face) < 0.5


def test_open_stroke_is_redrawn_once_not_there_and_back():
    # The outline of a 1-px open curve runs out and back; drawing both passes with
    # independent wobble would double the line (about twice the dark pixels).
    img = _blank()
    cv2.ellipse(img, (48, 48), (30, 20), 0, 200, 340, 0, 1)
    for seed in range(5):
        out = _run(img, seed=seed, thickness_range=(1, 1), **STILL)
        assert (out < 128).sum() < 1.4 * (img < 128).sum(), seed


def test_drawing_is_shifted_and_rescaled():
    face = _face()
    ys, xs = np.nonzero(face < 128)
    moves = []
    for seed in range(5):
        out = _run(face, seed=seed, wobble_px=0.0, drop_range=(0.0, 0.0), scale_range=(1, 1))
        oy, ox = np.nonzero(out < 128)
        moves.append(np.hypot(oy.mean() - ys.mean(), ox.mean() - xs.mean()))
    assert max(moves) <= 0.08 * SIZE * np.sqrt(2) + 1
    assert np.mean(moves) > 1.0
    out = _run(face, wobble_px=0.0, drop_range=(0.0, 0.0), shift_frac=0.0, scale_range=(0.9, 0.9))
    oy, ox = np.nonzero(out < 128)
    assert oy.std() == pytest.approx(0.9 * ys.std(), rel=0.05)
    assert ox.std() == pytest.approx(0.9 * xs.std(), rel=0.05)


def test_pen_width_is_in_pixels():
    img = _blank()
    cv2.line(img, (10, 48), (85, 48), 0, 1)
    for width in (1, 2, 3):
        out = _run(img, wobble_px=0.0, thickness_range=(width, width), **STILL)
        rows = np.flatnonzero((out < 128).any(axis=1))
        assert len(rows) == width


def test_empty_sketch_gives_white_image():
    out = degrade_sketch(_blank(), np.random.default_rng(0))
    assert out.mode == "L"
    assert out.size == (SIZE, SIZE)
    assert (np.asarray(out) == 255).all()


def test_single_pixel_sketch():
    img = _blank()
    img[48, 48] = 0
    out = _run(img)
    assert 1 <= (out < 128).sum() <= 16


def test_one_by_one_image():
    out = degrade_sketch(np.zeros((1, 1), dtype=np.uint8), np.random.default_rng(0))
    assert out.mode == "L"
    assert out.size == (1, 1)


def test_array_and_pil_inputs_agree():
    face = _face()
    from_array = _run(face, seed=7)
    from_pil = _run(Image.fromarray(face).convert("RGB"), seed=7)
    assert np.array_equal(from_array, from_pil)


@pytest.mark.parametrize(
    "bad", [np.zeros((8, 8, 3), dtype=np.uint8), np.zeros((8, 8), dtype=np.float32)]
)
def test_rejects_bad_arrays(bad):
    with pytest.raises(ValueError):
        degrade_sketch(bad, np.random.default_rng(0))


def test_batch_is_deterministic_and_shaped():
    batch = np.stack([_face(), _ten_lines(), _blank()])  # (3, 96, 96)
    a = degrade_batch(batch, seed=1)
    assert a.shape == batch.shape
    assert a.dtype == np.uint8
    assert np.array_equal(a, degrade_batch(batch, seed=1))
    assert not np.array_equal(a, degrade_batch(batch, seed=2))
    assert (a[2] == 255).all()


def test_batch_rejects_a_single_image():
    with pytest.raises(ValueError):
        degrade_batch(_face(), seed=0)


# ---------------------------------------------------------------------------
# Line styles (training.degrade.amateur_sketch and its parts)
# ---------------------------------------------------------------------------

from training.degrade import (  # noqa: E402
    SHIFTS,
    STYLES,
    add_strays,
    amateur_batch,
    amateur_sketch,
    erase_part,
    shift_batch,
    soften,
)


def _face_image() -> np.ndarray:
    """A colour face to extract lines from: skin disc, dark eyes and mouth on light paper."""
    img = np.full((SIZE, SIZE, 3), 235, dtype=np.uint8)
    cv2.circle(img, (48, 48), 36, (200, 170, 150), -1)
    cv2.ellipse(img, (34, 40), (7, 4), 0, 0, 360, (40, 30, 90), -1)
    cv2.ellipse(img, (62, 40), (7, 4), 0, 0, 360, (40, 30, 90), -1)
    cv2.line(img, (38, 66), (58, 66), (60, 20, 20), 2)
    return img


def _ink_box(img: np.ndarray) -> tuple[int, int]:
    ys, xs = np.nonzero(img < 128)
    return ys.max() - ys.min() + 1, xs.max() - xs.min() + 1


def test_smooth_strokes_stay_on_the_drawing_and_lose_the_staircase():
    img = _blank()
    cv2.line(img, (10, 30), (85, 60), 0, 1)  # a shallow diagonal: a 1 px staircase
    smooth = _run(img, wobble_px=0.0, thickness_range=(1, 1), smooth_px=4.0, **STILL)
    assert _mean_distance_to(img, smooth) < 1.0
    # A smoothed copy of the default path: the same stroke count, still one line.
    assert _n_strokes(smooth) == 1
    # Smoothing a closed loop shrinks it only a little.
    ring = _blank()
    cv2.circle(ring, (48, 48), 30, 0, 1)
    out = _run(ring, wobble_px=0.0, thickness_range=(1, 1), smooth_px=4.0, **STILL)
    assert _mean_distance_to(ring, out) < 1.5


def test_rough_only_is_degrade_batch():
    batch = np.stack([_face(), _ten_lines()])
    assert np.array_equal(amateur_batch(batch, 3, styles=("rough",)), degrade_batch(batch, 3))


def test_amateur_batch_is_seeded_shaped_and_uses_the_faces():
    batch = np.stack([_face(), _ten_lines(), _blank()])
    faces = np.stack([_face_image()] * 3)
    a = amateur_batch(batch, 1, faces)
    assert a.shape == batch.shape and a.dtype == np.uint8
    assert np.array_equal(a, amateur_batch(batch, 1, faces))
    assert not np.array_equal(a, amateur_batch(batch, 2, faces))
    assert (a[2] == 255).all()
    with pytest.raises(ValueError):
        amateur_sketch(_face(), np.random.default_rng(0), styles=("rough", "crayon"))
    with pytest.raises(ValueError):
        amateur_batch(_face(), 0)


def test_every_style_alone_changes_the_drawing_sometimes():
    face, image = _face(), _face_image()
    for style in STYLES:
        outs = [amateur_sketch(face, np.random.default_rng(s), image, (style,))
                for s in range(12)]
        assert any(not np.array_equal(o, face) for o in outs), style
        assert all(o.shape == face.shape and o.dtype == np.uint8 for o in outs)


def test_width_style_draws_wider_lines():
    face = _face()
    widths = [(amateur_sketch(face, np.random.default_rng(s), styles=("width",)) < 128).sum()
              for s in range(12)]
    assert max(widths) >= 2.5 * (face < 128).sum()


def test_frame_draws_the_face_smaller_and_centred():
    face = _face()
    h, w = _ink_box(face)
    smaller = []
    for s in range(16):
        out = amateur_sketch(face, np.random.default_rng(s), styles=("frame",))
        oh, ow = _ink_box(out)
        smaller.append(oh < 0.9 * h and ow < 0.9 * w)
        ys, xs = np.nonzero(out < 128)
        assert abs(ys.mean() - 48) < 0.1 * SIZE and abs(xs.mean() - 48) < 0.1 * SIZE
    assert any(smaller)


def test_heavy_style_drops_more_strokes():
    lines = _ten_lines()
    heavy = [_n_strokes(amateur_sketch(lines, np.random.default_rng(s), styles=("rough", "heavy")))
             for s in range(30)]
    rough = [_n_strokes(amateur_sketch(lines, np.random.default_rng(s), styles=("rough",)))
             for s in range(30)]
    assert min(heavy) < min(rough)


def test_xdog_style_draws_from_the_face_image():
    from s2a.sketch import xdog_sketch

    lines = np.asarray(xdog_sketch(_face_image()))
    assert lines.shape == (SIZE, SIZE) and set(np.unique(lines)) <= {0, 255}
    # Lines sit at the eyes and the face outline, not in the flat paper.
    assert (lines[30:50, 25:45] < 128).any()
    assert (lines[:8, :8] == 255).all()
    assert not (np.asarray(xdog_sketch(np.full((SIZE, SIZE, 3), 200, np.uint8))) < 128).any()


def test_soften_keeps_line_centres_dark_and_adds_grey():
    face = _face()
    soft = soften(face, 0.8)
    assert soft.dtype == np.uint8 and soft.shape == face.shape
    assert ((soft > 20) & (soft < 235)).sum() > (face < 128).sum()  # grey fringes
    ys, xs = np.nonzero(face < 128)
    assert np.median(soft[ys, xs]) < 128  # strokes still read as strokes


def test_strays_add_marks_and_erase_part_wipes_a_band():
    face = _face()
    rng = np.random.default_rng(0)
    marked = [add_strays(face, rng, dots=6, scribbles=3) for _ in range(5)]
    assert any((m < 128).sum() > (face < 128).sum() for m in marked)
    assert all(((m < 128) | (face >= 128)).all() for m in marked)  # nothing erased
    for seed in range(8):
        part = erase_part(face, np.random.default_rng(seed))
        assert 20 <= (part < 128).sum() < (face < 128).sum()
        assert ((part < 128) <= (face < 128)).all()
    tiny = _blank()
    tiny[48, 40:45] = 0
    assert np.array_equal(erase_part(tiny, np.random.default_rng(0)), tiny)  # too little ink


def test_shift_batch_changes_only_the_pen():
    face = _face()
    thick, smooth = shift_batch(face[None], "thick")[0], shift_batch(face[None], "smooth")[0]
    assert (thick < 128).sum() > 2.5 * (face < 128).sum()
    assert _mean_distance_to(thick, face) < 0.5  # the drawing itself is all there
    assert _mean_distance_to(smooth, face) < 0.5
    assert set(SHIFTS) == {"thick", "smooth"}
    with pytest.raises(ValueError):
        shift_batch(face[None], "crayon")
