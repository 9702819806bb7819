"""Evaluate Sketch2Anime against the SimpleGAN baseline on the validation split.

    python -m evaluation.evaluate --weights weights/ --data data/ --out runs/eval

Every val sketch is given to each system twice, as drawn by the detail filter ("clean")
and redrawn the way an amateur would ("degraded", training.degrade), with 0, 1, 5, ...
simulated colour hints. Systems: the method with full projection ("method r=1"), half of
it ("method r=0.5"), without it ("method r=0"), the per-part model ("parts r=1") and the
pix2pix baseline ("simplegan"). Scores per item:
PSNR against the true image, CIEDE2000 at hinted pixels, and edge F1 (2 px) between the
sketch the system was given and the detail-filter sketch of what it drew.

Writes to --out:
  results.json       one row per (sketches, system, hints) with the aggregated scores
  results.md         the same as a markdown table, with a header naming the run
  psnr_vs_hints.png  PSNR against the number of hints, one panel per sketch set
  realism.json       per (sketches, system) at --realism-hints: the two-sample accuracy and
                     KID against the real val faces (evaluation.kid, on the fixed realism
                     net of weights/realism/) with its bootstrap interval
  samples.png        fixed val items: sketch | degraded | hints | each system | truth
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image, ImageDraw
from tqdm import tqdm

from evaluation.kid import kid
from evaluation.realism import RealismConfig, two_sample_accuracy
from evaluation.realism_net import (
    BUNDLED_REALISM,
    RealismNet,
    extract_features,
    load_realism_net,
)
from s2a import Sketch2Anime
from s2a.hints import hints_to_array
from s2a.hub import BASELINE_DIR
from s2a.metrics import edge_f1, hint_delta_e_per_pixel, psnr
from s2a.models import SimpleGAN
from s2a.parts import PART_NAMES
from s2a.sketch import extract_sketch
from training.common import pick_device
from training.data import load_split
from training.degrade import degrade_batch
from training.simulate_hints import simulate_hints

SYSTEMS = ("method r=1", "method r=0.5", "method r=0", "parts r=1", "simplegan")
# The refine value behind each method system; the baseline has no projection.
REFINE = {"method r=1": 1.0, "method r=0.5": 0.5, "method r=0": 0.0}
BASELINE_SYSTEM = "simplegan"
PARTS_SYSTEM = "parts r=1"  # the per-part model (s2a.parts), every part at refine 1
SKETCH_SETS = ("clean", "degraded")
EDGE_TOLERANCE_PX = 2
SAMPLE_ITEMS = 8
SAMPLE_HINTS = 5
# Unhinted pixels are shown light grey, so white (background) hints still show.
HINT_PAPER = 200.0
# Which sketch column a sample row block fed to the systems is framed in this colour.
INPUT_FRAME = (40, 110, 230)
TABLE_HEADER = "| sketches | system | hints | PSNR (dB) | ΔE mean | ΔE median | edge F1 | N |"

# Called once per generated batch: (sketch set, system, hints, item indices (B,),
# outputs (B, R, R, 3) uint8). Lets a later score (e.g. realism) see every image.
OutputHook = Callable[[str, str, int, np.ndarray, np.ndarray], None]


@dataclass(frozen=True)
class EvalConfig:
    """Resolved flags of one evaluation run."""

    weights: str
    data: str
    out: str
    baseline: str | None = None
    limit: int = 0
    hints: tuple[int, ...] = (0, 1, 5, 10, 20)
    k: int = 10
    seed: int = 0
    batch_size: int = 64
    device: str = "auto"
    realism_hints: int | None = 5
    realism_epochs: int = RealismConfig.epochs
    realism_net: str | None = None  # None: the bundled weights/realism when it fits


@dataclass
class Scores:
    """Per-item scores of one (sketch set, system, hints) cell, collected batch by batch."""

    psnr: list[float] = field(default_factory=list)
    edge_f1: list[float] = field(default_factory=list)
    delta_e: list[np.ndarray] = field(default_factory=list)  # one (hinted pixels,) per item

    def extend(self, other: Scores) -> None:
        """Append the items of `other` (a later batch of the same cell)."""
        self.psnr += other.psnr
        self.edge_f1 += other.edge_f1
        self.delta_e += other.delta_e


# ---------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------


def load_val_split(data: str | Path, limit: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Val images (N, R, R, 3) and sketches (N, R, R) uint8 from a prepared-data folder.

    Only the first `limit` items when `limit` > 0. Raises ValueError when the folder is
    not prepared data, the split is empty or the arrays disagree.
    """
    images, sketches = load_split(data, "val")  # memory-mapped: --limit reads only its part
    if images.ndim != 4 or images.shape[-1] != 3 or sketches.shape != images.shape[:3]:
        raise ValueError(
            f"{data}: val images {images.shape} and sketches {sketches.shape} do not match "
            "(expected (N, R, R, 3) and (N, R, R))."
        )
    if limit > 0:
        images, sketches = images[:limit], sketches[:limit]
    return np.asarray(images, dtype=np.uint8), np.asarray(sketches, dtype=np.uint8)


