"""Tests for s2a.projection: k-NN search, LLE projection, refine blend, persistence."""

import json

import faiss
import numpy as np
import pytest

from s2a.projection import (
    COARSE_MIN,
    INDEX_FILE,
    LATENTS_FILE,
    LENGTHS,
    META_FILE,
    LatentBank,
    Projection,
    lle_weights,
    refine_latent,
)

D = 16


def _random_latents(n: int, d: int = D, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)


def _clustered_latents(n: int, d: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(n, d) bank and (200, d) queries from the same mixture of 50 Gaussians.

    Latent banks are clumpy rather than isotropic; isotropic Gaussian data in d >= 16 is
    IVF's worst case and measures the index, not this module.
    """
    rng = np.random.default_rng(seed)
    centers = 4.0 * rng.standard_normal((50, d))  # (50, d)
    bank = centers[rng.integers(0, 50, n)] + rng.standard_normal((n, d))  # (n, d)
    queries = centers[rng.integers(0, 50, 200)] + rng.standard_normal((200, d))  # (200, d)
    return bank.astype(np.float32), queries.astype(np.float32)


def _brute_force(latents: np.ndarray, queries: np.ndarray, k: int):
    sq = ((queries[:, None, :] - latents[None, :, :]) ** 2).sum(-1)  # (B, N)
    order = np.argsort(sq, axis=1, kind="stable")[:, :k]  # (B, k)
    return np.take_along_axis(sq, order, axis=1), order


# ---------------------------------------------------------------- LLE weights / projection


def test_weights_sum_to_one_for_random_queries():
    bank = LatentBank(_random_latents(300))
    rng = np.random.default_rng(1)
    for _ in range(20):
        proj = bank.project(rng.standard_normal(D).astype(np.float32), k=10)
        assert isinstance(proj, Projection)
        assert proj.weights.shape == (10,) and proj.weights.dtype == np.float32
        assert proj.indices.shape == (10,) and proj.indices.dtype == np.int64
        assert proj.latent.shape == (D,) and proj.latent.dtype == np.float32
        assert abs(float(proj.weights.sum()) - 1.0) < 1e-5
        # The latent is the weighted sum of exactly the reported neighbours.
        expected = proj.weights.astype(np.float64) @ bank.latents[proj.indices]
        np.testing.assert_allclose(proj.latent, expected, rtol=1e-5, atol=1e-6)


def test_projection_is_frozen():
    proj = LatentBank(_random_latents(20)).project(_random_latents(1, seed=3)[0], k=5)
    with pytest.raises(AttributeError):
        proj.latent = np.zeros(D)


def test_bank_latent_projects_to_itself():
    bank = LatentBank(_random_latents(500))
    for row in (0, 17, 499):
        z = bank.latents[row]
        proj = bank.project(z, k=10)
        assert proj.indices[0] == row
        assert int(np.argmax(proj.weights)) == 0
        assert proj.weights[0] > 0.99
        # reg=1e-3 pulls a little weight onto the other neighbours: a few 1e-3 relative.
        rel = np.linalg.norm(proj.latent - z) / np.linalg.norm(z)
        assert rel < 5e-3
        # With a tiny ridge the reconstruction is exact up to float error.
        tight = bank.project(z, k=10, reg=1e-8)
        assert np.linalg.norm(tight.latent - z) / np.linalg.norm(z) < 1e-5


def test_point_in_convex_hull_of_neighbors_is_reproduced():
    rng = np.random.default_rng(2)
    k = 10
    background = rng.standard_normal((400, D))  # (400, D) near the origin
    cluster = 50.0 + 0.5 * rng.standard_normal((k, D))  # (k, D) far from everything else
    bank = LatentBank(np.concatenate([background, cluster]).astype(np.float32))
    cluster_rows = np.arange(400, 400 + k)
    for _ in range(5):
        w_true = rng.dirichlet(np.ones(k))  # (k,) convex weights
        z = (w_true @ bank.latents[cluster_rows]).astype(np.float32)  # (D,)
        proj = bank.project(z, k=k)
        assert set(proj.indices.tolist()) == set(cluster_rows.tolist())
        err = np.linalg.norm(proj.latent - z)
        nearest = np.sqrt(bank.search(z, 1)[0][0])
        assert err < 0.01 * nearest


def test_lle_weights_duplicates_equal_to_query_give_uniform_weights():
    z = np.ones(D, np.float32)
    w = lle_weights(z, np.tile(z, (4, 1)))  # all-zero Gram matrix
    np.testing.assert_allclose(w, np.full(4, 0.25), atol=1e-6)


def test_lle_weights_single_neighbor_and_bad_input():
    np.testing.assert_allclose(lle_weights(np.zeros(3), np.ones((1, 3))), [1.0])
    with pytest.raises(ValueError):
        lle_weights(np.zeros(3), np.ones((2, 4)))
    with pytest.raises(ValueError):
        lle_weights(np.zeros(3), np.ones((2, 3)), reg=-1.0)


# ---------------------------------------------------------------- refine


def test_refine_endpoints_and_range():
    rng = np.random.default_rng(4)
    z = rng.standard_normal(D).astype(np.float32)
    bank = LatentBank(_random_latents(200))
    projected = bank.project(z, k=10).latent
    np.testing.assert_array_equal(refine_latent(z, projected, 0.0), z)
    np.testing.assert_array_equal(refine_latent(z, projected, 1.0), projected)
    quarter = refine_latent(z, projected, 0.25)
    np.testing.assert_allclose(quarter, 0.25 * projected + 0.75 * z, rtol=1e-6, atol=1e-6)
    for bad in (-0.01, 1.01, float("nan")):
        with pytest.raises(ValueError):
            refine_latent(z, projected, bad)


# ---------------------------------------------------------------- search / validation


def test_flat_search_matches_brute_force():
    bank = LatentBank(_random_latents(1000), "auto")
    assert bank.index_type == "flat"
    assert len(bank) == 1000 and bank.dim == D and bank.latents.dtype == np.float32
    queries = _random_latents(30, seed=5)
    dist, idx = bank.search(queries, 7)
    assert dist.shape == idx.shape == (30, 7) and idx.dtype == np.int64
    ref_dist, ref_idx = _brute_force(bank.latents, queries, 7)
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_allclose(dist, ref_dist, rtol=1e-4, atol=1e-4)
    # A single (d,) query gives (k,) arrays equal to the batch's first row.
    d1, i1 = bank.search(queries[0], 7)
    assert d1.shape == i1.shape == (7,)
    np.testing.assert_array_equal(i1, idx[0])


def test_k_is_clamped_to_bank_size():
    bank = LatentBank(_random_latents(5))
    dist, idx = bank.search(_random_latents(1, seed=6)[0], 50)
    assert idx.shape == (5,)
    assert sorted(idx.tolist()) == [0, 1, 2, 3, 4]
    assert bank.project(_random_latents(1, seed=6)[0], k=50).weights.shape == (5,)
    with pytest.raises(ValueError):
        bank.search(np.zeros(D, np.float32), 0)


def test_wrong_dimension_raises():
    bank = LatentBank(_random_latents(20))
    with pytest.raises(ValueError, match="dimension"):
        bank.search(np.zeros(D + 1, np.float32), 3)
    with pytest.raises(ValueError, match="dimension"):
        bank.project(np.zeros((2, D - 1), np.float32))
    with pytest.raises(ValueError):
        bank.search(np.zeros((1, 1, D), np.float32), 3)
    with pytest.raises(ValueError):
        bank.search(np.full(D, np.nan, np.float32), 3)


@pytest.mark.parametrize(
    "latents",
    [
        np.array([[0.0, np.nan]], np.float32),
        np.array([[0.0, np.inf]], np.float32),
        np.zeros(4, np.float32),  # 1-D
        np.zeros((0, 4), np.float32),  # N = 0
        np.full((2, 4), 1e6, np.float32),  # overflows fp16 storage
    ],
)
def test_bad_latents_raise(latents):
    with pytest.raises(ValueError):
        LatentBank(latents)


def test_bad_index_type_raises():
    with pytest.raises(ValueError):
        LatentBank(_random_latents(10), "kdtree")


def test_latents_are_fp16_rounded_and_read_only():
    raw = _random_latents(50)
    bank = LatentBank(raw)
    np.testing.assert_array_equal(bank.latents, raw.astype(np.float16).astype(np.float32))
    with pytest.raises(ValueError):
        bank.latents[0, 0] = 1.0


@pytest.mark.parametrize("index_type", ["hnsw", "ivf"])
def test_approximate_index_recall_at_10(index_type):
    latents, queries = _clustered_latents(5000, D, seed=7)
    _, truth = LatentBank(latents, "flat").search(queries, 10)  # (200, 10)
    bank = LatentBank(latents, index_type)
    assert bank.index_type == index_type
    _, found = bank.search(queries, 10)  # (200, 10)
    recall = np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth)])
    assert recall > 0.9


# ---------------------------------------------------------------- persistence


@pytest.mark.parametrize("storage", ["fp16", "int8"])
@pytest.mark.parametrize("index_type", ["flat", "hnsw", "ivf"])
def test_save_load_round_trip(tmp_path, index_type, storage):
    bank = LatentBank(_random_latents(2000, seed=8), index_type, reg=2e-3, storage=storage)
    queries = _random_latents(25, seed=9)
    before = bank.search(queries, 10)
    bank.save(tmp_path / "bank")
    for name in (LATENTS_FILE, META_FILE):
        assert (tmp_path / "bank" / name).is_file()
    # The exact flat index is rebuilt on load instead of stored twice.
    assert (tmp_path / "bank" / INDEX_FILE).is_file() == (index_type != "flat")
    meta = json.loads((tmp_path / "bank" / META_FILE).read_text())
    assert meta == {"N": 2000, "d": D, "index_type": index_type, "reg": 2e-3,
                    "storage": storage, "metric": "l2", "length": "affine"}

    loaded = LatentBank.load(tmp_path / "bank")
    assert loaded.index_type == index_type and loaded.reg == 2e-3
    assert loaded.storage == storage
    assert loaded.latents.dtype == np.float32
    np.testing.assert_array_equal(loaded.latents, bank.latents)
    after = loaded.search(queries, 10)
    np.testing.assert_array_equal(after[1], before[1])
    np.testing.assert_array_equal(after[0], before[0])
    p0, p1 = bank.project(queries[0]), loaded.project(queries[0])
    np.testing.assert_array_equal(p0.latent, p1.latent)


# ---------------------------------------------------------------- cosine ranking


def test_cosine_ranks_by_angle_not_length():
    rng = np.random.default_rng(12)
    latents = rng.standard_normal((50, D)).astype(np.float32)
    query = 0.1 * latents[7]  # same direction as row 7, far shorter (a sparse drawing)
    l2 = LatentBank(latents, "flat")
    cosine = LatentBank(latents, "flat", metric="cosine")
    assert cosine.neighbors(query, 1)[0] == 7
    assert l2.neighbors(query, 1)[0] != 7  # by length it is nearer to other short latents
    # The least squares still reconstructs from the raw latents: row 7 itself comes back.
    projected = cosine.project(cosine.latents[7], 5).latent
    assert np.linalg.norm(projected - cosine.latents[7]) < 0.01 * np.linalg.norm(latents[7])


@pytest.mark.parametrize("index_type", ["flat", "hnsw", "ivf"])
def test_cosine_search_matches_brute_force_on_unit_vectors(index_type):
    latents, queries = _clustered_latents(3000, D, seed=13)
    bank = LatentBank(latents, index_type, metric="cosine")
    unit = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)  # noqa: E731
    _, truth = _brute_force(unit(bank.latents), unit(queries), 10)
    _, found = bank.search(queries, 10)
    recall = np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth)])
    assert recall == 1.0 if index_type == "flat" else recall > 0.9


@pytest.mark.parametrize("index_type", ["flat", "hnsw"])
def test_cosine_metric_survives_save_and_load(tmp_path, index_type):
    bank = LatentBank(_random_latents(500, seed=14), index_type, metric="cosine")
    queries = _random_latents(20, seed=15)
    bank.save(tmp_path)
    assert json.loads((tmp_path / META_FILE).read_text())["metric"] == "cosine"
    loaded = LatentBank.load(tmp_path)
    assert loaded.metric == "cosine"
    np.testing.assert_array_equal(loaded.search(queries, 10)[1], bank.search(queries, 10)[1])


def test_bank_saved_without_a_metric_loads_as_l2(tmp_path):
    LatentBank(_random_latents(100, seed=16), "flat").save(tmp_path)
    meta = json.loads((tmp_path / META_FILE).read_text())
    del meta["metric"]  # as banks written before the option existed
    (tmp_path / META_FILE).write_text(json.dumps(meta))
    assert LatentBank.load(tmp_path).metric == "l2"


def test_unknown_metric_raises():
    with pytest.raises(ValueError, match="metric"):
        LatentBank(_random_latents(10), metric="manhattan")


# ---------------------------------------------------------------- projection length


def test_neighbours_length_keeps_the_mix_direction_at_its_neighbours_length():
    rng = np.random.default_rng(40)
    latents = rng.standard_normal((300, D)).astype(np.float32) * rng.uniform(1, 3, (300, 1))
    queries = 0.3 * rng.standard_normal((12, D)).astype(np.float32)  # short, as rough drawings
    affine = LatentBank(latents, "flat", metric="cosine")
    stretched = LatentBank(latents, "flat", metric="cosine", length="neighbours")
    plain, long = affine.project(queries, 8), stretched.project(queries, 8)
    np.testing.assert_array_equal(long.indices, plain.indices)
    np.testing.assert_allclose(long.weights, plain.weights)
    unit = lambda x: x / np.linalg.norm(x, axis=-1, keepdims=True)  # noqa: E731
    np.testing.assert_allclose(unit(long.latent), unit(plain.latent), atol=1e-5)
    lengths = np.linalg.norm(affine.latents[plain.indices], axis=-1)  # (12, 8)
    share = np.abs(plain.weights)
    expected = (share * lengths).sum(-1) / share.sum(-1)
    np.testing.assert_allclose(np.linalg.norm(long.latent, axis=-1), expected, rtol=1e-5)
    # The plain mix of these non-parallel neighbours is shorter than they are.
    assert (np.linalg.norm(plain.latent, axis=-1) < 0.8 * expected).all()


def test_neighbours_length_returns_a_bank_latent_unchanged():
    latents = _random_latents(100, seed=41)
    bank = LatentBank(latents, "flat", metric="cosine", length="neighbours")
    row = bank.latents[5]
    # The Gram ridge mixes in a little of the other neighbours.
    np.testing.assert_allclose(bank.project(row, 4).latent, row, atol=1e-2)


def test_length_survives_save_and_load_and_old_banks_stay_affine(tmp_path):
    bank = LatentBank(_random_latents(200, seed=42), "flat", length="neighbours")
    query = _random_latents(1, seed=43)[0]
    bank.save(tmp_path / "new")
    loaded = LatentBank.load(tmp_path / "new")
    assert loaded.length == "neighbours"
    np.testing.assert_array_equal(loaded.project(query, 6).latent, bank.project(query, 6).latent)
    meta = json.loads((tmp_path / "new" / META_FILE).read_text())
    del meta["length"]  # as banks written before the option existed
    (tmp_path / "new" / META_FILE).write_text(json.dumps(meta))
    assert LatentBank.load(tmp_path / "new").length == "affine"


def test_unknown_length_raises():
    assert LENGTHS == ("affine", "neighbours")
    with pytest.raises(ValueError, match="length"):
        LatentBank(_random_latents(10), length="unit")


def test_missing_index_file_is_rebuilt(tmp_path):
    bank = LatentBank(_random_latents(300, seed=10), "hnsw")
    bank.save(tmp_path)
    (tmp_path / INDEX_FILE).unlink()
    loaded = LatentBank.load(tmp_path)
    assert loaded.index.ntotal == 300 and loaded.index_type == "hnsw"
    queries = _random_latents(10, seed=11)
    np.testing.assert_array_equal(loaded.search(queries, 5)[1], bank.search(queries, 5)[1])


def test_index_with_wrong_ntotal_raises(tmp_path):
    latents = _random_latents(100, seed=12)
    LatentBank(latents, "flat").save(tmp_path)
    wrong = faiss.IndexFlatL2(D)
    wrong.add(latents[:60])
    faiss.write_index(wrong, str(tmp_path / INDEX_FILE))
    with pytest.raises(ValueError, match=INDEX_FILE):
        LatentBank.load(tmp_path)


def test_index_with_wrong_dimension_raises(tmp_path):
    LatentBank(_random_latents(100, seed=13), "flat").save(tmp_path)
    wrong = faiss.IndexFlatL2(D + 2)
    wrong.add(_random_latents(100, d=D + 2))
    faiss.write_index(wrong, str(tmp_path / INDEX_FILE))
    with pytest.raises(ValueError, match=INDEX_FILE):
        LatentBank.load(tmp_path)


def test_load_missing_folder_raises(tmp_path):
    with pytest.raises(FileNotFoundError):
        LatentBank.load(tmp_path / "nope")


def test_int8_storage_is_close_idempotent_and_half_the_size(tmp_path):
    latents = _random_latents(3000, seed=14) * 3.0
    small = LatentBank(latents, storage="int8")
    # Within half a quantisation step of the original values: span / 254 / 2 per dimension.
    step = (latents.max(0) - latents.min(0)) / 254.0
    assert (np.abs(small.latents - latents) <= step + 1e-6).all()
    again = LatentBank(small.latents, storage="int8")
    np.testing.assert_array_equal(again.latents, small.latents)
    small.save(tmp_path / "int8")
    LatentBank(latents, storage="fp16").save(tmp_path / "fp16")
    size = {name: (tmp_path / name / LATENTS_FILE).stat().st_size for name in ("int8", "fp16")}
    assert size["int8"] < 0.55 * size["fp16"]


def test_unknown_storage_raises():
    with pytest.raises(ValueError, match="storage"):
        LatentBank(_random_latents(10, seed=15), storage="int4")


@pytest.mark.parametrize("metric", ["cosine", "l2"])
def test_batched_projection_is_the_single_one_row_by_row(metric):
    """Stage-2 training projects batches; each row must equal the one-latent projection."""
    rng = np.random.default_rng(0)
    bank = LatentBank(rng.normal(size=(200, 16)).astype(np.float32), metric=metric)
    queries = rng.normal(size=(4, 16)).astype(np.float32)
    batched = bank.project(queries, k=5, seed=3)
    assert batched.latent.shape == (4, 16) and batched.indices.shape == (4, 5)
    for row, query in enumerate(queries):
        single = bank.project(query, k=5, seed=3)
        np.testing.assert_array_equal(batched.indices[row], single.indices)
        np.testing.assert_allclose(batched.weights[row], single.weights, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(batched.latent[row], single.latent, rtol=1e-5, atol=1e-5)


def test_skip_same_leaves_out_the_querys_own_bank_entry():
    """A training sketch is in the bank: skipping it must not just return it."""
    rng = np.random.default_rng(1)
    bank = LatentBank(rng.normal(size=(50, 8)).astype(np.float32))
    own = bank.latents[:2].copy()
    plain = bank.project(own, k=3)
    skipped = bank.project(own, k=3, skip_same=True)
    assert np.abs(plain.latent - own).max() < 5e-3  # finds itself
    assert (skipped.indices != np.arange(2)[:, None]).all()
    assert np.abs(skipped.latent - own).max() > 0.1
    np.testing.assert_allclose(skipped.weights.sum(axis=1), 1.0, atol=1e-5)


def test_seed_varies_the_weights_of_the_same_neighbours():
    rng = np.random.default_rng(2)
    bank = LatentBank(rng.normal(size=(100, 8)).astype(np.float32))
    query = rng.normal(size=8).astype(np.float32)
    plain, varied = bank.project(query, k=6), bank.project(query, k=6, seed=5)
    np.testing.assert_array_equal(plain.indices, varied.indices)
    assert not np.allclose(plain.weights, varied.weights)
    assert varied.weights.sum() == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("metric", ["l2", "cosine"])
def test_a_large_flat_bank_searches_in_two_passes_with_the_exact_result(metric):
    """From COARSE_MIN latents up, a flat bank scans an fp16 copy first and re-ranks its
    candidates exactly: the same neighbours, in the same order, as the plain flat index."""
    latents, queries = _clustered_latents(COARSE_MIN + 500, D, seed=21)
    bank = LatentBank(latents, "flat", metric=metric)
    assert bank._coarse is not None  # the two-pass search is what this test is about
    for k in (1, 10, 40):
        dist, idx = bank.search(queries, k)
        ref_dist, ref_idx = bank.index.search(bank._as_indexed(queries), k)
        np.testing.assert_array_equal(idx, ref_idx)
        np.testing.assert_allclose(dist, ref_dist, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(bank.neighbors(queries[3], 10), idx[3, :10])
    assert LatentBank(latents[:COARSE_MIN - 1], "flat")._coarse is None  # small: one pass
