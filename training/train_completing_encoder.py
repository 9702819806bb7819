"""Stage 1b: a completing encoder, so a bad drawing finds the latent of what was meant.

    python -m training.train_completing_encoder --data data/ --teacher weights/autoencoder \
        --out runs/completing --time-budget 30

A student copy of the stage-1 encoder learns to map amateur-looking drawings of a training
sketch (`training.degrade.amateur_sketch`: rough, thick, soft, smooth, XDoG-extracted,
partial, framed small on a pad, ...) to the frozen teacher's latent of the clean sketch.
Because the target is the teacher's own latent space, the latent bank, the decoder and
the generator stay valid: only encoder + to_latent are trained. Some items of every batch
stay clean, so clean sketches keep their latents.

Writes <out>/autoencoder/ (config.json + model.safetensors): the student encoder with the
teacher's decoder, a drop-in replacement for weights/autoencoder.
"""

from __future__ import annotations

import argparse
import copy

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset
from tqdm import tqdm

from s2a.models import SketchAutoencoder
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
from training.degrade import STYLES, amateur_batch, amateur_sketch

SAMPLES = 8
VAL_ITEMS = 256  # fixed degraded val sketches for the logged val loss


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_common_args(parser, steps=4000, batch_size=64, lr=3e-4)
    parser.add_argument("--teacher", required=True,
                        help="stage-1 autoencoder folder (config.json + model.safetensors)")
    parser.add_argument("--init", default=None,
                        help="start the student from this completing autoencoder folder "
                             "(a longer run on top of a finished one); default: the teacher")
    parser.add_argument("--degraded-share", type=float, default=0.75,
                        help="share of each batch drawn as an amateur would; the rest clean")
    parser.add_argument("--styles", nargs="+", default=list(STYLES), choices=STYLES,
                        help="which augmentations make the amateur drawings ('rough' alone "
                             "is training.degrade.degrade_batch)")
    parser.add_argument("--mse-weight", type=float, default=0.1,
                        help="weight of MSE / var(target) beside 1 - cosine")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch CPU threads (0 = torch's default)")
    args = parser.parse_args(argv)
    check_common_args(parser, args)
    if not 0.0 <= args.degraded_share <= 1.0:
        parser.error("--degraded-share must be between 0 and 1")
    if args.mse_weight < 0:
        parser.error("--mse-weight must be at least 0")
    if args.threads < 0:
        parser.error("--threads must be at least 0")
    try:
        teacher = SketchAutoencoder.from_pretrained(args.teacher)
    except (OSError, ValueError) as error:
        parser.error(f"--teacher {args.teacher}: {error}")
    if teacher.config.resolution != data_resolution(args.data):
        parser.error(f"--teacher is a {teacher.config.resolution} px model but --data is "
                     f"{data_resolution(args.data)} px")
    if args.init is not None:
        try:
            init = SketchAutoencoder.from_pretrained(args.init)
        except (OSError, ValueError) as error:
            parser.error(f"--init {args.init}: {error}")
        if init.config.__dict__ != teacher.config.__dict__:
            parser.error("--init must have the teacher's architecture (its config.json differs)")
    args.styles = tuple(s for s in STYLES if s in args.styles)  # canonical order
    return args


class CompletingDataset(Dataset):
    """(input, clean) sketch pairs, each (1, R, R) in [0, 1], 1 = paper.

    With probability `degraded_share` the input is an amateur drawing of the clean sketch
    (seeded by seed, epoch and index, so every epoch draws it anew); otherwise the clean
    sketch itself. Both are flipped together half of the time.
    """

    def __init__(self, sketches: np.ndarray, images: np.ndarray | None,
                 degraded_share: float, styles: tuple[str, ...], seed: int = 0):
        self.sketches = sketches
        self.images = images
        self.degraded_share = degraded_share
        self.styles = styles
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.sketches)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng([self.seed, self.epoch, index])
        sketch = np.asarray(self.sketches[index])
        flip = rng.random() < 0.5
        if flip:
            sketch = np.ascontiguousarray(sketch[:, ::-1])
        drawn = sketch
        if rng.random() < self.degraded_share:
            image = None
            if "xdog" in self.styles and self.images is not None:
                image = np.asarray(self.images[index])
                image = np.ascontiguousarray(image[:, ::-1]) if flip else image
            drawn = amateur_sketch(sketch, rng, image, self.styles)
        return sketch_to_tensor(drawn), sketch_to_tensor(sketch)


def completion_loss(student: torch.Tensor, target: torch.Tensor,
                    mse_weight: float) -> tuple[torch.Tensor, dict[str, float]]:
    """1 - cosine + mse_weight * MSE / var(target), both (B, d) latents.

    The cosine term is what the bank's neighbour search ranks by; the scaled MSE keeps the
    latent's length (how much ink) right, in units that do not depend on the latent scale.
    """
    cosine = F.cosine_similarity(student, target, dim=1).mean()
    mse = F.mse_loss(student, target) / target.var().clamp_min(1e-8)
    loss = 1.0 - cosine + mse_weight * mse
    return loss, {"cosine": float(cosine.detach()), "mse_rel": float(mse.detach())}


