"""The SimpleGAN baseline (pix2pix: sketch + hints -> face, no latent, no projection).

    python -m training.train_baseline --data data/ --out runs/baseline --steps 20000

Same data, losses, discriminator and budget as stage 2, so the comparison is fair.
Writes the model to <out>/baseline/ (config.json + model.safetensors).
"""

from __future__ import annotations

import argparse
from dataclasses import asdict

import numpy as np
import torch

from s2a.models import SimpleGAN, SimpleGANConfig
from training.common import Run, check_common_args, print_plan, setup, teardown
from training.data import data_resolution
from training.gan import add_gan_args, check_gan_args, roughen, start_from_init, train_gan


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_gan_args(parser)
    parser.add_argument("--channels", type=int, nargs="+",
                        default=list(SimpleGANConfig().channels))
    parser.add_argument("--init", default=None,
                        help="SimpleGAN folder to start from (fine-tuning; fresh discriminator)")
    args = parser.parse_args(argv)
    check_common_args(parser, args)
    check_gan_args(parser, args)
    try:
        args.model_config = SimpleGANConfig(resolution=data_resolution(args.data),
                                            channels=tuple(args.channels))
    except ValueError as error:
        parser.error(str(error))
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    config = args.model_config
    if args.dry_run:
        print_plan(SimpleGAN(config), config, args)
        return 0
    context = setup(args)
    torch.manual_seed(args.seed)
    model = SimpleGAN(config)
    start_from_init(model, args.init)
    model.to(context.device)
    run = Run(args.out, context, {**vars(args), "model_config": asdict(config)})
    rng = np.random.default_rng(args.seed)

    def draw(m, sketch, hints):
        if m.training:  # the same amateur drawings the generator's encoder reads
            sketch = roughen(sketch, args.degraded_share, rng)
        return m(sketch, hints)

    trained = train_gan(args, context, run, model, draw, "baseline")
    if context.is_main:
        trained.save_pretrained(run.folder / "baseline")
        print(f"Saved the baseline to {run.folder / 'baseline'}")
    teardown(context)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
