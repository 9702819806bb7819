"""Is the realism score sensitive? KID of real, degraded real and generated faces, one table.

    python -m evaluation.kid_sensitivity --weights weights/ --data data/ --out runs/kid_sensitivity
    python -m evaluation.kid_sensitivity ... --compare v1.0=runs/v1/weights

Every row is scored against the real val faces: a same-size sample of real training faces
(the floor: same distribution, other images), that sample blurred at two strengths and
noised, and the faces each system draws from the val sketches (clean and degraded, a fixed
number of simulated hints, as `evaluation.evaluate` does). `--compare NAME=FOLDER` adds the
method rows (and the SimpleGAN rows, when FOLDER has a baseline/) of another weights folder.
Columns: KID x 1000 with its bootstrap interval on the fixed realism net, and the
classifier two-sample accuracy of `evaluation.realism` for comparison.

Writes <out>/kid_sensitivity.json and <out>/kid_sensitivity.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from evaluation.evaluate import (
    available_systems,
    hints_batch,
    load_systems,
    load_val_split,
    make_sketch_sets,
    run_system,
    simulate_item_hints,
)
from evaluation.kid import kid
from evaluation.realism import RealismConfig, two_sample_accuracy
from evaluation.realism_net import (
    BUNDLED_REALISM,
    add_noise,
    extract_features,
    gaussian_blur,
    load_realism_net,
)
from s2a.hub import BASELINE_DIR
from training.common import pick_device
from training.data import load_split

BLUR_SIGMAS = (0.5, 1.0)  # px: they bracket the v0.3 faces
NOISE_STD = 0.04  # in [0, 1] units, about 10 grey levels
TABLE_HEADER = ("| faces | KID x1000 [95 % CI] (lower is better) | two-sample accuracy "
                "(0.5 = real) | N |")


def degrade_real(images: np.ndarray, kind: str, amount: float, seed: int) -> np.ndarray:
    """(N, R, R, 3) uint8 faces blurred (`kind` "blur", sigma px) or noised ("noise", std)."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255.0
    if kind == "blur":
        x = gaussian_blur(x, amount)
    else:
        x = add_noise(x, amount, torch.Generator().manual_seed(seed))
    return (x.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).numpy()


def generated_sets(weights: str, baseline: str | None, images: np.ndarray,
                   sketches: dict[str, np.ndarray], hints: int, k: int, seed: int,
                   batch_size: int, device: torch.device, prefix: str = ""
                   ) -> dict[str, np.ndarray]:
    """{label: (N, R, R, 3) faces} for every system of a weights folder and sketch set."""
    pipe, model = load_systems(weights, baseline, device)
    systems = available_systems(pipe, model)
    k = min(k, len(pipe.bank))
    out = {f"{prefix}{system}, {name} sketches": np.zeros_like(images)
           for name in sketches for system in systems}
    for start in tqdm(range(0, len(images), batch_size), desc=f"generate {prefix or weights}"):
        items = np.arange(start, min(start + batch_size, len(images)))  # (B,)
        layers = np.stack([simulate_item_hints(images[i], int(i), hints, seed) for i in items])
        hint_input = hints_batch(layers, pipe.resolution)  # (B, 4, R, R)
        for name, sketch_set in sketches.items():
            for system in systems:
                out[f"{prefix}{system}, {name} sketches"][items] = run_system(
                    system, pipe, model, np.asarray(sketch_set[items]), hint_input, k)
    return out


def sensitivity_rows(sets: dict[str, np.ndarray], real: np.ndarray, net, seed: int,
                     two_sample: bool, epochs: int) -> list[dict]:
    """One row per face set: KID against `real` (with interval) and the two-sample accuracy."""
    real_features = extract_features(net, real)
    rows = []
    for label, faces in tqdm(sets.items(), desc="score"):
        result = kid(real_features, extract_features(net, faces), seed=seed)
        row = {"faces": label, **{f"kid_{key}" if key in ("value", "low", "high") else key: value
                                  for key, value in result.as_dict().items()}}
        row["realism_accuracy"] = (two_sample_accuracy(real, faces, RealismConfig(
            epochs=epochs, seed=seed)) if two_sample else None)
        rows.append(row)
    return rows


