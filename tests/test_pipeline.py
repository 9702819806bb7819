"""Tests for s2a.pipeline: the public Sketch2Anime API on a tiny seeded weights folder."""

import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from s2a import GenerationResult, Sketch2Anime
from s2a.sketch import normalize_sketch
from tests.helpers import TINY_RESOLUTION, face_sketch

R = TINY_RESOLUTION


@pytest.fixture(scope="module")
def pipe(tiny_weights) -> Sketch2Anime:
    return Sketch2Anime.from_pretrained(tiny_weights)


@pytest.fixture(scope="module")
def sketch() -> Image.Image:
    return face_sketch()


def _pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


def _red_hints(size: tuple[int, int], box: tuple[int, int, int, int] | None = None) -> Image.Image:
    """A transparent RGBA layer with a red rectangle (the whole layer when box is None)."""
    hints = Image.new("RGBA", size, (0, 0, 0, 0))
    hints.paste((255, 0, 0, 255), box or (0, 0, *size))
    return hints


# ---------------------------------------------------------------- the basic call


def test_from_pretrained_resolution(pipe):
    assert pipe.resolution == R
    assert isinstance(pipe.resolution, int)


def test_call_returns_images_and_neighbours(pipe, sketch):
    out = pipe(sketch, upscale=False)
    assert isinstance(out, GenerationResult)
    assert isinstance(out.image, Image.Image)
    assert out.image.mode == "RGB" and out.image.size == (R, R)
    assert isinstance(out.projected_sketch, Image.Image)
    assert out.projected_sketch.mode == "L" and out.projected_sketch.size == (R, R)
    assert isinstance(out.neighbors, list) and len(out.neighbors) == 10
    for index, weight in out.neighbors:
        assert type(index) is int and 0 <= index < len(pipe.bank)
        assert type(weight) is float and math.isfinite(weight)
    assert len({i for i, _ in out.neighbors}) == 10
    assert sum(w for _, w in out.neighbors) == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize("k", [1, 3])
def test_k_sets_the_number_of_neighbours(pipe, sketch, k):
    out = pipe(sketch, k=k)
    assert len(out.neighbors) == k
    assert sum(w for _, w in out.neighbors) == pytest.approx(1.0, abs=1e-4)


def test_k_larger_than_bank_is_clamped(pipe, sketch):
    out = pipe(sketch, k=64)  # the tiny bank holds 40 latents
    assert len(out.neighbors) == len(pipe.bank) == 40


def test_call_is_deterministic(pipe, sketch):
    a = pipe(sketch, refine=0.7, k=5, seed=3)
    b = pipe(sketch, refine=0.7, k=5, seed=3)
    assert np.array_equal(_pixels(a.image), _pixels(b.image))
    assert np.array_equal(_pixels(a.projected_sketch), _pixels(b.projected_sketch))
    assert a.neighbors == b.neighbors


def test_seed_changes_weights_not_indices(pipe, sketch):
    plain = pipe(sketch, k=5, seed=0)
    varied = pipe(sketch, k=5, seed=1)
    other = pipe(sketch, k=5, seed=2)
    indices = [i for i, _ in plain.neighbors]
    assert [i for i, _ in varied.neighbors] == indices
    assert [i for i, _ in other.neighbors] == indices
    weights = np.array([[w for _, w in out.neighbors] for out in (plain, varied, other)])
    assert np.abs(weights[0] - weights[1]).max() > 1e-3
    assert np.abs(weights[1] - weights[2]).max() > 1e-3
    assert weights.sum(axis=1) == pytest.approx(np.ones(3), abs=1e-4)
    assert not np.array_equal(_pixels(plain.image), _pixels(varied.image))


def test_seed_zero_is_the_plain_projection(pipe, sketch):
    out = pipe(sketch, k=5, seed=0)
    x = torch.from_numpy(normalize_sketch(sketch, R))[None, None]  # (1, 1, R, R)
    with torch.no_grad():
        latent = pipe.autoencoder.encode(x)[0].numpy()  # (d,)
    projection = pipe.bank.project(latent, k=5)
    assert [i for i, _ in out.neighbors] == projection.indices.tolist()
    np.testing.assert_allclose([w for _, w in out.neighbors], projection.weights, atol=1e-6)


def test_refine_zero_uses_the_users_own_latent(pipe, sketch):
    a = pipe(sketch, refine=0.0, k=3, seed=0)
    b = pipe(sketch, refine=0.0, k=20, seed=7)
    assert np.array_equal(_pixels(a.image), _pixels(b.image))
    assert np.array_equal(_pixels(a.projected_sketch), _pixels(b.projected_sketch))
    assert a.neighbors != b.neighbors  # the neighbours are still reported


def test_refine_changes_the_output(pipe, sketch):
    own = pipe(sketch, refine=0.0)
    projected = pipe(sketch, refine=1.0)
    halfway = pipe(sketch, refine=0.5)
    assert not np.array_equal(_pixels(own.image), _pixels(projected.image))
    assert not np.array_equal(_pixels(own.projected_sketch), _pixels(projected.projected_sketch))
    assert not np.array_equal(_pixels(halfway.image), _pixels(projected.image))


