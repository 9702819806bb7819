"""Train the face locator (`s2a.face_locator`): where a drawn face's training crop lies.

    python -m training.train_face_locator --data data/ --out runs/face_locator

Examples, each run through the pipeline's own "frame" step (`normalize_sketch_and_frame`)
so the network sees what it will see in the app, labelled with the box of the training
framing inside that framed drawing:
- training sketches (clean, amateur redrawings from `training.degrade`, or thickened)
  placed at a random size and position on a white pad: the box is where the crop went;
- whole heads the project draws itself (`s2a.examples`' parts with random proportions,
  eyes open or closed, long hair or not, then scaled, turned and moved on the pad): the
  box puts their known eyes where the training faces have theirs (`eye_box`).
Validation: the same kinds made from the val split and other seeds; the error is the
box centre's distance and the side's ratio, in px of the 96 px framed input.
Writes <out>/face_locator (config.json + model.safetensors) and <out>/metrics.json.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from multiprocessing import Pool
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from s2a import examples as ex
from s2a.face_locator import FaceLocator, FaceLocatorConfig, box_to_target, eye_box
from s2a.sketch import normalize_sketch_and_frame
from training.data import load_split, thicken
from training.degrade import amateur_sketch

PAD = 256  # the pad training sketches are placed on
HEAD_SHARE = 0.4  # share of examples that are drawn heads


def place_on_pad(sketch: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, tuple]:
    """A (R, R) uint8 training sketch at a random size and place on a white PAD x PAD
    pad (up to 15 % of it may run off an edge) -> (pad, its box in fractions of PAD)."""
    side = int(round(rng.uniform(0.3, 1.0) * PAD))
    top = int(round(rng.uniform(-0.15 * side, PAD - 0.85 * side)))
    left = int(round(rng.uniform(-0.15 * side, PAD - 0.85 * side)))
    ink = 255 - cv2.resize(sketch, (side, side), interpolation=cv2.INTER_AREA)
    pad = np.zeros((PAD, PAD), np.uint8)
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + side, PAD), min(left + side, PAD)
    pad[y0:y1, x0:x1] = ink[y0 - top:y1 - top, x0 - left:x1 - left]
    return 255 - pad, (top / PAD, left / PAD, side / PAD)


def drawn_head(rng: np.random.Generator) -> tuple[np.ndarray, tuple]:
    """A whole head drawn with `s2a.examples`' parts, random proportions and placement
    -> (SIZE x SIZE uint8, its training-framing box in fractions of SIZE)."""
    c = np.full((ex.SIZE, ex.SIZE), ex.PAPER, np.uint8)
    cx, ey = 256.0 + rng.uniform(-10, 10), rng.uniform(290, 330)
    gap = rng.uniform(48, 68)  # half the distance between the eye centres
    width = gap * rng.uniform(2.3, 2.9)
    top = ey - rng.uniform(200, 260)
    ex._hair_cap(c, rng, cx, top, width, bottom=ey - rng.uniform(-10, 30))
    n = int(rng.integers(5, 9))
    xs = np.linspace(cx - width * 0.88, cx + width * 0.88, n)
    tips = [(x, ey - (rng.uniform(0, 25) if i in (0, n - 1) else rng.uniform(40, 100)))
            for i, x in enumerate(xs)]
    ex._fringe(c, rng, tips, (cx + rng.uniform(-15, 15), top + rng.uniform(35, 60)),
               rng.uniform(0.45, 0.65))
    chin = ey + rng.uniform(120, 155)
    ex._face_outline(c, rng, cx, chin, gap * rng.uniform(1.9, 2.3), chin - rng.uniform(60, 80),
                     ey - rng.uniform(40, 80), rng.uniform(-8, 8))
    size = gap / 58 * rng.uniform(0.8, 1.1)
    closed = rng.random() < 0.2
    look = (rng.uniform(-1, 1), rng.uniform(-0.3, 0.3))
    for side, x in ((-1, cx - gap), (1, cx + gap)):
        ex._eye(c, rng, (x, ey), side, look, size, closed or rng.random() < 0.05)
        if rng.random() < 0.8:
            ex._eyebrow(c, rng, (x, ey - rng.uniform(38, 60)), side, rng.uniform(-5, 6))
    if rng.random() < 0.85:
        ex._nose(c, rng, cx + rng.uniform(-6, 10), ey + rng.uniform(38, 60))
    ex._mouth(c, rng, cx + rng.uniform(-5, 10), ey + rng.uniform(80, 105),
              str(rng.choice(["small", "smile", "side"])))
    if rng.random() < 0.5:  # long strands down past the chin
        for side in (-1, 1):
            x0 = cx + side * width * 0.98
            ex._line(c, ex._bezier((x0, ey - 10), (x0 + side * 10, ey + 70),
                                   (x0 + side * 25, ey + 130), (x0 + side * 20, ey + 190)), rng)
    # Scaled, turned and moved as a whole: people draw big, small, anywhere.
    scale, angle = rng.uniform(0.45, 1.15), rng.uniform(-6, 6)
    matrix = cv2.getRotationMatrix2D((256.0, 300.0), angle, scale)
    matrix[:, 2] += rng.uniform(-90, 90, 2) * np.array([1.0, 0.8])
    c = cv2.warpAffine(c, matrix, (ex.SIZE, ex.SIZE), flags=cv2.INTER_AREA,
                       borderValue=ex.PAPER)
    (lx, ly), (rx, ry) = (matrix @ np.array([cx - gap, ey, 1.0]),
                          matrix @ np.array([cx + gap, ey, 1.0]))
    box = eye_box((ly + ry) / 2, lx, rx)  # the tilt is small: the level eye line's box
    return c, tuple(v / ex.SIZE for v in box)


def framed_example(drawing: np.ndarray, box: tuple, resolution: int
                   ) -> tuple[np.ndarray, tuple] | None:
    """The drawing through the "frame" step -> ((R, R) float32 input, target) with the
    box re-expressed in the framed crop's fractions; None when there is nothing drawn."""
    try:
        array, frame = normalize_sketch_and_frame(Image.fromarray(drawing, "L"), resolution)
    except ValueError:
        return None
    f_top, f_left, f_side = frame or (0.0, 0.0, 1.0)
    top, left, side = box
    relative = ((top - f_top) / f_side, (left - f_left) / f_side, side / f_side)
    return array, box_to_target(relative)


