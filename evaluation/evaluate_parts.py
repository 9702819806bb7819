"""What the per-part model (issue 15) promises, measured on val: locality, independence,
part neighbours, and a sample grid.

    python -m evaluation.evaluate_parts --weights weights/ --data data/ --out runs/parts_eval

- Locality: for each part, the face at every refine 1 against the face with only that
  part at refine 0, on degraded val sketches; the share of the absolute pixel change that
  lies inside the part's window (pooled over items, and the per-item median).
- Independence: each clean val sketch made symmetric (the left eye mirrored into the
  right window), and a copy with the right eye drawn closed (one arc). The gap between
  the two eye windows (mean |left - mirrored right|, 0-255) of the projected sketch and of
  the face, asymmetric minus symmetric, per system: the per-part model at refine 1, the
  whole-face model at refine 1 and 0. A model that keeps the closed eye keeps the gap.
- Part neighbours: per part, edge F1 (1 px) against the clean val part of the nearest
  training part as the part model finds it from the degraded sketch (by the part keys,
  `s2a.part_keys`, when it has them; "own bank": from the part's own latent in its bank,
  reported too) and of the nearest whole-face neighbour's sketch cropped to that part (the
  whole-face bank), with a 95 % bootstrap interval of the difference; a random training
  part for scale.

Realism and PSNR of the per-part model sit beside the others in `evaluation.evaluate`
(system "parts r=1"). Writes <out>/parts_eval.json, <out>/parts_eval.md and
<out>/parts_samples.png (rough input | per-part projection with its windows | face |
whole-face projection | face, and the independence pair). With --own-out PNG, the same
columns for faces the project draws itself (`drawn_face`), both eyes open and one closed
(no dataset image in it, so it may go into docs/).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image, ImageDraw
from tqdm import tqdm

from evaluation.evaluate import load_systems, load_val_split, sketch_batch, to_uint8_images
from evaluation.evaluate_autoencoder import bootstrap_interval
from s2a import Sketch2Anime
from s2a.metrics import edge_f1
from s2a.parts import PART_NAMES, WINDOWED_PARTS, PartWindow
from training.common import pick_device
from training.data import encode_sketches, load_split
from training.degrade import degrade_batch

NEIGHBOUR_TOLERANCE_PX = 1  # as evaluate_autoencoder's neighbour scores
GRID_ITEMS = 6
# The app's box colours (app.PART_SLIDERS), so a grid reads like the app's panel.
WINDOW_COLOURS = {"left_eye": (40, 110, 230), "right_eye": (30, 160, 70),
                  "nose": (240, 140, 20), "mouth": (220, 40, 60)}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weights", default="weights/", help="weights folder with parts/")
    parser.add_argument("--data", required=True, help="folder written by training.prepare_data")
    parser.add_argument("--out", required=True, help="folder for the report and the grid")
    parser.add_argument("--limit", type=int, default=300, help="val items (0 = all)")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0, help="seeds the degraded drawings")
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--own-out", default=None,
                        help="also write the own-drawings independence grid here (a PNG)")
    args = parser.parse_args(argv)
    if args.limit < 0 or args.k < 1 or args.batch_size < 1:
        parser.error("--limit must be >= 0, --k and --batch-size >= 1")
    if not (Path(args.data) / "meta.json").is_file():
        parser.error(f"--data {args.data} holds no prepared data (run training.prepare_data)")
    return args


def faces_of_parts(pipe: Sketch2Anime, sketches: np.ndarray, refine: dict[str, float],
                   k: int) -> tuple[np.ndarray, np.ndarray, dict]:
    """(B, R, R) uint8 sketches -> faces (B, R, R, 3) uint8, assembled projected sketches
    (B, R, R) uint8 and neighbours per part, with no hints."""
    hints = torch.zeros(len(sketches), 4, pipe.resolution, pipe.resolution)
    images, assembled, neighbors = pipe.generate_parts(sketch_batch(sketches), hints, refine, k)
    return to_uint8_images(images), to_uint8_images(assembled)[..., 0], neighbors


def faces_of_whole(pipe: Sketch2Anime, sketches: np.ndarray, refine: float,
                   k: int) -> tuple[np.ndarray, np.ndarray]:
    """The whole-face model's faces (B, R, R, 3) and projected sketches (B, R, R), uint8."""
    hints = torch.zeros(len(sketches), 4, pipe.resolution, pipe.resolution)
    images, latents, _ = pipe.generate(sketch_batch(sketches), hints, refine, k)
    return to_uint8_images(images), to_uint8_images(pipe.decode_projected(latents)[:, None])[..., 0]


