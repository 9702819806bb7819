"""The adversarial training loop shared by stage 2 (generator) and the SimpleGAN baseline.

Both learn (sketch, hints) -> face against a discriminator that sees (image, hints);
they differ only in how a batch becomes a face, which the caller passes as `draw`.
"""

from __future__ import annotations

import argparse
import copy
from collections.abc import Callable
from dataclasses import asdict, fields, replace
from pathlib import Path

import numpy as np
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
from training.degrade import amateur_batch
from training.diffaugment import POLICIES, diff_augment

SAMPLES = 8
DISCRIMINATOR_DIR = "discriminator"  # in the run folder, saved when a run ends


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
    # The v1 recipe (pix2pixHD + DiffAugment + EMA); the defaults keep the v0.3 recipe.
    parser.add_argument("--d-scales", type=int, default=1,
                        help="PatchGANs at R, R/2, ... (pix2pixHD's multi-scale D)")
    parser.add_argument("--fm-weight", type=float, default=0.0,
                        help="feature matching: L1 between D's features of real and "
                        "generated faces (pix2pixHD: 10)")
    parser.add_argument("--diffaugment", nargs="*", default=[], choices=POLICIES,
                        help="DiffAugment policies on everything D sees")
    parser.add_argument("--degraded-share", type=float, default=0.0,
                        help="share of each batch drawn as an amateur would "
                        "(training.degrade.amateur_batch) before the model sees it")
    parser.add_argument("--ema", type=float, default=0.0,
                        help="decay of the generator's moving average, which is what gets "
                        "saved (0 = off)")
    parser.add_argument("--init-discriminator", default=None,
                        help="discriminator folder to start from (an earlier run's "
                        f"<run>/{DISCRIMINATOR_DIR}/; default: a fresh one)")


def start_from_init(model: torch.nn.Module, folder: str | None, flag: str = "--init") -> None:
    """Load the weights of `flag`'s folder (a model of the same kind) into `model`; its
    config must be the flags'. `--init` starts a fine-tune; `--init-discriminator` starts
    its discriminator, which would otherwise start fresh and first spend its steps on a
    judge that knows nothing (model card, "A warm discriminator")."""
    if not folder:
        return
    try:
        start = type(model).from_pretrained(folder)
    except (OSError, ValueError) as error:
        raise SystemExit(f"{flag} {folder}: {error}") from None
    # Whether a generator traces the drawn sketch changes no parameter: v1.0 weights may
    # start a tracing generator.
    start_config = start.config
    if hasattr(model.config, "traces_sketch"):
        start_config = replace(start_config, traces_sketch=model.config.traces_sketch)
    if start_config != model.config:
        differ = [f.name for f in fields(model.config)
                  if getattr(start_config, f.name) != getattr(model.config, f.name)]
        raise SystemExit(f"{flag} {folder} has another config than the flags ask for "
                         f"({', '.join(differ)})")
    model.load_state_dict(start.float().state_dict())


