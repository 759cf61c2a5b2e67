"""Batches of similar length in a random order: little padding, still a random order."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

POOL_BATCHES = 50  # batches per pool sorted by length


def length_pooled_batches(
    lengths: Sequence[int], batch_size: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """Row indices of each batch: shuffle the rows, sort them longest first within pools of
    POOL_BATCHES batches, cut the pools into batches, shuffle the batches."""
    order = rng.permutation(len(lengths))
    shuffled_lengths = np.asarray(lengths)[order]
    pool = batch_size * POOL_BATCHES
    batches = []
    for start in range(0, len(order), pool):
        rows = order[start : start + pool]
        rows = rows[np.argsort(-shuffled_lengths[start : start + pool], kind="stable")]
        batches += [
            rows[offset : offset + batch_size] for offset in range(0, len(rows), batch_size)
        ]
    return [batches[index] for index in rng.permutation(len(batches))]
