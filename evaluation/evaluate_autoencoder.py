"""How much of the drawing a stage-1 autoencoder's latent keeps (compare two autoencoders).

    python -m evaluation.evaluate_autoencoder --autoencoder runs/autoencoder/autoencoder \
        --data data/

On `--items` validation sketches, edge F1 between the input sketch and (1 px tolerance by
default: at 2 px an all-ink 96 px image already scores 0.4-0.7 against a typical sketch):
- `reconstruction`: the decoder's sketch of the sketch's own latent;
- `nn_l2` / `nn_cosine`: the training sketch whose latent is nearest (out of
  `--bank-items`) by L2 distance / by angle (`s2a.projection.METRICS`); the projection
  builds on these neighbours, so they should look like the input;
- `<drawing>_nn_l2` / `<drawing>_nn_cosine`: the same, searched from another drawing of
  the sketch but scored against the clean one: does a bad drawing find what was meant?
  `degraded` is `training.degrade.degrade_batch` (rough: strokes missing, wobbly, moved);
  `thick` and `smooth` only change the pen (`training.degrade.SHIFTS`); `amateur` is
  `training.degrade.amateur_batch` with every style (what the completing encoder trains on);
  `framed` keeps the clean lines but draws the face small (0.5-0.85) on a white pad, as
  people draw in the middle of the canvas;
- `random_neighbour`: a random training sketch, the floor every neighbour must beat;
- `<drawing>_vs_clean`: `<drawing>_nn_cosine / nn_cosine`.

With `--normalize STEPS` (comma-separated `s2a.sketch.STROKE_STEPS`, `--width`) every
drawing, the clean one included, goes through `s2a.sketch.normalize_sketch` with those
steps before it is encoded (the bank is left alone); the scores are still against the
clean sketch, and a completion's `_input` is still the drawing as drawn.

Completion (`--completion-tolerance`, 2 px): for the degraded, amateur and framed drawings, edge
F1 against the clean sketch of the projected sketch (the decoder of the refine-1
projection of the drawing's latent, k = `--k`, over the same bank, its length set by
`--length`, `s2a.projection.LENGTHS`) next to the drawing's
own F1, and the mean gain with a bootstrap 95 % interval; `completion_clean_projected`,
the same projection started from the clean sketch, is the ceiling a completion can reach,
and `completion_random` (a random training sketch at the same tolerance) the floor.

A completing encoder (training.train_completing_encoder) is scored with
`--bank-autoencoder` set to its teacher: the shipped bank keeps the teacher's latents, and
re-encoding the bank with the student would "complete" the sparse training sketches too,
which blurs the bank (measured after 15 min: clean neighbours 0.30 with the student's own
bank, 0.40 with the teacher's).

With `--grid PATH` it also writes a picture: rough input | clean | projected sketch of each
`--grid-models` autoencoder (refine 1 over `--grid-bank`, the shipped bank) for a few
degraded val sketches and for the project's own example drawings.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

from s2a.examples import example_sketches
from s2a.metrics import edge_f1
from s2a.models import SketchAutoencoder
from s2a.pipeline import to_pil_grey
from s2a.projection import LENGTHS, METRICS, LatentBank
from s2a.sketch import STROKE_STEPS, STROKE_WIDTH, normalize_sketch
from training.common import save_image_grid
from training.data import encode_sketches, load_split
from training.degrade import SHIFTS, amateur_batch, degrade_batch, degrade_sketch, shift_batch

BOOTSTRAP = 2000
GRID_DEGRADED = 8
# The "framed" drawing: clean lines, the face drawn smaller on a white pad, a little off
# centre (the "frame" style of training.degrade.amateur_sketch, without its other styles).
FRAMED = dict(drop_range=(0.0, 0.0), wobble_px=0.0, thickness_range=(1, 1),
              shift_frac=0.05, scale_range=(0.5, 0.85))
COMPLETED = ("degraded", "amateur", "framed")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--autoencoder", required=True, help="model folder (config + weights)")
    parser.add_argument("--data", required=True, help="folder written by training.prepare_data")
    parser.add_argument("--items", type=int, default=500, help="validation sketches scored")
    parser.add_argument("--bank-items", type=int, default=10_000,
                        help="training sketches searched for neighbours")
    parser.add_argument("--bank-autoencoder",
                        help="encode the bank with this autoencoder instead (e.g. the teacher "
                             "of a completing encoder, whose bank ships unchanged)")
    parser.add_argument("--tolerance", type=float, default=1.0, help="edge F1 tolerance (px)")
    parser.add_argument("--completion-tolerance", type=float, default=2.0,
                        help="edge F1 tolerance (px) of the completion scores")
    parser.add_argument("--k", type=int, default=10, help="neighbours of the projection")
    parser.add_argument("--length", default="affine", choices=LENGTHS,
                        help="how long the completion's projection is (default: the "
                        "shipped bank's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--normalize", default="",
                        help="comma-separated s2a.sketch.STROKE_STEPS applied to every "
                             f"drawing before encoding ({','.join(STROKE_STEPS)}; default none)")
    parser.add_argument("--width", type=int, default=STROKE_WIDTH,
                        help="pen width (px) a thinned drawing is redrawn with")
    parser.add_argument("--per-item", help="also write every per-sketch score to this .npz")
    parser.add_argument("--grid", help="also write a PNG of projected drawings here")
    parser.add_argument("--grid-models", nargs="+", default=[],
                        help="autoencoders compared in the grid (default: --autoencoder)")
    parser.add_argument("--grid-bank", default="weights/bank",
                        help="latent bank the grid projects onto (training.build_bank folder)")
    args = parser.parse_args(argv)
    if args.items < 1 or args.bank_items < 1 or args.k < 1:
        parser.error("--items, --bank-items and --k must be at least 1")
    if args.grid and not (Path(args.grid_bank) / "bank.json").is_file():
        parser.error(f"--grid-bank {args.grid_bank} holds no latent bank")
    args.normalize = tuple(step for step in args.normalize.split(",") if step)
    unknown = set(args.normalize) - set(STROKE_STEPS)
    if unknown:
        parser.error(f"--normalize: unknown steps {sorted(unknown)}; choose from "
                     f"{', '.join(STROKE_STEPS)}")
    if not 1 <= args.width <= 8:
        parser.error("--width must be from 1 to 8")
    return args


def bootstrap_interval(values: np.ndarray, seed: int = 0,
                       resamples: int = BOOTSTRAP) -> tuple[float, float]:
    """95 % percentile-bootstrap interval of the mean of `values` (N,)."""
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(resamples, len(values)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def framed_batch(sketches: np.ndarray, seed: int) -> np.ndarray:
    """(N, R, R) uint8 sketches redrawn small on a white pad (FRAMED), item k seeded by
    [seed, k]."""
    return np.stack([np.asarray(degrade_sketch(s, np.random.default_rng([seed, k]), **FRAMED))
                     for k, s in enumerate(np.asarray(sketches))])


def drawings(val: np.ndarray, seed: int, images: np.ndarray | None = None) -> dict:
    """The other drawings of the (N, R, R) val sketches the neighbour search starts from."""
    return {"degraded": degrade_batch(val, seed),
            **{name: shift_batch(val, name) for name in SHIFTS},
            "amateur": amateur_batch(val, seed, images),
            "framed": framed_batch(val, seed)}


def normalized(sketches: np.ndarray, steps: tuple[str, ...],
               width: int = STROKE_WIDTH) -> np.ndarray:
    """(N, R, R) uint8 sketches through `normalize_sketch` with `steps` (none: unchanged)."""
    if not steps:
        return np.asarray(sketches)
    resolution = sketches.shape[-1]
    out = np.array(sketches)  # a drawing normalize_sketch calls empty stays as drawn
    for i, sketch in enumerate(out):
        try:
            out[i] = np.round(255 * normalize_sketch(sketch, resolution, steps, width))
        except ValueError:
            continue
    return out


@torch.no_grad()
def projected_sketches(model: SketchAutoencoder, bank: LatentBank, latents: np.ndarray,
                       k: int) -> np.ndarray:
    """(N, R, R) uint8 decoder's sketches of the refine-1 projections of (N, d) latents."""
    projected = bank.project(latents, k=k).latent  # (N, d)
    decoded = model.decode(torch.from_numpy(projected))[:, 0]  # (N, R, R)
    return np.stack([np.asarray(to_pil_grey(d)) for d in decoded])


