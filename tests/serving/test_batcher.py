"""Micro-batching: concurrent requests share model calls, answers equal the answers alone."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from llmrec.errors import DataError
from llmrec.recommender import Query, Recommender
from llmrec.serving.batcher import MicroBatcher


class _Counting(Recommender):
    def __init__(self, model) -> None:
        super().__init__(model)
        self.batch_sizes: list[int] = []

    def recommend_batch(self, histories, k=10, exclude_history=True, candidates=None):
        self.batch_sizes.append(len(histories))
        return super().recommend_batch(histories, k, exclude_history, candidates)


def _run(recommender: Recommender, jobs: list[tuple[Query, int]], max_batch: int) -> list:
    async def main() -> list:
        batcher = MicroBatcher(recommender, max_batch=max_batch, wait_s=0.05)
        batcher.start()
        answers = await asyncio.gather(
            *(batcher.submit(query, k) for query, k in jobs), return_exceptions=True
        )
        await batcher.stop()
        return answers

    return asyncio.run(main())


def test_concurrent_requests_are_batched_by_k(pop_dir: Path) -> None:
    recommender = _Counting(Recommender.load(pop_dir).model)
    jobs = [(Query([f"i{n}"]), 3) for n in range(7)] + [(Query(["i1"]), 5)]
    answers = _run(recommender, jobs, max_batch=4)
    assert recommender.batch_sizes == [4, 3, 1]  # 4 at k=3, then 3 at k=3 and 1 at k=5
    for (query, k), answer in zip(jobs, answers, strict=True):
        assert answer == Recommender.load(pop_dir).recommend(query.history, k)


def test_a_bad_request_fails_alone(pop_dir: Path) -> None:
    recommender = Recommender.load(pop_dir)
    jobs = [(Query(["i1"]), 3), (Query(["i1"], candidates=["nope"]), 3), (Query(["i2"]), 3)]
    first, bad, last = _run(recommender, jobs, max_batch=8)
    assert isinstance(bad, DataError) and "nope" in str(bad)
    assert len(first) == 3 and len(last) == 3


def test_submit_before_start_is_a_clear_error(pop_dir: Path) -> None:
    batcher = MicroBatcher(Recommender.load(pop_dir))
    with pytest.raises(RuntimeError, match="not running"):
        asyncio.run(batcher.submit(Query(["i1"]), 3))
