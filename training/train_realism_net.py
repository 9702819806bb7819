"""The realism score's fixed feature net, trained once on real faces only.

    python -m training.train_realism_net --data data/ --out runs/realism --time-budget 14

Each real training face is left clean or given a random subset of corruptions (blur,
noise, colour shift, JPEG, resampling, a faint grid) at random strengths; the net learns
which were applied (BCE) and how strongly (MSE on the strength). At the end the pooled
features are standardised over real training faces and the net is written to
<out>/realism/ (config.json + model.safetensors); ship it with
`python -m evaluation.realism_net export <out>/realism weights/realism --half`.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset
from tqdm import tqdm

from evaluation.realism_net import RealismNet, RealismNetConfig, corrupt_batch
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
from training.data import data_resolution, image_to_tensor, load_split

SAMPLES = 8
STATS_IMAGES = 4096  # real training faces the feature mean and std are taken over
VAL_IMAGES = 512  # val faces the final presence accuracy is measured on


class RealFaces(Dataset):
    """Real faces (3, R, R) in [0, 1], randomly mirrored."""

    def __init__(self, images: np.ndarray, seed: int = 0):
        self.images = images
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> torch.Tensor:
        image = np.asarray(self.images[index])
        if np.random.default_rng([self.seed, self.epoch, index]).random() < 0.5:
            image = image[:, ::-1]
        return image_to_tensor(image)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    defaults = RealismNetConfig()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_common_args(parser, steps=3000, batch_size=32, lr=2e-3)
    parser.add_argument("--channels", type=int, nargs="+", default=list(defaults.channels))
    parser.add_argument("--strides", type=int, nargs="+", default=list(defaults.strides))
    parser.add_argument("--clean-share", type=float, default=0.3,
                        help="share of training faces left uncorrupted")
    parser.add_argument("--threads", type=int, default=0,
                        help="CPU threads for PyTorch (0 = its default)")
    args = parser.parse_args(argv)
    check_common_args(parser, args)
    if not 0 <= args.clean_share < 1:
        parser.error("--clean-share must be in [0, 1)")
    if args.threads < 0:
        parser.error("--threads must not be negative")
    try:
        args.model_config = RealismNetConfig(resolution=data_resolution(args.data),
                                             channels=tuple(args.channels),
                                             strides=tuple(args.strides))
    except ValueError as error:
        parser.error(str(error))
    return args


def realism_loss(logits: torch.Tensor, present: torch.Tensor,
                 strength: torch.Tensor) -> torch.Tensor:
    """BCE on which corruptions are present + MSE on their strengths ((B, K) each)."""
    k = present.shape[1]
    presence = F.binary_cross_entropy_with_logits(logits[:, :k], present)
    return presence + F.mse_loss(torch.sigmoid(logits[:, k:]), strength)


@torch.no_grad()
def presence_accuracy(model: RealismNet, images: torch.Tensor, seed: int,
                      batch_size: int = 128) -> dict[str, float]:
    """Accuracy of each presence head on (N, 3, R, R) faces corrupted with a fixed seed."""
    generator = torch.Generator().manual_seed(seed)
    k = len(model.config.corruptions)
    correct, count = torch.zeros(k), 0
    for batch in images.split(batch_size):
        corrupted, present, _ = corrupt_batch(batch, model.config.corruptions, generator)
        logits = model(corrupted.to(next(model.parameters()).device)).cpu()
        correct += ((logits[:, :k] > 0).float() == present).float().sum(dim=0)
        count += len(batch)
    return {f"acc_{name}": float(c / count) for name, c in zip(model.config.corruptions, correct)}


@torch.no_grad()
def standardise_features(model: RealismNet, images: np.ndarray, batch_size: int = 128) -> None:
    """Set the net's feature mean and scale from (N, R, R, 3) uint8 real faces.

    Features are centred per dimension but share one scale (the root mean variance over
    dimensions): a per-dimension std would blow up the features that barely move on real
    faces, and those are exactly the ones that fire on corrupted ones, so KID's cubic
    kernel would explode on any degraded set.
    """
    device = next(model.parameters()).device
    pooled = torch.cat([
        model.pooled(torch.from_numpy(np.ascontiguousarray(images[i:i + batch_size]))
                     .to(device).permute(0, 3, 1, 2).float() / 255.0)
        for i in range(0, len(images), batch_size)
    ])  # (N, D)
    model.feature_mean.copy_(pooled.mean(dim=0))
    model.feature_std.fill_(float(pooled.var(dim=0).mean().sqrt().clamp_min(1e-6)))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    config = args.model_config
    if args.dry_run:
        print_plan(RealismNet(config), config, args)
        return 0

    context = setup(args)
    if args.threads and context.device.type == "cpu":
        torch.set_num_threads(args.threads)
    train_images, _ = load_split(args.data, "train")
    val_images, _ = load_split(args.data, "val")
    dataset = RealFaces(train_images, seed=args.seed)
    val = torch.stack([image_to_tensor(np.asarray(val_images[i]))
                       for i in range(min(VAL_IMAGES, len(val_images)))])  # (V, 3, R, R)
    fixed = val[:SAMPLES]

    torch.manual_seed(args.seed)  # identical initial weights on every process
    model = RealismNet(config).to(context.device)
    optimiser = torch.optim.Adam(model.parameters(), lr=args.lr)
    run = Run(args.out, context, {**vars(args), "model_config": asdict(config)})
    step, seconds_before = 0, 0.0
    if args.resume:
        step, seconds_before = run.resume(model=model, optimiser=optimiser)
    trained = wrap(model, context)
    # Corruptions are drawn on the CPU from this generator (JPEG goes through PIL anyway).
    corruption_rng = torch.Generator().manual_seed(args.seed * 1000 + context.rank + step)

    batches = infinite_batches(dataset, args.batch_size, context, args.seed, args.workers,
                               start_epoch=step * args.batch_size // max(1, len(dataset)))
    progress = tqdm(total=args.steps, initial=step, desc="realism net",
                    disable=not context.is_main)
    model.train()
    budget = Budget(args.steps, args.time_budget, seconds_before, context)
    fraction = budget.fraction(step)
    while fraction < 1.0:
        _, images = next(batches)  # (B, 3, R, R)
        corrupted, present, strength = corrupt_batch(images, config.corruptions, corruption_rng,
                                                     clean_share=args.clean_share)
        logits = trained(corrupted.to(context.device))  # (B, 2K)
        loss = realism_loss(logits, present.to(context.device), strength.to(context.device))
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
            sample_rng = torch.Generator().manual_seed(args.seed)
            shown, _, _ = corrupt_batch(fixed, config.corruptions, sample_rng, clean_share=0.0)
            run.save_grid(step, [fixed, shown])
        if step % args.checkpoint_every == 0 or last:
            run.save_checkpoint(step, model=model.state_dict(), optimiser=optimiser.state_dict(),
                                seconds_used=budget.seconds_used())
    progress.close()
    if context.is_main:
        model.eval()
        accuracy = presence_accuracy(model, val, args.seed)
        run.log(step, **accuracy, images_seen=step * args.batch_size * context.world_size)
        print("val presence accuracy:", {k: round(v, 3) for k, v in accuracy.items()})
        rng = np.random.default_rng(args.seed)
        rows = np.sort(rng.choice(len(train_images), min(STATS_IMAGES, len(train_images)),
                                  replace=False))
        standardise_features(model, np.asarray(train_images[rows]))
        unwrap(trained).eval().save_pretrained(run.folder / "realism")
        print(f"Saved the realism net to {run.folder / 'realism'}")
    teardown(context)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
