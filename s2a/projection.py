"""Manifold projection: k-NN over the latent bank, then locally linear reconstruction.

A user's sketch latent ``z`` is replaced by the closest point on the local patch of the
manifold of training latents: find its k nearest bank latents, solve for the affine
weights (summing to 1) that best reconstruct ``z`` from them, as in locally linear
embedding, and blend the reconstruction back with ``z`` by the ``refine`` slider.

On disk a bank is a folder of files, none of them a pickle:

- ``bank_latents.safetensors``: with storage "fp16", tensor ``"latents"`` (N, d) float16;
  with storage "int8", ``"codes"`` (N, d) uint8 plus per-dimension ``"base"`` and
  ``"exponent"`` (int32), value = (base + code) * 2**exponent: half the size of fp16,
  which is what lets a 30k x 512 bank fit the weights budget;
- ``bank.faiss``: the FAISS index (``faiss.write_index``, FAISS's own binary format),
  written only for approximate indexes: an exact flat index is just the latents again
  (twice their fp16 size) and rebuilds in milliseconds;
- ``bank.json``: ``{"N", "d", "index_type", "reg", "storage", "metric", "length"}``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np
from safetensors.numpy import load_file, save_file

# Largest bank searched with an exact flat index under index_type="auto"; above it HNSW.
# An exact scan grows linearly with the bank and past this size would cost more than
# the rest of the pipeline's overhead budget (figures: README, "Speed and robustness").
FLAT_MAX = 50_000

# HNSW graph degree and search breadth, fixed at construction (and re-applied on load).
# efSearch=64 keeps recall@10 high at a fraction of a flat scan's cost.
HNSW_M = 32
HNSW_EF_SEARCH = 64

# IVF lists probed per query.
IVF_NPROBE = 16
# FAISS's k-means wants about this many training points per centroid; fewer gives
# degenerate lists, so small banks get fewer lists than the 4*sqrt(N) rule.
_IVF_MIN_POINTS_PER_LIST = 39
# k-means sees at most this many points per centroid (FAISS's own default cap).
_IVF_MAX_POINTS_PER_LIST = 256

DEFAULT_REG = 1e-3

# A flat bank this large is searched in two passes: a scan of an fp16 copy (half the
# memory to stream per query: the scan is memory-bound; 6.4 -> 3.7 ms p50 on the 2-core
# CPU at 29,915 x 512) for `_coarse_candidates(k)` candidates, then exact float32
# distances among them. The result is the exact search's unless a true neighbour falls
# out of the candidates, which fp16's 1e-3 relative error does not do in practice (500
# noisy queries on the bundled bank: the same neighbours in the same order every time).
COARSE_MIN = 4096

# How far a non-zero seed moves the neighbour weights towards a random mix of the same
# neighbours: variations stay on the local patch of professional sketches.
SEED_VARIATION = 0.35
# A bank latent this close in angle to the query is the query's own sketch (training
# sketches are in the bank; a user's never is), skipped with ``skip_same``.
SAME_SKETCH_COSINE = 0.9999
# Added to the Gram matrix's diagonal on top of the relative term, so a zero Gram
# matrix (all neighbours equal to z) still solves, giving uniform weights.
_GRAM_EPS = 1e-12

INDEX_TYPES = ("auto", "flat", "hnsw", "ivf")
# How neighbours are chosen. "cosine" ranks by angle (the index holds unit-length copies):
# a latent's length mostly says how much ink a sketch has, so by plain L2 a sparse or
# half-finished drawing finds sparse training sketches; by angle they look more like the
# drawing (evaluation.evaluate_autoencoder). The least squares always runs on the raw
# latents.
METRICS = ("l2", "cosine")
# How long the projection is. "affine": the plain mix sum_i w_i n_i. "neighbours": that mix
# rescaled to its neighbours' mean length (weighted by |w_i|). A mix of non-parallel
# latents is shorter than any of them, and a rough drawing's latent is short already
# (the completing encoder hedges: norm 53 against 75 for the clean sketch, 86 for bank
# latents), so the affine projection decodes to faint, partial strokes; at the
# neighbours' length it decodes to fuller lines. The shipped generator is trained on
# "affine"; a generator for "neighbours" must be trained on it (weights/README.md,
# "A projection at its neighbours' length").
LENGTHS = ("affine", "neighbours")
STORAGES = ("fp16", "int8")
LATENTS_FILE = "bank_latents.safetensors"
INDEX_FILE = "bank.faiss"
META_FILE = "bank.json"

_FP16_MAX = float(np.finfo(np.float16).max)


@dataclass(frozen=True)
class Projection:
    """Result of projecting a latent (or a batch) onto the bank's local manifold patch.

    Attributes:
        latent: (d,) float32, ``sum_i weights[i] * bank[indices[i]]``, rescaled to the
            neighbours' length when the bank's ``length`` is "neighbours"; (B, d) for a batch.
        indices: (k,) int64, bank rows of the k nearest neighbours, nearest first; (B, k).
        weights: (k,) float32, affine reconstruction weights; they sum to 1; (B, k).
    """

    latent: np.ndarray
    indices: np.ndarray
    weights: np.ndarray


def lle_weights(z: np.ndarray, neighbors: np.ndarray, reg: float = DEFAULT_REG) -> np.ndarray:
    """Affine weights that best reconstruct ``z`` from ``neighbors``.

    Solves ``min_w ||z - sum_i w_i n_i||^2`` subject to ``sum_i w_i = 1`` in the closed
    form of locally linear embedding: with ``G = (N - z)(N - z)^T`` regularised as
    ``G + (reg * trace(G) / k + eps) * I``, solve ``G w = 1`` and normalise ``w`` to sum 1.
    The regulariser keeps the solve well posed when k > d or neighbours are collinear;
    ``reg=0`` gives the exact least-squares solution where it is unique.

    Args:
        z: (d,) query latent, or (B, d) a batch.
        neighbors: (k, d) neighbour latents, k >= 1; (B, k, d) for a batch.
        reg: relative ridge on the Gram matrix, finite and >= 0.

    Returns:
        (k,) float32 weights summing to 1; (B, k) for a batch.
    """
    z = np.asarray(z, dtype=np.float64)
    neighbors = np.asarray(neighbors, dtype=np.float64)
    if z.ndim not in (1, 2):
        raise ValueError(f"z must be a latent of shape (d,) or (B, d), got shape {z.shape}.")
    if (neighbors.ndim != z.ndim + 1 or neighbors.shape[-2] < 1
            or neighbors.shape[-1] != z.shape[-1] or neighbors.shape[:-2] != z.shape[:-1]):
        raise ValueError(
            f"neighbors must have shape {(*z.shape[:-1], 'k', z.shape[-1])} with k >= 1, got "
            f"{neighbors.shape}."
        )
    if not (math.isfinite(reg) and reg >= 0):
        raise ValueError(f"reg must be a finite number >= 0, got {reg}.")
    if not (np.isfinite(z).all() and np.isfinite(neighbors).all()):
        raise ValueError("z and neighbors must be finite (no NaN or inf).")

    k = neighbors.shape[-2]
    diff = neighbors - z[..., None, :]  # (..., k, d)
    gram = diff @ np.swapaxes(diff, -1, -2)  # (..., k, k)
    ridge = reg * np.trace(gram, axis1=-2, axis2=-1) / k + _GRAM_EPS  # (...,)
    gram = gram + ridge[..., None, None] * np.eye(k)
    # Symmetric positive definite after the ridge, so a plain solve is stable.
    w = np.linalg.solve(gram, np.ones((*gram.shape[:-1], 1)))[..., 0]  # (..., k)
    w /= w.sum(axis=-1, keepdims=True)
    return w.astype(np.float32)


def vary_weights(weights: np.ndarray, seed: int) -> np.ndarray:
    """Seed 0: the weights unchanged; other seeds: blended with a random convex mix.

    ``weights`` is (k,) or (B, k); every row gets the same mix of its own neighbours.
    """
    if seed == 0:
        return weights
    mix = np.random.default_rng(seed).dirichlet(np.ones(weights.shape[-1]))  # (k,)
    varied = (1.0 - SEED_VARIATION) * weights + SEED_VARIATION * mix
    return (varied / varied.sum(axis=-1, keepdims=True)).astype(np.float32)


def at_neighbours_length(latent: np.ndarray, neighbors: np.ndarray,
                         weights: np.ndarray) -> np.ndarray:
    """(B, d) mixes rescaled to their (B, k, d) neighbours' mean length, weighted by |w|.

    A zero mix stays zero (it has no direction to stretch).
    """
    lengths = np.linalg.norm(neighbors, axis=-1)  # (B, k)
    share = np.abs(weights.astype(np.float64))  # (B, k)
    target = (share * lengths).sum(-1) / np.maximum(share.sum(-1), 1e-12)  # (B,)
    norms = np.linalg.norm(latent, axis=-1)  # (B,)
    scale = np.where(norms > 1e-12, target / np.maximum(norms, 1e-12), 1.0)
    return latent * scale[:, None]


def refine_latent(z: np.ndarray, projected: np.ndarray, refine: float) -> np.ndarray:
    """Blend the user's latent with its projection: ``refine * projected + (1 - refine) * z``.

    Args:
        z: (d,) the user's own latent.
        projected: (d,) its projection onto the bank's manifold.
        refine: in [0, 1]; 0 returns ``z`` unchanged, 1 returns ``projected``.

    Returns:
        (d,) float32 blended latent.
    """
    if not 0.0 <= refine <= 1.0:  # also rejects NaN
        raise ValueError(f"refine must be between 0 and 1, got {refine}.")
    z = np.asarray(z, dtype=np.float32)
    projected = np.asarray(projected, dtype=np.float32)
    if z.shape != projected.shape:
        raise ValueError(
            f"z and projected must have the same shape, got {z.shape} and {projected.shape}."
        )
    # The endpoints are returned as copies, not computed, so they are exact even when
    # the other operand holds huge values.
    if refine == 0.0:
        return z.copy()
    if refine == 1.0:
        return projected.copy()
    return (refine * projected + (1.0 - refine) * z).astype(np.float32)


class LatentBank:
    """The training latents (N, d) and a FAISS index over them (L2 or cosine ranking).

    Latents are held in memory as float32 but already rounded to the precision they are
    stored in on disk (``storage``: float16, or int8 codes on a per-dimension power-of-two
    grid): a bank then searches and projects identically before and after a save/load
    round trip, instead of shifting by rounding on reload. Both roundings are idempotent.

    ``index_type``:

    - ``"flat"``: exact ``IndexFlatL2``;
    - ``"hnsw"``: ``IndexHNSWFlat`` with M=32, efSearch=64 (approximate);
    - ``"ivf"``: ``IndexIVFFlat`` with about 4*sqrt(N) lists (fewer for small banks, so
      each list's k-means has enough points), trained on a seeded sample, nprobe=16;
    - ``"auto"``: flat for N <= ``FLAT_MAX``, else hnsw.

    Args:
        latents: (N, d) finite latents, N >= 1, within float16 range.
        index_type: one of ``INDEX_TYPES``.
        reg: default Gram-matrix ridge for :meth:`project`, saved with the bank.
        index: a prebuilt FAISS index over exactly these latents (used by :meth:`load`);
            built from ``latents`` when None.
        storage: "fp16" or "int8", the on-disk precision (see the module docstring).
        metric: "l2" ranks neighbours by Euclidean distance, "cosine" by angle (see
            ``METRICS``); saved with the bank.
        length: "affine" or "neighbours", how long :meth:`project`'s latent is (see
            ``LENGTHS``); saved with the bank.
    """

    def __init__(
        self,
        latents: np.ndarray,
        index_type: str = "auto",
        *,
        reg: float = DEFAULT_REG,
        index: faiss.Index | None = None,
        storage: str = "fp16",
        metric: str = "l2",
        length: str = "affine",
    ) -> None:
        latents = np.asarray(latents)
        if latents.ndim != 2:
            raise ValueError(f"latents must be a 2-D array (N, d), got shape {latents.shape}.")
        if latents.shape[0] < 1 or latents.shape[1] < 1:
            raise ValueError(
                f"latents must have N >= 1 rows and d >= 1 columns, got {latents.shape}."
            )
        if not np.issubdtype(latents.dtype, np.number) or np.iscomplexobj(latents):
            raise ValueError(f"latents must be real numbers, got dtype {latents.dtype}.")
        if not np.isfinite(latents).all():
            raise ValueError("latents must be finite (no NaN or inf).")
        if np.abs(latents).max() > _FP16_MAX:
            # Would become inf when rounded to the fp16 storage precision.
            raise ValueError(f"latents must lie within float16 range (|x| <= {_FP16_MAX:g}).")
        if index_type not in INDEX_TYPES:
            raise ValueError(f"index_type must be one of {INDEX_TYPES}, got {index_type!r}.")
        if not (math.isfinite(reg) and reg >= 0):
            raise ValueError(f"reg must be a finite number >= 0, got {reg}.")
        if storage not in STORAGES:
            raise ValueError(f"storage must be one of {STORAGES}, got {storage!r}.")
        if metric not in METRICS:
            raise ValueError(f"metric must be one of {METRICS}, got {metric!r}.")
        if length not in LENGTHS:
            raise ValueError(f"length must be one of {LENGTHS}, got {length!r}.")

        # Round to the storage precision now so in-memory and reloaded banks agree.
        self.storage = storage
        self._stored = _to_storage(latents, storage)
        self._latents = np.ascontiguousarray(_from_storage(self._stored))
        self._latents.setflags(write=False)  # the index mirrors it; edits would desync them
        self.metric = metric
        self.length = length
        n = self._latents.shape[0]
        if index is None:
            if index_type == "auto":
                index_type = "flat" if n <= FLAT_MAX else "hnsw"
            index = _build_index(self._as_indexed(self._latents), index_type)
        else:
            _check_index(index, n, self.dim, "the given index")
            actual = _index_type_of(index, "the given index")
            if index_type not in ("auto", actual):
                raise ValueError(f"index_type is {index_type!r} but the given index is {actual!r}.")
            index_type = actual
            _apply_search_params(index)
        self.index_type = index_type
        self.reg = float(reg)
        self._index = index
        self._coarse = self._coarse_index() if index_type == "flat" and n >= COARSE_MIN else None

    def __len__(self) -> int:
        return self._latents.shape[0]

    def __repr__(self) -> str:
        return (f"LatentBank(N={len(self)}, d={self.dim}, index_type={self.index_type!r}, "
                f"metric={self.metric!r}, length={self.length!r})")

    @property
    def dim(self) -> int:
        """Latent dimension d."""
        return self._latents.shape[1]

    @property
    def latents(self) -> np.ndarray:
        """(N, d) float32 bank latents (fp16-rounded values), read-only."""
        return self._latents

    @property
    def index(self) -> faiss.Index:
        """The FAISS index over :attr:`latents`."""
        return self._index

    def search(self, z: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The k nearest bank latents of ``z`` (by L2 distance, or by angle for "cosine").

        ``k`` is clamped to N, so asking a small bank for more neighbours than it has
        returns all of them. With an approximate index (hnsw, ivf) a query may find
        fewer than k candidates; missing slots hold index -1 and distance inf
        (FAISS's convention).

        Args:
            z: (d,) one latent or (B, d) a batch.
            k: number of neighbours, >= 1.

        Returns:
            ``(distances, indices)``: squared L2 distances (float32; between unit-length
            vectors for "cosine", i.e. 2 - 2 cos) and bank rows (int64), nearest first,
            shaped (k,) for a (d,) query and (B, k) for (B, d).
        """
        queries, single = self._as_queries(z)  # (B, d)
        k = self._clamp_k(k)
        if queries.shape[0] == 0:
            return np.zeros((0, k), np.float32), np.zeros((0, k), np.int64)
        if self._coarse is not None:
            distances, indices = self._two_pass_search(self._as_indexed(queries), k)
        else:
            distances, indices = self._index.search(self._as_indexed(queries), k)  # (B, k) x2
        distances = distances.astype(np.float32, copy=False)
        indices = indices.astype(np.int64, copy=False)
        if single:
            return distances[0], indices[0]
        return distances, indices

    def _coarse_index(self, chunk: int = 4096) -> faiss.Index:
        """An fp16 copy of the indexed latents for the first pass of a flat search, filled
        a chunk at a time (no second float32 copy of the bank at once)."""
        index = faiss.IndexScalarQuantizer(self.dim, faiss.ScalarQuantizer.QT_fp16,
                                           faiss.METRIC_L2)
        index.train(self._as_indexed(self._latents[:1]))  # fp16 learns nothing; FAISS asks
        for start in range(0, len(self), chunk):
            index.add(self._as_indexed(self._latents[start:start + chunk]))
        return index

    def _two_pass_search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(B, d) indexed queries -> exact (B, k) squared L2 distances and rows, from the
        fp16 pass's candidates re-ranked in float32 (see COARSE_MIN)."""
        _, candidates = self._coarse.search(queries, min(len(self), _coarse_candidates(k)))
        distances = np.empty((len(queries), k), np.float32)
        indices = np.empty((len(queries), k), np.int64)
        for row, (query, rows) in enumerate(zip(queries, candidates)):
            rows = rows[rows >= 0]
            vectors = self._as_indexed(self._latents[rows])  # (c, d)
            d2 = ((vectors - query) ** 2).sum(axis=1)  # (c,)
            order = np.lexsort((rows, d2))[:k]  # nearest first, ties by row as FAISS
            distances[row], indices[row] = d2[order], rows[order]
        return distances, indices

    def neighbors(self, z: np.ndarray, k: int) -> np.ndarray:
        """(k,) int64 bank rows of the k nearest neighbours of one (d,) latent, never -1."""
        _, indices = self.search(z, k)  # (k,)
        if (indices < 0).any():
            # The approximate index came up short; an exact scan is cheap for one query.
            queries, _ = self._as_queries(z)
            indices = _exact_search(self._as_indexed(self._latents),
                                    self._as_indexed(queries)[0], len(indices))
        return indices

    def project(self, z: np.ndarray, k: int = 10, reg: float | None = None, seed: int = 0,
                skip_same: bool = False, include=(), exclude=(),
                neighbor_rows: np.ndarray | None = None) -> Projection:
        """Project ``z`` onto the local patch of the bank spanned by its k nearest neighbours.

        The one projection of the project: the pipeline, the bench, the evaluation and
        stage-2 training (on batches of training latents) all call it.

        Args:
            z: (d,) query latent, or (B, d) a batch.
            k: neighbours to reconstruct from, >= 1; clamped to N.
            reg: Gram-matrix ridge for :func:`lle_weights`; None uses the bank's ``reg``
                (1e-3 unless set otherwise).
            seed: 0 for the plain projection; another seed blends the weights with a
                random convex mix of the same neighbours (:func:`vary_weights`).
            skip_same: leave out bank latents that are the query itself (cosine above
                ``SAME_SKETCH_COSINE``): for training latents, which are in the bank.
            include: bank rows pinned into every neighbour set (counted in k).
            exclude: bank rows never used as neighbours; k shrinks to what is left.
            neighbor_rows: (B, k') or (k',) bank rows found elsewhere (another bank in the
                same row order, e.g. `s2a.part_keys`): used as the neighbours instead of
                a search here; ``k``, ``skip_same``, ``include`` and ``exclude`` are then
                the finder's business and ignored.

        Returns:
            A :class:`Projection` with the reconstructed latent, neighbour rows and weights.
            With pins or drops the neighbours are still listed nearest first.
        """
        queries, single = self._as_queries(z)  # (B, d)
        if neighbor_rows is None:
            indices = self.select(queries, k, include, exclude, skip_same)  # (B, k)
        else:
            indices = self._given_rows(neighbor_rows, len(queries))  # (B, k')
        neighbors = self._latents[indices]  # (B, k, d)
        weights = lle_weights(queries, neighbors, self.reg if reg is None else reg)  # (B, k)
        weights = vary_weights(weights, seed)
        latent = np.einsum("bk,bkd->bd", weights.astype(np.float64), neighbors)  # (B, d)
        if self.length == "neighbours":
            latent = at_neighbours_length(latent, neighbors, weights)
        latent = latent.astype(np.float32)
        if single:
            return Projection(latent=latent[0], indices=indices[0], weights=weights[0])
        return Projection(latent=latent, indices=indices, weights=weights)

    def select(self, z: np.ndarray, k: int = 10, include=(), exclude=(),
               skip_same: bool = False) -> np.ndarray:
        """(B, k) neighbour rows of (B, d) queries (or (k,) for one (d,) query), nearest
        first, with :meth:`project`'s pins, drops and ``skip_same``; k shrinks to the rows
        left after the drops."""
        queries, single = self._as_queries(z)  # (B, d)
        include, exclude = self.check_selection(include, exclude, k)
        k = min(self._clamp_k(k), len(self) - len(exclude))
        if include or exclude:
            indices = self._neighbors_selected(queries, k, include, exclude, skip_same)
        elif skip_same:
            indices = self._neighbors_skipping_same(queries, k)  # (B, k)
        else:
            indices = np.stack([self.neighbors(query, k) for query in queries])  # (B, k)
        return indices[0] if single else indices

    def _given_rows(self, rows, batch: int) -> np.ndarray:
        """``project``'s ``neighbor_rows`` checked: (B, k') int64 rows within the bank."""
        rows = np.asarray(rows)
        if rows.ndim == 1:
            rows = rows[None]
        if rows.shape[0] != batch or rows.shape[1] < 1 or not np.issubdtype(rows.dtype, np.integer):
            raise ValueError(f"neighbor_rows must be ({batch}, k) whole numbers, got shape "
                             f"{rows.shape} and dtype {rows.dtype}.")
        if rows.min() < 0 or rows.max() >= len(self):
            raise ValueError(f"neighbor_rows must lie in [0, {len(self)}).")
        return rows.astype(np.int64)

    def check_selection(self, include=(), exclude=(), k: int | None = None
                        ) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """Validate pinned (``include``) and dropped (``exclude``) bank rows.

        Each is a sequence of whole numbers in [0, N) (duplicates are ignored, order kept);
        a row may not be both pinned and dropped, at least one row must stay usable, and
        with ``k`` given, no more than k rows may be pinned. Raises ValueError with what to
        change; returns both as tuples of Python ints.
        """
        include = self._bank_rows(include, "pinned (include)")
        exclude = self._bank_rows(exclude, "dropped (exclude)")
        both = sorted(set(include) & set(exclude))
        if both:
            raise ValueError(f"Neighbour #{both[0]} is both pinned and dropped: keep it in "
                             "one list only.")
        if len(exclude) >= len(self):
            raise ValueError(f"All {len(self)} bank sketches are dropped: un-drop some "
                             "neighbours.")
        if k is not None and not isinstance(k, bool) and isinstance(k, int | np.integer) \
                and len(include) > k:
            raise ValueError(f"{len(include)} neighbours are pinned but k is {k}: raise k "
                             f"to at least {len(include)} or unpin some.")
        return include, exclude

    def _bank_rows(self, rows, what: str) -> tuple[int, ...]:
        """``rows`` (a sequence of bank rows, or None) as a tuple of unique Python ints."""
        if rows is None:
            return ()
        if isinstance(rows, str | bytes) or not hasattr(rows, "__iter__"):
            raise ValueError(f"The {what} neighbours must be a list of bank indices, got "
                             f"{rows!r}.")
        values = list(np.asarray(rows).ravel()) if isinstance(rows, np.ndarray) else list(rows)
        clean: dict[int, None] = {}
        for row in values:
            if isinstance(row, bool | np.bool_) or not isinstance(row, int | np.integer):
                if isinstance(row, float | np.floating) and float(row).is_integer():
                    row = int(row)
                else:
                    raise ValueError(f"The {what} neighbours must be whole bank indices, got "
                                     f"{row!r}.")
            if not 0 <= row < len(self):
                raise ValueError(f"There is no neighbour #{row} to be {what.split()[0]}: the "
                                 f"bank has {len(self)} sketches, #0 to #{len(self) - 1}.")
            clean[int(row)] = None
        return tuple(clean)

    def _neighbors_selected(self, queries: np.ndarray, k: int, include: tuple[int, ...],
                            exclude: tuple[int, ...], skip_same: bool) -> np.ndarray:
        """(B, k) neighbour rows: the pinned rows plus the nearest rows that are neither
        pinned nor dropped, all ordered nearest first."""
        banned = set(include) | set(exclude)
        extra = min(len(self), k + len(banned) + int(skip_same))
        if skip_same:
            candidates = self._neighbors_skipping_same(queries, extra)  # (B, extra)
        else:
            candidates = np.stack([self.neighbors(query, extra) for query in queries])
        indexed_bank = self._as_indexed(self._latents)  # (N, d)
        rows = []
        for query, row in zip(self._as_indexed(queries), candidates):
            kept = [int(i) for i in row if int(i) not in banned][: k - len(include)]
            if len(kept) < k - len(include):  # an approximate index came up short
                allowed = np.setdiff1d(np.arange(len(self)), list(banned))  # (M,)
                order = _exact_search(indexed_bank[allowed], query, k - len(include))
                kept = [int(i) for i in allowed[order]]
            chosen = np.asarray([*include, *kept], np.int64)  # (k,)
            distance = ((indexed_bank[chosen] - query) ** 2).sum(axis=1)  # (k,)
            rows.append(chosen[np.argsort(distance, kind="stable")])
        return np.stack(rows)  # (B, k)

    def _neighbors_skipping_same(self, queries: np.ndarray, k: int) -> np.ndarray:
        """(B, k) nearest bank rows of each (B, d) query, the query's own latent left out."""
        extra = min(k + 1, len(self))
        _, candidates = self.search(queries, extra)  # (B, k + 1)
        candidates = np.where(candidates < 0, 0, candidates)
        unit = _unit_length(queries)  # (B, d)
        bank_unit = _unit_length(self._latents[candidates])  # (B, k + 1, d)
        same = np.einsum("bd,bkd->bk", unit, bank_unit) > SAME_SKETCH_COSINE  # (B, k + 1)
        # Stable sort puts the kept candidates first, nearest first; a row with more
        # duplicates than spare slots falls back on them rather than on fewer neighbours.
        order = np.argsort(same, axis=1, kind="stable")[:, :k]  # (B, k)
        return np.take_along_axis(candidates, order, axis=1)

    def save(self, folder: str | Path) -> Path:
        """Write the bank to ``folder`` (created if needed); see the module docstring.

        ``bank_latents.safetensors``, ``bank.json`` and, for approximate indexes only,
        ``bank.faiss`` (FAISS's own binary format, not a pickle).

        Returns:
            The folder path.
        """
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        save_file(self._stored, str(folder / LATENTS_FILE))
        index_path = folder / INDEX_FILE
        if self.index_type == "flat":
            index_path.unlink(missing_ok=True)  # a stale index must not outlive its latents
        else:
            faiss.write_index(self._index, str(index_path))
        meta = {"N": len(self), "d": self.dim, "index_type": self.index_type, "reg": self.reg,
                "storage": self.storage, "metric": self.metric, "length": self.length}
        (folder / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> LatentBank:
        """Read a bank written by :meth:`save`.

        The latents are required. ``bank.json``, if present, must agree with them; when it
        is missing the index type is taken from ``bank.faiss`` (or "auto") and reg is the
        default. When ``bank.faiss`` is missing the index is rebuilt from the latents.

        Raises:
            FileNotFoundError: no latents file in ``folder``.
            ValueError: the files disagree on N or d, or hold bad values.
        """
        folder = Path(folder)
        latents_path = folder / LATENTS_FILE
        if not latents_path.is_file():
            raise FileNotFoundError(f"No latent bank at {folder}: {LATENTS_FILE} is missing.")
        tensors = load_file(str(latents_path))
        storage = "int8" if "codes" in tensors else "fp16"
        try:
            latents = _from_storage(tensors)  # (N, d) float32
        except KeyError as missing:
            raise ValueError(f"{latents_path} has no tensor named {missing}.") from None
        if latents.ndim != 2:
            raise ValueError(f"{latents_path}: 'latents' must be 2-D, got shape {latents.shape}.")
        n, d = latents.shape

        index_type, reg, metric, length = None, DEFAULT_REG, "l2", "affine"
        meta_path = folder / META_FILE
        if meta_path.is_file():
            meta = json.loads(meta_path.read_text())
            if meta.get("N") != n or meta.get("d") != d:
                raise ValueError(
                    f"{meta_path} says N={meta.get('N')}, d={meta.get('d')} but "
                    f"{LATENTS_FILE} holds N={n}, d={d}."
                )
            index_type = meta.get("index_type")
            reg = meta.get("reg", DEFAULT_REG)
            # Banks saved before these options existed.
            metric = meta.get("metric", "l2")
            length = meta.get("length", "affine")

        index = None
        index_path = folder / INDEX_FILE
        if index_path.is_file():
            index = faiss.read_index(str(index_path))
            _check_index(index, n, d, str(index_path))
            actual = _index_type_of(index, str(index_path))
            if index_type not in (None, "auto", actual):
                raise ValueError(
                    f"{index_path} is a {actual!r} index but {META_FILE} says {index_type!r}."
                )
        return cls(latents, index_type or "auto", reg=reg, index=index, storage=storage,
                   metric=metric, length=length)

    def _as_queries(self, z: np.ndarray) -> tuple[np.ndarray, bool]:
        """Validate ``z`` as (d,) or (B, d); return it as contiguous float32 (B, d)."""
        z = np.asarray(z)
        if z.ndim not in (1, 2):
            raise ValueError(f"z must have shape (d,) or (B, d), got {z.shape}.")
        if z.shape[-1] != self.dim:
            raise ValueError(
                f"z has dimension {z.shape[-1]} but the bank's latents have dimension {self.dim}."
            )
        if not np.issubdtype(z.dtype, np.number) or np.iscomplexobj(z):
            raise ValueError(f"z must hold real numbers, got dtype {z.dtype}.")
        if not np.isfinite(z).all():
            raise ValueError("z must be finite (no NaN or inf).")
        single = z.ndim == 1
        return np.ascontiguousarray(z.reshape(-1, self.dim), dtype=np.float32), single

    def _as_indexed(self, vectors: np.ndarray) -> np.ndarray:
        """(B, d) float32 -> what the index holds: as is for "l2", unit length for "cosine"."""
        if self.metric == "l2":
            return vectors
        return np.ascontiguousarray(_unit_length(vectors), dtype=np.float32)

    def _clamp_k(self, k: int) -> int:
        if isinstance(k, bool) or not isinstance(k, int | np.integer):
            raise ValueError(f"k must be an integer, got {k!r}.")
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}.")
        return min(int(k), len(self))


