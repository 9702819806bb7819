"""The Gradio app: handlers with the payloads Gradio really sends, and a real server.

Editor payloads are what `gr.ImageEditor(type="numpy", image_mode="RGBA")` hands a
handler: {"background": (H, W, 4) uint8, "layers": [(H, W, 4) uint8, ...],
"composite": (H, W, 4) uint8}, any of them None.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
from PIL import Image

import app
from s2a import Sketch2Anime, editor, hint_report, history
from s2a.examples import example_hints, example_sketches
from s2a.sketch import EMPTY_SKETCH_MESSAGE
from tests.helpers import TINY_RESOLUTION, cartoon_face, face_sketch
from tools.server import Server

ROOT = Path(__file__).resolve().parent.parent
SIZE = editor.CANVAS
# The upscaled face: the smallest whole multiple of the tiny model's side >= 384 px.
FACE_SIDE = -(-384 // TINY_RESOLUTION) * TINY_RESOLUTION


@pytest.fixture(scope="module")
def handlers(tiny_weights, tmp_path_factory) -> app.Handlers:
    pipe = Sketch2Anime.from_pretrained(tiny_weights)
    return app.Handlers(pipe, downloads=tmp_path_factory.mktemp("downloads"))


def rgba(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGBA")).copy()


def sketch_payload(with_composite: bool = True) -> dict:
    """A sketch pad payload: white paper, the drawing on a transparent layer."""
    paper = np.full((SIZE, SIZE, 4), 255, np.uint8)  # (H, W, 4)
    drawing = face_sketch(SIZE, brush=3)
    layer = np.zeros((SIZE, SIZE, 4), np.uint8)
    layer[..., 3] = 255 - np.asarray(drawing)  # black ink where drawn
    composite = rgba(Image.alpha_composite(Image.fromarray(paper), Image.fromarray(layer)))
    return {"background": paper, "layers": [layer],
            "composite": composite if with_composite else None}


def blank_payload() -> dict:
    paper = np.full((SIZE, SIZE, 4), 255, np.uint8)
    return {"background": paper, "layers": [np.zeros((SIZE, SIZE, 4), np.uint8)],
            "composite": paper.copy()}


def hint_payload(size: tuple[int, int] = (SIZE, SIZE), colour=(242, 211, 107)) -> dict:
    """A hint pad payload: the faint sketch as background, one painted stroke on the layer."""
    width, height = size
    background = rgba(editor.faint_sketch(face_sketch(SIZE)).resize(size))
    layer = np.zeros((height, width, 4), np.uint8)
    layer[height // 8 : height // 4, width // 4 : 3 * width // 4] = (*colour, 255)
    composite = rgba(Image.alpha_composite(Image.fromarray(background), Image.fromarray(layer)))
    return {"background": background, "layers": [layer], "composite": composite}


def error_message(excinfo) -> str:
    return excinfo.value.message


# ---------------------------------------------------------------------------
# Payload readers
# ---------------------------------------------------------------------------


def test_hints_are_only_the_painted_layer():
    hints = editor.hints_from_payload(hint_payload())
    alpha = np.asarray(hints)[..., 3]
    assert hints.mode == "RGBA" and hints.size == (SIZE, SIZE)
    # Only the stroke is hinted: the faint sketch underneath is not part of the hints.
    assert (alpha > 0).sum() == (SIZE // 8) * (SIZE // 2)
    assert set(map(tuple, np.asarray(hints)[alpha > 0][:, :3])) == {(242, 211, 107)}


def test_unpainted_hint_pad_is_no_hints():
    payload = hint_payload()
    assert editor.hints_from_payload({**payload, "layers": []}) is None
    assert editor.hints_from_payload({**payload, "layers": [np.zeros((SIZE, SIZE, 4), np.uint8)]}) \
        is None
    assert editor.hints_from_payload(None) is None


def test_sketch_without_composite_is_flattened():
    with_composite = editor.sketch_from_payload(sketch_payload(True))
    without = editor.sketch_from_payload(sketch_payload(False))
    assert np.abs(np.asarray(with_composite.convert("L"), np.int16)
                  - np.asarray(without.convert("L"), np.int16)).max() <= 1


def test_plain_images_and_paths_are_accepted(tmp_path):
    path = tmp_path / "sketch.png"
    face_sketch(128).save(path)
    assert editor.sketch_from_payload(str(path)).size == (128, 128)
    assert editor.sketch_from_payload(face_sketch(64)).size == (64, 64)
    assert editor.sketch_from_payload(np.asarray(face_sketch(32))).size == (32, 32)
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="could not be read"):
        editor.load_image(str(tmp_path / "broken.png"), "sketch")


# ---------------------------------------------------------------------------
# Generate
# ---------------------------------------------------------------------------


def test_generate_from_editor_payloads(handlers):
    face, projected, gallery, report, path, shown, history, strip = handlers.generate(
        sketch_payload(), hint_payload(), 1.0, 10.0, 0.0  # sliders may send floats
    )
    assert face.mode == "RGB" and face.size == (FACE_SIDE, FACE_SIDE)
    assert projected.size == (2 * app.SKETCH_DISPLAY, app.SKETCH_DISPLAY)
    assert len(gallery) == 10
    image, caption = gallery[0]
    assert image.size == (app.NEIGHBOR_DISPLAY, app.NEIGHBOR_DISPLAY)
    assert caption.startswith("#") and ":" in caption
    weights = [float(c.split(": ")[1]) for _, c in gallery]
    assert sum(weights) == pytest.approx(1.0, abs=0.05)
    assert "blonde hair" in report
    assert "of 1 hint colours followed" in report
    with Image.open(path) as saved:
        assert saved.format == "PNG" and saved.size == face.size
    assert len(shown) == 10 and all(caption.startswith(f"#{index}:")
                                    for index, (_, caption) in zip(shown, gallery))
    assert len(history) == 1 and len(strip) == 1 and "k 10" in strip[0][1]


def test_generate_without_hints(handlers):
    report = handlers.generate(sketch_payload(False), None, 0.0, 3, 7)[3]
    assert "no colour hints" in report


def test_hint_layer_of_another_size(handlers):
    face, _, _, report, *_ = handlers.generate(sketch_payload(), hint_payload((300, 200)),
                                               0.5, 4, 1)
    assert face.size == (FACE_SIDE, FACE_SIDE)
    assert "of 1 hint colours followed" in report


@pytest.mark.parametrize("payload", [None, blank_payload(),
                                     {"background": None, "layers": [], "composite": None}])
def test_empty_canvas_is_a_gradio_error(handlers, payload):
    with pytest.raises(gr.Error) as excinfo:
        handlers.generate(payload, None, 1.0, 10, 0)
    assert error_message(excinfo) == EMPTY_SKETCH_MESSAGE


def test_hints_without_sketch_is_a_gradio_error(handlers):
    with pytest.raises(gr.Error) as excinfo:
        handlers.generate(blank_payload(), hint_payload(), 1.0, 10, 0)
    assert error_message(excinfo) == EMPTY_SKETCH_MESSAGE


@pytest.mark.parametrize("refine, k, seed, words", [
    (1.5, 10, 0, "refine"), (1.0, 0, 0, "k (neighbours)"), (1.0, 10.5, 0, "k"),
    (1.0, 10, -1, "seed"),
])
def test_bad_knobs_are_gradio_errors(handlers, refine, k, seed, words):
    with pytest.raises(gr.Error) as excinfo:
        handlers.generate(sketch_payload(), None, refine, k, seed)
    assert words in error_message(excinfo)


def test_api_handler_takes_plain_images(handlers, tmp_path):
    path = tmp_path / "sketch.png"
    face_sketch(200).save(path)
    face, *_ = handlers.generate_api(str(path), None, 1.0, 10, 0)
    assert face.size == (FACE_SIDE, FACE_SIDE)
    face, *_ = handlers.generate_api(face_sketch(100), example_hints("smiling"), 0.3, 5, 2)
    assert face.mode == "RGB"
    with pytest.raises(gr.Error) as excinfo:  # an opaque RGB "hint layer"
        handlers.generate_api(face_sketch(100), Image.new("RGB", (50, 50), "red"), 1.0, 10, 0)
    assert "RGBA" in error_message(excinfo)


def test_api_uploads_that_are_not_pictures_get_a_sentence(tmp_path):
    from gradio.data_classes import ImageData

    upload = app.uploaded_image("sketch")
    assert upload.get_block_name() == "image" and not upload.visible
    # No gr.Image subclass: Gradio would write a stub next to app.py for one.
    assert not Path(app.__file__).with_suffix(".pyi").exists()
    text = tmp_path / "notes.png"
    text.write_text("not a picture")
    with pytest.raises(gr.Error, match="The sketch could not be read as an image.*PNG"):
        upload.preprocess(ImageData(path=str(text), orig_name="notes.png"))
    picture = tmp_path / "face.png"
    face_sketch(64).save(picture)
    read = upload.preprocess(ImageData(path=str(picture), orig_name="face.png"))
    assert isinstance(read, Image.Image) and read.size == (64, 64)


def test_live_mode_skips_instead_of_failing(handlers):
    skipped = handlers.generate_live(False, sketch_payload(), None, 1.0, 10, 0)
    assert skipped == (gr.skip(),) * 6
    assert handlers.generate_live(True, blank_payload(), None, 1.0, 10, 0) == (gr.skip(),) * 6
    face, *_ = handlers.generate_live(True, sketch_payload(), hint_payload(), 1.0, 10, 0)
    assert face.size == (FACE_SIDE, FACE_SIDE)


# ---------------------------------------------------------------------------
# Filling the pads
# ---------------------------------------------------------------------------


def test_start_from_a_picture(handlers, tmp_path):
    path = tmp_path / "picture.png"
    picture = cartoon_face(np.random.default_rng(3), size=96)
    Image.fromarray(picture).resize((400, 300), Image.BICUBIC).save(path)  # not square
    sketch_value, hint_value = handlers.picture_to_sketch(str(path), hint_payload())
    background, (layer,) = sketch_value["background"], sketch_value["layers"]
    assert background.size == (SIZE, SIZE) and layer.size == (SIZE, SIZE)
    ink = np.asarray(layer)
    assert layer.mode == "RGBA" and (ink[..., :3] == 0).all()  # black ink, erasable layer
    assert 0.005 < (ink[..., 3] > 127).mean() < 0.3  # lines, not a filled picture
    assert (ink[:40, :, 3] == 0).all()  # the 4:3 picture is letterboxed on the square canvas
    # The hint pad keeps what was painted, on plain paper (the sketch is an overlay).
    assert np.asarray(hint_value["background"].convert("L")).min() == 255
    assert np.asarray(hint_value["layers"][0])[..., 3].any()
    # What the pad sends back generates a face.
    payload = {"background": rgba(background), "layers": [np.asarray(layer)], "composite": None}
    face, *_ = handlers.generate(payload, None, 1.0, 10, 0)
    assert face.size == (FACE_SIDE, FACE_SIDE)


def test_upload_a_sketch(handlers, tmp_path):
    path = tmp_path / "sketch.png"
    Image.fromarray(255 - np.asarray(face_sketch(256))).save(path)  # light lines on black
    sketch_value, hint_value, kept, offer = handlers.upload_sketch(str(path), None)
    assert kept is None and offer.visible is False  # a sketch: no offer
    alpha = np.asarray(sketch_value["layers"][0])[..., 3]
    assert alpha.shape == (SIZE, SIZE) and 0.01 < (alpha > 127).mean() < 0.3
    (empty,) = hint_value["layers"]  # a transparent layer to paint on
    assert empty.size == (SIZE, SIZE) and not np.asarray(empty)[..., 3].any()
    with pytest.raises(gr.Error):
        (tmp_path / "bad.png").write_bytes(b"\x89PNG broken")
        handlers.upload_sketch(str(tmp_path / "bad.png"), None)


def test_examples():
    sketches = example_sketches()
    assert len(sketches) >= 4
    for name, sketch in sketches.items():
        assert sketch.mode == "L" and sketch.size == (512, 512)
        ink = np.asarray(sketch) < 128
        assert 0.01 < ink.mean() < 0.15, name
        hints = example_hints(name)
        assert hints.mode == "RGBA" and hints.size == (512, 512)
        alpha = np.asarray(hints)[..., 3]
        assert set(np.unique(alpha)) == {0, 255}
    with pytest.raises(ValueError, match="No example"):
        example_hints("nope")


def test_load_example(handlers):
    names = list(handlers.examples)
    sketch_value, hint_value = handlers.load_example(gr.SelectData(None, {"index": 1,
                                                                          "value": None}))
    assert np.asarray(sketch_value["layers"][0])[..., 3].any()
    expected = np.asarray(example_hints(names[1]))[..., 3] > 0
    assert ((np.asarray(hint_value["layers"][0])[..., 3] > 0) == expected).all()


# ---------------------------------------------------------------------------
# The hint report
# ---------------------------------------------------------------------------


def test_hint_report_on_a_known_case():
    image = np.zeros((64, 64, 3), np.uint8)
    image[:, :32] = (200, 30, 30)  # left half red
    image[:, 32:] = (30, 60, 200)  # right half blue
    hints = np.zeros((128, 128, 4), np.uint8)  # another size than the image
    hints[10:40, 10:40] = (200, 30, 30, 255)  # red wanted on red: followed
    hints[60:100, 80:120] = (40, 200, 60, 255)  # green wanted on blue: not followed
    hints[120:122, 0:2] = (1, 2, 3, 255)  # 4 px of brush noise: ignored
    hints[0:5, 100:110] = (255, 255, 0, 60)  # faint brush edge: ignored
    checks = hint_report.check_hints(Image.fromarray(image), Image.fromarray(hints, "RGBA"))
    assert [c.wanted for c in checks] == [(40, 200, 60), (200, 30, 30)]  # largest first
    green, red = checks
    assert red.got == (200, 30, 30) and red.delta_e == pytest.approx(0.0, abs=1e-6)
    assert red.followed and red.pixels == 900
    assert green.got == (30, 60, 200) and green.delta_e > 30 and not green.followed
    report = hint_report.format_hint_report(checks)
    assert "1 of 2 hint colours followed" in report
    assert "`#28c83c`" in report and "not followed" in report
    assert "no colour hints" in hint_report.format_hint_report([])
    assert hint_report.check_hints(Image.fromarray(image), None) == []


def test_the_model_input_is_shown_beside_the_projected_sketch(handlers):
    # A face drawn small in the middle of a big pad is framed before the model sees it;
    # the left half of the panel shows that zoomed drawing, not the pad as drawn.
    pad = Image.new("L", (512, 512), 255)
    pad.paste(face_sketch(160), (176, 176))
    (_, panel, *_), _ = handlers.run(pad, None, 1.0, 5, 0, upscale=False)
    side = app.SKETCH_DISPLAY
    assert panel.size == (2 * side, side)
    received = np.asarray(panel)[:, :side] < 128
    columns = np.nonzero(received.any(axis=0))[0]
    drawn_width = 160 * side / 512  # the face's width on the panel without framing
    assert columns[-1] - columns[0] > 2 * drawn_width


def test_hint_report_pads_like_a_non_square_sketch():
    image = np.zeros((40, 40, 3), np.uint8)
    image[:10] = 255  # the top padding band of a wide sketch is white in this "face"
    hints = np.zeros((20, 40, 4), np.uint8)  # over a 2:1 sketch: padded to 40 x 40
    hints[:, :] = (0, 0, 0, 255)  # black wanted everywhere on the sketch
    (check,) = hint_report.check_hints(Image.fromarray(image), Image.fromarray(hints, "RGBA"),
                                       (80, 40))
    assert check.got == (0, 0, 0)  # the padding band (white) is not under the hints


# ---------------------------------------------------------------------------
# A real server
# ---------------------------------------------------------------------------


@contextlib.contextmanager
def running_app(weights: str, timeout: float = 180.0):
    """Start `python app.py` on a free port with `weights`; yield its URL; stop it."""
    env = {"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    with Server(weights, Path(weights).parent, env) as server:
        try:
            server.wait_ready(timeout)
        except (RuntimeError, TimeoutError) as error:
            pytest.fail(str(error))
        yield server.url


@pytest.mark.slow
def test_real_server_generate_endpoint(tiny_weights, tmp_path):
    from gradio_client import Client, handle_file

    sketch = tmp_path / "sketch.png"
    face_sketch(256).save(sketch)
    blank = tmp_path / "blank.png"
    Image.new("L", (64, 64), 255).save(blank)
    with running_app(tiny_weights) as url:
        client = Client(url, verbose=False)
        result = client.predict(handle_file(str(sketch)), None, 1.0, 10, 0,
                                api_name="/generate")
        with Image.open(result[0]) as face:
            assert face.size == (FACE_SIDE, FACE_SIDE) and face.mode == "RGB"
        hints = tmp_path / "hints.png"
        example_hints("round face").save(hints)
        result = client.predict(handle_file(str(sketch)), handle_file(str(hints)), 0.5, 3, 1,
                                api_name="/generate")
        assert "hint colours followed" in result[3]
        with pytest.raises(Exception, match="The sketch is empty"):
            client.predict(handle_file(str(blank)), None, 1.0, 10, 0, api_name="/generate")
        not_a_picture = tmp_path / "notes.png"
        not_a_picture.write_text("a shopping list, not a picture")
        with pytest.raises(Exception, match="The sketch could not be read as an image"):
            client.predict(handle_file(str(not_a_picture)), None, 1.0, 10, 0,
                           api_name="/generate")
        # The server survives bad input.
        result = client.predict(handle_file(str(sketch)), None, 1.0, 10, 0, api_name="/generate")
        assert Path(result[0]).is_file()


def test_without_the_upscaler_the_app_still_works_and_says_why(tiny_weights, monkeypatch,
                                                               tmp_path):
    """A machine without the anime upscaler: LANCZOS faces, a note naming what to install."""
    import sys

    from s2a import upscale

    monkeypatch.setattr(upscale, "_engine", None)
    monkeypatch.setitem(sys.modules, "sr_vulkan", None)
    monkeypatch.setitem(sys.modules, "sr_vulkan.sr_vulkan", None)
    pipe = Sketch2Anime.from_pretrained(tiny_weights)
    note = app.upscaler_note(pipe)
    assert "LANCZOS" in note and "pip install sr-vulkan" in note
    (face, *_), _ = app.Handlers(pipe, downloads=tmp_path).run(face_sketch(SIZE), None, 1.0, 5,
                                                               0)
    assert face.size == (FACE_SIDE, FACE_SIDE)


def test_history_stores_uploads_in_modes_png_cannot_hold():
    cmyk = Image.new("CMYK", (8, 8), (0, 255, 255, 0))  # red, as a CMYK JPEG decodes
    restored = history.from_png(history.png_bytes(cmyk))
    assert restored.mode == "RGB" and restored.getpixel((0, 0)) == (255, 0, 0)