def load_systems(
    weights: str | Path, baseline: str | Path | None, device: torch.device
) -> tuple[Sketch2Anime, SimpleGAN | None]:
    """The pipeline from `weights` and the SimpleGAN from `baseline` (None: no baseline).

    Raises ValueError when a folder is missing or is not a weights folder.
    """
    weights = Path(weights)
    # Checked here: resolve_weights would take a missing "a/b" path for a Hub repo id.
    if not weights.is_dir():
        raise ValueError(f"No weights folder at {weights}.")
    try:
        pipe = Sketch2Anime.from_pretrained(weights).to(device)
    except FileNotFoundError as error:  # e.g. a bank folder without its files
        raise ValueError(f"{weights} is not a complete weights folder: {error}") from error
    model = None
    if baseline is not None:
        baseline = Path(baseline)
        if not baseline.is_dir():
            raise ValueError(f"No baseline weights folder at {baseline}.")
        try:
            model = SimpleGAN.from_pretrained(baseline).eval().to(device)
        except OSError as error:  # missing or unreadable files
            raise ValueError(f"Cannot load the baseline from {baseline}: {error}") from error
        if model.config.resolution != pipe.resolution:
            raise ValueError(
                f"The baseline works at {model.config.resolution} px but the method at "
                f"{pipe.resolution} px."
            )
    return pipe, model


def available_systems(pipe: Sketch2Anime, baseline: SimpleGAN | None) -> list[str]:
    """SYSTEMS less the SimpleGAN without a baseline and the per-part model without parts."""
    return [s for s in SYSTEMS if (s != BASELINE_SYSTEM or baseline is not None)
            and (s != PARTS_SYSTEM or pipe.has_parts)]


