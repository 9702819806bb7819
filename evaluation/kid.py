"""Kernel Inception Distance on the project's own realism net, with a bootstrap interval.

KID (Bińkowski et al., "Demystifying MMD GANs", ICLR 2018) is the unbiased estimate of
the squared maximum mean discrepancy between real and generated features under the cubic
polynomial kernel k(x, y) = (x.y / d + 1)^3. Unlike a classifier's accuracy it does not
saturate at "trivially fake": it keeps growing with the distance between the two feature
distributions, it is 0 in expectation for identical distributions (and may then come out
slightly negative), and it is unbiased at any sample size.

As in the standard implementations (the paper's code, torch-fidelity, clean-fid) the
estimate is the mean over `subsets` random subsets of `subset_size` items of each set. The
confidence interval is a percentile bootstrap: both sets are resampled with replacement and
the full-set unbiased estimate is recomputed, pairs of copies of the same item left out of
the within-set means (a copy's kernel with itself would otherwise bias them upwards).
Features are those of the fixed realism net (`evaluation.realism_net`), never a downloaded
Inception, so scores are comparable only between runs of the same `weights/realism/`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from evaluation.realism_net import RealismNet, extract_features

CHUNK = 100  # resamples per matrix product (bounds memory at CHUNK x N floats)


@dataclass(frozen=True)
class KIDResult:
    """A KID estimate and its bootstrap interval (raw units; tables show x 1000)."""

    value: float
    low: float
    high: float
    confidence: float
    n_real: int
    n_fake: int
    subsets: int
    subset_size: int

    def as_dict(self) -> dict:
        return asdict(self)

    def format(self, scale: float = 1000.0, decimals: int = 2) -> str:
        """'12.34 [11.02, 13.80]' (value and interval times `scale`)."""
        return (f"{self.value * scale:.{decimals}f} "
                f"[{self.low * scale:.{decimals}f}, {self.high * scale:.{decimals}f}]")


def polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(n, d) and (m, d) features -> (n, m) kernel (x.y / d + 1)^3."""
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def _check_features(name: str, features: np.ndarray) -> np.ndarray:
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or features.shape[1] < 1:
        raise ValueError(f"{name} features must be an (N, D) array, got shape {features.shape}.")
    if len(features) < 2:
        raise ValueError(f"KID needs at least 2 {name} items, got {len(features)}.")
    if not np.isfinite(features).all():
        raise ValueError(f"The {name} features contain NaN or infinite values.")
    return features


def _weighted_estimates(k_ff: np.ndarray, k_rr: np.ndarray, k_fr: np.ndarray,
                        w_f: np.ndarray, w_r: np.ndarray) -> np.ndarray:
    """Unbiased KIDs of weighted draws: (B, M) and (B, N) item counts -> (B,) estimates.

    A row of counts is a sample of the items (0/1 for a subset, multinomial counts for a
    bootstrap resample). Within each set the kernel is averaged over pairs of draws of
    different items (w'Kw - sum_i w_i^2 K_ii over (sum w)^2 - sum w^2 pairs), across the
    sets over all pairs: for 0/1 weights this is exactly the standard subset estimate.
    """

    def within(kernel: np.ndarray, counts: np.ndarray) -> np.ndarray:
        pairs = np.einsum("bi,bi->b", counts @ kernel, counts) - (counts**2) @ np.diag(kernel)
        return pairs / (counts.sum(axis=1) ** 2 - (counts**2).sum(axis=1))

    cross = np.einsum("bi,bi->b", w_f @ k_fr, w_r) / (w_f.sum(axis=1) * w_r.sum(axis=1))
    return within(k_ff, w_f) + within(k_rr, w_r) - 2.0 * cross


def _subset_weights(n: int, size: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """(count, n) 0/1 rows, each marking `size` items drawn without replacement."""
    weights = np.zeros((count, n))
    for row in weights:
        row[rng.choice(n, size, replace=False)] = 1.0
    return weights


def _bootstrap_weights(n: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """(count, n) multinomial counts: `count` resamples of n items with replacement."""
    return rng.multinomial(n, np.full(n, 1.0 / n), size=count).astype(np.float64)


def kid(real_features: np.ndarray, fake_features: np.ndarray, subsets: int = 100,
        subset_size: int = 1000, bootstraps: int = 1000, confidence: float = 0.95,
        seed: int = 0) -> KIDResult:
    """KID between (N, D) real and (M, D) generated features, with a bootstrap interval.

    Args:
        real_features, fake_features: features of the same network (equal D, N, M >= 2).
        subsets, subset_size: the standard estimate averages `subsets` random subsets of
            min(subset_size, N, M) items of each set.
        bootstraps: resamplings behind the percentile interval.
        confidence: the interval's coverage, in (0, 1).
        seed: seeds the subsets and the resampling (same seed, same result).

    Raises ValueError on mismatched, too small or non-finite features, or bad settings.
    """
    real = _check_features("real", real_features)
    fake = _check_features("generated", fake_features)
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"Real features have {real.shape[1]} dimensions, generated ones "
                         f"{fake.shape[1]}: they must come from the same network.")
    if subsets < 1 or subset_size < 2 or bootstraps < 10:
        raise ValueError("KID needs subsets >= 1, subset_size >= 2 and bootstraps >= 10.")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}.")
    rng = np.random.default_rng(seed)
    k_ff = polynomial_kernel(fake, fake)  # (M, M)
    k_rr = polynomial_kernel(real, real)  # (N, N)
    k_fr = polynomial_kernel(fake, real)  # (M, N)
    size = min(subset_size, len(real), len(fake))
    value = _weighted_estimates(k_ff, k_rr, k_fr, _subset_weights(len(fake), size, subsets, rng),
                                _subset_weights(len(real), size, subsets, rng)).mean()
    estimates = np.concatenate([
        _weighted_estimates(k_ff, k_rr, k_fr, _bootstrap_weights(len(fake), b, rng),
                            _bootstrap_weights(len(real), b, rng))
        for b in np.diff(np.r_[0:bootstraps:CHUNK, bootstraps])
    ])
    tail = 100.0 * (1.0 - confidence) / 2.0
    low, high = np.percentile(estimates, [tail, 100.0 - tail])
    return KIDResult(value=float(value), low=float(low), high=float(high),
                     confidence=confidence, n_real=len(real), n_fake=len(fake),
                     subsets=subsets, subset_size=size)


def kid_of_images(net: RealismNet, real: np.ndarray, fake: np.ndarray, **options) -> KIDResult:
    """KID between (N, R, R, 3) and (M, R, R, 3) uint8 faces on `net`'s features."""
    return kid(extract_features(net, real), extract_features(net, fake), **options)
