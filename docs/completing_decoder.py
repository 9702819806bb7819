"""docs/completing_decoder.jpg: the projected sketch of the project's own drawings, before
and after the completing decoder (issue 13).

    python -m docs.completing_decoder --before OLD_WEIGHTS --after weights/

Rows: the project's example drawings and a simple face drawn small in the middle of the
pad (issue 13's browser test), each through the app's own path (`Sketch2Anime.__call__`:
stroke normalisation and face-aware framing). Columns: the drawing | what the model
received | the projected sketch at refine 1 with --before's decoder | with --after's |
the per-part projected sketch with --after's | the face at refine 1 (--after; the
generator does not read this decoder, so the face is the same in both). No dataset image
is in it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image, ImageDraw

from evaluation.evaluate_autoencoder import pad_centred_face
from s2a import Sketch2Anime
from s2a.examples import example_sketches
from s2a.parts import PART_NAMES

TILE = 160
COLUMNS = ("drawing", "model input", "projected: before", "projected: after",
           "per part: after", "face r=1")


def _tile(image: Image.Image) -> Image.Image:
    return image.convert("RGB").resize((TILE, TILE), Image.Resampling.LANCZOS)


def make_grid(before: Sketch2Anime, after: Sketch2Anime) -> Image.Image:
    drawings = list(example_sketches().values()) + [Image.fromarray(pad_centred_face())]
    header = 18
    grid = Image.new("RGB", (TILE * len(COLUMNS), header + TILE * len(drawings)), "white")
    draw = ImageDraw.Draw(grid)
    for col, name in enumerate(COLUMNS):
        draw.text((col * TILE + 4, 3), name, fill="black")
    for row, drawing in enumerate(drawings):
        old = before(drawing, refine=1.0, upscale=False)
        new = after(drawing, refine=1.0, upscale=False)
        parts = after(drawing, refine=dict.fromkeys(PART_NAMES, 1.0), upscale=False)
        tiles = (drawing, new.normalized_sketch, old.projected_sketch, new.projected_sketch,
                 parts.projected_sketch, new.image)
        for col, image in enumerate(tiles):
            grid.paste(_tile(image), (col * TILE, header + row * TILE))
    return grid


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", required=True, help="weights folder before")
    parser.add_argument("--after", default="weights/", help="weights folder after")
    parser.add_argument("--out", default="docs/completing_decoder.jpg")
    args = parser.parse_args(argv)
    grid = make_grid(Sketch2Anime.from_pretrained(args.before),
                     Sketch2Anime.from_pretrained(args.after))
    grid.save(Path(args.out), optimize=True)
    print(f"Wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
