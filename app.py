"""Sketch2Anime drawing app: sketch a face, paint colour hints, get an anime face.

    python app.py            # http://127.0.0.1:7860 (GRADIO_SERVER_NAME / GRADIO_SERVER_PORT)

The model loads once in main(); `build_demo(pipe)` wires the UI around it, so tests can
build the app with tiny weights. A plain API endpoint, `/generate`, takes the sketch and
hint images directly:

    from gradio_client import Client, handle_file
    face, *_ = Client("http://127.0.0.1:7860/").predict(
        handle_file("sketch.png"), None, 1.0, 10, 0, api_name="/generate")

The shadow under the strokes has its own small route, `POST /s2a/shadow` (see
`shadow_routes`): the browser posts the pad the moment a stroke ends and the route answers
in tens of milliseconds, without waiting for Gradio's editor upload and event queue.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

import gradio as gr
from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from PIL import Image, ImageDraw

from s2a import Sketch2Anime
from s2a.editor import (
    CANVAS,
    PALETTE,
    PICTURE_MESSAGE,
    as_whole_number,
    blank_sketch_value,
    brush_size,
    hint_editor_value,
    hints_from_payload,
    load_image,
    looks_like_picture,
    picture_sketch,
    sketch_editor_value,
    sketch_from_payload,
)
from s2a.examples import example_hints, example_sketches
from s2a.hint_report import check_hints, format_hint_report
from s2a.history import Entry, from_png, pick, remember, thumbnails
from s2a.parts import PART_NAMES, PartWindow
from s2a.pipeline import MAX_K
from s2a.selection import CLICK_MODES, DROP, Selection, clicked_neighbor
from s2a.serving import (
    DownloadFolder,
    env_int,
    install_gradio_cache_fix,
    use_one_search_thread,
)
from s2a.shadow import (
    DEFAULT_OPACITY,
    MAX_BODY_BYTES,
    OVERLAY_JS,
    SELECTION_JS,
    data_url,
    faint_layer,
    projection_shadow,
    read_side,
    shadow_layer,
    shadow_png,
)
from s2a.sketch import EMPTY_SKETCH_MESSAGE

# Refine on opening: with a generator that traces the drawing, 0.5 keeps the lines and
# cleans them with the projection; on val it beats 1 on edge F1 and PSNR for clean and
# rough sketches alike (model card, "v1.2"). The Python API keeps DESIGN.md's 1.0.
DEFAULT_REFINE = 0.5
SKETCH_DISPLAY = 256  # the projected sketch
NEIGHBOR_DISPLAY = 128  # each neighbour in the gallery
SHADOW_ROUTE = "/s2a/shadow"  # POST: the pad read -> the shadow PNG (shadow_routes)
# A change that previews in Live mode: the page asks for the preview only when Live is on.
LIVE_GATE_JS = """() => {
  if (document.querySelector('#live input')?.checked) document.getElementById('live-tick')?.click();
}"""
SHADOWS_AT_ONCE = 2  # shadow requests computed at once; more wait their turn
# The guides' Shadow box as the page shows it when the request leaves, not when the event
# fired: gathering the pad takes seconds (the editor uploads its layers), so a request
# from a stroke just before the box was ticked would answer "no shadow" after the tick's
# own shadow, and the page, which cannot read an idle pad, would be left with none.
GUIDES_JS = """(show, ...rest) => {
  const box = document.querySelector('#show-shadow input');
  return [box ? box.checked : show, ...rest];
}"""
# The per-part sliders, in s2a.parts.PART_NAMES order: (label, info, box colour); the
# windowed parts are outlined in their colour over the projected sketch.
PART_SLIDERS = {
    "left_eye": ("Left eye", "blue box (the eye on the picture's left)", (40, 110, 230)),
    "right_eye": ("Right eye", "green box", (30, 160, 70)),
    "nose": ("Nose", "orange box", (240, 140, 20)),
    "mouth": ("Mouth", "red box", (220, 40, 60)),
    "rest": ("Rest", "the face outside the boxes: outline, hair", None),
}
NO_PARTS_NOTE = ("These weights have no per-part model: **Refine** applies to the whole "
                 "face.")
PARTS_NOTE = ("**Refine** sets all five when you let it go; move one here to change only "
              "that part (each is then projected on its own training sketches). While all "
              "five equal Refine, the whole-face model draws the face.")


def draw_part_windows(image: Image.Image, windows: dict[str, PartWindow],
                      resolution: int) -> Image.Image:
    """`image` (a sketch at any display size) as RGB with each part's window, given at the
    model's `resolution`, outlined by a thin box in the part's colour (PART_SLIDERS)."""
    out = image.convert("RGB")
    draw = ImageDraw.Draw(out)
    scale_x, scale_y = out.width / resolution, out.height / resolution
    width = max(1, round(out.width / 128))  # 2 px on the 256 px panel
    for name, window in windows.items():
        box = (round(window.left * scale_x), round(window.top * scale_y),
               round((window.left + window.size) * scale_x) - 1,
               round((window.top + window.size) * scale_y) - 1)
        draw.rectangle(box, outline=PART_SLIDERS[name][2], width=width)
    return out


def received_and_projected(received: Image.Image, projected: Image.Image,
                           windows: dict[str, PartWindow] | None = None) -> Image.Image:
    """What the model received (the drawing framed and resized) beside the projected
    sketch, one (2 x SKETCH_DISPLAY, SKETCH_DISPLAY) image: a zoomed or cleaned-up
    drawing is visible to the user, not hidden in preprocessing. Grey; RGB with the part
    `windows` (at the projected sketch's resolution) boxed over the projected sketch."""
    panel = Image.new("L", (2 * SKETCH_DISPLAY, SKETCH_DISPLAY), 255)
    for slot, image in enumerate((received, projected)):
        panel.paste(image.convert("L").resize((SKETCH_DISPLAY, SKETCH_DISPLAY), Image.LANCZOS),
                    (slot * SKETCH_DISPLAY, 0))
    if windows:
        panel = panel.convert("RGB")
        shown = panel.crop((SKETCH_DISPLAY, 0, 2 * SKETCH_DISPLAY, SKETCH_DISPLAY))
        panel.paste(draw_part_windows(shown, windows, projected.width), (SKETCH_DISPLAY, 0))
    return panel


def part_note(pipe: Sketch2Anime) -> str:
    """The line in the "Per part" group: how the sliders work, or that there are none."""
    return NO_PARTS_NOTE if not pipe.has_parts else PARTS_NOTE


@dataclass(frozen=True)
class PartEntry(Entry):
    """A history entry that also keeps the five part sliders (PART_NAMES order; None when
    the weights have no per-part model); `refine` is the master slider."""

    part_refine: tuple[float, ...] | None = None

    def caption(self) -> str:
        text = super().caption()
        if self.part_refine is None or set(self.part_refine) == {self.refine}:
            return text
        parts = "/".join(f"{value:g}" for value in self.part_refine)
        return text.replace(f"refine {self.refine:g}", f"refine {parts} per part", 1)


class Handlers:
    """The app's callbacks around one loaded pipeline (plain methods, easy to test)."""

    def __init__(self, pipe: Sketch2Anime, downloads: Path | None = None):
        self.pipe = pipe
        self.examples = example_sketches()  # name -> 512 px sketch, drawn once per app
        self.downloads = DownloadFolder(downloads)
        self._shadow_gate = threading.BoundedSemaphore(SHADOWS_AT_ONCE)

    def run(self, sketch: Image.Image | None, hints: Image.Image | None, refine, k, seed,
            upscale: bool = True, selection: Selection | None = None):
        """Sketch + hints -> (face, projected sketch, neighbours, hint report, PNG path,
        the neighbours' bank indices), and the (bank index, weight) pairs.

        The face comes from the anime upscaler; with `upscale=False` (live preview while
        drawing) the model's face is only stretched to the same size. `selection` pins and
        drops neighbours. `refine`: one number, or {part: number} with the per-part model
        (`refine_for_call`); the projected sketch then shows the parts' windows.
        """
        if sketch is None:
            raise ValueError(EMPTY_SKETCH_MESSAGE)
        k = as_whole_number(k, "k (neighbours)")
        seed = as_whole_number(seed, "seed")
        selection = selection or Selection()
        result = self.pipe(sketch, hints=hints, refine=refine, k=k, seed=seed, upscale=upscale,
                           include=selection.include, exclude=selection.exclude)
        side = self.pipe.output_resolution
        face = result.image if upscale else result.image.resize((side, side), Image.LANCZOS)
        windows = None if result.part_neighbors is None else self.pipe.parts.windows
        projected = received_and_projected(result.normalized_sketch, result.projected_sketch,
                                           windows)
        report = format_hint_report(check_hints(result.image, hints, sketch.size,
                                                frame=result.frame))
        return (face, projected, self.neighbor_gallery(result.neighbors), report,
                self.downloads.save_png(face), [index for index, _ in result.neighbors]
                ), result.neighbors

    def neighbor_gallery(self, neighbors) -> list[tuple[Image.Image, str]]:
        """(decoded sketch, "#index: weight") per neighbour, for the gallery."""
        indices = [index for index, _ in neighbors]
        decoded = self.pipe.decode_latents(indices) if indices else []
        return [(image.resize((NEIGHBOR_DISPLAY, NEIGHBOR_DISPLAY), Image.LANCZOS),
                 f"#{index}: {weight:.2f}")
                for image, (index, weight) in zip(decoded, neighbors)]

    def refine_for_call(self, refine, part_refine=()):
        """What the pipeline gets as `refine`: {part: value} from the five part sliders
        (PART_NAMES order) when the weights have a per-part model and a slider differs
        from the master, which runs the per-part model; else the master `refine` (the
        whole-face model). ValueError on a bad master value or slider count."""
        if not self.pipe.has_parts or not part_refine:
            return refine
        if isinstance(refine, bool) or not isinstance(refine, (int, float)) \
                or not 0.0 <= refine <= 1.0:  # the master is not checked by the pipeline
            raise ValueError(f"refine must be a number between 0 and 1, got {refine!r}.")
        if len(part_refine) != len(PART_NAMES):
            raise ValueError(f"Give a refine for each of the {len(PART_NAMES)} face parts "
                             f"({', '.join(PART_NAMES)}), got {len(part_refine)}.")
        if all(value == refine for value in part_refine):
            return refine  # all parts alike: the whole-face model (better looking)
        return dict(zip(PART_NAMES, part_refine))

    def generate(self, sketch_value, hint_value, refine, k, seed, selection=None, history=(),
                 *part_refine):
        """The Generate button: editor payloads (or plain images) in, and the five part
        sliders after the history (optional: without them `refine` covers every part);
        the outputs, the shown neighbours, and the history with this face first (state
        and strip) out."""
        try:
            sketch, hints = sketch_from_payload(sketch_value), hints_from_payload(hint_value)
            call_refine = self.refine_for_call(refine, part_refine)
            outputs, neighbors = self.run(sketch, hints, call_refine, k, seed,
                                          selection=selection)
        except ValueError as error:
            raise gr.Error(str(error)) from error
        face, projected, _, report, _, _ = outputs
        entry = PartEntry.make(sketch, hints, refine, as_whole_number(k, "k"),
                               as_whole_number(seed, "seed"), selection or Selection(), face,
                               projected, neighbors, report)
        if isinstance(call_refine, dict):
            entry = replace(entry, part_refine=tuple(float(v) for v in call_refine.values()))
        history = remember(history, entry)
        return (*outputs, history, thumbnails(history))

    def generate_live(self, live, sketch_value, hint_value, refine, k, seed, selection=None,
                      *part_refine):
        """Live mode: a fast preview while drawing (Generate gives the upscaled face, and
        only that goes into the history); half-finished input keeps the last face."""
        if not live:
            return (gr.skip(),) * 6
        try:
            return self.run(sketch_from_payload(sketch_value), hints_from_payload(hint_value),
                            self.refine_for_call(refine, part_refine), k, seed, upscale=False,
                            selection=selection)[0]
        except ValueError:
            return (gr.skip(),) * 6

    @staticmethod
    def spread_refine(refine):
        """The master Refine slider let go: its value into all five part sliders."""
        return (refine,) * len(PART_NAMES)

    def generate_api(self, sketch, hints, refine, k, seed):
        """/generate: a sketch image, an RGBA hint image or None, refine, k, seed."""
        try:
            return self.run(load_image(sketch, "sketch"), load_image(hints, "hint layer"),
                            refine, k, seed)[0][:5]
        except ValueError as error:
            raise gr.Error(str(error)) from error

    def guides(self, show_shadow, opacity, sketch_value, k, selection=None):
        """After each stroke: (the shadow under the sketch, the faint sketch over the
        hint pad), each a PNG data URL for the pads' overlays, "" for none.

        The shadow is the decoded projection with the pinned and dropped neighbours; it
        is absent on an empty pad or when switched off.
        """
        selection = selection or Selection()
        try:
            sketch = sketch_from_payload(sketch_value)
            faint = "" if sketch is None else data_url(faint_layer(sketch))
            if not show_shadow or sketch is None:
                return "", faint
            try:
                projected = projection_shadow(self.pipe, sketch,
                                              as_whole_number(k, "k (neighbours)"),
                                              selection.include, selection.exclude)
            except ValueError as error:
                if str(error) == EMPTY_SKETCH_MESSAGE:
                    return "", ""
                raise
            return data_url(shadow_layer(projected, opacity)), faint
        except ValueError as error:
            raise gr.Error(str(error)) from error

    def shadow(self, body: bytes, params) -> bytes | None:
        """The shadow route: the pad the browser shows, `params["side"]` px square grey
        bytes, with `k`, `include` and `exclude` (comma-separated bank indices) from
        `params` -> the shadow PNG at full strength, None on an empty pad. Bad input
        raises ValueError."""
        with self._shadow_gate:
            return shadow_png(self.pipe, body, params.get("side"), params.get("k", 10),
                              params.get("include", ""), params.get("exclude", ""))

    @staticmethod
    def shadow_selection(selection) -> str:
        """The pins and drops as the browser's shadow requests send them: "3,17;5"."""
        selection = selection or Selection()
        return ";".join(",".join(str(i) for i in part)
                        for part in (selection.include, selection.exclude))

    def pick_neighbor(self, mode, shown, selection, k, evt: gr.SelectData):
        """A click on a neighbour: drop or pin it -> (selection, its description)."""
        try:
            index = clicked_neighbor(shown, evt.index)
            new = (selection or Selection()).click(index, mode)
            self.pipe.bank.check_selection(new.include, new.exclude,
                                           as_whole_number(k, "k (neighbours)"))
        except ValueError as error:
            raise gr.Error(str(error)) from error
        return new, new.describe()

    def clear_selection(self):
        """Forget every pin and drop."""
        return Selection(), Selection().describe()

    def restore(self, history, evt: gr.SelectData):
        """A click on the history strip: that result's sketch, hints, settings and outputs
        back (sketch, hints, refine, k, seed, selection, its description, face, projected
        sketch, neighbours, hint report, PNG path, shown neighbours)."""
        try:
            entry = pick(history, evt.index)
        except ValueError as error:
            raise gr.Error(str(error)) from error
        face = from_png(entry.face)
        return (sketch_editor_value(from_png(entry.sketch)),
                hint_editor_value(from_png(entry.hints)), entry.refine, entry.k, entry.seed,
                entry.selection, entry.selection.describe(), face, from_png(entry.projected),
                self.neighbor_gallery(entry.neighbors), entry.report,
                self.downloads.save_png(face), [index for index, _ in entry.neighbors])

    def restore_parts(self, history, evt: gr.SelectData):
        """The same click on the history strip: that result's five part sliders (the
        master value in each when it was made without the per-part model)."""
        try:
            entry = pick(history, evt.index)
        except ValueError as error:
            raise gr.Error(str(error)) from error
        part_refine = getattr(entry, "part_refine", None)
        return tuple(part_refine) if part_refine is not None else self.spread_refine(entry.refine)

    def upload_sketch(self, path, hint_value):
        """An existing sketch file -> (sketch pad, hint pad, picture kept aside, the offer
        to start from it).

        A colour picture is not put into the pad as a "sketch" (it would become a grey,
        filled drawing): it is kept aside and the offer to start from it shown instead.
        """
        try:
            image = load_image(path, "sketch")
        except ValueError as error:
            raise gr.Error(str(error)) from error
        if image is not None and looks_like_picture(image):
            return gr.skip(), gr.skip(), path, gr.Column(visible=True)
        return (*self._pads_from_file(path, hint_value, "sketch", lambda sketch: sketch), None,
                gr.Column(visible=False))

    def use_upload(self, path, hint_value, as_picture: bool):
        """The offer's answer: the kept upload as a picture (its lines) or as a sketch;
        the offer goes away."""
        if path is None:
            raise gr.Error("Upload the picture again: it is no longer kept.")
        convert = (lambda picture: picture_sketch(picture, self.pipe.resolution)) \
            if as_picture else (lambda sketch: sketch)
        return (*self._pads_from_file(path, hint_value, "picture" if as_picture else "sketch",
                                      convert), None, gr.Column(visible=False))

    def picture_to_sketch(self, path, hint_value):
        """Start from a picture: a colour illustration -> its line sketch in the pad."""
        return self._pads_from_file(path, hint_value, "picture",
                                    lambda picture: picture_sketch(picture, self.pipe.resolution))

    def _pads_from_file(self, path, hint_value, what: str, to_sketch):
        try:
            image = load_image(path, what)
            if image is None:
                return gr.skip(), gr.skip()
            sketch = to_sketch(image)
            return sketch_editor_value(sketch), hint_editor_value(hints_from_payload(hint_value))
        except ValueError as error:
            raise gr.Error(str(error)) from error

    def load_example(self, evt: gr.SelectData):
        """An example from the gallery -> both pads."""
        names = list(self.examples)
        name = names[evt.index] if isinstance(evt.index, int) else names[0]
        sketch = self.examples[name]
        return sketch_editor_value(sketch), hint_editor_value(example_hints(name))


def upscaler_note(pipe: Sketch2Anime) -> str:
    """One line under the face: what made it crisp, or why it is only stretched."""
    upscaler = pipe.upscaler
    if upscaler.fallback_reason:
        return f"⚠️ Faces are only stretched (LANCZOS): {upscaler.fallback_reason}"
    return (f"Faces are redrawn at {pipe.output_resolution} px by the anime upscaler "
            f"({upscaler.backend}); Live shows a fast preview, Generate the crisp face.")


def drawing_pad(value: dict, label: str, elem_id: str, brush: gr.Brush,
                eraser_size: int) -> gr.ImageEditor:
    """A fixed CANVAS-px drawing pad: one layer, no uploads or transforms, PNG payloads."""
    return gr.ImageEditor(
        value=value, label=label, elem_id=elem_id, type="numpy", image_mode="RGBA",
        sources=(), transforms=(), layers=False, brush=brush,
        eraser=gr.Eraser(default_size=eraser_size), canvas_size=(CANVAS, CANVAS),
        fixed_canvas=True, format="png", height=CANVAS + 60,
    )


def uploaded_image(label: str) -> gr.Image:
    """A hidden `gr.Image` for the API's uploads whose file, when it is not a picture, gets
    a sentence that says so instead of Gradio's bare "Error" (its preprocessing opens the
    file with PIL before any handler runs). Wrapped on the instance: a `gr.Image` subclass
    would make Gradio write an app.pyi stub next to this file."""
    image = gr.Image(type="pil", image_mode=None, visible=False, label=label)
    read = image.preprocess

    def preprocess(payload):
        try:
            return read(payload)
        except gr.Error:
            raise
        except Exception as error:  # PIL fails in many ways on a non-image or damaged file
            raise gr.Error(f"The {label} could not be read as an image: upload a PNG or "
                           f"JPEG ({type(error).__name__}).") from error

    image.preprocess = preprocess
    return image


def pad_overlay(pad: str, elem_id: str, route: str = "", read_side: int = 0,
                brush: int = 0) -> gr.HTML:
    """An invisible component whose value, a PNG data URL, the browser lays over `pad`.

    With `route`, the browser fetches the image itself after each stroke (the pad,
    `read_side` px square, posted to `route`; `brush`: the pad's pen width), and the
    value is only the fallback.
    """
    return gr.HTML("", html_template="", js_on_load=OVERLAY_JS, pad=pad, side=CANVAS,
                   route=route.lstrip("/"), read_side=read_side, brush=brush,
                   elem_id=elem_id, elem_classes="s2a-overlay-source", container=False,
                   padding=False)


def shadow_routes(handlers: Handlers) -> list[APIRoute]:
    """`POST /s2a/shadow?side=S&k=K&include=3,17&exclude=5`, body: the pad as S x S grey
    bytes (255 paper) -> 200 image/png (the shadow at full strength), 204 on an empty pad,
    413 / 400 with {"error": sentence} on too large or bad input.

    Plain FastAPI routes beside Gradio's (`launch(app_kwargs={"routes": ...})`): the
    browser calls it directly, without the editor's upload and the event queue.
    """
    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)

    async def shadow(request: Request) -> Response:
        too_large = error(413, f"The pad read is larger than {MAX_BODY_BYTES} bytes.")
        declared = request.headers.get("content-length", "0")
        if not declared.isdecimal() or int(declared) > MAX_BODY_BYTES:
            return too_large
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY_BYTES:
                return too_large
        started = time.perf_counter()
        try:
            png = await run_in_threadpool(handlers.shadow, bytes(body), request.query_params)
        except ValueError as problem:
            return error(400, str(problem))
        # The route's own time, so that the browser can tell it from the network and itself.
        timing = {"Server-Timing": f"shadow;dur={(time.perf_counter() - started) * 1e3:.1f}"}
        if png is None:
            return Response(status_code=204, headers=timing)
        return Response(png, media_type="image/png",
                        headers={"Cache-Control": "no-store", **timing})

    return [APIRoute(SHADOW_ROUTE, shadow, methods=["POST"], include_in_schema=False)]


