"""Prepare training data: images -> square crops, sketches, a train/val split, compact arrays.

    python -m training.prepare_data --images ../shared/data/anime-faces/faces.zip \
        --out data/ --resolution 96

Reads a folder or a zip of images in place. Writes to --out:
  {train,val}_images.npy    (N, R, R, 3) uint8 RGB
  {train,val}_sketches.npy  (N, R, R) uint8, 0 = ink, 255 = paper
  index.csv                 file, split, row (or the reason it was filtered/skipped)
  meta.json                 the arguments and counts; a rerun with equal arguments reuses
  contact_sheet.png         rows of image | sketch | simulated hints, to judge by eye
  filtered_sheet.png        examples of what the filters removed
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import os
import sys
import time
import zipfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from s2a.sketch import extract_sketch
from training.simulate_hints import simulate_hints

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
FORMAT_VERSION = 1  # bump when the output layout or the filters change


@dataclass(frozen=True)
class PrepareConfig:
    images: str
    out: str
    resolution: int = 96
    val_percent: float = 5.0
    min_colourfulness: float = 12.0
    min_ink_fraction: float = 0.02
    limit: int = 0


def iter_image_bytes(source: Path) -> Iterator[tuple[str, bytes]]:
    """Yield (name, bytes) for every image file in a folder or zip, sorted by name."""
    if source.is_file() and zipfile.is_zipfile(source):
        with zipfile.ZipFile(source) as archive:
            names = sorted(n for n in archive.namelist() if n.lower().endswith(IMAGE_SUFFIXES))
            for name in names:
                yield Path(name).name, archive.read(name)
    elif source.is_dir():
        paths = sorted(p for p in source.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        for path in paths:
            yield str(path.relative_to(source)), path.read_bytes()
    else:
        raise ValueError(f"{source} is neither a folder nor a zip file of images.")


def count_images(source: Path) -> int:
    """Number of image files `iter_image_bytes` will yield (for the progress bar)."""
    if source.is_file():
        with zipfile.ZipFile(source) as archive:
            return sum(n.lower().endswith(IMAGE_SUFFIXES) for n in archive.namelist())
    return sum(p.suffix.lower() in IMAGE_SUFFIXES for p in source.rglob("*"))


def center_crop_resize(image: Image.Image, resolution: int) -> Image.Image:
    """Crop the largest centred square and resize it to resolution x resolution."""
    width, height = image.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    square = image.crop((left, top, left + side, top + side))
    if side == resolution:
        return square
    return square.resize((resolution, resolution), Image.Resampling.LANCZOS)


def colourfulness(rgb: np.ndarray) -> float:
    """Hasler & Suesstrunk colourfulness of an (H, W, 3) uint8 image; ~0 for grey images."""
    rgb = rgb.astype(np.float32)
    rg = rgb[..., 0] - rgb[..., 1]
    yb = 0.5 * (rgb[..., 0] + rgb[..., 1]) - rgb[..., 2]
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))


def is_validation(name: str, val_percent: float) -> bool:
    """Deterministic split by a hash of the file name, stable across machines and reruns."""
    digest = int(hashlib.sha1(name.encode("utf-8")).hexdigest()[:8], 16)
    return (digest % 10000) < val_percent * 100


def filter_reason(rgb: np.ndarray, sketch: np.ndarray, config: PrepareConfig) -> str:
    """Why an image would teach the wrong thing ('' if it is fine)."""
    if colourfulness(rgb) < config.min_colourfulness:
        return "monochrome"
    if (sketch < 128).mean() < config.min_ink_fraction:
        return "few_edges"
    return ""


def prepare(config: PrepareConfig) -> dict:
    """Run the preparation (or reuse a finished one with equal arguments); return meta."""
    out = Path(config.out)
    meta_path = out / "meta.json"
    wanted = {"format_version": FORMAT_VERSION, "config": asdict(config)}
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if {k: meta.get(k) for k in wanted} == wanted:
            print(f"Reusing {out} (prepared earlier with the same arguments).")
            return meta
    source = Path(config.images)
    if not source.exists():
        raise ValueError(f"--images {source} does not exist.")
    out.mkdir(parents=True, exist_ok=True)
    meta_path.unlink(missing_ok=True)  # an interrupted run must not look finished

    start = time.perf_counter()
    arrays = {"train": ([], []), "val": ([], [])}
    rows: list[tuple[str, str, str]] = []
    counts: Counter = Counter()
    filtered_examples: list[tuple[np.ndarray, np.ndarray, str]] = []
    total = count_images(source)
    if config.limit:
        total = min(total, config.limit)
    progress = tqdm(iter_image_bytes(source), total=total, desc="prepare", unit="img")
    for number, (name, data) in enumerate(progress):
        if config.limit and number >= config.limit:
            break
        try:
            with Image.open(io.BytesIO(data)) as opened:
                image = center_crop_resize(opened.convert("RGB"), config.resolution)
        except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
            counts["skipped_unreadable"] += 1
            rows.append((name, "skipped", "unreadable"))
            continue
        rgb = np.asarray(image, dtype=np.uint8)  # (R, R, 3)
        sketch = np.asarray(extract_sketch(image), dtype=np.uint8)  # (R, R)
        reason = filter_reason(rgb, sketch, config)
        if reason:
            counts[f"filtered_{reason}"] += 1
            rows.append((name, "filtered", reason))
            if len(filtered_examples) < 32:
                filtered_examples.append((rgb, sketch, reason))
            continue
        split = "val" if is_validation(name, config.val_percent) else "train"
        images, sketches = arrays[split]
        rows.append((name, split, str(len(images))))
        images.append(rgb)
        sketches.append(sketch)

    resolution = config.resolution
    for split, (images, sketches) in arrays.items():
        counts[split] = len(images)
        image_array = np.stack(images) if images else np.zeros((0, resolution, resolution, 3))
        sketch_array = np.stack(sketches) if sketches else np.zeros((0, resolution, resolution))
        np.save(out / f"{split}_images.npy", image_array.astype(np.uint8))
        np.save(out / f"{split}_sketches.npy", sketch_array.astype(np.uint8))
    with open(out / "index.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "split", "row_or_reason"])
        writer.writerows(rows)
    write_contact_sheet(out / "contact_sheet.png", arrays["val"][0] or arrays["train"][0],
                        arrays["val"][1] or arrays["train"][1])
    write_filtered_sheet(out / "filtered_sheet.png", filtered_examples)

    meta = dict(wanted, counts=dict(counts), seconds=round(time.perf_counter() - start, 1))
    meta["bytes"] = sum(f.stat().st_size for f in out.glob("*.npy"))
    meta_path.write_text(json.dumps(meta, indent=2))
    return meta


def write_contact_sheet(path: Path, images: list, sketches: list, rows: int = 12) -> None:
    """Rows of image | sketch | simulated hints, from fixed samples, for a person to judge."""
    if not images:
        return
    rng = np.random.default_rng(0)
    picks = np.linspace(0, len(images) - 1, num=min(rows, len(images))).astype(int)
    lines = []
    for i in picks:
        hints = np.asarray(simulate_hints(images[i], rng), dtype=np.float32)  # (R, R, 4)
        alpha = hints[..., 3:] / 255.0
        # Hints over a checkerboard-free light grey so white background hints still show.
        hint_view = hints[..., :3] * alpha + 200.0 * (1.0 - alpha)
        sketch_rgb = np.repeat(sketches[i][..., None], 3, axis=2)
        lines.append(np.concatenate([images[i], sketch_rgb, hint_view.astype(np.uint8)], axis=1))
    sheet = np.concatenate(lines, axis=0)
    Image.fromarray(sheet).resize((sheet.shape[1] * 2, sheet.shape[0] * 2),
                                  Image.Resampling.NEAREST).save(path)


def write_filtered_sheet(path: Path, examples: list) -> None:
    """A grid of filtered images with their sketches, labelled by colour bar: what was removed."""
    if not examples:
        return
    tiles = []
    for rgb, sketch, reason in examples[:16]:
        tile = np.concatenate([rgb, np.repeat(sketch[..., None], 3, axis=2)], axis=1).copy()
        tile[:4] = (255, 0, 0) if reason == "monochrome" else (0, 0, 255)  # red / blue bar
        tiles.append(tile)
    while len(tiles) % 4:
        tiles.append(np.full_like(tiles[0], 255))
    grid = np.concatenate(
        [np.concatenate(tiles[r : r + 4], axis=1) for r in range(0, len(tiles), 4)], axis=0
    )
    Image.fromarray(grid).save(path)


def parse_args(argv: list[str] | None = None) -> PrepareConfig:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", required=True, help="folder or zip of images")
    parser.add_argument("--out", default="data/", help="output folder (keep it git-ignored)")
    parser.add_argument("--resolution", type=int, default=96)
    parser.add_argument("--val-percent", type=float, default=5.0)
    parser.add_argument("--min-colourfulness", type=float, default=12.0,
                        help="drop near-monochrome images below this colourfulness")
    parser.add_argument("--min-ink-fraction", type=float, default=0.02,
                        help="drop images whose sketch has fewer ink pixels than this share")
    parser.add_argument("--limit", type=int, default=0, help="only the first N images (0 = all)")
    args = parser.parse_args(argv)
    if args.resolution < 16:
        parser.error("--resolution must be at least 16")
    if not 0 < args.val_percent < 100:
        parser.error("--val-percent must be between 0 and 100")
    return PrepareConfig(**{k: v for k, v in vars(args).items()})


def main(argv: list[str] | None = None) -> int:
    config = parse_args(argv)
    try:
        meta = prepare(config)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    counts = meta["counts"]
    print(json.dumps(counts, sort_keys=True))
    print(f"{meta['bytes'] / 2**20:.1f} MiB of arrays in {os.path.abspath(config.out)}, "
          f"{meta['seconds']} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