def make_sketch_sets(sketches: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """{"clean": the val sketches, "degraded": amateur redrawings of them}, (N, R, R) uint8."""
    return {"clean": sketches, "degraded": degrade_batch(sketches, seed)}


# ---------------------------------------------------------------------------
# Running and scoring
# ---------------------------------------------------------------------------


def simulate_item_hints(image: np.ndarray, item: int, n: int, seed: int) -> np.ndarray:
    """The (R, R, 4) uint8 hint layer for val item `item` with `n` strokes.

    Seeded by (seed, item, n) alone, so every system and sketch set, and every --limit or
    --batch-size, sees the same hints for the same item.
    """
    rng = np.random.default_rng([seed, item, n])
    return np.asarray(simulate_hints(image, rng, n_strokes=n))


def hints_batch(hints: np.ndarray, resolution: int) -> torch.Tensor:
    """(B, R, R, 4) uint8 hint layers -> (B, 4, R, R) float tensor the networks read."""
    return torch.from_numpy(np.stack([hints_to_array(h, resolution) for h in hints]))


def sketch_batch(sketches: np.ndarray) -> torch.Tensor:
    """(B, R, R) uint8 sketches -> (B, 1, R, R) float in [0, 1], 1 = paper."""
    return torch.from_numpy(np.asarray(sketches, np.float32) / 255.0)[:, None]


def to_uint8_images(images: torch.Tensor) -> np.ndarray:
    """(B, C, R, R) in [0, 1] -> (B, R, R, C) uint8 on the CPU (faces: C = 3)."""
    return (images.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).cpu().numpy()


def run_system(
    system: str,
    pipe: Sketch2Anime,
    baseline: SimpleGAN | None,
    sketches: np.ndarray,
    hints: torch.Tensor,
    k: int,
) -> np.ndarray:
    """Draw faces for (B, R, R) uint8 sketches and (B, 4, R, R) hints -> (B, R, R, 3) uint8."""
    sketch_input = sketch_batch(sketches)  # (B, 1, R, R)
    if system == BASELINE_SYSTEM:
        if baseline is None:
            raise ValueError("The simplegan system needs a baseline model.")
        device = next(baseline.parameters()).device
        with torch.no_grad():
            images = baseline(sketch_input.to(device), hints.to(device))  # (B, 3, R, R)
    elif system == PARTS_SYSTEM:
        refine = dict.fromkeys(PART_NAMES, 1.0)
        images, _, _ = pipe.generate_parts(sketch_input, hints, refine, k=k, seed=0)
    else:
        # seed=0: the plain projection; --seed only varies the data (hints, degradation).
        images, _, _ = pipe.generate(sketch_input, hints, refine=REFINE[system], k=k, seed=0)
    return to_uint8_images(images)


def score_batch(
    outputs: np.ndarray, truth: np.ndarray, input_sketches: np.ndarray, hints: np.ndarray
) -> Scores:
    """Per-item scores of (B, R, R, 3) outputs.

    PSNR against the (B, R, R, 3) true images, CIEDE2000 at the hinted pixels of the
    (B, R, R, 4) hint layers, and edge F1 between the (B, R, R) sketch each system was
    given and the detail-filter sketch of its output.
    """
    scores = Scores()
    for output, image, sketch, hint in zip(outputs, truth, input_sketches, hints):
        scores.psnr.append(psnr(output, image))
        scores.delta_e.append(hint_delta_e_per_pixel(output, hint))
        scores.edge_f1.append(edge_f1(sketch, extract_sketch(output), EDGE_TOLERANCE_PX))
    return scores


def aggregate_scores(
    psnr_values: Sequence[float],
    edge_f1_values: Sequence[float],
    delta_e_values: Sequence[np.ndarray],
) -> dict:
    """Summary of one cell: mean PSNR and edge F1 over items, ΔE over all hinted pixels.

    ΔE mean and median pool the pixels of every item (an item with a large hint weighs
    more than one with a dot), and are nan when no pixel was hinted.
    """
    pixels = np.concatenate([np.ravel(d) for d in delta_e_values] or [np.zeros(0)])
    return {
        "psnr": float(np.mean(psnr_values)) if len(psnr_values) else math.nan,
        "delta_e_mean": float(np.mean(pixels)) if pixels.size else math.nan,
        "delta_e_median": float(np.median(pixels)) if pixels.size else math.nan,
        "edge_f1": float(np.mean(edge_f1_values)) if len(edge_f1_values) else math.nan,
        "count": len(psnr_values),
    }


def evaluate(
    pipe: Sketch2Anime,
    baseline: SimpleGAN | None,
    images: np.ndarray,
    sketches: Mapping[str, np.ndarray],
    hint_counts: Sequence[int],
    k: int = 10,
    seed: int = 0,
    batch_size: int = 64,
    on_outputs: OutputHook | None = None,
) -> list[dict]:
    """Score every system on every sketch set at every hint count.

    Args:
        pipe: the method.
        baseline: the SimpleGAN, or None to leave the "simplegan" system out.
        images: (N, R, R, 3) uint8 true images.
        sketches: sketch set name -> (N, R, R) uint8 sketches of the same items (0 = ink),
            e.g. `make_sketch_sets(val_sketches, seed)`.
        hint_counts: numbers of simulated hint strokes.
        k: neighbours for the projection.
        seed: seeds the simulated hints (per item and count, see `simulate_item_hints`).
        batch_size: items per forward pass.
        on_outputs: optional hook called with every generated batch (see `OutputHook`),
            for scores that need all the images of a cell.

    Returns:
        One row per (sketch set, system, hints), in that nesting order, with the keys of
        `aggregate_scores` plus "sketches", "system" and "hints".
    """
    systems = available_systems(pipe, baseline)
    k = min(k, len(pipe.bank))
    cells = {(name, s, n): Scores() for name in sketches for s in systems for n in hint_counts}
    starts = range(0, len(images), batch_size)
    progress = tqdm(total=len(hint_counts) * len(starts), desc="evaluate", unit="batch")
    for n in hint_counts:
        for start in starts:
            items = np.arange(start, min(start + batch_size, len(images)))  # (B,)
            truth = images[items]  # (B, R, R, 3)
            # Simulated once per batch and shared by every system and sketch set.
            hints = np.stack([simulate_item_hints(images[i], int(i), n, seed) for i in items])
            hint_input = hints_batch(hints, pipe.resolution)  # (B, 4, R, R)
            for name, sketch_set in sketches.items():
                batch_sketches = np.asarray(sketch_set[items])  # (B, R, R)
                for system in systems:
                    outputs = run_system(system, pipe, baseline, batch_sketches, hint_input, k)
                    if on_outputs is not None:
                        on_outputs(name, system, n, items, outputs)
                    cells[name, system, n].extend(
                        score_batch(outputs, truth, batch_sketches, hints)
                    )
            progress.update()
    progress.close()
    return [
        {"sketches": name, "system": system, "hints": int(n),
         **aggregate_scores(scores.psnr, scores.edge_f1, scores.delta_e)}
        for (name, system, n), scores in cells.items()
    ]


# ---------------------------------------------------------------------------
# Reporting
# ---------------------------------------------------------------------------


def _number(value: float | None, decimals: int) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:.{decimals}f}"


