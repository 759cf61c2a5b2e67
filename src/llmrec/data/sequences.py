"""The canonical data set: a catalogue, per-user training sequences and held-out evaluation sets.

Every loader produces a `Dataset`; every model trains on `Dataset.train` and is evaluated on
`Dataset.valid` / `Dataset.test`. Sequences hold internal item indices, oldest first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from llmrec.data.catalogue import Catalogue

UserId = str


@dataclass(frozen=True)
class EvalSet:
    """Held-out next-item targets: row r asks for `targets[r]` given `histories[r]`.

    `histories` is everything the model may see for that user (oldest first); the target
    is never part of it.
    """

    user_ids: tuple[UserId, ...]
    histories: tuple[np.ndarray, ...]
    targets: np.ndarray  # (N,) int64 item indices

    def __post_init__(self) -> None:
        if not len(self.user_ids) == len(self.histories) == len(self.targets):
            raise ValueError("user_ids, histories and targets must have the same length")

    def __len__(self) -> int:
        return len(self.targets)

    def subset(self, rows: Sequence[int] | np.ndarray) -> EvalSet:
        rows = np.asarray(rows, dtype=np.int64)
        return EvalSet(
            tuple(self.user_ids[r] for r in rows),
            tuple(self.histories[r] for r in rows),
            self.targets[rows],
        )


@dataclass(frozen=True)
class MultiTargetEvalSet:
    """Held-out target sets: row r holds out the items `targets[r]` given `histories[r]`.

    Made by the per-user random hold-out (`splits.holdout_split`, CLLM4Rec sec. 5.3): each target
    set is non-empty, sorted, without repeats, and disjoint from its history. Same surface as
    `EvalSet` (`user_ids`, `histories`, `subset`); only `targets` holds sets.
    """

    user_ids: tuple[UserId, ...]
    histories: tuple[np.ndarray, ...]
    targets: tuple[np.ndarray, ...]  # one (T_u,) int64 array of item indices per row

    def __post_init__(self) -> None:
        if not len(self.user_ids) == len(self.histories) == len(self.targets):
            raise ValueError("user_ids, histories and targets must have the same length")
        if any(len(target_set) == 0 for target_set in self.targets):
            raise ValueError("every row needs at least one target item")

    def __len__(self) -> int:
        return len(self.targets)

    def subset(self, rows: Sequence[int] | np.ndarray) -> MultiTargetEvalSet:
        rows = np.asarray(rows, dtype=np.int64)
        return MultiTargetEvalSet(
            tuple(self.user_ids[r] for r in rows),
            tuple(self.histories[r] for r in rows),
            tuple(self.targets[r] for r in rows),
        )


AnyEvalSet = EvalSet | MultiTargetEvalSet


@dataclass(frozen=True)
class Dataset:
    """A split data set. `train[u]` is user u's training sequence (what models may fit on).

    `split` names how valid/test were made (e.g. "leave_one_out", "files", or
    "holdout(0.8/0.1/0.1, seed 0, test history train)"); under the hold-out, valid and test are
    `MultiTargetEvalSet`s.
    """

    name: str
    catalogue: Catalogue
    user_ids: tuple[UserId, ...]
    train: tuple[np.ndarray, ...]
    valid: AnyEvalSet
    test: AnyEvalSet
    split: str

    @property
    def num_items(self) -> int:
        return len(self.catalogue)

    @property
    def num_users(self) -> int:
        return len(self.user_ids)


def as_index_array(values: Sequence[int]) -> np.ndarray:
    return np.asarray(values, dtype=np.int64)


def sample_users(eval_set: AnyEvalSet, num_users: int | None, seed: int) -> AnyEvalSet:
    """A seeded subset of the users, in their original order (all of them when `num_users` is
    None or not smaller): the evaluator's `sample_users` and training's validation users."""
    if num_users is None or num_users >= len(eval_set):
        return eval_set
    rows = np.random.default_rng(seed).choice(len(eval_set), num_users, replace=False)
    return eval_set.subset(np.sort(rows))
