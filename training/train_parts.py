"""Stage 1c: completing autoencoders for the face parts (eyes, nose, mouth), in two runs.

    python -m training.train_parts --data data/ --out runs/parts_clean --degraded-share 0 \
        --time-budget 15
    python -m training.train_parts --data data/ --out runs/parts --teacher runs/parts_clean \
        --time-budget 25

Each windowed part of `s2a.parts` gets a small autoencoder at its window's size; the four
parts train together, one drawing per face feeding all of them.

- Without --teacher: plain autoencoders, window of the input -> window of the clean sketch
  (with --degraded-share 0 the input is the clean sketch, flipped half of the time).
- With --teacher (a first run): the route of `training.train_completing_encoder`, per
  part. A student copy of each teacher's encoder learns to map the window of an amateur
  drawing (`training.degrade`, no "frame" style) to the frozen teacher's latent of the
  clean window; the decoder and the latent space stay the teacher's, so a rough eye lands
  where the bank's clean eyes are. Asking one network to draw the clean window straight
  from a rough one learned only a blur in the same time (model card).

Writes <out>/<part>/autoencoder/ (config.json + model.safetensors) for each part. Then
`python -m training.build_part_banks` adds the banks (and the rest) to make a parts folder.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from s2a.models import SketchAutoencoder, SketchAutoencoderConfig, count_parameters
from s2a.parts import WINDOWED_PARTS, PartWindow, crop_part, scaled_windows
from training.common import (
    Budget,
    Run,
    add_common_args,
    check_common_args,
    decayed_lr,
    infinite_batches,
    optimiser_step,
    set_lr,
    setup,
    teardown,
)
from training.data import data_resolution, load_split, sketch_to_tensor
from training.degrade import STYLES, amateur_batch
from training.train_autoencoder import reconstruction_loss
from training.train_completing_encoder import CompletingDataset, completion_loss, student_from

SAMPLES = 8
VAL_ITEMS = 256
# The framing step puts a drawing where training faces sit before the parts are cut, so
# drawings framed small on a pad are not what a part model sees.
PART_STYLES = tuple(s for s in STYLES if s != "frame")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_common_args(parser, steps=6000, batch_size=64, lr=1e-3)
    parser.add_argument("--latent-dim", type=int, default=128, help="each part's latent size")
    parser.add_argument("--channels", type=int, nargs="+", default=[32, 64, 128],
                        help="encoder channels per down-sampling step (window/8 at the bottom)")
    parser.add_argument("--degraded-share", type=float, default=0.75,
                        help="share of each batch drawn as an amateur would; the rest clean")
    parser.add_argument("--teacher", default=None,
                        help="a first train_parts run: train completing student encoders "
                             "against its frozen autoencoders (--latent-dim and --channels "
                             "then come from it)")
    parser.add_argument("--mse-weight", type=float, default=0.1,
                        help="with --teacher: weight of MSE / var(target) beside 1 - cosine")
    parser.add_argument("--ink-weight", type=float, default=4.0)
    parser.add_argument("--target-blur", type=float, default=1.0)
    parser.add_argument("--threads", type=int, default=0,
                        help="torch CPU threads (0 = torch's default)")
    args = parser.parse_args(argv)
    check_common_args(parser, args)
    if not 0.0 <= args.degraded_share <= 1.0:
        parser.error("--degraded-share must be between 0 and 1")
    if args.mse_weight < 0 or args.ink_weight < 1 or args.target_blur < 0:
        parser.error("--mse-weight and --target-blur must be >= 0, --ink-weight >= 1")
    if args.threads < 0:
        parser.error("--threads must be at least 0")
    resolution = data_resolution(args.data)
    args.teachers = None
    if args.teacher:
        try:
            config = json.loads((Path(args.teacher) / "config.json").read_text())
            args.windows = {n: PartWindow(**config["windows"][n]) for n in WINDOWED_PARTS}
            with contextlib.redirect_stdout(io.StringIO()):
                args.teachers = {n: SketchAutoencoder.from_pretrained(
                    Path(args.teacher) / n / "autoencoder") for n in WINDOWED_PARTS}
        except (OSError, KeyError, TypeError, ValueError) as error:
            parser.error(f"--teacher {args.teacher} is not a finished train_parts run: {error}")
        args.part_configs = {n: t.config for n, t in args.teachers.items()}
        for name, window in args.windows.items():
            if window.size != args.part_configs[name].resolution or \
                    window.top + window.size > resolution or window.left + window.size > resolution:
                parser.error(f"--teacher {args.teacher}: its {name} window does not fit "
                             f"{resolution} px data")
        return args
    args.windows = scaled_windows(resolution, 2 ** len(args.channels))
    try:
        for name, window in args.windows.items():
            window.check(resolution, name)
        args.part_configs = {
            name: SketchAutoencoderConfig(resolution=window.size, latent_dim=args.latent_dim,
                                          channels=tuple(args.channels))
            for name, window in args.windows.items()}
    except ValueError as error:
        parser.error(str(error))
    return args


def part_losses(models: dict[str, SketchAutoencoder], drawn: torch.Tensor, clean: torch.Tensor,
                args: argparse.Namespace) -> tuple[torch.Tensor, dict[str, float]]:
    """Sum over parts; (B, 1, R, R) sketches in. Without teachers: reconstruction of the
    clean window from the drawn one. With them: `completion_loss` of the student's latent
    of the drawn window against the teacher's latent of the clean window."""
    total, logged = 0.0, {}
    for name, model in models.items():
        window = args.windows[name]
        drawn_part, clean_part = crop_part(drawn, window), crop_part(clean, window)
        if args.teachers is None:
            _, logits = model(drawn_part)  # (B, 1, s, s)
            loss = reconstruction_loss(logits, clean_part, args.ink_weight, args.target_blur)
            logged[f"{name}_recon"] = float(loss.detach())
        else:
            with torch.no_grad():
                target = args.teachers[name].encode(clean_part)  # (B, d): what the bank holds
            loss, parts = completion_loss(model.encode(drawn_part), target, args.mse_weight)
            logged[f"{name}_cosine"] = parts["cosine"]
        total = total + loss
    return total, logged


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    if args.teachers is None:
        models = {name: SketchAutoencoder(config) for name, config in args.part_configs.items()}
    else:
        models = {name: student_from(t.eval().requires_grad_(False))
                  for name, t in args.teachers.items()}
    if args.dry_run:
        for name, model in models.items():
            print(f"{name}: window {args.windows[name]}, {count_parameters(model):,} parameters")
        print(f"{args.steps} steps of {args.batch_size} ({args.degraded_share:.0%} degraded)")
        return 0

    context = setup(args)
    train_images, train_sketches = load_split(args.data, "train")
    val_images, val_sketches = load_split(args.data, "val")
    dataset = CompletingDataset(train_sketches, train_images, args.degraded_share, PART_STYLES,
                                seed=args.seed)
    count = min(VAL_ITEMS, len(val_sketches))
    val_clean = np.asarray(val_sketches[:count])
    val_drawn = amateur_batch(val_clean, 12345, np.asarray(val_images[:count]), PART_STYLES)
    to_batch = lambda arr: torch.stack([sketch_to_tensor(s) for s in arr]).to(context.device)  # noqa: E731
    val_clean_t, val_drawn_t = to_batch(val_clean), to_batch(val_drawn)  # (V, 1, R, R)

    # Students keep batch norm in eval mode: its statistics are the teacher's, and moving
    # them towards rough drawings would shift every clean window's latent too.
    learning = args.teachers is None
    for model in models.values():
        model.to(context.device).train(learning)
    if args.teachers is not None:
        for teacher in args.teachers.values():
            teacher.to(context.device)
    modules = torch.nn.ModuleDict(models)
    optimiser = torch.optim.Adam([p for p in modules.parameters() if p.requires_grad], lr=args.lr)
    run = Run(args.out, context, {
        **{k: v for k, v in vars(args).items()
           if k not in ("windows", "part_configs", "teachers")},
        "windows": {n: asdict(w) for n, w in args.windows.items()},
        "part_configs": {n: asdict(c) for n, c in args.part_configs.items()}})
    step, seconds_before = 0, 0.0
    if args.resume:
        step, seconds_before = run.resume(model=modules, optimiser=optimiser)

    batches = infinite_batches(dataset, args.batch_size, context, args.seed, args.workers,
                               start_epoch=step * args.batch_size // max(1, len(dataset)))
    progress = tqdm(total=args.steps, initial=step, desc="parts", disable=not context.is_main)
    budget = Budget(args.steps, args.time_budget, seconds_before, context)
    fraction = budget.fraction(step)
    while fraction < 1.0:
        _, (drawn, clean) = next(batches)
        drawn, clean = drawn.to(context.device), clean.to(context.device)  # (B, 1, R, R)
        loss, logged = part_losses(models, drawn, clean, args)
        lr = set_lr(optimiser, decayed_lr(args.lr, fraction))
        optimiser_step(optimiser, loss)
        step += 1
        progress.update(1)
        fraction = budget.fraction(step)
        last = fraction >= 1.0
        if step % args.log_every == 0 or last:
            run.log(step, loss=loss.item(), lr=lr, **logged)
            progress.set_postfix(loss=f"{loss.item():.4f}")
        if step % args.sample_every == 0 or last:
            modules.eval()
            with torch.no_grad():
                val_loss, val_logged = part_losses(models, val_drawn_t, val_clean_t, args)
                run.log(step, val_loss=val_loss.item(),
                        **{f"val_{k}": v for k, v in val_logged.items()})
                shown = slice(0, SAMPLES)
                columns = []
                for name, model in models.items():
                    drawn_part = crop_part(val_drawn_t[shown], args.windows[name])
                    columns += [drawn_part, crop_part(val_clean_t[shown], args.windows[name]),
                                model.decode(model.encode(drawn_part))]
                # Windows differ in size: pad every column to the largest.
                side = max(c.shape[-1] for c in columns)
                columns = [F.pad(c, (0, side - c.shape[-1], 0, side - c.shape[-2]), value=1.0)
                           for c in columns]
                run.save_grid(step, columns)
            modules.train(learning)
        if step % args.checkpoint_every == 0 or last:
            run.save_checkpoint(step, model=modules.state_dict(),
                                optimiser=optimiser.state_dict(),
                                seconds_used=budget.seconds_used())
    progress.close()
    if context.is_main:
        for name, model in models.items():
            model.eval().save_pretrained(run.folder / name / "autoencoder")
        print(f"Saved the part autoencoders to {run.folder}/<part>/autoencoder")
    teardown(context)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
