"""Fuzzing the public API and the app's handlers with hypothesis (tiny weights, derandomized).

Every case must give a valid result or a ValueError (API) / gr.Error (handlers) whose
message tells the user what to do; any other exception is a bug. Sizes are mostly small
(cheap); the large and over-large sizes are a few fixed cases.
"""

from __future__ import annotations

import io
import math
import struct
import tempfile
import zlib
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

import app
from s2a import Sketch2Anime, editor
from s2a.pipeline import GenerationResult
from tests.conftest import face_sketch

MODES = ["1", "L", "P", "RGB", "RGBA", "CMYK", "YCbCr", "LAB", "HSV", "I", "I;16", "I;16B",
         "I;16L", "F", "LA", "PA", "RGBa", "La", "RGBX"]
FILLS = ["black", "white", "zero", "noise", "strokes"]
FUZZ = settings(max_examples=200, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.fixture(scope="module")
def pipe(tiny_weights) -> Sketch2Anime:
    return Sketch2Anime.from_pretrained(tiny_weights)


@pytest.fixture(scope="module")
def handlers(pipe, tmp_path_factory) -> app.Handlers:
    return app.Handlers(pipe, downloads=tmp_path_factory.mktemp("fuzz-downloads"))


@pytest.fixture(scope="module")
def upload_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz-uploads")


# ---------------------------------------------------------------- strategies


@st.composite
def pil_images(draw, max_side: int = 48) -> Image.Image:
    """Any PIL mode and size, filled black, white, all-zero bytes (transparent), noise or lines."""
    mode = draw(st.sampled_from(MODES))
    size = (draw(st.integers(1, max_side)), draw(st.integers(1, max_side)))
    fill = draw(st.sampled_from(FILLS))
    seed = draw(st.integers(0, 2**16))
    image = Image.new(mode, size)
    length = len(image.tobytes())
    if fill == "zero":
        data = bytes(length)
    elif fill == "noise":
        data = np.random.default_rng(seed).integers(0, 256, length, dtype=np.uint8).tobytes()
    elif fill in ("black", "white"):
        base = Image.new("L", size, 0 if fill == "black" else 255)
        try:
            return base.convert(mode)
        except (ValueError, OSError):
            data = (b"\x00" if fill == "black" else b"\xff") * length
    else:  # dark strokes on white, converted into the mode where PIL can
        drawing = face_sketch(64, brush=1).resize(size)
        try:
            return drawing.convert(mode)
        except (ValueError, OSError):
            data = drawing.tobytes() * (length // max(1, size[0] * size[1]))
            data = data[:length].ljust(length, b"\xff")
    image.frombytes(data)
    return image


DTYPES = [np.uint8, np.uint16, np.int8, np.int64, np.float16, np.float32, np.float64, np.bool_,
          np.complex64, object, np.str_]


@st.composite
def arrays(draw) -> np.ndarray:
    """numpy payloads: odd shapes and dtypes, NaN/inf, negative and huge values."""
    h, w = draw(st.integers(0, 40)), draw(st.integers(0, 40))
    shape = draw(st.sampled_from([(h, w), (h, w, 1), (h, w, 3), (h, w, 4), (h, w, 2),
                                  (h, w, 5), (h,), (h, w, 3, 1), ()]))
    dtype = draw(st.sampled_from(DTYPES))
    kind = draw(st.sampled_from(["noise", "zeros", "ones", "nan", "inf", "negative", "huge"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    values = {
        "noise": lambda: rng.uniform(0, 300, shape),
        "zeros": lambda: np.zeros(shape),
        "ones": lambda: np.ones(shape),
        "nan": lambda: np.full(shape, np.nan),
        "inf": lambda: np.full(shape, np.inf),
        "negative": lambda: -rng.uniform(0, 1e6, shape),
        "huge": lambda: np.full(shape, 1e30),
    }[kind]()
    with np.errstate(all="ignore"):
        if dtype is object:
            return values.astype(object)
        if dtype is np.str_:
            return values.astype(str)
        if np.dtype(dtype).kind in "iub" and kind in ("nan", "inf", "huge", "negative"):
            info = np.iinfo(dtype) if np.dtype(dtype).kind in "iu" else None
            values = np.nan_to_num(values, nan=0, posinf=info.max if info else 1,
                                   neginf=info.min if info else 0)
        return values.astype(dtype)


WEIRD = st.one_of(
    st.none(), st.booleans(), st.text(max_size=5),
    st.integers(-(2**70), 2**70), st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([math.nan, math.inf, -1, 0, 1, 64, 65, 2**32, 2**32 - 1, "1", [1], {}]),
)
REFINE = st.one_of(st.floats(0, 1), WEIRD)
K = st.one_of(st.integers(1, 64), WEIRD)
SEED = st.one_of(st.integers(0, 2**32 - 1), WEIRD)


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def huge_png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height pixels, with almost no pixel data."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


@st.composite
def file_bytes(draw) -> bytes:
    """Upload contents: random bytes, truncated or corrupted PNG/JPEG, empty, bombs."""
    kind = draw(st.sampled_from(["random", "truncated", "flipped", "empty", "valid", "bomb",
                                 "jpeg"]))
    image = draw(pil_images(max_side=24))
    if image.mode in ("La", "LAB"):  # PIL converts these to LA / RGB only
        image = image.convert("LA" if image.mode == "La" else "RGB")
    if kind == "random":
        return draw(st.binary(max_size=256))
    if kind == "empty":
        return b""
    if kind == "bomb":
        return huge_png_header(draw(st.sampled_from([4097, 20000, 100000])),
                               draw(st.sampled_from([4096, 20000, 100000])))
    if kind == "jpeg":
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, format="JPEG")
        data = buffer.getvalue()
    else:
        data = png_bytes(image if image.mode in ("1", "L", "P", "RGB", "RGBA", "LA", "I;16")
                         else image.convert("RGBA"))
    if kind == "truncated":
        return data[: draw(st.integers(0, max(0, len(data) - 1)))]
    if kind == "flipped":
        position = draw(st.integers(0, len(data) - 1))
        return data[:position] + bytes([data[position] ^ 0xFF]) + data[position + 1:]
    return data


def editor_payloads(inner) -> st.SearchStrategy:
    """ImageEditor dicts with any of background/layers/composite missing, None or odd."""
    return st.fixed_dictionaries({}, optional={
        "background": st.one_of(st.none(), inner),
        "layers": st.one_of(st.none(), st.lists(st.one_of(st.none(), inner), max_size=3)),
        "composite": st.one_of(st.none(), inner),
    })


PICTURES = st.one_of(pil_images(), arrays())
PAYLOADS = st.one_of(st.none(), PICTURES, editor_payloads(PICTURES),
                     st.sampled_from([42, "", b"bytes", [1, 2], {"layers": 5}]))


# ---------------------------------------------------------------- checks


def assert_helpful(message: str) -> None:
    """A message a user can act on: a sentence, not a bare exception repr."""
    assert len(message) >= 20, message
    assert "Traceback" not in message


def api_case(pipe: Sketch2Anime, sketch, hints=None, refine=1.0, k=10, seed=0) -> None:
    try:
        result = pipe(sketch, hints=hints, refine=refine, k=k, seed=seed)
    except ValueError as error:
        assert_helpful(str(error))
        return
    assert isinstance(result, GenerationResult)
    assert result.image.mode == "RGB" and result.image.size == (pipe.resolution,) * 2
    assert result.projected_sketch.mode == "L"
    assert math.isclose(sum(w for _, w in result.neighbors), 1.0, abs_tol=1e-3)


def handler_case(call, *args) -> None:
    try:
        outputs = call(*args)
    except gr.Error as error:
        assert_helpful(error.message)
        return
    assert outputs is not None


# ---------------------------------------------------------------- the API


@FUZZ
@given(sketch=pil_images(), hints=st.one_of(st.none(), pil_images()))
def test_api_any_mode_and_size(pipe, sketch, hints):
    api_case(pipe, sketch, hints)


@FUZZ
@given(sketch=arrays(), hints=st.one_of(st.none(), arrays()))
def test_api_numpy_payloads(pipe, sketch, hints):
    api_case(pipe, sketch, hints)


@FUZZ
@given(refine=REFINE, k=K, seed=SEED)
def test_api_arguments(pipe, refine, k, seed):
    api_case(pipe, face_sketch(48), None, refine, k, seed)


@settings(FUZZ, max_examples=60)
@given(hint_size=st.tuples(st.integers(1, 300), st.integers(1, 300)),
       sketch_size=st.tuples(st.integers(8, 200), st.integers(8, 200)))
def test_api_hints_of_another_size(pipe, hint_size, sketch_size):
    hints = Image.new("RGBA", hint_size, (255, 0, 0, 255))
    api_case(pipe, face_sketch(200).resize(sketch_size), hints)


def test_very_thin_sketch_with_a_big_hint_layer(pipe):
    """Crash found: a 8192x1 sketch padded a 4096x4096 hint layer into 512 GiB."""
    sketch = Image.new("L", (4096, 2), 255)
    sketch.paste(0, (0, 0, 2048, 2))
    api_case(pipe, sketch, Image.new("RGBA", (4096, 4096), (255, 0, 0, 255)))
    api_case(pipe, sketch.transpose(Image.TRANSPOSE), Image.new("RGBA", (4096, 4096)))


@pytest.mark.parametrize("size, ok", [((4096, 4096), True), ((1, 4096), None),
                                      ((4097, 4096), False), ((4096, 1), True),
                                      ((8192, 1), False), ((4096 * 4096, 1), False)])
def test_api_big_fixed_sizes(pipe, size, ok):
    sketch = Image.new("L", size, 255)
    sketch.paste(0, (0, 0, max(1, size[0] // 2), max(1, size[1] // 2)))
    if ok is False:
        with pytest.raises(ValueError, match="too large"):
            pipe(sketch)
    else:
        api_case(pipe, sketch, Image.new("RGBA", (4096, 4096), (0, 0, 255, 255)))


# ---------------------------------------------------------------- the app's handlers


@FUZZ
@given(sketch=PAYLOADS, hints=PAYLOADS, refine=REFINE, k=K, seed=SEED)
def test_handlers_generate(handlers, sketch, hints, refine, k, seed):
    handler_case(handlers.generate, sketch, hints, refine, k, seed)
    handler_case(handlers.generate_api, sketch, hints, refine, k, seed)
    # Live mode never raises at all: bad input keeps the last face.
    handlers.generate_live(True, sketch, hints, refine, k, seed)


@FUZZ
@given(sketch=PAYLOADS, hints=PAYLOADS)
def test_handlers_hint_pad(handlers, sketch, hints):
    handlers.show_sketch_under_hints(sketch, hints)


@FUZZ
@given(data=file_bytes(), hints=st.one_of(st.none(), editor_payloads(pil_images())))
def test_handlers_uploads(handlers, upload_dir, data, hints):
    with tempfile.NamedTemporaryFile(dir=upload_dir, suffix=".png", delete=False) as file:
        file.write(data)
    path = file.name
    handler_case(handlers.upload_sketch, path, hints)
    handler_case(handlers.picture_to_sketch, path, hints)
    handler_case(handlers.generate_api, path, None, 1.0, 10, 0)
    Path(path).unlink()


@pytest.mark.parametrize("path", ["/nonexistent/sketch.png", "/", "/dev/null"])
def test_handlers_unreadable_paths(handlers, path):
    handler_case(handlers.upload_sketch, path, None)
    handler_case(handlers.generate_api, path, None, 1.0, 10, 0)


def test_decompression_bomb_is_a_clear_error(handlers, upload_dir):
    path = upload_dir / "bomb.png"
    path.write_bytes(huge_png_header(100000, 100000))
    with pytest.raises(gr.Error, match="(too large|could not be read)"):
        handlers.upload_sketch(str(path), None)


def test_oversized_upload_file_is_refused(handlers, upload_dir):
    path = upload_dir / "big.png"
    path.write_bytes(png_bytes(face_sketch(64)) + bytes(editor.MAX_UPLOAD_BYTES))
    with pytest.raises(gr.Error, match="MB"):
        handlers.upload_sketch(str(path), None)
