"""Shared fixtures only: a folder of generated faces, prepared data and a tiny weights folder.

Nothing here reads ../shared: every picture is drawn by the tests themselves. Helpers
that tests import (tiny sizes, configs, drawn faces) live in tests/helpers.py.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from s2a.manifest import write_manifest
from s2a.models import Generator, SimpleGAN, SketchAutoencoder
from s2a.projection import LatentBank
from tests.helpers import TINY_LATENT, TINY_RESOLUTION, cartoon_face, tiny_configs


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
