"""Tests of training/validation.py: validation metrics on next-item targets and on hold-out sets."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from llmrec.data.sequences import EvalSet, MultiTargetEvalSet
from llmrec.evaluation.metrics import compute_metrics
from llmrec.evaluation.ranking import target_set_ranks
from llmrec.training.validation import full_ranking_metrics, sample_eval_set

NUM_ITEMS = 30
RNG = np.random.default_rng(0)
TABLE = torch.as_tensor(RNG.normal(size=(NUM_ITEMS, NUM_ITEMS)))


def score(histories) -> torch.Tensor:
    """A fixed table by the last history item, with every history item scored highest."""
    scores = TABLE[[int(history[-1]) for history in histories]].clone()
    for row, history in enumerate(histories):
        scores[row, torch.as_tensor(history)] = 50.0
    return scores


def _target_sets(num_users: int = 20) -> MultiTargetEvalSet:
    histories, targets = [], []
    for _ in range(num_users):
        items = RNG.permutation(NUM_ITEMS)
        histories.append(items[: int(RNG.integers(1, 8))])
        targets.append(np.sort(items[10 : 10 + int(RNG.integers(1, 5))]))
    return MultiTargetEvalSet(tuple(map(str, range(num_users))), tuple(histories), tuple(targets))


def test_hold_out_validation_excludes_the_history_at_the_holdout_cut_offs() -> None:
    valid = _target_sets()
    metrics = full_ranking_metrics(score, valid, batch_size=7)
    expected_keys = [f"{name}@{k}" for name in ("recall", "ndcg") for k in (10, 20, 40, 100)]
    assert list(metrics) == expected_keys
    ranks = target_set_ranks(score(valid.histories), valid.targets, valid.histories)
    assert metrics == pytest.approx(compute_metrics(ranks, (10, 20, 40, 100)), abs=1e-12)
    assert metrics["recall@40"] == 1.0  # 30 items: every target is within the top 40
    subset = sample_eval_set(valid, 5, seed=0)
    assert isinstance(subset, MultiTargetEvalSet) and len(subset) == 5


def test_next_item_validation_is_unchanged() -> None:
    histories = tuple(RNG.integers(NUM_ITEMS, size=3) for _ in range(12))
    valid = EvalSet(tuple(map(str, range(12))), histories, RNG.integers(NUM_ITEMS, size=12))
    metrics = full_ranking_metrics(score, valid)
    assert set(metrics) == {f"{m}@{k}" for m in ("recall", "ndcg", "mrr") for k in (10, 20)}
