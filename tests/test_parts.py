"""Tests for s2a.parts (windows, refine per part, assembly, PartModel) and the per-part path
of s2a.pipeline, on the tiny seeded `tiny_part_weights` folder."""

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from s2a import Sketch2Anime
from s2a.models import SketchAutoencoder, SpatialGenerator, SpatialGeneratorConfig
from s2a.parts import (
    DEFAULT_WINDOWS,
    PART_NAMES,
    WINDOWED_PARTS,
    PartModel,
    PartWindow,
    assemble,
    blank_windows,
    check_part_refine,
    crop_part,
    scaled_windows,
    window_mask,
)
from s2a.projection import LatentBank
from tests.helpers import TINY_LATENT, TINY_RESOLUTION, face_sketch

R = TINY_RESOLUTION


@pytest.fixture(scope="module")
def pipe(part_pipe) -> Sketch2Anime:
    return part_pipe


@pytest.fixture(scope="module")
def sketch() -> Image.Image:
    return face_sketch()


@pytest.fixture(scope="module")
def sketches(pipe, sketch) -> torch.Tensor:
    """(2, 1, R, R) framed sketches: the face and its mirror image."""
    framed, _ = pipe.framed_sketch_tensor(sketch)
    return torch.cat([framed, framed.flip(-1)])


def _outside(window: PartWindow) -> np.ndarray:
    """(R, R) bool: True outside `window`."""
    outside = np.ones((R, R), bool)
    outside[window.slices()] = False
    return outside


# ---------------------------------------------------------------- windows


def test_scaled_windows_at_96_px_are_the_defaults():
    assert scaled_windows(96, 8) == DEFAULT_WINDOWS
    assert scaled_windows(96) == DEFAULT_WINDOWS


@pytest.mark.parametrize("resolution", [24, 32, 64, 96, 100, 128, 256, 512])
@pytest.mark.parametrize("multiple", [1, 2, 4, 8, 16])
def test_scaled_windows_fit_and_are_mirror_symmetric(resolution, multiple):
    windows = scaled_windows(resolution, multiple)
    assert set(windows) == set(WINDOWED_PARTS)
    for name, window in windows.items():
        window.check(resolution, name)  # raises when it does not fit
        assert window.size % multiple == 0 and window.size >= multiple
    left, right = windows["left_eye"], windows["right_eye"]
    assert (left.top, left.size) == (right.top, right.size)
    assert resolution - (left.left + left.size) == right.left  # exact mirror images
    for name in ("nose", "mouth"):  # centred, to the half pixel an odd size leaves
        assert abs(2 * windows[name].left + windows[name].size - resolution) <= 1


@pytest.mark.parametrize("window", [PartWindow(-1, 0, 4), PartWindow(0, 30, 4),
                                    PartWindow(29, 0, 4), PartWindow(0, 0, 0)])
def test_window_that_does_not_fit_is_refused(window):
    with pytest.raises(ValueError, match="does not fit"):
        window.check(R, "nose")


# ---------------------------------------------------------------- refine per part


def test_one_refine_number_applies_to_every_part():
    assert check_part_refine(0.25) == dict.fromkeys(PART_NAMES, 0.25)
    assert check_part_refine(1) == dict.fromkeys(PART_NAMES, 1.0)
    assert check_part_refine(np.float32(0.5)) == dict.fromkeys(PART_NAMES, 0.5)
    assert all(type(v) is float for v in check_part_refine(np.int64(0)).values())


def test_refine_mapping_keeps_one_for_parts_not_named():
    values = check_part_refine({"left_eye": 0.0, "mouth": np.float64(0.5)})
    assert values == {"left_eye": 0.0, "right_eye": 1.0, "nose": 1.0, "mouth": 0.5,
                      "rest": 1.0}
    assert check_part_refine({}) == dict.fromkeys(PART_NAMES, 1.0)


@pytest.mark.parametrize("refine, message", [
    ({"ear": 0.5}, "Unknown face part"),
    ({"nose": 0.5, "Nose": 0.5}, "Unknown face part"),
    ({1: 0.5}, "Unknown face part"),
    (True, "must be a number"),
    ({"mouth": False}, "must be a number"),
    ("0.5", "must be a number"),
    (None, "must be a number"),
    ({"rest": None}, "must be a number"),
    (float("nan"), "between 0 and 1"),
    ({"left_eye": float("nan")}, "between 0 and 1"),
    (-0.1, "between 0 and 1"),
    (1.5, "between 0 and 1"),
    ({"right_eye": math.inf}, "between 0 and 1"),
])
def test_bad_refine_per_part_is_refused(refine, message):
    with pytest.raises(ValueError, match=message):
        check_part_refine(refine)


