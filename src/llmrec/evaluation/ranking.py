"""The one place ranks are computed, and `evaluate_model`, which ranks an EvalSet's targets.

Ties count against the target (STYLE sec. 6): rank = 1 + number of OTHER items scoring >= the
target, so a constant scorer ranks every target last. Excluded items are set to -inf first. Full
ranking is the default; sampled negatives are an explicit, labelled option (anchors sec. 4.4).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from llmrec.data.sequences import EvalSet
from llmrec.evaluation.config import EvalConfig
from llmrec.evaluation.result import EvalResult, build_protocol
from llmrec.models.base import (
    Exclusions,
    Histories,
    Recommendations,
    RecommenderModel,
    mask_excluded,
)


def ranks_from_scores(
    scores: torch.Tensor, targets: np.ndarray | Sequence[int], exclude: Exclusions = None
) -> np.ndarray:
    """1-based rank (N,) int64 of each row's target among all n columns of `scores` (B, n).

    Excluded items are set to -inf first. A target scored -inf (excluded, or so scored by the
    model) is a miss: its rank is n + 1, beyond every cut-off. NaN scores raise ValueError.
    """
    if scores.ndim != 2:
        raise ValueError(f"scores must be (batch, items), got shape {tuple(scores.shape)}")
    num_rows, num_items = scores.shape
    target_tensor = _checked_targets(targets, num_rows, num_items).to(scores.device)
    if exclude is not None and len(exclude) != num_rows:
        raise ValueError(f"exclude has {len(exclude)} rows for {num_rows} rows of scores")
    if not scores.is_floating_point():
        scores = scores.double()
    scores = mask_excluded(scores, exclude)
    if torch.isnan(scores).any():
        raise ValueError("scores contain NaN; a model must score every item it ranks")
    target_scores = scores.gather(1, target_tensor[:, None])  # (B, 1)
    ranks = (scores >= target_scores).sum(dim=1)  # (B,) counts the target itself once
    ranks = torch.where(target_scores[:, 0] == float("-inf"), num_items + 1, ranks)
    return ranks.cpu().numpy().astype(np.int64)


def ranks_from_recommendations(
    recommendations: Recommendations, targets: np.ndarray | Sequence[int]
) -> np.ndarray:
    """1-based rank (N,) int64 of each target within its top-L list, ties counting against it.

    rank = 1 + number of other listed items scoring >= the target. A target absent from its list,
    or listed with score -inf (excluded), gets L + 1. Unlisted items may tie with the last listed
    one, so a rank of L only means ">= L": ranks are exact up to L - 1, and metrics need
    `rank_cutoff=L - 1` (evaluate_model asks for max(ks) + 1 items for that reason).
    """
    item_indices = np.asarray(recommendations.item_indices)
    scores = np.asarray(recommendations.scores, dtype=np.float64)
    if item_indices.ndim != 2 or item_indices.shape != scores.shape:
        raise ValueError(
            f"recommendations need (batch, k) items and scores, got {item_indices.shape} "
            f"and {scores.shape}"
        )
    num_rows, list_length = item_indices.shape
    target_array = np.asarray(targets, dtype=np.int64)
    if target_array.shape != (num_rows,):
        raise ValueError(f"need one target per row ({num_rows}), got shape {target_array.shape}")
    if np.isnan(scores).any():
        raise ValueError("recommendation scores contain NaN")
    is_target = (item_indices == target_array[:, None]) & (scores != -np.inf)  # (B, L)
    is_found = is_target.any(axis=1)
    target_scores = scores[np.arange(num_rows), is_target.argmax(axis=1)]  # (B,)
    ranks = (scores >= target_scores[:, None]).sum(axis=1)  # counts the target itself once
    return np.where(is_found, ranks, list_length + 1).astype(np.int64)


def sample_negatives(
    num_items: int,
    histories: Histories,
    targets: np.ndarray | Sequence[int],
    num_negatives: int,
    seed: int,
) -> np.ndarray:
    """(N, num_negatives) distinct items per user, uniform over items outside history and target.

    Rows are drawn in order from one generator, so they depend on the seed, not on batching.
    """
    rng = np.random.default_rng(seed)
    negatives = np.empty((len(targets), num_negatives), dtype=np.int64)
    for row, (history, target) in enumerate(zip(histories, targets, strict=True)):
        forbidden = set(np.asarray(history, dtype=np.int64).tolist()) | {int(target)}
        if num_items - len(forbidden) < num_negatives:
            raise ValueError(
                f"row {row}: only {num_items - len(forbidden)} items lie outside the history and "
                f"target, fewer than num_negatives={num_negatives}"
            )
        negatives[row] = _draw_distinct(rng, num_items, forbidden, num_negatives)
    return negatives


def ranks_from_sampled_negatives(
    scores: torch.Tensor,
    targets: np.ndarray | Sequence[int],
    negatives: np.ndarray,
    exclude: Exclusions = None,
) -> np.ndarray:
    """Rank of each target among itself and its sampled negatives (B, m), same tie rule: 1..m+1.

    An excluded target is a miss (rank m + 2).
    """
    if negatives.shape[0] != scores.shape[0]:
        raise ValueError(f"{len(negatives)} rows of negatives for {len(scores)} rows of scores")
    scores = mask_excluded(scores if scores.is_floating_point() else scores.double(), exclude)
    candidates = np.concatenate([np.asarray(targets, dtype=np.int64)[:, None], negatives], axis=1)
    candidate_tensor = torch.as_tensor(candidates, device=scores.device)
    candidate_scores = scores.gather(1, candidate_tensor)  # (B, 1 + m), the target in column 0
    return ranks_from_scores(candidate_scores, np.zeros(len(candidates), dtype=np.int64))


@dataclass(frozen=True)
class BatchRanks:
    """Ranks of one batch, how they were obtained, and the rank up to which they are exact."""

    ranks: np.ndarray  # (B,) int64
    ranked_by: str  # "score" or "recommend"
    rank_cutoff: int | None  # None: exact at every rank


def evaluate_model(
    model: RecommenderModel,
    eval_set: EvalSet,
    config: EvalConfig | None = None,
    batch_size: int | None = None,
    show_progress: bool = True,
    split: str | None = None,
) -> EvalResult:
    """Rank every target of `eval_set` with `model` and summarise (metrics, intervals, protocol).

    Uses `model.score` where it returns scores, else `model.recommend`. `batch_size` overrides
    `config.batch_size`; `split` (e.g. "valid", "test") is recorded in the protocol.
    """
    config = config or EvalConfig()
    if len(eval_set) == 0:
        raise ValueError("the evaluation set is empty")
    total_users = len(eval_set)
    if config.sample_users is not None and config.sample_users < total_users:
        rows = np.random.default_rng(config.seed).choice(
            total_users, config.sample_users, replace=False
        )
        eval_set = eval_set.subset(np.sort(rows))
    batch_size = batch_size or config.batch_size
    negatives = None
    if config.protocol == "sampled":
        negatives = sample_negatives(
            model.num_items, eval_set.histories, eval_set.targets, config.num_negatives, config.seed
        )
    batches = []
    model.reset_diagnostics()
    starts = range(0, len(eval_set), batch_size)
    with torch.no_grad():
        for start in tqdm(starts, desc="evaluate", unit="batch", disable=not show_progress):
            rows = slice(start, start + batch_size)
            batch_negatives = None if negatives is None else negatives[rows]
            batches.append(_rank_batch(model, eval_set, rows, config, batch_negatives))
    cutoffs = [batch.rank_cutoff for batch in batches if batch.rank_cutoff is not None]
    protocol = build_protocol(
        config,
        num_items=model.num_items,
        num_users=len(eval_set),
        split=split,
        model_name=model.name,
        ranked_by=batches[0].ranked_by,
        rank_cutoff=min(cutoffs) if cutoffs else None,
    )
    if len(eval_set) < total_users:
        protocol["user_sample"] = f"{len(eval_set)} of {total_users} users (seed {config.seed})"
    diagnostics = model.diagnostics()
    if diagnostics:  # e.g. CALRec's grounding of its generations
        protocol["diagnostics"] = diagnostics
    ranks = np.concatenate([batch.ranks for batch in batches])
    return EvalResult.from_ranks(ranks, eval_set.user_ids, protocol)


def _rank_batch(
    model: RecommenderModel,
    eval_set: EvalSet,
    rows: slice,
    config: EvalConfig,
    negatives: np.ndarray | None,
) -> BatchRanks:
    histories = eval_set.histories[rows]
    targets = eval_set.targets[rows]
    # The history filter is the evaluator's choice, never the model's (anchors sec. 4.4, item 3).
    exclude = histories if config.filter_history else None
    users = eval_set.user_ids[rows]  # models with per-user parameters (CLLM4Rec) use them
    scores = model.score(histories, users)
    if scores is not None:
        if tuple(scores.shape) != (len(histories), model.num_items):
            raise ValueError(
                f"{model.name}.score gave shape {tuple(scores.shape)}, expected "
                f"({len(histories)}, {model.num_items})"
            )
        if negatives is None:
            return BatchRanks(ranks_from_scores(scores, targets, exclude), "score", None)
        ranks = ranks_from_sampled_negatives(scores, targets, negatives, exclude)
        return BatchRanks(ranks, "score", None)
    if negatives is not None:
        raise ValueError(
            f"the sampled protocol needs scores of chosen items, but {model.name}.score gives none"
        )
    # One slot past max(ks) tells whether ties with the target continue beyond the list.
    recommendations = model.recommend(histories, k=max(config.ks) + 1, exclude=exclude, users=users)
    list_length = recommendations.item_indices.shape[1]
    rank_cutoff = None if list_length >= model.num_items else list_length - 1
    ranks = ranks_from_recommendations(recommendations, targets)
    return BatchRanks(ranks, "recommend", rank_cutoff)


def _checked_targets(
    targets: np.ndarray | Sequence[int], num_rows: int, num_items: int
) -> torch.Tensor:
    target_array = np.asarray(targets, dtype=np.int64)
    if target_array.shape != (num_rows,):
        raise ValueError(f"need one target per row ({num_rows}), got shape {target_array.shape}")
    if len(target_array) and (target_array.min() < 0 or target_array.max() >= num_items):
        raise ValueError(f"targets must be item indices in [0, {num_items})")
    return torch.as_tensor(target_array)


def _draw_distinct(
    rng: np.random.Generator, num_items: int, forbidden: set[int], count: int
) -> list[int]:
    """Uniform sample without replacement by rejection: the first `count` distinct allowed draws."""
    chosen: dict[int, None] = {}  # an insertion-ordered set
    while len(chosen) < count:
        for item in rng.integers(num_items, size=count).tolist():
            if item not in forbidden and item not in chosen:
                chosen[item] = None
                if len(chosen) == count:
                    break
    return list(chosen)
