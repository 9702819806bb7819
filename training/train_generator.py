"""Stage 2: the generator (latent + hints -> face) with the stage-1 encoder frozen.

    python -m training.train_generator --data data/ --autoencoder runs/autoencoder/autoencoder \
        --out runs/generator --steps 20000

Writes the model to <out>/generator/ (config.json + model.safetensors).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

import torch

from s2a.models import Generator, GeneratorConfig, SketchAutoencoder
from training.common import Run, check_common_args, print_plan, setup, teardown
from training.data import data_resolution
from training.gan import add_gan_args, train_gan


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    defaults = GeneratorConfig()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_gan_args(parser)
    parser.add_argument("--autoencoder", required=True,
                        help="stage-1 model folder (config.json + model.safetensors)")
    parser.add_argument("--channels", type=int, nargs="+", default=list(defaults.channels))
    parser.add_argument("--hint-resolutions", type=int, nargs="+",
                        default=list(defaults.hint_resolutions),
                        help="feature-map sizes where the hints are injected")
    parser.add_argument("--latent-noise", type=float, default=0.05,
                        help="Gaussian noise on the latent, relative to its spread, so the "
                        "generator also draws well from projected (not encoded) latents")
    args = parser.parse_args(argv)
    check_common_args(parser, args)
    if not (Path(args.autoencoder) / "model.safetensors").is_file():
        parser.error(f"--autoencoder {args.autoencoder} has no model.safetensors")
    if args.latent_noise < 0:
        parser.error("--latent-noise must not be negative")
    autoencoder_config = json.loads((Path(args.autoencoder) / "config.json").read_text())
    resolution = data_resolution(args.data)
    if autoencoder_config["resolution"] != resolution:
        parser.error(f"the autoencoder is for {autoencoder_config['resolution']} px, "
                     f"the data is {resolution} px")
    try:
        args.model_config = GeneratorConfig(
            resolution=resolution, latent_dim=autoencoder_config["latent_dim"],
            channels=tuple(args.channels), hint_resolutions=tuple(args.hint_resolutions),
        )
    except ValueError as error:
        parser.error(str(error))
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    config = args.model_config
    if args.dry_run:
        print_plan(Generator(config), config, args)
        return 0
    context = setup(args)
    encoder = SketchAutoencoder.from_pretrained(args.autoencoder).to(context.device).eval()
    encoder.requires_grad_(False)
    torch.manual_seed(args.seed)  # identical initial weights on every process
    generator = Generator(config).to(context.device)
    run = Run(args.out, context, {**vars(args), "model_config": asdict(config)})

    def draw(model, sketch, hints):
        with torch.no_grad():
            latent = encoder.encode(sketch)  # (B, d), the frozen stage-1 encoder
            if model.training and args.latent_noise > 0:
                latent = latent + args.latent_noise * latent.std(0, keepdim=True) * \
                    torch.randn_like(latent)
        return model(latent, hints)

    trained = train_gan(args, context, run, generator, draw, "generator")
    if context.is_main:
        trained.save_pretrained(run.folder / "generator")
        print(f"Saved the generator to {run.folder / 'generator'}")
    teardown(context)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