# ---------------------------------------------------------------- crops, blanks, masks


def test_crop_and_blank_windows():
    sketches = torch.rand(2, 1, R, R)
    window = PartWindow(3, 5, 8)
    assert torch.equal(crop_part(sketches, window), sketches[:, :, 3:11, 5:13])
    windows = {"nose": window, "mouth": PartWindow(20, 10, 6)}
    blanked = blank_windows(sketches, windows)
    outside = torch.from_numpy(_outside(window) & _outside(windows["mouth"]))
    assert torch.equal(blanked[:, :, outside], sketches[:, :, outside])
    assert (blanked[:, :, 3:11, 5:13] == 1.0).all() and (blanked[:, :, 20:26, 10:16] == 1.0).all()
    assert not torch.equal(blanked, sketches) and sketches.max() < 1.0  # the input is kept


def test_window_mask_ramps_over_the_feather():
    window = PartWindow(4, 6, 12)
    mask = window_mask(window, R, 3)
    assert mask.shape == (R, R)
    assert (mask[torch.from_numpy(_outside(window))] == 0).all()
    assert (mask[7:13, 9:15] == 1).all()  # the core: the window less 3 px each side
    row = mask[10, 6:18]  # across the window through its core
    assert torch.allclose(row[:3], torch.tensor([0.25, 0.5, 0.75]))
    assert torch.equal(row, row.flip(0))  # the same ramp on both sides
    assert torch.equal(mask[4:16, 6:18], mask[4:16, 6:18].T)  # and down the columns
    assert mask[4, 6] == pytest.approx(0.25 ** 2)  # corners: both ramps


def test_window_mask_without_room_for_a_ramp_is_flat():
    window = PartWindow(0, 0, 6)
    assert (window_mask(window, R, 0)[:6, :6] == 1).all()
    assert (window_mask(window, R, 3)[:6, :6] == 1).all()  # 2 x feather >= size


# ---------------------------------------------------------------- assembly


def test_assemble_pastes_parts_into_the_rest():
    torch.manual_seed(0)
    windows = {"left_eye": PartWindow(2, 2, 10), "mouth": PartWindow(18, 16, 12)}
    rest = torch.rand(2, 1, R, R)
    parts = {n: torch.rand(2, 1, w.size, w.size) for n, w in windows.items()}
    out = assemble(rest, parts, windows, feather=2)
    outside = torch.from_numpy(_outside(windows["left_eye"]) & _outside(windows["mouth"]))
    assert torch.equal(out[:, :, outside], rest[:, :, outside])
    assert torch.equal(out[:, :, 4:10, 4:10], parts["left_eye"][:, :, 2:8, 2:8])  # cores
    assert torch.equal(out[:, :, 20:28, 18:26], parts["mouth"][:, :, 2:10, 2:10])
    # In the feather the part fades into the rest: between the two.
    edge, part_edge, rest_edge = out[:, :, 2, 6], parts["left_eye"][:, :, 0, 4], rest[:, :, 2, 6]
    assert ((edge >= torch.minimum(part_edge, rest_edge) - 1e-6)
            & (edge <= torch.maximum(part_edge, rest_edge) + 1e-6)).all()


def test_assemble_keeps_the_darker_stroke_where_windows_overlap():
    windows = {"left_eye": PartWindow(4, 4, 12), "nose": PartWindow(8, 8, 12)}
    rest = torch.ones(1, 1, R, R)
    parts = {n: torch.ones(1, 1, 12, 12) for n in windows}
    parts["left_eye"][0, 0, 8, 8] = 0.0  # at (12, 12): inside both windows' cores
    parts["nose"][0, 0, 5, 6] = 0.1  # at (13, 14)
    out = assemble(rest, parts, windows, feather=0)[0, 0]
    assert out[12, 12] == 0.0 and out[13, 14] == pytest.approx(0.1)
    assert out.sum() == pytest.approx(R * R - 1.0 - 0.9)  # paper everywhere else


# ---------------------------------------------------------------- PartModel


@pytest.fixture(scope="module")
def part_model(pipe) -> PartModel:
    return pipe.parts


