"""Does face-aware framing put drawn faces where the training faces are?

    python -m evaluation.evaluate_face_locator --weights weights/ --data data/ --out runs/fl

- Held-out examples (`training.train_face_locator`'s kinds, made from the val split with
  another seed): the located box against the true one, in px of the 96 px framed input,
  beside keeping the extent framing (the identity box).
- Plain faces, a style the locator never saw in training (oval heads, a hairline, ring,
  dot or closed eyes, drawn with OpenCV at random size and place on the pad), and the
  project's four example drawings (`s2a.examples`; the training heads are drawn with the
  same parts, so these are not independent): where their known eyes land in the model
  input, as the distance (px at 96) from where the training faces have theirs, framed by
  the ink extent alone and with the locator.
- Tight val sketches (already framed like the training faces): the share the locator
  moves at all (it should leave them).
Writes <out>/face_locator_eval.json, .md and <out>/face_locator_samples.png (drawing
framed by the extent | by the locator, with the training eye spots marked, then the face
at refine 1 for each); only drawings the project makes, no dataset image.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image

from s2a import Sketch2Anime
from s2a.examples import EXAMPLE_EYES, example_sketches
from s2a.face_locator import (
    TRAINING_EYE_GAP,
    TRAINING_EYE_MIDDLE,
    TRAINING_EYE_ROW,
    FaceLocator,
)
from s2a.hub import FACE_LOCATOR_DIR
from s2a.sketch import normalize_sketch_and_frame
from training.data import load_split
from training.train_face_locator import errors_px, make_examples

PAD = 512


def plain_face(rng: np.random.Generator) -> tuple[np.ndarray, tuple[float, float, float]]:
    """A simple face in a style the locator was not trained on -> (PAD x PAD uint8, eyes
    (row, left column, right column) in px)."""
    c = np.full((PAD, PAD), 255, np.uint8)
    brush = int(rng.integers(2, 6))
    cx, cy = 256 + rng.uniform(-50, 50), 260 + rng.uniform(-50, 50)
    half_w = rng.uniform(90, 180)
    half_h = half_w * rng.uniform(1.05, 1.3)
    at = lambda x, y: (int(round(x)), int(round(y)))  # noqa: E731
    cv2.ellipse(c, at(cx, cy), at(half_w, half_h), 0, 0, 360, 0, brush, cv2.LINE_AA)
    hairline = cy - half_h * rng.uniform(0.2, 0.45)
    cv2.ellipse(c, at(cx, hairline), at(half_w * 0.97, half_h * 0.5), 0, 180, 360, 0, brush,
                cv2.LINE_AA)
    for x in np.linspace(cx - half_w * 0.7, cx + half_w * 0.7, int(rng.integers(3, 8))):
        cv2.line(c, at(x, cy - half_h * 0.95), at(x + rng.uniform(-20, 20), hairline), 0, brush)
    eye_row = cy + half_h * rng.uniform(-0.05, 0.15)
    gap = half_w * rng.uniform(0.36, 0.5)
    size = half_w * rng.uniform(0.12, 0.2)
    kind = rng.choice(["ring", "dot", "closed"], p=[0.6, 0.25, 0.15])
    for x in (cx - gap, cx + gap):
        if kind == "ring":
            cv2.ellipse(c, at(x, eye_row), at(size, size * 1.2), 0, 0, 360, 0, brush, cv2.LINE_AA)
            cv2.circle(c, at(x, eye_row + size * 0.2), int(size * 0.5), 0, -1, cv2.LINE_AA)
        elif kind == "dot":
            cv2.circle(c, at(x, eye_row), int(size * 0.6), 0, -1, cv2.LINE_AA)
        else:
            cv2.ellipse(c, at(x, eye_row), at(size, size * 0.6), 0, 180, 360, 0, brush + 1,
                        cv2.LINE_AA)
    mouth = eye_row + half_w * rng.uniform(0.55, 0.8)
    cv2.line(c, at(cx, (eye_row + mouth) / 2 - 8), at(cx - 5, (eye_row + mouth) / 2 + 8), 0,
             brush)
    cv2.ellipse(c, at(cx, mouth), at(half_w * 0.18, half_w * 0.08), 0, 0, 180, 0, brush,
                cv2.LINE_AA)
    return c, (eye_row, cx - gap, cx + gap)


def eyes_in_input(eyes: tuple, frame: tuple | None, side_px: int, resolution: int) -> np.ndarray:
    """Eye centres (row, left, right) in px of a side_px square drawing -> (2, 2) (row,
    column) of each eye in the resolution-px model input cropped with `frame`."""
    top, left, side = frame or (0.0, 0.0, 1.0)
    row, lx, rx = (v / side_px for v in eyes)
    return np.array([[(row - top) / side, (x - left) / side] for x in (lx, rx)]) * resolution


def eye_miss(eyes_96: np.ndarray, resolution: int) -> float:
    """Mean distance (px) of the two eyes from where the training faces have theirs."""
    spots = np.array([[TRAINING_EYE_ROW, TRAINING_EYE_MIDDLE - TRAINING_EYE_GAP / 2],
                      [TRAINING_EYE_ROW, TRAINING_EYE_MIDDLE + TRAINING_EYE_GAP / 2]])
    return float(np.linalg.norm(eyes_96 - spots * resolution, axis=1).mean())


def frames(pipe: Sketch2Anime, drawing: Image.Image):
    """(the ink-extent frame, the frame `pipe` crops with: the located one, or the extent
    one where the locator keeps it, whether the locator moved it)."""
    _, extent = normalize_sketch_and_frame(drawing, pipe.resolution)
    _, used = pipe.framed_sketch_tensor(drawing)
    return extent, used, used != extent


def landing(pipe: Sketch2Anime, drawings) -> dict:
    extent, located, used = [], [], 0
    resolution = pipe.resolution
    for image, eyes in drawings:
        a, b, moved = frames(pipe, Image.fromarray(image, "L"))
        extent.append(eye_miss(eyes_in_input(eyes, a, image.shape[0], resolution), resolution))
        located.append(eye_miss(eyes_in_input(eyes, b, image.shape[0], resolution), resolution))
        used += moved
    extent, located = np.array(extent), np.array(located)
    return {"items": len(extent), "located_share": used / len(extent),
            "extent_miss_px_median": float(np.median(extent)),
            "located_miss_px_median": float(np.median(located)),
            "extent_miss_px_mean": float(extent.mean()),
            "located_miss_px_mean": float(located.mean()),
            "better_share": float(np.mean(located < extent - 0.5)),
            "worse_share": float(np.mean(located > extent + 0.5))}


def sample_grid(pipe: Sketch2Anime, drawings) -> Image.Image:
    r = pipe.resolution
    rows = []
    for image, _ in drawings:
        drawing = Image.fromarray(image, "L")
        locator, pipe.face_locator = pipe.face_locator, None
        extent, _ = pipe.framed_sketch_tensor(drawing)
        pipe.face_locator = locator
        located, _ = pipe.framed_sketch_tensor(drawing)
        tiles = []
        for sketch in (extent, located):
            grey = (sketch[0, 0].cpu().numpy() * 255).astype(np.uint8)
            tile = np.stack([grey] * 3, -1)
            for dx in (-TRAINING_EYE_GAP / 2, TRAINING_EYE_GAP / 2):
                spot = (int((TRAINING_EYE_MIDDLE + dx) * r), int(TRAINING_EYE_ROW * r))
                cv2.circle(tile, spot, 3, (230, 40, 40), 1)
            tiles.append(tile)
        for sketch in (extent, located):
            face = pipe.generate(sketch, torch.zeros(1, 4, r, r), 1.0)[0][0]
            tiles.append((face.permute(1, 2, 0).clamp(0, 1).cpu().numpy() * 255).astype(np.uint8))
        rows.append(np.concatenate(tiles, 1))
    grid = np.concatenate(rows, 0)
    return Image.fromarray(grid).resize((grid.shape[1] * 2, grid.shape[0] * 2), Image.NEAREST)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weights", default="weights/", help="weights folder with "
                        f"{FACE_LOCATOR_DIR}/ (or a face locator folder with --locator)")
    parser.add_argument("--locator", default=None, help="face locator folder (default: "
                        f"<weights>/{FACE_LOCATOR_DIR})")
    parser.add_argument("--data", required=True, help="folder written by training.prepare_data")
    parser.add_argument("--out", required=True)
    parser.add_argument("--items", type=int, default=300, help="items per test set")
    parser.add_argument("--seed", type=int, default=7)
    return parser.parse_args(argv)


@torch.no_grad()
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    folder = Path(args.locator or Path(args.weights) / FACE_LOCATOR_DIR)
    if not (folder / "config.json").is_file():
        print(f"error: no face locator in {folder}", file=sys.stderr)
        return 2
    locator = FaceLocator.from_pretrained(folder).eval()
    pipe = Sketch2Anime.from_pretrained(args.weights)
    pipe.face_locator = locator
    r = locator.config.resolution
    _, val = load_split(args.data, "val")
    val = np.asarray(val)
    report = {"locator": str(folder)}
    x, y = make_examples(val, args.items, args.seed, r, 2, "held-out examples")
    predicted = torch.cat([locator(torch.from_numpy(x[i:i + 256])) for i in range(0, len(x), 256)])
    target = torch.from_numpy(y)
    report["held_out_examples"] = {
        "located": errors_px(predicted, target, r),
        "extent_only": errors_px(torch.tensor([[0.5, 0.5, 0.0]]).expand_as(target), target, r)}
    rng = np.random.default_rng(args.seed)
    plain = [plain_face(rng) for _ in range(args.items)]
    report["plain_faces"] = landing(pipe, plain)
    own = [(np.asarray(image), EXAMPLE_EYES[name]) for name, image in example_sketches().items()]
    report["example_drawings"] = landing(pipe, own)
    tight = val[rng.choice(len(val), min(args.items, len(val)), replace=False)]
    moved = sum(frames(pipe, Image.fromarray(s, "L"))[2] for s in tight)
    report["tight_val_moved_share"] = moved / len(tight)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "face_locator_eval.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = ["| test | items | eyes' miss, extent framing (median px) | with the locator | "
             "located | better / worse |", "|---|---|---|---|---|---|"]
    for name in ("plain_faces", "example_drawings"):
        row = report[name]
        lines.append(f"| {name} | {row['items']} | {row['extent_miss_px_median']:.1f} | "
                     f"{row['located_miss_px_median']:.1f} | {row['located_share']:.2f} | "
                     f"{row['better_share']:.2f} / {row['worse_share']:.2f} |")
    held = report["held_out_examples"]
    lines += ["", "Held-out examples: box centre error median "
              f"{held['located']['centre_px_median']:.1f} px (extent only "
              f"{held['extent_only']['centre_px_median']:.1f}), side error "
              f"{held['located']['side_error_median']:.3f} "
              f"({held['extent_only']['side_error_median']:.3f}). Tight val sketches moved: "
              f"{report['tight_val_moved_share']:.2f}."]
    text = "\n".join(lines) + "\n"
    (out / "face_locator_eval.md").write_text(text)
    sample_grid(pipe, own + plain[:6]).save(out / "face_locator_samples.png")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
