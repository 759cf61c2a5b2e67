"""Micro-batching: concurrent requests are answered by one `recommend_batch` call.

One worker task takes the first waiting request, waits `wait_s` for more (up to `max_batch`),
and runs the model in a worker thread, one batch at a time (a model is not thread-safe). Requests
with different k go in separate calls, so a batched answer equals the answer alone.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from llmrec.recommender import Query, RecommendedItem, Recommender


@dataclass
class _Job:
    query: Query
    k: int
    future: asyncio.Future = field(repr=False)


class MicroBatcher:
    def __init__(self, recommender: Recommender, max_batch: int = 16, wait_s: float = 0.005):
        self.recommender, self.max_batch, self.wait_s = recommender, max_batch, wait_s
        self._queue: asyncio.Queue[_Job | None] = asyncio.Queue()
        self._worker: asyncio.Task | None = None

    def start(self) -> None:
        self._worker = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Answer every request already queued, then end the worker."""
        if self._worker is not None:
            await self._queue.put(None)
            await self._worker
            self._worker = None

    async def submit(self, query: Query, k: int) -> list[RecommendedItem]:
        if self._worker is None or self._worker.done():
            raise RuntimeError("the batcher is not running (start it in the app's lifespan)")
        future = asyncio.get_running_loop().create_future()
        await self._queue.put(_Job(query, k, future))
        return await future

    async def _run(self) -> None:
        while (first := await self._queue.get()) is not None:
            if self.wait_s > 0 and self._queue.qsize() < self.max_batch - 1:
                await asyncio.sleep(self.wait_s)
            jobs, stopping = [first], False
            while len(jobs) < self.max_batch and not self._queue.empty():
                job = self._queue.get_nowait()
                if job is None:
                    stopping = True
                    break
                jobs.append(job)
            for k in dict.fromkeys(job.k for job in jobs):
                await self._answer([job for job in jobs if job.k == k], k)
            if stopping:
                return

    async def _answer(self, jobs: list[_Job], k: int) -> None:
        queries = [job.query for job in jobs]
        try:
            results = await asyncio.to_thread(self.recommender.recommend_batch, queries, k)
        except Exception as error:
            if len(jobs) > 1:  # answer one by one, so only the bad request gets the error
                for job in jobs:
                    await self._answer([job], k)
            elif not jobs[0].future.done():
                jobs[0].future.set_exception(error)
            return
        for job, items in zip(jobs, results, strict=True):
            if not job.future.done():  # a client that went away leaves a cancelled future
                job.future.set_result(items)
