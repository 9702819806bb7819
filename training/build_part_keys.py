"""Stage 3c: the part keys, where each face part's neighbours are searched (`s2a.part_keys`).

    python -m training.build_part_keys --parts weights/parts --bank weights/bank \
        --autoencoder weights/autoencoder

Decodes every latent of the whole-face bank to the decoder's 24 px map, crops each part's
window, fits its leading principal directions and writes the keys (and `--own-weight`,
how much the part's own latent counts when the nearest keys are re-ranked) into the parts folder
(``keys.json`` and ``<part>/keys/``), beside the part banks of `training.build_part_banks`.
`--autoencoder` must be the one whose decoder reads the bank's latents (weights/autoencoder:
the completing encoder keeps v0.3's decoder). When the parts folder sits in a weights
folder with a manifest, the manifest is rewritten. Under a minute on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
from pathlib import Path

from s2a.manifest import MANIFEST, write_manifest
from s2a.models import SketchAutoencoder
from s2a.part_keys import DEFAULT_DIMS, DEFAULT_LEVEL, DEFAULT_OWN_WEIGHT, PartKeys
from s2a.parts import WINDOWED_PARTS, read_part_windows
from s2a.projection import LatentBank


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--parts", required=True,
                        help="parts folder (parts.json, <part>/bank/) to add the keys to")
    parser.add_argument("--bank", required=True, help="the whole-face latent bank folder")
    parser.add_argument("--autoencoder", required=True,
                        help="the whole-face autoencoder whose decoder reads the bank")
    parser.add_argument("--dims", type=int, default=DEFAULT_DIMS,
                        help="principal directions kept per part")
    parser.add_argument("--level", type=int, default=DEFAULT_LEVEL,
                        help="decoder up-blocks before the crop (2: 24 px at 96 px)")
    parser.add_argument("--own-weight", type=float, default=DEFAULT_OWN_WEIGHT,
                        help="weight of the part's own latent when the nearest keys are "
                             "re-ranked (0: the keys alone)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.dims < 1:
        parser.error(f"--dims must be at least 1, got {args.dims}")
    if not args.own_weight >= 0:
        parser.error(f"--own-weight must be >= 0, got {args.own_weight}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        windows, _, _ = read_part_windows(args.parts)
        bank = LatentBank.load(args.bank)
        with contextlib.redirect_stdout(io.StringIO()):
            autoencoder = SketchAutoencoder.from_pretrained(args.autoencoder).eval()
        if bank.dim != autoencoder.config.latent_dim:
            raise ValueError(f"The bank's latents are {bank.dim}-d, the autoencoder's "
                             f"{autoencoder.config.latent_dim}-d.")
        part_bank = LatentBank.load(Path(args.parts) / WINDOWED_PARTS[0] / "bank")
        if len(part_bank) != len(bank):
            raise ValueError(f"The part banks hold {len(part_bank)} sketches, the bank "
                             f"{len(bank)}: not built from the same training sketches.")
        keys = PartKeys.fit(autoencoder, bank.latents, windows, args.dims, args.level,
                            args.seed, args.own_weight)
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    keys.save(args.parts)
    print(f"Saved part keys ({args.dims}-d, level {args.level}) of {len(bank)} sketches "
          f"to {args.parts}")
    weights = Path(args.parts).resolve().parent
    if (weights / MANIFEST).is_file():
        write_manifest(weights)
        print(f"Rewrote {weights / MANIFEST}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
