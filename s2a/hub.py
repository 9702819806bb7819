"""Where weights come from: the bundled folder, a local folder, or a Hugging Face Hub repo.

Only safetensors, JSON and the bank's files are ever fetched (never a pickle), into the
standard Hugging Face cache, and read from that cache when offline.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

BUNDLED_WEIGHTS = Path(__file__).resolve().parent.parent / "weights"
AUTOENCODER_DIR, GENERATOR_DIR, BANK_DIR = "autoencoder", "generator", "bank"
BASELINE_DIR = "baseline"  # the SimpleGAN the evaluation compares against
PARTS_DIR = "parts"  # the per-part model (s2a.parts), optional
FACE_LOCATOR_DIR = "face_locator"  # face-aware framing (s2a.face_locator), optional
REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*")
# Values of HF_HUB_OFFLINE that mean "on", as huggingface_hub reads them.
ENV_TRUE_VALUES = {"1", "ON", "YES", "TRUE"}


# What a Hub weights repo must hold, and the only files downloaded from one (never a
# pickle, never the training runs a repo may also carry). The baseline rides along under
# "*/": evaluation compares against it.
HUB_ALLOW_PATTERNS = (
    "*/config.json", "*/model.safetensors", f"{BANK_DIR}/*", f"{PARTS_DIR}/*",
    "manifest.json", "README.md",
)
HUB_REQUIRED_FILES = (
    f"{AUTOENCODER_DIR}/config.json", f"{AUTOENCODER_DIR}/model.safetensors",
    f"{GENERATOR_DIR}/config.json", f"{GENERATOR_DIR}/model.safetensors",
    f"{BANK_DIR}/bank_latents.safetensors", "manifest.json",
)


def resolve_weights(source: str | os.PathLike | None, revision: str | None = None) -> Path:
    """Folder of weights for `source`: None -> $S2A_WEIGHTS or bundled, a path, or a repo id.

    With no `source`, `$S2A_WEIGHTS` (a folder or a Hub repo id) and `$S2A_REVISION` are
    used, else the bundled `weights/`. An existing folder is returned as is. A Hub repo id
    ("user/repo") is fetched with `huggingface_hub.snapshot_download` at `revision`
    (default "main"; a commit hash pins it) into the standard Hugging Face cache, only the
    files in `HUB_ALLOW_PATTERNS`. With `HF_HUB_OFFLINE=1`, or when the Hub cannot be
    reached, a cached copy of that revision is used. Raises ValueError when the repo or
    revision does not exist, is not cached while offline, or lacks a weights file.
    """
    if source is None:
        source = os.environ.get("S2A_WEIGHTS") or BUNDLED_WEIGHTS
        revision = revision or os.environ.get("S2A_REVISION") or None
    path = Path(source)
    if path.is_dir():
        return path
    text = str(source)
    if not REPO_ID.fullmatch(text):
        raise ValueError(f"No weights folder at {text}, and it is not a Hub repo id (user/repo).")
    folder = _download_weights(text, revision)
    missing = [name for name in HUB_REQUIRED_FILES if not (folder / name).is_file()]
    if missing:
        raise ValueError(
            f"The Hub repo {text!r} (revision {revision or 'main'}) is not a complete "
            f"Sketch2Anime weights repo: missing {', '.join(missing)}."
        )
    return folder


def _download_weights(repo_id: str, revision: str | None) -> Path:
    """snapshot_download of the weights files; Hub errors become one-sentence ValueErrors."""
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.utils import (
        GatedRepoError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    # Read at call time too: huggingface_hub reads its environment once, at import, and a
    # caller (or a test) may set these after that.
    offline = (constants.HF_HUB_OFFLINE
               or os.environ.get("HF_HUB_OFFLINE", "").upper() in ENV_TRUE_VALUES)
    cache_dir = os.path.expandvars(os.environ.get("HF_HUB_CACHE", "")) or None
    where = f"the Hub repo {repo_id!r} at revision {revision or 'main'}"
    try:
        folder = snapshot_download(
            repo_id=repo_id, revision=revision, cache_dir=cache_dir,
            allow_patterns=list(HUB_ALLOW_PATTERNS), local_files_only=offline,
        )
    except GatedRepoError as error:
        raise ValueError(
            f"{where} is gated: accept its terms on huggingface.co and log in "
            "(`hf auth login` or HF_TOKEN)."
        ) from error
    except RepositoryNotFoundError as error:
        raise ValueError(
            f"No weights folder at {repo_id}, and {where} was not found on the Hub (if it is "
            "private, log in with `hf auth login` or set HF_TOKEN)."
        ) from error
    except RevisionNotFoundError as error:
        raise ValueError(f"{where}: the repo exists but has no such revision.") from error
    except LocalEntryNotFoundError as error:
        if type(error).__name__ == "IncompleteSnapshotError":
            raise ValueError(
                f"{where} is only partly in the local Hugging Face cache and the Hub cannot "
                "be reached: download it again with network access."
            ) from error
        reason = "offline mode is on (HF_HUB_OFFLINE)" if offline else "the Hub cannot be reached"
        raise ValueError(
            f"No weights folder at {repo_id}, and {where} is not in the local Hugging Face "
            f"cache ({cache_dir or constants.HF_HUB_CACHE}) while {reason}: download it once "
            "with network access, or pass a local weights folder."
        ) from error
    except Exception as error:  # network, disk, invalid id: still one clear sentence
        detail = str(error).splitlines()[0] if str(error) else ""
        raise ValueError(
            f"No weights folder at {repo_id}, and {where} could not be loaded "
            f"({type(error).__name__}: {detail})."
        ) from error
    return Path(folder)
