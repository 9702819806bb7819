"""Where the face parts sit in the training sketches, and how many faces the windows cover.

    python -m training.part_windows --data data/

For each training sketch (or a random --sample of them) the ink is blurred (sigma 3 px)
and its peak found inside a search region per part (generous boxes around where eyes,
nose and mouth are drawn); the peak positions' mean and spread say where the part sits.
Coverage is the share of faces whose peak lies inside the part's window (`s2a.parts`,
scaled to the data's resolution). A peak is a proxy for the part: a hair strand or the
chin line can be darker than a faint eye or mouth, so the figures are lower bounds.
"""

from __future__ import annotations

import argparse
import json

import cv2
import numpy as np

from s2a.parts import scaled_windows
from training.data import data_resolution, load_split

# Search regions at 96 px, (top, bottom, left, right): wide enough to hold every
# plausible position of the part, clear of the other parts' centres.
SEARCH_96 = {"left_eye": (16, 64, 4, 48), "right_eye": (16, 64, 48, 92),
             "nose": (44, 66, 34, 62), "mouth": (58, 84, 30, 66)}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="folder written by training.prepare_data")
    parser.add_argument("--sample", type=int, default=5000, help="sketches to look at (0 = all)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.sample < 0:
        parser.error("--sample must be at least 0")
    return args


def ink_peaks(sketches: np.ndarray, regions: dict[str, tuple[int, int, int, int]],
              sigma: float = 3.0) -> dict[str, np.ndarray]:
    """(N, R, R) uint8 sketches -> {part: (N, 2) (row, col) of the blurred ink's peak
    inside the part's search region}."""
    peaks = {name: np.zeros((len(sketches), 2), int) for name in regions}
    for i, sketch in enumerate(sketches):
        ink = cv2.GaussianBlur((sketch < 128).astype(np.float32), (0, 0), sigma)
        for name, (top, bottom, left, right) in regions.items():
            region = ink[top:bottom, left:right]
            row, col = np.unravel_index(int(region.argmax()), region.shape)
            peaks[name][i] = (row + top, col + left)
    return peaks


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    resolution = data_resolution(args.data)
    _, sketches = load_split(args.data, "train")
    if args.sample and args.sample < len(sketches):
        rows = np.sort(np.random.default_rng(args.seed).choice(len(sketches), args.sample,
                                                               replace=False))
        sketches = sketches[rows]
    sketches = np.asarray(sketches)
    scale = resolution / 96
    regions = {n: tuple(int(round(v * scale)) for v in box) for n, box in SEARCH_96.items()}
    windows = scaled_windows(resolution, 8)  # as training.train_parts cuts them
    peaks = ink_peaks(sketches, regions)
    report = {"sketches": len(sketches), "resolution": resolution, "parts": {}}
    for name, found in peaks.items():
        window = windows[name]
        rows, cols = window.slices()
        inside = ((found[:, 0] >= rows.start) & (found[:, 0] < rows.stop)
                  & (found[:, 1] >= cols.start) & (found[:, 1] < cols.stop))
        report["parts"][name] = {
            "peak_mean": found.mean(0).round(1).tolist(),
            "peak_std": found.std(0).round(1).tolist(),
            "window": [window.top, window.left, window.size], "coverage": float(inside.mean())}
        print(f"{name:9s} peak (row, col) mean {found.mean(0).round(1)} std "
              f"{found.std(0).round(1)}; window {window} covers {inside.mean():.1%}")
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