def test_accepts_numpy_and_integer_arguments(pipe, sketch):
    a = pipe(sketch, refine=1, k=np.int64(4), seed=np.int64(0))
    b = pipe(sketch, refine=np.float32(1.0), k=4, seed=0)
    assert np.array_equal(_pixels(a.image), _pixels(b.image))
    assert len(a.neighbors) == 4


def test_sketch_mode_does_not_matter(pipe, sketch):
    grey = pipe(sketch)
    rgb = pipe(sketch.convert("RGB"))
    assert np.abs(_pixels(grey.image) - _pixels(rgb.image)).max() <= 1


# ---------------------------------------------------------------- hints


def test_hints_none_equals_empty_layer(pipe, sketch):
    none = pipe(sketch, hints=None)
    empty = pipe(sketch, hints=Image.new("RGBA", sketch.size, (0, 0, 0, 0)))
    assert np.array_equal(_pixels(none.image), _pixels(empty.image))


def test_hints_of_another_size_change_the_image(pipe, sketch):
    assert sketch.size == (256, 256)
    # The same region (an eighth to a half of each side) on layers of three sizes.
    layers = [_red_hints((n, n), (n // 8, n // 8, n // 2, n // 2)) for n in (16, 64, 512)]
    plain = pipe(sketch, upscale=False)
    outs = [pipe(sketch, hints=layer, upscale=False) for layer in layers]
    assert outs[0].image.size == (R, R)
    assert not np.array_equal(_pixels(plain.image), _pixels(outs[0].image))
    for out in outs[1:]:
        assert np.array_equal(_pixels(outs[0].image), _pixels(out.image))
    # Hints steer the colours, not the projection.
    assert outs[0].neighbors == plain.neighbors
    assert np.array_equal(_pixels(outs[0].projected_sketch), _pixels(plain.projected_sketch))


def test_non_square_sketch_pads_hints_like_the_sketch(pipe):
    wide = face_sketch(256).resize((256, 128))  # (w, h): padded to 256x256, 64 px above/below
    hints = _red_hints((64, 32))  # the whole frame red, a quarter of the sketch's size
    tensor = pipe.hints_tensor(hints, wide.size)  # (4, R, R)
    assert tensor.shape == (4, R, R)
    mask = tensor[3]
    band = R // 4  # the padding is a quarter of the square on each side
    assert mask[:band].sum() == 0 and mask[-band:].sum() == 0
    assert (mask[band:-band] == 1).all()
    torch.testing.assert_close(tensor[0, band:-band], torch.ones(R - 2 * band, R))
    assert tensor[1:3].abs().sum() == 0

    tall = wide.transpose(Image.Transpose.TRANSPOSE)  # 128 wide, 256 high
    tensor = pipe.hints_tensor(hints.transpose(Image.Transpose.TRANSPOSE), tall.size)
    assert tensor[3][:, :band].sum() == 0 and tensor[3][:, -band:].sum() == 0
    assert (tensor[3][:, band:-band] == 1).all()

    out = pipe(wide, hints=hints, upscale=False)
    assert out.image.size == (R, R) and out.image.mode == "RGB"
    assert not np.array_equal(_pixels(out.image), _pixels(pipe(wide, upscale=False).image))


def test_rgb_hint_image_is_refused(pipe, sketch):
    with pytest.raises(ValueError, match="RGBA"):
        pipe(sketch, hints=Image.new("RGB", sketch.size, (255, 0, 0)))


def test_hint_layer_that_is_not_an_image_is_refused(pipe, sketch):
    with pytest.raises(ValueError, match="hint layer"):
        pipe(sketch, hints="red please")


# ---------------------------------------------------------------- argument validation


@pytest.mark.parametrize("refine", [-0.1, 1.5, float("nan"), "a", True, None, float("inf")])
def test_bad_refine_is_refused(pipe, sketch, refine):
    with pytest.raises(ValueError, match="refine"):
        pipe(sketch, refine=refine)


@pytest.mark.parametrize("k", [0, 65, 2.5, True, -1, "3", None])
def test_bad_k_is_refused(pipe, sketch, k):
    with pytest.raises(ValueError, match="k .*neighbours"):
        pipe(sketch, k=k)


@pytest.mark.parametrize("seed", [-1, 2**32, 1.5, True, "0"])
def test_bad_seed_is_refused(pipe, sketch, seed):
    with pytest.raises(ValueError, match="seed"):
        pipe(sketch, seed=seed)


def test_boundary_arguments_are_accepted(pipe, sketch):
    pipe(sketch, refine=0.0, k=1, seed=0)
    pipe(sketch, refine=1.0, k=64, seed=2**32 - 1)


@pytest.mark.parametrize(
    "canvas",
    [
        Image.new("L", (256, 256), 255),
        Image.new("RGB", (300, 200), (255, 255, 255)),
        Image.new("RGBA", (256, 256), (0, 0, 0, 0)),
    ],
    ids=["white", "white-rgb", "transparent"],
)
def test_empty_sketch_is_refused(pipe, canvas):
    with pytest.raises(ValueError, match="empty"):
        pipe(canvas)


@pytest.mark.parametrize("thing", ["sketch.png", None, 42, [[0, 255]]])
def test_non_image_is_refused(pipe, thing):
    with pytest.raises(ValueError, match="not an image"):
        pipe(thing)


def test_huge_image_is_refused(pipe):
    with pytest.raises(ValueError, match="too large"):
        pipe(Image.new("L", (5000, 5000), 255))


# ---------------------------------------------------------------- loading


def test_folder_without_generator_is_refused(tiny_weights, tmp_path):
    broken = tmp_path / "weights"
    shutil.copytree(tiny_weights, broken)
    shutil.rmtree(broken / "generator")
    with pytest.raises(ValueError, match="generator"):
        Sketch2Anime.from_pretrained(broken)


@pytest.mark.parametrize("source", ["no/such/weights", "./nowhere", "absolute"])
def test_missing_path_that_is_not_a_repo_id_is_refused(tmp_path, source):
    if source == "absolute":
        source = tmp_path / "missing"
    with pytest.raises(ValueError, match="(?i)no weights folder"):
        Sketch2Anime.from_pretrained(source)


def test_from_pretrained_accepts_a_path_object(tiny_weights, sketch, pipe):
    other = Sketch2Anime.from_pretrained(Path(tiny_weights))
    assert np.array_equal(_pixels(other(sketch).image), _pixels(pipe(sketch).image))


# ---------------------------------------------------------------- device, helpers, batching


def test_to_cpu_returns_the_pipeline(pipe, sketch):
    before = pipe(sketch)
    assert pipe.to("cpu") is pipe
    assert pipe.to(torch.device("cpu")) is pipe
    after = pipe(sketch)
    assert np.array_equal(_pixels(before.image), _pixels(after.image))


def test_decode_latents_gives_grey_sketches(pipe):
    sketches = pipe.decode_latents([0, 1])
    assert isinstance(sketches, list) and len(sketches) == 2
    for s in sketches:
        assert isinstance(s, Image.Image) and s.mode == "L" and s.size == (R, R)
    assert not np.array_equal(_pixels(sketches[0]), _pixels(sketches[1]))


def test_generate_matches_call(pipe, sketch):
    hints = _red_hints(sketch.size, (60, 60, 120, 100))
    other = face_sketch(128, brush=2)
    pairs = [(sketch, hints), (other, None)]
    singles = [pipe(s, hints=h, refine=0.8, k=4, seed=5, upscale=False) for s, h in pairs]

    sketches = torch.stack([torch.from_numpy(normalize_sketch(s, R)) for s, _ in pairs])
    hint_batch = torch.stack([pipe.hints_tensor(h, s.size) for s, h in pairs])  # (2, 4, R, R)
    images, latents, neighbors = pipe.generate(sketches[:, None], hint_batch, 0.8, 4, 5)
    assert images.shape == (2, 3, R, R)
    assert latents.shape == (2, pipe.bank.dim)
    assert not torch.equal(images[0], images[1])
    for i, single in enumerate(singles):
        expected = np.asarray(single.image, dtype=np.float32) / 255  # (R, R, 3)
        expected = torch.from_numpy(expected).permute(2, 0, 1)  # (3, R, R)
        assert (images[i] - expected).abs().max() <= 1 / 255 + 1e-6
        # A batch of two may differ from a batch of one in the last float bits only.
        assert [j for j, _ in neighbors[i]] == [j for j, _ in single.neighbors]
        np.testing.assert_allclose(
            [w for _, w in neighbors[i]], [w for _, w in single.neighbors], atol=1e-5
        )


def test_default_face_is_upscaled_and_its_size_discoverable(pipe, sketch):
    """upscale=True (the default) gives the upscaler's face at output_resolution >= 384."""
    raw = pipe(sketch, k=5, upscale=False)
    big = pipe(sketch, k=5)
    side = pipe.output_resolution
    assert side >= 384 and side % R == 0 and pipe.resolution == R
    assert big.image.size == (side, side) and big.image.mode == "RGB"
    assert raw.image.size == (R, R)
    assert big.neighbors == raw.neighbors
    # Shrunk back, the upscaled face is still the model's face (same colours, same layout).
    back = np.asarray(big.image.resize((R, R), Image.BOX), dtype=np.float32)
    assert np.abs(back - np.asarray(raw.image, dtype=np.float32)).mean() < 20


def test_upscale_must_be_a_bool(pipe, sketch):
    with pytest.raises(ValueError, match="upscale must be True or False"):
        pipe(sketch, upscale="yes")


def test_upscale_step_is_timed(pipe, sketch):
    with pipe.record_step_times() as times:
        pipe(sketch, k=5)
        pipe(sketch, k=5, upscale=False)
    assert len(times["upscale"]) == 1 and len(times["generator"]) == 2
