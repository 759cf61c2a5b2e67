"""Tests of training/batching.py: length-pooled batches cover every row once, in a seeded order."""

from __future__ import annotations

import numpy as np

from llmrec.training import batching
from llmrec.training.batching import length_pooled_batches


def _batches(lengths, seed: int) -> list[np.ndarray]:
    return length_pooled_batches(lengths, 4, np.random.default_rng(seed))


def test_every_row_once_in_full_batches_sorted_within_pools(monkeypatch) -> None:
    monkeypatch.setattr(batching, "POOL_BATCHES", 2)  # pools of 8 rows
    lengths = np.random.default_rng(0).integers(1, 50, size=30)
    batches = _batches(lengths, seed=1)
    rows = np.concatenate(batches)
    assert sorted(rows.tolist()) == list(range(30))
    assert sorted(len(batch) for batch in batches) == [2, 4, 4, 4, 4, 4, 4, 4]  # 30 = 7 x 4 + 2
    # Rebuild the pools: each pool of 8 shuffled rows is cut longest first into two batches.
    order = np.random.default_rng(1).permutation(30)
    for start in range(0, 30, 8):
        pool = set(order[start : start + 8].tolist())
        members = [batch for batch in batches if set(batch.tolist()) <= pool]
        in_pool = np.concatenate(sorted(members, key=lambda b: -lengths[b].max()))
        assert sorted(in_pool.tolist()) == sorted(pool)
        assert np.all(np.diff(lengths[in_pool]) <= 0)


def test_the_order_depends_only_on_the_seed() -> None:
    lengths = list(range(40))
    same = [b.tolist() for b in _batches(lengths, 3)] == [b.tolist() for b in _batches(lengths, 3)]
    other = [b.tolist() for b in _batches(lengths, 3)] != [b.tolist() for b in _batches(lengths, 4)]
    assert same and other