def _unit_length(vectors: np.ndarray) -> np.ndarray:
    """`vectors` (..., d) scaled to length 1 along the last axis (zero vectors stay zero)."""
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def _build_index(latents: np.ndarray, index_type: str) -> faiss.Index:
    """Build and fill a FAISS L2 index of ``index_type`` over (N, d) float32 ``latents``."""
    n, d = latents.shape
    if index_type == "flat":
        index = faiss.IndexFlatL2(d)
    elif index_type == "hnsw":
        index = faiss.IndexHNSWFlat(d, HNSW_M)
    elif index_type == "ivf":
        nlist = _ivf_nlist(n)
        quantizer = faiss.IndexFlatL2(d)
        index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_L2)
        # Seeded sample so the same latents always give the same lists.
        sample_size = min(n, _IVF_MAX_POINTS_PER_LIST * nlist)
        rows = np.sort(np.random.default_rng(0).choice(n, size=sample_size, replace=False))
        index.train(np.ascontiguousarray(latents[rows]))  # (sample_size, d)
    else:
        raise ValueError(f"index_type must be one of 'flat', 'hnsw', 'ivf', got {index_type!r}.")
    _apply_search_params(index)
    index.add(latents)
    return index


def _coarse_candidates(k: int) -> int:
    """How many candidates the fp16 pass keeps for an exact top k."""
    return 2 * k + 16


