"""Tests for s2a.metrics on hand-built cases with known answers."""

import math

import numpy as np
import pytest
from PIL import Image

from s2a.metrics import (
    delta_e_ciede2000,
    edge_f1,
    hint_delta_e_per_pixel,
    psnr,
    rgb_to_lab,
)

SIZE = 32


def blank(size: int = SIZE) -> np.ndarray:
    """A white sketch with no strokes."""
    return np.full((size, size), 255, dtype=np.uint8)


def hline(row: int, col0: int = 4, col1: int = 28, sketch: np.ndarray | None = None) -> np.ndarray:
    """A sketch with a 1-px black horizontal line on `row`, columns [col0, col1)."""
    out = blank() if sketch is None else sketch.copy()
    out[row, col0:col1] = 0
    return out


# ---------------------------------------------------------------------------
# edge_f1
# ---------------------------------------------------------------------------


def test_edge_f1_identical_is_one():
    sketch = hline(10)
    sketch[5:25, 16] = 0
    assert edge_f1(sketch, sketch) == 1.0
    assert edge_f1(Image.fromarray(sketch), Image.fromarray(sketch)) == 1.0


def test_edge_f1_one_pixel_shift_depends_on_tolerance():
    a, b = hline(10), hline(11)
    assert edge_f1(a, b, tolerance_px=2) == 1.0
    assert edge_f1(a, b, tolerance_px=1) == 1.0
    # With no tolerance the shifted line shares no pixel with the original.
    assert edge_f1(a, b, tolerance_px=0) == 0.0


def test_edge_f1_five_pixel_shift_is_zero():
    assert edge_f1(hline(10), hline(15), tolerance_px=2) == 0.0


def test_edge_f1_half_the_strokes():
    full = hline(20, sketch=hline(5))  # two equal lines 15 px apart
    half = hline(5)  # only the first one
    # B = half: every B pixel lies on A (precision 1); half of A is covered (recall 0.5).
    expected = 2 * 1.0 * 0.5 / (1.0 + 0.5)
    assert edge_f1(full, half, tolerance_px=2) == pytest.approx(expected, abs=1e-12)
    assert edge_f1(full, half, tolerance_px=2) == pytest.approx(2 / 3, abs=1e-12)
    # The score is symmetric in P and R, so swapping the roles gives the same F1.
    assert edge_f1(half, full, tolerance_px=2) == pytest.approx(2 / 3, abs=1e-12)


def test_edge_f1_empty_cases():
    assert edge_f1(blank(), blank()) == 1.0
    assert edge_f1(hline(10), blank()) == 0.0
    assert edge_f1(blank(), hline(10)) == 0.0


def test_edge_f1_grey_threshold():
    # 127 is a stroke, 128 is background.
    a = hline(10)
    b = blank()
    b[10, 4:28] = 127
    assert edge_f1(a, b) == 1.0
    b[10, 4:28] = 128
    assert edge_f1(a, b) == 0.0


