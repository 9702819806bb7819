"""Upload a weights folder to a Hugging Face Hub model repo, for `from_pretrained("user/repo")`.

    python -m training.push_to_hub --repo user/sketch2anime --weights weights/ --dry-run
    python -m training.push_to_hub --repo user/sketch2anime --weights weights/ [--private]

Only what the pipeline downloads is uploaded (`s2a.pipeline.HUB_ALLOW_PATTERNS`): each
network's config.json + model.safetensors, the latent bank, manifest.json and the
README.md model card. Before anything is contacted the folder must be complete, must load
as a pipeline, and must hold no pickle-like file. `--dry-run` prints what would be
uploaded and contacts nothing. The token comes from HF_TOKEN or the cached login
(`hf auth login`). Exit status: 0 done, 2 bad flags / folder / no token, 1 upload failed.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
from pathlib import Path

from huggingface_hub import HfApi, get_token
from huggingface_hub.utils import DEFAULT_IGNORE_PATTERNS, filter_repo_objects

from s2a import Sketch2Anime
from s2a.hub import BASELINE_DIR, HUB_ALLOW_PATTERNS, HUB_REQUIRED_FILES, REPO_ID
from s2a.manifest import read_manifest
from s2a.models import SimpleGAN

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")
DEFAULT_MESSAGE = "Upload Sketch2Anime weights"
COMMIT_HASH_LENGTH = 40


class UploadError(Exception):
    """A problem the user must fix before anything is uploaded (exit status 2)."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repo", required=True, help="Hub model repo id, user/repo")
    parser.add_argument("--weights", default="weights/", help="weights folder to upload")
    parser.add_argument("--revision", default="main",
                        help="branch to commit to (created from main if missing)")
    parser.add_argument("--private", action="store_true", help="create the repo as private")
    parser.add_argument("--message", default=DEFAULT_MESSAGE, help="commit message")
    parser.add_argument("--dry-run", action="store_true",
                        help="check the folder, list what would be uploaded, contact nothing")
    args = parser.parse_args(argv)
    if not REPO_ID.fullmatch(args.repo):
        parser.error(f"--repo {args.repo!r} is not a Hub repo id (user/repo)")
    revision = args.revision
    if not revision or (len(revision) == COMMIT_HASH_LENGTH
                        and all(c in "0123456789abcdef" for c in revision)):
        parser.error(f"--revision {revision!r} must name a branch (a commit cannot be pushed to)")
    if not args.message.strip():
        parser.error("--message must not be empty")
    return args


def _local_files(folder: Path) -> list[str]:
    """Every file under `folder` as a relative POSIX path, minus .git and HF cache folders."""
    paths = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    return list(filter_repo_objects(paths, ignore_patterns=DEFAULT_IGNORE_PATTERNS))


def upload_files(folder: str | Path) -> list[str]:
    """The files of `folder` that would be uploaded: those the pipeline downloads."""
    return list(filter_repo_objects(_local_files(Path(folder)),
                                    allow_patterns=list(HUB_ALLOW_PATTERNS)))


def check_folder(folder: str | Path) -> list[str]:
    """Check `folder` is a complete, loadable, pickle-free weights folder; return the upload list.

    Raises UploadError with a sentence saying what is wrong.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise UploadError(f"No weights folder at {folder}.")
    pickles = [name for name in _local_files(folder)
               if Path(name).suffix.lower() in PICKLE_SUFFIXES]
    if pickles:
        raise UploadError(
            f"Refusing to upload {folder}: it holds pickle-like files ({', '.join(pickles)}). "
            "Weights are shared as safetensors only; move those files out of the folder."
        )
    missing = [name for name in HUB_REQUIRED_FILES if not (folder / name).is_file()]
    if missing:
        raise UploadError(
            f"{folder} is not a complete weights folder: missing {', '.join(missing)} "
            "(write it with python -m training.export; an older export gets its manifest "
            f"with python -m s2a.manifest write {folder})."
        )
    try:
        Sketch2Anime.from_pretrained(folder)  # verifies manifest.json too
        if (folder / BASELINE_DIR).is_dir():
            # huggingface_hub prints a line per local load; the plan below is the output.
            with contextlib.redirect_stdout(io.StringIO()):
                SimpleGAN.from_pretrained(folder / BASELINE_DIR)
    except Exception as error:  # bad config, corrupt or mismatched tensors, unreadable files
        first = str(error).splitlines()[0] if str(error) else ""
        raise UploadError(
            f"{folder} does not load as a Sketch2Anime pipeline ({type(error).__name__}: {first})."
        ) from error
    # Every listed file must go up, or the Hub copy would fail its own verification.
    unsent = sorted(set(read_manifest(folder)) - set(upload_files(folder)))
    if unsent:
        raise UploadError(
            f"{folder}/manifest.json lists files the Hub upload leaves out ({', '.join(unsent)}): "
            "move them out of the folder and write the manifest again."
        )
    return upload_files(folder)


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB"):
        if n < 1024 or unit == "MiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def print_plan(folder: Path, files: list[str], repo: str, revision: str) -> None:
    """The file list with sizes and the total, as uploaded to `repo` at `revision`."""
    sizes = {name: (folder / name).stat().st_size for name in files}
    width = max(len(name) for name in files)
    print(f"{len(files)} files from {folder} -> {repo} (revision {revision}):")
    for name in files:
        print(f"  {name:<{width}}  {_size(sizes[name]):>10}")
    print(f"Total: {_size(sum(sizes.values()))} ({sum(sizes.values())} bytes)")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    folder = Path(args.weights)
    try:
        files = check_folder(folder)
    except UploadError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if "README.md" not in files:
        print("warning: no README.md model card in the folder; the Hub page will be empty.",
              file=sys.stderr)
    print_plan(folder, files, args.repo, args.revision)
    if args.dry_run:
        print("Dry run: nothing uploaded, the Hub was not contacted.")
        return 0

    try:
        token = get_token()  # HF_TOKEN, else the token cached by `hf auth login`
    except Exception as error:  # e.g. HF_OIDC_RESOURCE set but the exchange failed
        print(f"error: could not read the Hugging Face token: {error}", file=sys.stderr)
        return 2
    if not token:
        print("error: no Hugging Face token: set HF_TOKEN or run `hf auth login` "
              "(a token with write access).", file=sys.stderr)
        return 2
    # Files of the uploaded folders that are no longer written locally (say a bank.faiss
    # from an older approximate bank) are deleted in the same commit, so the repo never
    # mixes two exports.
    stale = sorted({f"{name.split('/')[0]}/*" for name in files if "/" in name})
    api = HfApi(token=token)
    try:
        api.create_repo(args.repo, repo_type="model", private=True if args.private else None,
                        exist_ok=True)
        if args.revision != "main":
            api.create_branch(args.repo, branch=args.revision, repo_type="model", exist_ok=True)
        commit = api.upload_folder(
            repo_id=args.repo, folder_path=str(folder), repo_type="model",
            revision=args.revision, commit_message=args.message,
            allow_patterns=files, delete_patterns=stale,
        )
    except Exception as error:  # HTTP (auth, quota), network, YAML of the card: one line
        first = str(error).splitlines()[0] if str(error) else ""
        print(f"error: upload to {args.repo} failed ({type(error).__name__}: {first})",
              file=sys.stderr)
        return 1
    url = getattr(commit, "commit_url", None) or f"https://huggingface.co/{args.repo}"
    print(f"Uploaded to {url}")
    print(f'Load it with Sketch2Anime.from_pretrained("{args.repo}", revision="{args.revision}")')
    return 0


if __name__ == "__main__":
    sys.exit(main())