def check_gan_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Fail before any work on recipe flags that cannot work."""
    if not 0.0 <= args.degraded_share <= 1.0:
        parser.error("--degraded-share must be between 0 and 1")
    if not 0.0 <= args.ema < 1.0:
        parser.error("--ema must be in [0, 1)")
    if args.d_scales < 1:
        parser.error("--d-scales must be at least 1")
    if args.fm_weight < 0:
        parser.error("--fm-weight must not be negative")
    if args.init_discriminator and not (
            Path(args.init_discriminator) / "model.safetensors").is_file():
        parser.error(f"--init-discriminator {args.init_discriminator} has no model.safetensors")


def roughen(sketch: torch.Tensor, share: float, rng: np.random.Generator) -> torch.Tensor:
    """Redraw a random `share` of a (B, 1, R, R) sketch batch as an amateur would."""
    chosen = torch.from_numpy(rng.random(len(sketch)) < share)
    if share <= 0 or not chosen.any():
        return sketch
    clean = (sketch[chosen, 0] * 255).round().byte().cpu().numpy()
    rough = amateur_batch(clean, int(rng.integers(2**31)))
    sketch = sketch.clone()
    sketch[chosen, 0] = torch.from_numpy(rough).to(sketch) / 255.0
    return sketch


def ema_update(average: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    """average <- decay * average + (1 - decay) * model; BatchNorm statistics are copied."""
    with torch.no_grad():
        for kept, new in zip(average.parameters(), model.parameters()):
            kept.lerp_(new, 1.0 - decay)
        for kept, new in zip(average.buffers(), model.buffers()):
            kept.copy_(new)


def feature_matching(fake: list[list[torch.Tensor]], real: list[list[torch.Tensor]]
                     ) -> torch.Tensor:
    """pix2pixHD's loss: mean L1 between D's features (not logits) of fake and real, per
    layer, averaged over layers and scales."""
    total, count = 0.0, 0
    for fake_scale, real_scale in zip(fake, real):
        for f, r in zip(fake_scale[:-1], real_scale[:-1]):
            total = total + (f - r.detach()).abs().mean()
            count += 1
    return total / max(1, count)


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
    extra_terms: Callable[[], dict[str, tuple[float, torch.Tensor]]] | None = None,
) -> torch.nn.Module:
    """Train `model` so that `draw(model, sketch, hints)` -> (B, 3, R, R) looks like the face.

    Each step: D step on (real, hints) vs (fake.detach(), hints) with the hinge loss at
    every D scale, then G step with L1 + hint loss + adversarial loss (+ feature matching).
    With --diffaugment, D sees only augmented pairs. `extra_terms`, called in each G
    step after `draw`, returns more generator losses {name: (weight, loss)}, added to the
    G loss and logged by name. Returns the trained (unwrapped) model, or its moving
    average with --ema.
    """
    train_images, train_sketches = load_split(args.data, "train")
    val_images, val_sketches = load_split(args.data, "val")
    dataset = FaceDataset(train_images, train_sketches, augment=True, seed=args.seed)
    val = FaceDataset(val_images, val_sketches, seed=args.seed)
    fixed = [torch.stack(parts).to(context.device) for parts in zip(
        *(val[i] for i in range(min(SAMPLES, len(val)))))]  # sketch, image, hints

    resolution = train_images.shape[1]
    torch.manual_seed(args.seed + 1)  # identical discriminator on every process
    disc_config = DiscriminatorConfig(resolution=resolution, channels=tuple(args.d_channels),
                                      scales=args.d_scales)
    discriminator = Discriminator(disc_config)
    start_from_init(discriminator, args.init_discriminator, "--init-discriminator")  # --resume wins
    discriminator = discriminator.to(context.device)
    g_opt = torch.optim.Adam(model.parameters(), lr=args.lr, betas=(0.5, 0.999))
    d_opt = torch.optim.Adam(discriminator.parameters(), lr=args.d_lr, betas=(0.5, 0.999))
    average = copy.deepcopy(model).eval().requires_grad_(False) if args.ema > 0 else None
    step, seconds_before = 0, 0.0
    if args.resume:
        parts = dict(model=model, discriminator=discriminator, g_opt=g_opt, d_opt=d_opt)
        if average is not None:
            parts["average"] = average
        step, seconds_before = run.resume(**parts)
    g_model, d_model = wrap(model, context), wrap(discriminator, context)
    policies = tuple(args.diffaugment)

    def seen_by_d(image, condition):
        return diff_augment(image, condition, policies) if policies else (image, condition)

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

        # D step: real faces up, generated faces down (hinge loss, every scale). One
        # forward over both halves, so DDP sees each parameter used once per backward.
        d_image, d_hints = seen_by_d(torch.cat([real, fake.detach()]),
                                     torch.cat([hints, hints]))
        judged = d_model(d_image, d_hints, every_scale=True)
        d_loss, real_features = 0.0, []
        for scale in judged:
            d_real, d_fake = scale[-1].chunk(2)
            d_loss = d_loss + F.relu(1.0 - d_real).mean() + F.relu(1.0 + d_fake).mean()
            real_features.append([t.chunk(2)[0].detach() for t in scale])
        optimiser_step(d_opt, d_loss)

        # G step: D is frozen and called unwrapped, so DDP syncs only G's gradients.
        # Feature matching compares with the real features of the D step just taken.
        discriminator.requires_grad_(False)
        g_image, g_hints = seen_by_d(fake, hints)
        fake_judged = discriminator.judge(g_image, g_hints)
        g_adv = sum(-scale[-1].mean() for scale in fake_judged)
        g_fm = feature_matching(fake_judged, real_features) if args.fm_weight > 0 \
            else fake.sum() * 0.0
        g_l1 = (fake - real).abs().mean()
        g_hint = hint_loss(fake, hints)
        g_loss = (args.adv_weight * g_adv + args.fm_weight * g_fm + args.l1_weight * g_l1
                  + args.hint_weight * g_hint)
        extras = extra_terms() if extra_terms is not None else {}
        for weight, term in extras.values():
            g_loss = g_loss + weight * term
        log_now = (step + 1) % args.log_every == 0
        if log_now:
            # The adversarial gradient must reach the generator (a public DeepFaceDrawing
            # port trains with its GAN loss detached): log its size at the last layer.
            named = dict(model.named_parameters())
            last = named.get("to_rgb.weight", list(named.values())[-1])
            adv_grad = torch.autograd.grad(g_adv, last, retain_graph=True)[0].norm().item()
        optimiser_step(g_opt, g_loss)
        discriminator.requires_grad_(True)
        if average is not None:
            ema_update(average, model, args.ema)

        step += 1
        progress.update(1)
        fraction = budget.fraction(step)
        last_step = fraction >= 1.0
        if log_now or last_step:
            d_real_mean = sum(s[-1].chunk(2)[0].mean().item() for s in judged) / len(judged)
            d_fake_mean = sum(s[-1].chunk(2)[1].mean().item() for s in judged) / len(judged)
            metrics = {"d_loss": d_loss.item(), "g_adv": g_adv.item(), "g_fm": g_fm.item(),
                       "g_l1": g_l1.item(), "g_hint": g_hint.item(), "d_real": d_real_mean,
                       "d_fake": d_fake_mean}
            metrics.update({key: term.item() for key, (_, term) in extras.items()})
            if log_now:
                metrics["adv_grad"] = adv_grad
            run.log(step, **metrics)
            progress.set_postfix(l1=f"{metrics['g_l1']:.3f}", d=f"{metrics['d_loss']:.2f}")
        shown = average if average is not None else model
        if step % args.sample_every == 0 or last_step:
            model.eval()
            with torch.no_grad():
                f_sketch, f_image, f_hints = fixed
                run.save_grid(step, [f_sketch, f_hints, draw(shown, f_sketch, f_hints),
                                     f_image])
            model.train()
        if step % args.checkpoint_every == 0 or last_step:
            states = dict(model=model.state_dict(), discriminator=discriminator.state_dict(),
                          g_opt=g_opt.state_dict(), d_opt=d_opt.state_dict(),
                          d_config=asdict(disc_config), seconds_used=budget.seconds_used())
            if average is not None:
                states["average"] = average.state_dict()
            run.save_checkpoint(step, **states)
    progress.close()
    if context.is_main:  # what a later fine-tune starts from (--init-discriminator)
        discriminator.save_pretrained(run.folder / DISCRIMINATOR_DIR)
    return average if average is not None else unwrap(g_model).eval()
