"""Pack prepared data small enough to carry to another machine, and unpack it there.

    python -m training.pack_data pack --data data/ --out pack/ --quality 75 --val 64
    python -m training.pack_data unpack --pack pack/ --out data/

The prepared arrays are ~1.1 GB; a remote GPU machine may take far less. `pack` keeps the
split exactly as prepared and stores each face as lossy WebP (quality 75: ~1.7 KB a face,
mean absolute error ~4 of 255), plus the first `--val` validation faces for sample grids.
`unpack` decodes them and redraws the sketches from the decoded faces with the same
extractor (edge F1 against the original sketches ~0.97 at 2 px), so the folder it writes
is what training.prepare_data would have written. Bytes are stored as plain uint8 arrays
with their offsets: nothing is pickled.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from s2a.sketch import extract_sketch
from training.data import load_split

SPLITS = ("train", "val")


def encode_faces(images: np.ndarray, quality: int) -> tuple[np.ndarray, np.ndarray]:
    """(N, R, R, 3) uint8 -> (all WebP bytes as uint8, (N + 1,) int64 offsets)."""
    chunks, offsets = [], [0]
    for image in tqdm(images, desc="pack", unit="img"):
        buffer = io.BytesIO()
        Image.fromarray(np.asarray(image)).save(buffer, "WEBP", quality=quality, method=6)
        chunks.append(np.frombuffer(buffer.getvalue(), dtype=np.uint8))
        offsets.append(offsets[-1] + len(chunks[-1]))
    return np.concatenate(chunks), np.asarray(offsets, dtype=np.int64)


def decode_face(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """WebP bytes -> (face (R, R, 3), sketch (R, R)), both uint8."""
    with Image.open(io.BytesIO(data)) as opened:
        image = opened.convert("RGB")
    return np.asarray(image, dtype=np.uint8), np.asarray(extract_sketch(image), dtype=np.uint8)


def pack(data: Path, out: Path, quality: int, val_count: int, train_count: int = 0,
         train_start: int = 0) -> dict:
    meta = json.loads((data / "meta.json").read_text())
    out.mkdir(parents=True, exist_ok=True)
    counts = {}
    for split in SPLITS:
        images, _ = load_split(data, split)
        if split == "val":
            images = images[:val_count]
        elif train_count or train_start:  # a subset, for a transfer too small for all of it
            images = images[train_start:train_start + train_count if train_count else None]
            if len(images) == 0:
                raise ValueError(f"--train-start {train_start} is past the {split} split's end")
        blob, offsets = encode_faces(images, quality)
        np.save(out / f"{split}_webp.npy", blob)
        np.save(out / f"{split}_offsets.npy", offsets)
        counts[split] = len(images)
    meta["packed"] = {"quality": quality, "counts": counts}
    (out / "meta.json").write_text(json.dumps(meta, indent=2))
    meta["packed"]["bytes"] = sum(f.stat().st_size for f in out.iterdir())
    return meta


def unpack(source: Path, out: Path, workers: int) -> dict:
    meta = json.loads((source / "meta.json").read_text())
    out.mkdir(parents=True, exist_ok=True)
    (out / "meta.json").unlink(missing_ok=True)  # an interrupted unpack must not look finished
    for split in SPLITS:
        blob = np.load(source / f"{split}_webp.npy")
        offsets = np.load(source / f"{split}_offsets.npy")
        items = [blob[a:b].tobytes() for a, b in zip(offsets[:-1], offsets[1:])]
        with ProcessPoolExecutor(max_workers=workers) as pool:
            pairs = list(tqdm(pool.map(decode_face, items, chunksize=256), total=len(items),
                              desc=f"unpack {split}", unit="img"))
        np.save(out / f"{split}_images.npy", np.stack([face for face, _ in pairs]))
        np.save(out / f"{split}_sketches.npy", np.stack([sketch for _, sketch in pairs]))
    (out / "meta.json").write_text(json.dumps(meta, indent=2))
    return meta


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    packing = commands.add_parser("pack", help="prepared data -> compact pack")
    packing.add_argument("--data", required=True, help="folder written by training.prepare_data")
    packing.add_argument("--out", required=True)
    packing.add_argument("--quality", type=int, default=75, help="WebP quality, 1-100")
    packing.add_argument("--val", type=int, default=64, help="validation faces to keep")
    packing.add_argument("--train", type=int, default=0,
                         help="training faces to keep, from --train-start on (0 = all)")
    packing.add_argument("--train-start", type=int, default=0,
                         help="first training face kept (another call's faces for a second "
                              "transfer)")
    unpacking = commands.add_parser("unpack", help="pack -> prepared data")
    unpacking.add_argument("--pack", required=True)
    unpacking.add_argument("--out", required=True)
    unpacking.add_argument("--workers", type=int, default=4)
    args = parser.parse_args(argv)
    if args.command == "pack":
        if not (Path(args.data) / "meta.json").is_file():
            parser.error(f"--data {args.data} holds no prepared data (run training.prepare_data)")
        if not 1 <= args.quality <= 100:
            parser.error("--quality must be between 1 and 100")
        if args.val < 1:
            parser.error("--val must be at least 1 (sample grids need validation faces)")
        if args.train < 0 or args.train_start < 0:
            parser.error("--train and --train-start must be at least 0 (--train 0 keeps every "
                         "training face)")
    else:
        if not (Path(args.pack) / "meta.json").is_file():
            parser.error(f"--pack {args.pack} is not a pack (no meta.json)")
        if args.workers < 1:
            parser.error("--workers must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    start = time.perf_counter()
    if args.command == "pack":
        try:
            meta = pack(Path(args.data), Path(args.out), args.quality, args.val, args.train,
                        args.train_start)
        except ValueError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        print(f"Packed {meta['packed']['counts']} into {args.out}: "
              f"{meta['packed']['bytes'] / 2**20:.1f} MiB in {time.perf_counter() - start:.0f} s")
    else:
        if Path(args.out).resolve() == Path(args.pack).resolve():
            print("error: --out must differ from --pack", file=sys.stderr)
            return 2
        unpack(Path(args.pack), Path(args.out), args.workers)
        print(f"Unpacked {args.pack} into {args.out} in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
