"""The sketch stage: training detail filter and the user-sketch normaliser."""

import cv2
import numpy as np
import pytest
from PIL import Image

from s2a.sketch import EMPTY_SKETCH_MESSAGE, extract_sketch, normalize_sketch


def face_picture(size: int = 96) -> Image.Image:
    """A flat-colour cartoon face: skin disc, two dark eyes, a mouth, on a blue background."""
    canvas = np.full((size, size, 3), (70, 120, 200), np.uint8)
    c = size // 2
    cv2.circle(canvas, (c, c), size // 3, (250, 220, 200), -1)
    for dx in (-size // 8, size // 8):
        cv2.circle(canvas, (c + dx, c - size // 16), size // 20, (30, 30, 90), -1)
    mouth_y = c + size // 7
    cv2.line(canvas, (c - size // 10, mouth_y), (c + size // 10, mouth_y), (150, 40, 40), 2)
    return Image.fromarray(canvas)


def drawing(size: int = 512, brush: int = 3, ink: int = 0, paper: int = 255) -> np.ndarray:
    """A user's sketch: a circle and a cross drawn with a `brush` px pen."""
    canvas = np.full((size, size), paper, np.uint8)
    cv2.circle(canvas, (size // 2, size // 2), size // 3, ink, brush)
    cv2.line(canvas, (size // 4, size // 2), (3 * size // 4, size // 2), ink, brush)
    return canvas


def test_extract_sketch_finds_the_outlines_and_drops_specks():
    picture = face_picture()
    sketch = extract_sketch(picture)
    assert sketch.mode == "L" and sketch.size == picture.size
    values = np.asarray(sketch)
    assert set(np.unique(values)) <= {0, 255}
    ink = values < 128
    # The face outline is a circle of radius 32 around the centre: ink must lie on it.
    ys, xs = np.nonzero(ink)
    radius = np.hypot(xs - 48, ys - 48)
    assert ((radius > 28) & (radius < 36)).sum() > 100
    # No isolated specks survive: every stroke has at least the minimum size.
    count, _, stats, _ = cv2.connectedComponentsWithStats(ink.astype(np.uint8), connectivity=8)
    assert stats[1:, cv2.CC_STAT_AREA].min() >= 12


def test_extract_sketch_drops_short_strokes_but_keeps_long_ones():
    canvas = np.full((96, 96, 3), 255, np.uint8)
    cv2.rectangle(canvas, (10, 10), (12, 12), (0, 0, 0), -1)  # a speck: few edge pixels
    cv2.rectangle(canvas, (30, 30), (80, 80), (0, 0, 0), -1)  # a big square
    sketch = np.asarray(extract_sketch(canvas, blur_sigma=0))
    assert (sketch[5:18, 5:18] < 128).sum() == 0
    assert (sketch[25:85, 25:85] < 128).sum() > 100


def test_extract_sketch_of_a_blank_picture_is_blank():
    assert (np.asarray(extract_sketch(Image.new("RGB", (96, 96), "white"))) == 255).all()


def test_normalize_keeps_thin_strokes_when_downscaling():
    sketch = normalize_sketch(Image.fromarray(drawing(512, brush=3)), 96)
    assert sketch.shape == (96, 96) and sketch.dtype == np.float32
    assert 0.0 <= sketch.min() and sketch.max() <= 1.0
    # The circle is still a dark line: along the horizontal through the centre, the
    # left edge of the circle (x ~ 96/2 - 96/3 = 16) is near-black.
    assert sketch[30:66, 12:20].min() < 0.1
    # Plain area averaging would have faded it to grey; compare to show why it matters.
    naive = cv2.resize(drawing(512, brush=3).astype(np.float32) / 255, (96, 96),
                       interpolation=cv2.INTER_AREA)
    assert naive[30:66, 12:20].min() > sketch[30:66, 12:20].min()


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "P", "1", "I;16", "I", "F", "CMYK", "LA"])
def test_normalize_accepts_every_common_mode(mode):
    image = Image.fromarray(drawing(200, brush=4)).convert(mode)
    sketch = normalize_sketch(image, 64)
    assert sketch.shape == (64, 64)
    assert (sketch < 0.5).sum() > 50 and (sketch > 0.5).sum() > 2000


def test_normalize_reads_16_bit_range():
    canvas = drawing(128, brush=2).astype(np.uint16) * 257  # 0 and 65535
    sketch = normalize_sketch(Image.fromarray(canvas), 64)
    assert (sketch < 0.5).sum() > 50


def test_normalize_composites_transparent_canvas():
    # Gradio's canvas: black strokes on fully transparent pixels.
    rgba = np.zeros((300, 300, 4), np.uint8)
    rgba[..., 3] = 255 - drawing(300, brush=3)
    sketch = normalize_sketch(Image.fromarray(rgba, "RGBA"), 96)
    assert (sketch < 0.5).sum() > 50
    assert sketch[0, 0] == 1.0  # the transparent corner is paper


def test_normalize_keeps_white_strokes_on_transparent_canvas():
    rgba = np.zeros((300, 300, 4), np.uint8)
    rgba[..., :3] = 255
    rgba[..., 3] = 255 - drawing(300, brush=3)
    sketch = normalize_sketch(Image.fromarray(rgba, "RGBA"), 96)
    assert (sketch < 0.5).sum() > 50 and sketch[0, 0] == 1.0


def test_normalize_inverts_light_on_dark():
    dark = normalize_sketch(Image.fromarray(drawing(256, brush=3, ink=255, paper=0)), 96)
    light = normalize_sketch(Image.fromarray(drawing(256, brush=3)), 96)
    np.testing.assert_allclose(dark, light, atol=1e-6)


def test_normalize_pads_non_square_canvases_with_paper():
    wide = np.full((100, 300), 255, np.uint8)
    cv2.line(wide, (20, 50), (280, 50), 0, 3)
    sketch = normalize_sketch(Image.fromarray(wide), 96)
    assert sketch.shape == (96, 96)
    assert (sketch[:25] == 1.0).all() and (sketch[-25:] == 1.0).all()
    assert sketch[48].min() < 0.1


def test_normalize_upscales_small_sketches():
    sketch = normalize_sketch(Image.fromarray(drawing(32, brush=1)), 96)
    assert sketch.shape == (96, 96) and (sketch < 0.5).sum() > 50


def test_normalize_accepts_numpy_arrays():
    rgb = np.repeat(drawing(128, brush=2)[..., None], 3, axis=2)
    assert normalize_sketch(rgb, 64).shape == (64, 64)
    assert normalize_sketch(rgb.astype(np.float32) / 255.0, 64).shape == (64, 64)


@pytest.mark.parametrize(
    "blank",
    [
        np.full((512, 512), 255, np.uint8),  # white
        np.zeros((512, 512), np.uint8),  # black (light-on-dark with no strokes)
        np.zeros((300, 300, 4), np.uint8),  # fully transparent
        np.full((1, 1), 0, np.uint8),  # 1x1
    ],
)
def test_normalize_rejects_empty_sketches(blank):
    with pytest.raises(ValueError, match="empty"):
        normalize_sketch(blank, 96)


def test_empty_message_tells_the_user_what_to_do():
    assert "draw" in EMPTY_SKETCH_MESSAGE


@pytest.mark.parametrize(
    "bad, message",
    [
        ("not an image", "not an image"),
        (None, "not an image"),
        (np.zeros((0, 5), np.uint8), "shape"),
        (np.zeros((8, 8, 2), np.uint8), "channels"),
        (np.full((8, 8), np.nan, np.float32), "NaN"),
        (np.zeros((4097, 4097), np.uint8), "too large"),
    ],
)
def test_normalize_rejects_bad_input_clearly(bad, message):
    with pytest.raises(ValueError, match=message):
        normalize_sketch(bad, 96)


def test_normalize_rejects_bad_resolution():
    with pytest.raises(ValueError, match="resolution"):
        normalize_sketch(drawing(64), 0)


def test_ink_of_a_grey_canvas_equals_the_colour_path():
    """An "L" drawing takes a table lookup; it must give the RGB path's values exactly,
    dark paper included, and near the half-dark boundary where the median decides."""
    from s2a.sketch import ink_of

    rng = np.random.default_rng(4)
    for dark_share in (0.05, 0.95, 0.5):
        for _ in range(3):
            grey = np.where(rng.random((61, 47)) < dark_share, rng.integers(0, 128, (61, 47)),
                            rng.integers(128, 256, (61, 47))).astype(np.uint8)
            image = Image.fromarray(grey, "L")
            np.testing.assert_array_equal(ink_of(image), ink_of(image.convert("RGB")))
    half = np.zeros((4, 4), np.uint8)
    half[:2] = 255  # exactly half dark: the median (127.5) is not below 127.5
    np.testing.assert_array_equal(ink_of(Image.fromarray(half, "L")), 1.0 - half / 255.0)
