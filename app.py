"""Sketch2Anime drawing app: sketch a face, paint colour hints, get an anime face.

    python app.py            # http://127.0.0.1:7860 (GRADIO_SERVER_NAME / GRADIO_SERVER_PORT)

The model loads once in main(); `build_demo(pipe)` wires the UI around it, so tests can
build the app with tiny weights. A plain API endpoint, `/generate`, takes the sketch and
hint images directly:

    from gradio_client import Client, handle_file
    face, *_ = Client("http://127.0.0.1:7860/").predict(
        handle_file("sketch.png"), None, 1.0, 10, 0, api_name="/generate")
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import faiss
import gradio as gr
import numpy as np
from PIL import Image, ImageFilter, ImageOps

from s2a import Sketch2Anime
from s2a.examples import example_hints, example_sketches
from s2a.images import as_pil_image, to_grey_array
from s2a.metrics import delta_e_ciede2000, rgb_to_lab
from s2a.pipeline import MAX_K, pad_like_sketch
from s2a.sketch import EMPTY_SKETCH_MESSAGE, REFERENCE_SIDE, extract_sketch, ink_of

CANVAS = 512  # the drawing pads, in pixels
FACE_DISPLAY = 512  # the face is upscaled (LANCZOS) to this size for display and download
SKETCH_DISPLAY = 256  # the projected sketch
NEIGHBOR_DISPLAY = 128  # each neighbour in the gallery
FAINT = 0.3  # how dark the sketch shows under the hint layer (1 = full strength)
NOT_FOLLOWED_DELTA_E = 10.0  # a hint colour further than this from the output is flagged
MIN_HINT_PIXELS = 8  # hint colours covering fewer pixels are brush edge noise, not hints
SOLID_ALPHA = 128  # hint pixels at least this opaque define the hint colours
# "Start from a picture": upscaled grey above PEN_LIGHT is paper, below PEN_DARK full ink.
PEN_LIGHT, PEN_DARK = 170.0, 90.0
KEEP_DOWNLOADS = 64  # result PNGs kept on disk for the download button
MAX_UPLOAD_BYTES = 20 * 10**6  # an uploaded picture file; a 4096x4096 PNG is rarely more

PALETTE = {
    "black hair": "#1f1d24",
    "dark brown hair": "#4a2f22",
    "brown hair": "#8b5a2b",
    "blonde hair": "#f2d36b",
    "silver hair": "#c9ccd8",
    "red hair": "#c8323c",
    "pink hair": "#f29cc2",
    "blue hair": "#3f63c8",
    "blue eyes": "#3f7fd8",
    "green eyes": "#3fa45a",
    "red eyes": "#d8323c",
    "purple eyes": "#7a4fc2",
    "amber eyes": "#d89b2b",
    "fair skin": "#ffe3d1",
    "warm skin": "#f5c9a8",
    "tan skin": "#c98f68",
    "white background": "#ffffff",
    "sky background": "#a9d8f5",
    "pink background": "#f6d5e0",
    "cream background": "#fff4d6",
}

# ---------------------------------------------------------------------------
# Payloads: what Gradio hands the handlers
# ---------------------------------------------------------------------------


def load_image(value, what: str) -> Image.Image | None:
    """A PIL image from a plain payload: PIL image, numpy array, file path or None."""
    if value is None:
        return None
    if isinstance(value, (str, os.PathLike)):
        try:
            size = os.path.getsize(value)
        except OSError as error:
            raise ValueError(f"The {what} file could not be read: upload a PNG or JPEG "
                             f"({type(error).__name__}).") from error
        if size > MAX_UPLOAD_BYTES:
            raise ValueError(f"The {what} file is too large ({size / 1e6:.0f} MB): upload a "
                             f"picture of at most {MAX_UPLOAD_BYTES // 10**6} MB.")
        try:
            with Image.open(value) as opened:
                as_pil_image(opened, what)  # the pixel cap, before anything is decoded
                opened.load()
                return as_pil_image(opened, what)
        except ValueError:
            raise
        except Exception as error:  # a decoder may fail in many ways on a damaged file
            raise ValueError(f"The {what} could not be read as an image: upload a PNG or "
                             f"JPEG ({type(error).__name__}).") from error
    return as_pil_image(value, what)


def sketch_from_payload(value) -> Image.Image | None:
    """The drawn sketch from an ImageEditor dict (its composite) or a plain image."""
    if isinstance(value, dict):
        composite = load_image(value.get("composite"), "sketch")
        if composite is not None:
            return composite
        background = load_image(value.get("background"), "sketch")
        layers = [load_image(layer, "sketch") for layer in payload_layers(value)]
        return flatten([background, *layers])
    return load_image(value, "sketch")


def hints_from_payload(value) -> Image.Image | None:
    """Only the painted hint layer(s), RGBA, or None when nothing is painted.

    From an ImageEditor dict this is the layers composited together, never the background
    (which shows the sketch faintly). A plain image is passed on as it is, so the pipeline
    can say what is wrong with it.
    """
    if isinstance(value, dict):
        layers = [load_image(layer, "hint layer") for layer in payload_layers(value)]
        layers = [layer.convert("RGBA") for layer in layers if layer is not None]
        if not layers:
            return None
        painted = layers[0]
        for layer in layers[1:]:
            painted = Image.alpha_composite(painted, layer.resize(painted.size, Image.NEAREST))
        return painted if painted.getchannel("A").getextrema()[1] > 0 else None
    return load_image(value, "hint layer")


def payload_layers(value: dict) -> list:
    """The "layers" list of an editor payload ([] when missing); ValueError if not a list."""
    layers = value.get("layers") or []
    if not isinstance(layers, (list, tuple)):
        raise ValueError(f"The editor's layers must be a list of images, got "
                         f"{type(layers).__name__}: send the ImageEditor value unchanged.")
    return list(layers)


def flatten(images: list[Image.Image | None]) -> Image.Image | None:
    """Alpha-composite the images (the first one's size) onto white; None if all are None."""
    images = [image for image in images if image is not None]
    if not images:
        return None
    canvas = Image.new("RGBA", images[0].size, "white")
    for image in images:
        canvas.alpha_composite(image.convert("RGBA").resize(canvas.size, Image.NEAREST))
    return canvas.convert("RGB")


def as_whole_number(value, name: str) -> int:
    """Sliders and JSON clients send 10.0 for 10; the pipeline wants a real int."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value)
    raise ValueError(f"{name} must be a whole number, got {value!r}.")


# ---------------------------------------------------------------------------
# Canvas values the server puts into the pads
# ---------------------------------------------------------------------------


def fit_to_canvas(image: Image.Image, fill, size: int = CANVAS) -> Image.Image:
    """`image` scaled (LANCZOS) to fit a size x size canvas, centred, padded with `fill`."""
    image = ImageOps.contain(image, (size, size), Image.LANCZOS)
    canvas = Image.new(image.mode, (size, size), fill)
    canvas.paste(image, ((size - image.width) // 2, (size - image.height) // 2))
    return canvas


def sketch_editor_value(sketch: Image.Image) -> dict:
    """A sketch pad value: white paper and the lines on an erasable layer, CANVAS px."""
    ink = fit_to_canvas(Image.fromarray((ink_of(sketch) * 255).round().astype(np.uint8), "L"), 0)
    layer = np.zeros((CANVAS, CANVAS, 4), np.uint8)  # (H, W, RGBA): black ink
    layer[..., 3] = np.asarray(ink)
    paper = Image.new("RGB", (CANVAS, CANVAS), "white")
    return {"background": paper, "layers": [Image.fromarray(layer, "RGBA")], "composite": None}


def faint_sketch(sketch: Image.Image | None) -> Image.Image:
    """The sketch drawn faintly on white (the hint pad's background), CANVAS px, RGB."""
    if sketch is None:
        return Image.new("RGB", (CANVAS, CANVAS), "white")
    ink = ink_of(sketch) * FAINT
    grey = Image.fromarray((255.0 * (1.0 - ink)).round().astype(np.uint8), "L")
    return fit_to_canvas(grey, 255).convert("RGB")


def same_picture(a: Image.Image, b: Image.Image, tolerance: float = 24.0) -> bool:
    """Whether two pictures are the same up to encoding noise: same size, and no pixel's
    grey level differs by more than `tolerance` (a single faint stroke does)."""
    if a.size != b.size:
        return False
    return not (np.abs(to_grey_array(a) - to_grey_array(b)) > tolerance).any()


def hint_layers(hint_value) -> list:
    """The painted layers of a hint pad payload, as they are (to put them back unchanged)."""
    if not isinstance(hint_value, dict):
        return []
    return [layer for layer in payload_layers(hint_value) if layer is not None]


def empty_layer() -> Image.Image:
    """A transparent CANVAS layer to draw on.

    Every pad value carries at least one: Gradio's editor swallows its first change
    event, and a value with a layer spends it on loading, so the user's first stroke
    already triggers Live.
    """
    return Image.new("RGBA", (CANVAS, CANVAS), (0, 0, 0, 0))


def blank_sketch_value() -> dict:
    """The sketch pad when the page opens: white paper and an empty layer."""
    return {"background": Image.new("RGB", (CANVAS, CANVAS), "white"), "layers": [empty_layer()],
            "composite": None}


def hint_editor_value(sketch: Image.Image | None, hints: Image.Image | None) -> dict:
    """A hint pad value: the faint sketch underneath, the painted hints on the layer."""
    layer = empty_layer() if hints is None else hints.convert("RGBA").resize((CANVAS, CANVAS))
    return {"background": faint_sketch(sketch), "layers": [layer], "composite": None}


# ---------------------------------------------------------------------------
# The hint report
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class HintCheck:
    """How well one hinted colour came out."""

    wanted: tuple[int, int, int]
    got: tuple[int, int, int]  # the output's median colour where this colour was hinted
    delta_e: float  # CIEDE2000 between wanted and got
    pixels: int  # hinted pixels of this colour (at the hint layer's size)

    @property
    def followed(self) -> bool:
        return self.delta_e <= NOT_FOLLOWED_DELTA_E


def check_hints(image: Image.Image, hints: Image.Image | None,
                sketch_size: tuple[int, int] | None = None) -> list[HintCheck]:
    """For each distinct hint colour: ΔE between it and the output's median colour there.

    `hints` is stretched over the sketch's frame as the pipeline does (padded like a
    non-square sketch of `sketch_size`); the output is resized onto the hint layer's grid.
    Colours covering fewer than MIN_HINT_PIXELS solid pixels (brush edges) are skipped.
    Sorted by area, largest first.
    """
    if hints is None:
        return []
    rgba = np.asarray(hints.convert("RGBA"))  # (h, w, 4)
    if sketch_size is not None:
        rgba = pad_like_sketch(rgba, sketch_size)
    height, width = rgba.shape[:2]
    output = np.asarray(image.convert("RGB").resize((width, height), Image.BILINEAR))
    solid = rgba[..., 3] >= SOLID_ALPHA  # (h, w)
    if not solid.any():
        return []
    colours, inverse, counts = np.unique(rgba[..., :3][solid], axis=0, return_inverse=True,
                                         return_counts=True)
    under = output[solid]  # (N, 3)
    checks = []
    for i in np.argsort(-counts):
        if counts[i] < MIN_HINT_PIXELS:
            continue
        wanted = tuple(int(v) for v in colours[i])
        got = tuple(int(v) for v in np.median(under[inverse.ravel() == i], axis=0).round())
        delta = float(delta_e_ciede2000(rgb_to_lab(np.array(wanted)), rgb_to_lab(np.array(got))))
        checks.append(HintCheck(wanted, got, delta, int(counts[i])))
    return checks


def hex_colour(rgb: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def format_hint_report(checks: list[HintCheck]) -> str:
    """The hint report as Markdown: one line per hint colour, ΔE and whether followed."""
    if not checks:
        return "**Hint report:** no colour hints painted, the colours are the model's choice."
    names = {value: name for name, value in PALETTE.items()}
    followed = sum(check.followed for check in checks)
    lines = [f"**Hint report:** {followed} of {len(checks)} hint colours followed "
             f"(CIEDE2000 ΔE ≤ {NOT_FOLLOWED_DELTA_E:.0f} between the colour you painted and "
             "the face's median colour there)."]
    for check in checks:
        wanted, got = hex_colour(check.wanted), hex_colour(check.got)
        verdict = "followed" if check.followed else "**not followed**"
        name = names.get(wanted, "hint")
        lines.append(f"- {swatch(wanted)} {name} `{wanted}` → {swatch(got)} `{got}`: "
                     f"ΔE {check.delta_e:.1f}, {verdict}")
    return "\n".join(lines)


def swatch(colour: str) -> str:
    return f'<span style="color:{colour};font-size:1.3em">■</span>'


# ---------------------------------------------------------------------------
# Handlers
# ---------------------------------------------------------------------------


def modified_time(path: Path) -> float:
    """A file's mtime; 0 once gone (a concurrent request may delete it meanwhile)."""
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


class Handlers:
    """The app's callbacks around one loaded pipeline (plain methods, easy to test)."""

    def __init__(self, pipe: Sketch2Anime, downloads: Path | None = None):
        self.pipe = pipe
        self.downloads = downloads or Path(tempfile.mkdtemp(prefix="sketch2anime-"))
        self.downloads.mkdir(parents=True, exist_ok=True)

    def run(self, sketch: Image.Image | None, hints: Image.Image | None, refine, k, seed):
        """Sketch + hints -> (face, projected sketch, neighbours, hint report, PNG path)."""
        if sketch is None:
            raise ValueError(EMPTY_SKETCH_MESSAGE)
        k = as_whole_number(k, "k (neighbours)")
        seed = as_whole_number(seed, "seed")
        result = self.pipe(sketch, hints=hints, refine=refine, k=k, seed=seed)
        face = result.image.resize((FACE_DISPLAY, FACE_DISPLAY), Image.LANCZOS)
        projected = result.projected_sketch.resize((SKETCH_DISPLAY, SKETCH_DISPLAY),
                                                   Image.LANCZOS)
        indices = [index for index, _ in result.neighbors]
        decoded = self.pipe.decode_latents(indices) if indices else []
        gallery = [
            (image.resize((NEIGHBOR_DISPLAY, NEIGHBOR_DISPLAY), Image.LANCZOS),
             f"#{index}: {weight:.2f}")
            for image, (index, weight) in zip(decoded, result.neighbors)
        ]
        report = format_hint_report(check_hints(result.image, hints, sketch.size))
        return face, projected, gallery, report, self.save_png(face)

    def save_png(self, face: Image.Image) -> str:
        """Write the face as a PNG for the download button; keep the latest few files."""
        old = sorted(self.downloads.glob("*/sketch2anime.png"), key=modified_time)
        for path in old[: max(0, len(old) - KEEP_DOWNLOADS + 1)]:
            with contextlib.suppress(OSError):  # a concurrent request got there first
                path.unlink()
                path.parent.rmdir()
        folder = self.downloads / uuid.uuid4().hex
        folder.mkdir()
        path = folder / "sketch2anime.png"
        face.save(path, format="PNG")
        return str(path)

    def generate(self, sketch_value, hint_value, refine, k, seed):
        """The Generate button: editor payloads (or plain images) in, outputs out."""
        try:
            return self.run(sketch_from_payload(sketch_value), hints_from_payload(hint_value),
                            refine, k, seed)
        except ValueError as error:
            raise gr.Error(str(error)) from error

    def generate_live(self, live, sketch_value, hint_value, refine, k, seed):
        """Live mode: regenerate while drawing; half-finished input keeps the last face."""
        if not live:
            return (gr.skip(),) * 5
        try:
            return self.run(sketch_from_payload(sketch_value), hints_from_payload(hint_value),
                            refine, k, seed)
        except ValueError:
            return (gr.skip(),) * 5

    def generate_api(self, sketch, hints, refine, k, seed):
        """/generate: a sketch image, an RGBA hint image or None, refine, k, seed."""
        try:
            return self.run(load_image(sketch, "sketch"), load_image(hints, "hint layer"),
                            refine, k, seed)
        except ValueError as error:
            raise gr.Error(str(error)) from error

    def upload_sketch(self, path, hint_value):
        """An existing sketch file -> the sketch pad (lines erasable) and the hint pad."""
        try:
            sketch = load_image(path, "sketch")
            if sketch is None:
                return gr.skip(), gr.skip()
            value = sketch_editor_value(sketch)
            return value, hint_editor_value(sketch, hints_from_payload(hint_value))
        except ValueError as error:
            raise gr.Error(str(error)) from error

    def picture_to_sketch(self, path, hint_value):
        """Start from a picture: a colour illustration -> its line sketch in the pad."""
        try:
            picture = load_image(path, "picture")
            if picture is None:
                return gr.skip(), gr.skip()
            sketch = picture_sketch(picture, self.pipe.resolution)
            return sketch_editor_value(sketch), hint_editor_value(
                sketch, hints_from_payload(hint_value))
        except ValueError as error:
            raise gr.Error(str(error)) from error

    def show_sketch_under_hints(self, sketch_value, hint_value):
        """Keep the hint pad's faint background in step with the sketch."""
        try:
            background = faint_sketch(sketch_from_payload(sketch_value))
            shown = hint_value.get("background") if isinstance(hint_value, dict) else None
            if shown is not None and same_picture(load_image(shown, "hint background"),
                                                  background):
                return gr.skip()  # unchanged: leave the pad (and what is painted) alone
            return {"background": background, "layers": hint_layers(hint_value) or [empty_layer()],
                    "composite": None}
        except ValueError:
            return gr.skip()

    def load_example(self, evt: gr.SelectData):
        """An example from the gallery -> both pads."""
        names = list(EXAMPLES)
        name = names[evt.index] if isinstance(evt.index, int) else names[0]
        sketch = EXAMPLES[name]
        return sketch_editor_value(sketch), hint_editor_value(sketch, example_hints(name))


def picture_sketch(picture: Image.Image, resolution: int, size: int = CANVAS) -> Image.Image:
    """The line sketch of a colour picture, as smooth pen lines on a size x size canvas.

    The picture is shrunk to the model's resolution (at least the 96 px the filter was
    tuned on) and run through the training detail filter, so the sketch has exactly the
    line density the model learned from; the 1 px lines are then upscaled (bicubic, a
    little blur, a soft threshold) into smooth strokes of about 3 px, like a pen's.
    Judged by eye: extracting at 4x the resolution instead lost most lines (Canny's
    thresholds are tuned for 96 px gradients) or, with scaled thresholds, kept hair texture.
    """
    side = max(resolution, REFERENCE_SIDE)
    small = ImageOps.contain(picture.convert("RGB"), (side, side), Image.LANCZOS)
    lines = extract_sketch(small)  # (h, w) L, 0 on the lines
    scale = size / max(lines.size)
    target = (max(1, round(lines.width * scale)), max(1, round(lines.height * scale)))
    grey = lines.resize(target, Image.BICUBIC).filter(ImageFilter.GaussianBlur(0.3 * scale))
    ink = np.clip((PEN_LIGHT - np.asarray(grey, np.float32)) / (PEN_LIGHT - PEN_DARK), 0, 1)
    return Image.fromarray((255.0 * (1.0 - ink)).round().astype(np.uint8), "L")


EXAMPLES = example_sketches()


# ---------------------------------------------------------------------------
# The UI
# ---------------------------------------------------------------------------


def build_demo(pipe: Sketch2Anime) -> gr.Blocks:
    """The Gradio app around a loaded pipeline."""
    handlers = Handlers(pipe)
    with gr.Blocks(title="Sketch2Anime", delete_cache=(3600, 3600)) as demo:
        gr.Markdown(
            "## Sketch2Anime\nSketch a face (rough is fine), paint a few colour hints, "
            "get an anime face that keeps what you drew."
        )
        with gr.Row(equal_height=False):
            with gr.Column(scale=5, min_width=420):
                with gr.Tabs():
                    with gr.Tab("1 · Sketch", id="sketch-tab"):
                        sketch = gr.ImageEditor(
                            value=blank_sketch_value(),
                            label="Sketch",
                            elem_id="sketch-pad",
                            type="numpy",
                            image_mode="RGBA",
                            sources=(),
                            transforms=(),
                            layers=False,
                            brush=gr.Brush(colors=["#000000"], color_mode="fixed",
                                           default_size=3),
                            eraser=gr.Eraser(default_size=12),
                            canvas_size=(CANVAS, CANVAS),
                            fixed_canvas=True,
                            format="png",
                            height=CANVAS + 60,
                        )
                        with gr.Row():
                            upload = gr.UploadButton("Upload a sketch", file_types=["image"],
                                                     size="sm")
                            picture = gr.UploadButton("Start from a picture",
                                                      file_types=["image"], size="sm")
                    with gr.Tab("2 · Colour hints", id="hint-tab") as hint_tab:
                        hints = gr.ImageEditor(
                            value=hint_editor_value(None, None),
                            label="Colour hints (your sketch shows faintly underneath)",
                            elem_id="hint-pad",
                            type="numpy",
                            image_mode="RGBA",
                            sources=(),
                            transforms=(),
                            layers=False,
                            brush=gr.Brush(colors=list(PALETTE.values()),
                                           default_color=PALETTE["blonde hair"],
                                           color_mode="defaults", default_size=14),
                            eraser=gr.Eraser(default_size=20),
                            canvas_size=(CANVAS, CANVAS),
                            fixed_canvas=True,
                            format="png",
                            height=CANVAS + 60,
                        )
                with gr.Row(equal_height=True):
                    live = gr.Checkbox(False, label="Live", info="regenerate while drawing",
                                       elem_id="live", scale=1)
                    button = gr.Button("Generate", variant="primary", elem_id="generate",
                                       scale=2)
                with gr.Row(equal_height=True):
                    refine = gr.Slider(0.0, 1.0, value=1.0, step=0.05, label="Refine",
                                       info="0 = my lines exactly, 1 = most professional",
                                       scale=3)
                    k = gr.Slider(1, MAX_K, value=10, step=1, precision=0,
                                  label="k neighbours", info="sketches blended", scale=2)
                    seed = gr.Number(0, precision=0, minimum=0, label="Seed",
                                     info="0 = plain projection", scale=1, min_width=100)
                examples = gr.Gallery(
                    [(image, name) for name, image in EXAMPLES.items()],
                    label="Examples (click one to load it)", columns=4, height=180,
                    allow_preview=False, object_fit="contain", buttons=[],
                    elem_id="examples",
                )
            with gr.Column(scale=4, min_width=360):
                face = gr.Image(label="Anime face", type="pil", format="png",
                                elem_id="face-output", height=400, interactive=False,
                                buttons=["download", "fullscreen"])
                with gr.Row(equal_height=True):
                    projected = gr.Image(label="Projected sketch", type="pil",
                                         format="png", height=170, interactive=False,
                                         buttons=[], scale=1, min_width=120,
                                         elem_id="projected-output")
                    neighbors = gr.Gallery(label="Neighbours: decoded sketch, #index: weight",
                                           columns=3, height=170, allow_preview=False,
                                           object_fit="contain", buttons=[], scale=2,
                                           elem_id="neighbors-output")
                report = gr.Markdown("**Hint report:** generate a face to see how well your "
                                     "colour hints were followed.", elem_id="hint-report")
                download = gr.DownloadButton("Download PNG", elem_id="download", size="md")

        outputs = [face, projected, neighbors, report, download]
        # UI events are private and named apart, so "generate" stays the plain endpoint's.
        button.click(handlers.generate, [sketch, hints, refine, k, seed], outputs,
                     api_name="ui_generate", api_visibility="private", concurrency_id="model")
        gr.on(
            [sketch.change, hints.change, refine.release, k.release, seed.submit],
            handlers.generate_live, [live, sketch, hints, refine, k, seed], outputs,
            trigger_mode="always_last", show_progress="hidden", api_name="ui_live",
            api_visibility="private", concurrency_id="model",
        )
        # Only when the hint tab opens: the payloads are current then, and the progress
        # overlay keeps the user from painting until the pad is updated. (Following
        # sketch.change instead let a late response carry a stale, empty hint layer and
        # wipe strokes painted in the meantime.)
        hint_tab.select(handlers.show_sketch_under_hints, [sketch, hints], hints,
                        show_progress="full", api_name="ui_sketch_under_hints",
                        api_visibility="private", queue=False)
        upload.upload(handlers.upload_sketch, [upload, hints], [sketch, hints],
                      api_name="ui_upload_sketch", api_visibility="private",
                      concurrency_limit=None)
        picture.upload(handlers.picture_to_sketch, [picture, hints], [sketch, hints],
                       api_name="ui_picture_to_sketch", api_visibility="private",
                       concurrency_limit=None)
        examples.select(handlers.load_example, None, [sketch, hints], api_name="ui_example",
                        api_visibility="private", concurrency_limit=None).then(
            handlers.generate, [sketch, hints, refine, k, seed], outputs,
            api_name="ui_example_generate", api_visibility="private", concurrency_id="model")

        # The documented endpoint: plain images in, the face first out.
        api_sketch = gr.Image(type="pil", image_mode=None, visible=False, label="sketch")
        api_hints = gr.Image(type="pil", image_mode=None, visible=False, label="hints")
        api_button = gr.Button(visible=False)
        api_button.click(handlers.generate_api, [api_sketch, api_hints, refine, k, seed],
                         outputs, api_name="generate", concurrency_id="model",
                         api_description="Sketch (+ RGBA colour hints or None), refine in "
                         "[0, 1], k neighbours, seed -> the anime face (first output).")
    return demo


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
    print(f"Loaded Sketch2Anime ({pipe.resolution} px) in {time.perf_counter() - started:.1f} s")
    # One k-NN query is faster on one OpenMP thread (2.5 vs 5.1 ms on 2 cores, tools.bench
    # --faiss-threads), and the queue already runs requests side by side.
    faiss.omp_set_num_threads(1)
    gr.processing_utils.save_pil_to_cache = save_pil_to_cache_atomically
    demo = build_demo(pipe)
    # A full queue answers "Queue is full! Please try again." (HTTP 503) at once instead
    # of piling up work; the load test (python -m tools.loadtest --overload) checks it.
    demo.queue(default_concurrency_limit=concurrency, max_size=max_queue)
    demo.launch(
        server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
        share=False,
    )


if __name__ == "__main__":
    main()
