"""Tests for data/loaders/byo.py: bring-your-own interactions (JSONL or CSV) + items.jsonl."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmrec.data.loaders.byo import load_byo
from llmrec.errors import DataError
from tests.data.helpers import (
    assert_leave_one_out_without_leak,
    assert_points_at,
    item_records,
    write_jsonl,
    write_lines,
)

# file order is shuffled in time; ties (u1: c and d at time 3) keep file order
INTERACTIONS = [
    {"user": "u1", "item": "b", "timestamp": 2},
    {"user": "u2", "item": "e", "timestamp": 10},
    {"user": "u1", "item": "a", "timestamp": 1},
    {"user": "u1", "item": "d", "timestamp": 3},
    {"user": "u1", "item": "c", "timestamp": 3},
    {"user": "u2", "item": "a", "timestamp": 5.5},
    {"user": "u2", "item": "b", "timestamp": 7},
]
SEQUENCES = {"u1": ["a", "b", "d", "c"], "u2": ["a", "b", "e"]}


def _write_folder(folder: Path, interactions: list[dict] = INTERACTIONS) -> Path:
    write_jsonl(folder / "items.jsonl", item_records("abcde"))
    write_jsonl(folder / "interactions.jsonl", interactions)
    return folder


def _write_csv(folder: Path, lines: list[str]) -> Path:
    write_jsonl(folder / "items.jsonl", item_records("abcde"))
    write_lines(folder / "interactions.csv", lines)
    return folder


def _load_error(folder: Path) -> DataError:
    with pytest.raises(DataError) as caught:
        load_byo(folder)
    return caught.value


def test_jsonl_sorted_by_time_with_ties_in_file_order_without_leak(tmp_path: Path) -> None:
    result = load_byo(_write_folder(tmp_path / "mine"))
    assert (result.dataset.name, result.format) == ("mine", "byo")
    assert_leave_one_out_without_leak(result.dataset, SEQUENCES)


def test_csv_without_timestamp_keeps_file_order(tmp_path: Path) -> None:
    folder = _write_csv(tmp_path, ["user,item", "u1,c", "u2,a", "u1,a", "u1,b", "u2,b", "u2,e"])
    assert_leave_one_out_without_leak(
        load_byo(folder).dataset, {"u1": ["c", "a", "b"], "u2": ["a", "b", "e"]}
    )


def test_csv_with_iso_dates_quotes_and_extra_columns(tmp_path: Path) -> None:
    lines = [
        "user,item,timestamp,rating",
        'u1,c,2020-01-03,"4,5"',
        "u1,a,2020-01-01T10:00:00,3",
        "u1,b,2020-01-02,1",
    ]
    dataset = load_byo(_write_csv(tmp_path, lines)).dataset
    assert_leave_one_out_without_leak(dataset, {"u1": ["a", "b", "c"]})


def test_integer_ids_are_read_as_text(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "items.jsonl", [{"item_id": number} for number in (7, 8, 9)])
    write_jsonl(tmp_path / "interactions.jsonl", [{"user": 1, "item": n} for n in (9, 8, 7)])
    dataset = load_byo(tmp_path).dataset
    assert dataset.user_ids == ("1",)
    assert dataset.catalogue.item_ids(dataset.test.histories[0]) == ["9", "8"]


def test_missing_items_file_names_it(tmp_path: Path) -> None:
    folder = _write_folder(tmp_path)
    (folder / "items.jsonl").unlink()
    assert_points_at(_load_error(folder), folder / "items.jsonl", None, None)


def test_both_interaction_files_is_an_error(tmp_path: Path) -> None:
    folder = _write_folder(tmp_path)
    write_lines(folder / "interactions.csv", ["user,item", "u1,a"])
    assert "found both" in str(_load_error(folder))


def test_malformed_json_names_file_and_line(tmp_path: Path) -> None:
    folder = _write_folder(tmp_path)
    write_lines(folder / "interactions.jsonl", ['{"user": "u1", "item": "a"}', "[1, 2]"])
    assert_points_at(_load_error(folder), folder / "interactions.jsonl", 2, None)


@pytest.mark.parametrize(
    ("record", "field"),
    [
        ({"item": "a", "timestamp": 4}, "user"),
        ({"user": "u1", "item": ["a"], "timestamp": 4}, "item"),
        ({"user": "u1", "item": "a", "timestamp": "yesterday"}, "timestamp"),
        ({"user": "u1", "item": "a"}, "timestamp"),  # missing while others have one
    ],
)
def test_bad_value_names_file_line_and_field(tmp_path: Path, record: dict, field: str) -> None:
    folder = _write_folder(tmp_path, [INTERACTIONS[0], record, *INTERACTIONS[1:]])
    assert_points_at(_load_error(folder), folder / "interactions.jsonl", 2, field)


def test_a_first_row_without_a_timestamp_is_the_odd_one_out(tmp_path: Path) -> None:
    """The majority of rows decides whether the file has timestamps, not the first row."""
    folder = _write_folder(tmp_path, [{"user": "u3", "item": "a"}, *INTERACTIONS])
    error = _load_error(folder)
    assert_points_at(error, folder / "interactions.jsonl", 1, "timestamp")
    assert "most rows have one" in str(error)
    result = load_byo(folder, skip_bad=True)
    assert result.report.skipped == {"bad_value": 1}  # only that row; u3 then has none


def test_unknown_item_names_file_line_and_field(tmp_path: Path) -> None:
    folder = _write_folder(tmp_path, [*INTERACTIONS, {"user": "u1", "item": "zz", "timestamp": 9}])
    assert_points_at(_load_error(folder), folder / "interactions.jsonl", 8, "item")


def test_csv_bad_header_names_file_line_and_field(tmp_path: Path) -> None:
    folder = _write_csv(tmp_path, ["uid,item", "u1,a"])
    assert_points_at(_load_error(folder), folder / "interactions.csv", 1, "header")


def test_csv_short_row_names_file_line_and_missing_field(tmp_path: Path) -> None:
    folder = _write_csv(tmp_path, ["user,item,timestamp", "u1,a,1", "u1,b"])
    assert_points_at(_load_error(folder), folder / "interactions.csv", 3, "timestamp")


def test_user_with_under_three_items_names_first_line(tmp_path: Path) -> None:
    folder = _write_csv(tmp_path, ["user,item", "u1,a", "u2,a", "u1,b", "u2,b", "u2,c"])
    assert_points_at(_load_error(folder), folder / "interactions.csv", 2, "user")


def test_bad_encoding_names_file_and_line(tmp_path: Path) -> None:
    folder = _write_csv(tmp_path, [])
    (folder / "interactions.csv").write_bytes(b"user,item\nu1,a\nu\xc3\x281,b\n")
    assert_points_at(_load_error(folder), folder / "interactions.csv", 3, None)


def test_skip_bad_skips_and_counts(tmp_path: Path) -> None:
    extra = [
        {"user": "u1", "item": "zz", "timestamp": 1},
        {"user": "u3", "item": "a", "timestamp": 1},
        {"user": "u2", "item": "c", "timestamp": "soon"},
    ]
    result = load_byo(_write_folder(tmp_path, [*INTERACTIONS, *extra]), skip_bad=True)
    assert_leave_one_out_without_leak(result.dataset, SEQUENCES)
    assert result.report.skipped == {"unknown_item": 1, "too_short": 1, "bad_value": 1}
