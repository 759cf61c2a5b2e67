"""CALRec's generative ranking: sampled lines -> BM25 over the catalogue -> quasi-round-robin.

A history whose generations match fewer than k items is padded with the lowest-index unused items
at score -inf, which the evaluator counts as misses (no item gains from a model that said nothing).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import numpy as np

from llmrec.models.base import Exclusions, Recommendations
from llmrec.models.calrec.generate import GenerationConfig, sample_generations
from llmrec.retrieval.bm25 import BM25Index
from llmrec.retrieval.merge import order_generations, rank_items, round_robin_merge


def rank_by_generation(
    language_model,
    tokenizer,
    prompts: Sequence[Sequence[int]],
    index: BM25Index,
    config: GenerationConfig,
    k: int,
    exclude: Exclusions = None,
    stop_ids: Collection[int] | None = None,
) -> Recommendations:
    sampled = sample_generations(language_model, tokenizer, prompts, config, stop_ids)
    num_items = index.num_documents
    k = min(k, num_items)
    item_rows = np.zeros((len(prompts), k), dtype=np.int64)
    score_rows = np.full((len(prompts), k), -np.inf, dtype=np.float32)
    for row, generations in enumerate(sampled):
        excluded = {int(i) for i in exclude[row]} if exclude is not None else set()
        groups = order_generations(generations.texts, generations.mean_logprobs)
        depth = k + len(excluded)
        lists = [rank_items(index.scores(group.text), depth) for group in groups]
        merged = round_robin_merge(lists, k, excluded)
        chosen = merged.item_indices
        item_rows[row, : len(chosen)] = chosen
        score_rows[row, : len(chosen)] = merged.scores
        item_rows[row, len(chosen) :] = _padding(set(chosen) | excluded, k - len(chosen), num_items)
    return Recommendations(item_rows, score_rows)


def _padding(used: set[int], count: int, num_items: int) -> list[int]:
    padding = []
    for item in range(num_items):
        if len(padding) == count:
            break
        if item not in used:
            padding.append(item)
    return padding
