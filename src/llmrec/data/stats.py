"""Data set statistics (users, items, interactions, sequence lengths, density) and a text table.

Interactions and lengths count each user's whole known sequence: train + valid target + test
target under leave-one-out, test history + target for UniSRec files, and all three files for
DEALRec (pass `LoadResult.full_sequences`, since the evaluation sets keep one target each).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from llmrec.data.sequences import Dataset, EvalSet


@dataclass(frozen=True)
class DataStats:
    """Summary numbers of one data set; lengths are per-user whole-sequence lengths."""

    name: str
    split: str
    num_users: int
    num_items: int
    num_interactions: int
    mean_length: float
    median_length: float
    max_length: int
    min_length: int
    density: float  # interactions / (users x items)
    num_valid: int  # evaluation rows
    num_test: int


def sequence_lengths(dataset: Dataset) -> np.ndarray:
    """Per-user length of the longest sequence the dataset shows: train, or history + target."""
    lengths = {
        user_id: len(train) for user_id, train in zip(dataset.user_ids, dataset.train, strict=True)
    }
    for eval_set in (dataset.valid, dataset.test):
        _extend(lengths, eval_set)
    return np.asarray([lengths[user_id] for user_id in dataset.user_ids], dtype=np.int64)


def _extend(lengths: dict[str, int], eval_set: EvalSet) -> None:
    for user_id, history in zip(eval_set.user_ids, eval_set.histories, strict=True):
        lengths[user_id] = max(lengths.get(user_id, 0), len(history) + 1)


def compute_stats(
    dataset: Dataset, full_sequences: Sequence[np.ndarray] | None = None
) -> DataStats:
    """Statistics of `dataset`, from `full_sequences` (aligned with its users) when given."""
    if full_sequences is None:
        lengths = sequence_lengths(dataset)
    else:
        if len(full_sequences) != dataset.num_users:
            raise ValueError("full_sequences must have one sequence per dataset user")
        lengths = np.asarray([len(sequence) for sequence in full_sequences], dtype=np.int64)
    num_interactions = int(lengths.sum())
    cells = dataset.num_users * dataset.num_items
    has_users = len(lengths) > 0
    return DataStats(
        name=dataset.name,
        split=dataset.split,
        num_users=dataset.num_users,
        num_items=dataset.num_items,
        num_interactions=num_interactions,
        mean_length=float(lengths.mean()) if has_users else 0.0,
        median_length=float(np.median(lengths)) if has_users else 0.0,
        max_length=int(lengths.max()) if has_users else 0,
        min_length=int(lengths.min()) if has_users else 0,
        density=num_interactions / cells if cells else 0.0,
        num_valid=len(dataset.valid),
        num_test=len(dataset.test),
    )


_COLUMNS = (
    "data set",
    "split",
    "users",
    "items",
    "interactions",
    "mean / median / max / min length",
    "density",
    "valid rows",
    "test rows",
)


def _row(stats: DataStats) -> tuple[str, ...]:
    lengths = (
        f"{stats.mean_length:.2f} / {stats.median_length:g} / {stats.max_length} / "
        f"{stats.min_length}"
    )
    return (
        stats.name,
        stats.split,
        f"{stats.num_users:,}",
        f"{stats.num_items:,}",
        f"{stats.num_interactions:,}",
        lengths,
        f"{stats.density:.5f}",
        f"{stats.num_valid:,}",
        f"{stats.num_test:,}",
    )


def _cells(row: tuple[str, ...], widths: list[int]) -> list[str]:
    """Text columns (name, split) left-aligned, numbers right-aligned."""
    return [
        cell.ljust(width) if column < 2 else cell.rjust(width)
        for column, (cell, width) in enumerate(zip(row, widths, strict=True))
    ]


def format_stats(stats: DataStats | Sequence[DataStats]) -> str:
    """A plain-text table with one row per data set, columns aligned."""
    rows = [_COLUMNS] + [_row(one) for one in ([stats] if isinstance(stats, DataStats) else stats)]
    widths = [max(len(row[column]) for row in rows) for column in range(len(_COLUMNS))]
    lines = ["  ".join(_cells(row, widths)) for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(line.rstrip() for line in lines) + "\n"
