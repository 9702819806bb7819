"""Tar finished models of a remote run, fp16, one file each, for a machine's way back.

    python -m training.collect_runs --out OUT NAME=MODEL_FOLDER [NAME=MODEL_FOLDER ...]

Each MODEL_FOLDER (config.json + model.safetensors) becomes OUT/NAME.tar holding
NAME/config.json and NAME/model.safetensors with every float tensor in float16 (half the
bytes; fp16-stored weights load into the fp32 models). A GAN run's discriminator (saved
beside the model in its run folder, `training.gan`) goes into the same tar as
NAME_discriminator/, so that a later fine-tune can start from it
(`--init-discriminator`). A lent GPU machine sends back files
of under 16 MiB, so a larger tar is reported and counts as a failure; a missing model is
reported and skipped, so a run stopped on the clock still sends back what finished.
Exit status 1 when any model was missing or too large. `add_bytes` and `add_model` also
serve `training/rebuild_on_gpu.sh`'s collect step.
"""

from __future__ import annotations

import argparse
import io
import sys
import tarfile
from pathlib import Path

from safetensors.torch import load_file, save

from training.gan import DISCRIMINATOR_DIR

LIMIT = 16 * 2**20  # the largest file a lent machine sends back


def add_bytes(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    """Add `data` to `archive` as the file `name`."""
    info = tarfile.TarInfo(name)
    info.size = len(data)
    archive.addfile(info, io.BytesIO(data))


def add_model(archive: tarfile.TarFile, name: str, folder: Path) -> None:
    """config.json and fp16 model.safetensors of the model folder `folder` as `name`/."""
    tensors = {k: v.half() if v.is_floating_point() else v
               for k, v in load_file(folder / "model.safetensors").items()}
    add_bytes(archive, f"{name}/model.safetensors", save(tensors))
    add_bytes(archive, f"{name}/config.json", (folder / "config.json").read_bytes())


def add_run_discriminator(archive: tarfile.TarFile, name: str, model_folder: Path) -> None:
    """The discriminator of the run that saved `model_folder`, as `name`_discriminator/,
    when there is one (GAN stages save it when they end)."""
    folder = model_folder.parent / DISCRIMINATOR_DIR
    if (folder / "model.safetensors").is_file():
        add_model(archive, f"{name}_discriminator", folder)


def collect(name: str, folder: Path, out: Path) -> bool:
    """Write out/name.tar from the model folder; True when it exists and fits."""
    if not (folder / "model.safetensors").is_file():
        print(f"{name}: no model in {folder}")
        return False
    target = out / f"{name}.tar"
    with tarfile.open(target, "w") as archive:
        add_model(archive, name, folder)
        add_run_discriminator(archive, name, folder)
    size = target.stat().st_size
    print(f"{name}: {size / 2**20:.1f} MiB{'  (over 16 MiB!)' if size >= LIMIT else ''}")
    return size < LIMIT


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="folder the tars go to (created)")
    parser.add_argument("models", nargs="+", metavar="NAME=MODEL_FOLDER")
    args = parser.parse_args(argv)
    pairs = [model.split("=", 1) for model in args.models]
    if any(len(pair) != 2 or not pair[0] for pair in pairs):
        parser.error("each model is NAME=MODEL_FOLDER")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = [collect(name, Path(folder), out) for name, folder in pairs]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
