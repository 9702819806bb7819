"""Help while drawing: the shadow, pinned and dropped neighbours, the history (handlers)."""

from __future__ import annotations

import base64
import io

import cv2
import gradio as gr
import numpy as np
import pytest
from PIL import Image

import app
from s2a import Sketch2Anime, editor, history, shadow
from s2a.examples import example_sketches
from s2a.selection import DROP, PIN, Selection, clicked_neighbor
from tests.helpers import cartoon_face, face_sketch, small_face
from tests.test_app import blank_payload, hint_payload, sketch_payload
from tools import bench


@pytest.fixture(scope="module")
def handlers(tiny_weights, tmp_path_factory) -> app.Handlers:
    pipe = Sketch2Anime.from_pretrained(tiny_weights)
    return app.Handlers(pipe, downloads=tmp_path_factory.mktemp("downloads"))


def picture(url: str) -> np.ndarray:
    assert url.startswith("data:image/png;base64,")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))))


def select(index: int) -> gr.SelectData:
    return gr.SelectData(None, {"index": index, "value": None})


# ---------------------------------------------------------------- the shadow


def test_the_plain_endpoint_keeps_its_name(handlers):
    demo = app.build_demo(handlers.pipe)
    public = [fn.api_name for fn in demo.fns.values() if fn.api_visibility == "public"]
    assert public == ["generate"]


def test_shadow_is_the_decoded_projection(handlers):
    pipe = handlers.pipe
    sketch = editor.sketch_from_payload(sketch_payload())
    projected = shadow.projection_shadow(pipe, sketch, 5)
    expected = pipe(sketch, k=5, refine=1.0, upscale=False).projected_sketch
    assert projected.size == (pipe.resolution,) * 2
    assert np.abs(np.asarray(projected, int) - np.asarray(expected, int)).max() <= 1


def test_shadow_layer_is_light_lines_on_white():
    ink = np.full((8, 8), 255, np.uint8)
    ink[2:4] = 0  # two rows of full ink
    layer = np.asarray(shadow.shadow_layer(Image.fromarray(ink, "L"), 0.5))
    assert (layer[4:] == 255).all()  # paper stays white: the multiply leaves it as it is
    line = layer[2, 0].astype(int)
    expected = 255 - 0.5 * (255 - np.asarray(shadow.SHADOW_COLOUR))
    assert np.abs(line - expected).max() <= 1  # half way to the shadow colour
    assert line[2] > line[0]  # blue, not grey
    assert (np.asarray(shadow.shadow_layer(Image.fromarray(ink, "L"), 0.0)) == 255).all()
    for bad in (1.5, -0.1, float("nan"), "0.5", None, True):
        with pytest.raises(ValueError, match="opacity"):
            shadow.shadow_layer(Image.fromarray(ink, "L"), bad)


def test_guides_after_a_stroke(handlers):
    shadow_url, faint_url = handlers.guides(True, 0.6, sketch_payload(), 10)
    lines = picture(shadow_url)
    assert lines.shape == (handlers.pipe.resolution, handlers.pipe.resolution, 3)
    assert lines.min() < 250  # some shadow (the tiny untrained decoder draws a grey haze)
    faint = picture(faint_url)
    assert faint.shape == (editor.CANVAS, editor.CANVAS)
    assert faint.min() >= round(255 * (1 - editor.FAINT)) - 1 and faint.min() < 240
    # Switched off: no shadow, the faint sketch over the hint pad stays.
    assert handlers.guides(False, 0.6, sketch_payload(), 10) == ("", faint_url)
    # A stronger shadow is darker.
    assert picture(handlers.guides(True, 1.0, sketch_payload(), 10)[0]).mean() < lines.mean()


@pytest.mark.parametrize("payload", [None, blank_payload(),
                                     {"background": None, "layers": [], "composite": None}])
def test_no_shadow_on_an_empty_pad(handlers, payload):
    assert handlers.guides(True, 0.6, payload, 10) == ("", "")


def test_shadow_follows_pins_and_drops(handlers):
    pipe = handlers.pipe
    plain = handlers.guides(True, 0.6, sketch_payload(), 3)[0]
    sketch = editor.sketch_from_payload(sketch_payload())
    nearest = [i for i, _ in pipe(sketch, k=3, upscale=False).neighbors]
    dropped = handlers.guides(True, 0.6, sketch_payload(), 3, Selection(exclude=tuple(nearest)))[0]
    assert dropped != plain


