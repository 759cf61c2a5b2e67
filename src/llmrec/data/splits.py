"""Splits from whole user sequences: leave-one-out (last = test, second last = valid), the
per-user random hold-out of CLLM4Rec (sec. 5.3) and Mult-VAE, with set-valued targets, and the
global temporal split (one cut in time for every user; Ji et al., TOIS 2023)."""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from llmrec.data.catalogue import Catalogue
from llmrec.data.config import HoldoutConfig, TemporalConfig
from llmrec.data.sequences import Dataset, EvalSet, MultiTargetEvalSet, UserId
from llmrec.errors import DataError

HOLDOUT_MIN_ITEMS = 3  # one item each for train, valid and test


def leave_one_out(
    name: str,
    catalogue: Catalogue,
    user_ids: Sequence[UserId],
    sequences: Sequence[np.ndarray],
) -> Dataset:
    """Last item = test target, second last = valid target, the rest = training sequence.

    Users need at least 3 items so that training keeps one; shorter users raise (never dropped
    silently: filter them in the loader with `skip_bad` and report the count).
    """
    for user_id, sequence in zip(user_ids, sequences, strict=True):
        if len(sequence) < 3:
            raise DataError(
                f"user {user_id!r} has {len(sequence)} items; leave-one-out needs at least 3"
            )
    train = tuple(np.asarray(s[:-2], dtype=np.int64) for s in sequences)
    valid = EvalSet(
        tuple(user_ids),
        train,
        np.asarray([s[-2] for s in sequences], dtype=np.int64),
    )
    test = EvalSet(
        tuple(user_ids),
        tuple(np.asarray(s[:-1], dtype=np.int64) for s in sequences),
        np.asarray([s[-1] for s in sequences], dtype=np.int64),
    )
    return Dataset(name, catalogue, tuple(user_ids), train, valid, test, "leave_one_out")


@dataclass(frozen=True)
class HoldoutSplit:
    """A hold-out `Dataset` and the users dropped for having fewer than 3 distinct items."""

    dataset: Dataset
    dropped_user_ids: tuple[UserId, ...]


def describe_holdout(config: HoldoutConfig) -> str:
    """The split's name, recorded with every result: ratios, seed and the test history."""
    history = "train" if config.test_history == "train" else "train+valid"
    ratios = f"{config.train_ratio:g}/{config.valid_ratio:g}/{config.test_ratio:g}"
    return f"holdout({ratios}, seed {config.seed}, test history {history})"


def holdout_sizes(num_items: int, config: HoldoutConfig) -> tuple[int, int]:
    """(valid, test) sizes for a user with `num_items` distinct items (at least 3).

    choice: floor(ratio x n), at least 1 each, and training keeps at least 1 (the larger held-out
    part gives way); the paper's rounding is unknown (CLLM4Rec note sec. 5.3).
    """
    if num_items < HOLDOUT_MIN_ITEMS:
        raise ValueError(f"the hold-out needs at least {HOLDOUT_MIN_ITEMS} items, got {num_items}")
    # The small epsilon keeps 0.29 x 100 = 28.999... at 29.
    num_valid = max(1, math.floor(config.valid_ratio * num_items + 1e-9))
    num_test = max(1, math.floor(config.test_ratio * num_items + 1e-9))
    while num_valid + num_test > num_items - 1:
        if num_valid >= num_test:
            num_valid -= 1
        else:
            num_test -= 1
    return num_valid, num_test