def make_example(args: tuple) -> tuple[np.ndarray, tuple] | None:
    """One example from (seed, training sketch or None for a drawn head, resolution)."""
    seed, sketch, resolution = args
    rng = np.random.default_rng(seed)
    if sketch is None:
        drawing, box = drawn_head(rng)
    else:
        style = rng.random()
        if style < 0.4:
            sketch = amateur_sketch(sketch, rng)
        elif style < 0.7:
            sketch = thicken(thicken(sketch, rng), rng)
        drawing, box = place_on_pad(sketch, rng)
    return framed_example(drawing, box, resolution)


def make_examples(sketches: np.ndarray, count: int, seed: int, resolution: int,
                  workers: int, desc: str) -> tuple[np.ndarray, np.ndarray]:
    """`count` examples (HEAD_SHARE drawn heads) -> inputs (N, 1, R, R), targets (N, 3)."""
    rng = np.random.default_rng(seed)
    jobs = [(seed * 1_000_003 + i,
             None if rng.random() < HEAD_SHARE else sketches[rng.integers(len(sketches))],
             resolution) for i in range(count)]
    with Pool(workers) as pool:
        made = [m for m in tqdm(pool.imap(make_example, jobs, chunksize=64), total=count,
                                desc=desc) if m is not None]
    inputs = np.stack([m[0] for m in made])[:, None].astype(np.float32)
    return inputs, np.array([m[1] for m in made], np.float32)


def errors_px(predicted: torch.Tensor, target: torch.Tensor, resolution: int) -> dict:
    """Box centre distance (px) and side ratio error, median and 90th percentile."""
    centre = (predicted[:, :2] - target[:, :2]).norm(dim=1) * resolution
    ratio = (predicted[:, 2] - target[:, 2]).abs().exp() - 1.0
    return {"centre_px_median": float(centre.median()),
            "centre_px_p90": float(centre.quantile(0.9)),
            "side_error_median": float(ratio.median()),
            "side_error_p90": float(ratio.quantile(0.9))}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="folder written by training.prepare_data")
    parser.add_argument("--out", required=True, help="run folder")
    parser.add_argument("--examples", type=int, default=16_000, help="training examples made")
    parser.add_argument("--val-examples", type=int, default=1_000)
    parser.add_argument("--minutes", type=float, default=10.0, help="training time")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2, help="processes making examples")
    args = parser.parse_args(argv)
    counts = (args.examples, args.val_examples, args.batch_size, args.workers)
    if min(counts) < 1 or args.minutes <= 0:
        parser.error("--examples, --val-examples, --batch-size and --workers must be >= 1, "
                     "--minutes > 0")
    if not (Path(args.data) / "meta.json").is_file():
        parser.error(f"--data {args.data} holds no prepared data (run training.prepare_data)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.manual_seed(args.seed)
    _, train = load_split(args.data, "train")
    _, val = load_split(args.data, "val")
    config = FaceLocatorConfig(resolution=int(train.shape[-1]))
    x, y = make_examples(np.asarray(train), args.examples, args.seed + 1, config.resolution,
                         args.workers, "examples")
    vx, vy = make_examples(np.asarray(val), args.val_examples, args.seed + 2, config.resolution,
                           args.workers, "val examples")
    x, y, vx, vy = map(torch.from_numpy, (x, y, vx, vy))
    model = FaceLocator(config)
    optimiser = torch.optim.Adam(model.parameters(), lr=args.lr)
    start, step, seen = time.monotonic(), 0, 0
    budget = args.minutes * 60
    progress = tqdm(desc="face locator", unit="step")
    while (elapsed := time.monotonic() - start) < budget:
        for group in optimiser.param_groups:  # cosine decay over the time budget
            group["lr"] = args.lr * 0.5 * (1 + math.cos(math.pi * elapsed / budget))
        rows = torch.randint(len(x), (args.batch_size,))
        batch = x[rows]
        flip = torch.rand(len(rows)) < 0.5  # a mirrored face: its box mirrors too
        batch[flip] = batch[flip].flip(-1)
        target = y[rows].clone()
        target[flip, 1] = 1.0 - target[flip, 1]
        loss = torch.nn.functional.smooth_l1_loss(model(batch), target, beta=0.05)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        step, seen = step + 1, seen + len(rows)
        progress.update()
        if step % 100 == 0:
            progress.set_postfix(loss=f"{loss.item():.4f}")
    progress.close()
    model.eval()
    with torch.no_grad():
        predicted = torch.cat([model(vx[i:i + 256]) for i in range(0, len(vx), 256)])
    metrics = {"steps": step, "examples_seen": seen, "minutes": args.minutes,
               "train_examples": len(x), "val_examples": len(vx),
               "val": errors_px(predicted, vy, config.resolution),
               "val_identity": errors_px(torch.tensor([[0.5, 0.5, 0.0]]).expand_as(vy), vy,
                                         config.resolution)}
    out = Path(args.out)
    model.save_pretrained(out / "face_locator")
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    print(json.dumps(metrics, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
