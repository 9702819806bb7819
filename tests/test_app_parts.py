"""The app with the per-part model: the "Per part" sliders, their wiring, the history and
the part windows over the projected sketch; and the same app on weights without parts."""

from __future__ import annotations

import gradio as gr
import numpy as np
import pytest

import app
from s2a import Sketch2Anime
from s2a.parts import PART_NAMES
from tests.helpers import face_sketch
from tests.test_app import hint_payload, sketch_payload


class Spy:
    """A pipeline that records the `refine` of every call and otherwise is `pipe`."""

    def __init__(self, pipe: Sketch2Anime):
        self.pipe = pipe
        self.refines = []

    def __getattr__(self, name):
        return getattr(self.pipe, name)

    def __call__(self, *args, **kwargs):
        self.refines.append(kwargs["refine"])
        return self.pipe(*args, **kwargs)


def spy_handlers(pipe: Sketch2Anime, tmp_path) -> app.Handlers:
    return app.Handlers(Spy(pipe), downloads=tmp_path)


def select(index: int) -> gr.SelectData:
    return gr.SelectData(None, {"index": index, "value": None})


ONES = (1.0,) * len(PART_NAMES)


# ---------------------------------------------------------------- the call's refine


def test_one_part_slider_changes_only_that_part(part_pipe, tmp_path):
    handlers = spy_handlers(part_pipe, tmp_path)
    plain = handlers.generate(sketch_payload(), None, 1.0, 5, 0, None, (), *ONES)
    no_nose = handlers.generate(sketch_payload(), None, 1.0, 5, 0, None, (),
                                1.0, 1.0, 0.0, 1.0, 1.0)
    # All five equal to the master: the whole-face model; one apart: the per-part model.
    assert handlers.pipe.refines == [1.0, {**dict.fromkeys(PART_NAMES, 1.0), "nose": 0.0}]
    # The nose kept the user's own latent: the projected sketch changed.
    assert not np.array_equal(np.asarray(plain[1]), np.asarray(no_nose[1]))
    # Live previews pass the same mapping.
    handlers.generate_live(True, sketch_payload(), None, 1.0, 5, 0, None,
                           0.0, 1.0, 1.0, 1.0, 0.5)
    assert handlers.pipe.refines[-1] == {"left_eye": 0.0, "right_eye": 1.0, "nose": 1.0,
                                         "mouth": 1.0, "rest": 0.5}


def test_without_part_sliders_the_master_covers_every_part(part_pipe, tmp_path):
    handlers = spy_handlers(part_pipe, tmp_path)
    face, *_ = handlers.generate(sketch_payload(), hint_payload(), 0.4, 5, 0)  # old callers
    handlers.generate_api(face_sketch(200), None, 0.4, 5, 0)
    assert handlers.pipe.refines == [0.4, 0.4]
    assert face.mode == "RGB"


def test_master_release_sets_all_parts():
    assert app.Handlers.spread_refine(0.35) == (0.35,) * len(PART_NAMES)


def test_bad_part_values_are_gradio_errors_and_the_app_goes_on(part_pipe, tmp_path):
    handlers = app.Handlers(part_pipe, downloads=tmp_path)
    for parts, words in (((1.0, 1.0, 1.5, 1.0, 1.0), "refine for nose"),
                         ((1.0, 1.0, 1.0, None, 1.0), "refine for mouth"),
                         ((1.0, 1.0), "each of the 5 face parts")):
        with pytest.raises(gr.Error) as excinfo:
            handlers.generate(sketch_payload(), None, 1.0, 5, 0, None, (), *parts)
        assert words in excinfo.value.message
        assert handlers.generate_live(True, sketch_payload(), None, 1.0, 5, 0, None,
                                      *parts) == (gr.skip(),) * 6
    with pytest.raises(gr.Error, match="refine must be a number between 0 and 1"):
        handlers.generate(sketch_payload(), None, "high", 5, 0, None, (), *ONES)
    face, *_ = handlers.generate(sketch_payload(), None, 1.0, 5, 0, None, (), *ONES)
    assert face.mode == "RGB"


# ---------------------------------------------------------------- the part windows


def test_projected_sketch_shows_the_part_windows(part_pipe, whole_pipe, tmp_path):
    (_, panel, *_), _ = app.Handlers(part_pipe, downloads=tmp_path).run(
        face_sketch(256), None, {"mouth": 0.5}, 5, 0, upscale=False)
    side, resolution = app.SKETCH_DISPLAY, part_pipe.resolution
    assert panel.mode == "RGB" and panel.size == (2 * side, side)
    pixels = np.asarray(panel)
    for name, window in part_pipe.parts.windows.items():
        # The box's top edge, in the middle of the window, on the projected (right) half.
        row = round(window.top * side / resolution)
        column = side + round((window.left + window.size / 2) * side / resolution)
        if name != "nose":  # the nose's top edge lies inside the eyes' boxes
            assert tuple(pixels[row, column]) == app.PART_SLIDERS[name][2], name
    # The model input (left half) stays grey: no boxes there.
    left = pixels[:, :side]
    assert (left[..., 0] == left[..., 1]).all() and (left[..., 1] == left[..., 2]).all()
    for pipe in (whole_pipe, part_pipe):  # the whole-face model draws no boxes
        (_, panel, *_), _ = app.Handlers(pipe, downloads=tmp_path).run(
            face_sketch(256), None, 1.0, 5, 0, upscale=False)
        assert panel.mode == "L"


