"""An exact-search stand-in for `faiss`, for a training machine that lacks it.

The lent GPU machine has no faiss and nothing can be installed there, yet training with a
latent bank (`train_generator --bank`) needs `s2a.projection.LatentBank`, which imports
faiss. A flat bank only adds vectors and searches them exactly, which NumPy does just as
well; this module offers that much under faiss's names. Put its folder on PYTHONPATH only
where `import faiss` fails (`training/continue_on_gpu.sh` does). Approximate indexes
(HNSW, IVF) and index files are refused with a clear error, never faked.
"""

from __future__ import annotations

import numpy as np

METRIC_L2 = 1
STAND_IN = True  # lets a caller tell this module from the real faiss


class ScalarQuantizer:
    QT_fp16 = "fp16"


class Index:
    """Exact L2 search over the added vectors (float32, or rounded to float16 storage)."""

    def __init__(self, d: int, dtype=np.float32) -> None:
        self.d = int(d)
        self.metric_type = METRIC_L2
        self._dtype = dtype
        self._vectors = np.zeros((0, self.d), np.float32)
        self._squared_norms = np.zeros(0, np.float32)  # |v|^2, kept with the vectors

    @property
    def ntotal(self) -> int:
        return len(self._vectors)

    def train(self, vectors: np.ndarray) -> None:  # flat storage learns nothing
        pass

    def add(self, vectors: np.ndarray) -> None:
        stored = np.asarray(vectors, dtype=self._dtype).astype(np.float32)
        stored = stored.reshape(-1, self.d)
        self._vectors = np.concatenate([self._vectors, stored])
        self._squared_norms = np.concatenate([self._squared_norms, (stored ** 2).sum(1)])

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        queries = np.asarray(queries, dtype=np.float32).reshape(-1, self.d)
        k = min(int(k), self.ntotal)
        # |q - v|^2 = |q|^2 - 2 q.v + |v|^2, one matrix product for the whole batch.
        distances = ((queries ** 2).sum(1, keepdims=True) - 2.0 * queries @ self._vectors.T
                     + self._squared_norms[None])  # (B, N)
        nearest = np.argpartition(distances, k - 1, axis=1)[:, :k]  # (B, k) unordered
        picked = np.take_along_axis(distances, nearest, axis=1)
        order = np.lexsort((nearest, picked), axis=1)  # nearest first, ties by row
        rows = np.take_along_axis(nearest, order, axis=1).astype(np.int64)
        return np.maximum(np.take_along_axis(picked, order, axis=1), 0.0), rows


class IndexFlat(Index):
    pass


class IndexFlatL2(IndexFlat):
    pass


class IndexScalarQuantizer(Index):
    def __init__(self, d: int, quantizer_type: str, metric: int = METRIC_L2) -> None:
        if quantizer_type != ScalarQuantizer.QT_fp16 or metric != METRIC_L2:
            raise NotImplementedError("the faiss stand-in has only fp16 L2 storage")
        super().__init__(d, np.float16)


class _Refused:
    def __init__(self, *args, **kwargs) -> None:
        raise NotImplementedError(
            "the faiss stand-in (training/exact_faiss) searches flat banks only; install "
            "faiss-cpu for HNSW or IVF indexes")


class IndexHNSW(_Refused):
    pass


class IndexHNSWFlat(IndexHNSW):
    pass


class IndexIVF(_Refused):
    pass


class IndexIVFFlat(IndexIVF):
    pass


def read_index(path: str) -> Index:
    _Refused()


def write_index(index: Index, path: str) -> None:
    _Refused()


def omp_set_num_threads(threads: int) -> None:
    pass
