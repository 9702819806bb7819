"""The adversarial training loop shared by stage 2 (generator) and the SimpleGAN baseline.

Both learn (sketch, hints) -> face against a discriminator that sees (image, hints);
they differ only in how a batch becomes a face, which the caller passes as `draw`.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import asdict

import torch
import torch.nn.functional as F
from tqdm import tqdm

from s2a.models import Discriminator, DiscriminatorConfig
from training.common import (
    Budget,
    Context,
    Run,
    add_common_args,
    decayed_lr,
    infinite_batches,
    optimiser_step,
    set_lr,
    unwrap,
    wrap,
)
from training.data import FaceDataset, load_split

SAMPLES = 8


def add_gan_args(parser: argparse.ArgumentParser) -> None:
    """Flags of the adversarial stage, shared by generator and baseline."""
    add_common_args(parser, steps=20000, batch_size=32, lr=2e-4)
    parser.add_argument("--d-lr", type=float, default=2e-4)
    parser.add_argument("--l1-weight", type=float, default=50.0,
                        help="L1 to the true face (pix2pix's 100 on [-1, 1] images)")
    parser.add_argument("--hint-weight", type=float, default=50.0,
                        help="extra L1 to the hint colour at hinted pixels")
    parser.add_argument("--adv-weight", type=float, default=1.0)
    parser.add_argument("--d-channels", type=int, nargs="+",
                        default=list(DiscriminatorConfig().channels))


def hint_loss(fake: torch.Tensor, hints: torch.Tensor) -> torch.Tensor:
    """Mean |output - hint colour| over hinted pixels: hints must be followed, not averaged."""
    mask = hints[:, 3:4]  # (B, 1, R, R)
    hinted = mask.sum() * 3
    if hinted == 0:
        return fake.sum() * 0.0
    return ((fake - hints[:, :3]).abs() * mask).sum() / hinted


def train_gan(
    args: argparse.Namespace,
    context: Context,
    run: Run,
    model: torch.nn.Module,
    draw: Callable[[torch.nn.Module, torch.Tensor, torch.Tensor], torch.Tensor],
    name: str,
) -> torch.nn.Module:
    """Train `model` so that `draw(model, sketch, hints)` -> (B, 3, R, R) looks like the face.

    Each step: D step on (real, hints) vs (fake.detach(), hints) with the hinge loss, then
    G step with L1 + hint loss + adversarial loss. Returns the trained (unwrapped) model.
    """
    train_images, train_sketches = load_split(args.data, "train")
    val_images, val_sketches = load_split(args.data, "val")
    dataset = FaceDataset(train_images, train_sketches, augment=True, seed=args.seed)
    val = FaceDataset(val_images, val_sketches, seed=args.seed)
    fixed = [torch.stack(parts).to(context.device) for parts in zip(
        *(val[i] for i in range(min(SAMPLES, len(val)))))]  # sketch, image, hints

    resolution = train_images.shape[1]
    torch.manual_seed(args.seed + 1)  # identical discriminator on every process
    disc_config = DiscriminatorConfig(resolution=resolution, channels=tuple(args.d_channels))
    discriminator = Discriminator(disc_config).to(context.device)
    g_opt = torch.optim.Adam(model.parameters(), lr=args.lr, betas=(0.5, 0.999))
    d_opt = torch.optim.Adam(discriminator.parameters(), lr=args.d_lr, betas=(0.5, 0.999))
    step, seconds_before = 0, 0.0
    if args.resume:
        step, seconds_before = run.resume(model=model, discriminator=discriminator,
                                          g_opt=g_opt, d_opt=d_opt)
    g_model, d_model = wrap(model, context), wrap(discriminator, context)

    batches = infinite_batches(dataset, args.batch_size, context, args.seed, args.workers,
                               start_epoch=step * args.batch_size // max(1, len(dataset)))
    progress = tqdm(total=args.steps, initial=step, desc=name, disable=not context.is_main)
    model.train()
    discriminator.train()
    budget = Budget(args.steps, args.time_budget, seconds_before, context)
    fraction = budget.fraction(step)
    while fraction < 1.0:
        _, batch = next(batches)
        sketch, real, hints = (t.to(context.device, non_blocking=True) for t in batch)
        set_lr(g_opt, decayed_lr(args.lr, fraction))
        set_lr(d_opt, decayed_lr(args.d_lr, fraction))
        fake = draw(g_model, sketch, hints)  # (B, 3, R, R)

        # D step: real faces up, generated faces down (hinge loss). One forward over both
        # halves, so DDP sees each parameter used once per backward.
        d_out = d_model(torch.cat([real, fake.detach()]), torch.cat([hints, hints]))
        d_real, d_fake = d_out.chunk(2)
        d_loss = F.relu(1.0 - d_real).mean() + F.relu(1.0 + d_fake).mean()
        optimiser_step(d_opt, d_loss)

        # G step: D is frozen and called unwrapped, so DDP syncs only G's gradients.
        discriminator.requires_grad_(False)
        g_adv = -discriminator(fake, hints).mean()
        g_l1 = (fake - real).abs().mean()
        g_hint = hint_loss(fake, hints)
        g_loss = args.adv_weight * g_adv + args.l1_weight * g_l1 + args.hint_weight * g_hint
        optimiser_step(g_opt, g_loss)
        discriminator.requires_grad_(True)

        step += 1
        progress.update(1)
        fraction = budget.fraction(step)
        last = fraction >= 1.0
        if step % args.log_every == 0 or last:
            metrics = {"d_loss": d_loss.item(), "g_adv": g_adv.item(), "g_l1": g_l1.item(),
                       "g_hint": g_hint.item(), "d_real": d_real.mean().item(),
                       "d_fake": d_fake.mean().item()}
            run.log(step, **metrics)
            progress.set_postfix(l1=f"{metrics['g_l1']:.3f}", d=f"{metrics['d_loss']:.2f}")
        if step % args.sample_every == 0 or last:
            model.eval()
            with torch.no_grad():
                f_sketch, f_image, f_hints = fixed
                run.save_grid(step, [f_sketch, f_hints, draw(model, f_sketch, f_hints), f_image])
            model.train()
        if step % args.checkpoint_every == 0 or last:
            run.save_checkpoint(step, model=model.state_dict(),
                                discriminator=discriminator.state_dict(),
                                g_opt=g_opt.state_dict(), d_opt=d_opt.state_dict(),
                                d_config=asdict(disc_config),
                                seconds_used=budget.seconds_used())
    progress.close()
    return unwrap(g_model).eval()
