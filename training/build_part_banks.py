"""Stage 3b: the part banks: every training sketch's window per part, and the rest.

    python -m training.build_part_banks --data data/ --parts runs/parts_clean/ \
        --students runs/parts/ --autoencoder weights/autoencoder --out runs/parts_model

Encodes each training sketch's window with its part autoencoder (from
`training.train_parts`) and the sketch with all windows blanked with the whole-face
autoencoder (the "rest") into one bank per part. With `--rest whole --bank B` the rest is
the whole sketch on the whole-face bank B (the bundled weights since v1.5: as close as the
whole-face model outside the windows); no rest bank is encoded or written then.
With --students (a train_parts --teacher run against --parts), the banks hold the
teachers' latents of the clean windows and the folder ships the students (their encoders
read rough drawings into the same latent space), as the whole-face bank holds the stage-1
latents beside the completing encoder. The folder (`s2a.parts.PartModel`: parts.json,
<part>/autoencoder/, <part>/bank/) is what `training.export --parts` puts into weights/.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from s2a.models import SketchAutoencoder
from s2a.parts import PART_NAMES, REST_SOURCES, WINDOWED_PARTS, PartModel, PartWindow
from s2a.projection import LatentBank
from training.build_bank import check_encoding_args
from training.common import pick_device
from training.data import load_split, sketch_to_tensor


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="folder written by training.prepare_data")
    parser.add_argument("--parts", required=True,
                        help="run folder of training.train_parts (<part>/autoencoder/)")
    parser.add_argument("--students", default=None,
                        help="a train_parts --teacher run whose part autoencoders are shipped "
                             "(default: those of --parts)")
    parser.add_argument("--autoencoder", required=True,
                        help="the whole-face autoencoder, which encodes the rest")
    parser.add_argument("--out", required=True, help="parts folder to write")
    parser.add_argument("--rest", choices=REST_SOURCES, default="blanked",
                        help="what the rest reads: the sketch with the windows blanked (its "
                             "own bank) or the whole sketch (the whole-face --bank)")
    parser.add_argument("--bank", default=None,
                        help="the whole-face latent bank (needed with --rest whole)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--dry-run", action="store_true", help="check the inputs, build nothing")
    args = parser.parse_args(argv)
    for flag in ("parts", "students"):
        run = getattr(args, flag)
        for name in WINDOWED_PARTS if run else ():
            if not (Path(run) / name / "autoencoder" / "model.safetensors").is_file():
                parser.error(f"--{flag} {run} has no {name}/autoencoder/model.safetensors")
    try:  # the windows the parts were trained on, from the run's resolved config
        windows = json.loads((Path(args.parts) / "config.json").read_text())["windows"]
        args.windows = {n: PartWindow(**windows[n]) for n in WINDOWED_PARTS}
    except (OSError, KeyError, TypeError, ValueError):
        parser.error(f"--parts {args.parts}: no windows in its config.json "
                     "(a run folder of training.train_parts)")
    if args.rest == "whole" and not args.bank:
        parser.error("--rest whole needs --bank (the whole-face latent bank folder)")
    check_encoding_args(parser, args)
    return args


@torch.no_grad()
def encode_parts(parts: PartModel, sketches: np.ndarray, batch_size: int,
                 device: torch.device, names: tuple[str, ...] = PART_NAMES
                 ) -> dict[str, np.ndarray]:
    """(N, R, R) uint8 sketches -> {part: (N, d_part) float32 latents} for `names`."""
    latents = {name: [] for name in names}
    for start in tqdm(range(0, len(sketches), batch_size), desc="encode parts", unit="batch"):
        batch = torch.stack([sketch_to_tensor(s) for s in sketches[start:start + batch_size]])
        for name, crop in parts.inputs(batch.to(device)).items():
            if name in latents:
                latents[name].append(parts.autoencoders[name].encode(crop).cpu().numpy())
    return {name: np.concatenate(chunks).astype(np.float32) for name, chunks in latents.items()}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    _, sketches = load_split(args.data, "train")
    if args.dry_run:
        print(f"Would encode {len(sketches)} sketches into {len(PART_NAMES)} part banks")
        return 0
    device = pick_device(args.device)
    with contextlib.redirect_stdout(io.StringIO()):
        autoencoders = {n: SketchAutoencoder.from_pretrained(
            Path(args.parts) / n / "autoencoder").to(device).eval() for n in WINDOWED_PARTS}
        rest = SketchAutoencoder.from_pretrained(args.autoencoder).to(device).eval()
    # Placeholder one-row banks let PartModel check the shapes before the long encode.
    placeholder = {n: LatentBank(np.ones((1, (autoencoders.get(n) or rest).config.latent_dim),
                                         np.float32)) for n in PART_NAMES}
    parts = PartModel(args.windows, autoencoders, placeholder, rest)
    whole_bank = None
    if args.rest == "whole":
        try:
            whole_bank = LatentBank.load(args.bank)
        except (FileNotFoundError, ValueError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    latents = encode_parts(parts, sketches, args.batch_size, device,
                           WINDOWED_PARTS if whole_bank is not None else PART_NAMES)
    for name, values in latents.items():
        if not np.isfinite(values).all():
            print(f"error: the {name} encoder produced NaN/inf latents", file=sys.stderr)
            return 2
    banks = {name: LatentBank(values, index_type="flat", storage="int8", metric="cosine")
             for name, values in latents.items()}
    if whole_bank is not None:
        banks["rest"] = whole_bank
    if args.students:
        with contextlib.redirect_stdout(io.StringIO()):
            autoencoders = {n: SketchAutoencoder.from_pretrained(
                Path(args.students) / n / "autoencoder").eval() for n in WINDOWED_PARTS}
    try:
        model = PartModel(args.windows, autoencoders, banks, rest, rest=args.rest)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    model.save(args.out)
    print(f"Saved {len(latents)} part banks of {len(sketches)} sketches to {args.out} "
          f"(rest: {args.rest})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
