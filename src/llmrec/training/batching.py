"""Batches made one at a time, and the pieces the batch sources share.

A `BatchSource` (training/loop.py) plans an epoch as row indices (cheap: a seeded shuffle of row
numbers) and collates each batch only when the loop asks for it. Multinomial targets travel as
padded index lists and become dense rows on the device (`scatter_counts`), so host memory holds
one batch of indices, never users x items.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

POOL_BATCHES = 50  # batches per pool sorted by length


def length_pooled_batches(
    lengths: Sequence[int] | np.ndarray, batch_size: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """Row indices of each batch: shuffle the rows, sort them longest first within pools of
    POOL_BATCHES batches, cut the pools into batches, shuffle the batches.

    There are always ceil(rows / batch_size) batches (`count_batches`): a pool holds a whole
    number of batches."""
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


def count_batches(rows: int, batch_size: int) -> int:
    """Batches of `rows` rows cut `batch_size` at a time (the last may be short)."""
    return -(-rows // batch_size)


def pad_index_lists(lists: Sequence[Sequence[int]], pad: int) -> torch.Tensor:
    """(B, L) long tensor of index lists, right-padded with `pad` to the longest (L >= 1)."""
    width = max((len(indices) for indices in lists), default=0)
    padded = np.full((len(lists), max(width, 1)), pad, dtype=np.int64)
    for row, indices in enumerate(lists):
        padded[row, : len(indices)] = indices
    return torch.from_numpy(padded)


def scatter_counts(indices: torch.Tensor, num_columns: int) -> torch.Tensor:
    """(B, L) indices padded with `num_columns` -> (B, num_columns) float32 counts, made on the
    indices' device (a repeated index counts as often as it appears)."""
    dense = torch.zeros(len(indices), num_columns + 1, device=indices.device)
    ones = torch.ones(indices.shape, dtype=dense.dtype, device=indices.device)
    return dense.scatter_add_(1, indices, ones)[:, :num_columns]
