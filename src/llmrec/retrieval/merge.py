"""The quasi-round-robin merge of CALRec's inference step (shared/papers/calrec.md sec. 6): order
the distinct sampled generations, then take one new item per generation per round from each
generation's BM25 ranking, removing duplicates and excluded items. Also the grounding metrics.

choice: "quasi" is our reconstruction ([I] in the paper notes): distinct generations (after
whitespace normalisation) are ordered by how many of the G samples produced them, ties by mean
token log-prob, then by first occurrence; each round walks the generations in that order and
takes each one's next ranked item that is neither chosen nor excluded (GPT4Rec-style
de-duplication), so a round adds at most one item per generation and a generation whose next
item was already chosen by an earlier one adds nothing in that round.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np

from llmrec.text.templates import normalize_text


@dataclass(frozen=True)
class GenerationGroup:
    """One distinct generation: its normalised text, how many samples gave it, their log-prob."""

    text: str  # whitespace-normalised
    count: int  # samples with this text
    mean_logprob: float  # mean over those samples of each sample's mean token log-prob
    first_index: int  # position of its first sample among the G


@dataclass(frozen=True)
class MergedRanking:
    """Merged items in merge order, with a score strictly decreasing along that order."""

    item_indices: list[int]
    scores: list[float]  # 1 / (position + 1): monotone in merge position, independent of k


def order_generations(texts: Sequence[str], logprobs: Sequence[float]) -> list[GenerationGroup]:
    """Group identical generations (after whitespace normalisation) and order the groups by
    count descending, then mean log-prob descending, then first occurrence."""
    if len(texts) != len(logprobs):
        raise ValueError(f"{len(texts)} texts but {len(logprobs)} log-probs")
    members: dict[str, list[int]] = {}
    for index, text in enumerate(texts):
        members.setdefault(normalize_text(text), []).append(index)
    groups = [
        GenerationGroup(
            text=text,
            count=len(indices),
            mean_logprob=float(np.mean([logprobs[index] for index in indices])),
            first_index=indices[0],
        )
        for text, indices in members.items()
    ]
    return sorted(groups, key=lambda group: (-group.count, -group.mean_logprob, group.first_index))


def rank_items(scores: np.ndarray, depth: int) -> np.ndarray:
    """Indices of the `depth` highest positive scores, descending, ties to the lower index.

    choice: items scoring 0 (no query term in common) are left out of a generation's ranking, so
    a generation contributes only items it actually matched. For `round_robin_merge` to fill k
    slots, `depth = k + len(exclude)` per generation is always enough.
    """
    order = np.argsort(-scores, kind="stable")[:depth]  # stable: equal scores keep index order
    return order[scores[order] > 0]


def round_robin_merge(
    ranked_lists: Sequence[Sequence[int] | np.ndarray],
    k: int,
    exclude: Collection[int] = (),
) -> MergedRanking:
    """Round r = 0, 1, ...: for each list in order, take its r-th item unless it is already
    chosen or excluded; stop at k items or when every list is exhausted (then fewer than k)."""
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    unavailable = {int(item) for item in exclude}  # excluded or already chosen
    chosen: list[int] = []
    longest = max((len(ranked) for ranked in ranked_lists), default=0)
    for rank in range(longest):
        for ranked in ranked_lists:
            if len(chosen) == k:
                return _merged(chosen)
            if rank < len(ranked) and int(ranked[rank]) not in unavailable:
                chosen.append(int(ranked[rank]))
                unavailable.add(chosen[-1])  # de-duplication
    return _merged(chosen)


def _merged(chosen: list[int]) -> MergedRanking:
    return MergedRanking(chosen, [1.0 / (position + 1) for position in range(len(chosen))])


# --- grounding metrics -------------------------------------------------------------------------
def exact_match_share(generations: Sequence[str], top_documents: Sequence[str | None]) -> float:
    """Share of generations equal (after whitespace normalisation, case kept) to the text of
    their BM25 top-1 document; `top_documents[i]` is None when generation i matched nothing."""
    if len(generations) != len(top_documents):
        raise ValueError(f"{len(generations)} generations but {len(top_documents)} documents")
    if not generations:
        raise ValueError("no generations")
    matches = sum(
        document is not None and normalize_text(text) == normalize_text(document)
        for text, document in zip(generations, top_documents, strict=True)
    )
    return matches / len(generations)


def duplicate_share(generations: Sequence[str]) -> float:
    """Share of the G samples that repeat an earlier sample (after whitespace normalisation):
    (G - distinct) / G, so 0 when all differ and (G - 1) / G when all are the same."""
    if not generations:
        raise ValueError("no generations")
    distinct = {normalize_text(text) for text in generations}
    return (len(generations) - len(distinct)) / len(generations)
