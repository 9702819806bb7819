"""Face-aware framing: where the training framing of a drawn face lies in the drawing.

The "frame" step (`s2a.sketch`) zooms a drawing by its ink extent. That fits a face drawn
small on the pad, but a whole head (hair cap to chin) then arrives smaller and lower than
the training crops' faces, which run from the forehead to the chin with the eyes at row
38 of 96, 40 px apart; the projection then finds poor neighbours (docs/framing_oracle.png).
The face locator is a small CNN that reads the extent-framed drawing and says where the
training crop of that face would be: a square box (top, left, side) in fractions of its
input. `training.train_face_locator` trains it on training sketches placed at random on a
pad and on whole heads the project draws itself, whose eyes are known.
"""

import math
from dataclasses import dataclass

import torch
from torch import nn

from s2a.models import SafeHubMixin, _tuple_fields

# Where the training faces have their eyes at 96 px (s2a.parts: measured ink peaks), as
# fractions of the side: a face with its eyes here is framed as the training crops are.
TRAINING_EYE_ROW = 37.5 / 96
TRAINING_EYE_GAP = 40.0 / 96
TRAINING_EYE_MIDDLE = 47.0 / 96

Box = tuple[float, float, float]  # (top, left, side), fractions of a square's side


def eye_box(row: float, left: float, right: float) -> Box:
    """The square crop that puts eyes at (row, left) and (row, right) where the training
    faces have theirs; all in the same units (pixels or fractions)."""
    side = (right - left) / TRAINING_EYE_GAP
    return row - TRAINING_EYE_ROW * side, (left + right) / 2 - TRAINING_EYE_MIDDLE * side, side


def box_to_target(box: Box) -> tuple[float, float, float]:
    """(top, left, side) -> what the network predicts: (centre row, centre col, log side)."""
    top, left, side = box
    return top + side / 2, left + side / 2, float(torch.log(torch.tensor(side)))


def target_to_box(target: torch.Tensor) -> torch.Tensor:
    """(B, 3) predictions -> (B, 3) boxes (top, left, side)."""
    side = target[:, 2].exp()
    return torch.stack([target[:, 0] - side / 2, target[:, 1] - side / 2, side], dim=1)


@dataclass(frozen=True)
class FaceLocatorConfig:
    resolution: int = 96
    channels: tuple[int, ...] = (16, 32, 64, 96, 128)

    def __post_init__(self):
        _tuple_fields(self)
        if self.resolution % 2 ** len(self.channels):
            raise ValueError(f"resolution {self.resolution} must be divisible by "
                             f"2**{len(self.channels)}.")


class FaceLocator(nn.Module, SafeHubMixin):
    """(B, 1, R, R) sketch, 1 = paper -> (B, 3): centre row, centre column (fractions of
    the side) and log side of the face's training-framed box. `locate` gives the box."""

    def __init__(self, config: FaceLocatorConfig):
        super().__init__()
        self.config = config
        layers, cin = [], 1
        for cout in config.channels:
            layers += [nn.Conv2d(cin, cout, 4, 2, 1), nn.GroupNorm(min(8, cout), cout),
                       nn.LeakyReLU(0.2)]
            cin = cout
        self.features = nn.Sequential(*layers)
        bottom = config.resolution // 2 ** len(config.channels)
        # Flattened, not pooled: where things are is the whole question.
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(cin * bottom**2, 128),
                                  nn.LeakyReLU(0.2), nn.Linear(128, 3))

    def forward(self, sketch: torch.Tensor) -> torch.Tensor:
        return self.head(self.features((sketch - 0.5) / 0.5))

    @torch.no_grad()
    def locate(self, sketch: torch.Tensor) -> torch.Tensor:
        """(B, 1, R, R) -> (B, 3) boxes (top, left, side) in fractions of the input."""
        return target_to_box(self(sketch))


# A located box is used only when plausible: its side 0.45-1.1 of the extent-framed crop
# (a whole head's face is about 0.7 of it) and its centre inside the crop's middle; and
# only when it moves the frame by more than MIN_CHANGE (of the side, or of the side's
# log): a drawing framed like the training faces keeps the extent framing exactly. At
# 0.03 the shipped locator moved 23 % of 300 tight val sketches (training-framed by
# definition), at 0.05 5.7 %, with the same gain on plain faces (eyes' miss 13.3 -> 9.7
# px median); at 0.07, 1.7 % and 10.5 px (`evaluation.evaluate_face_locator`).
MIN_SIDE, MAX_SIDE = 0.45, 1.1
CENTRE_RANGE = (0.15, 0.85)
MIN_CHANGE = 0.05


def refine_frame(frame: Box | None, found: Box) -> Box | None:
    """The crop on the drawing's padded square for the box `found` in the extent-framed
    crop `frame` (both (top, left, side) in fractions; frame None = the whole square), or
    None to keep `frame`: the box is implausible or changes too little."""
    top, left, side = found
    centre_row, centre_col = top + side / 2, left + side / 2
    if not (MIN_SIDE <= side <= MAX_SIDE and CENTRE_RANGE[0] <= centre_row <= CENTRE_RANGE[1]
            and CENTRE_RANGE[0] <= centre_col <= CENTRE_RANGE[1]):
        return None
    moved = max(abs(centre_row - 0.5), abs(centre_col - 0.5), abs(math.log(side)))
    if moved < MIN_CHANGE:
        return None
    f_top, f_left, f_side = frame or (0.0, 0.0, 1.0)
    return f_top + top * f_side, f_left + left * f_side, side * f_side