def build_demo(pipe: Sketch2Anime, handlers: Handlers | None = None) -> gr.Blocks:
    """The Gradio app around a loaded pipeline (its shadow route: `shadow_routes`)."""
    handlers = handlers or Handlers(pipe)
    with gr.Blocks(title="Sketch2Anime", delete_cache=(3600, 3600)) as demo:
        gr.Markdown(
            "## Sketch2Anime\nSketch a face (rough is fine), paint a few colour hints, "
            "get an anime face that keeps what you drew."
        )
        with gr.Row(equal_height=False):
            with gr.Column(scale=5, min_width=420):
                # The tabs only switch which pad shows: both pads stay mounted, stacked in
                # one place (s2a/overlay.js hides the other one), so opening the hint tab
                # does not start a drawing engine first.
                with gr.Tabs(elem_id="pad-tabs"):
                    with gr.Tab("1 · Sketch", id="sketch-tab") as sketch_tab:
                        gr.Markdown("Draw with the black brush (its default width is the "
                                    "model's line width); follow the blue shadow if you like.",
                                    elem_classes="pad-help")
                    with gr.Tab("2 · Colour hints", id="hint-tab") as hint_tab:
                        gr.Markdown("Paint a few colours on the parts that should have them; "
                                    "your sketch shows faintly over the paint.",
                                    elem_classes="pad-help")
                with gr.Column(elem_id="pads"):
                    with gr.Column(elem_id="sketch-column"):
                        sketch = drawing_pad(
                            blank_sketch_value(), "Sketch", "sketch-pad",
                            gr.Brush(colors=["#000000"], color_mode="fixed",
                                     default_size=brush_size(pipe.resolution)),
                            eraser_size=3 * brush_size(pipe.resolution))
                        with gr.Row(equal_height=True):
                            show_shadow = gr.Checkbox(
                                True, label="Shadow", elem_id="show-shadow", scale=1,
                                info="faint guide lines from professional sketches")
                            opacity = gr.Slider(0.1, 1.0, value=DEFAULT_OPACITY, step=0.05,
                                                label="Shadow strength", scale=2,
                                                elem_id="shadow-opacity")
                        with gr.Row():
                            upload = gr.UploadButton("Upload a sketch", file_types=["image"],
                                                     size="sm")
                            picture = gr.UploadButton("Start from a picture",
                                                      file_types=["image"], size="sm")
                        with gr.Column(visible=False, elem_id="picture-offer") as offer:
                            gr.Markdown(PICTURE_MESSAGE)
                            with gr.Row():
                                use_picture = gr.Button("Start from this picture", size="sm",
                                                        variant="primary",
                                                        elem_id="use-picture")
                                use_as_sketch = gr.Button("Use it as a sketch anyway",
                                                          size="sm", elem_id="use-as-sketch")
                    with gr.Column(elem_id="hint-column"):
                        hints = drawing_pad(
                            hint_editor_value(),
                            "Colour hints (your sketch shows faintly)", "hint-pad",
                            gr.Brush(colors=list(PALETTE.values()), color_mode="defaults",
                                     default_color=PALETTE["blonde hair"], default_size=14),
                            eraser_size=20)
                shadow = pad_overlay("sketch-pad", "sketch-shadow", SHADOW_ROUTE,
                                     read_side(pipe.resolution), brush_size(pipe.resolution))
                shadow_selection = gr.HTML(
                    Handlers.shadow_selection(None), html_template="", js_on_load=SELECTION_JS,
                    elem_id="shadow-selection", elem_classes="s2a-overlay-source",
                    container=False, padding=False)
                faint = pad_overlay("hint-pad", "hint-faint-sketch")
                with gr.Row(equal_height=True):
                    live = gr.Checkbox(False, label="Live", info="regenerate while drawing",
                                       elem_id="live", scale=1)
                    button = gr.Button("Generate", variant="primary", elem_id="generate",
                                       scale=2)
                    # Clicked by the page (LIVE_GATE_JS) when Live is on; never seen.
                    live_tick = gr.Button("Live preview", elem_id="live-tick",
                                          elem_classes="s2a-overlay-source")
                has_parts = pipe.has_parts
                with gr.Row(equal_height=True):
                    refine = gr.Slider(0.0, 1.0, value=DEFAULT_REFINE, step=0.05, label="Refine",
                                       info="0 = my lines (careful drawings), "
                                       "1 = most professional (rough ones)"
                                       + ("; sets all parts" if has_parts else ""),
                                       scale=3, elem_id="refine")
                    k = gr.Slider(1, MAX_K, value=10, step=1, precision=0,
                                  label="k neighbours", info="sketches blended", scale=2,
                                  elem_id="k")
                    seed = gr.Number(0, precision=0, minimum=0, label="Seed",
                                     info="0 = plain projection", scale=1, min_width=100,
                                     elem_id="seed")
                with gr.Accordion("Per part", open=False, elem_id="per-part"):
                    gr.Markdown(part_note(pipe), elem_id="part-note")
                    with gr.Row():
                        part_sliders = [
                            gr.Slider(0.0, 1.0, value=DEFAULT_REFINE, step=0.05, label=label,
                                      info=info,
                                      visible=has_parts, min_width=120,
                                      elem_id=f"refine-{name.replace('_', '-')}")
                            for name, (label, info, _) in PART_SLIDERS.items()]
                examples = gr.Gallery(
                    [(image, name) for name, image in handlers.examples.items()],
                    label="Examples (click one to load it)", columns=4, height=180,
                    allow_preview=False, object_fit="contain", buttons=[],
                    elem_id="examples",
                )
            with gr.Column(scale=4, min_width=360):
                face = gr.Image(label="Anime face", type="pil", format="png",
                                elem_id="face-output", height=400, interactive=False,
                                buttons=["download", "fullscreen"])
                with gr.Row(equal_height=True):
                    projected = gr.Image(label="Model input | projected sketch"
                                         + (" (per part: parts boxed)" if has_parts else ""),
                                         type="pil",
                                         format="png", height=170, interactive=False,
                                         buttons=[], scale=1, min_width=120,
                                         elem_id="projected-output")
                    neighbors = gr.Gallery(label=("Neighbours (per part: the rest's; each "
                                                  "part has its own): " if has_parts
                                                  else "Neighbours: ")
                                           + "decoded sketch, #index: weight",
                                           columns=3, height=170, allow_preview=False,
                                           object_fit="contain", buttons=[], scale=2,
                                           elem_id="neighbors-output")
                with gr.Row(equal_height=True):
                    click_mode = gr.Radio(list(CLICK_MODES), value=DROP, scale=2,
                                          label="Clicking a neighbour", elem_id="click-mode")
                    clear = gr.Button("Clear pins and drops", size="sm", scale=1,
                                      elem_id="clear-selection")
                selection_note = gr.Markdown(Selection().describe(), elem_id="selection")
                gr.Markdown(upscaler_note(pipe), elem_id="upscaler-note")
                report = gr.Markdown("**Hint report:** generate a face to see how well your "
                                     "colour hints were followed.", elem_id="hint-report")
                download = gr.DownloadButton("Download PNG", elem_id="download", size="md")
                history_strip = gr.Gallery(
                    label="History: the last 12 faces, newest first (click one to restore it)",
                    columns=6, height=150, allow_preview=False, object_fit="contain",
                    buttons=[], elem_id="history")
        # Per session, in memory: the pins and drops, the neighbours shown (gallery
        # position -> bank index), and the history entries (s2a/history.py).
        selection = gr.State(Selection())
        shown = gr.State([])
        history = gr.State(())
        pending = gr.State(None)  # an uploaded colour picture, until the offer is answered

        outputs = [face, projected, neighbors, report, download]
        generate_inputs = [sketch, hints, refine, k, seed, selection, history, *part_sliders]
        generated = [*outputs, shown, history, history_strip]
        # UI events are private and named apart, so "generate" stays the plain endpoint's.
        button.click(handlers.generate, generate_inputs, generated, api_name="ui_generate",
                     api_visibility="private", concurrency_id="model")
        live_inputs = [live, sketch, hints, refine, k, seed, selection, *part_sliders]
        live_settings = {"trigger_mode": "always_last", "show_progress": "hidden",
                         "api_visibility": "private", "concurrency_id": "model"}
        # With Live off, these changes run nothing on the server and read nothing from the
        # pads: an event with the pads as inputs makes each editor export its layers (read
        # back from WebGL, uploaded), which keeps the page busy after every stroke.
        gr.on(
            [sketch.change, hints.change, k.release, seed.submit,
             *(slider.release for slider in part_sliders)],
            None, js=LIVE_GATE_JS, api_name="ui_live_gate", api_visibility="private",
        )
        live_tick.click(handlers.generate_live, live_inputs, [*outputs, shown],
                        api_name="ui_live", **live_settings)
        # Letting the master Refine go sets the five part sliders, then (Live on) previews
        # with them.
        refine.release(handlers.spread_refine, refine, part_sliders, api_name="ui_spread_refine",
                       api_visibility="private", show_progress="hidden",
                       concurrency_limit=None).then(
            None, js=LIVE_GATE_JS, api_name="ui_refine_live_gate", api_visibility="private")
        # The shadow and the faint sketch over the hint pad follow every stroke. They are
        # overlays laid over the pads in the browser (s2a/overlay.js), never pad values:
        # setting a pad's value from here would replace strokes drawn meanwhile. The
        # browser fetches the shadow itself from SHADOW_ROUTE when a stroke ends (the pins
        # and drops it sends are shadow_selection's); this slower event path also asks
        # it to, after every change of the pad, and its shadow is the fallback.
        sketch_tab.select(None, js="() => { document.body.dataset.s2aPad = 'sketch'; }",
                          api_visibility="private")
        hint_tab.select(None, js="() => { document.body.dataset.s2aPad = 'hints'; }",
                        api_visibility="private")
        guide_inputs = [show_shadow, opacity, sketch, k, selection]
        gr.on([sketch.change, k.release, show_shadow.change, opacity.release],
              handlers.guides, guide_inputs, [shadow, faint], trigger_mode="always_last",
              js=GUIDES_JS, show_progress="hidden", api_name="ui_guides",
              api_visibility="private", concurrency_id="guides", concurrency_limit=2)
        # Pins and drops re-project at once: a new face and a new shadow.
        publish = {"fn": handlers.shadow_selection, "inputs": selection,
                   "outputs": shadow_selection, "show_progress": "hidden",
                   "api_visibility": "private", "concurrency_limit": None}
        for name, event in (
            ("pick", neighbors.select(handlers.pick_neighbor, [click_mode, shown, selection, k],
                                      [selection, selection_note], api_name="ui_pick",
                                      api_visibility="private", concurrency_limit=None)),
            ("clear", clear.click(handlers.clear_selection, None, [selection, selection_note],
                                  api_name="ui_clear", api_visibility="private",
                                  concurrency_limit=None)),
        ):
            event.success(api_name=f"ui_{name}_selection", **publish)
            event.success(handlers.generate, generate_inputs, generated,
                          api_name=f"ui_{name}_generate", api_visibility="private",
                          concurrency_id="model").success(
                handlers.guides, guide_inputs, [shadow, faint], js=GUIDES_JS,
                show_progress="hidden", api_name=f"ui_{name}_guides",
                api_visibility="private", concurrency_id="guides")
        history_strip.select(
            handlers.restore, history,
            [sketch, hints, refine, k, seed, selection, selection_note, *outputs, shown],
            api_name="ui_restore", api_visibility="private", concurrency_limit=None
        ).success(api_name="ui_restore_selection", **publish)
        history_strip.select(handlers.restore_parts, history, part_sliders,
                             api_name="ui_restore_parts", api_visibility="private",
                             concurrency_limit=None)
        upload.upload(handlers.upload_sketch, [upload, hints], [sketch, hints, pending, offer],
                      api_name="ui_upload_sketch", api_visibility="private",
                      concurrency_limit=None)
        for name, button_, as_picture in (("picture", use_picture, True),
                                          ("sketch", use_as_sketch, False)):
            button_.click(partial(handlers.use_upload, as_picture=as_picture), [pending, hints],
                          [sketch, hints, pending, offer], api_name=f"ui_use_as_{name}",
                          api_visibility="private", concurrency_limit=None)
        picture.upload(handlers.picture_to_sketch, [picture, hints], [sketch, hints],
                       api_name="ui_picture_to_sketch", api_visibility="private",
                       concurrency_limit=None)
        examples.select(handlers.load_example, None, [sketch, hints], api_name="ui_example",
                        api_visibility="private", concurrency_limit=None).then(
            handlers.generate, generate_inputs, generated, api_name="ui_example_generate",
            api_visibility="private", concurrency_id="model")

        # The documented endpoint: plain images in, the face first out.
        api_sketch = uploaded_image("sketch")
        api_hints = uploaded_image("hints")
        api_button = gr.Button(visible=False)
        api_button.click(handlers.generate_api, [api_sketch, api_hints, refine, k, seed],
                         outputs, api_name="generate", concurrency_id="model",
                         api_description="Sketch (+ RGBA colour hints or None), refine in "
                         "[0, 1], k neighbours, seed -> the anime face (first output).")
    return demo


