"""Tests for data/splits.py: leave-one-out and the per-user random hold-out."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from llmrec.data.catalogue import Catalogue, Item
from llmrec.data.config import DataConfig, HoldoutConfig
from llmrec.data.registry import load_dataset
from llmrec.data.splits import describe_holdout, holdout_sizes, holdout_split, leave_one_out
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


# --- per-user random hold-out ------------------------------------------------------------------


def _holdout(sequences, config=None, users=None):
    users = users or [f"u{row}" for row in range(len(sequences))]
    size = 1 + max(int(np.max(sequence)) for sequence in sequences)
    return holdout_split("toy", _catalogue(size), users, sequences, config or HoldoutConfig())


def _random_sequences(num_users: int = 40, seed: int = 3) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 60, size=int(rng.integers(3, 40))) for _ in range(num_users)]


@pytest.mark.parametrize("test_history", ["train", "train_valid"])
def test_holdout_never_leaks_valid_or_test_items_into_training(test_history: str) -> None:
    sequences = _random_sequences()
    split = _holdout(sequences, HoldoutConfig(test_history=test_history))
    dataset = split.dataset
    assert dataset.num_users + len(split.dropped_user_ids) == len(sequences)
    by_user = dict(zip([f"u{row}" for row in range(len(sequences))], sequences, strict=True))
    for row, user in enumerate(dataset.user_ids):
        train = set(dataset.train[row].tolist())
        valid = set(dataset.valid.targets[row].tolist())
        test = set(dataset.test.targets[row].tolist())
        assert train and valid and test  # at least one item in each part
        assert not train & valid and not train & test and not valid & test
        assert train | valid | test == set(by_user[user].tolist())
        np.testing.assert_array_equal(dataset.valid.histories[row], dataset.train[row])
        seen = set(dataset.test.histories[row].tolist())
        assert not seen & test
        assert seen == (train if test_history == "train" else train | valid)


def _part(dataset, part: str) -> tuple[np.ndarray, ...]:
    return {
        "train": dataset.train,
        "valid_targets": dataset.valid.targets,
        "test_targets": dataset.test.targets,
    }[part]


def test_holdout_is_reproducible_per_seed_and_independent_of_other_users() -> None:
    sequences = _random_sequences()
    first, again = _holdout(sequences).dataset, _holdout(sequences).dataset
    for part in ("train", "valid_targets", "test_targets"):
        for a, b in zip(_part(first, part), _part(again, part), strict=True):
            np.testing.assert_array_equal(a, b)
    other = _holdout(sequences, HoldoutConfig(seed=1)).dataset
    assert any(
        not np.array_equal(a, b)
        for a, b in zip(first.test.targets, other.test.targets, strict=True)
    )
    # Without user u0, every other user keeps the same split (seeded by seed and user id).
    users = [f"u{row}" for row in range(len(sequences))]
    fewer = _holdout(sequences[1:], users=users[1:]).dataset
    for row, user in enumerate(fewer.user_ids):
        np.testing.assert_array_equal(fewer.test.targets[row], first.test.targets[row + 1])
        assert user == first.user_ids[row + 1]


def test_holdout_keeps_time_order_and_takes_repeats_once() -> None:
    sequence = np.array([9, 3, 9, 7, 3, 1, 5, 2, 8, 4, 6, 0])  # 10 distinct items
    dataset = _holdout([sequence]).dataset
    first_seen = [9, 3, 7, 1, 5, 2, 8, 4, 6, 0]
    train = dataset.train[0].tolist()
    assert train == [item for item in first_seen if item in train]  # time order of first sight
    assert len(train) == 8 and len(dataset.valid.targets[0]) == len(dataset.test.targets[0]) == 1
    assert dataset.train[0].dtype == np.int64 and dataset.test.targets[0].dtype == np.int64


def test_holdout_drops_users_with_fewer_than_three_distinct_items() -> None:
    sequences = [np.array([0, 1, 2]), np.array([0, 0, 1, 1]), np.array([4, 5])]
    split = _holdout(sequences, users=["ok", "repeats", "short"])
    assert split.dataset.user_ids == ("ok",)
    assert split.dropped_user_ids == ("repeats", "short")


def test_holdout_dropping_every_user_is_a_data_error() -> None:
    with pytest.raises(DataError, match="no user of data set 'toy' has the 3 distinct items"):
        _holdout([np.array([0, 0, 1, 1]), np.array([4, 5])])


@pytest.mark.parametrize(
    ("num_items", "valid_ratio", "test_ratio", "expected"),
    [
        (3, 0.1, 0.1, (1, 1)),
        (10, 0.1, 0.1, (1, 1)),
        (19, 0.1, 0.1, (1, 1)),
        (20, 0.1, 0.1, (2, 2)),
        (100, 0.29, 0.1, (29, 10)),  # 0.29 x 100 is 28.999... in floating point
        (10, 0.3, 0.2, (3, 2)),
        (3, 0.3, 0.69, (1, 1)),  # test would take 2, leaving training nothing: it gives way
    ],
)
def test_holdout_sizes_by_hand(
    num_items: int, valid_ratio: float, test_ratio: float, expected: tuple[int, int]
) -> None:
    config = HoldoutConfig(valid_ratio=valid_ratio, test_ratio=test_ratio)
    assert holdout_sizes(num_items, config) == expected


def test_holdout_names_its_settings() -> None:
    assert describe_holdout(HoldoutConfig()) == "holdout(0.8/0.1/0.1, seed 0, test history train)"
    config = HoldoutConfig(valid_ratio=0.2, test_ratio=0.2, seed=3, test_history="train_valid")
    assert describe_holdout(config) == "holdout(0.6/0.2/0.2, seed 3, test history train+valid)"
    assert _holdout(_random_sequences(3)).dataset.split == describe_holdout(HoldoutConfig())


def test_holdout_of_the_fixture_keeps_every_user() -> None:
    loaded = load_dataset(Path(__file__).parents[2] / "data" / "amazon-beauty-mini")
    dataset = loaded.dataset
    split = holdout_split(
        "mini", dataset.catalogue, dataset.user_ids, loaded.full_sequences, HoldoutConfig()
    )
    assert split.dataset.num_users == 300 and not split.dropped_user_ids
    held_out = sum(len(t) for t in split.dataset.valid.targets + split.dataset.test.targets)
    assert held_out >= 600


@pytest.mark.parametrize(
    "changes", [{"valid_ratio": 0.5, "test_ratio": 0.5}, {"valid_ratio": 0.0}, {"test_ratio": 1.0}]
)
def test_holdout_ratios_must_leave_training_items(changes: dict) -> None:
    with pytest.raises(ValidationError):
        HoldoutConfig(**changes)


def test_holdout_settings_without_the_holdout_split_are_an_error() -> None:
    assert DataConfig(split="holdout", holdout=HoldoutConfig(seed=2)).holdout.seed == 2
    DataConfig(holdout=HoldoutConfig())  # the default, as a dumped config holds it, loads
    with pytest.raises(ValidationError, match="only used with data"):
        DataConfig(holdout=HoldoutConfig(seed=2))