@pytest.mark.parametrize("args, words", [
    ((True, 2.0, None, 10), "opacity"),
    ((True, 0.5, None, 10.5), "k (neighbours)"),
    ((True, 0.5, None, 0), "k (neighbours)"),
    ((True, 0.5, None, 3, Selection(include=(1, 2, 3, 4))), "raise k"),
    ((True, 0.5, None, 10, Selection(exclude=(10_000,))), "no neighbour #10000"),
])
def test_bad_guide_inputs_are_gradio_errors(handlers, args, words):
    show, opacity, _, k, *rest = args
    with pytest.raises(gr.Error) as excinfo:
        handlers.guides(show, opacity, sketch_payload(), k, *rest)
    assert words in excinfo.value.message


def test_brush_matches_the_training_lines():
    assert editor.brush_size(96) == 5  # 1 px lines at 96 px, on the 512 px pad
    assert editor.brush_size(128) == 4
    assert editor.brush_size(32) == 12 and editor.brush_size(1024) == 2  # kept usable


# ---------------------------------------------------------------- pins and drops


def test_selection_clicks():
    chosen = Selection().click(5, PIN).click(7, DROP)
    assert chosen == Selection((5,), (7,))
    assert chosen.click(5, DROP) == Selection((), (7, 5))  # a pinned one dropped
    assert chosen.click(5, PIN) == Selection((), (7,))  # pin again: unpinned
    assert "#5" in chosen.describe() and "#7" in chosen.describe()
    assert "click one" in Selection().describe()
    with pytest.raises(ValueError, match="Drop it or Pin it"):
        Selection().click(1, "explode")
    assert clicked_neighbor([4, 9], 1) == 9
    for bad in (2, -1, None, True):
        with pytest.raises(ValueError, match="no longer shown"):
            clicked_neighbor([4, 9], bad)


def test_drop_a_neighbour_then_it_is_not_used(handlers):
    _, _, _, _, _, shown, *_ = handlers.generate(sketch_payload(), None, 1.0, 5, 0)
    selection, note = handlers.pick_neighbor(DROP, shown, Selection(), 5, select(0))
    assert selection.exclude == (shown[0],) and f"#{shown[0]}" in note
    again = handlers.generate(sketch_payload(), None, 1.0, 5, 0, selection)
    assert shown[0] not in again[5] and len(again[5]) == 5
    assert all(not caption.startswith(f"#{shown[0]}:") for _, caption in again[2])
    # Pinning a far sketch puts it in; clearing forgets both.
    far = next(i for i in range(len(handlers.pipe.bank)) if i not in shown + again[5])
    pinned = handlers.generate(sketch_payload(), None, 1.0, 5, 0, Selection((far,), ()))
    assert far in pinned[5]
    assert handlers.clear_selection() == (Selection(), Selection().describe())


def test_bad_neighbour_clicks_are_gradio_errors(handlers):
    with pytest.raises(gr.Error, match="no longer shown"):
        handlers.pick_neighbor(DROP, [1, 2], Selection(), 5, select(7))
    with pytest.raises(gr.Error, match="raise k"):  # a third pin with k = 2
        handlers.pick_neighbor(PIN, [1, 2, 3], Selection((1, 2), ()), 2, select(2))
    with pytest.raises(gr.Error, match="Drop it or Pin it"):
        handlers.pick_neighbor("zap", [1, 2], Selection(), 5, select(0))
    with pytest.raises(gr.Error, match="both pinned and dropped"):
        handlers.generate(sketch_payload(), None, 1.0, 5, 0, Selection((1,), (1,)))


# ---------------------------------------------------------------- history