def holdout_split(
    name: str,
    catalogue: Catalogue,
    user_ids: Sequence[UserId],
    sequences: Sequence[np.ndarray],
    config: HoldoutConfig,
) -> HoldoutSplit:
    """Split each user's distinct items at random into train / valid / test sets.

    A user's items are taken once each, in order of first occurrence. Each user's draw uses a
    generator seeded by (config.seed, CRC-32 of the user id), so it does not depend on the other
    users. Training sequences keep the time order; valid and test targets are sorted sets. The
    valid history is the training items; the test history is the training items
    (`test_history: train`, official CLLM4Rec) or training + valid items in time order. Users
    with fewer than 3 distinct items are dropped and returned; a DataError when that is all.
    """
    kept_users, train, valid_targets, test_histories, test_targets = [], [], [], [], []
    dropped = []
    for user_id, sequence in zip(user_ids, sequences, strict=True):
        sequence = np.asarray(sequence, dtype=np.int64)
        _, first = np.unique(sequence, return_index=True)
        items = sequence[np.sort(first)]  # distinct items, in order of first occurrence
        if len(items) < HOLDOUT_MIN_ITEMS:
            dropped.append(user_id)
            continue
        num_valid, num_test = holdout_sizes(len(items), config)
        rng = np.random.default_rng([config.seed, zlib.crc32(user_id.encode("utf-8"))])
        order = rng.permutation(len(items))
        test_positions = order[:num_test]
        valid_positions = order[num_test : num_test + num_valid]
        train_positions = np.sort(order[num_test + num_valid :])
        kept_users.append(user_id)
        train.append(items[train_positions])
        valid_targets.append(np.sort(items[valid_positions]))
        test_targets.append(np.sort(items[test_positions]))
        if config.test_history == "train":
            test_histories.append(train[-1])
        else:
            seen = np.sort(np.concatenate([train_positions, valid_positions]))
            test_histories.append(items[seen])
    if not kept_users:
        problem = f"no user of data set {name!r} has the {HOLDOUT_MIN_ITEMS} distinct items"
        raise DataError(problem + " the hold-out split needs (one each for train, valid, test)")
    users = tuple(kept_users)
    valid = MultiTargetEvalSet(users, tuple(train), tuple(valid_targets))
    test = MultiTargetEvalSet(users, tuple(test_histories), tuple(test_targets))
    dataset = Dataset(name, catalogue, users, tuple(train), valid, test, describe_holdout(config))
    return HoldoutSplit(dataset, tuple(dropped))


@dataclass(frozen=True)
class TemporalSplit:
    """A temporal `Dataset`, the whole sequences of its users, and what the split did."""

    dataset: Dataset
    full_sequences: tuple[np.ndarray, ...]  # aligned with dataset.user_ids
    record: dict[str, Any]


def temporal_cuts(timestamps: Sequence[np.ndarray], config: TemporalConfig) -> tuple[float, float]:
    """(validation cut, test cut): the given times, or the timestamps of the interactions at the
    fractions (1 - valid - test) and (1 - test) of all interactions in time order. An
    interaction at a cut's time belongs to the later period, so with ties at a cut the later
    period holds a little more than its fraction."""
    given = config.start_seconds()
    if given is not None:
        return given
    ordered = np.sort(np.concatenate(timestamps))
    total = len(ordered)
    valid_at = math.floor(total * (1.0 - config.valid_fraction - config.test_fraction) + 1e-9)
    test_at = math.floor(total * (1.0 - config.test_fraction) + 1e-9)
    return float(ordered[min(valid_at, total - 1)]), float(ordered[min(test_at, total - 1)])


def describe_time(seconds: float) -> str:
    """A cut as its number and, where it reads as Unix seconds, its UTC date/time."""
    shown = f"{seconds:.10g}"
    if 0 <= seconds < 2**34:  # Unix seconds up to year 2514
        shown += f" ({datetime.fromtimestamp(seconds, UTC):%Y-%m-%dT%H:%M:%SZ})"
    return shown