def format_table(rows: Sequence[dict]) -> str:
    """The rows as a markdown table (ΔE "-" where nothing was hinted)."""
    lines = [TABLE_HEADER, "|" + "---|" * TABLE_HEADER.count(" | ") + "---|"]
    for row in rows:
        lines.append(
            f"| {row['sketches']} | {row['system']} | {row['hints']} "
            f"| {_number(row['psnr'], 2)} | {_number(row['delta_e_mean'], 2)} "
            f"| {_number(row['delta_e_median'], 2)} | {_number(row['edge_f1'], 3)} "
            f"| {row['count']} |"
        )
    return "\n".join(lines)


def _json_safe(value):
    # JSON has no NaN or infinity: write null, which every reader understands.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_results(rows: Sequence[dict], out: Path, header: str) -> str:
    """Write results.json and results.md to `out`; return the markdown table."""
    safe = [{key: _json_safe(value) for key, value in row.items()} for row in rows]
    (out / "results.json").write_text(json.dumps(safe, indent=2) + "\n")
    table = format_table(rows)
    (out / "results.md").write_text(f"{header}\n\n{table}\n", encoding="utf-8")
    return table


def plot_psnr_vs_hints(rows: Sequence[dict], path: Path) -> None:
    """PSNR against the number of hints: one panel per sketch set, one line per system."""
    sets = list(dict.fromkeys(row["sketches"] for row in rows))
    # A bare Figure with the Agg canvas: no pyplot, so no global backend state.
    figure = Figure(figsize=(4.5 * len(sets), 3.6), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, len(sets), sharey=True, squeeze=False)[0]
    for ax, name in zip(axes, sets):
        for system in dict.fromkeys(row["system"] for row in rows):
            points = sorted(
                (row["hints"], row["psnr"]) for row in rows
                if row["sketches"] == name and row["system"] == system
            )
            ax.plot(*zip(*points), marker="o", label=system)
        ax.set_title(f"{name} sketches")
        ax.set_xlabel("hint strokes")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("PSNR (dB)")
    axes[-1].legend()
    figure.savefig(path, dpi=120)


