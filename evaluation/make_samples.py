"""A sample grid from the sketches the project draws itself (no dataset images).

    python -m evaluation.make_samples --weights weights/ --out docs/samples.png

Rows: each example sketch with and without its colour hints. Columns: the input (hints
drawn over it), the method at refine 1, 0.5 and 0 through the anime upscaler, the
SimpleGAN baseline upscaled (if the weights folder has one), and the projected sketch the
decoder sees at refine 1. With --before OTHER, the first columns
show another weights folder (e.g. the previous version) at refine 1 and 0, for a
side-by-side comparison. With a per-part model in the weights two more columns show it
(every part at refine 1) and its assembled projected sketch, with the part windows.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from s2a import Sketch2Anime
from s2a.examples import example_hints, example_sketches
from s2a.hub import BASELINE_DIR, resolve_weights
from s2a.models import SimpleGAN
from s2a.pipeline import to_pil_rgb

TILE = 192  # px per picture: the 8-9 column grid stays a few MB in git


def _tile(image: Image.Image) -> Image.Image:
    return image.convert("RGB").resize((TILE, TILE), Image.Resampling.LANCZOS)


def _with_hints(sketch: Image.Image, hints: Image.Image | None) -> Image.Image:
    view = sketch.convert("RGBA")
    if hints is not None:
        view.alpha_composite(hints.resize(view.size))
    return view.convert("RGB")


def _with_windows(sketch: Image.Image, windows) -> Image.Image:
    """A projected sketch with each part's window outlined (model-resolution boxes)."""
    tile = sketch.convert("RGB")
    draw = ImageDraw.Draw(tile)
    for window in windows.values():
        draw.rectangle([window.left, window.top, window.left + window.size - 1,
                        window.top + window.size - 1], outline=(40, 110, 230))
    return tile


@torch.no_grad()
def _baseline_face(baseline: SimpleGAN, pipe: Sketch2Anime, sketch, hints) -> Image.Image:
    # The baseline gets exactly what the method's model gets: the framed sketch and hints.
    sketch_input, frame = pipe.framed_sketch_tensor(sketch)  # (1, 1, R, R)
    return to_pil_rgb(baseline(sketch_input, pipe.hints_tensor(hints, sketch.size, frame)[None])[0])


def make_grid(pipe: Sketch2Anime, baseline: SimpleGAN | None, k: int = 10,
              before: Sketch2Anime | None = None, before_name: str = "before") -> Image.Image:
    """The grid as one RGB image, with a label row on top."""
    labels = ["input"]
    if before is not None:
        labels += [f"{before_name}: refine=1", f"{before_name}: refine=0"]
    labels += ["refine=1", "refine=0.5", "refine=0"]
    labels += ["SimpleGAN, upscaled"] if baseline is not None else []
    labels += ["projected sketch"]
    if pipe.has_parts:
        labels += ["per part: refine=1", "per part: projected"]
    rows = []
    for name, sketch in example_sketches().items():
        for hints in (example_hints(name), None):
            result = pipe(sketch, hints=hints, refine=1.0, k=k)
            tiles = [_with_hints(sketch, hints)]
            if before is not None:
                tiles += [before(sketch, hints=hints, refine=r, k=k).image for r in (1.0, 0.0)]
            tiles += [result.image] + [pipe(sketch, hints=hints, refine=r, k=k).image
                                       for r in (0.5, 0.0)]
            if baseline is not None:
                tiles.append(pipe.upscaler(_baseline_face(baseline, pipe, sketch, hints)))
            tiles.append(result.projected_sketch)
            if pipe.has_parts:
                parts = pipe(sketch, hints=hints, refine=1.0, k=k, per_part=True)
                tiles += [parts.image, _with_windows(parts.projected_sketch, pipe.parts.windows)]
            rows.append(np.concatenate([np.asarray(_tile(t)) for t in tiles], axis=1))
    grid = Image.fromarray(np.concatenate(rows, axis=0))
    canvas = Image.new("RGB", (grid.width, grid.height + 24), "white")
    canvas.paste(grid, (0, 24))
    draw = ImageDraw.Draw(canvas)
    for column, label in enumerate(labels):
        draw.text((column * TILE + 6, 6), label, fill=(0, 0, 0))
    return canvas


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weights", default=None, help="weights folder (default: bundled)")
    parser.add_argument("--out", default="docs/samples.png")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--before", default=None,
                        help="another weights folder to show beside (e.g. the last version)")
    parser.add_argument("--before-name", default="before", help="its label in the grid")
    args = parser.parse_args(argv)
    try:
        folder = resolve_weights(args.weights)
        pipe = Sketch2Anime.from_pretrained(folder)
        before = Sketch2Anime.from_pretrained(args.before) if args.before else None
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    baseline = None
    if (folder / BASELINE_DIR / "model.safetensors").is_file():
        baseline = SimpleGAN.from_pretrained(folder / BASELINE_DIR).eval()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    make_grid(pipe, baseline, args.k, before, args.before_name).save(args.out)
    print(f"Wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
