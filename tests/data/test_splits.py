"""Tests for data/splits.py: leave-one-out."""

from __future__ import annotations

import numpy as np
import pytest

from llmrec.data.catalogue import Catalogue, Item
from llmrec.data.splits import leave_one_out
from llmrec.errors import DataError


def _catalogue(size: int) -> Catalogue:
    return Catalogue.from_items(Item(f"i{index}") for index in range(size))


def test_last_item_is_test_and_second_last_is_valid() -> None:
    sequences = [np.array([0, 1, 2, 3]), np.array([4, 2, 1])]
    dataset = leave_one_out("toy", _catalogue(5), ["a", "b"], sequences)
    assert dataset.split == "leave_one_out"
    assert dataset.name == "toy"
    assert [list(train) for train in dataset.train] == [[0, 1], [4]]
    assert list(dataset.valid.targets) == [2, 2]
    assert list(dataset.test.targets) == [3, 1]
    assert [list(history) for history in dataset.test.histories] == [[0, 1, 2], [4, 2]]


def test_no_target_position_leaks_into_training() -> None:
    sequences = [np.array([5, 6, 7, 8, 9]), np.array([1, 1, 1])]
    dataset = leave_one_out("toy", _catalogue(10), ["a", "b"], sequences)
    for row, whole in enumerate(sequences):
        np.testing.assert_array_equal(dataset.valid.histories[row], dataset.train[row])
        np.testing.assert_array_equal(
            dataset.test.histories[row], [*dataset.train[row], dataset.valid.targets[row]]
        )
        assert len(dataset.train[row]) == len(whole) - 2


def test_arrays_are_int64() -> None:
    dataset = leave_one_out("toy", _catalogue(3), ["a"], [np.array([0, 1, 2], dtype=np.int32)])
    assert dataset.train[0].dtype == np.int64
    assert dataset.valid.targets.dtype == np.int64
    assert dataset.test.histories[0].dtype == np.int64


def test_users_shorter_than_three_items_raise() -> None:
    with pytest.raises(DataError, match="'short' has 2 items"):
        leave_one_out(
            "toy", _catalogue(3), ["ok", "short"], [np.array([0, 1, 2]), np.array([0, 1])]
        )