def latent_quality(model: SketchAutoencoder, val: np.ndarray, train: np.ndarray,
                   seed: int = 0, tolerance: float = 1.0, images: np.ndarray | None = None,
                   completion_tolerance: float = 2.0, k: int = 10,
                   bank_model: SketchAutoencoder | None = None,
                   normalize: tuple[str, ...] = (), width: int = STROKE_WIDTH,
                   per_item: dict | None = None, length: str = "affine") -> dict[str, float]:
    """Mean edge F1 against the clean val sketches of everything listed in the docstring.

    `bank_model` (default `model`) encodes the training sketches searched; `normalize`
    and `width` are the `normalize_sketch` steps every query drawing goes through first.
    `length` is the completion projection's (`s2a.projection.LENGTHS`). `per_item`, when
    given, receives each score's (N,) per-sketch values (for paired
    comparisons of two runs).
    """
    rng = np.random.default_rng(seed)
    cpu = torch.device("cpu")
    latents = encode_sketches(bank_model or model, train, 256, cpu)  # (M, d)
    drawn = drawings(val, seed, images)
    queries = {"": encode_sketches(model, normalized(val, normalize, width), 256, cpu),
               **{f"{name}_": encode_sketches(model, normalized(d, normalize, width), 256, cpu)
                  for name, d in drawn.items()}}  # (N, d) each
    with torch.no_grad():
        decoded = model.decode(torch.from_numpy(queries[""]))[:, 0]  # (N, R, R)
    found = {}  # name -> (N,) bank rows
    banks = {metric: LatentBank(latents, "flat", metric=metric, length=length)
             for metric in METRICS}
    for metric, bank in banks.items():
        for prefix, z in queries.items():
            found[f"{prefix}nn_{metric}"] = bank.search(z, 1)[1][:, 0]
    completed = {name: projected_sketches(model, banks["cosine"], queries[f"{name}_"], k)
                 for name in COMPLETED}
    ceiling = projected_sketches(model, banks["cosine"], queries[""], k)  # (N, R, R)
    scores = {name: [] for name in ("reconstruction", *found, "random_neighbour")}
    completion = {f"{name}_{kind}": [] for name in completed for kind in ("input", "projected")}
    completion["clean_projected"], completion["random"] = [], []
    for i in tqdm(range(len(val)), desc="scoring"):
        random_sketch = train[rng.integers(len(train))]
        others = {"reconstruction": to_pil_grey(decoded[i]),
                  "random_neighbour": random_sketch,
                  **{name: train[rows[i]] for name, rows in found.items()}}
        for name, other in others.items():
            scores[name].append(edge_f1(val[i], other, tolerance))
        for name, projected in completed.items():
            completion[f"{name}_input"].append(edge_f1(val[i], drawn[name][i],
                                                       completion_tolerance))
            completion[f"{name}_projected"].append(edge_f1(val[i], projected[i],
                                                           completion_tolerance))
        completion["clean_projected"].append(edge_f1(val[i], ceiling[i], completion_tolerance))
        completion["random"].append(edge_f1(val[i], random_sketch, completion_tolerance))
    report = {name: float(np.mean(values)) for name, values in scores.items()}
    if per_item is not None:
        per_item.update({name: np.array(values) for name, values in scores.items()})
        per_item.update({f"completion_{name}": np.array(values)
                         for name, values in completion.items()})
    for name in drawn:
        report[f"{name}_vs_clean"] = report[f"{name}_nn_cosine"] / max(report["nn_cosine"], 1e-9)
    report["completion_clean_projected"] = float(np.mean(completion["clean_projected"]))
    report["completion_random"] = float(np.mean(completion["random"]))
    for name in completed:
        gain = np.array(completion[f"{name}_projected"]) - np.array(completion[f"{name}_input"])
        low, high = bootstrap_interval(gain, seed)
        report.update({f"completion_{name}_input": float(np.mean(completion[f"{name}_input"])),
                       f"completion_{name}_projected":
                           float(np.mean(completion[f"{name}_projected"])),
                       f"completion_{name}_gain": float(gain.mean()),
                       f"completion_{name}_gain_ci95": [low, high]})
    return report