def test_part_boxes_scale_to_the_displayed_size():
    from PIL import Image

    from s2a.parts import PartWindow

    image = app.draw_part_windows(Image.new("L", (64, 64), 255),
                                  {"mouth": PartWindow(8, 4, 8)}, resolution=16)
    pixels = np.asarray(image)
    red = np.all(pixels == app.PART_SLIDERS["mouth"][2], axis=-1)
    rows, columns = np.nonzero(red)
    assert (rows.min(), rows.max(), columns.min(), columns.max()) == (32, 63, 16, 47)
    assert not red[40:56, 24:40].any()  # a box, not a filled square


# ---------------------------------------------------------------- weights without parts


def test_without_parts_the_group_says_so_and_calls_work(whole_pipe, tmp_path):
    assert app.part_note(whole_pipe) == app.NO_PARTS_NOTE
    assert "no per-part model" in app.NO_PARTS_NOTE
    handlers = spy_handlers(whole_pipe, tmp_path)
    # The hidden part sliders still arrive; the master value is what the pipeline gets.
    outputs = handlers.generate(sketch_payload(), None, 0.5, 5, 0, None, (),
                                0.0, 0.0, 0.0, 0.0, 0.0)
    live = handlers.generate_live(True, sketch_payload(), None, 0.5, 5, 0, None, *ONES)
    assert handlers.pipe.refines == [0.5, 0.5]
    assert outputs[0].mode == "RGB" and live[0].mode == "RGB"
    assert handlers.restore_parts(outputs[6], select(0)) == (0.5,) * len(PART_NAMES)


# ---------------------------------------------------------------- the history


def test_history_round_trip_restores_the_part_sliders(part_pipe, tmp_path):
    handlers = app.Handlers(part_pipe, downloads=tmp_path)
    parts = (0.2, 0.4, 0.6, 0.8, 1.0)
    first = handlers.generate(sketch_payload(), None, 0.5, 5, 0, None, (), *parts)
    later = handlers.generate(sketch_payload(), None, 0.9, 5, 0, None, first[6],
                              *(0.9,) * len(PART_NAMES))
    history, strip = later[6], later[7]
    assert "refine 0.2/0.4/0.6/0.8/1 per part" in strip[1][1]
    assert strip[0][1].startswith("refine 0.9 ·")  # all parts at the master: one number
    restored = handlers.restore(history, select(1))
    assert len(restored) == 13 and restored[2] == 0.5  # the master slider
    assert np.array_equal(np.asarray(restored[8]), np.asarray(first[1]))
    assert handlers.restore_parts(history, select(1)) == parts
    assert handlers.restore_parts(history, select(0)) == (0.9,) * len(PART_NAMES)
    with pytest.raises(gr.Error, match="no longer in the history"):
        handlers.restore_parts(history, select(5))


# ---------------------------------------------------------------- the wiring


def dependencies(demo: gr.Blocks) -> dict[str, object]:
    return {fn.api_name: fn for fn in demo.fns.values() if fn.api_name}


def component(demo: gr.Blocks, elem_id: str):
    (found,) = [block for block in demo.blocks.values()
                if getattr(block, "elem_id", None) == elem_id]
    return found


@pytest.mark.parametrize("weights", ["parts", "whole"])
def test_the_demo_wires_the_part_sliders(part_pipe, whole_pipe, weights):
    pipe = part_pipe if weights == "parts" else whole_pipe
    demo = app.build_demo(pipe)
    sliders = [component(demo, f"refine-{name.replace('_', '-')}") for name in PART_NAMES]
    refine = component(demo, "refine")
    note = component(demo, "part-note")
    assert all(slider.visible == (weights == "parts") for slider in sliders)
    assert ("no per-part model" in note.value) == (weights == "whole")
    # The app opens with every part at the master's value: the whole-face path runs.
    assert refine.value == app.DEFAULT_REFINE
    assert all(slider.value == app.DEFAULT_REFINE for slider in sliders)
    ids = [slider._id for slider in sliders]
    fns = dependencies(demo)
    spread = fns["ui_spread_refine"]
    assert [block._id for block in spread.outputs] == ids
    assert (refine._id, "release") in spread.targets
    after_spread = [fn for fn in demo.fns.values() if fn.trigger_after == spread._id]
    assert [fn.api_name for fn in after_spread] == ["ui_refine_live_gate"]  # as ui_live_gate
    assert after_spread[0].inputs == [] and after_spread[0].js == fns["ui_live_gate"].js
    live = fns["ui_live_gate"]  # Live previews go through the page's gate (test_app)
    assert all((i, "release") in live.targets for i in ids)
    assert (refine._id, "release") not in live.targets  # only after the spread
    # The gate reads no pad (an input pad makes the editor export its layers) and runs
    # nothing on the server; the preview itself is the hidden button's, which the gate
    # clicks when Live is on.
    sketch, hints = component(demo, "sketch-pad"), component(demo, "hint-pad")
    assert {(sketch._id, "change"), (hints._id, "change")} <= set(live.targets)
    assert live.inputs == [] and live.fn is None and "#live input" in live.js
    tick = component(demo, "live-tick")
    assert fns["ui_live"].targets == [(tick._id, "click")] and "live-tick" in live.js
    assert sketch in fns["ui_live"].inputs and hints in fns["ui_live"].inputs
    for name in ("ui_generate", "ui_live", "ui_pick_generate",
                 "ui_clear_generate", "ui_example_generate"):
        assert [block._id for block in fns[name].inputs][-len(ids):] == ids, name
    assert [block._id for block in fns["ui_restore_parts"].outputs] == ids
    # The public endpoint keeps its five inputs.
    assert len(fns["generate"].inputs) == 5
