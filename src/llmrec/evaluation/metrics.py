"""Top-K ranking metrics as pure functions of the target's 1-based rank (one target per user).

recall@K (equal to hit@K with one held-out target), NDCG@K = 1 / log2(rank + 1) and
MRR@K = 1 / rank, each 0 when rank > K. Ranks that come from top-k lists are only exact up to a
`rank_cutoff` (see `ranking.ranks_from_recommendations`); metrics at K above it are refused.

With a set of targets per user (the per-user hold-out), ranks are an (N, L) array: each row the
ranks of that user's targets, padded with 0, and the metrics are the truncated recall and NDCG of
Mult-VAE and CLLM4Rec (CLLM4Rec note sec. 5.4).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

METRIC_NAMES = ("recall", "ndcg", "mrr")
SET_METRIC_NAMES = ("recall", "ndcg")
NO_TARGET = 0  # padding in (N, L) target-set ranks; real ranks are 1-based


def metric_key(metric: str, k: int) -> str:
    """Result key of a metric at a cut-off, e.g. "ndcg@10"."""
    return f"{metric}@{k}"


def recall_at_k(ranks: np.ndarray, k: int, rank_cutoff: int | None = None) -> np.ndarray:
    """Per-user recall@K: 1.0 where rank <= K, else 0.0 (hit@K, since each user has one target)."""
    ranks = _checked_ranks(ranks, k, rank_cutoff)
    return (ranks <= k).astype(np.float64)


def ndcg_at_k(ranks: np.ndarray, k: int, rank_cutoff: int | None = None) -> np.ndarray:
    """Per-user NDCG@K: 1 / log2(rank + 1) where rank <= K, else 0 (the ideal DCG is 1)."""
    ranks = _checked_ranks(ranks, k, rank_cutoff)
    values = np.zeros(len(ranks), dtype=np.float64)
    is_hit = ranks <= k
    values[is_hit] = 1.0 / np.log2(ranks[is_hit] + 1.0)
    return values


def mrr_at_k(ranks: np.ndarray, k: int, rank_cutoff: int | None = None) -> np.ndarray:
    """Per-user reciprocal rank truncated at K: 1 / rank where rank <= K, else 0."""
    ranks = _checked_ranks(ranks, k, rank_cutoff)
    values = np.zeros(len(ranks), dtype=np.float64)
    is_hit = ranks <= k
    values[is_hit] = 1.0 / ranks[is_hit]
    return values


def truncated_recall_at_k(ranks: np.ndarray, k: int, rank_cutoff: int | None = None) -> np.ndarray:
    """Per-user |top-K ∩ T_u| / min(K, |T_u|) from (N, L) target-set ranks padded with 0."""
    ranks = _checked_set_ranks(ranks, k, rank_cutoff)
    num_targets = (ranks != NO_TARGET).sum(axis=1)
    num_hits = ((ranks != NO_TARGET) & (ranks <= k)).sum(axis=1)
    return num_hits / np.minimum(k, num_targets)


def truncated_ndcg_at_k(ranks: np.ndarray, k: int, rank_cutoff: int | None = None) -> np.ndarray:
    """Per-user DCG@K / IDCG@K, with IDCG@K = sum over r <= min(K, |T_u|) of 1 / log2(r + 1)."""
    ranks = _checked_set_ranks(ranks, k, rank_cutoff)
    num_targets = (ranks != NO_TARGET).sum(axis=1)
    is_hit = (ranks != NO_TARGET) & (ranks <= k)
    gains = np.zeros(ranks.shape, dtype=np.float64)
    gains[is_hit] = 1.0 / np.log2(ranks[is_hit] + 1.0)
    ideal = np.cumsum(1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64)))  # ideal[j]: j+1 hits
    return gains.sum(axis=1) / ideal[np.minimum(k, num_targets) - 1]


METRIC_FUNCTIONS: dict[str, Callable[[np.ndarray, int, int | None], np.ndarray]] = {
    "recall": recall_at_k,
    "ndcg": ndcg_at_k,
    "mrr": mrr_at_k,
}
SET_METRIC_FUNCTIONS: dict[str, Callable[[np.ndarray, int, int | None], np.ndarray]] = {
    "recall": truncated_recall_at_k,
    "ndcg": truncated_ndcg_at_k,
}


def per_user_metrics(
    ranks: np.ndarray, ks: Sequence[int], rank_cutoff: int | None = None
) -> dict[str, np.ndarray]:
    """Every metric at every K, per user: {"recall@10": (N,) array, ...}, grouped by metric.

    (N,) ranks (one target per user) give recall, NDCG and MRR; (N, L) target-set ranks give
    truncated recall and NDCG.
    """
    is_set = np.ndim(ranks) == 2
    names, functions = (
        (SET_METRIC_NAMES, SET_METRIC_FUNCTIONS) if is_set else (METRIC_NAMES, METRIC_FUNCTIONS)
    )
    return {
        metric_key(metric, k): functions[metric](ranks, k, rank_cutoff)
        for metric in names
        for k in ks
    }


def compute_metrics(
    ranks: np.ndarray, ks: Sequence[int], rank_cutoff: int | None = None
) -> dict[str, float]:
    """Every metric at every K, averaged over users: {"recall@10": 0.08, ...}."""
    if len(ranks) == 0:
        raise ValueError("cannot average metrics over zero users")
    per_user = per_user_metrics(ranks, ks, rank_cutoff)
    return {key: float(values.mean()) for key, values in per_user.items()}


def _checked_ranks(ranks: np.ndarray, k: int, rank_cutoff: int | None) -> np.ndarray:
    ranks = np.asarray(ranks)
    if ranks.ndim != 1:
        raise ValueError(f"ranks must be one-dimensional (one per user), got shape {ranks.shape}")
    if len(ranks) and (np.isnan(ranks).any() or ranks.min() < 1):
        raise ValueError("ranks are 1-based: every rank must be >= 1 and not NaN")
    _check_cutoff(k, rank_cutoff)
    return ranks


def _checked_set_ranks(ranks: np.ndarray, k: int, rank_cutoff: int | None) -> np.ndarray:
    ranks = np.asarray(ranks)
    if ranks.ndim != 2:
        raise ValueError(f"target-set ranks must be (users, targets), got shape {ranks.shape}")
    if not np.issubdtype(ranks.dtype, np.integer) or (ranks.size and ranks.min() < 0):
        raise ValueError("target-set ranks are 1-based integers, padded with 0")
    if len(ranks) and not (ranks != NO_TARGET).any(axis=1).all():
        raise ValueError("every user needs at least one target rank")
    _check_cutoff(k, rank_cutoff)
    return ranks


def _check_cutoff(k: int, rank_cutoff: int | None) -> None:
    if k < 1:
        raise ValueError(f"the cut-off K must be >= 1, got {k}")
    if rank_cutoff is not None and k > rank_cutoff:
        raise ValueError(
            f"cannot compute a metric at K={k}: these ranks are exact only up to {rank_cutoff} "
            f"(they come from top-{rank_cutoff + 1} lists); request longer lists"
        )
