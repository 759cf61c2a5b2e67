"""Validation during training: full-ranking metrics of a scoring function on held-out targets."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from llmrec.data.sequences import EvalSet
from llmrec.evaluation.metrics import compute_metrics
from llmrec.evaluation.ranking import ranks_from_scores

ScoreFn = Callable[[Sequence[np.ndarray]], torch.Tensor]


def sample_eval_set(valid: EvalSet, num_users: int | None, seed: int) -> EvalSet:
    """A seeded subset of validation users (all of them when `num_users` is None or larger)."""
    if num_users is None or num_users >= len(valid):
        return valid
    rows = np.sort(np.random.default_rng(seed).choice(len(valid), num_users, replace=False))
    return valid.subset(rows)


def full_ranking_metrics(
    score: ScoreFn, valid: EvalSet, ks: Sequence[int] = (10, 20), batch_size: int = 1024
) -> dict[str, float]:
    """Recall/NDCG/MRR over the whole catalogue, no history filter (the library default)."""
    ranks = []
    for start in range(0, len(valid), batch_size):
        histories = valid.histories[start : start + batch_size]
        scores = score(histories)
        ranks.append(ranks_from_scores(scores, valid.targets[start : start + batch_size]))
    return compute_metrics(np.concatenate(ranks), list(ks))
