"""Scores used to evaluate the model: sketch fidelity, hint colour fidelity and PSNR.

Numpy, OpenCV and SciPy only (no torch), so evaluation scripts and the hint report can
use these without loading a model.

Sketches are dark lines on white: a stroke pixel is one whose grey value is below 128.
"""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image
from scipy import ndimage

from s2a.images import as_uint8_array

STROKE_THRESHOLD = 128

# sRGB (D65) -> CIE XYZ, IEC 61966-2-1.
_SRGB_TO_XYZ = np.array(
    [
        [0.4124564, 0.3575761, 0.1804375],
        [0.2126729, 0.7151522, 0.0721750],
        [0.0193339, 0.1191920, 0.9503041],
    ]
)
# Reference white taken from the matrix itself, so sRGB white maps to exactly a* = b* = 0.
_WHITE_XYZ = _SRGB_TO_XYZ.sum(axis=1)


# ---------------------------------------------------------------------------
# Input helpers
# ---------------------------------------------------------------------------


def _resize_nearest(arr: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize to (height, width) with nearest neighbour, so no new grey levels or colours appear."""
    if arr.shape[:2] == (height, width):
        return arr
    return cv2.resize(arr, (width, height), interpolation=cv2.INTER_NEAREST)


def _stroke_masks(
    sketch_a: Image.Image | np.ndarray, sketch_b: Image.Image | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Stroke masks of A and B, with B resized (nearest neighbour) to A's size if needed."""
    a = as_uint8_array(sketch_a, "L", "sketch_a")
    b = as_uint8_array(sketch_b, "L", "sketch_b")
    b = _resize_nearest(b, a.shape[0], a.shape[1])
    return a < STROKE_THRESHOLD, b < STROKE_THRESHOLD


def _distance_to(strokes: np.ndarray) -> np.ndarray:
    """Euclidean distance in pixels from every pixel to the nearest stroke pixel (exact EDT)."""
    # distance_transform_edt measures the distance to the nearest zero, so strokes must be 0.
    return ndimage.distance_transform_edt(~strokes)


# ---------------------------------------------------------------------------
# Sketch fidelity
# ---------------------------------------------------------------------------


def edge_f1(
    sketch_a: Image.Image | np.ndarray,
    sketch_b: Image.Image | np.ndarray,
    tolerance_px: float = 2,
) -> float:
    """F1 score between the strokes of two sketches, with a positional tolerance.

    Args:
        sketch_a: reference sketch, a PIL image (converted to "L") or a 2-D uint8 array;
            dark lines (< 128) on white.
        sketch_b: sketch to score, same format. If its size differs from A's it is resized
            to A's size with nearest neighbour.
        tolerance_px: a stroke pixel counts as matched when the Euclidean distance to the
            nearest stroke pixel of the other sketch is at most this many pixels.

    Returns:
        2PR / (P + R), where precision P is the share of B's stroke pixels matched by A and
        recall R the share of A's stroke pixels matched by B. Both sketches empty gives 1.0
        (they agree perfectly); exactly one empty gives 0.0.
    """
    a, b = _stroke_masks(sketch_a, sketch_b)
    n_a, n_b = int(a.sum()), int(b.sum())
    if n_a == 0 and n_b == 0:
        return 1.0
    if n_a == 0 or n_b == 0:
        return 0.0
    precision = float(np.mean(_distance_to(a)[b] <= tolerance_px))
    recall = float(np.mean(_distance_to(b)[a] <= tolerance_px))
    if precision + recall == 0.0:
        return 0.0
    return 2.0 * precision * recall / (precision + recall)


def rgb_to_lab(rgb_uint8: np.ndarray) -> np.ndarray:
    """Convert sRGB colours to CIE L*a*b* (D65 white).

    Args:
        rgb_uint8: array of shape (..., 3), values 0..255.

    Returns:
        float64 array of shape (..., 3) with L* in [0, 100]; white maps to (100, 0, 0) and
        black to (0, 0, 0).
    """
    rgb = np.asarray(rgb_uint8, dtype=np.float64) / 255.0
    if rgb.shape[-1] != 3:
        raise ValueError(f"rgb_to_lab expects an array of shape (..., 3), got {rgb.shape}.")
    # sRGB transfer function -> linear light.
    linear = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    xyz = linear @ _SRGB_TO_XYZ.T / _WHITE_XYZ
    # CIE f(t): cube root above (6/29)^3, linear segment below it.
    eps = (6.0 / 29.0) ** 3
    f = np.where(xyz > eps, np.cbrt(xyz), xyz / (3.0 * (6.0 / 29.0) ** 2) + 4.0 / 29.0)
    lightness = 116.0 * f[..., 1] - 16.0
    a = 500.0 * (f[..., 0] - f[..., 1])
    b = 200.0 * (f[..., 1] - f[..., 2])
    return np.stack([lightness, a, b], axis=-1)


def delta_e_ciede2000(lab1: np.ndarray, lab2: np.ndarray) -> np.ndarray:
    """CIEDE2000 colour difference between Lab colours, vectorised (kL = kC = kH = 1).

    Follows Sharma, Wu & Dalal, "The CIEDE2000 Color-Difference Formula: Implementation
    Notes, Supplementary Test Data, and Mathematical Observations" (2005).

    Args:
        lab1, lab2: arrays of shape (..., 3) holding L*, a*, b*; broadcast against each other.

    Returns:
        float64 array of shape (...) with the differences.
    """
    lab1 = np.asarray(lab1, dtype=np.float64)
    lab2 = np.asarray(lab2, dtype=np.float64)
    l1, a1, b1 = lab1[..., 0], lab1[..., 1], lab1[..., 2]
    l2, a2, b2 = lab2[..., 0], lab2[..., 1], lab2[..., 2]

    # Step 1: a' rescaled by G, then C' and h' (degrees in [0, 360)).
    c_bar = (np.hypot(a1, b1) + np.hypot(a2, b2)) / 2.0
    c_bar7 = c_bar**7
    g = 0.5 * (1.0 - np.sqrt(c_bar7 / (c_bar7 + 25.0**7)))
    a1p = (1.0 + g) * a1
    a2p = (1.0 + g) * a2
    c1p = np.hypot(a1p, b1)
    c2p = np.hypot(a2p, b2)
    # atan2(0, 0) is 0 in numpy, which is the paper's convention for achromatic colours.
    h1p = np.degrees(np.arctan2(b1, a1p)) % 360.0
    h2p = np.degrees(np.arctan2(b2, a2p)) % 360.0

    # Step 2: differences. The hue difference takes the short way round and is 0 when
    # either colour is achromatic (its hue is undefined).
    d_l = l2 - l1
    d_c = c2p - c1p
    c_prod = c1p * c2p
    dh = h2p - h1p
    dh = np.where(dh > 180.0, dh - 360.0, dh)
    dh = np.where(dh < -180.0, dh + 360.0, dh)
    dh = np.where(c_prod == 0.0, 0.0, dh)
    d_h = 2.0 * np.sqrt(c_prod) * np.sin(np.radians(dh) / 2.0)

    # Step 3: means and weighting functions.
    l_bar = (l1 + l2) / 2.0
    c_bar_p = (c1p + c2p) / 2.0
    h_sum = h1p + h2p
    h_bar = np.where(
        np.abs(h1p - h2p) <= 180.0,
        h_sum / 2.0,
        np.where(h_sum < 360.0, (h_sum + 360.0) / 2.0, (h_sum - 360.0) / 2.0),
    )
    h_bar = np.where(c_prod == 0.0, h_sum, h_bar)

    t = (
        1.0
        - 0.17 * np.cos(np.radians(h_bar - 30.0))
        + 0.24 * np.cos(np.radians(2.0 * h_bar))
        + 0.32 * np.cos(np.radians(3.0 * h_bar + 6.0))
        - 0.20 * np.cos(np.radians(4.0 * h_bar - 63.0))
    )
    d_theta = 30.0 * np.exp(-(((h_bar - 275.0) / 25.0) ** 2))
    c_bar_p7 = c_bar_p**7
    r_c = 2.0 * np.sqrt(c_bar_p7 / (c_bar_p7 + 25.0**7))
    l_term = (l_bar - 50.0) ** 2
    s_l = 1.0 + 0.015 * l_term / np.sqrt(20.0 + l_term)
    s_c = 1.0 + 0.045 * c_bar_p
    s_h = 1.0 + 0.015 * c_bar_p * t
    r_t = -np.sin(np.radians(2.0 * d_theta)) * r_c

    x_l = d_l / s_l
    x_c = d_c / s_c
    x_h = d_h / s_h
    return np.sqrt(x_l**2 + x_c**2 + x_h**2 + r_t * x_c * x_h)


def hint_delta_e_per_pixel(
    image: Image.Image | np.ndarray, hints: Image.Image | np.ndarray
) -> np.ndarray:
    """CIEDE2000 between the hint colour and the image colour at every hinted pixel.

    Args:
        image: the generated image, PIL (converted to RGB) or an HxWx3 uint8 array.
        hints: the hint canvas, PIL (converted to RGBA) or an HxWx4 uint8 array; stretched to
            the image's size with nearest neighbour if the sizes differ. A pixel is hinted
            when its alpha is > 0; its RGB is the wanted colour.

    Returns:
        1-D float64 array with one ΔE per hinted pixel (row-major order); empty if no pixel
        is hinted.
    """
    rgb = as_uint8_array(image, "RGB", "image")
    rgba = as_uint8_array(hints, "RGBA", "hints")
    rgba = _resize_nearest(rgba, rgb.shape[0], rgb.shape[1])
    hinted = rgba[..., 3] > 0  # (H, W)
    if not hinted.any():
        return np.zeros(0, dtype=np.float64)
    wanted = rgb_to_lab(rgba[..., :3][hinted])  # (N, 3)
    got = rgb_to_lab(rgb[hinted])  # (N, 3)
    return delta_e_ciede2000(wanted, got)


def psnr(
    a: Image.Image | np.ndarray, b: Image.Image | np.ndarray, max_value: float = 255.0
) -> float:
    """Peak signal-to-noise ratio in dB between two images of the same shape.

    Args:
        a, b: PIL images or uint8 arrays; must have the same shape (and, for PIL, the same
            mode-derived shape), otherwise ValueError.
        max_value: the largest possible pixel value.

    Returns:
        10 * log10(max_value^2 / MSE); float("inf") for identical images.
    """
    arr_a = np.asarray(a, dtype=np.float64)
    arr_b = np.asarray(b, dtype=np.float64)
    if arr_a.shape != arr_b.shape:
        raise ValueError(
            f"psnr needs two images of the same shape, got {arr_a.shape} and {arr_b.shape}."
        )
    if arr_a.size == 0:
        raise ValueError("psnr needs non-empty images.")
    mse = float(np.mean((arr_a - arr_b) ** 2))
    if mse == 0.0:
        return float("inf")
    return float(10.0 * np.log10(max_value**2 / mse))
