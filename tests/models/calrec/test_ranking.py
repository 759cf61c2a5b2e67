"""CALRec's generative rankings: BM25 lists of the generations merged quasi-round-robin, and the
history's own BM25 list joining the merge (`extensions.history_list`, beyond the paper)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from llmrec.models.calrec.generate import SampledGenerations
from llmrec.models.calrec.ranking import GroundingStats, HistoryList, generation_rankings
from llmrec.retrieval.bm25 import BM25Index

DOCUMENTS = [
    "red lipstick matte",
    "blue eyeliner pencil",
    "red nail polish",
    "green face mask",
    "blue face cream",
]


def _sample(prompts: Sequence[Sequence[int]]) -> list[SampledGenerations]:
    """Every prompt 'generates' one line: 'red lipstick' (BM25: item 0, then item 2 by 'red')."""
    return [SampledGenerations(["red lipstick"], [-1.0], [2], [[5, 6]]) for _ in prompts]


@pytest.fixture(scope="module")
def index() -> BM25Index:
    return BM25Index.build(DOCUMENTS)


@pytest.mark.parametrize(
    ("history", "exclude", "expected"),
    [
        (None, None, [0, 2]),  # the paper: the generations' lists only
        (HistoryList(["green face mask"], first=True), None, [3, 0, 4, 2]),
        (HistoryList(["green face mask"], first=False), None, [0, 3, 2, 4]),
        (HistoryList(["green face mask"], first=True), [{3}], [0, 4, 2]),  # excluded: skipped
    ],
    ids=["off", "first", "last", "first-excluding"],
)
def test_the_history_list_joins_the_round_robin(index, history, exclude, expected) -> None:
    # the history query ranks 3 ('green face mask') then 4 ('face'); 'red lipstick' ranks 0, 2
    stats = GroundingStats()
    rankings = generation_rankings(
        _sample, [[1]], index, 4, exclude, DOCUMENTS, stats, history=history
    )
    assert rankings == [expected]
    assert stats.generations == 1  # the history's query is not counted as a generation