def locality(pipe: Sketch2Anime, sketches: np.ndarray, k: int, batch_size: int) -> dict:
    """Per part: share of |face(all 1) - face(part at 0)| inside the part's window."""
    ones = dict.fromkeys(PART_NAMES, 1.0)
    inside = {name: [] for name in WINDOWED_PARTS}
    total = {name: [] for name in WINDOWED_PARTS}
    for start in tqdm(range(0, len(sketches), batch_size), desc="locality"):
        batch = sketches[start:start + batch_size]
        base, _, _ = faces_of_parts(pipe, batch, ones, k)
        for name in WINDOWED_PARTS:
            changed, _, _ = faces_of_parts(pipe, batch, {**ones, name: 0.0}, k)
            delta = np.abs(changed.astype(np.int32) - base.astype(np.int32)).sum(-1)  # (B, R, R)
            rows, cols = pipe.parts.windows[name].slices()
            inside[name] += list(delta[:, rows, cols].sum((1, 2)))
            total[name] += list(delta.sum((1, 2)))
    report = {}
    for name in WINDOWED_PARTS:
        ins, tot = np.array(inside[name], float), np.array(total[name], float)
        moved = tot > 0
        report[name] = {
            "share_inside_pooled": float(ins.sum() / max(tot.sum(), 1.0)),
            "share_inside_median": float(np.median(ins[moved] / tot[moved])) if moved.any()
            else float("nan"),
            "window_area_share": pipe.parts.windows[name].size ** 2 / pipe.resolution ** 2,
            "mean_abs_change": float(tot.mean() / pipe.resolution ** 2 / 3),
            "items_changed": int(moved.sum()),
        }
    return report


