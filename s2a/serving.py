"""Process settings for serving the app: environment knobs, FAISS threads, a Gradio fix.

Kept out of app.py (which only wires the UI) and out of the pipeline (which a library
user may run in any process).
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import uuid
from pathlib import Path

from PIL import Image

log = logging.getLogger(__name__)
KEEP_DOWNLOADS = 64  # result PNGs kept on disk for the download button
# The Gradio releases whose processing_utils.save_pil_to_cache the fix below replaces
# (same signature, same content-hash naming); outside them the fix is left out.
PATCHED_GRADIO_MAJOR = (5, 6)


def env_int(name: str, default: int) -> int:
    """A positive integer setting from the environment (queue size, concurrency)."""
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    if not value.isdigit() or int(value) < 1:
        raise SystemExit(f"Cannot start Sketch2Anime: {name}={value!r} must be a whole "
                         "number of at least 1.")
    return int(value)


def save_pil_to_cache_atomically(img: Image.Image, cache_dir: str, name: str = "image",
                                 format: str = "webp") -> str:
    """Gradio's processing_utils.save_pil_to_cache, without rewriting a file being served.

    Gradio names a cached image by the hash of its bytes and rewrites it in place on every
    save, so when two requests produce the same image at once (the same example, the same
    neighbour thumbnails) one truncates the file while the other's browser downloads it
    and gets an empty body. Here an existing file is left alone and a new one appears
    whole (written aside, then renamed), as Gradio already does for files it copies.
    """
    from gradio import processing_utils

    data = processing_utils.encode_pil_to_bytes(img, format)
    folder = Path(cache_dir) / processing_utils.hash_bytes(data)
    folder.mkdir(exist_ok=True, parents=True)
    path = (folder / f"{name}.{format}").resolve()
    if path.exists():
        with contextlib.suppress(OSError):
            os.utime(path)  # handed out again: delete_cache ages files by ctime
        return str(path)
    partial = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    try:
        partial.write_bytes(data)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return str(path)


def modified_time(path: Path) -> float:
    """A file's mtime; 0 once gone (a concurrent request may delete it meanwhile)."""
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


class DownloadFolder:
    """Where the app writes result PNGs for its download button, the newest few kept."""

    def __init__(self, folder: Path | None = None):
        self.folder = folder or Path(tempfile.mkdtemp(prefix="sketch2anime-"))
        self.folder.mkdir(parents=True, exist_ok=True)

    def save_png(self, face: Image.Image) -> str:
        """Write the face as a PNG for the download button; keep the latest few files."""
        old = sorted(self.folder.glob("*/sketch2anime.png"), key=modified_time)
        for path in old[: max(0, len(old) - KEEP_DOWNLOADS + 1)]:
            with contextlib.suppress(OSError):  # a concurrent request got there first
                path.unlink()
                path.parent.rmdir()
        folder = self.folder / uuid.uuid4().hex
        folder.mkdir()
        path = folder / "sketch2anime.png"
        face.save(path, format="PNG")
        return str(path)


def install_gradio_cache_fix() -> bool:
    """Replace Gradio's save_pil_to_cache by the atomic version, on known Gradio releases.

    Returns whether it was installed; on other releases it logs why not and leaves Gradio
    as it is (a changed private function must not be patched blindly).
    """
    import gradio as gr
    from gradio import processing_utils

    major = int(gr.__version__.split(".")[0])
    needed = ("encode_pil_to_bytes", "hash_bytes", "save_pil_to_cache")
    if major not in PATCHED_GRADIO_MAJOR or not all(hasattr(processing_utils, n) for n in needed):
        log.warning("Gradio %s: save_pil_to_cache left unpatched (the fix is for Gradio %s); "
                    "identical images served at once may come back empty.", gr.__version__,
                    " and ".join(map(str, PATCHED_GRADIO_MAJOR)))
        return False
    processing_utils.save_pil_to_cache = save_pil_to_cache_atomically
    return True


def use_one_search_thread() -> None:
    """One OpenMP thread per FAISS query: faster for single queries (figures in README),
    and the server's queue already runs requests side by side."""
    import faiss

    faiss.omp_set_num_threads(1)