def test_part_model_save_load_round_trip(part_model, sketches, tmp_path):
    part_model.save(tmp_path / "parts")
    assert json.loads((tmp_path / "parts" / "parts.json").read_text())["resolution"] == R
    loaded = PartModel.load(tmp_path / "parts", part_model.autoencoders["rest"])
    assert loaded.windows == part_model.windows and loaded.feather == part_model.feather
    assert len(loaded) == len(part_model)
    refine = check_part_refine({"left_eye": 0.3, "mouth": 0.0})
    for seed in (0, 7):
        a = part_model.project(sketches, refine, k=5, seed=seed, include=(2,), exclude=(4,))
        b = loaded.project(sketches, refine, k=5, seed=seed, include=(2,), exclude=(4,))
        assert torch.equal(a[0], b[0])
        assert all(torch.equal(a[1][n], b[1][n]) for n in PART_NAMES)
        assert a[2] == b[2]


def _parts_of(model: PartModel):
    return (dict(model.windows), {n: model.autoencoders[n] for n in WINDOWED_PARTS},
            dict(model.banks), model.autoencoders["rest"])


def _bank(rows: int, dim: int) -> LatentBank:
    return LatentBank(np.random.default_rng(3).standard_normal((rows, dim)).astype(np.float32))


def test_refine_map_gives_each_window_its_part_refine(part_model):
    refine = check_part_refine({"left_eye": 0.0, "right_eye": 0.25, "nose": 0.5, "mouth": 0.75,
                                "rest": 1.0})
    values = part_model.refine_map(refine)
    assert values.shape == (R, R) and 0.0 <= values.min() and values.max() <= 1.0
    for name, window in part_model.windows.items():
        rows, cols = window.slices()
        centre = values[(rows.start + rows.stop) // 2, (cols.start + cols.stop) // 2]
        inside_only_this = window_mask(window, R, part_model.feather) == 1.0
        for other, w in part_model.windows.items():
            if other != name:
                inside_only_this &= window_mask(w, R, part_model.feather) == 0.0
        assert torch.allclose(values[inside_only_this], torch.tensor(refine[name])), name
        assert 0.0 <= centre <= 1.0
    outside = part_model.windows_mask() == 0.0
    assert values[outside].eq(1.0).all()
    assert part_model.refine_map(check_part_refine(0.4)).sub(0.4).abs().max() < 1e-6


def test_part_model_rejects_banks_of_different_sizes(part_model):
    windows, autoencoders, banks, rest = _parts_of(part_model)
    banks["nose"] = _bank(len(part_model) - 1, banks["nose"].dim)
    with pytest.raises(ValueError, match="different numbers"):
        PartModel(windows, autoencoders, banks, rest)


@pytest.mark.parametrize("name", ["mouth", "rest"])
def test_part_model_rejects_a_bank_that_does_not_fit_its_autoencoder(part_model, name):
    windows, autoencoders, banks, rest = _parts_of(part_model)
    banks[name] = _bank(len(part_model), banks[name].dim + 1)
    with pytest.raises(ValueError, match=f"The {name} bank's latents"):
        PartModel(windows, autoencoders, banks, rest)


def test_part_model_rejects_a_window_of_another_size(part_model):
    windows, autoencoders, banks, rest = _parts_of(part_model)
    eye = windows["left_eye"]
    windows["left_eye"] = PartWindow(eye.top, eye.left, eye.size + 2)
    with pytest.raises(ValueError, match="left_eye autoencoder is a"):
        PartModel(windows, autoencoders, banks, rest)
    windows["left_eye"] = PartWindow(R - eye.size + 1, eye.left, eye.size)
    with pytest.raises(ValueError, match="does not fit"):
        PartModel(windows, autoencoders, banks, rest)


def test_part_model_rejects_missing_parts(part_model):
    windows, autoencoders, banks, rest = _parts_of(part_model)
    del autoencoders["nose"], banks["rest"]
    with pytest.raises(ValueError, match="lacks nose, rest"):
        PartModel(windows, autoencoders, banks, rest)


def _broken_copy(tiny_part_weights, tmp_path, breaks) -> Path:
    folder = tmp_path / "parts"
    shutil.copytree(Path(tiny_part_weights) / "parts", folder)
    breaks(folder)
    return folder


@pytest.mark.parametrize("breaks, message", [
    (lambda f: (f / "parts.json").unlink(), "parts.json is missing"),
    (lambda f: (f / "parts.json").write_text('{"windows": {"nose": [1, 2, 3]}}'),
     "not a valid part description"),
    (lambda f: (f / "parts.json").write_text(
        (f / "parts.json").read_text().replace(f'"resolution": {R}', '"resolution": 64')),
     "for 64 px faces"),
    (lambda f: (f / "nose" / "autoencoder" / "config.json").unlink(), "No nose autoencoder"),
    (lambda f: shutil.rmtree(f / "rest" / "bank"), "No latent bank"),
])
def test_part_model_load_rejects_broken_folders(tiny_part_weights, tmp_path, breaks, message):
    folder = _broken_copy(tiny_part_weights, tmp_path, breaks)
    rest = SketchAutoencoder.from_pretrained(Path(tiny_part_weights) / "autoencoder")
    with pytest.raises(ValueError, match=message):
        PartModel.load(folder, rest)


# ---------------------------------------------------------------- the pipeline, per part


def test_a_refine_per_part_runs_the_per_part_model(pipe, whole_pipe, sketch):
    assert pipe.parts is not None
    out = pipe(sketch, refine={"nose": 0.5}, upscale=False)
    assert set(out.part_neighbors) == set(PART_NAMES)
    assert out.neighbors == out.part_neighbors["rest"]
    same = pipe(sketch, refine=dict.fromkeys(PART_NAMES, 1.0), upscale=False)
    forced = pipe(sketch, upscale=False, per_part=True)
    assert same.projected_sketch.tobytes() == forced.projected_sketch.tobytes()
    assert same.image.tobytes() == forced.image.tobytes()
    # One number (the default) is the whole-face model, as without parts/.
    plain, whole = pipe(sketch, upscale=False), whole_pipe(sketch, upscale=False)
    assert plain.part_neighbors is None
    assert plain.image.tobytes() == whole.image.tobytes()


def test_per_part_false_is_the_whole_face_path(pipe, whole_pipe, sketch):
    out = pipe(sketch, refine=0.5, upscale=False, per_part=False)
    assert out.part_neighbors is None
    whole = whole_pipe(sketch, refine=0.5, upscale=False)  # the same folder without parts/
    assert out.neighbors == whole.neighbors
    assert out.image.tobytes() == whole.image.tobytes()
    assert out.projected_sketch.tobytes() == whole.projected_sketch.tobytes()
    per_part = pipe(sketch, refine=0.5, upscale=False, per_part=True)
    assert per_part.projected_sketch.tobytes() != out.projected_sketch.tobytes()


def test_whole_face_weights_refuse_a_refine_per_part(whole_pipe, sketch):
    assert whole_pipe.parts is None
    with pytest.raises(ValueError, match="refine per face part needs the per-part model"):
        whole_pipe(sketch, refine={"mouth": 0.5}, upscale=False)
    with pytest.raises(ValueError, match="no per-part model"):
        whole_pipe(sketch, upscale=False, per_part=True)
    assert whole_pipe(sketch, upscale=False, per_part=False).part_neighbors is None


def test_refine_per_part_with_per_part_false_is_refused(pipe, sketch):
    with pytest.raises(ValueError, match="refine per face part needs the per-part model"):
        pipe(sketch, refine={"mouth": 0.5}, upscale=False, per_part=False)


@pytest.mark.parametrize("per_part", ["yes", 1, 0.0])
def test_per_part_must_be_a_bool_or_none(pipe, sketch, per_part):
    with pytest.raises(ValueError, match="per_part must be"):
        pipe(sketch, upscale=False, per_part=per_part)


@pytest.mark.parametrize("refine", [{"ear": 0.5}, {"nose": 2.0}, {"rest": True}])
def test_bad_refine_per_part_is_refused_by_the_pipeline(pipe, sketch, refine):
    with pytest.raises(ValueError, match="refine"):
        pipe(sketch, refine=refine, upscale=False)


def test_refine_mapping_defaults_to_one(pipe, sketch):
    plain = pipe(sketch, upscale=False, per_part=True)
    named = pipe(sketch, refine={"mouth": 1.0}, upscale=False)
    assert named.projected_sketch.tobytes() == plain.projected_sketch.tobytes()
    one_number = pipe(sketch, refine=0.5, upscale=False, per_part=True)
    mapping = pipe(sketch, refine=dict.fromkeys(PART_NAMES, 0.5), upscale=False)
    assert one_number.projected_sketch.tobytes() == mapping.projected_sketch.tobytes()
    assert one_number.image.tobytes() == mapping.image.tobytes()


def test_left_eye_refine_changes_only_the_left_eye_window(pipe, sketch, sketches):
    eye = pipe.parts.windows["left_eye"]
    outside = _outside(eye)
    base = check_part_refine(1.0)
    moved = check_part_refine({"left_eye": 0.0})
    a, decoded_a, _ = pipe.parts.project(sketches, base, k=10, seed=0)
    b, decoded_b, _ = pipe.parts.project(sketches, moved, k=10, seed=0)
    difference = (a - b).abs()[:, 0]  # (2, R, R)
    assert (difference[:, torch.from_numpy(outside)] == 0).all()  # exactly: pasted parts
    assert difference.amax(dim=(1, 2)).min() > 0  # and the eye did change, for both items
    assert all(torch.equal(decoded_a[n], decoded_b[n]) for n in PART_NAMES if n != "left_eye")
    # The same through the public call, on the projected sketch it returns.
    before = np.asarray(pipe(sketch, upscale=False, per_part=True).projected_sketch, np.int16)
    after = np.asarray(pipe(sketch, refine={"left_eye": 0.0}, upscale=False).projected_sketch,
                       np.int16)
    assert (before[outside] == after[outside]).all()
    assert (before != after).any()


@pytest.mark.parametrize("k", [1, 5, 10])
def test_neighbours_of_every_part_sum_to_one(pipe, sketch, k):
    out = pipe(sketch, refine={"nose": 0.2}, k=k, seed=3, upscale=False)
    for name in PART_NAMES:
        neighbours = out.part_neighbors[name]
        assert len(neighbours) == k and len({i for i, _ in neighbours}) == k
        for index, weight in neighbours:
            assert type(index) is int and 0 <= index < len(pipe.bank)
            assert type(weight) is float and math.isfinite(weight)
        assert sum(w for _, w in neighbours) == pytest.approx(1.0, abs=1e-4)


def test_pins_and_drops_apply_to_every_part(pipe, sketch):
    free = pipe(sketch, k=5, upscale=False, per_part=True).part_neighbors
    dropped = free["nose"][0][0]  # the nose's nearest, dropped from every part
    pinned = next(i for i in range(len(pipe.bank))
                  if all(i not in {j for j, _ in free[n]} for n in PART_NAMES))
    out = pipe(sketch, k=5, include=(pinned,), exclude=(dropped,), upscale=False,
               per_part=True)
    for name in PART_NAMES:
        indices = [i for i, _ in out.part_neighbors[name]]
        assert pinned in indices and dropped not in indices and len(indices) == 5


def test_old_calls_keep_working(pipe, whole_pipe, sketch):
    for p in (pipe, whole_pipe):
        out = p(sketch)
        assert out.image.mode == "RGB" and out.image.size[0] >= p.resolution
        half = p(sketch, refine=0.5, upscale=False)
        assert half.projected_sketch.size == (R, R)
        assert sum(w for _, w in half.neighbors) == pytest.approx(1.0, abs=1e-4)


def test_parts_that_do_not_fit_the_whole_face_model_are_refused(pipe):
    windows, autoencoders, banks, rest = _parts_of(pipe.parts)
    banks = {n: _bank(len(pipe.bank) - 1, bank.dim) for n, bank in banks.items()}
    parts = PartModel(windows, autoencoders, banks, rest)
    with pytest.raises(ValueError, match="does not fit the whole-face model"):
        Sketch2Anime(pipe.autoencoder, pipe.generator, pipe.bank, parts=parts)


def test_windows_mask_covers_the_windows_only(tiny_part_weights):
    pipe = Sketch2Anime.from_pretrained(tiny_part_weights)
    mask = pipe.parts.windows_mask()
    assert mask.shape == (pipe.resolution, pipe.resolution)
    inside = torch.zeros_like(mask, dtype=torch.bool)
    for window in pipe.parts.windows.values():
        rows, cols = window.slices()
        inside[rows, cols] = True
        centre = (window.top + window.size // 2, window.left + window.size // 2)
        assert mask[centre] == 1.0
    assert torch.all(mask[~inside] == 0) and torch.all(mask[inside] > 0)


def test_bundled_weights_hold_a_per_part_model_within_budget():
    """Issue 15's budget: all of weights/ within 80 MB, the parts at the default windows
    and banks of the same training sketches as the whole-face bank."""
    from s2a.hub import BUNDLED_WEIGHTS

    total = sum(f.stat().st_size for f in BUNDLED_WEIGHTS.rglob("*") if f.is_file())
    assert total <= 80e6
    pipe = Sketch2Anime.from_pretrained()
    assert pipe.parts is not None and len(pipe.parts) == len(pipe.bank)
    assert pipe.parts.windows == DEFAULT_WINDOWS


def test_the_part_model_loads_on_first_use(tiny_part_weights, sketch):
    """Its banks cost memory that one-number calls never need."""
    pipe = Sketch2Anime.from_pretrained(tiny_part_weights)
    assert pipe.has_parts and pipe._parts is None
    pipe(sketch, upscale=False)
    assert pipe._parts is None  # the whole-face model ran
    assert pipe(sketch, refine={"nose": 0.5}, upscale=False).part_neighbors is not None
    assert pipe._parts is not None and pipe.parts is pipe._parts


def test_a_broken_part_folder_is_a_clear_error_on_first_use(tiny_part_weights, tmp_path, sketch):
    folder = tmp_path / "weights"
    shutil.copytree(tiny_part_weights, folder)
    (folder / "parts" / "parts.json").unlink()
    from s2a.manifest import write_manifest

    write_manifest(folder)  # a folder exported this way: its manifest agrees
    pipe = Sketch2Anime.from_pretrained(folder)
    assert pipe(sketch, upscale=False).part_neighbors is None
    with pytest.raises(ValueError, match="parts.json"):
        pipe(sketch, refine={"nose": 0.5}, upscale=False)


def test_a_tracing_generator_traces_each_window_by_its_part_refine(pipe, sketch):
    """Per-part calls with a generator that traces the drawing: the sketch the synthesis
    reads is the drawing where the part's refine is 0, the assembly/decoding where it is 1."""
    torch.manual_seed(0)
    generator = SpatialGenerator(SpatialGeneratorConfig(
        resolution=R, latent_dim=TINY_LATENT, map_channels=(8, 16), channels=(8, 16),
        residual_blocks=1, traces_sketch=True)).eval()
    tracing = Sketch2Anime(pipe.autoencoder, generator, pipe.bank, parts=pipe.parts)
    traced_sketches = []
    synthesise = generator.synthesise
    generator.synthesise = lambda maps, hints: (traced_sketches.append(maps[0].clone()),
                                                synthesise(maps, hints))[1]
    drawn, _ = tracing.framed_sketch_tensor(sketch)
    tracing(sketch, refine=dict.fromkeys(PART_NAMES, 0.0), upscale=False)
    torch.testing.assert_close(traced_sketches[-1], drawn)  # refine 0: the drawing only
    tracing(sketch, refine={"mouth": 0.0}, upscale=False)  # the others at 1
    mouth = window_mask(pipe.parts.windows["mouth"], R, pipe.parts.feather) == 1.0
    for name, window in pipe.parts.windows.items():
        if name != "mouth":
            mouth &= window_mask(window, R, pipe.parts.feather) == 0.0
    assert mouth.any()
    torch.testing.assert_close(traced_sketches[-1][0, 0][mouth], drawn[0, 0][mouth])
    assert not torch.allclose(traced_sketches[-1][0, 0][~mouth], drawn[0, 0][~mouth])


def test_a_part_slider_leaves_the_faces_overall_latent_alone(pipe, sketches):
    """The whole-face encoder (the latent the face's feature maps come from) reads the
    parts at "rest"'s refine: moving one part's slider acts on its window only."""
    read = []
    encode = pipe.autoencoder.encode

    def recording(sketch):
        read.append(sketch.clone())
        return encode(sketch)

    hints = torch.zeros(len(sketches), 4, R, R)
    try:
        pipe.autoencoder.encode = recording
        pipe.generate_parts(sketches, hints, check_part_refine(1.0))
        _, moved, _ = pipe.generate_parts(sketches, hints, check_part_refine({"left_eye": 0.0}))
        pipe.generate_parts(sketches, hints, check_part_refine({"rest": 0.0}))
    finally:
        del pipe.autoencoder.encode
    # "rest" is projected with this encoder too: each call reads its blanked drawing
    # first, then the assembled sketch for the face.
    assert len(read) == 6
    whole = read[1::2]
    torch.testing.assert_close(whole[1], whole[0])  # the eye's slider: the same latent
    assert not torch.equal(moved, whole[1])  # though the assembled sketch has its eye
    assert not torch.allclose(whole[2], whole[0])  # "rest"'s slider: another latent