def student_from(teacher: SketchAutoencoder, init: str | None = None) -> SketchAutoencoder:
    """A copy of the teacher with only encoder + to_latent trainable; with ``init``, its
    encoder + to_latent start from that completing autoencoder's (the decoder stays the
    teacher's, so the latent space does too)."""
    student = copy.deepcopy(teacher).requires_grad_(True)
    if init is not None:
        trained = SketchAutoencoder.from_pretrained(init)
        for name in ("encoder", "to_latent"):
            getattr(student, name).load_state_dict(getattr(trained, name).state_dict())
    for module in (student.from_latent, student.decoder):
        module.requires_grad_(False)
    return student


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    teacher = SketchAutoencoder.from_pretrained(args.teacher).eval().requires_grad_(False)
    if args.dry_run:
        trainable = sum(p.numel() for p in student_from(teacher).parameters() if p.requires_grad)
        print(f"Would train {trainable:,} encoder parameters for {args.steps} steps of "
              f"{args.batch_size} ({args.degraded_share:.0%} degraded, styles "
              f"{', '.join(args.styles)})")
        return 0

    context = setup(args)
    train_images, train_sketches = load_split(args.data, "train")
    val_images, val_sketches = load_split(args.data, "val")
    dataset = CompletingDataset(train_sketches, train_images, args.degraded_share, args.styles,
                                seed=args.seed)
    # Fixed val drawings for the grid and the val loss (seed 12345, never trained on).
    count = min(VAL_ITEMS, len(val_sketches))
    val_clean = np.asarray(val_sketches[:count])
    val_drawn = amateur_batch(val_clean, 12345, np.asarray(val_images[:count]), args.styles)
    to_batch = lambda arr: torch.stack([sketch_to_tensor(s) for s in arr]).to(context.device)  # noqa: E731
    val_clean_t, val_drawn_t = to_batch(val_clean), to_batch(val_drawn)  # (V, 1, R, R)

    teacher = teacher.to(context.device)
    student = student_from(teacher, args.init).to(context.device)
    with torch.no_grad():
        val_target = teacher.encode(val_clean_t)  # (V, d)
    trainable = [p for p in student.parameters() if p.requires_grad]
    optimiser = torch.optim.Adam(trainable, lr=args.lr)
    run = Run(args.out, context, {**vars(args), "teacher_config": teacher.config.__dict__})
    step, seconds_before = 0, 0.0
    if args.resume:
        step, seconds_before = run.resume(model=student, optimiser=optimiser)

    batches = infinite_batches(dataset, args.batch_size, context, args.seed, args.workers,
                               start_epoch=step * args.batch_size // max(1, len(dataset)))
    progress = tqdm(total=args.steps, initial=step, desc="completing", disable=not context.is_main)
    # Batch norm stays in eval mode: its running statistics are the teacher's, and moving
    # them towards degraded drawings would shift every clean sketch's latent too.
    student.eval()
    budget = Budget(args.steps, args.time_budget, seconds_before, context)
    fraction = budget.fraction(step)
    while fraction < 1.0:
        _, (inputs, clean) = next(batches)
        inputs, clean = inputs.to(context.device), clean.to(context.device)  # (B, 1, R, R)
        with torch.no_grad():
            target = teacher.encode(clean)  # (B, d)
        loss, parts = completion_loss(student.encode(inputs), target, args.mse_weight)
        lr = set_lr(optimiser, decayed_lr(args.lr, fraction))
        optimiser_step(optimiser, loss)
        step += 1
        progress.update(1)
        fraction = budget.fraction(step)
        last = fraction >= 1.0
        if step % args.log_every == 0 or last:
            run.log(step, loss=loss.item(), lr=lr, **parts)
            progress.set_postfix(loss=f"{loss.item():.4f}")
        if step % args.sample_every == 0 or last:
            with torch.no_grad():
                val_loss, val_parts = completion_loss(student.encode(val_drawn_t), val_target,
                                                      args.mse_weight)
                clean_loss, _ = completion_loss(student.encode(val_clean_t), val_target,
                                                args.mse_weight)
                run.log(step, val_loss=val_loss.item(), val_cosine=val_parts["cosine"],
                        val_clean_loss=clean_loss.item())
                shown = slice(0, SAMPLES)
                run.save_grid(step, [
                    val_drawn_t[shown], val_clean_t[shown],
                    teacher.decode(teacher.encode(val_drawn_t[shown])),
                    student.decode(student.encode(val_drawn_t[shown])),
                ])
        if step % args.checkpoint_every == 0 or last:
            run.save_checkpoint(step, model=student.state_dict(),
                                optimiser=optimiser.state_dict(),
                                seconds_used=budget.seconds_used())
    progress.close()
    if context.is_main:
        student.eval().save_pretrained(run.folder / "autoencoder")
        print(f"Saved the completing autoencoder to {run.folder / 'autoencoder'}")
    teardown(context)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
