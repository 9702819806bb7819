"""Datasets over the arrays written by training.prepare_data."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm import tqdm

from s2a.hints import hints_to_array
from training.simulate_hints import simulate_hints


def load_split(data: str | Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Memory-mapped (images (N, R, R, 3), sketches (N, R, R)) uint8 arrays of a split."""
    folder = Path(data)
    if not (folder / "meta.json").is_file():
        raise ValueError(
            f"{folder} holds no prepared data (no meta.json): run "
            "`python -m training.prepare_data --images PATH --out DIR` first."
        )
    images = np.load(folder / f"{split}_images.npy", mmap_mode="r")
    sketches = np.load(folder / f"{split}_sketches.npy", mmap_mode="r")
    if len(images) != len(sketches) or len(images) == 0:
        raise ValueError(f"{folder}: the {split} split is empty or its arrays disagree.")
    return images, sketches


def data_resolution(data: str | Path) -> int:
    """The resolution the data was prepared at (from meta.json)."""
    return int(json.loads((Path(data) / "meta.json").read_text())["config"]["resolution"])


def sketch_to_tensor(sketch: np.ndarray) -> torch.Tensor:
    """(R, R) uint8, 0 = ink -> (1, R, R) float in [0, 1], 1 = paper."""
    return torch.from_numpy(np.ascontiguousarray(sketch, dtype=np.float32) / 255.0)[None]


@torch.no_grad()
def encode_sketches(model, sketches: np.ndarray, batch_size: int, device: torch.device,
                    progress: bool = True) -> np.ndarray:
    """(N, R, R) uint8 sketches -> (N, d) float32 latents of a SketchAutoencoder, in batches
    (with a progress bar unless `progress` is False)."""
    latents = []
    for start in tqdm(range(0, len(sketches), batch_size), desc="encode", unit="batch",
                      disable=not progress):
        batch = torch.stack([sketch_to_tensor(s) for s in sketches[start : start + batch_size]])
        latents.append(model.encode(batch.to(device)).cpu().numpy())
    return np.concatenate(latents).astype(np.float32)


def image_to_tensor(image: np.ndarray) -> torch.Tensor:
    """(R, R, 3) uint8 -> (3, R, R) float in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32) / 255.0).permute(2, 0, 1)


def thicken(sketch: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Randomly thicken the lines (users' strokes are 1-2 px after normalisation, not 1)."""
    if rng.random() < 0.5:
        return sketch
    return cv2.erode(sketch, np.ones((2, 2), np.uint8))  # erode the paper = dilate the ink


class SketchDataset(Dataset):
    """Training sketches for the autoencoder: (input, target), both (1, R, R).

    With `augment`, the input gets random flips and line thickness and the target is the
    clean (flipped) sketch, so the encoder learns to read users' heavier lines.
    """

    def __init__(self, sketches: np.ndarray, augment: bool = False, seed: int = 0):
        self.sketches = sketches
        self.augment = augment
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.sketches)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        sketch = np.asarray(self.sketches[index])
        if not self.augment:
            tensor = sketch_to_tensor(sketch)
            return tensor, tensor
        rng = np.random.default_rng([self.seed, self.epoch, index])
        if rng.random() < 0.5:
            sketch = sketch[:, ::-1]
        return sketch_to_tensor(thicken(sketch, rng)), sketch_to_tensor(sketch)


class FaceDataset(Dataset):
    """(sketch (1, R, R), image (3, R, R), hints (4, R, R)) with simulated colour hints.

    Hints are simulated afresh every epoch (seeded by seed, epoch and index), so the
    generator sees many hint layouts per face; `augment` adds horizontal flips.
    """

    def __init__(self, images: np.ndarray, sketches: np.ndarray, augment: bool = False,
                 seed: int = 0):
        self.images = images
        self.sketches = sketches
        self.augment = augment
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng([self.seed, self.epoch if self.augment else 0, index])
        image, sketch = np.asarray(self.images[index]), np.asarray(self.sketches[index])
        if self.augment and rng.random() < 0.5:
            image, sketch = image[:, ::-1], sketch[:, ::-1]
        image = np.ascontiguousarray(image)
        hints = np.asarray(simulate_hints(image, rng))  # (R, R, 4) uint8
        resolution = image.shape[0]
        return (
            sketch_to_tensor(sketch),
            image_to_tensor(image),
            torch.from_numpy(hints_to_array(hints, resolution)),
        )