def test_restore_gives_back_settings_and_the_same_face(handlers):
    hints = hint_payload()
    first = handlers.generate(sketch_payload(), hints, 0.5, 4, 3, Selection((), (2,)))
    later = handlers.generate(blank_sketch_with_a_line(), None, 1.0, 6, 0, None, first[6])
    strip = later[7]
    assert len(later[6]) == 2 and "seed 3" in strip[1][1] and "1 dropped" in strip[1][1]
    (sketch_value, hint_value, refine, k, seed, selection, note, face, projected, gallery,
     report, path, shown) = handlers.restore(later[6], select(1))
    assert (refine, k, seed, selection) == (0.5, 4, 3, Selection((), (2,)))
    assert np.array_equal(np.asarray(face), np.asarray(first[0]))
    assert np.array_equal(np.asarray(projected), np.asarray(first[1]))
    assert shown == first[5] and report == first[3] and "#2" in note
    assert [c for _, c in gallery] == [c for _, c in first[2]]
    with Image.open(path) as saved:
        assert np.array_equal(np.asarray(saved.convert("RGB")), np.asarray(first[0]))
    # The restored pads generate the same face again.
    layer = np.asarray(hint_value["layers"][0])
    assert (layer[..., 3] > 0).sum() == (np.asarray(hints["layers"][0])[..., 3] > 0).sum()
    pads = ({"background": np.asarray(sketch_value["background"].convert("RGBA")),
             "layers": [np.asarray(sketch_value["layers"][0])], "composite": None},
            {"background": None, "layers": [layer], "composite": None})
    regenerated = handlers.generate(*pads, refine, k, seed, selection)
    assert regenerated[5] == first[5]
    difference = np.abs(np.asarray(regenerated[0], int) - np.asarray(first[0], int))
    assert difference.mean() < 2.0  # the sketch went through the pad at another size


def blank_sketch_with_a_line() -> dict:
    paper = np.full((editor.CANVAS, editor.CANVAS, 4), 255, np.uint8)
    paper[100:110, 50:450, :3] = 0
    paper[300:310, 50:450, :3] = 0
    return {"background": paper, "layers": [], "composite": None}


def test_history_keeps_the_last_twelve():
    face = Image.new("RGB", (40, 40), "red")
    sketch = Image.new("L", (40, 40), 255)
    entries = ()
    for seed in range(15):
        entry = history.Entry.make(sketch, None, 1.0, 10, seed, Selection(), face,
                                   sketch, [(1, 1.0)], "report")
        entries = history.remember(entries, entry)
    assert len(entries) == history.HISTORY_LENGTH
    assert [e.seed for e in entries] == list(range(14, 2, -1))  # newest first
    thumbs = history.thumbnails(entries)
    assert thumbs[0][0].size == (history.THUMBNAIL,) * 2 and "seed 14" in thumbs[0][1]
    assert history.from_png(entries[0].face).getpixel((0, 0)) == (255, 0, 0)


@pytest.mark.parametrize("position", [5, -1, None, "0"])
def test_restoring_what_is_not_there_is_a_gradio_error(handlers, position):
    with pytest.raises(gr.Error, match="no longer in the history"):
        handlers.restore((), gr.SelectData(None, {"index": position, "value": None}))


# ---------------------------------------------------------------- pictures


