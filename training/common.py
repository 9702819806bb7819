"""What every training entry point shares: flags, devices, torchrun, run folders, checkpoints."""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from PIL import Image
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler, RandomSampler

from s2a.models import count_parameters

CHECKPOINT = "checkpoint.pt"


def add_common_args(parser: argparse.ArgumentParser, steps: int, batch_size: int,
                    lr: float) -> None:
    """Flags every stage has: data, run folder, length, optimiser, device, bookkeeping."""
    parser.add_argument("--data", required=True, help="folder written by training.prepare_data")
    parser.add_argument("--out", required=True, help="run folder (checkpoints, samples, model)")
    parser.add_argument("--steps", type=int, default=steps, help="optimisation steps in all")
    parser.add_argument("--time-budget", type=float, default=0.0, metavar="MINUTES",
                        help="also end after this many minutes of training, whichever comes "
                        "first; the learning-rate schedule then follows the clock (0 = off)")
    parser.add_argument("--batch-size", type=int, default=batch_size, help="per process")
    parser.add_argument("--lr", type=float, default=lr)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    parser.add_argument("--checkpoint-every", type=int, default=500)
    parser.add_argument("--sample-every", type=int, default=500)
    parser.add_argument("--log-every", type=int, default=50)
    parser.add_argument("--resume", action="store_true", help="continue from --out's checkpoint")
    parser.add_argument("--dry-run", action="store_true",
                        help="check flags and data, print the plan, train nothing")


def print_plan(model: torch.nn.Module, config, args: argparse.Namespace) -> None:
    """What --dry-run prints: the resolved model config, its size and the run's length."""
    print(json.dumps({"config": asdict(config), "parameters": count_parameters(model),
                      "steps": args.steps, "batch_size": args.batch_size}, indent=2))


def check_common_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Fail before any work on flag combinations that cannot work."""
    for name in ("steps", "batch_size", "checkpoint_every", "sample_every", "log_every"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.lr <= 0:
        parser.error("--lr must be positive")
    if args.time_budget < 0:
        parser.error("--time-budget must not be negative")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda was asked for but no CUDA device is available")
    if not (Path(args.data) / "meta.json").is_file():
        parser.error(f"--data {args.data} holds no prepared data (run training.prepare_data)")
    if args.resume and not (Path(args.out) / CHECKPOINT).is_file():
        parser.error(f"--resume: no {CHECKPOINT} in {args.out}")


def pick_device(name: str) -> torch.device:
    """'auto' -> CUDA when available, else CPU; 'cpu' and 'cuda' as asked."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


@dataclass
class Context:
    """Where this process trains: device, rank and world size under torchrun."""

    device: torch.device
    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def setup(args: argparse.Namespace) -> Context:
    """Pick the device and join the process group when started by torchrun."""
    cuda = args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if cuda:
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        torch.backends.cudnn.benchmark = True  # fixed input sizes: pick the fastest kernels
    else:
        device = torch.device("cpu")
        if world_size > 1:
            # Processes share the cores; oversubscribing threads slows everyone down.
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // world_size))
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
    torch.manual_seed(args.seed + rank)
    return Context(device=device, rank=rank, world_size=world_size)


def teardown(context: Context) -> None:
    if context.distributed and dist.is_initialized():
        dist.destroy_process_group()


def wrap(model: torch.nn.Module, context: Context) -> torch.nn.Module:
    """DistributedDataParallel under torchrun, the model itself otherwise."""
    if not context.distributed:
        return model
    device_ids = [context.device.index] if context.device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=device_ids)


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return model.module if isinstance(model, DistributedDataParallel) else model


def infinite_batches(dataset: Dataset, batch_size: int, context: Context, seed: int,
                     workers: int = 0, start_epoch: int = 0):
    """Yield batches forever, reshuffling each epoch (sharded across processes)."""
    epoch = start_epoch
    while True:
        if hasattr(dataset, "epoch"):
            dataset.epoch = epoch  # fresh hints / augmentations each epoch
        if context.distributed:
            sampler = DistributedSampler(dataset, num_replicas=context.world_size,
                                         rank=context.rank, shuffle=True, seed=seed)
            sampler.set_epoch(epoch)
        else:
            generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
            sampler = RandomSampler(dataset, generator=generator)
        loader = DataLoader(dataset, batch_size=batch_size, sampler=sampler, drop_last=True,
                            num_workers=workers, pin_memory=context.device.type == "cuda")
        if len(loader) == 0:
            raise ValueError(f"The data has fewer items ({len(dataset)}) than one batch.")
        for batch in loader:
            yield epoch, batch
        epoch += 1


