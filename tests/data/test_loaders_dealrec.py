"""Tests for data/loaders/dealrec.py: the time-split sequential_{train,valid,test}.txt files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from llmrec.data.loaders.dealrec import load_dealrec
from llmrec.errors import DataError
from tests.data.helpers import assert_points_at, write_jsonl, write_lines

TRAIN = ["1 1 2 3", "2 4 5", "3 6"]
VALID = ["1 4 5", "2", "3 1"]
TEST = ["1 6 2", "2 1", "3"]


def _write_folder(
    folder: Path, train: list[str] = TRAIN, valid: list[str] = VALID, test: list[str] = TEST
) -> Path:
    items = [
        {"item_id": f"ASIN{number}", "title": f"Game {number}", "seq_item_id": number}
        for number in range(1, 7)
    ]
    write_jsonl(folder / "items.jsonl", items)
    write_lines(folder / "sequential_train.txt", train)
    write_lines(folder / "sequential_valid.txt", valid)
    write_lines(folder / "sequential_test.txt", test)
    return folder


def _load_error(folder: Path) -> DataError:
    with pytest.raises(DataError) as caught:
        load_dealrec(folder)
    return caught.value


def test_catalogue_maps_one_based_ids(tmp_path: Path) -> None:
    result = load_dealrec(_write_folder(tmp_path / "games"))
    dataset = result.dataset
    assert (dataset.name, dataset.split, result.format) == ("games", "files", "dealrec")
    assert dataset.catalogue.item_id(0) == "ASIN1"
    assert dataset.user_ids == ("1", "2", "3")
    assert [list(train) for train in dataset.train] == [[0, 1, 2], [3, 4], [5]]


def test_valid_and_test_targets_are_the_first_held_out_items(tmp_path: Path) -> None:
    dataset = load_dealrec(_write_folder(tmp_path)).dataset
    assert dataset.valid.user_ids == ("1", "3")  # user 2 has no valid items
    assert list(dataset.valid.targets) == [3, 0]
    assert dataset.test.user_ids == ("1", "2")  # user 3 has no test items
    assert [list(history) for history in dataset.test.histories] == [[0, 1, 2, 3, 4], [3, 4]]
    assert list(dataset.test.targets) == [5, 0]


def test_no_held_out_item_leaks_into_training(tmp_path: Path) -> None:
    dataset = load_dealrec(_write_folder(tmp_path)).dataset
    train_of = dict(zip(dataset.user_ids, dataset.train, strict=True))
    for user, history in zip(dataset.valid.user_ids, dataset.valid.histories, strict=True):
        np.testing.assert_array_equal(history, train_of[user])  # exactly the prefix
    train_lengths = {line.split()[0]: len(line.split()) - 1 for line in TRAIN}
    assert {user: len(train) for user, train in train_of.items()} == train_lengths
    for user, history in zip(dataset.test.user_ids, dataset.test.histories, strict=True):
        np.testing.assert_array_equal(history[: len(train_of[user])], train_of[user])


def test_full_sequences_hold_all_three_files(tmp_path: Path) -> None:
    result = load_dealrec(_write_folder(tmp_path))
    assert [list(sequence) for sequence in result.full_sequences] == [
        [0, 1, 2, 3, 4, 5, 1],
        [3, 4, 0],
        [5, 0],
    ]


def test_missing_file_names_it(tmp_path: Path) -> None:
    folder = _write_folder(tmp_path)
    (folder / "sequential_valid.txt").unlink()
    assert_points_at(_load_error(folder), folder / "sequential_valid.txt", None, None)


def test_empty_train_line_names_file_line_and_field(tmp_path: Path) -> None:
    folder = _write_folder(tmp_path, train=["1 1 2", "2"])
    assert_points_at(_load_error(folder), folder / "sequential_train.txt", 2, "item_id")


def test_unknown_item_names_file_line_and_field(tmp_path: Path) -> None:
    folder = _write_folder(tmp_path, test=["1 6", "2 7"])
    error = _load_error(folder)
    assert_points_at(error, folder / "sequential_test.txt", 2, "item_id")
    assert "'7'" in str(error)


def test_unknown_user_names_file_line_and_field(tmp_path: Path) -> None:
    folder = _write_folder(tmp_path, valid=["1 4", "9 1"])
    assert_points_at(_load_error(folder), folder / "sequential_valid.txt", 2, "user_id")


def test_duplicate_user_names_file_line_and_field(tmp_path: Path) -> None:
    folder = _write_folder(tmp_path, train=["1 1 2", "2 3", "1 4"])
    assert_points_at(_load_error(folder), folder / "sequential_train.txt", 3, "user_id")


@pytest.mark.parametrize(("value", "kind"), [("x", "bad"), (1, "duplicate")])
def test_bad_seq_item_id_names_file_line_and_field(
    tmp_path: Path, value: object, kind: str
) -> None:
    folder = _write_folder(tmp_path)
    write_jsonl(
        folder / "items.jsonl",
        [{"item_id": "ASIN1", "seq_item_id": 1}, {"item_id": "ASIN2", "seq_item_id": value}],
    )
    error = _load_error(folder)
    assert_points_at(error, folder / "items.jsonl", 2, "seq_item_id")
    assert ("duplicate" in str(error)) == (kind == "duplicate")


def test_skip_bad_skips_and_counts(tmp_path: Path) -> None:
    folder = _write_folder(
        tmp_path,
        train=["1 1 2 3", "2 4 5", "3 6", "4"],
        valid=["1 4 5", "9 1"],
        test=["2 99", "1 6"],
    )
    result = load_dealrec(folder, skip_bad=True)
    assert result.dataset.user_ids == ("1", "2", "3")
    assert result.dataset.test.user_ids == ("1",)
    assert result.report.skipped == {"empty_sequence": 1, "unknown_user": 1, "unknown_item": 1}
