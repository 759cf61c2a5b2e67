"""Tests for data/loaders/unisrec.py: the UniSRec/RecBole per-split .inter files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from llmrec.data.loaders.unisrec import load_unisrec
from llmrec.errors import DataError
from tests.data.helpers import assert_points_at, write_lines, write_unisrec_folder

ASINS = ["B0", "B1", "B2", "B3", "B4", "B5"]
# whole sequences in integer item ids; user 1 is cut to MAX_LENGTH history items
WHOLE = {"0": [0, 1, 2, 3, 4], "1": [5, 4, 3, 2, 1, 0], "2": [2, 3, 4]}
MAX_LENGTH = 4


def _write_folder(folder: Path, whole: dict[str, list[int]] = WHOLE) -> Path:
    return write_unisrec_folder(
        folder,
        "Sci",
        item_ids=ASINS,
        user_ids=["R0", "R1", "R2"],
        texts=[(asin, f"Title {asin}. Cat A Cat B. Brand. ") for asin in reversed(ASINS)],
        whole=whole,
        max_length=MAX_LENGTH,
    )


def _load_error(folder: Path) -> DataError:
    with pytest.raises(DataError) as caught:
        load_unisrec(folder)
    return caught.value


def _replace_line(path: Path, line: int, text: str) -> None:
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[line - 1] = text
    write_lines(path, lines)


def test_maps_ids_back_to_raw_and_keeps_item2index_order(tmp_path: Path) -> None:
    result = load_unisrec(_write_folder(tmp_path / "scientific"))
    dataset = result.dataset
    assert dataset.name == "scientific"
    assert (dataset.split, result.format) == ("files", "unisrec")
    assert [item.item_id for item in dataset.catalogue.items] == ASINS
    assert dataset.catalogue.items[2].title == "Title B2. Cat A Cat B. Brand."
    assert dataset.user_ids == ("R0", "R1", "R2")
    assert result.report.num_skipped == 0


def test_split_follows_files_without_leak(tmp_path: Path) -> None:
    dataset = load_unisrec(_write_folder(tmp_path)).dataset
    for row, items in enumerate(WHOLE.values()):
        train = list(dataset.train[row])
        assert train == items[:-2][-MAX_LENGTH:]  # the valid row's history
        np.testing.assert_array_equal(dataset.valid.histories[row], train)
        assert dataset.valid.targets[row] == items[-2]
        assert list(dataset.test.histories[row]) == [*train, items[-2]][-MAX_LENGTH:]
        assert dataset.test.targets[row] == items[-1]
        assert len(train) <= len(items) - 2  # neither target position is in train


def test_full_sequences_are_test_history_plus_target(tmp_path: Path) -> None:
    result = load_unisrec(_write_folder(tmp_path))
    assert [list(sequence) for sequence in result.full_sequences] == [
        [0, 1, 2, 3, 4],
        [4, 3, 2, 1, 0],  # cut to MAX_LENGTH history items + target
        [2, 3, 4],
    ]


def test_missing_file_names_it(tmp_path: Path) -> None:
    folder = _write_folder(tmp_path)
    (folder / "Sci.test.inter").unlink()
    assert_points_at(_load_error(folder), folder / "Sci.test.inter", None, None)


@pytest.mark.parametrize(
    ("file", "line", "text", "field", "message"),
    [
        ("Sci.valid.inter", 1, "user_id:token\titem_id:token", "header", ""),
        ("Sci.test.inter", 3, "1\t5 4 3", "item_id", "missing 'item_id'"),
        ("Sci.test.inter", 2, "0\t0 1 2 3\t99", "item_id", "unknown item '99'"),
        ("Sci.test.inter", 2, "0\t0 77 2 3\t4", "item_id_list", "unknown item '77'"),
        ("Sci.valid.inter", 2, "7\t0 1 2\t3", "user_id", ""),  # unknown user
        ("Sci.text", 3, "B99\tsome text", "item_id", ""),  # unknown item in the text file
        ("Sci.item2index", 4, "B0\t3", "item_id", ""),  # duplicate item
        ("Sci.test.inter", 4, "0\t0 1 2 3\t4", "user_id", ""),  # duplicate user row
        ("Sci.test.inter", 2, "0\t0 1 3 2\t4", "item_id_list", "valid history + valid target"),
        ("Sci.train.inter", 2, "0\t0 2\t1", "item_id_list", "not a prefix"),
    ],
)
def test_bad_line_names_file_line_and_field(
    tmp_path: Path, file: str, line: int, text: str, field: str, message: str
) -> None:
    folder = _write_folder(tmp_path)
    _replace_line(folder / file, line, text)
    error = _load_error(folder)
    assert_points_at(error, folder / file, line, field)
    assert message in str(error)


def test_bad_encoding_names_file_and_line(tmp_path: Path) -> None:
    folder = _write_folder(tmp_path)
    data = (folder / "Sci.text").read_bytes().replace(b"Title B3", b"Title \xe9B3")
    (folder / "Sci.text").write_bytes(data)
    assert_points_at(_load_error(folder), folder / "Sci.text", 4, None)


def test_skip_bad_drops_inconsistent_user_and_counts_it(tmp_path: Path) -> None:
    folder = _write_folder(tmp_path)
    _replace_line(folder / "Sci.test.inter", 2, "0\t0 1 3 2\t4")
    _replace_line(folder / "Sci.text", 3, "B99\tsome text")
    result = load_unisrec(folder, skip_bad=True)
    assert result.dataset.user_ids == ("R1", "R2")
    assert result.report.skipped == {"inconsistent_split": 1, "unknown_item": 1, "missing_text": 1}
    assert result.dataset.catalogue.items[4].title == ""  # B4 lost its text line