def temporal_split(
    name: str,
    catalogue: Catalogue,
    user_ids: Sequence[UserId],
    sequences: Sequence[np.ndarray],
    timestamps: Sequence[np.ndarray],
    config: TemporalConfig,
) -> TemporalSplit:
    """One global cut in time for every user (docs/data.md, the temporal split).

    Training: each user's interactions before the validation cut; users with none are not
    training users. Validation: users with a training interaction and one between the cuts;
    history = their training items, target = their FIRST interaction between the cuts. Test:
    users with an interaction before the test cut and one from it on; history = everything
    before the test cut, target = their FIRST interaction from the test cut on. Targets never
    seen in training (cold items) are kept and counted. `timestamps[u]` are user u's times,
    ascending (the loaders sort each user by time).
    """
    valid_cut, test_cut = temporal_cuts(timestamps, config)
    kept_users, train, full = [], [], []
    valid_rows: tuple[list, list, list] = ([], [], [])
    test_rows: tuple[list, list, list] = ([], [], [])
    for user_id, sequence, times in zip(user_ids, sequences, timestamps, strict=True):
        sequence, times = np.asarray(sequence, dtype=np.int64), np.asarray(times)
        num_train = int(np.searchsorted(times, valid_cut, side="left"))
        num_before_test = int(np.searchsorted(times, test_cut, side="left"))
        if num_train:
            kept_users.append(user_id)
            train.append(sequence[:num_train])
            full.append(sequence)
            if num_before_test > num_train:
                _add_row(valid_rows, user_id, sequence[:num_train], sequence[num_train])
        if num_before_test and num_before_test < len(sequence):
            _add_row(test_rows, user_id, sequence[:num_before_test], sequence[num_before_test])
    valid, test = _eval_set(valid_rows), _eval_set(test_rows)
    counts = _period_counts(timestamps, valid_cut, test_cut)
    _require_periods(name, counts, len(valid), len(test))
    method = (
        "given times"
        if config.start_seconds()
        else (
            f"{1 - config.valid_fraction - config.test_fraction:g}/{config.valid_fraction:g}/"
            f"{config.test_fraction:g} of interactions in time"
        )
    )
    split = (
        f"temporal({method}; valid from {describe_time(valid_cut)}, "
        f"test from {describe_time(test_cut)})"
    )
    dataset = Dataset(name, catalogue, tuple(kept_users), tuple(train), valid, test, split)
    seen = np.zeros(len(catalogue), dtype=bool)
    seen[np.concatenate(train)] = True
    record = {
        "split": split,
        "valid_start": valid_cut,
        "test_start": test_cut,
        "interactions": counts,
        "training_users": len(kept_users),
        "users_without_training_items": len(user_ids) - len(kept_users),
        "valid_rows": len(valid),
        "test_rows": len(test),
        "cold_valid_targets": int((~seen[valid.targets]).sum()),
        "cold_test_targets": int((~seen[test.targets]).sum()),
    }
    return TemporalSplit(dataset, tuple(full), record)


def _add_row(rows: tuple[list, list, list], user_id: UserId, history: np.ndarray, target) -> None:
    rows[0].append(user_id)
    rows[1].append(history)
    rows[2].append(int(target))


def _eval_set(rows: tuple[list, list, list]) -> EvalSet:
    return EvalSet(tuple(rows[0]), tuple(rows[1]), np.asarray(rows[2], dtype=np.int64))


def _period_counts(
    timestamps: Sequence[np.ndarray], valid_cut: float, test_cut: float
) -> dict[str, int]:
    times = np.concatenate(timestamps)
    num_train = int((times < valid_cut).sum())
    num_test = int((times >= test_cut).sum())
    return {"train": num_train, "valid": len(times) - num_train - num_test, "test": num_test}


def _require_periods(name: str, counts: dict[str, int], num_valid: int, num_test: int) -> None:
    """Each period needs interactions, and valid and test need rows (a user with a history)."""
    for period, count in (("train", counts["train"]), ("valid", num_valid), ("test", num_test)):
        if not count:
            raise DataError(
                f"the temporal split of data set {name!r} leaves {period} empty "
                f"(interactions per period: {counts}); move the cuts (data.temporal)"
            )