def _grey_rgb(sketch: np.ndarray) -> np.ndarray:
    return np.repeat(sketch[..., None], 3, axis=2)  # (R, R, 3)


def _hint_view(hints: np.ndarray) -> np.ndarray:
    alpha = hints[..., 3:].astype(np.float32) / 255.0  # (R, R, 1)
    view = hints[..., :3].astype(np.float32) * alpha + HINT_PAPER * (1.0 - alpha)
    return view.round().astype(np.uint8)  # (R, R, 3)


def _framed(tile: np.ndarray) -> np.ndarray:
    tile = tile.copy()
    tile[0], tile[-1], tile[:, 0], tile[:, -1] = (INPUT_FRAME,) * 4
    return tile


def sample_grid(
    pipe: Sketch2Anime,
    baseline: SimpleGAN | None,
    images: np.ndarray,
    sketches: Mapping[str, np.ndarray],
    k: int = 10,
    seed: int = 0,
    n_items: int = SAMPLE_ITEMS,
) -> Image.Image:
    """A labelled grid over fixed val items, upscaled 2x (nearest).

    Columns: one per sketch set (clean | degraded) | hints (SAMPLE_HINTS strokes, on
    grey) | method r=1 | r=0.5 | r=0 | parts r=1 (with a per-part model) | simplegan |
    truth. One block of rows per sketch set; the sketch the systems were given is framed
    in blue. A missing baseline leaves a white tile.
    """
    resolution = images.shape[1]
    k = min(k, len(pipe.bank))
    items = np.unique(np.linspace(0, len(images) - 1, num=min(n_items, len(images))).astype(int))
    hints = np.stack([simulate_item_hints(images[i], int(i), SAMPLE_HINTS, seed) for i in items])
    hint_input = hints_batch(hints, resolution)  # (n, 4, R, R)
    blank = np.full((len(items), resolution, resolution, 3), 255, np.uint8)
    systems = [s for s in SYSTEMS if s != PARTS_SYSTEM or pipe.has_parts]
    blocks = []
    for name, sketch_set in sketches.items():
        given = np.asarray(sketch_set[items])  # (n, R, R)
        outputs = {
            system: blank if system == BASELINE_SYSTEM and baseline is None
            else run_system(system, pipe, baseline, given, hint_input, k)
            for system in systems
        }
        rows = []
        for j, item in enumerate(items):
            # Every set's sketch of the item, the one given to the systems framed.
            columns = [
                (_framed if other == name else np.asarray)(_grey_rgb(other_set[item]))
                for other, other_set in sketches.items()
            ]
            columns.append(_hint_view(hints[j]))
            columns += [outputs[system][j] for system in systems]
            columns.append(images[item])
            rows.append(np.concatenate(columns, axis=1))
        blocks.append((name, np.concatenate(rows, axis=0)))
    labels = [*sketches, f"hints ({SAMPLE_HINTS})", *systems, "truth"]
    return _label_grid(blocks, labels, resolution)


def _label_grid(
    blocks: list[tuple[str, np.ndarray]], labels: list[str], resolution: int
) -> Image.Image:
    """Stack row blocks upscaled 2x, with column labels on top and a title over each block."""
    tile, strip = 2 * resolution, 14
    width = tile * len(labels)
    height = strip + sum(strip + 2 * block.shape[0] for _, block in blocks)
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    for c, label in enumerate(labels):
        draw.text((c * tile + 3, 2), label, fill="black")
    y = strip
    for name, block in blocks:
        draw.text((3, y + 2), f"{name} sketches as input", fill=INPUT_FRAME)
        y += strip
        image = Image.fromarray(block)
        canvas.paste(image.resize((image.width * 2, image.height * 2), Image.Resampling.NEAREST),
                     (0, y))
        y += 2 * block.shape[0]
    return canvas


# ---------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------