def closed_eye(size: int) -> np.ndarray:
    """A (size, size) uint8 window with a closed eye: one downward-bowed arc."""
    window = np.full((size, size), 255, np.uint8)
    centre = (size // 2, size // 2)
    cv2.ellipse(window, centre, (size * 11 // 32, size // 8), 0, 180, 360, 0, 1)
    return window


def eye_pairs(sketches: np.ndarray, left: PartWindow, right: PartWindow
              ) -> tuple[np.ndarray, np.ndarray]:
    """(N, R, R) sketches -> (symmetric: the left eye mirrored into the right window,
    asymmetric: the same with the right eye closed)."""
    symmetric = np.array(sketches)
    l_rows, l_cols = left.slices()
    r_rows, r_cols = right.slices()
    symmetric[:, r_rows, r_cols] = symmetric[:, l_rows, l_cols][:, :, ::-1]
    asymmetric = symmetric.copy()
    asymmetric[:, r_rows, r_cols] = closed_eye(right.size)
    return symmetric, asymmetric


def eye_gap(pictures: np.ndarray, left: PartWindow, right: PartWindow) -> np.ndarray:
    """(N, R, R[, 3]) -> (N,) mean |left window - mirrored right window|, 0-255 units."""
    l_rows, l_cols = left.slices()
    r_rows, r_cols = right.slices()
    a = pictures[:, l_rows, l_cols].astype(np.float32)
    b = pictures[:, r_rows, r_cols][:, :, ::-1].astype(np.float32)
    return np.abs(a - b).reshape(len(pictures), -1).mean(1)


def independence(pipe: Sketch2Anime, sketches: np.ndarray, k: int, batch_size: int
                 ) -> tuple[dict, dict]:
    """Eye-window gaps (asymmetric - symmetric) per system, and the pictures of the first
    items for the grid."""
    left, right = pipe.parts.windows["left_eye"], pipe.parts.windows["right_eye"]
    symmetric, asymmetric = eye_pairs(sketches, left, right)
    ones = dict.fromkeys(PART_NAMES, 1.0)
    systems = {
        "parts r=1": lambda s: faces_of_parts(pipe, s, ones, k)[:2],
        "method r=1": lambda s: faces_of_whole(pipe, s, 1.0, k),
        "method r=0": lambda s: faces_of_whole(pipe, s, 0.0, k),
    }
    report, shown = {}, {"symmetric": symmetric[:GRID_ITEMS], "asymmetric": asymmetric[:GRID_ITEMS]}
    for system, run in systems.items():
        gaps = {f"{kind}_{what}": [] for kind in ("symmetric", "asymmetric")
                for what in ("sketch", "face")}
        for start in tqdm(range(0, len(sketches), batch_size), desc=f"independence {system}"):
            for kind, drawn in (("symmetric", symmetric), ("asymmetric", asymmetric)):
                faces, projected = run(drawn[start:start + batch_size])
                gaps[f"{kind}_sketch"] += list(eye_gap(projected, left, right))
                gaps[f"{kind}_face"] += list(eye_gap(faces, left, right))
                if start == 0:
                    shown[f"{system} {kind}"] = (projected[:GRID_ITEMS], faces[:GRID_ITEMS])
        row = {}
        for what in ("sketch", "face"):
            kept = np.array(gaps[f"asymmetric_{what}"]) - np.array(gaps[f"symmetric_{what}"])
            low, high = bootstrap_interval(kept)
            row.update({f"{what}_gap_symmetric": float(np.mean(gaps[f"symmetric_{what}"])),
                        f"{what}_gap_asymmetric": float(np.mean(gaps[f"asymmetric_{what}"])),
                        f"{what}_kept": float(kept.mean()), f"{what}_kept_ci95": [low, high]})
        report[system] = row
    input_gap = eye_gap(asymmetric, left, right) - eye_gap(symmetric, left, right)
    report["input"] = {"sketch_kept": float(input_gap.mean())}
    return report, shown


def part_neighbours(pipe: Sketch2Anime, clean: np.ndarray, degraded: np.ndarray,
                    train: np.ndarray, k: int, seed: int) -> dict:
    """Per part: edge F1 to the clean val part of the nearest part neighbour (as the part
    model finds it: by the part keys when it has them, else in the part's own bank; both
    are reported) and of the nearest whole-face neighbour cropped, all found from the
    degraded drawing."""
    rng = np.random.default_rng(seed)
    cpu = torch.device("cpu")
    whole = pipe.bank.search(encode_sketches(pipe.autoencoder, degraded, 256, cpu), 1)[1][:, 0]
    batch = sketch_batch(degraded)
    crops = pipe.parts.inputs(batch)
    with torch.no_grad():
        latents = {n: pipe.parts.autoencoders[n].encode(crops[n]).numpy() for n in WINDOWED_PARTS}
    by_keys = pipe.parts.key_neighbors(batch, 1, own=latents)  # {part: (N, 1)}; {} without
    report = {}
    for name in WINDOWED_PARTS:
        rows, cols = pipe.parts.windows[name].slices()
        own = pipe.parts.banks[name].search(latents[name], 1)[1][:, 0]
        found = by_keys[name][:, 0] if name in by_keys else own
        scores = {"part_bank": [], "own_bank": [], "whole_bank_cropped": [], "random": []}
        for i in range(len(clean)):
            truth = clean[i, rows, cols]
            scores["part_bank"].append(edge_f1(truth, train[found[i], rows, cols],
                                               NEIGHBOUR_TOLERANCE_PX))
            scores["own_bank"].append(edge_f1(truth, train[own[i], rows, cols],
                                              NEIGHBOUR_TOLERANCE_PX))
            scores["whole_bank_cropped"].append(edge_f1(truth, train[whole[i], rows, cols],
                                                        NEIGHBOUR_TOLERANCE_PX))
            scores["random"].append(edge_f1(truth, train[rng.integers(len(train)), rows, cols],
                                            NEIGHBOUR_TOLERANCE_PX))
        gain = np.array(scores["part_bank"]) - np.array(scores["whole_bank_cropped"])
        low, high = bootstrap_interval(gain, seed)
        report[name] = {**{key: float(np.mean(v)) for key, v in scores.items()},
                        "search": "keys" if name in by_keys else "own bank",
                        "gain": float(gain.mean()), "gain_ci95": [low, high]}
    return report


def _tile(picture: np.ndarray) -> Image.Image:
    return Image.fromarray(picture).convert("RGB")


def with_windows(sketch: np.ndarray, windows: dict[str, PartWindow]) -> Image.Image:
    """A projected sketch (R, R) uint8 with each part's window outlined in its colour."""
    tile = _tile(sketch)
    draw = ImageDraw.Draw(tile)
    for name, window in windows.items():
        draw.rectangle([window.left, window.top, window.left + window.size - 1,
                        window.top + window.size - 1], outline=WINDOW_COLOURS[name])
    return tile


def sample_grid(pipe: Sketch2Anime, degraded: np.ndarray, shown: dict, k: int) -> Image.Image:
    """Rows of degraded val items and of the independence pairs; see the module docstring."""
    items = degraded[:GRID_ITEMS]
    faces_p, projected_p, _ = faces_of_parts(pipe, items, dict.fromkeys(PART_NAMES, 1.0), k)
    faces_w, projected_w = faces_of_whole(pipe, items, 1.0, k)
    rows = [[_tile(items[j]), with_windows(projected_p[j], pipe.parts.windows),
             _tile(faces_p[j]), _tile(projected_w[j]), _tile(faces_w[j])]
            for j in range(len(items))]
    for kind in ("symmetric", "asymmetric"):
        for j in range(min(3, len(shown[kind]))):
            parts_sketch, parts_face = (a[j] for a in shown[f"parts r=1 {kind}"])
            whole_sketch, whole_face = (a[j] for a in shown[f"method r=1 {kind}"])
            rows.append([_tile(shown[kind][j]), with_windows(parts_sketch, pipe.parts.windows),
                         _tile(parts_face), _tile(whole_sketch), _tile(whole_face)])
    side = pipe.resolution
    grid = Image.new("RGB", (5 * side, len(rows) * side), "white")
    for r, row in enumerate(rows):
        for c, tile in enumerate(row):
            grid.paste(tile, (c * side, r * side))
    return grid.resize((grid.width * 2, grid.height * 2), Image.Resampling.NEAREST)


def drawn_face(resolution: int, windows: dict[str, PartWindow], long_hair: bool = False
               ) -> np.ndarray:
    """A plain face drawn in 1 px lines like the training sketches, its eye, nose and
    mouth centred in their windows: (R, R) uint8, both eyes open (the left mirrored)."""
    face = np.full((resolution, resolution), 255, np.uint8)
    scale = resolution / 96
    at = lambda v: int(round(v * scale))  # noqa: E731
    cv2.ellipse(face, (at(48), at(50)), (at(36), at(42)), 0, 0, 180, 0, 1)  # jaw
    for x in range(at(16), at(80), at(8)):  # fringe
        cv2.line(face, (x, at(6)), (x + at(6), at(22)), 0, 1)
    cv2.ellipse(face, (at(48), at(40)), (at(38), at(34)), 0, 180, 360, 0, 1)  # skull
    if long_hair:
        for x in (at(10), at(14), at(82), at(86)):
            cv2.line(face, (x, at(30)), (x, at(94)), 0, 1)
    eye = windows["left_eye"]
    cx, cy = eye.left + eye.size // 2, eye.top + eye.size // 2 + at(2)
    cv2.ellipse(face, (cx, cy), (at(8), at(9)), 0, 0, 360, 0, 1)
    cv2.circle(face, (cx + at(1), cy + at(2)), at(4), 0, -1)
    cv2.line(face, (cx - at(10), cy - at(8)), (cx + at(9), cy - at(10)), 0, 2)  # lashes
    nose = windows["nose"]
    cv2.line(face, (nose.left + nose.size // 2, nose.top + nose.size // 2),
             (nose.left + nose.size // 2 - at(2), nose.top + nose.size // 2 + at(3)), 0, 1)
    mouth = windows["mouth"]
    cv2.ellipse(face, (mouth.left + mouth.size // 2, mouth.top + at(12)), (at(6), at(3)),
                0, 0, 180, 0, 1)
    return eye_pairs(face[None], windows["left_eye"], windows["right_eye"])[0][0]


def own_drawings_grid(pipe: Sketch2Anime, k: int) -> Image.Image:
    """Faces the project draws itself (`drawn_face`, short and long hair), each with both
    eyes open and with the right eye closed: drawn input | per-part projection | face |
    whole-face projection | face, at refine 1 and without hints."""
    left, right = pipe.parts.windows["left_eye"], pipe.parts.windows["right_eye"]
    faces = np.stack([drawn_face(pipe.resolution, pipe.parts.windows, hair)
                      for hair in (False, True)])
    symmetric, asymmetric = eye_pairs(faces, left, right)
    drawn = np.stack([d for pair in zip(symmetric, asymmetric) for d in pair])
    faces_p, projected_p, _ = faces_of_parts(pipe, drawn, dict.fromkeys(PART_NAMES, 1.0), k)
    faces_w, projected_w = faces_of_whole(pipe, drawn, 1.0, k)
    side = pipe.resolution
    grid = Image.new("RGB", (5 * side, len(drawn) * side), "white")
    for r in range(len(drawn)):
        tiles = [_tile(drawn[r]), with_windows(projected_p[r], pipe.parts.windows),
                 _tile(faces_p[r]), _tile(projected_w[r]), _tile(faces_w[r])]
        for c, tile in enumerate(tiles):
            grid.paste(tile, (c * side, r * side))
    return grid.resize((grid.width * 2, grid.height * 2), Image.Resampling.NEAREST)


def format_report(report: dict) -> str:
    lines = ["## Locality (degraded val sketches, no hints)", "",
             "| part | change inside window (pooled) | per-item median | window area | "
             "mean |Δ| per channel |", "|---|---|---|---|---|"]
    for name, row in report["locality"].items():
        lines.append(f"| {name} | {row['share_inside_pooled']:.3f} | "
                     f"{row['share_inside_median']:.3f} | {row['window_area_share']:.3f} | "
                     f"{row['mean_abs_change']:.2f} |")
    lines += ["", "## Independence (one eye closed; eye-window gap, asym - sym, 0-255)", "",
              "| system | sketch gap kept [95 % CI] | face gap kept [95 % CI] |", "|---|---|---|"]
    for system, row in report["independence"].items():
        if system == "input":
            lines.append(f"| drawn input | {row['sketch_kept']:.2f} | - |")
            continue
        lines.append(f"| {system} | {row['sketch_kept']:.2f} [{row['sketch_kept_ci95'][0]:.2f}, "
                     f"{row['sketch_kept_ci95'][1]:.2f}] | {row['face_kept']:.2f} "
                     f"[{row['face_kept_ci95'][0]:.2f}, {row['face_kept_ci95'][1]:.2f}] |")
    lines += ["", "## Nearest neighbour per part (degraded val; edge F1 1 px vs clean part)", "",
              "| part | part model (search) | own part bank | whole-face bank, cropped | "
              "random | gain [95 % CI] |", "|---|---|---|---|---|---|"]
    for name, row in report["neighbours"].items():
        lines.append(f"| {name} | {row['part_bank']:.3f} ({row['search']}) | "
                     f"{row['own_bank']:.3f} | "
                     f"{row['whole_bank_cropped']:.3f} | "
                     f"{row['random']:.3f} | {row['gain']:+.3f} [{row['gain_ci95'][0]:+.3f}, "
                     f"{row['gain_ci95'][1]:+.3f}] |")
    return "\n".join(lines) + "\n"


@torch.no_grad()
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        pipe, _ = load_systems(args.weights, None, pick_device(args.device))
        _, val = load_val_split(args.data, args.limit)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if not pipe.has_parts:
        print(f"error: {args.weights} has no per-part model (parts/)", file=sys.stderr)
        return 2
    _, train = load_split(args.data, "train")
    train = np.asarray(train)
    if len(train) != len(pipe.bank):
        print(f"error: the banks hold {len(pipe.bank)} sketches but {args.data} has "
              f"{len(train)} training sketches: not the data they were built from",
              file=sys.stderr)
        return 2
    degraded = degrade_batch(val, args.seed)
    k = min(args.k, len(pipe.bank))
    report = {"items": len(val), "k": k,
              "windows": {n: [w.top, w.left, w.size] for n, w in pipe.parts.windows.items()}}
    report["neighbours"] = part_neighbours(pipe, val, degraded, train, k, args.seed)
    report["locality"] = locality(pipe, degraded, k, args.batch_size)
    report["independence"], shown = independence(pipe, val, k, args.batch_size)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "parts_eval.json").write_text(json.dumps(report, indent=2) + "\n")
    text = format_report(report)
    (out / "parts_eval.md").write_text(text)
    sample_grid(pipe, degraded, shown, k).save(out / "parts_samples.png")
    print(text)
    print(f"Wrote {out / 'parts_eval.json'}, parts_eval.md and parts_samples.png")
    if args.own_out:
        Path(args.own_out).parent.mkdir(parents=True, exist_ok=True)
        own_drawings_grid(pipe, k).save(args.own_out)
        print(f"Wrote {args.own_out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
