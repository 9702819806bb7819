"""Write the final inference weights into a weights folder (what the app loads).

    python -m training.export --autoencoder runs/autoencoder/autoencoder \
        --generator runs/generator/generator --bank runs/bank \
        --baseline runs/baseline/baseline --parts runs/parts_model \
        --face-locator runs/face_locator/face_locator --out weights/

Layout: <out>/autoencoder/, <out>/generator/, <out>/baseline/ (config.json +
model.safetensors each), <out>/bank/ (latents + FAISS index), with --parts the per-part
model <out>/parts/ (`s2a.parts`: parts.json, <part>/autoencoder/, <part>/bank/, from
`training.build_part_banks`), with --face-locator <out>/face_locator/ (face-aware
framing, `s2a.face_locator`) and, written last, <out>/manifest.json (SHA-256 and size of
every file, checked by from_pretrained). Each network is loaded (strictly) and saved
again, so only the tensors the model needs are written; --half stores them as float16
(the banks are written as they are). Everything is loaded and checked against everything
else before the first file is written, and the export rewrites the folder: a part it was
not given (a baseline, parts) does not survive from an earlier export.
"""

from __future__ import annotations

import argparse
import copy
import shutil
import sys
from pathlib import Path

import torch

from s2a import Sketch2Anime
from s2a.face_locator import FaceLocator
from s2a.hub import (
    AUTOENCODER_DIR,
    BANK_DIR,
    BASELINE_DIR,
    FACE_LOCATOR_DIR,
    GENERATOR_DIR,
    PARTS_DIR,
)
from s2a.manifest import MANIFEST, write_manifest
from s2a.models import SimpleGAN, SketchAutoencoder, load_generator
from s2a.parts import PARTS_FILE, WINDOWED_PARTS, PartModel
from s2a.projection import LatentBank


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--autoencoder", required=True, help="stage-1 model folder")
    parser.add_argument("--generator", required=True, help="stage-2 model folder")
    parser.add_argument("--bank", required=True, help="folder written by training.build_bank")
    parser.add_argument("--baseline", help="SimpleGAN model folder (optional)")
    parser.add_argument("--parts", help="per-part model folder written by "
                                        "training.build_part_banks (optional)")
    parser.add_argument("--face-locator", help="face locator folder written by "
                        "training.train_face_locator (optional: face-aware framing)")
    parser.add_argument("--out", default="weights/", help="weights folder to (re)write")
    parser.add_argument("--half", action="store_true",
                        help="store network weights as float16 (half the size; loaded as fp32)")
    parser.add_argument("--dry-run", action="store_true", help="check the inputs, write nothing")
    args = parser.parse_args(argv)
    for flag in ("autoencoder", "generator", "baseline"):
        folder = getattr(args, flag)
        if folder and not (Path(folder) / "model.safetensors").is_file():
            parser.error(f"--{flag} {folder} has no model.safetensors")
    if not (Path(args.bank) / "bank_latents.safetensors").is_file():
        parser.error(f"--bank {args.bank} holds no latent bank")
    if args.parts and not (Path(args.parts) / PARTS_FILE).is_file():
        parser.error(f"--parts {args.parts} has no {PARTS_FILE} "
                     "(a folder written by training.build_part_banks)")
    return args


def export_network(load, source: str, target: Path, half: bool) -> None:
    model = load(source).eval()
    if half:
        model = model.half()
    model.save_pretrained(target)


def export_parts(parts: PartModel, target: Path, half: bool) -> None:
    """Write the per-part model to `target`: the part autoencoders in float16 when `half`,
    the banks as they are ("rest" is the whole-face autoencoder, exported on its own)."""
    if half:
        autoencoders = {n: copy.deepcopy(parts.autoencoders[n]).half() for n in WINDOWED_PARTS}
        parts = PartModel(parts.windows, autoencoders, parts.banks, parts.autoencoders["rest"],
                          parts.feather, parts.keys, parts.rest)
    parts.save(target)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = Path(args.out)
    # Load everything first: a broken input must not leave a half-written weights folder.
    autoencoder = SketchAutoencoder.from_pretrained(args.autoencoder)
    try:
        bank = LatentBank.load(args.bank)
        parts = PartModel.load(args.parts, autoencoder, bank) if args.parts else None
        if args.face_locator:
            FaceLocator.from_pretrained(args.face_locator)
        pipe = Sketch2Anime(autoencoder, load_generator(args.generator), bank, parts=parts)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.dry_run:
        with_parts = " and the per-part model" if parts is not None else ""
        print(f"Would export {pipe.resolution} px models, a bank of {len(pipe.bank)}"
              f"{with_parts} to {out}")
        return 0
    (out / MANIFEST).unlink(missing_ok=True)  # a stale manifest must not outlive its files
    for part in (AUTOENCODER_DIR, GENERATOR_DIR, BANK_DIR, BASELINE_DIR, PARTS_DIR,
                 FACE_LOCATOR_DIR):
        shutil.rmtree(out / part, ignore_errors=True)
    export_network(SketchAutoencoder.from_pretrained, args.autoencoder, out / AUTOENCODER_DIR,
                   args.half)
    export_network(load_generator, args.generator, out / GENERATOR_DIR, args.half)
    if args.baseline:
        export_network(SimpleGAN.from_pretrained, args.baseline, out / BASELINE_DIR, args.half)
    pipe.bank.save(out / BANK_DIR)
    if parts is not None:
        export_parts(parts, out / PARTS_DIR, args.half)
    if args.face_locator:
        export_network(FaceLocator.from_pretrained, args.face_locator, out / FACE_LOCATOR_DIR,
                       args.half)
    write_manifest(out)  # last: SHA-256 and size of every file written above
    # The exported folder must load and run exactly as the app will use it.
    with torch.no_grad():
        exported = Sketch2Anime.from_pretrained(out)
        _ = exported.parts  # the per-part model otherwise loads only on its first call
    total = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"Exported to {out} ({total / 2**20:.1f} MiB in all)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
