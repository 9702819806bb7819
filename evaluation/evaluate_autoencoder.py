"""How much of the drawing a stage-1 autoencoder's latent keeps (compare two autoencoders).

    python -m evaluation.evaluate_autoencoder --autoencoder runs/autoencoder/autoencoder \
        --data data/

On `--items` validation sketches, edge F1 between the input sketch and (1 px tolerance by
default: at 2 px an all-ink 96 px image already scores 0.4-0.7 against a typical sketch):
- `reconstruction`: the decoder's sketch of the sketch's own latent;
- `nn_l2` / `nn_cosine`: the training sketch whose latent is nearest (out of
  `--bank-items`) by L2 distance / by angle (`s2a.projection.METRICS`); the projection
  builds on these neighbours, so they should look like the input;
- `degraded_nn_l2` / `degraded_nn_cosine`: the same, searched from an amateur-like
  version of the sketch (`training.degrade`) but scored against the clean one: does a bad
  drawing find what was meant?
- `random_neighbour`: a random training sketch, the floor the others must beat.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch
from tqdm import tqdm

from s2a.metrics import edge_f1
from s2a.models import SketchAutoencoder
from s2a.pipeline import to_pil_grey
from s2a.projection import METRICS, LatentBank
from training.build_bank import encode_sketches
from training.data import load_split
from training.degrade import degrade_batch


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--autoencoder", required=True, help="model folder (config + weights)")
    parser.add_argument("--data", required=True, help="folder written by training.prepare_data")
    parser.add_argument("--items", type=int, default=500, help="validation sketches scored")
    parser.add_argument("--bank-items", type=int, default=10_000,
                        help="training sketches searched for neighbours")
    parser.add_argument("--tolerance", type=float, default=1.0, help="edge F1 tolerance (px)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.items < 1 or args.bank_items < 1:
        parser.error("--items and --bank-items must be at least 1")
    return args


def latent_quality(model: SketchAutoencoder, val: np.ndarray, train: np.ndarray,
                   seed: int = 0, tolerance: float = 1.0) -> dict[str, float]:
    """Mean edge F1 against the clean val sketches of everything listed in the docstring."""
    rng = np.random.default_rng(seed)
    cpu = torch.device("cpu")
    latents = encode_sketches(model, train, 256, cpu)  # (M, d)
    queries = {"": encode_sketches(model, val, 256, cpu),  # (N, d) each
               "degraded_": encode_sketches(model, degrade_batch(val, seed), 256, cpu)}
    with torch.no_grad():
        decoded = model.decode(torch.from_numpy(queries[""]))[:, 0]  # (N, R, R)
    found = {}  # name -> (N,) bank rows
    for metric in METRICS:
        bank = LatentBank(latents, "flat", metric=metric)
        for prefix, z in queries.items():
            found[f"{prefix}nn_{metric}"] = bank.search(z, 1)[1][:, 0]
    scores = {name: [] for name in ("reconstruction", *found, "random_neighbour")}
    for i in tqdm(range(len(val)), desc="scoring"):
        others = {"reconstruction": to_pil_grey(decoded[i]),
                  "random_neighbour": train[rng.integers(len(train))],
                  **{name: train[rows[i]] for name, rows in found.items()}}
        for name, other in others.items():
            scores[name].append(edge_f1(val[i], other, tolerance))
    return {name: float(np.mean(values)) for name, values in scores.items()}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        _, val = load_split(args.data, "val")
        _, train = load_split(args.data, "train")
        model = SketchAutoencoder.from_pretrained(args.autoencoder).eval()
    except (ValueError, OSError) as error:
        raise SystemExit(f"error: {error}") from None
    rng = np.random.default_rng(args.seed)
    val = np.asarray(val[np.sort(rng.permutation(len(val))[:args.items])])
    train = np.asarray(train[np.sort(rng.permutation(len(train))[:args.bank_items])])
    report = {"autoencoder": args.autoencoder, "items": len(val), "bank_items": len(train),
              "tolerance_px": args.tolerance,
              **latent_quality(model, val, train, args.seed, args.tolerance)}
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