def coloured_disc(size: int = 512) -> Image.Image:
    """A colour picture: a red disc of radius 170 px on a pale lilac ground."""
    canvas = np.full((size, size, 3), (240, 230, 250), np.uint8)
    cv2.circle(canvas, (size // 2, size // 2), size * 170 // 512, (200, 60, 60), -1,
               lineType=cv2.LINE_AA)
    return Image.fromarray(canvas)


def test_a_colour_picture_uploaded_as_a_sketch_is_offered_as_a_picture(handlers, tmp_path):
    path = tmp_path / "picture.png"
    Image.fromarray(cartoon_face(np.random.default_rng(5), 256)).save(path)
    sketch_value, hint_value, kept, offer = handlers.upload_sketch(str(path), hint_payload())
    assert sketch_value == hint_value == gr.skip()  # the pads are left alone
    assert kept == str(path) and offer.visible is True
    # "Start from this picture": its lines in the pad, the painted hints kept.
    sketch_value, hint_value, kept, offer = handlers.use_upload(kept, hint_payload(), True)
    ink = np.asarray(sketch_value["layers"][0])[..., 3]
    assert 0.005 < (ink > 127).mean() < 0.3 and kept is None and offer.visible is False
    assert np.asarray(hint_value["layers"][0])[..., 3].any()
    # "Use it as a sketch anyway" loads it as it is: grey and filled.
    sketch_value, *_ = handlers.use_upload(str(path), None, False)
    assert (np.asarray(sketch_value["layers"][0])[..., 3] > 0).mean() > 0.5
    with pytest.raises(gr.Error, match="Upload the picture again"):
        handlers.use_upload(None, None, True)


def test_what_counts_as_a_picture():
    rng = np.random.default_rng(0)
    assert all(editor.looks_like_picture(Image.fromarray(cartoon_face(rng, 128)))
               for _ in range(10))
    assert editor.looks_like_picture(coloured_disc())
    assert editor.looks_like_picture(Image.fromarray(cartoon_face(rng, 128)).convert("L"))
    sketches = [*example_sketches().values(), face_sketch(256, 1), face_sketch(256, 8),
                Image.fromarray(255 - np.asarray(face_sketch(256))),  # light on dark
                editor.picture_sketch(coloured_disc(), 96)]
    blue_pen = np.full((256, 256, 3), 255, np.uint8)
    blue_pen[np.asarray(face_sketch(256)) < 128] = (40, 80, 220)
    sketches.append(Image.fromarray(blue_pen))
    transparent = np.zeros((256, 256, 4), np.uint8)
    transparent[np.asarray(face_sketch(256)) < 128] = (0, 0, 0, 255)
    sketches.append(Image.fromarray(transparent, "RGBA"))
    assert not any(editor.looks_like_picture(s) for s in sketches)


def test_picture_lines_are_smooth_at_the_pads_scale():
    """A circle's line, found at the pad's scale: its radius varies by well under a pixel
    around it (the 96 px extraction blown up varied by 1.1 px: staircases)."""
    lines = np.asarray(editor.picture_sketch(coloured_disc(), 96))
    assert lines.shape == (editor.CANVAS, editor.CANVAS)
    ys, xs = np.nonzero(lines < 128)
    angle = np.arctan2(ys - 256, xs - 256)
    radius = np.hypot(ys - 256, xs - 256)
    bins = np.digitize(angle, np.linspace(-np.pi, np.pi, 181))
    means = np.array([radius[bins == b].mean() for b in np.unique(bins)])
    assert len(means) >= 180  # the whole circle
    assert abs(means.mean() - 170) < 2 and means.std() < 0.5
    width = (np.abs(radius - 170) < 6).sum() / (2 * np.pi * 170)
    assert editor.brush_size(96) - 2 <= width <= editor.brush_size(96) + 2  # pen wide
    # A small picture is enlarged to the pad first: the same smooth circle.
    small = np.asarray(editor.picture_sketch(coloured_disc(128), 96))
    assert small.shape == (editor.CANVAS, editor.CANVAS) and (small < 128).mean() > 0.005


def test_shadow_bench_report(tiny_weights, capsys):
    report = bench.shadow_bench(tiny_weights, calls=3, warmup=1)
    assert 0 < report["guides"]["p50_ms"] <= report["guides"]["p95_ms"]
    assert 0 < report["route"]["p50_ms"] <= report["route"]["p95_ms"]
    assert report["route_png_bytes"] > 0
    assert report["shadow_png_bytes"] > 0 and report["faint_png_bytes"] > 0
    assert bench.main(["--weights", tiny_weights, "--shadow", "--calls", "2", "--warmup",
                       "0"]) == 0
    assert "guides" in capsys.readouterr().out


def test_shadow_of_a_framed_drawing_lies_where_the_frame_sits(whole_pipe):
    """A small face in the middle of the pad is framed (zoomed) before it is projected,
    as a call frames it; the shadow is that projection laid back over the frame's place."""
    drawing = Image.fromarray(small_face(512, radius=60))
    framed, frame = whole_pipe.framed_sketch_tensor(drawing)
    assert frame is not None
    layer = np.asarray(shadow.projection_shadow(whole_pipe, drawing, 5), int)
    r = whole_pipe.resolution
    top, left, side = (round(v * r) for v in frame)
    outside = np.ones((r, r), bool)
    outside[max(top, 0):top + side, max(left, 0):left + side] = False
    assert (layer[outside] == 255).all()  # paper around the frame
    expected = whole_pipe(drawing, k=5, refine=1.0, upscale=False).projected_sketch
    inside = np.asarray(expected.resize((side, side), Image.BILINEAR), int)
    np.testing.assert_allclose(layer[top:top + side, left:left + side], inside, atol=2)
