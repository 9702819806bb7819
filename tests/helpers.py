"""Helpers the tests import: tiny sizes and configs, and pictures drawn by the tests themselves.

Fixtures live in conftest.py; this module holds only plain functions and constants.
"""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image

from s2a.models import GeneratorConfig, SimpleGANConfig, SketchAutoencoderConfig

TINY_RESOLUTION = 32
TINY_LATENT = 16


def cartoon_face(rng: np.random.Generator, size: int = 64) -> np.ndarray:
    """A random flat-colour cartoon face (H, W, 3) uint8: background, hair, skin, eyes."""
    canvas = np.empty((size, size, 3), np.uint8)
    canvas[:] = rng.integers(0, 256, 3)
    centre = (size // 2 + int(rng.integers(-3, 4)), size // 2 + int(rng.integers(-3, 4)))
    radius = size // 3
    cv2.circle(canvas, centre, radius + size // 10, rng.integers(0, 256, 3).tolist(), -1)
    cv2.circle(canvas, (centre[0], centre[1] + size // 12), radius, (250, 215, 190), -1)
    eye = rng.integers(0, 200, 3).tolist()
    for dx in (-size // 7, size // 7):
        cv2.circle(canvas, (centre[0] + dx, centre[1] + size // 12), max(2, size // 16), eye, -1)
    mouth_y = centre[1] + size // 4
    cv2.line(canvas, (centre[0] - size // 12, mouth_y), (centre[0] + size // 12, mouth_y),
             (120, 40, 40), max(1, size // 40))
    return canvas


def face_sketch(size: int = 256, brush: int = 3) -> Image.Image:
    """A user-like line drawing of a face: outline, eyes, mouth, a few hair strokes."""
    canvas = np.full((size, size), 255, np.uint8)
    c = size // 2
    axes = (size // 3, size // 2 - size // 8)
    cv2.ellipse(canvas, (c, c + size // 12), axes, 0, 0, 360, 0, brush)
    for dx in (-size // 7, size // 7):
        cv2.ellipse(canvas, (c + dx, c), (size // 16, size // 12), 0, 0, 360, 0, brush)
    cv2.line(canvas, (c - size // 14, c + size // 4), (c + size // 14, c + size // 4), 0, brush)
    for x in range(c - size // 4, c + size // 4, size // 10):
        cv2.line(canvas, (x, size // 8), (x + size // 12, size // 4), 0, brush)
    return Image.fromarray(canvas, "L")



def tiny_configs() -> dict:
    """Configs of tiny networks at TINY_RESOLUTION for fast tests."""
    return {
        "autoencoder": SketchAutoencoderConfig(
            resolution=TINY_RESOLUTION, latent_dim=TINY_LATENT, channels=(8, 16)
        ),
        "generator": GeneratorConfig(
            resolution=TINY_RESOLUTION, latent_dim=TINY_LATENT, channels=(32, 16, 8),
            hint_resolutions=(16, 32),
        ),
        "baseline": SimpleGANConfig(resolution=TINY_RESOLUTION, channels=(8, 16)),
    }


# Colour images for the hint tests (simulated strokes and hint tensors).
RED = (255, 0, 0)
BLUE = (0, 0, 255)


def two_colour_image(size: int = 96) -> np.ndarray:
    """Left half red, right half blue."""
    img = np.zeros((size, size, 3), dtype=np.uint8)  # (H, W, 3)
    img[:, : size // 2] = RED
    img[:, size // 2 :] = BLUE
    return img


def textured_image(size: int = 64, seed: int = 0) -> Image.Image:
    """A few flat colour blocks plus noise: something like a face's regions."""
    rng = np.random.default_rng(seed)
    img = np.zeros((size, size, 3), dtype=np.uint8)
    half = size // 2
    img[:half, :half] = (230, 200, 180)
    img[:half, half:] = (40, 60, 160)
    img[half:, :half] = (250, 250, 250)
    img[half:, half:] = (120, 30, 40)
    noise = rng.integers(-8, 9, img.shape)
    return Image.fromarray(np.clip(img.astype(int) + noise, 0, 255).astype(np.uint8))


def alpha_of(hints: Image.Image) -> np.ndarray:
    return np.asarray(hints)[..., 3]


def small_face(size: int | tuple[int, int] = 512, radius: int = 50, centre=None) -> np.ndarray:
    """A simple face (outline, two eyes, a mouth) drawn small with a 3 px pen on a white
    pad of `size` (side, or (width, height)): (height, width) uint8, dark on white."""
    width, height = (size, size) if isinstance(size, int) else size
    canvas = np.full((height, width), 255, np.uint8)
    cx, cy = centre or (width // 2, height // 2)
    cv2.circle(canvas, (cx, cy), radius, 0, 3)
    for dx in (-radius // 3, radius // 3):
        cv2.circle(canvas, (cx + dx, cy - radius // 5), radius // 6, 0, 3)
    cv2.line(canvas, (cx - radius // 3, cy + radius // 2), (cx + radius // 3, cy + radius // 2),
             0, 3)
    return canvas
