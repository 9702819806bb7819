"""docs/framing_oracle.png: what face-aware framing would buy on the project's own drawings.

    python -m docs.framing_oracle        # from the repository root

The "frame" step (before v1.3 the only framing) zooms a drawing by its ink extent, so a
whole head drawn on the pad (hair cap to chin) arrives with its eyes at rows 58-62 of 96
and 27 px apart, where the training crops have them at row 38, 40 px apart. Here the same
drawings are also framed by where their eyes really are (known: the project drew them,
`s2a.examples.EXAMPLE_EYES`), a similarity crop that puts them where the training faces
have theirs. Columns, for each framing: model input | projected sketch (refine 1) | face
at refine 1 | at 0.5 | per-part projection | per-part face (refine 1). No dataset image
is in it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from s2a import Sketch2Anime
from s2a.examples import EXAMPLE_EYES, SIZE, example_hints, example_sketches
from s2a.face_locator import eye_box
from s2a.parts import check_part_refine
from s2a.sketch import crop_to_frame, ink_of, normalize_sketch

COLUMNS = ("input", "projected r=1", "r=1", "r=0.5", "per part: projected", "per part r=1")
SCALE = 2


@torch.no_grad()
def columns(pipe: Sketch2Anime, sketch: torch.Tensor, hints: torch.Tensor) -> list[torch.Tensor]:
    faces = [pipe.generate(sketch, hints, refine)[0] for refine in (1.0, 0.5)]
    projected = pipe.decode_projected(pipe.generate(sketch, hints, 1.0)[1])[:, None]
    part_face, part_sketch, _ = pipe.generate_parts(sketch, hints, check_part_refine(1.0))
    grey = [t.repeat(1, 3, 1, 1) for t in (sketch, projected)]
    return [*grey, *faces, part_sketch.repeat(1, 3, 1, 1), part_face]


def main() -> None:
    pipe = Sketch2Anime.from_pretrained()
    pipe.face_locator = None  # the ink extent alone, against the eyes' own framing
    r = pipe.resolution
    rows = []
    for name, drawing in example_sketches().items():
        framed, box = pipe.framed_sketch_tensor(drawing)
        oracle_box = tuple(v / SIZE for v in eye_box(*EXAMPLE_EYES[name]))
        ink = crop_to_frame(ink_of(drawing), oracle_box)  # paper where it runs off the pad
        cropped = Image.fromarray(np.round(255 * (1.0 - ink)).astype(np.uint8), "L")
        oracle = torch.from_numpy(normalize_sketch(cropped, r, steps=()))[None, None]
        row = []
        for sketch, crop in ((framed, box), (oracle, oracle_box)):
            hints = pipe.hints_tensor(example_hints(name), drawing.size, crop)[None]
            row += columns(pipe, sketch, hints)
        rows.append(torch.cat(row, dim=3))
    grid = (torch.cat(rows, dim=2)[0].permute(1, 2, 0).clamp(0, 1).numpy() * 255).astype(np.uint8)
    picture = Image.fromarray(grid).resize((grid.shape[1] * SCALE, grid.shape[0] * SCALE),
                                           Image.NEAREST)
    header = 34
    canvas = Image.new("RGB", (picture.width, picture.height + header), "white")
    canvas.paste(picture, (0, header))
    draw = ImageDraw.Draw(canvas)
    tile = r * SCALE
    for half, title in enumerate(("framed by ink extent", "framed by the eyes (known)")):
        draw.text((half * len(COLUMNS) * tile + 6, 2), title, fill=(0, 0, 0))
        for i, label in enumerate(COLUMNS):
            draw.text(((half * len(COLUMNS) + i) * tile + 6, 18), label, fill=(80, 80, 80))
    out = Path(__file__).with_name("framing_oracle.png")
    canvas.save(out)
    print(f"Wrote {out}")


if __name__ == "__main__":
    main()
