"""Stage 2: the generator (latent + hints -> face) with the stage-1 encoder frozen.

    python -m training.train_generator --data data/ --autoencoder runs/autoencoder/autoencoder \
        --out runs/generator --steps 20000

Writes the model to <out>/generator/ (config.json + model.safetensors).

--architecture spatial trains generator v1 (`s2a.models.SpatialGenerator`): its feature
mapping starts as a copy of the --autoencoder's decoder and, with --init-baseline, its
synthesis as a copy of a trained SimpleGAN. --degraded-share draws that share of each
batch as an amateur would (`training.degrade.amateur_batch`) before encoding, so the
generator learns to draw the meant face from a rough drawing's (projected) latent.

With --bank and --projected-share, that share of each batch is drawn from the latent the
app feeds at refine 1 (the sketch's projection onto its k nearest training sketches)
instead of the sketch's own latent, so the generator learns to draw sharp faces from
projected latents too.

--trace-sketch (spatial, needs --bank) trains the generator to trace the user's own sketch
by 1 - refine beside the decoded latent (`s2a.models.traced`): each item gets a refine
(a third 1, a third 0, a third uniform), its latent is refine x projection + (1 - refine)
x its own, and the synthesis traces the same blend of decoded and drawn sketch as the app.

--locality-weight (with --trace-sketch and --part-windows, a per-part model folder) adds
`training.locality`'s term: each item is synthesised again with one part window traced at
the other end of its refine, and the face's change outside that window is penalised, so
that a part's slider changes that part (issue 15). With --locality-teacher the change
inside the window is held to what the --init generator made there, so the slider keeps
its effect on its own part.
"""

from __future__ import annotations