def _ivf_nlist(n: int) -> int:
    """About 4*sqrt(N) lists, capped so each has enough points to train k-means."""
    return max(1, min(round(4 * math.sqrt(n)), n // _IVF_MIN_POINTS_PER_LIST))


def _apply_search_params(index: faiss.Index) -> None:
    """Set the search-time knobs (efSearch, nprobe) that this module documents."""
    if isinstance(index, faiss.IndexHNSW):
        index.hnsw.efSearch = HNSW_EF_SEARCH
    elif isinstance(index, faiss.IndexIVF):
        index.nprobe = min(IVF_NPROBE, index.nlist)


def _index_type_of(index: faiss.Index, where: str) -> str:
    """This module's name for an index's type; ValueError for types it does not build."""
    if isinstance(index, faiss.IndexHNSWFlat):
        return "hnsw"
    if isinstance(index, faiss.IndexIVFFlat):
        return "ivf"
    if isinstance(index, faiss.IndexFlat):
        return "flat"
    raise ValueError(f"{where} is a {type(index).__name__}, not a flat, HNSW or IVF index.")


def _check_index(index: faiss.Index, n: int, d: int, where: str) -> None:
    """Raise ValueError unless ``index`` holds exactly N vectors of dimension d."""
    if index.d != d:
        raise ValueError(f"{where} has dimension {index.d} but the latents have dimension {d}.")
    if index.ntotal != n:
        raise ValueError(f"{where} holds {index.ntotal} vectors but there are {n} latents.")
    if index.metric_type != faiss.METRIC_L2:
        raise ValueError(f"{where} does not use L2 distance.")


def _exact_search(latents: np.ndarray, z: np.ndarray, k: int) -> np.ndarray:
    """(k,) int64 rows of the k nearest ``latents`` to ``z`` by a brute-force scan."""
    sq_dist = ((latents - z) ** 2).sum(axis=1)  # (N,)
    nearest = np.argpartition(sq_dist, k - 1)[:k]  # (k,) unordered
    return nearest[np.argsort(sq_dist[nearest], kind="stable")].astype(np.int64)


def _to_storage(latents: np.ndarray, storage: str) -> dict[str, np.ndarray]:
    """The tensors that hold (N, d) ``latents`` at ``storage`` precision on disk."""
    if storage == "fp16":
        return {"latents": np.ascontiguousarray(latents, dtype=np.float16)}
    # float32 throughout: with a power-of-two step every operation below is exact, and a
    # 30k x 512 bank needs no float64 copies (they cost ~0.4 GB of peak memory at load).
    values = np.asarray(latents, dtype=np.float32)
    low, high = values.min(axis=0).astype(np.float64), values.max(axis=0).astype(np.float64)
    # Smallest power-of-two step that spans the range in 254 steps (255 codes, one spare
    # for the floor below). A power of two keeps (base + code) * step exact in float32,
    # so re-quantising stored values reproduces them exactly.
    span = np.maximum(high - low, 1e-30)
    exponent = np.ceil(np.log2(span / 254.0)).astype(np.int32)  # (d,)
    step = np.exp2(exponent.astype(np.float64))
    base = np.floor(low / step).astype(np.int32)  # (d,)
    scaled = np.rint(values / step.astype(np.float32))  # (N, d) float32, exact
    scaled -= base.astype(np.float32)
    codes = np.clip(scaled, 0, 255).astype(np.uint8)  # (N, d)
    return {"codes": codes, "base": base, "exponent": exponent}


def _from_storage(tensors: dict[str, np.ndarray]) -> np.ndarray:
    """(N, d) float32 latents from the tensors written by :func:`_to_storage`."""
    if "codes" in tensors:
        step = np.exp2(tensors["exponent"].astype(np.float32))  # (d,)
        values = tensors["codes"].astype(np.float32)  # (N, d)
        values += tensors["base"].astype(np.float32)
        values *= step
        return values
    return tensors["latents"].astype(np.float32)
