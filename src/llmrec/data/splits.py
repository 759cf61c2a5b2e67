"""Splits from whole user sequences: leave-one-out (last = test, second last = valid)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from llmrec.data.catalogue import Catalogue
from llmrec.data.sequences import Dataset, EvalSet, UserId
from llmrec.errors import DataError


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