import argparse
import copy
import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from s2a.models import (
    Generator,
    GeneratorConfig,
    SimpleGAN,
    SketchAutoencoder,
    SpatialGenerator,
    SpatialGeneratorConfig,
)
from s2a.parts import PARTS_FILE, read_part_windows
from training.common import Run, check_common_args, print_plan, setup, teardown
from training.data import data_resolution
from training.gan import add_gan_args, check_gan_args, roughen, start_from_init, train_gan
from training.locality import PartWindowMasks, change_mismatch, change_outside


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    defaults = GeneratorConfig()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_gan_args(parser)
    parser.add_argument("--autoencoder", required=True,
                        help="stage-1 model folder (config.json + model.safetensors)")
    parser.add_argument("--architecture", choices=("vector", "spatial"), default="vector",
                        help="v0.3's latent -> face decoder, or v1's feature maps + synthesis")
    parser.add_argument("--residual-blocks", type=int,
                        default=SpatialGeneratorConfig().residual_blocks,
                        help="spatial: residual blocks after the bottleneck")
    parser.add_argument("--init-baseline", default=None,
                        help="spatial: SimpleGAN folder whose U-Net the synthesis starts from")
    parser.add_argument("--channels", type=int, nargs="+", default=list(defaults.channels))
    parser.add_argument("--hint-resolutions", type=int, nargs="+",
                        default=list(defaults.hint_resolutions),
                        help="feature-map sizes where the hints are injected")
    parser.add_argument("--bank", default=None,
                        help="latent bank (training.build_bank) for --projected-share")
    parser.add_argument("--projected-share", type=float, default=0.0,
                        help="share of each batch drawn from projected latents (needs --bank)")
    parser.add_argument("--trace-sketch", action="store_true",
                        help="spatial: trace the drawn sketch by 1 - refine (needs --bank)")
    parser.add_argument("--k", type=int, default=10, help="neighbours of the projection")
    parser.add_argument("--init", default=None,
                        help="generator folder to start from (fine-tuning; the discriminator is "
                             "fresh unless --init-discriminator)")
    parser.add_argument("--locality-weight", type=float, default=0.0,
                        help="--trace-sketch: weight of the face's change outside a part "
                        "window when only that window's refine moves (training.locality)")
    parser.add_argument("--part-windows", default=None,
                        help="per-part model folder (parts.json) whose windows "
                        "--locality-weight uses")
    parser.add_argument("--locality-teacher", action="store_true",
                        help="with --locality-weight: inside the window, match the change "
                        "the --init generator makes (so a part's slider keeps its effect); "
                        "without it only the change outside is penalised")
    parser.add_argument("--latent-noise", type=float, default=0.05,
                        help="Gaussian noise on the latent, relative to its spread, so the "
                        "generator also draws well from projected (not encoded) latents")
    args = parser.parse_args(argv)
    check_common_args(parser, args)
    check_gan_args(parser, args)
    if not (Path(args.autoencoder) / "model.safetensors").is_file():
        parser.error(f"--autoencoder {args.autoencoder} has no model.safetensors")
    if args.latent_noise < 0:
        parser.error("--latent-noise must not be negative")
    if not 0.0 <= args.projected_share <= 1.0:
        parser.error("--projected-share must be between 0 and 1")
    if args.trace_sketch and args.architecture != "spatial":
        parser.error("--trace-sketch needs --architecture spatial")
    has_bank = args.bank and (Path(args.bank) / "bank.json").is_file()
    if (args.projected_share > 0 or args.trace_sketch) and not has_bank:
        parser.error("--projected-share and --trace-sketch need --bank, a folder written by "
                     "training.build_bank")
    if args.k < 1:
        parser.error("--k must be at least 1")
    if args.locality_weight < 0:
        parser.error("--locality-weight must not be negative")
    if args.locality_teacher and not (args.locality_weight > 0 and args.init):
        parser.error("--locality-teacher needs --locality-weight and --init (the teacher)")
    if args.locality_weight > 0 and not (args.trace_sketch and args.part_windows and (
            Path(args.part_windows) / PARTS_FILE).is_file()):
        parser.error("--locality-weight needs --trace-sketch and --part-windows, a folder "
                     "with parts.json (weights/parts)")
    if args.init_baseline and (args.architecture != "spatial" or not (
            Path(args.init_baseline) / "model.safetensors").is_file()):
        parser.error("--init-baseline needs --architecture spatial and a SimpleGAN folder")
    if args.init and not (Path(args.init) / "model.safetensors").is_file():
        parser.error(f"--init {args.init} has no model.safetensors")
    autoencoder_config = json.loads((Path(args.autoencoder) / "config.json").read_text())
    resolution = data_resolution(args.data)
    if autoencoder_config["resolution"] != resolution:
        parser.error(f"the autoencoder is for {autoencoder_config['resolution']} px, "
                     f"the data is {resolution} px")
    try:
        if args.architecture == "spatial":
            # The synthesis takes the shape of the SimpleGAN it starts from.
            synthesis = SpatialGeneratorConfig().channels
            if args.init_baseline:
                baseline_config = json.loads((Path(args.init_baseline) / "config.json").read_text())
                synthesis = tuple(baseline_config["channels"])
            args.model_config = SpatialGeneratorConfig(
                resolution=resolution, latent_dim=autoencoder_config["latent_dim"],
                map_channels=tuple(autoencoder_config["channels"]), channels=synthesis,
                residual_blocks=args.residual_blocks, traces_sketch=args.trace_sketch,
            )
        else:
            args.model_config = GeneratorConfig(
                resolution=resolution, latent_dim=autoencoder_config["latent_dim"],
                channels=tuple(args.channels), hint_resolutions=tuple(args.hint_resolutions),
            )
    except ValueError as error:
        parser.error(str(error))
    return args


