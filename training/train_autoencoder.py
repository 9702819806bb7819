"""Stage 1: the sketch autoencoder (encoder -> latent -> decoder) on the training sketches.

    python -m training.train_autoencoder --data data/ --out runs/autoencoder --steps 6000

Writes the model to <out>/autoencoder/ (config.json + model.safetensors).
"""

from __future__ import annotations

import argparse
from dataclasses import asdict

import torch
import torch.nn.functional as F
from tqdm import tqdm

from s2a.models import SketchAutoencoder, SketchAutoencoderConfig
from training.common import (
    Budget,
    Run,
    add_common_args,
    check_common_args,
    decayed_lr,
    infinite_batches,
    optimiser_step,
    print_plan,
    set_lr,
    setup,
    teardown,
    unwrap,
    wrap,
)
from training.data import SketchDataset, data_resolution, load_split

SAMPLES = 8


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    defaults = SketchAutoencoderConfig()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_common_args(parser, steps=6000, batch_size=64, lr=1e-3)
    parser.add_argument("--latent-dim", type=int, default=defaults.latent_dim)
    parser.add_argument("--channels", type=int, nargs="+", default=list(defaults.channels))
    parser.add_argument("--ink-weight", type=float, default=4.0,
                        help="BCE weight of ink pixels: lines are ~7%% of pixels")
    parser.add_argument("--target-blur", type=float, default=1.0,
                        help="Gaussian sigma (px) that softens the target lines; 0 = hard 1 px "
                             "lines (a near miss then costs as much as a far one)")
    parser.add_argument("--no-augment", action="store_true",
                        help="train on clean sketches only (no flips, no thicker lines)")
    args = parser.parse_args(argv)
    check_common_args(parser, args)
    if args.target_blur < 0:
        parser.error("--target-blur must be at least 0")
    try:
        args.model_config = SketchAutoencoderConfig(
            resolution=data_resolution(args.data), latent_dim=args.latent_dim,
            channels=tuple(args.channels),
        )
    except ValueError as error:
        parser.error(str(error))
    return args


def soft_ink(target: torch.Tensor, sigma: float) -> torch.Tensor:
    """(B, 1, R, R) sketch, 1 = paper -> ink in [0, 1], lines blurred by `sigma` px.

    Scaled so the centre of a straight 1 px line stays at 1: a line drawn one pixel off
    still earns most of the credit, which gives the bottleneck a smooth signal about where
    strokes are instead of an all-or-nothing one.
    """
    ink = 1.0 - target
    if sigma <= 0:
        return ink
    radius = max(1, int(round(2.5 * sigma)))
    x = torch.arange(-radius, radius + 1, dtype=ink.dtype, device=ink.device)
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    kernel = kernel / kernel.sum()  # (K,)
    blurred = F.conv2d(ink, kernel.view(1, 1, 1, -1), padding=(0, radius))
    blurred = F.conv2d(blurred, kernel.view(1, 1, -1, 1), padding=(radius, 0))
    return (blurred / kernel[radius]).clamp(0.0, 1.0)


def reconstruction_loss(logits: torch.Tensor, target: torch.Tensor, ink_weight: float,
                        target_blur: float = 0.0):
    """Weighted BCE on ink (target is a sketch in [0, 1], 1 = paper)."""
    ink = soft_ink(target, target_blur)
    weight = 1.0 + (ink_weight - 1.0) * ink
    return F.binary_cross_entropy_with_logits(logits, ink, weight=weight)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    config = args.model_config
    if args.dry_run:
        print_plan(SketchAutoencoder(config), config, args)
        return 0

    context = setup(args)
    _, train_sketches = load_split(args.data, "train")
    _, val_sketches = load_split(args.data, "val")
    dataset = SketchDataset(train_sketches, augment=not args.no_augment, seed=args.seed)
    fixed = torch.stack([SketchDataset(val_sketches)[i][0] for i in range(
        min(SAMPLES, len(val_sketches)))]).to(context.device)  # (S, 1, R, R)

    torch.manual_seed(args.seed)  # identical initial weights on every process
    model = SketchAutoencoder(config).to(context.device)
    optimiser = torch.optim.Adam(model.parameters(), lr=args.lr)
    run = Run(args.out, context, {**vars(args), "model_config": asdict(config)})
    step, seconds_before = 0, 0.0
    if args.resume:
        step, seconds_before = run.resume(model=model, optimiser=optimiser)
    trained = wrap(model, context)

    batches = infinite_batches(dataset, args.batch_size, context, args.seed, args.workers,
                               start_epoch=step * args.batch_size // max(1, len(dataset)))
    progress = tqdm(total=args.steps, initial=step, desc="autoencoder", disable=not context.is_main)
    model.train()
    budget = Budget(args.steps, args.time_budget, seconds_before, context)
    fraction = budget.fraction(step)
    while fraction < 1.0:
        _, (inputs, targets) = next(batches)
        inputs, targets = inputs.to(context.device), targets.to(context.device)
        _, logits = trained(inputs)  # (B, 1, R, R)
        loss = reconstruction_loss(logits, targets, args.ink_weight, args.target_blur)
        lr = set_lr(optimiser, decayed_lr(args.lr, fraction))
        optimiser_step(optimiser, loss)
        step += 1
        progress.update(1)
        fraction = budget.fraction(step)
        last = fraction >= 1.0
        if step % args.log_every == 0 or last:
            run.log(step, loss=loss.item(), lr=lr)
            progress.set_postfix(loss=f"{loss.item():.4f}")
        if step % args.sample_every == 0 or last:
            model.eval()
            with torch.no_grad():
                run.save_grid(step, [fixed, model.decode(model.encode(fixed))])
            model.train()
        if step % args.checkpoint_every == 0 or last:
            run.save_checkpoint(step, model=model.state_dict(), optimiser=optimiser.state_dict(),
                                seconds_used=budget.seconds_used())
    progress.close()
    if context.is_main:
        unwrap(trained).eval().save_pretrained(run.folder / "autoencoder")
        print(f"Saved the autoencoder to {run.folder / 'autoencoder'}")
    teardown(context)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