class RealismCollector:
    """An `OutputHook` keeping every output at one hint count, per (sketch set, system)."""

    def __init__(self, hints: int, count: int, resolution: int):
        self.hints = hints
        self.count = count
        self.resolution = resolution
        self.outputs: dict[tuple[str, str], np.ndarray] = {}

    def __call__(self, name, system, n, items, outputs) -> None:
        if n != self.hints:
            return
        shape = (self.count, self.resolution, self.resolution, 3)
        self.outputs.setdefault((name, system), np.zeros(shape, np.uint8))[items] = outputs

    def scores(self, images: np.ndarray, config: RealismConfig,
               net: RealismNet | None = None) -> list[dict]:
        """Held-out accuracy of the two-sample test for each collected cell, and with a
        realism `net` KID against `images` ("kid", "kid_low", "kid_high": the estimate and
        its 95 % bootstrap interval, raw units)."""
        real_features = extract_features(net, images) if net is not None else None
        rows = []
        for (name, system), fakes in tqdm(self.outputs.items(), desc="realism"):
            accuracy = two_sample_accuracy(np.asarray(images), fakes, config)
            row = {"sketches": name, "system": system, "hints": self.hints,
                   "realism_accuracy": accuracy, "count": len(fakes)}
            if net is not None:
                result = kid(real_features, extract_features(net, fakes), seed=config.seed)
                row.update(kid=result.value, kid_low=result.low, kid_high=result.high)
            rows.append(row)
        return rows


def format_realism_table(rows: Sequence[dict]) -> str:
    """Realism rows as markdown: accuracy 0.5 = indistinguishable from real, 1.0 = trivially
    fake; KID x 1000 with its 95 % interval (0 = real) where the rows have it."""
    with_kid = any("kid" in r for r in rows)
    lines = ["| sketches | system | hints | realism accuracy (lower is better) | "
             + ("KID x1000 [95 % CI] (lower is better) | " if with_kid else "") + "N |",
             "|---|---|---|---|" + ("---|" if with_kid else "") + "---|"]
    for r in rows:
        kid_cell = (f"{1000 * r['kid']:.2f} [{1000 * r['kid_low']:.2f}, "
                    f"{1000 * r['kid_high']:.2f}] | " if "kid" in r else
                    "- | " if with_kid else "")
        lines.append(f"| {r['sketches']} | {r['system']} | {r['hints']} | "
                     f"{r['realism_accuracy']:.3f} | {kid_cell}{r['count']} |")
    return "\n".join(lines)


def pick_realism_net(folder: str | None, resolution: int) -> RealismNet | None:
    """The realism net for KID: `folder`, or (None) the bundled one when present.

    Returns None, after one line on stderr, when the bundled net is missing or works at
    another resolution than the model; an asked-for `folder` must load and fit, else
    ValueError.
    """
    if folder is None:
        if not (BUNDLED_REALISM / "config.json").is_file():
            print("No bundled realism net (weights/realism): KID is left out.", file=sys.stderr)
            return None
        net = load_realism_net(BUNDLED_REALISM)
        if net.config.resolution != resolution:
            print(f"The bundled realism net works at {net.config.resolution} px, the model at "
                  f"{resolution} px: KID is left out.", file=sys.stderr)
            return None
        return net
    net = load_realism_net(folder)
    if net.config.resolution != resolution:
        raise ValueError(f"The realism net in {folder} works at {net.config.resolution} px but "
                         f"the model at {resolution} px.")
    return net


def parse_hint_counts(text: str) -> tuple[int, ...]:
    """'0,1,5' -> (0, 1, 5): distinct non-negative integers, in the given order."""
    try:
        counts = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError as error:
        raise argparse.ArgumentTypeError(
            f"not a comma-separated list of integers: {text!r}"
        ) from error
    if not counts or min(counts) < 0 or len(set(counts)) != len(counts):
        raise argparse.ArgumentTypeError(f"need distinct non-negative hint counts, got {text!r}")
    return counts


