"""Splits from whole user sequences: leave-one-out (last = test, second last = valid), and the
per-user random hold-out of CLLM4Rec (sec. 5.3) and Mult-VAE, with set-valued targets."""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from llmrec.data.catalogue import Catalogue
from llmrec.data.config import HoldoutConfig
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
