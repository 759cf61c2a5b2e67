"""The one place ranks are computed, and `evaluate_model`, which ranks an EvalSet's targets.

Ties count against the target (STYLE sec. 6): rank = 1 + number of OTHER items scoring >= the
target, so a constant scorer ranks every target last. Excluded items are set to -inf first. Full
ranking is the default; sampled negatives are an explicit, labelled option (anchors sec. 4.4).
Target sets (the per-user hold-out) are ranked by the same rule, always with the history excluded.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from llmrec.data.sequences import AnyEvalSet, MultiTargetEvalSet, sample_users
from llmrec.evaluation.config import EvalConfig
from llmrec.evaluation.metrics import NO_TARGET
from llmrec.evaluation.result import EvalResult, build_protocol, eval_set_fingerprint
from llmrec.evaluation.slices import SliceBasis, slice_metrics
from llmrec.models.base import RecommenderModel
from llmrec.recommendations import (
    Exclusions,
    Histories,
    RankingDiagnostics,
    Recommendations,
    mask_excluded,
)
from llmrec.training.distributed import ProcessShare

COUNT_ROWS = 8  # rows of scores compared with their targets at once (ranks_from_scores)


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
    # (B,) counts the target itself once; a few rows at a time, since torch sums a bool tensor
    # by first copying it to int64: 8 bytes per score of the batch, twice the scores themselves
    ranks = torch.cat(
        [
            (rows >= row_targets).sum(dim=1)
            for rows, row_targets in zip(
                scores.split(COUNT_ROWS), target_scores.split(COUNT_ROWS), strict=True
            )
        ]
    )
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


def target_set_ranks(
    scores: torch.Tensor,
    targets: Sequence[np.ndarray],
    exclude: Exclusions = None,
    aligned: bool = False,
) -> np.ndarray:
    """(B, L) 1-based ranks of each row's target items among all n items, ascending, padded with 0
    (`aligned`: column j is the rank of `targets[r][j]`, for metrics by slice of the targets).

    The ranks are the positions of the targets in the order that sorts scores descending and
    puts, among equal scores, every non-target before the targets (ties count against them),
    and tied targets by their order in the set: 1 + #non-targets scoring >= t + #targets before t.
    An excluded target, or one scored -inf, is a miss (rank n + 1). NaN scores raise ValueError.
    """
    if scores.ndim != 2 or len(targets) != scores.shape[0]:
        raise ValueError(f"need one target set per row of scores {tuple(scores.shape)}")
    num_rows, num_items = scores.shape
    if exclude is not None and len(exclude) != num_rows:
        raise ValueError(f"exclude has {len(exclude)} rows for {num_rows} rows of scores")
    scores = mask_excluded(scores if scores.is_floating_point() else scores.double(), exclude)
    if torch.isnan(scores).any():
        raise ValueError("scores contain NaN; a model must score every item it ranks")
    width = max((len(target_set) for target_set in targets), default=0)
    target_indices = torch.zeros(num_rows, width, dtype=torch.long)
    is_target = torch.zeros(num_rows, width, dtype=torch.bool)
    for row, target_set in enumerate(targets):
        target_indices[row, : len(target_set)] = _checked_targets(
            target_set, len(target_set), num_items
        )
        is_target[row, : len(target_set)] = True
    target_scores = scores.gather(1, target_indices.to(scores.device)).cpu()  # (B, L)
    ascending = scores.sort(dim=1).values.cpu()  # (B, n)
    num_at_least = num_items - torch.searchsorted(ascending, target_scores)  # items >= each target
    other, this = target_scores[:, None, :], target_scores[:, :, None]  # (B, 1, L), (B, L, 1)
    earlier = torch.arange(width)[None, :] < torch.arange(width)[:, None]  # [i, j]: j before i
    targets_at_least = ((other >= this) & is_target[:, None, :]).sum(dim=2)  # itself included
    targets_before = (((other > this) | ((other == this) & earlier)) & is_target[:, None, :]).sum(2)
    ranks = 1 + (num_at_least - targets_at_least) + targets_before
    ranks = torch.where(target_scores == float("-inf"), num_items + 1, ranks)
    ranks = torch.where(is_target, ranks, NO_TARGET).numpy()
    return ranks if aligned else sort_target_set_ranks(ranks)


def sort_target_set_ranks(ranks: np.ndarray) -> np.ndarray:
    """(B, L) target-set ranks with each row sorted ascending and its padding (0) last."""
    padded = np.where(ranks == NO_TARGET, np.iinfo(np.int64).max, ranks)
    ranks = np.sort(padded, axis=1)
    return np.where(ranks == np.iinfo(np.int64).max, NO_TARGET, ranks).astype(np.int64)


def target_set_ranks_from_recommendations(
    recommendations: Recommendations, targets: Sequence[np.ndarray], aligned: bool = False
) -> np.ndarray:
    """(B, L') ranks of each row's targets within its top-L list, as `target_set_ranks` ranks them
    (`aligned`: column j is the rank of `targets[r][j]`).

    A target absent from its list, or listed with score -inf, gets L + 1. With at most M targets
    per row, ranks are exact up to L - M (M = 1: L - 1, as `ranks_from_recommendations`): a target
    tied with the last listed score may tie with unlisted items, but its list rank is then at
    least 1 + L - M, since every listed non-target scores >= it. So evaluate_model asks for
    max(ks) + M items.
    """
    item_indices = np.asarray(recommendations.item_indices)
    scores = torch.as_tensor(np.asarray(recommendations.scores, dtype=np.float64))
    list_length = item_indices.shape[1]
    listed = [
        np.flatnonzero(np.isin(row, target_set))
        for row, target_set in zip(item_indices, targets, strict=True)
    ]
    ranks_in_list = target_set_ranks(scores, listed, aligned=True)  # column j: listed[r][j]
    rows = []
    for row, target_set in enumerate(targets):
        found = item_indices[row, listed[row]].tolist()
        rank_of = dict(zip(found, ranks_in_list[row, : len(found)].tolist(), strict=True))
        rows.append([rank_of.get(int(item), list_length + 1) for item in target_set])
    return _pad_rows(rows, sort=not aligned)


def stack_target_set_ranks(parts: Sequence[np.ndarray]) -> np.ndarray:
    """Concatenate (B_i, L_i) target-set ranks of several batches, padding with 0 to one width."""
    width = max(part.shape[1] for part in parts)
    return np.concatenate(
        [np.pad(part, ((0, 0), (0, width - part.shape[1]))) for part in parts]
    ).astype(np.int64)


def _pad_rows(rows: Sequence[Sequence[int]], sort: bool) -> np.ndarray:
    width = max((len(row) for row in rows), default=0)
    padded = np.full((len(rows), width), NO_TARGET, dtype=np.int64)
    for index, row in enumerate(rows):
        padded[index, : len(row)] = np.sort(row) if sort else row
    return padded


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

    ranks: np.ndarray  # (B,) int64; (B, L) for target sets, aligned with each row's targets
    ranked_by: str  # "score" or "recommend"
    rank_cutoff: int | None  # None: exact at every rank
    diagnostics: RankingDiagnostics | None = None  # what the model reported of this batch


def evaluate_model(
    model: RecommenderModel,
    eval_set: AnyEvalSet,
    config: EvalConfig | None = None,
    batch_size: int | None = None,
    show_progress: bool = True,
    split: str | None = None,
    slice_basis: SliceBasis | None = None,
    across_processes: bool = True,
) -> EvalResult:
    """Rank every target of `eval_set` with `model` and summarise (metrics, intervals, protocol).

    Uses `model.score` where it returns scores, else `model.recommend`. `batch_size` overrides
    `config.batch_size`; `split` (e.g. "valid", "test") is recorded in the protocol. Target sets
    (`MultiTargetEvalSet`) give truncated recall and NDCG at `config.ks`, always ranked with the
    history excluded (the hold-out protocol, docs/evaluation.md sec. 10). `slice_basis` (the
    training data's item counts, `SliceBasis.from_sequences(dataset.train, ...)`) adds the
    metrics by slice (slices.py) to the result.

    Under `accelerate launch` (a running process group) and `across_processes`, every process
    must call it: each ranks a contiguous share of the batches and all get the whole result,
    every user ranked once. `across_processes=False`: this process alone ranks every user (the
    training loop validates on the main process only).
    """
    if slice_basis is not None and len(slice_basis.item_counts) != model.num_items:
        raise ValueError(
            f"slice_basis counts {len(slice_basis.item_counts)} items, the model {model.num_items}"
        )
    config = config or EvalConfig()
    if len(eval_set) == 0:
        raise ValueError("the evaluation set is empty")
    is_set = isinstance(eval_set, MultiTargetEvalSet)
    if is_set and config.protocol == "sampled":
        raise ValueError("target sets are ranked over the full catalogue; use protocol 'full'")
    total_users = len(eval_set)
    eval_set = sample_users(eval_set, config.sample_users, config.seed)
    batch_size = batch_size or config.batch_size
    negatives = None
    if config.protocol == "sampled":
        negatives = sample_negatives(
            model.num_items, eval_set.histories, eval_set.targets, config.num_negatives, config.seed
        )
    batches = []
    share = ProcessShare.current(across_processes)
    starts = share.of(range(0, len(eval_set), batch_size))
    with torch.no_grad():
        for start in tqdm(starts, desc="evaluate", unit="batch", disable=not show_progress):
            rows = slice(start, start + batch_size)
            batch_negatives = None if negatives is None else negatives[rows]
            batches.append(_rank_batch(model, eval_set, rows, config, batch_negatives))
    batches = share.gather(batches)
    cutoffs = [batch.rank_cutoff for batch in batches if batch.rank_cutoff is not None]
    protocol = build_protocol(
        config,
        num_items=model.num_items,
        num_users=len(eval_set),
        split=split,
        model_name=model.name,
        ranked_by=batches[0].ranked_by,
        rank_cutoff=min(cutoffs) if cutoffs else None,
        targets="set" if is_set else "next_item",
    )
    protocol["eval_set_sha256"] = eval_set_fingerprint(eval_set, model.catalogue)  # for compare
    if len(eval_set) < total_users:
        protocol["user_sample"] = f"{len(eval_set)} of {total_users} users (seed {config.seed})"
    diagnostics = [batch.diagnostics for batch in batches if batch.diagnostics is not None]
    if diagnostics:  # e.g. CALRec's grounding of its generations, summed over the batches
        protocol["diagnostics"] = dict(functools.reduce(operator.add, diagnostics).summary())
    return _result(eval_set, [batch.ranks for batch in batches], protocol, slice_basis)


def _result(
    eval_set: AnyEvalSet,
    parts: list[np.ndarray],
    protocol: dict,
    slice_basis: SliceBasis | None,
) -> EvalResult:
    """The result of the batches' ranks (target sets: aligned with each row's targets, as the
    slices need them; the result keeps each row sorted), with the metrics by slice."""
    is_set = isinstance(eval_set, MultiTargetEvalSet)
    ranks = stack_target_set_ranks(parts) if is_set else np.concatenate(parts)
    slices = None
    if slice_basis is not None:
        protocol["slice_basis"] = slice_basis.describe()
        slices = slice_metrics(slice_basis, eval_set.histories, eval_set.targets, ranks, protocol)
    if is_set:
        ranks = sort_target_set_ranks(ranks)
    return EvalResult.from_ranks(ranks, eval_set.user_ids, protocol, slices)


def _rank_batch(
    model: RecommenderModel,
    eval_set: AnyEvalSet,
    rows: slice,
    config: EvalConfig,
    negatives: np.ndarray | None,
) -> BatchRanks:
    histories = eval_set.histories[rows]
    targets = eval_set.targets[rows]
    is_set = isinstance(eval_set, MultiTargetEvalSet)
    # The history filter is the evaluator's choice, never the model's (anchors sec. 4.4, item 3);
    # target sets always exclude it (the hold-out protocol, CLLM4Rec note sec. 5.4).
    exclude = histories if config.filter_history or is_set else None
    # only models with per-user parameters (CLLM4Rec) read who each history belongs to
    users = eval_set.user_ids[rows] if model.reads_users else None
    scores = model.score(histories, users)
    if scores is not None:
        if tuple(scores.shape) != (len(histories), model.num_items):
            raise ValueError(
                f"{model.name}.score gave shape {tuple(scores.shape)}, expected "
                f"({len(histories)}, {model.num_items})"
            )
        if is_set:
            ranks = target_set_ranks(scores, targets, exclude, aligned=True)
            return BatchRanks(ranks, "score", None)
        if negatives is None:
            return BatchRanks(ranks_from_scores(scores, targets, exclude), "score", None)
        ranks = ranks_from_sampled_negatives(scores, targets, negatives, exclude)
        return BatchRanks(ranks, "score", None)
    if negatives is not None:
        raise ValueError(
            f"the sampled protocol needs scores of chosen items, but {model.name}.score gives none"
        )
    # One slot past max(ks) per target tells whether ties with a target continue beyond the list.
    num_slots = max(len(target_set) for target_set in targets) if is_set else 1
    recommendations = model.recommend(
        histories, k=max(config.ks) + num_slots, exclude=exclude, users=users
    )
    list_length = recommendations.item_indices.shape[1]
    rank_cutoff = None if list_length >= model.num_items else list_length - num_slots
    if is_set:
        ranks = target_set_ranks_from_recommendations(recommendations, targets, aligned=True)
    else:
        ranks = ranks_from_recommendations(recommendations, targets)
    return BatchRanks(ranks, "recommend", rank_cutoff, recommendations.diagnostics)


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