class Run:
    """A run folder: resolved config, metrics.jsonl, sample grids and the checkpoint.

    Only the main process writes; the others hold a Run so the code stays the same.
    """

    def __init__(self, folder: str | Path, context: Context, config: dict):
        self.folder = Path(folder)
        self.context = context
        self.started = time.perf_counter()
        # Images per optimisation step over all processes, for the throughput in the log.
        self.images_per_step = int(config.get("batch_size", 0)) * context.world_size
        self._last = None  # (step, time) of the previous log line
        if context.is_main:
            (self.folder / "samples").mkdir(parents=True, exist_ok=True)
            (self.folder / "config.json").write_text(json.dumps(config, indent=2, default=str))

    def log(self, step: int, **metrics: float) -> None:
        if not self.context.is_main:
            return
        now = time.perf_counter()
        record = {"step": step, "seconds": round(now - self.started, 1)}
        if self._last is not None and step > self._last[0] and self.images_per_step:
            rate = (step - self._last[0]) * self.images_per_step / (now - self._last[1])
            record["images_per_s"] = round(rate, 1)
        self._last = (step, now)
        record.update({k: round(float(v), 5) for k, v in metrics.items()})
        with open(self.folder / "metrics.jsonl", "a") as handle:
            handle.write(json.dumps(record) + "\n")

    def save_grid(self, step: int, columns: list[torch.Tensor]) -> Path | None:
        """Save a grid whose columns are (N, C, H, W) tensors in [0, 1] (C = 1, 3 or 4)."""
        if not self.context.is_main:
            return None
        path = self.folder / "samples" / f"step_{step:07d}.png"
        save_image_grid(path, columns)
        return path

    def save_checkpoint(self, step: int, **states) -> None:
        """Tensors and plain containers only, so it loads with weights_only=True."""
        if not self.context.is_main:
            return
        temporary = self.folder / (CHECKPOINT + ".tmp")
        torch.save({"step": step, **states}, temporary)
        os.replace(temporary, self.folder / CHECKPOINT)  # never leave a half-written file

    def load_checkpoint(self) -> dict:
        """The checkpoint's state; metrics logged after it are dropped (they are redone)."""
        state = torch.load(self.folder / CHECKPOINT, map_location=self.context.device,
                           weights_only=True)
        metrics = self.folder / "metrics.jsonl"
        if self.context.is_main and metrics.is_file():
            kept = [line for line in metrics.read_text().splitlines()
                    if json.loads(line)["step"] <= int(state["step"])]
            metrics.write_text("".join(line + "\n" for line in kept))
        return state


    def resume(self, **parts) -> tuple[int, float]:
        """Load the checkpoint into `parts` (saved name -> module or optimiser).

        Returns (step, seconds used before), the start of a resumed run.
        """
        state = self.load_checkpoint()
        for name, part in parts.items():
            part.load_state_dict(state[name])
        return int(state["step"]), float(state.get("seconds_used", 0.0))


def save_image_grid(path: str | Path, columns: list[torch.Tensor]) -> None:
    """Write a PNG whose columns are (N, C, H, W) tensors in [0, 1], upscaled 2x."""
    tiles = []
    for column in columns:
        column = column.detach().float().cpu().clamp(0, 1)
        if column.shape[1] == 1:
            column = column.repeat(1, 3, 1, 1)
        elif column.shape[1] == 4:
            # Hints: colour where hinted, light grey elsewhere.
            mask = column[:, 3:4]
            column = column[:, :3] * mask + 0.8 * (1 - mask)
        tiles.append(torch.cat(list(column), dim=1))  # (3, N*H, W)
    grid = torch.cat(tiles, dim=2).permute(1, 2, 0).numpy()  # (N*H, cols*W, 3)
    image = Image.fromarray((grid * 255).round().astype(np.uint8))
    image.resize((image.width * 2, image.height * 2), Image.Resampling.NEAREST).save(path)


def optimiser_step(optimiser: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    optimiser.zero_grad(set_to_none=True)
    loss.backward()
    optimiser.step()


class Budget:
    """How far a run has got: by steps, or by the clock when --time-budget is set.

    With a time budget the run ends when either runs out, and the learning rate follows
    whichever is further along, so a run on a fast machine still ends on a decayed rate.
    Seconds spent before a resume count (they are kept in the checkpoint).
    """

    def __init__(self, steps: int, minutes: float = 0.0, seconds_before: float = 0.0,
                 context: Context | None = None):
        self.steps = steps
        self.seconds = minutes * 60.0
        self.seconds_before = seconds_before
        self.context = context
        self.started = time.perf_counter()

    def seconds_used(self) -> float:
        return self.seconds_before + time.perf_counter() - self.started

    def fraction(self, step: int) -> float:
        """Share of the run done in [0, 1]; the same on every process under torchrun."""
        done = step / self.steps
        if self.seconds > 0:
            done = max(done, self.seconds_used() / self.seconds)
            if self.context is not None and self.context.distributed:
                # Clocks differ between processes: all must stop at the same step.
                shared = torch.tensor([done], device=self.context.device)
                dist.all_reduce(shared, op=dist.ReduceOp.MAX)
                done = float(shared.item())
        return min(1.0, done)


def decayed_lr(base: float, fraction: float, hold: float = 0.5) -> float:
    """Constant for the first `hold` share of the run, then cosine down to 5 % of base."""
    if fraction < hold:
        return base
    progress = min(1.0, (fraction - hold) / (1.0 - hold))
    return base * (0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * progress)))


def set_lr(optimiser: torch.optim.Optimizer, lr: float) -> float:
    for group in optimiser.param_groups:
        group["lr"] = lr
    return lr