def parse_args(argv: list[str] | None = None) -> EvalConfig:
    """Flags -> EvalConfig; bad values stop here, before anything loads."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weights", required=True, help="Sketch2Anime weights folder")
    parser.add_argument("--data", required=True, help="folder written by training.prepare_data")
    parser.add_argument("--out", required=True, help="folder for results and figures")
    parser.add_argument("--baseline", default=None,
                        help="SimpleGAN weights folder (default: <weights>/baseline if present)")
    parser.add_argument("--limit", type=int, default=0, help="first N val items (0 = all)")
    parser.add_argument("--hints", type=parse_hint_counts, default=(0, 1, 5, 10, 20),
                        help="comma-separated numbers of simulated hint strokes")
    parser.add_argument("--k", type=int, default=10, help="neighbours for the projection")
    parser.add_argument("--seed", type=int, default=0, help="seeds hints and degradation")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--realism-hints", type=int, default=5,
                        help="hint count whose outputs the realism test judges (-1 = skip it)")
    parser.add_argument("--realism-epochs", type=int, default=RealismConfig.epochs,
                        help="training epochs of the realism classifier (same for all systems)")
    parser.add_argument("--realism-net", default=None,
                        help="realism net folder for KID (default: the bundled weights/realism)")
    args = parser.parse_args(argv)
    if args.realism_hints < 0:
        args.realism_hints = None
    elif args.realism_hints not in args.hints:
        parser.error(f"--realism-hints {args.realism_hints} must be one of --hints {args.hints}")
    if args.realism_epochs < 1:
        parser.error("--realism-epochs must be at least 1")
    if args.limit < 0:
        parser.error("--limit must be 0 (all) or positive")
    if args.k < 1:
        parser.error("--k must be at least 1")
    if args.seed < 0:
        parser.error("--seed must be non-negative")
    if args.batch_size < 1:
        parser.error("--batch-size must be at least 1")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda was asked for but no CUDA device is available")
    if args.baseline is None and (Path(args.weights) / BASELINE_DIR).is_dir():
        args.baseline = str(Path(args.weights) / BASELINE_DIR)
    return EvalConfig(**vars(args))


def main(argv: list[str] | None = None) -> int:
    """Run the evaluation; 0 on success, 2 (with a one-line message) on unusable input."""
    config = parse_args(argv)
    try:
        images, val_sketches = load_val_split(config.data, config.limit)
        pipe, baseline = load_systems(config.weights, config.baseline, pick_device(config.device))
        if images.shape[1] != pipe.resolution:
            raise ValueError(
                f"The data is {images.shape[1]} px but the model works at {pipe.resolution} px."
            )
        net = None
        if config.realism_hints is not None:
            net = pick_realism_net(config.realism_net, pipe.resolution)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if baseline is None:
        print("No baseline weights: the simplegan system is left out.", file=sys.stderr)

    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    sketches = make_sketch_sets(val_sketches, config.seed)
    collector = None
    if config.realism_hints is not None:
        collector = RealismCollector(config.realism_hints, len(images), pipe.resolution)
    rows = evaluate(pipe, baseline, images, sketches, config.hints, config.k, config.seed,
                    config.batch_size, on_outputs=collector)
    date = datetime.datetime.now().isoformat(timespec="seconds")
    header = (f"Evaluation of weights `{config.weights}` (baseline `{config.baseline}`) on "
              f"`{config.data}` val, N={len(images)}, k={config.k}, seed={config.seed}, {date}")
    table = write_results(rows, out, header)
    if collector is not None:
        realism = collector.scores(images, RealismConfig(epochs=config.realism_epochs,
                                                         seed=config.seed), net)
        (out / "realism.json").write_text(json.dumps(realism, indent=2) + "\n")
        realism_table = format_realism_table(realism)
        with open(out / "results.md", "a", encoding="utf-8") as handle:
            handle.write(f"\nRealism: classifier two-sample test (held-out accuracy of a small "
                         f"CNN telling real val faces from outputs; 0.5 = indistinguishable)"
                         f" and KID x 1000 against real val faces on the fixed realism net "
                         f"(0 = real; 95 % bootstrap interval)."
                         f"\n\n{realism_table}\n")
        table += "\n\n" + realism_table
    plot_psnr_vs_hints(rows, out / "psnr_vs_hints.png")
    sample_grid(pipe, baseline, images, sketches, config.k, config.seed).save(out / "samples.png")
    print(header)
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
