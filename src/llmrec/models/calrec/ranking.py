"""CALRec's rankings from generations: sampled lines -> BM25 over the catalogue -> quasi-round-robin
merge, optionally fused with the dense ranking (reciprocal rank fusion).

A history whose rankings name fewer than k items is padded with the lowest-index unused items at
score -inf, which the evaluator counts as misses (no item gains from a model that said nothing);
excluded items pad only when too few others are left, last, as `top_k` ranks them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from llmrec.models.calrec.generate import SampledGenerations
from llmrec.recommendations import Exclusions, Recommendations
from llmrec.retrieval.bm25 import BM25Index
from llmrec.retrieval.merge import (
    duplicate_share,
    exact_match_share,
    order_generations,
    rank_items,
    round_robin_merge,
)
from llmrec.text.templates import normalize_text


@dataclass
class GroundingStats:
    """Running counts over sampled generations: how many name a catalogue line exactly (their
    BM25 top-1 document equals them) and how many repeat another sample of the same user."""

    generations: int = 0
    exact_matches: float = 0.0
    duplicates: float = 0.0

    def add(self, texts: Sequence[str], top_documents: Sequence[str | None]) -> None:
        self.generations += len(texts)
        self.exact_matches += exact_match_share(texts, top_documents) * len(texts)
        self.duplicates += duplicate_share(texts) * len(texts)

    def __add__(self, other: GroundingStats) -> GroundingStats:
        return GroundingStats(
            self.generations + other.generations,
            self.exact_matches + other.exact_matches,
            self.duplicates + other.duplicates,
        )

    def summary(self) -> dict[str, float]:
        if not self.generations:
            return {}
        return {
            "generations": self.generations,
            "exact_match_share": self.exact_matches / self.generations,
            "duplicate_share": self.duplicates / self.generations,
        }


@dataclass(frozen=True)
class HistoryList:
    """Beyond the paper (`extensions.history_list`): per prompt, the BM25 query of the history's
    own lines, whose ranking is one more list of the quasi-round-robin, walked before (`first`)
    or after the generations' lists. So the merge starts from, or falls back on, what plain
    BM25 over the history finds."""

    queries: Sequence[str]
    first: bool = True


def generation_rankings(
    sample: Callable[[Sequence[Sequence[int]]], list[SampledGenerations]],
    prompts: Sequence[Sequence[int]],
    index: BM25Index,
    depth: int,
    exclude: Exclusions = None,
    documents: Sequence[str] | None = None,
    stats: GroundingStats | None = None,
    history: HistoryList | None = None,
) -> list[list[int]]:
    """Per prompt, up to `depth` items: BM25 lists of its distinct generations (G lines from
    `sample`, transformers or vLLM), merged. With `documents` (the indexed texts) and `stats`,
    grounding counts are accumulated. With `history`, the BM25 list of each history's own text
    joins the merge (beyond the paper)."""
    sampled = sample(prompts)
    rankings = []
    for row, generations in enumerate(sampled):
        excluded = _excluded(exclude, row)
        groups = order_generations(generations.texts, generations.mean_logprobs)
        lists = [rank_items(index.scores(group.text), depth + len(excluded)) for group in groups]
        merged = lists
        if history is not None:
            own = rank_items(index.scores(history.queries[row]), depth + len(excluded))
            merged = [own, *lists] if history.first else [*lists, own]
        rankings.append(round_robin_merge(merged, depth, excluded).item_indices)
        if stats is not None and documents is not None:
            top = {
                g.text: (documents[int(r[0])] if len(r) else None)
                for g, r in zip(groups, lists, strict=True)
            }
            stats.add(generations.texts, [top[normalize_text(t)] for t in generations.texts])
    return rankings


def to_recommendations(
    rankings: Sequence[Sequence[int]], k: int, num_items: int, exclude: Exclusions = None
) -> Recommendations:
    """(B, k) items scored 1 / (position + 1), padded with unused items at -inf."""
    k = min(k, num_items)
    items = np.zeros((len(rankings), k), dtype=np.int64)
    scores = np.full((len(rankings), k), -np.inf, dtype=np.float32)
    for row, ranking in enumerate(rankings):
        chosen = [int(item) for item in ranking[:k]]
        items[row, : len(chosen)] = chosen
        scores[row, : len(chosen)] = 1.0 / np.arange(1, len(chosen) + 1)
        padding = padding_items(set(chosen), _excluded(exclude, row), k - len(chosen), num_items)
        items[row, len(chosen) :] = padding
    return Recommendations(items, scores)


def _excluded(exclude: Exclusions, row: int) -> set[int]:
    return {int(item) for item in exclude[row]} if exclude is not None else set()


def padding_items(used: set[int], excluded: set[int], count: int, num_items: int) -> list[int]:
    """`count` items to pad a short ranking: the lowest indices neither `used` nor `excluded`,
    then excluded ones only when too few others are left (k may exceed the allowed items)."""
    allowed = _lowest_unused(used | excluded, count, num_items)
    return allowed + _lowest_unused(used | set(allowed), count - len(allowed), num_items)


def _lowest_unused(used: set[int], count: int, num_items: int) -> list[int]:
    """The `count` lowest item indices not in `used`."""
    padding: list[int] = []
    for item in range(num_items):
        if len(padding) == count:
            break
        if item not in used:
            padding.append(item)
    return padding
