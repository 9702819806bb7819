"""Pinned (include=) and dropped (exclude=) neighbours: the bank and the public API."""

import numpy as np
import pytest

from s2a import Sketch2Anime
from s2a.projection import LatentBank
from tests.helpers import face_sketch

D = 16


@pytest.fixture(scope="module")
def bank() -> LatentBank:
    return LatentBank(np.random.default_rng(0).standard_normal((60, D)).astype(np.float32))


@pytest.fixture(scope="module")
def query() -> np.ndarray:
    return np.random.default_rng(1).standard_normal(D).astype(np.float32)


def _distance_order(bank, query, rows) -> list[int]:
    distance = ((bank.latents[rows] - query) ** 2).sum(axis=1)
    return [int(rows[i]) for i in np.argsort(distance, kind="stable")]


def test_dropped_neighbours_are_replaced_by_the_next_nearest(bank, query):
    plain = bank.project(query, k=5)
    dropped = [int(plain.indices[0]), int(plain.indices[3])]
    proj = bank.project(query, k=5, exclude=dropped)
    assert len(proj.indices) == 5 and not set(dropped) & set(proj.indices.tolist())
    nearest7 = bank.project(query, k=7).indices.tolist()
    assert proj.indices.tolist() == [i for i in nearest7 if i not in dropped]
    assert abs(float(proj.weights.sum()) - 1.0) < 1e-5
    expected = proj.weights.astype(np.float64) @ bank.latents[proj.indices]
    np.testing.assert_allclose(proj.latent, expected, rtol=1e-5, atol=1e-6)


def test_pinned_neighbours_are_always_in_the_set(bank, query):
    far = int(bank.project(query, k=60).indices[-1])  # the farthest sketch of all
    proj = bank.project(query, k=5, include=[far])
    assert far in proj.indices.tolist() and len(proj.indices) == 5
    assert proj.indices.tolist() == _distance_order(bank, query, proj.indices)  # nearest first
    assert proj.indices.tolist()[:4] == bank.project(query, k=4).indices.tolist()
    assert abs(float(proj.weights.sum()) - 1.0) < 1e-5
    # Pins and drops together; as many pins as k.
    both = bank.project(query, k=3, include=[far, 7], exclude=[int(proj.indices[0])])
    assert {far, 7} <= set(both.indices.tolist())
    assert int(proj.indices[0]) not in both.indices.tolist()
    assert sorted(bank.project(query, k=2, include=(far, 7)).indices.tolist()) == sorted([far, 7])


def test_batch_and_single_agree_with_a_selection(bank):
    queries = np.random.default_rng(2).standard_normal((4, D)).astype(np.float32)
    batch = bank.project(queries, k=6, seed=3, include=[5], exclude=np.array([0, 1, 2]))
    for row, q in enumerate(queries):
        single = bank.project(q, k=6, seed=3, include=[5], exclude=np.array([0, 1, 2]))
        np.testing.assert_array_equal(batch.indices[row], single.indices)
        np.testing.assert_allclose(batch.weights[row], single.weights, rtol=1e-6)
        np.testing.assert_allclose(batch.latent[row], single.latent, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(batch.weights.sum(axis=1), 1.0, atol=1e-5)


def test_drops_shrink_k_to_what_is_left():
    small = LatentBank(np.random.default_rng(3).standard_normal((6, D)).astype(np.float32))
    proj = small.project(np.zeros(D, np.float32), k=10, exclude=[0, 1, 2, 3])
    assert sorted(proj.indices.tolist()) == [4, 5]
    assert abs(float(proj.weights.sum()) - 1.0) < 1e-5


def test_skip_same_with_a_drop(bank):
    own = bank.latents[9]
    proj = bank.project(own, k=4, skip_same=True, exclude=[int(bank.project(own, k=2,
                                                                             skip_same=True)
                                                               .indices[0])])
    assert 9 not in proj.indices.tolist() and len(proj.indices) == 4


@pytest.mark.parametrize("include, exclude, k, words", [
    ([60], (), 5, "no neighbour #60"),
    ((), [-1], 5, "no neighbour #-1"),
    ([1.5], (), 5, "whole bank indices"),
    ([True], (), 5, "whole bank indices"),
    (["3"], (), 5, "whole bank indices"),
    ("12", (), 5, "list of bank indices"),
    (7, (), 5, "list of bank indices"),
    ([3], [3], 5, "both pinned and dropped"),
    ([1, 2, 3], (), 2, "raise k to at least 3"),
    ((), range(60), 5, "All 60 bank sketches are dropped"),
])
def test_bad_selections_say_what_to_change(bank, query, include, exclude, k, words):
    with pytest.raises(ValueError, match=words):
        bank.project(query, k=k, include=include, exclude=exclude)


def test_whole_floats_and_duplicates_are_accepted(bank, query):
    proj = bank.project(query, k=4, include=[5.0, 5], exclude=(6, 6))
    assert 5 in proj.indices.tolist() and 6 not in proj.indices.tolist()


def test_pipeline_threads_the_selection_through(tiny_weights):
    pipe = Sketch2Anime.from_pretrained(tiny_weights)
    sketch = face_sketch()
    plain = pipe(sketch, k=5, upscale=False)
    first = plain.neighbors[0][0]
    dropped = pipe(sketch, k=5, upscale=False, exclude=[first])
    assert first not in [i for i, _ in dropped.neighbors] and len(dropped.neighbors) == 5
    assert sum(w for _, w in dropped.neighbors) == pytest.approx(1.0, abs=1e-5)
    far = [i for i in range(len(pipe.bank)) if i not in [j for j, _ in plain.neighbors]][-1]
    pinned = pipe(sketch, k=5, upscale=False, include=[far])
    assert far in [i for i, _ in pinned.neighbors]
    assert np.asarray(pinned.image).tolist() != np.asarray(plain.image).tolist()
    again = pipe(sketch, k=5, upscale=False, include=[far])
    assert np.array_equal(np.asarray(again.image), np.asarray(pinned.image))  # deterministic
    with pytest.raises(ValueError, match="no neighbour #999"):
        pipe(sketch, upscale=False, exclude=[999])
    with pytest.raises(ValueError, match="raise k"):
        pipe(sketch, k=1, upscale=False, include=[1, 2])