def format_table(rows: list[dict]) -> str:
    lines = [TABLE_HEADER, "|---|---|---|---|"]
    for row in rows:
        accuracy = row["realism_accuracy"]
        lines.append(
            f"| {row['faces']} | {1000 * row['kid_value']:.2f} "
            f"[{1000 * row['kid_low']:.2f}, {1000 * row['kid_high']:.2f}] "
            f"| {'-' if accuracy is None else f'{accuracy:.3f}'} | {row['n_fake']} |"
        )
    return "\n".join(lines)


def parse_compare(text: str) -> tuple[str, str]:
    name, sep, folder = text.partition("=")
    if not sep or not name or not folder:
        raise argparse.ArgumentTypeError(f"expected NAME=FOLDER, got {text!r}")
    return name, folder


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weights", required=True, help="Sketch2Anime weights folder")
    parser.add_argument("--data", required=True, help="folder written by training.prepare_data")
    parser.add_argument("--out", required=True, help="folder for the table")
    parser.add_argument("--realism-net", default=str(BUNDLED_REALISM),
                        help="realism net folder (default: the bundled weights/realism)")
    parser.add_argument("--compare", type=parse_compare, action="append", default=[],
                        metavar="NAME=FOLDER", help="another weights folder's rows (repeatable)")
    parser.add_argument("--limit", type=int, default=0, help="first N val items (0 = all)")
    parser.add_argument("--hints", type=int, default=5, help="simulated hint strokes per face")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--no-two-sample", action="store_true",
                        help="skip the classifier two-sample test (the slow column)")
    parser.add_argument("--realism-epochs", type=int, default=RealismConfig.epochs)
    args = parser.parse_args(argv)
    if args.limit < 0 or args.hints < 0 or args.k < 1 or args.batch_size < 1:
        parser.error("--limit and --hints must be >= 0, --k and --batch-size >= 1")
    for flag, folder in [("weights", args.weights), *(("compare", f) for _, f in args.compare)]:
        if not Path(folder).is_dir():
            parser.error(f"--{flag}: no folder at {folder}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    device = pick_device(args.device)
    try:
        net = load_realism_net(args.realism_net).to(device)
        images, val_sketches = load_val_split(args.data, args.limit)
        train_images, _ = load_split(args.data, "train")
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    rng = np.random.default_rng(args.seed)
    sample = np.asarray(train_images[np.sort(rng.choice(len(train_images), len(images),
                                                         replace=False))])
    sets = {"real train faces": sample}
    for sigma in BLUR_SIGMAS:
        sets[f"real train, blurred (sigma {sigma} px)"] = degrade_real(sample, "blur", sigma,
                                                                       args.seed)
    sets[f"real train, noised (std {NOISE_STD * 255:.0f}/255)"] = degrade_real(
        sample, "noise", NOISE_STD, args.seed)
    sketches = make_sketch_sets(val_sketches, args.seed)
    folders = [("", args.weights), *((f"{name} ", folder) for name, folder in args.compare)]
    try:
        for prefix, folder in folders:
            baseline = Path(folder) / BASELINE_DIR
            sets.update(generated_sets(folder, str(baseline) if baseline.is_dir() else None,
                                       images, sketches, args.hints, args.k, args.seed,
                                       args.batch_size, device, prefix))
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    rows = sensitivity_rows(sets, images, net, args.seed, not args.no_two_sample,
                            args.realism_epochs)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    date = datetime.datetime.now().isoformat(timespec="seconds")
    header = (f"KID sensitivity: weights `{args.weights}`"
              + "".join(f", {name} `{folder}`" for name, folder in args.compare)
              + f", realism net `{args.realism_net}`, against `{args.data}` val faces, "
              f"N={len(images)}, {args.hints} hints, seed={args.seed}, {date}")
    table = format_table(rows)
    (out / "kid_sensitivity.json").write_text(json.dumps(rows, indent=2) + "\n")
    (out / "kid_sensitivity.md").write_text(f"{header}\n\n{table}\n", encoding="utf-8")
    print(header)
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
