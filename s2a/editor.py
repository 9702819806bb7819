"""The drawing pads' values: what Gradio's ImageEditor sends, and what the app puts in.

The app's handlers get editor payloads (a dict of background, layers and composite, or a
plain image, path or array from the API) and hand pads new values; this module turns one
into the other, so app.py only wires. Nothing here imports Gradio.
"""

from __future__ import annotations

import os

import numpy as np
from PIL import Image, ImageFilter, ImageOps

from s2a.images import as_pil_image
from s2a.sketch import (
    BLUR_SIGMA,
    CANNY_HIGH,
    CANNY_LOW,
    REFERENCE_SIDE,
    extract_sketch,
    ink_of,
)

CANVAS = 512  # the drawing pads, in pixels
FAINT = 0.3  # how dark the sketch shows under the hint layer (1 = full strength)
# An upload is a picture, not a sketch, when more than PICTURE_SHARE of its pixels are
# PICTURE_TONE grey levels off the paper or more colourful than PICTURE_CHROMA.
PICTURE_TONE, PICTURE_CHROMA, PICTURE_SHARE = 12.0, 30.0, 0.35
PICTURE_MESSAGE = ("This looks like a colour picture, not a sketch: as a sketch it would "
                   "become a grey, filled drawing the model cannot use. Start from the "
                   "picture instead (its lines are drawn into the pad for you to edit), or "
                   "use it as a sketch anyway.")
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


def looks_like_picture(image: Image.Image) -> bool:
    """Whether an uploaded "sketch" is really a colour or grey picture, not line art.

    A sketch is mostly paper: few pixels far from the paper's tone (the median) and few
    strongly coloured ones (a coloured pen still leaves the paper plain). A picture fills
    its frame with tones and colours. Measured: of 300 anime faces the 1st percentile has
    48 % of pixels PICTURE_TONE off the median; the project's example sketches, drawn
    faces up to a 10 px brush and extracted picture sketches at most 21 %.
    """
    small = ImageOps.contain(image.convert("RGBA"), (128, 128), Image.LANCZOS)
    rgb = np.asarray(Image.alpha_composite(Image.new("RGBA", small.size, "white"), small)
                     .convert("RGB"), np.float32)  # (h, w, 3)
    grey = rgb.mean(axis=2)
    toned = np.abs(grey - np.median(grey)) > PICTURE_TONE  # (h, w)
    coloured = (rgb.max(axis=2) - rgb.min(axis=2)) > PICTURE_CHROMA  # (h, w)
    return bool(toned.mean() > PICTURE_SHARE or coloured.mean() > PICTURE_SHARE)


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


def brush_size(resolution: int, size: int = CANVAS) -> int:
    """The pen width, in pad pixels, that matches the model's training lines.

    Training sketches have 1 px lines at the model's resolution (Canny edges), so on a
    `size` px pad the same line is size / resolution px wide (5 px for 96 px models on
    the 512 px pad); kept between 2 and 12 px for tiny or large models.
    """
    return int(min(12, max(2, round(size / resolution))))


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


def hint_editor_value(hints: Image.Image | None = None) -> dict:
    """A hint pad value: white paper, the painted hints on the layer.

    The sketch is not in it: the browser lays it faintly over the pad (`s2a.shadow`), so
    the pad never has to be reloaded when the sketch changes.
    """
    layer = empty_layer() if hints is None else hints.convert("RGBA").resize((CANVAS, CANVAS))
    return {"background": Image.new("RGB", (CANVAS, CANVAS), "white"), "layers": [layer],
            "composite": None}


def picture_sketch(picture: Image.Image, resolution: int, size: int = CANVAS) -> Image.Image:
    """The line sketch of a colour picture, as smooth pen lines on a size x size canvas.

    Which lines: the training detail filter on the picture shrunk to the model's
    resolution (at least the 96 px the filter was tuned on), so the sketch has the line
    density the model learned from. Where they run: Canny on the picture at the pad's own
    scale (shrunk or enlarged to fit `size`, LANCZOS), kept only within about one coarse
    pixel of those lines. The lines are found at full resolution, so they are smooth
    instead of blown-up 96 px staircases, then drawn `brush_size` wide (anti-aliased),
    like the pen. Judged by eye on 96 px faces enlarged to the pad: the blur and thresholds
    of the 96 px filter scaled by the full scale s (blur x s, thresholds / s) left almost
    no lines (Canny's edges fall apart into specks); by sqrt(s) the lines hold.
    """
    rgb = picture.convert("RGB")
    big = ImageOps.contain(rgb, (size, size), Image.LANCZOS)  # the pad's scale
    side = max(resolution, REFERENCE_SIDE)
    small = ImageOps.contain(rgb, (side, side), Image.LANCZOS)
    scale = max(big.size) / max(small.size)
    coarse = np.asarray(extract_sketch(small)) == 0  # (h, w) the lines the model would see
    soften = float(np.sqrt(scale))
    fine = np.asarray(extract_sketch(big, blur_sigma=BLUR_SIGMA * soften,
                                     canny_low=CANNY_LOW / soften,
                                     canny_high=CANNY_HIGH / soften,
                                     min_stroke_px=2)) == 0  # (H, W)
    near = Image.fromarray(coarse.astype(np.uint8) * 255).resize(big.size, Image.NEAREST)
    near = near.filter(ImageFilter.MaxFilter(2 * round(scale) + 1))  # within ~1 coarse px
    lines = fine & (np.asarray(near) > 0)  # (H, W)
    width = brush_size(resolution, size)
    pen = Image.fromarray(lines.astype(np.uint8) * 255).filter(
        ImageFilter.MaxFilter(max(1, width - 2) | 1))  # (H, W) thickened
    soft = np.asarray(pen.filter(ImageFilter.GaussianBlur(width / 4)), np.float32) / 255.0
    ink = np.clip(soft * 2.0, 0.0, 1.0)  # solid in the middle, soft edges
    return Image.fromarray((255.0 * (1.0 - ink)).round().astype(np.uint8), "L")