def draw_refine(count: int, rng: np.random.Generator) -> torch.Tensor:
    """(count,) refines for --trace-sketch: a third 1 (the app's default), a third 0 (the
    user's own lines), a third uniform in between."""
    kind = rng.integers(0, 3, count)
    refine = np.where(kind == 0, 1.0, np.where(kind == 1, 0.0, rng.random(count)))
    return torch.from_numpy(refine.astype(np.float32))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    config = args.model_config
    network = SpatialGenerator if args.architecture == "spatial" else Generator
    if args.dry_run:
        print_plan(network(config), config, args)
        return 0
    context = setup(args)
    encoder = SketchAutoencoder.from_pretrained(args.autoencoder).float().eval()
    encoder.requires_grad_(False)
    torch.manual_seed(args.seed)  # identical initial weights on every process
    generator = network(config)
    if args.architecture == "spatial":
        baseline = SimpleGAN.from_pretrained(args.init_baseline).float() \
            if args.init_baseline else None
        generator.start_from(encoder, baseline)
    start_from_init(generator, args.init)
    generator.to(context.device)
    encoder.to(context.device)
    rng = np.random.default_rng(args.seed)
    bank = None
    if args.projected_share > 0 or args.trace_sketch:
        from s2a.projection import LatentBank  # FAISS only when a bank is asked for

        bank = LatentBank.load(args.bank)
    # The bank's projection length is part of what the generator learns to read.
    run = Run(args.out, context, {**vars(args), "model_config": asdict(config),
                                  "bank_length": bank.length if bank is not None else None})
    masks = None
    if args.locality_weight > 0:
        windows, feather, _ = read_part_windows(args.part_windows)
        masks = PartWindowMasks(windows, config.resolution, feather).to(context.device)
    teacher = None
    if args.locality_teacher:  # the --init generator as it was, frozen
        teacher = copy.deepcopy(generator).eval().requires_grad_(False)
    last = {}  # the training draw's inputs and face, for the locality term

    def draw(model, sketch, hints):
        refine = 0.0  # shown samples: the sketch's own latent, traced where trained to
        with torch.no_grad():
            if model.training:
                sketch = roughen(sketch, args.degraded_share, rng)
            encoded = encoder.encode(sketch)  # (B, d), the frozen stage-1 encoder
            latent = encoded
            if model.training and args.latent_noise > 0:
                latent = latent + args.latent_noise * latent.std(0, keepdim=True) * \
                    torch.randn_like(latent)
            if model.training and args.trace_sketch:
                refine = draw_refine(len(latent), rng).to(latent.device)  # (B,)
                projected = torch.from_numpy(bank.project(
                    encoded.cpu().numpy(), args.k, skip_same=True).latent).to(latent.device)
                latent = refine[:, None] * projected + (1.0 - refine[:, None]) * latent
            elif model.training and bank is not None:
                chosen = torch.rand(len(latent), device=latent.device) < args.projected_share
                if chosen.any():
                    # The app's refine-1 projection; a training sketch's own bank entry is
                    # skipped, as a user's sketch is never in the bank.
                    projected = bank.project(encoded[chosen].cpu().numpy(), args.k,
                                             skip_same=True).latent  # (b, d)
                    latent[chosen] = torch.from_numpy(projected).to(latent.device)
        if not args.trace_sketch:
            return model(latent, hints)
        face = model(latent, hints, sketch, refine)
        if model.training and masks is not None:
            last.update(model=model, latent=latent, hints=hints, sketch=sketch,
                        refine=refine, face=face)
        return face

    def locality_term():
        refine_map, inside = masks.moved_refine(last["refine"], rng)
        inputs = last["latent"], last["hints"], last["sketch"]
        moved = last["model"](*inputs, refine_map)
        if teacher is None:
            return {"g_local": (args.locality_weight,
                                change_outside(last["face"], moved, inside))}
        with torch.no_grad():
            taught = teacher(*inputs, last["refine"]), teacher(*inputs, refine_map)
        return {"g_local": (args.locality_weight,
                            change_mismatch(last["face"], moved, inside, *taught)),
                "local_outside": (0.0, change_outside(last["face"], moved, inside).detach())}

    trained = train_gan(args, context, run, generator, draw, "generator",
                        locality_term if masks is not None else None)
    if context.is_main:
        trained.save_pretrained(run.folder / "generator")
        print(f"Saved the generator to {run.folder / 'generator'}")
    teardown(context)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
