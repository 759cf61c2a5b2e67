"""Uncertainty over users: percentile bootstrap intervals and a paired test between two models.

Users are the resampling unit: each contributes one per-user metric value. Resamples are drawn in
chunks of (resamples, users) indices shared by every metric, so 22k users x 1000 resamples x 12
metrics takes about a second.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

# Entries of the (resamples, users) matrices held at once: about 8 MB of indices, 16 MB of values.
CHUNK_ELEMENTS = 2_000_000

Seed = int | np.random.SeedSequence


@dataclass(frozen=True)
class ConfidenceInterval:
    """Percentile bootstrap interval of a mean over users."""

    low: float
    high: float

    def to_json(self) -> dict[str, float]:
        return {"low": self.low, "high": self.high}


@dataclass(frozen=True)
class PairedTestResult:
    """Paired comparison of model A against model B on the same users (differences are A - B)."""

    mean_difference: float
    ci_low: float  # percentile bootstrap interval of the mean difference
    ci_high: float
    p_value: float  # two-sided paired sign-flip randomisation test


def bootstrap_means(values: np.ndarray, num_resamples: int, seed: Seed = 0) -> np.ndarray:
    """Means of `values` (N, M) over `num_resamples` bootstrap resamples of its rows: (R, M)."""
    values = np.asarray(values, dtype=np.float64)
    num_users = len(values)
    if values.ndim != 2 or num_users == 0:
        raise ValueError(f"need a non-empty (users, metrics) array, got shape {values.shape}")
    _check_num_resamples(num_resamples)
    rng = np.random.default_rng(seed)
    chunk_size = max(1, CHUNK_ELEMENTS // num_users)
    columns = np.ascontiguousarray(values.T)  # (M, N): one contiguous row per metric
    means = []
    for start in range(0, num_resamples, chunk_size):
        size = min(chunk_size, num_resamples - start)
        draws = rng.integers(num_users, size=(size, num_users), dtype=np.int32)  # (R_chunk, N)
        means.append(np.stack([column[draws].mean(axis=1) for column in columns], axis=1))
    return np.concatenate(means)


def bootstrap_ci(
    per_user_values: np.ndarray,
    num_resamples: int = 1000,
    confidence: float = 0.95,
    seed: Seed = 0,
) -> ConfidenceInterval:
    """Percentile bootstrap interval of the mean of one per-user metric."""
    values = _as_user_vector(per_user_values)
    means = bootstrap_means(values[:, None], num_resamples, seed)[:, 0]
    return _percentile_interval(means, confidence)


def bootstrap_cis(
    per_user: Mapping[str, np.ndarray],
    num_resamples: int = 1000,
    confidence: float = 0.95,
    seed: Seed = 0,
) -> dict[str, ConfidenceInterval]:
    """Intervals for several per-user metrics at once, all from the same resampled users."""
    names = list(per_user)
    values = np.stack([_as_user_vector(per_user[name]) for name in names], axis=1)  # (N, M)
    means = bootstrap_means(values, num_resamples, seed)
    return {
        name: _percentile_interval(means[:, column], confidence)
        for column, name in enumerate(names)
    }


def paired_test(
    values_a: np.ndarray,
    values_b: np.ndarray,
    num_resamples: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
) -> PairedTestResult:
    """Compare two models' per-user values (same users, same order): is A's mean above B's?"""
    values_a = _as_user_vector(values_a)
    values_b = _as_user_vector(values_b)
    if values_a.shape != values_b.shape:
        raise ValueError(f"paired values need the same users: {len(values_a)} vs {len(values_b)}")
    differences = values_a - values_b
    # Independent streams for the bootstrap and the randomisation test, both from one seed.
    bootstrap_seed, flip_seed = np.random.SeedSequence(seed).spawn(2)
    interval = bootstrap_ci(differences, num_resamples, confidence, bootstrap_seed)
    return PairedTestResult(
        mean_difference=float(differences.mean()),
        ci_low=interval.low,
        ci_high=interval.high,
        p_value=sign_flip_p_value(differences, num_resamples, flip_seed),
    )


def sign_flip_p_value(differences: np.ndarray, num_resamples: int, seed: Seed = 0) -> float:
    """Two-sided p-value of mean(differences) = 0 by randomly flipping each user's sign.

    p = (1 + #{|flipped mean| >= |observed mean|}) / (1 + num_resamples), never 0.
    """
    differences = _as_user_vector(differences)
    _check_num_resamples(num_resamples)
    num_users = len(differences)
    total = float(differences.sum())
    observed = abs(total) / num_users
    # The flipped means sum in another order; allow for rounding so that ties count as ties.
    tolerance = 1e-9 * float(np.abs(differences).mean())
    rng = np.random.default_rng(seed)
    chunk_size = max(1, CHUNK_ELEMENTS // num_users)
    num_as_extreme = 0
    for start in range(0, num_resamples, chunk_size):
        size = min(chunk_size, num_resamples - start)
        # One random bit per user: 1 flips its sign. Unpacked random bytes are fast and uniform.
        random_bytes = np.frombuffer(rng.bytes(-(-size * num_users // 8)), dtype=np.uint8)
        is_flipped = np.unpackbits(random_bytes)[: size * num_users].reshape(size, num_users)
        flipped_means = np.abs(total - 2.0 * (is_flipped @ differences)) / num_users  # (R_chunk,)
        num_as_extreme += int(np.count_nonzero(flipped_means >= observed - tolerance))
    return (num_as_extreme + 1) / (num_resamples + 1)


def _as_user_vector(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or len(values) == 0:
        raise ValueError(f"need a non-empty vector of per-user values, got shape {values.shape}")
    if not np.isfinite(values).all():
        raise ValueError("per-user values must be finite")
    return values


def _check_num_resamples(num_resamples: int) -> None:
    if num_resamples < 1:
        raise ValueError(f"num_resamples must be >= 1, got {num_resamples}")


def _percentile_interval(means: np.ndarray, confidence: float) -> ConfidenceInterval:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence}")
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return ConfidenceInterval(low=float(low), high=float(high))
