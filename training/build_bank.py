"""Stage 3: encode every training sketch and save the latent bank (latents + FAISS index).

    python -m training.build_bank --data data/ --autoencoder runs/autoencoder/autoencoder \
        --out runs/bank
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from s2a.models import SketchAutoencoder
from s2a.projection import INDEX_TYPES, LENGTHS, METRICS, STORAGES, LatentBank
from training.common import pick_device
from training.data import encode_sketches, load_split


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="folder written by training.prepare_data")
    parser.add_argument("--autoencoder", required=True, help="stage-1 model folder")
    parser.add_argument("--out", required=True, help="folder for the bank files")
    parser.add_argument("--split", default="train", choices=("train", "val"))
    parser.add_argument("--index-type", default="auto", choices=INDEX_TYPES)
    parser.add_argument("--storage", default="int8", choices=STORAGES,
                        help="on-disk precision: int8 halves fp16's size (30k x 512 = 15 MB)")
    parser.add_argument("--metric", default="cosine", choices=METRICS,
                        help="how neighbours are ranked (see s2a.projection.METRICS)")
    parser.add_argument("--length", default="affine", choices=LENGTHS,
                        help="how long a projection is (see s2a.projection.LENGTHS); the "
                        "generator must be trained on the same bank")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--dry-run", action="store_true", help="check the inputs, build nothing")
    args = parser.parse_args(argv)
    check_encoding_args(parser, args)
    return args


def check_encoding_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """The flags every bank builder shares: --autoencoder, --data, --batch-size, --device."""
    if not (Path(args.autoencoder) / "model.safetensors").is_file():
        parser.error(f"--autoencoder {args.autoencoder} has no model.safetensors")
    if not (Path(args.data) / "meta.json").is_file():
        parser.error(f"--data {args.data} holds no prepared data (run training.prepare_data)")
    if args.batch_size < 1:
        parser.error("--batch-size must be at least 1")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda was asked for but no CUDA device is available")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    _, sketches = load_split(args.data, args.split)
    if args.dry_run:
        print(f"Would encode {len(sketches)} {args.split} sketches into {args.out}")
        return 0
    device = pick_device(args.device)
    model = SketchAutoencoder.from_pretrained(args.autoencoder).to(device).eval()
    latents = encode_sketches(model, sketches, args.batch_size, device)
    if not np.isfinite(latents).all():
        print("error: the encoder produced NaN/inf latents; retrain stage 1", file=sys.stderr)
        return 2
    bank = LatentBank(latents, index_type=args.index_type, storage=args.storage,
                      metric=args.metric, length=args.length)
    bank.save(args.out)
    print(f"Saved a bank of {len(bank)} latents (d={bank.dim}, {bank.index_type}, "
          f"{bank.metric}, {bank.length} length) to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