def main() -> None:
    """Load the model once and serve the app on GRADIO_SERVER_NAME:GRADIO_SERVER_PORT."""
    concurrency = env_int("S2A_CONCURRENCY", 2)  # requests the model runs at once
    max_queue = env_int("S2A_MAX_QUEUE", 32)  # requests waiting beyond those
    started = time.perf_counter()
    try:
        pipe = Sketch2Anime.from_pretrained()  # weights/, or $S2A_WEIGHTS ($S2A_REVISION)
    except ValueError as error:
        raise SystemExit(f"Cannot start Sketch2Anime: {error}\nPoint S2A_WEIGHTS at a weights "
                         "folder or a Hub repo id, or train the weights (see README).") from error
    # Start the upscaler and load its weights now, not on the first user's request.
    pipe.upscaler(Image.new("RGB", (pipe.resolution, pipe.resolution), "white"))
    print(f"Loaded Sketch2Anime ({pipe.resolution} px, upscaled to {pipe.output_resolution} px "
          f"by {pipe.upscaler.backend}) in {time.perf_counter() - started:.1f} s")
    use_one_search_thread()
    install_gradio_cache_fix()
    handlers = Handlers(pipe)
    demo = build_demo(pipe, handlers)
    # A full queue answers "Queue is full! Please try again." (HTTP 503) at once instead
    # of piling up work; the load test (python -m tools.loadtest --overload) checks it.
    demo.queue(default_concurrency_limit=concurrency, max_size=max_queue)
    demo.launch(
        server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
        share=False,
        app_kwargs={"routes": shadow_routes(handlers)},  # the shadow, beside Gradio's routes
    )


if __name__ == "__main__":
    main()
