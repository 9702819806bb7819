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
from s2a.models import Generator, SimpleGAN, SketchAutoencoder, SketchAutoencoderConfig
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


@pytest.fixture(scope="module")
def whole_pipe(tiny_weights):
    """The pipeline of `tiny_weights` (no per-part model)."""
    from s2a import Sketch2Anime

    return Sketch2Anime.from_pretrained(tiny_weights)


@pytest.fixture(scope="module")
def part_pipe(tiny_part_weights):
    """The pipeline of `tiny_part_weights` (with a per-part model)."""
    from s2a import Sketch2Anime

    return Sketch2Anime.from_pretrained(tiny_part_weights)


@pytest.fixture(scope="session")
def tiny_part_weights(tiny_weights, tmp_path_factory) -> str:
    """`tiny_weights` plus a per-part model (parts/): tiny seeded part autoencoders at the
    scaled default windows and random banks of as many sketches as the whole-face bank."""
    import shutil

    from s2a.parts import PART_NAMES, WINDOWED_PARTS, PartModel, scaled_windows

    torch.manual_seed(1)
    folder = tmp_path_factory.mktemp("part_weights") / "weights"
    shutil.copytree(tiny_weights, folder)
    windows = scaled_windows(TINY_RESOLUTION, 2)
    autoencoders = {n: SketchAutoencoder(SketchAutoencoderConfig(
        resolution=windows[n].size, latent_dim=8, channels=(8,))) for n in WINDOWED_PARTS}
    rest = SketchAutoencoder.from_pretrained(folder / "autoencoder")
    rng = np.random.default_rng(1)
    banks = {n: LatentBank(rng.standard_normal(
        (40, TINY_LATENT if n == "rest" else 8)).astype(np.float32), metric="cosine")
        for n in PART_NAMES}
    PartModel(windows, autoencoders, banks, rest).save(folder / "parts")
    write_manifest(folder)
    return str(folder)
