"""Tests of evaluation/metrics.py: hand-computed values, cut-off refusal, an independent check;
for single targets and for the target sets of the per-user hold-out."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from llmrec.evaluation.metrics import (
    compute_metrics,
    mrr_at_k,
    ndcg_at_k,
    per_user_metrics,
    recall_at_k,
    truncated_ndcg_at_k,
    truncated_recall_at_k,
)
from llmrec.evaluation.ranking import ranks_from_scores, target_set_ranks

# Six users whose targets sit at these ranks.
HAND_RANKS = np.array([1, 2, 3, 5, 11, 21])
# 1 / log2(rank + 1) for each rank above, worked out by hand.
GAIN = {1: 1.0, 2: 0.6309297535714575, 3: 0.5, 5: 0.38685280723454163, 11: 0.27894294565112987}

HAND_METRICS = {
    "recall@1": 1 / 6,
    "recall@5": 4 / 6,
    "recall@10": 4 / 6,
    "recall@20": 5 / 6,
    "ndcg@1": 1 / 6,
    "ndcg@5": (GAIN[1] + GAIN[2] + GAIN[3] + GAIN[5]) / 6,
    "ndcg@10": (GAIN[1] + GAIN[2] + GAIN[3] + GAIN[5]) / 6,
    "ndcg@20": (GAIN[1] + GAIN[2] + GAIN[3] + GAIN[5] + GAIN[11]) / 6,
    "mrr@1": 1 / 6,
    "mrr@5": (1 + 1 / 2 + 1 / 3 + 1 / 5) / 6,
    "mrr@10": (1 + 1 / 2 + 1 / 3 + 1 / 5) / 6,
    "mrr@20": (1 + 1 / 2 + 1 / 3 + 1 / 5 + 1 / 11) / 6,
}


def test_compute_metrics_matches_hand_computed_values() -> None:
    metrics = compute_metrics(HAND_RANKS, [1, 5, 10, 20])
    assert list(metrics) == list(HAND_METRICS)
    for key, expected in HAND_METRICS.items():
        assert metrics[key] == pytest.approx(expected, abs=1e-12), key


def test_per_user_values_are_written_out() -> None:
    np.testing.assert_array_equal(recall_at_k(HAND_RANKS, 5), [1, 1, 1, 1, 0, 0])
    np.testing.assert_allclose(
        ndcg_at_k(HAND_RANKS, 20), [1.0, GAIN[2], 0.5, GAIN[5], GAIN[11], 0.0], atol=1e-15
    )
    np.testing.assert_allclose(mrr_at_k(HAND_RANKS, 3), [1.0, 0.5, 1 / 3, 0, 0, 0], atol=1e-15)
    per_user = per_user_metrics(HAND_RANKS, [10])
    assert set(per_user) == {"recall@10", "ndcg@10", "mrr@10"}
    assert all(values.shape == (6,) for values in per_user.values())


def test_metrics_at_k_above_the_rank_cutoff_are_refused() -> None:
    assert compute_metrics(HAND_RANKS, [5], rank_cutoff=5)["recall@5"] == pytest.approx(4 / 6)
    with pytest.raises(ValueError, match=r"K=10.*exact only up to 5"):
        compute_metrics(HAND_RANKS, [5, 10], rank_cutoff=5)
    with pytest.raises(ValueError, match="K=6"):
        ndcg_at_k(HAND_RANKS, 6, rank_cutoff=5)


@pytest.mark.parametrize("ranks", [np.array([0, 1]), np.array([1.0, np.nan]), np.ones((2, 2))])
def test_invalid_ranks_are_rejected(ranks: np.ndarray) -> None:
    with pytest.raises(ValueError, match="rank"):
        recall_at_k(ranks, 1)


def test_empty_ranks_cannot_be_averaged() -> None:
    with pytest.raises(ValueError, match="zero users"):
        compute_metrics(np.array([], dtype=np.int64), [1])


def naive_metrics(
    scores: np.ndarray, targets: np.ndarray, ks: list[int], exclude: list[set[int]]
) -> dict[str, float]:
    """Metrics from full sorted lists, one user at a time, with no shared code."""
    totals = {f"{name}@{k}": 0.0 for name in ("recall", "ndcg", "mrr") for k in ks}
    num_users, num_items = scores.shape
    for row in range(num_users):
        target = int(targets[row])
        if target in exclude[row]:
            continue  # an excluded target is a miss at every K
        candidates = [item for item in range(num_items) if item not in exclude[row]]
        # Sort so that the target comes after every item with its score: ties count against it.
        ordered = sorted(candidates, key=lambda item: (-scores[row, item], item == target))
        position = ordered.index(target) + 1
        for k in ks:
            if position <= k:
                totals[f"recall@{k}"] += 1.0
                totals[f"ndcg@{k}"] += 1.0 / math.log2(position + 1)
                totals[f"mrr@{k}"] += 1.0 / position
    return {key: total / num_users for key, total in totals.items()}


@pytest.mark.parametrize("num_levels", [3, 0])  # 3 score levels: many ties; 0: continuous
@pytest.mark.parametrize("use_exclusion", [False, True])
def test_agrees_with_naive_sorted_lists(num_levels: int, use_exclusion: bool) -> None:
    rng = np.random.default_rng(7)
    num_users, num_items, ks = 60, 40, [1, 3, 5, 10, 20, 40]
    if num_levels:
        scores = rng.integers(num_levels, size=(num_users, num_items)).astype(np.float64)
    else:
        scores = rng.normal(size=(num_users, num_items))
    targets = rng.integers(num_items, size=num_users)
    exclude = [set(rng.choice(num_items, size=5, replace=False).tolist()) for _ in targets]
    if not use_exclusion:
        exclude = [set() for _ in targets]
    ranks = ranks_from_scores(torch.as_tensor(scores), targets, exclude)
    expected = naive_metrics(scores, targets, ks, exclude)
    computed = compute_metrics(ranks, ks)
    for key, value in expected.items():
        assert computed[key] == pytest.approx(value, abs=1e-9), key


# --- target sets: truncated recall and NDCG (the per-user hold-out) ----------------------------

# Four users' target-set ranks, padded with 0: 3 targets, 1 target, 3 targets, 1 missed target.
SET_RANKS = np.array([[1, 3, 50], [2, 0, 0], [1, 2, 4], [2091, 0, 0]])
IDEAL_3 = GAIN[1] + GAIN[2] + GAIN[3]  # ideal DCG of 3 or more targets at K >= 3
GAIN_4 = 1 / math.log2(5)


def test_truncated_metrics_match_hand_computed_values() -> None:
    # K = 2 is below |T_u| = 3 for users 1 and 3: the denominators are min(K, |T_u|) = 2 and
    # the ideal DCG of 2 hits; at K = 20 they are |T_u| = 3 and the ideal DCG of 3 hits.
    np.testing.assert_allclose(truncated_recall_at_k(SET_RANKS, 2), [1 / 2, 1, 1, 0], atol=1e-15)
    np.testing.assert_allclose(truncated_recall_at_k(SET_RANKS, 20), [2 / 3, 1, 1, 0], atol=1e-15)
    np.testing.assert_allclose(
        truncated_ndcg_at_k(SET_RANKS, 2), [1 / (1 + GAIN[2]), GAIN[2], 1, 0], atol=1e-15
    )
    np.testing.assert_allclose(
        truncated_ndcg_at_k(SET_RANKS, 20),
        [(1 + GAIN[3]) / IDEAL_3, GAIN[2], (1 + GAIN[2] + GAIN_4) / IDEAL_3, 0],
        atol=1e-15,
    )
    metrics = compute_metrics(SET_RANKS, [2, 20])
    assert list(metrics) == ["recall@2", "recall@20", "ndcg@2", "ndcg@20"]  # no mrr for sets
    assert metrics["recall@20"] == pytest.approx((2 / 3 + 1 + 1 + 0) / 4, abs=1e-15)


def test_one_target_sets_agree_with_single_target_metrics() -> None:
    as_sets = HAND_RANKS[:, None]
    for k in (1, 5, 10, 20):
        np.testing.assert_array_equal(truncated_recall_at_k(as_sets, k), recall_at_k(HAND_RANKS, k))
        np.testing.assert_allclose(
            truncated_ndcg_at_k(as_sets, k), ndcg_at_k(HAND_RANKS, k), atol=1e-15
        )


@pytest.mark.parametrize(
    "ranks", [np.array([1, 2]), np.array([[1, 0], [0, 0]]), np.array([[1.5, 2.0]])]
)
def test_invalid_target_set_ranks_are_rejected(ranks: np.ndarray) -> None:
    with pytest.raises(ValueError, match="rank"):
        truncated_recall_at_k(ranks, 1)


def test_target_set_metrics_honour_the_rank_cutoff() -> None:
    with pytest.raises(ValueError, match="K=20"):
        truncated_ndcg_at_k(SET_RANKS, 20, rank_cutoff=10)


def naive_set_metrics(
    scores: np.ndarray, targets: list[set[int]], ks: list[int], exclude: list[set[int]]
) -> dict[str, float]:
    """Truncated recall and NDCG from full sorted lists, one user at a time, with no shared code."""
    totals = {f"{name}@{k}": 0.0 for name in ("recall", "ndcg") for k in ks}
    num_users, num_items = scores.shape
    for row in range(num_users):
        candidates = [item for item in range(num_items) if item not in exclude[row]]
        # Among equal scores, non-targets come first: ties count against the targets.
        ordered = sorted(candidates, key=lambda item: (-scores[row, item], item in targets[row]))
        for k in ks:
            top = ordered[:k]
            hits = [position for position, item in enumerate(top, 1) if item in targets[row]]
            best = min(k, len(targets[row]))
            totals[f"recall@{k}"] += len(hits) / best
            dcg = sum(1.0 / math.log2(position + 1) for position in hits)
            totals[f"ndcg@{k}"] += dcg / sum(1.0 / math.log2(r + 1) for r in range(1, best + 1))
    return {key: total / num_users for key, total in totals.items()}


@pytest.mark.parametrize("num_levels", [3, 0])  # 3 score levels: many ties; 0: continuous
def test_target_set_metrics_agree_with_naive_sorted_lists(num_levels: int) -> None:
    rng = np.random.default_rng(11)
    num_users, num_items, ks = 50, 40, [1, 3, 5, 10, 20, 30]
    if num_levels:
        scores = rng.integers(num_levels, size=(num_users, num_items)).astype(np.float64)
    else:
        scores = rng.normal(size=(num_users, num_items))
    targets, exclude = [], []
    for _ in range(num_users):
        items = rng.permutation(num_items)
        size = int(rng.integers(1, 8))
        targets.append(np.sort(items[:size]))
        exclude.append(items[size : size + int(rng.integers(0, 6))])
    ranks = target_set_ranks(torch.as_tensor(scores), targets, exclude)
    target_sets = [set(t.tolist()) for t in targets]
    expected = naive_set_metrics(scores, target_sets, ks, [set(e.tolist()) for e in exclude])
    computed = compute_metrics(ranks, ks)
    for key, value in expected.items():
        assert computed[key] == pytest.approx(value, abs=1e-9), key
