"""Tests of training/batching.py: length-pooled batches cover every row once, in a seeded order;
index lists pad and scatter to the dense counts they replace."""

from __future__ import annotations

import numpy as np
import torch

from llmrec.training import batching
from llmrec.training.batching import (
    count_batches,
    length_pooled_batches,
    pad_index_lists,
    scatter_counts,
)


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


def test_the_number_of_batches_is_known_without_planning() -> None:
    for rows in (1, 7, 8, 9, 399, 400, 401):
        batches = length_pooled_batches([1] * rows, 8, np.random.default_rng(0))
        assert len(batches) == count_batches(rows, 8)


def test_index_lists_pad_right_and_scatter_to_counts_on_their_device() -> None:
    indices = pad_index_lists([[2, 0, 2], [], [4]], pad=5)
    assert indices.tolist() == [[2, 0, 2], [5, 5, 5], [4, 5, 5]]
    assert pad_index_lists([[], []], pad=5).tolist() == [[5], [5]]  # never zero-width
    counts = scatter_counts(indices, 5)
    expected = torch.zeros(3, 5)  # the dense form the batches used to carry
    for row, items in enumerate([[2, 0, 2], [], [4]]):
        for item in items:
            expected[row, item] += 1.0
    assert counts.dtype == torch.float32 and torch.equal(counts, expected)
