"""Tests of evaluation/validation.py: validation metrics on next-item targets and on hold-out sets,
through the evaluator (the same ranking path as test metrics)."""

from __future__ import annotations

import numpy as np
import pytest

from llmrec.data.sequences import EvalSet, MultiTargetEvalSet, sample_users
from llmrec.evaluation.metrics import compute_metrics
from llmrec.evaluation.ranking import ranks_from_scores, target_set_ranks
from llmrec.evaluation.validation import validation_metrics
from tests.evaluation.test_ranking import MatrixRecommender, MatrixScorer

NUM_ITEMS = 30
RNG = np.random.default_rng(0)
TABLE = RNG.normal(size=(NUM_ITEMS, NUM_ITEMS))


def _target_sets(num_users: int = 20) -> MultiTargetEvalSet:
    histories, targets = [], []
    for _ in range(num_users):
        items = RNG.permutation(NUM_ITEMS)
        histories.append(items[: int(RNG.integers(1, 8))])
        targets.append(np.sort(items[10 : 10 + int(RNG.integers(1, 5))]))
    return MultiTargetEvalSet(tuple(map(str, range(num_users))), tuple(histories), tuple(targets))


@pytest.mark.parametrize("model_class", [MatrixScorer, MatrixRecommender])
def test_hold_out_validation_excludes_the_history_at_the_holdout_cut_offs(model_class) -> None:
    """Scoring and recommend-only models (CALRec's generative path) both validate on target
    sets: truncated recall/NDCG at 10, 20, 40, 100 with the history excluded."""
    valid = _target_sets()
    model = model_class(TABLE)
    metrics = validation_metrics(model, valid)
    expected_keys = {f"{name}@{k}" for name in ("recall", "ndcg") for k in (10, 20, 40, 100)}
    assert set(metrics) == expected_keys
    reference = MatrixScorer(TABLE).score(valid.histories)
    ranks = target_set_ranks(reference, valid.targets, valid.histories)
    assert metrics == pytest.approx(compute_metrics(ranks, (10, 20, 40, 100)), abs=1e-12)
    assert metrics["recall@40"] == 1.0  # 30 items: every target is within the top 40
    subset = sample_users(valid, 5, seed=0)
    assert isinstance(subset, MultiTargetEvalSet) and len(subset) == 5


def test_next_item_validation_ranks_without_the_history_filter() -> None:
    histories = tuple(RNG.integers(NUM_ITEMS, size=3) for _ in range(12))
    targets = RNG.integers(NUM_ITEMS, size=12)
    targets[0] = histories[0][-1]  # a repeat purchase: a miss if the history were excluded
    valid = EvalSet(tuple(map(str, range(12))), histories, targets)
    model = MatrixScorer(TABLE)
    metrics = validation_metrics(model, valid)
    assert set(metrics) == {f"{m}@{k}" for m in ("recall", "ndcg", "mrr") for k in (10, 20)}
    ranks = ranks_from_scores(model.score(histories), targets)  # no exclusion
    assert metrics == pytest.approx(compute_metrics(ranks, (10, 20)), abs=1e-12)
    filtered = ranks_from_scores(model.score(histories), targets, exclude=histories)
    assert compute_metrics(filtered, (10, 20)) != pytest.approx(metrics)