def write_grid(path: str, models: list[str], bank: LatentBank, val: np.ndarray, seed: int,
               k: int, normalize: tuple[str, ...] = (), width: int = STROKE_WIDTH) -> None:
    """Rough input | what was meant | each model's projected sketch (refine 1 over `bank`).

    Rows: degraded val sketches (what was meant: the clean sketch), then the project's
    example drawings (what was meant: the drawing itself).
    """
    resolution = val.shape[-1]
    rough = degrade_batch(val[:GRID_DEGRADED], seed)  # (G, R, R) uint8
    examples = np.stack([np.round(255 * normalize_sketch(image, resolution, ())).astype(np.uint8)
                         for image in example_sketches().values()])
    inputs = np.concatenate([rough, examples])  # (G + E, R, R)
    meant = np.concatenate([val[:GRID_DEGRADED], examples])  # (G + E, R, R)
    columns = [torch.from_numpy(inputs[:, None] / 255.0), torch.from_numpy(meant[:, None] / 255.0)]
    for folder in models:
        model = SketchAutoencoder.from_pretrained(folder).eval()
        latents = encode_sketches(model, normalized(inputs, normalize, width), 256,
                                  torch.device("cpu"))
        columns.append(torch.from_numpy(projected_sketches(model, bank, latents, k)[:, None]
                                        / 255.0))
    save_image_grid(path, columns)


