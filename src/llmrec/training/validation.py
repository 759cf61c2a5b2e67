"""Validation during training: full-ranking metrics of a scoring function on held-out targets."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from llmrec.data.sequences import AnyEvalSet, MultiTargetEvalSet
from llmrec.evaluation.metrics import compute_metrics
from llmrec.evaluation.ranking import ranks_from_scores, stack_target_set_ranks, target_set_ranks

ScoreFn = Callable[[Sequence[np.ndarray]], torch.Tensor]

NEXT_ITEM_KS = (10, 20)
HOLDOUT_KS = (10, 20, 40, 100)  # 20, 40, 100: the CLLM4Rec cut-offs; 10: the default train.metric


def sample_eval_set(valid: AnyEvalSet, num_users: int | None, seed: int) -> AnyEvalSet:
    """A seeded subset of validation users (all of them when `num_users` is None or larger)."""
    if num_users is None or num_users >= len(valid):
        return valid
    rows = np.sort(np.random.default_rng(seed).choice(len(valid), num_users, replace=False))
    return valid.subset(rows)


def full_ranking_metrics(
    score: ScoreFn,
    valid: AnyEvalSet,
    ks: Sequence[int] | None = None,
    batch_size: int = 1024,
) -> dict[str, float]:
    """Metrics over the whole catalogue: on next-item targets, recall/NDCG/MRR at `ks` (default
    10, 20) with no history filter (the library default); on hold-out target sets, truncated
    recall/NDCG at `ks` (default 10, 20, 40, 100) with the history excluded (its protocol)."""
    is_set = isinstance(valid, MultiTargetEvalSet)
    if ks is None:
        ks = HOLDOUT_KS if is_set else NEXT_ITEM_KS
    ranks = []
    for start in range(0, len(valid), batch_size):
        histories = valid.histories[start : start + batch_size]
        targets = valid.targets[start : start + batch_size]
        scores = score(histories)
        if is_set:
            ranks.append(target_set_ranks(scores, targets, exclude=histories))
        else:
            ranks.append(ranks_from_scores(scores, targets))
    return compute_metrics(
        stack_target_set_ranks(ranks) if is_set else np.concatenate(ranks), list(ks)
    )
