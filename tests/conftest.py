"""Shared fixtures: tiny generated faces, a prepared-data folder and a tiny weights folder.

Nothing here reads ../shared: every picture is drawn by the tests themselves.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from s2a.manifest import write_manifest
from s2a.models import (
    Generator,
    GeneratorConfig,
    SimpleGAN,
    SimpleGANConfig,
    SketchAutoencoder,
    SketchAutoencoderConfig,
)
from s2a.projection import LatentBank

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


@pytest.fixture(scope="session")
def face_folder(tmp_path_factory) -> str:
    """A folder of 48 random cartoon-face PNGs plus one corrupt file and one grey image."""
    folder = tmp_path_factory.mktemp("faces")
    rng = np.random.default_rng(0)
    for i in range(48):
        Image.fromarray(cartoon_face(rng)).save(folder / f"face_{i:03d}.png")
    (folder / "broken.jpg").write_bytes(b"this is not a jpeg")
    Image.new("RGB", (64, 64), (128, 128, 128)).save(folder / "grey.png")
    return str(folder)


@pytest.fixture(scope="session")
def prepared_data(face_folder, tmp_path_factory) -> str:
    """The face folder run through training.prepare_data at the tiny resolution."""
    from training.prepare_data import main

    out = tmp_path_factory.mktemp("prepared")
    assert main(["--images", face_folder, "--out", str(out), "--resolution",
                 str(TINY_RESOLUTION), "--val-percent", "25"]) == 0
    return str(out)


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


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory) -> str:
    """A complete weights folder of tiny seeded (untrained) networks and a random bank."""
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("weights")
    configs = tiny_configs()
    SketchAutoencoder(configs["autoencoder"]).save_pretrained(folder / "autoencoder")
    Generator(configs["generator"]).save_pretrained(folder / "generator")
    SimpleGAN(configs["baseline"]).save_pretrained(folder / "baseline")
    latents = np.random.default_rng(0).standard_normal((40, TINY_LATENT)).astype(np.float32)
    LatentBank(latents).save(folder / "bank")
    write_manifest(folder)  # as training.export does; Hub repos must carry one
    return str(folder)