def pad_centred_face(size: int = 512) -> np.ndarray:
    """A clean, simple face drawn small in the middle of a white pad, (size, size) uint8:
    oval, hair line, two eyes, nose, mouth (issue 13's browser test)."""
    canvas = np.full((size, size), 255, np.uint8)
    c, u, pen = size // 2, size / 512, max(1, round(4 * size / 512))
    def ellipse(centre, axes, start, end):
        cv2.ellipse(canvas, (round(c + centre[0] * u), round(c + centre[1] * u)),
                    (round(axes[0] * u), round(axes[1] * u)), 0, start, end, 0, pen, cv2.LINE_AA)
    ellipse((0, 10), (70, 90), 0, 360)  # the face
    ellipse((0, -10), (80, 90), 180, 360)  # the hair line
    for side in (-1, 1):
        ellipse((side * 28, 0), (13, 10), 0, 360)  # eyes
    ellipse((0, 35), (3, 6), 0, 180)  # nose
    ellipse((0, 55), (18, 7), 0, 180)  # mouth
    return canvas


def write_normalisation_grid(path: str, model: SketchAutoencoder, bank: LatentBank,
                             configs: dict[str, tuple[str, ...]], k: int,
                             width: int = STROKE_WIDTH) -> None:
    """For the project's example drawings and a pad-centred face: per named config of
    `normalize_sketch` steps, the model's input | its projected sketch (refine 1 over
    `bank`)."""
    resolution = model.config.resolution
    canvases = [np.asarray(image) for image in example_sketches().values()]
    canvases.append(pad_centred_face())
    columns = []
    for steps in configs.values():
        inputs = np.stack([np.round(255 * normalize_sketch(c, resolution, steps, width))
                           .astype(np.uint8) for c in canvases])  # (E, R, R)
        latents = encode_sketches(model, inputs, 256, torch.device("cpu"))
        columns += [torch.from_numpy(inputs[:, None] / 255.0),
                    torch.from_numpy(projected_sketches(model, bank, latents, k)[:, None]
                                     / 255.0)]
    save_image_grid(path, columns)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        val_images, val = load_split(args.data, "val")
        _, train = load_split(args.data, "train")
        model = SketchAutoencoder.from_pretrained(args.autoencoder).eval()
        bank_model = (SketchAutoencoder.from_pretrained(args.bank_autoencoder).eval()
                      if args.bank_autoencoder else None)
    except (ValueError, OSError) as error:
        raise SystemExit(f"error: {error}") from None
    rng = np.random.default_rng(args.seed)
    per_item: dict = {}
    rows = np.sort(rng.permutation(len(val))[:args.items])
    val, val_images = np.asarray(val[rows]), np.asarray(val_images[rows])
    train = np.asarray(train[np.sort(rng.permutation(len(train))[:args.bank_items])])
    report = {"autoencoder": args.autoencoder, "bank_autoencoder": args.bank_autoencoder,
              "items": len(val), "bank_items": len(train),
              "tolerance_px": args.tolerance,
              "completion_tolerance_px": args.completion_tolerance, "k": args.k,
              "length": args.length, "normalize": list(args.normalize), "width": args.width,
              **latent_quality(model, val, train, args.seed, args.tolerance, val_images,
                               args.completion_tolerance, args.k, bank_model,
                               args.normalize, args.width, per_item, args.length)}
    print(json.dumps(report, indent=2))
    if args.per_item:
        np.savez(args.per_item, **per_item)
    if args.grid:
        write_grid(args.grid, args.grid_models or [args.autoencoder],
                   LatentBank.load(args.grid_bank), val, args.seed, args.k, args.normalize,
                   args.width)
        print(f"Wrote {args.grid}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