def test_edge_f1_resizes_b_with_nearest_neighbour():
    a = blank(SIZE)
    a[8:10, :] = 0  # 2-px band at rows 8-9
    b = blank(SIZE // 2)
    b[4, :] = 0  # same band at half resolution
    assert edge_f1(a, b, tolerance_px=0) == 1.0


def test_edge_f1_rejects_non_2d_arrays():
    with pytest.raises(ValueError):
        edge_f1(np.zeros((4, 4, 3), dtype=np.uint8), blank(4))


# ---------------------------------------------------------------------------
# CIEDE2000 and rgb_to_lab
# ---------------------------------------------------------------------------

# All 34 pairs from Sharma, Wu & Dalal (2005), Table 1: (Lab1, Lab2, expected ΔE00).
SHARMA_PAIRS = [
    ((50.0000, 2.6772, -79.7751), (50.0000, 0.0000, -82.7485), 2.0425),
    ((50.0000, 3.1571, -77.2803), (50.0000, 0.0000, -82.7485), 2.8615),
    ((50.0000, 2.8361, -74.0200), (50.0000, 0.0000, -82.7485), 3.4412),
    ((50.0000, -1.3802, -84.2814), (50.0000, 0.0000, -82.7485), 1.0000),
    ((50.0000, -1.1848, -84.8006), (50.0000, 0.0000, -82.7485), 1.0000),
    ((50.0000, -0.9009, -85.5211), (50.0000, 0.0000, -82.7485), 1.0000),
    ((50.0000, 0.0000, 0.0000), (50.0000, -1.0000, 2.0000), 2.3669),
    ((50.0000, -1.0000, 2.0000), (50.0000, 0.0000, 0.0000), 2.3669),
    ((50.0000, 2.4900, -0.0010), (50.0000, -2.4900, 0.0009), 7.1792),
    ((50.0000, 2.4900, -0.0010), (50.0000, -2.4900, 0.0010), 7.1792),
    ((50.0000, 2.4900, -0.0010), (50.0000, -2.4900, 0.0011), 7.2195),
    ((50.0000, 2.4900, -0.0010), (50.0000, -2.4900, 0.0012), 7.2195),
    ((50.0000, -0.0010, 2.4900), (50.0000, 0.0009, -2.4900), 4.8045),
    ((50.0000, -0.0010, 2.4900), (50.0000, 0.0010, -2.4900), 4.8045),
    ((50.0000, -0.0010, 2.4900), (50.0000, 0.0011, -2.4900), 4.7461),
    ((50.0000, 2.5000, 0.0000), (50.0000, 0.0000, -2.5000), 4.3065),
    ((50.0000, 2.5000, 0.0000), (73.0000, 25.0000, -18.0000), 27.1492),
    ((50.0000, 2.5000, 0.0000), (61.0000, -5.0000, 29.0000), 22.8977),
    ((50.0000, 2.5000, 0.0000), (56.0000, -27.0000, -3.0000), 31.9030),
    ((50.0000, 2.5000, 0.0000), (58.0000, 24.0000, 15.0000), 19.4535),
    ((50.0000, 2.5000, 0.0000), (50.0000, 3.1736, 0.5854), 1.0000),
    ((50.0000, 2.5000, 0.0000), (50.0000, 3.2972, 0.0000), 1.0000),
    ((50.0000, 2.5000, 0.0000), (50.0000, 1.8634, 0.5757), 1.0000),
    ((50.0000, 2.5000, 0.0000), (50.0000, 3.2592, 0.3350), 1.0000),
    ((60.2574, -34.0099, 36.2677), (60.4626, -34.1751, 39.4387), 1.2644),
    ((63.0109, -31.0961, -5.8663), (62.8187, -29.7946, -4.0864), 1.2630),
    ((61.2901, 3.7196, -5.3901), (61.4292, 2.2480, -4.9620), 1.8731),
    ((35.0831, -44.1164, 3.7933), (35.0232, -40.0716, 1.5901), 1.8645),
    ((22.7233, 20.0904, -46.6940), (23.0331, 14.9730, -42.5619), 2.0373),
    ((36.4612, 47.8580, 18.3852), (36.2715, 50.5065, 21.2231), 1.4146),
    ((90.8027, -2.0831, 1.4410), (91.1528, -1.6435, 0.0447), 1.4441),
    ((90.9257, -0.5406, -0.9208), (88.6381, -0.8985, -0.7239), 1.5381),
    ((6.7747, -0.2908, -2.4247), (5.8714, -0.0985, -2.2286), 0.6377),
    ((2.0776, 0.0795, -1.1350), (0.9033, -0.0636, -0.5514), 0.9082),
]


@pytest.mark.parametrize("lab1, lab2, expected", SHARMA_PAIRS)
def test_ciede2000_sharma_pairs(lab1, lab2, expected):
    got = float(delta_e_ciede2000(np.array(lab1), np.array(lab2)))
    # The published values are rounded to 4 decimals.
    assert got == pytest.approx(expected, abs=5e-5)
    # ΔE00 is symmetric.
    assert float(delta_e_ciede2000(np.array(lab2), np.array(lab1))) == pytest.approx(got, abs=1e-9)


def test_ciede2000_vectorised_matches_pairwise():
    lab1 = np.array([p[0] for p in SHARMA_PAIRS])
    lab2 = np.array([p[1] for p in SHARMA_PAIRS])
    expected = np.array([p[2] for p in SHARMA_PAIRS])
    got = delta_e_ciede2000(lab1, lab2)
    assert got.shape == (len(SHARMA_PAIRS),)
    np.testing.assert_allclose(got, expected, atol=5e-5)


def test_ciede2000_identical_is_zero():
    lab = np.array([[50.0, 10.0, -20.0], [0.0, 0.0, 0.0], [100.0, 0.0, 0.0]])
    np.testing.assert_array_equal(delta_e_ciede2000(lab, lab), np.zeros(3))


def test_rgb_to_lab_white_and_black():
    lab = rgb_to_lab(np.array([[255, 255, 255], [0, 0, 0]], dtype=np.uint8))
    np.testing.assert_allclose(lab[0], [100.0, 0.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(lab[1], [0.0, 0.0, 0.0], atol=1e-6)


def test_rgb_to_lab_primaries():
    # Reference sRGB (D65) Lab values, e.g. from Bruce Lindbloom's calculator.
    lab = rgb_to_lab(np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255]], dtype=np.uint8))
    np.testing.assert_allclose(lab[0], [53.2408, 80.0925, 67.2032], atol=2e-3)
    np.testing.assert_allclose(lab[1], [87.7347, -86.1827, 83.1793], atol=2e-3)
    np.testing.assert_allclose(lab[2], [32.2970, 79.1875, -107.8602], atol=2e-3)


