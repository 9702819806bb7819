"""Part keys (`s2a.part_keys`): each part's neighbours searched from the whole face's
decoded map, and the stage that builds them (`training.build_part_keys`)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from s2a.manifest import verify_manifest
from s2a.models import SketchAutoencoder
from s2a.part_keys import PartKeys, window_features
from s2a.parts import WINDOWED_PARTS, PartModel, read_part_windows
from s2a.projection import LatentBank
from training.build_part_keys import main as build_keys

LEVEL = 1  # 16 px maps of the tiny 32 px autoencoder


@pytest.fixture(scope="module")
def keyed_weights(tiny_part_weights, tmp_path_factory) -> Path:
    """`tiny_part_weights` with part keys built by the training stage."""
    folder = tmp_path_factory.mktemp("keyed") / "weights"
    shutil.copytree(tiny_part_weights, folder)
    assert build_keys(["--parts", str(folder / "parts"), "--bank", str(folder / "bank"),
                       "--autoencoder", str(folder / "autoencoder"), "--dims", "6",
                       "--level", str(LEVEL)]) == 0
    return folder


@pytest.fixture(scope="module")
def whole(keyed_weights) -> SketchAutoencoder:
    return SketchAutoencoder.from_pretrained(keyed_weights / "autoencoder").eval()


@pytest.fixture(scope="module")
def keyed_parts(keyed_weights, whole) -> PartModel:
    return PartModel.load(keyed_weights / "parts", whole)


def _sketches(n: int, resolution: int, seed: int = 0) -> torch.Tensor:
    """(n, 1, R, R) sparse random strokes on paper."""
    rng = np.random.default_rng(seed)
    ink = rng.random((n, 1, resolution, resolution)) < 0.1
    return torch.from_numpy(np.where(ink, 0.0, 1.0).astype(np.float32))


@pytest.mark.parametrize("level, size", [(0, 8), (1, 16), (2, 32)])
def test_decoded_map_has_the_size_of_its_level(whole, level, size):
    maps = whole.decoder_map(torch.zeros(3, whole.config.latent_dim), level)
    assert maps.shape[0] == 3 and maps.shape[-2:] == (size, size)


def test_a_level_beyond_the_decoder_is_refused(whole):
    with pytest.raises(ValueError, match="level must be 0-2"):
        whole.decoder_map(torch.zeros(1, whole.config.latent_dim), 3)


def test_window_features_crop_the_window_cells(keyed_parts):
    window = keyed_parts.windows["left_eye"]
    maps = torch.arange(2 * 4 * 16 * 16, dtype=torch.float32).view(2, 4, 16, 16)
    features = window_features(maps, window, 32)
    side = window.size // 2
    assert features.shape == (2, 4 * side * side)
    top, left = window.top // 2, window.left // 2
    expected = maps[:, :, top:top + side, left:left + side].flatten(1)
    assert torch.equal(features, expected)


def test_a_bank_latent_finds_its_own_row_by_its_keys(keyed_weights, keyed_parts, whole):
    # The keys of a bank row are what the bank holds (to int8 rounding), so each row's
    # nearest key is its own: the keys are read the same way at build and at query time.
    bank = LatentBank.load(keyed_weights / "bank")
    latents = torch.from_numpy(np.array(bank.latents))
    found = keyed_parts.keys.neighbors(whole, latents, keyed_parts.windows, 1)
    for name in WINDOWED_PARTS:
        own = (found[name][:, 0] == np.arange(len(bank))).mean()
        assert own > 0.9, name


def test_keys_are_saved_and_loaded_with_the_part_model(keyed_weights, keyed_parts, whole):
    part_dir = keyed_weights / "parts"
    assert (part_dir / "keys.json").is_file()
    for name in WINDOWED_PARTS:
        assert (part_dir / name / "keys" / "projection.safetensors").is_file()
        assert keyed_parts.keys.banks[name].dim == 6
    assert keyed_parts.keys.level == LEVEL and len(keyed_parts.keys) == len(keyed_parts)
    verify_manifest(keyed_weights)  # the stage rewrote the manifest


def test_part_model_without_keys_searches_its_own_banks(tiny_part_weights, whole):
    parts = PartModel.load(Path(tiny_part_weights) / "parts", whole)
    assert parts.keys is None
    assert parts.key_neighbors(_sketches(2, 32), 3) == {}


def test_windowed_parts_take_their_neighbours_from_the_keys(keyed_parts, whole):
    sketches = _sketches(4, 32)
    latents = whole.encode(sketches).detach()
    own, _, neighbours = keyed_parts.encode_and_project(sketches, 5, 0)
    expected = keyed_parts.keys.neighbors(whole, latents, keyed_parts.windows, 5,
                                          own=own, part_banks=keyed_parts.banks)
    for name in WINDOWED_PARTS:
        rows = np.array([[row for row, _ in item] for item in neighbours[name]])
        np.testing.assert_array_equal(rows, expected[name])
    # The rest keeps its own bank's search.
    rest = keyed_parts.banks["rest"].select(
        keyed_parts.autoencoders["rest"].encode(keyed_parts.inputs(sketches)["rest"]).detach().numpy(),
        5)
    np.testing.assert_array_equal(
        np.array([[row for row, _ in item] for item in neighbours["rest"]]), rest)


def test_pins_and_drops_reach_the_key_search(keyed_parts):
    _, _, neighbours = keyed_parts.encode_and_project(_sketches(3, 32), 4, 0,
                                                      include=(7,), exclude=(0, 1, 2))
    for name in WINDOWED_PARTS:
        for item in neighbours[name]:
            rows = [row for row, _ in item]
            assert 7 in rows and not {0, 1, 2} & set(rows)
            assert sum(w for _, w in item) == pytest.approx(1.0, abs=1e-4)


def test_projection_onto_given_rows_reconstructs_from_those_rows():
    rng = np.random.default_rng(0)
    bank = LatentBank(rng.standard_normal((30, 8)).astype(np.float32), metric="cosine")
    rows = np.array([[3, 4, 5], [10, 11, 12]])
    projection = bank.project(rng.standard_normal((2, 8)).astype(np.float32),
                              neighbor_rows=rows)
    np.testing.assert_array_equal(projection.indices, rows)
    expected = np.einsum("bk,bkd->bd", projection.weights, bank.latents[rows])
    np.testing.assert_allclose(projection.latent, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("rows, message", [
    (np.array([[0, 30]]), r"lie in \[0, 30\)"),
    (np.array([[0, 1], [2, 3]]), r"must be \(1, k\)"),
    (np.array([[0.5, 1.0]]), "whole numbers"),
])
def test_bad_given_rows_are_refused(rows, message):
    bank = LatentBank(np.ones((30, 4), np.float32))
    with pytest.raises(ValueError, match=message):
        bank.project(np.ones(4, np.float32), neighbor_rows=rows)


def test_keys_for_other_windows_are_a_clear_error(keyed_parts, whole):
    windows = dict(keyed_parts.windows)
    left = windows["left_eye"]
    windows["left_eye"] = type(left)(left.top, left.left, left.size // 2)
    with pytest.raises(ValueError, match="keys made for other windows"):
        keyed_parts.keys.keys(whole, torch.zeros(1, whole.config.latent_dim), windows)


def test_build_refuses_a_bank_of_other_sketches(tiny_part_weights, tmp_path, capsys):
    folder = tmp_path / "weights"
    shutil.copytree(tiny_part_weights, folder)
    LatentBank(np.ones((5, 16), np.float32)).save(tmp_path / "small_bank")
    code = build_keys(["--parts", str(folder / "parts"), "--bank", str(tmp_path / "small_bank"),
                       "--autoencoder", str(folder / "autoencoder")])
    assert code == 2
    assert "not built from the same training sketches" in capsys.readouterr().err
    assert not (folder / "parts" / "keys.json").exists()


def test_the_bundled_part_model_searches_by_keys():
    folder = Path(__file__).resolve().parents[1] / "weights"
    if not (folder / "parts" / "keys.json").is_file():
        pytest.skip("the bundled weights have no part keys")
    windows, _, _ = read_part_windows(folder / "parts")
    keys = PartKeys.load(folder / "parts", WINDOWED_PARTS)
    bank = LatentBank.load(folder / "bank")
    assert len(keys) == len(bank)
    whole = SketchAutoencoder.from_pretrained(folder / "autoencoder").eval()
    found = keys.neighbors(whole, torch.from_numpy(np.array(bank.latents[:20])), windows, 1)
    for name in WINDOWED_PARTS:
        assert (found[name][:, 0] == np.arange(20)).mean() >= 0.9, name


def test_the_own_latent_reranks_only_among_the_nearest_keys(keyed_parts, whole):
    latents = whole.encode(_sketches(3, 32, seed=2)).detach()
    own, _, _ = keyed_parts.encode_and_project(_sketches(3, 32, seed=2), 5, 0)
    keys = keyed_parts.keys
    plain = keys.neighbors(whole, latents, keyed_parts.windows, 5)
    saved = keys.own_weight
    try:
        keys.own_weight = 0.0  # no weight: the keys alone, even with own latents given
        assert all(np.array_equal(v, plain[n]) for n, v in keys.neighbors(
            whole, latents, keyed_parts.windows, 5, own=own, part_banks=keyed_parts.banks).items())
        keys.own_weight = 1e6  # all weight: the own latent's nearest of the key candidates
        heavy = keys.neighbors(whole, latents, keyed_parts.windows, 5, own=own,
                               part_banks=keyed_parts.banks)
    finally:
        keys.own_weight = saved
    for name in WINDOWED_PARTS:
        candidates = keys.banks[name].select(keys.keys(whole, latents, keyed_parts.windows)[name],
                                             min(100, len(keys)))
        bank = keyed_parts.banks[name].latents
        for item, rows in enumerate(candidates):
            cos = bank[rows] @ own[name][item] / (np.linalg.norm(bank[rows], axis=1)
                                                  * np.linalg.norm(own[name][item]))
            assert heavy[name][item, 0] == rows[np.argmax(cos)]


def test_best_rows_keep_the_pins_and_order_by_score():
    from s2a.part_keys import _best_rows

    rows = np.array([[5, 6, 7, 8]])
    score = np.array([[0.1, 0.9, 0.5, 0.7]])
    np.testing.assert_array_equal(_best_rows(rows, score, 2), [[6, 8]])
    np.testing.assert_array_equal(_best_rows(rows, score, 2, include=(5,)), [[6, 5]])


def test_a_negative_own_weight_is_refused(keyed_parts):
    keys = keyed_parts.keys
    with pytest.raises(ValueError, match="own_weight"):
        PartKeys({n: keys.directions[n].numpy() for n in keys.banks}, keys.banks, 1, -1.0)


def test_a_whole_sketch_rest_lends_its_latent_to_the_key_search(keyed_weights, keyed_parts,
                                                                 whole):
    # With the rest read from the whole sketch, the keys reuse the rest's latent instead of
    # encoding the sketch again: the neighbours must be the ones a fresh encode finds.
    bank = LatentBank.load(keyed_weights / "bank")
    banks = {**keyed_parts.banks, "rest": bank}
    parts = PartModel(keyed_parts.windows, {n: keyed_parts.autoencoders[n] for n in WINDOWED_PARTS},
                      banks, whole, keyed_parts.feather, keyed_parts.keys, rest="whole")
    sketches = _sketches(3, 32, seed=4)
    own, _, neighbours = parts.encode_and_project(sketches, 5, 0)
    expected = parts.keys.neighbors(whole, whole.encode(sketches).detach(), parts.windows, 5,
                                    own=own, part_banks=banks)
    for name in WINDOWED_PARTS:
        rows = np.array([[row for row, _ in item] for item in neighbours[name]])
        np.testing.assert_array_equal(rows, expected[name])