def test_rgb_to_lab_dark_grey_uses_linear_segments():
    # sRGB 10 is on the linear part of the sRGB curve: Y = (10 / 255) / 12.92, and Y is below
    # (6/29)^3, so L* = (29/3)^3 * Y (CIE's linear segment).
    expected_l = (29 / 3) ** 3 * (10 / 255) / 12.92
    lab = rgb_to_lab(np.array([10, 10, 10], dtype=np.uint8))
    np.testing.assert_allclose(lab, [expected_l, 0.0, 0.0], atol=1e-9)


# ---------------------------------------------------------------------------
# hint_delta_e_per_pixel
# ---------------------------------------------------------------------------


def solid_rgb(color, size: int = 8) -> Image.Image:
    return Image.new("RGB", (size, size), color)


def test_hint_delta_e_exact_match_is_zero():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
    hints = np.zeros((8, 8, 4), dtype=np.uint8)
    hints[2:5, 1:7, :3] = image[2:5, 1:7]
    hints[2:5, 1:7, 3] = 255
    assert hint_delta_e_per_pixel(image, hints).max() == 0.0
    assert hint_delta_e_per_pixel(image, hints).shape == (18,)


def test_hint_delta_e_red_image_blue_hints():
    image = solid_rgb((255, 0, 0))
    hints = Image.new("RGBA", (8, 8), (0, 0, 0, 0))
    hints.paste((0, 0, 255, 255), (0, 0, 4, 8))  # left half hinted blue
    # ΔE00 between sRGB red and sRGB blue is about 52.88.
    assert hint_delta_e_per_pixel(image, hints).mean() == pytest.approx(52.88, abs=0.01)
    per_pixel = hint_delta_e_per_pixel(image, hints)
    assert per_pixel.shape == (32,)
    np.testing.assert_allclose(per_pixel, per_pixel[0])


def test_hint_delta_e_only_hinted_pixels_count():
    # The unhinted half disagrees completely but must not affect the score.
    image = np.zeros((4, 4, 3), dtype=np.uint8)
    image[:, :2] = (10, 200, 30)
    hints = np.zeros((4, 4, 4), dtype=np.uint8)
    hints[:, :2] = (10, 200, 30, 1)  # alpha 1 is still a hint
    hints[:, 2:] = (255, 255, 255, 0)
    assert hint_delta_e_per_pixel(image, hints).max() == 0.0


def test_hint_delta_e_stretches_hints_to_image_size():
    image = solid_rgb((0, 128, 255), size=16)
    hints = Image.new("RGBA", (4, 4), (0, 128, 255, 255))
    assert hint_delta_e_per_pixel(image, hints).shape == (256,)
    assert hint_delta_e_per_pixel(image, hints).max() == 0.0


def test_hint_delta_e_unhinted_is_nan():
    image = solid_rgb((255, 0, 0))
    hints = Image.new("RGBA", (8, 8), (0, 0, 255, 0))
    assert hint_delta_e_per_pixel(image, hints).size == 0


# ---------------------------------------------------------------------------
# psnr
# ---------------------------------------------------------------------------


def test_psnr_identical_is_inf():
    image = np.arange(48, dtype=np.uint8).reshape(4, 4, 3)
    assert psnr(image, image) == math.inf
    assert psnr(Image.fromarray(image), Image.fromarray(image)) == math.inf


def test_psnr_constant_offset():
    a = np.zeros((8, 8, 3), dtype=np.uint8)
    b = np.full((8, 8, 3), 10, dtype=np.uint8)
    # MSE = 100, so PSNR = 10 log10(255^2 / 100) = 20 log10(255 / 10).
    assert psnr(a, b) == pytest.approx(20 * math.log10(255 / 10), abs=1e-12)
    assert psnr(b, a) == pytest.approx(20 * math.log10(255 / 10), abs=1e-12)


def test_psnr_does_not_wrap_uint8():
    # 0 - 10 in uint8 would wrap to 246; the score must use the true difference.
    a = np.zeros((2, 2), dtype=np.uint8)
    b = np.full((2, 2), 10, dtype=np.uint8)
    assert psnr(a, b) == psnr(b, a)


def test_psnr_shape_mismatch_raises():
    with pytest.raises(ValueError, match="same shape"):
        psnr(np.zeros((8, 8, 3), dtype=np.uint8), np.zeros((8, 9, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match="same shape"):
        psnr(Image.new("RGB", (8, 8)), Image.new("L", (8, 8)))
