"""Tests for data/loaders/p5.py (and the shared reading rules in loaders/common.py, items.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmrec.data.loaders.p5 import load_p5
from llmrec.errors import DataError
from tests.data.helpers import (
    FIXTURE_DIR,
    assert_leave_one_out_without_leak,
    assert_points_at,
    item_records,
    write_jsonl,
    write_lines,
)

SEQUENCES = {"u1": ["a", "b", "c", "d"], "u2": ["c", "a", "e"], "u3": ["e", "d", "c", "b", "a"]}


def _write_folder(folder: Path, sequence_lines: list[str] | None = None) -> Path:
    write_jsonl(folder / "items.jsonl", item_records("abcde"))
    lines = sequence_lines or [" ".join([user, *items]) for user, items in SEQUENCES.items()]
    write_lines(folder / "user_sequence.txt", lines)
    return folder


def _load_error(folder: Path) -> DataError:
    with pytest.raises(DataError) as caught:
        load_p5(folder)
    return caught.value


def test_loads_catalogue_in_file_order_and_users_in_file_order(tmp_path: Path) -> None:
    result = load_p5(_write_folder(tmp_path / "shop"))
    dataset = result.dataset
    assert dataset.name == "shop"
    assert result.format == "p5"
    assert [item.item_id for item in dataset.catalogue.items] == list("abcde")
    assert dataset.catalogue.items[0].title == "title of a"
    assert dataset.user_ids == ("u1", "u2", "u3")
    assert result.report.num_skipped == 0
    assert [len(sequence) for sequence in result.full_sequences] == [4, 3, 5]


def test_leave_one_out_without_leak(tmp_path: Path) -> None:
    assert_leave_one_out_without_leak(load_p5(_write_folder(tmp_path)).dataset, SEQUENCES)


def test_item_fields_are_mapped_and_unknown_fields_ignored(tmp_path: Path) -> None:
    folder = _write_folder(tmp_path)
    record = {
        "item_id": "a",
        "title": "Nail polish",
        "categories": ["Beauty", "Nails"],
        "brand": "OPI",
        "price": 7,
        "description": "red",
        "p5_item_id": 1,
        "category_paths": [["Beauty", "Nails"]],
    }
    write_jsonl(folder / "items.jsonl", [record, *item_records("bcde")])
    item = load_p5(folder).dataset.catalogue.items[0]
    assert (item.title, item.categories, item.brand) == ("Nail polish", ("Beauty", "Nails"), "OPI")
    assert (item.price, item.description) == (7.0, "red")


def test_crlf_line_ends_and_blank_lines_are_accepted(tmp_path: Path) -> None:
    folder = _write_folder(tmp_path)
    text = "u1 a b c\r\n\r\nu2 c d e\r\n"
    (folder / "user_sequence.txt").write_bytes(text.encode("utf-8"))
    assert load_p5(folder).dataset.user_ids == ("u1", "u2")


def test_byte_order_mark_is_dropped(tmp_path: Path) -> None:
    folder = _write_folder(tmp_path)
    for name in ("items.jsonl", "user_sequence.txt"):
        path = folder / name
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    result = load_p5(folder)
    assert result.dataset.user_ids == ("u1", "u2", "u3")
    assert result.dataset.catalogue.item_id(0) == "a"


def test_missing_file_names_it(tmp_path: Path) -> None:
    folder = _write_folder(tmp_path)
    (folder / "user_sequence.txt").unlink()
    error = _load_error(folder)
    assert_points_at(error, folder / "user_sequence.txt", None, None)
    assert "file not found" in str(error)


def test_unreadable_file_names_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = _write_folder(tmp_path)

    def refuse(path: Path) -> bytes:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(Path, "read_bytes", refuse)  # root ignores file modes; refuse directly
    error = _load_error(folder)
    assert_points_at(error, folder / "items.jsonl", None, None)
    assert "cannot read the file (Permission denied)" in str(error)


def test_malformed_json_names_file_and_line(tmp_path: Path) -> None:
    folder = _write_folder(tmp_path)
    write_lines(folder / "items.jsonl", [json.dumps({"item_id": "a"}), '{"item_id": "b",'])
    error = _load_error(folder)
    assert_points_at(error, folder / "items.jsonl", 2, None)
    assert "not valid JSON" in str(error)


@pytest.mark.parametrize(
    ("record", "field"),
    [
        ({"title": "no id"}, "item_id"),
        ({"item_id": "b", "title": 5}, "title"),
        ({"item_id": "b", "categories": "Beauty"}, "categories"),
        ({"item_id": "b", "price": "cheap"}, "price"),
    ],
)
def test_bad_item_field_names_file_line_and_field(tmp_path: Path, record: dict, field: str) -> None:
    folder = _write_folder(tmp_path)
    write_jsonl(folder / "items.jsonl", [{"item_id": "a"}, record])
    assert_points_at(_load_error(folder), folder / "items.jsonl", 2, field)


def test_duplicate_item_id_names_file_line_and_field(tmp_path: Path) -> None:
    folder = _write_folder(tmp_path)
    write_jsonl(folder / "items.jsonl", item_records("abcdea"))
    error = _load_error(folder)
    assert_points_at(error, folder / "items.jsonl", 6, "item_id")
    assert "first on line 1" in str(error)


def test_unknown_item_names_file_line_and_field(tmp_path: Path) -> None:
    folder = _write_folder(tmp_path, ["u1 a b c", "u2 a zz c"])
    error = _load_error(folder)
    assert_points_at(error, folder / "user_sequence.txt", 2, "item_id")
    assert "'zz' at item position 2" in str(error)


def test_empty_sequence_names_file_line_and_field(tmp_path: Path) -> None:
    folder = _write_folder(tmp_path, ["u1 a b c", "u2"])
    assert_points_at(_load_error(folder), folder / "user_sequence.txt", 2, "item_id")


def test_duplicate_user_names_file_line_and_field(tmp_path: Path) -> None:
    folder = _write_folder(tmp_path, ["u1 a b c", "u2 a b c", "u1 c d e"])
    assert_points_at(_load_error(folder), folder / "user_sequence.txt", 3, "user_id")


def test_user_with_under_three_items_names_file_line_and_field(tmp_path: Path) -> None:
    folder = _write_folder(tmp_path, ["u1 a b c", "u2 a b"])
    error = _load_error(folder)
    assert_points_at(error, folder / "user_sequence.txt", 2, "user_id")
    assert "at least 3" in str(error)


def test_bad_encoding_names_file_and_line(tmp_path: Path) -> None:
    folder = _write_folder(tmp_path)
    (folder / "user_sequence.txt").write_bytes(b"u1 a b c\nu2 a \xff b c\n")
    error = _load_error(folder)
    assert_points_at(error, folder / "user_sequence.txt", 2, None)
    assert "UTF-8" in str(error)


def test_skip_bad_skips_and_counts_each_problem(tmp_path: Path) -> None:
    folder = _write_folder(tmp_path)
    write_lines(
        folder / "items.jsonl",
        [*(json.dumps(record) for record in item_records("abcde")), "not json", '{"item_id": "a"}'],
    )
    lines = ["u1 a b c", "u2 a zz c", "u3", "u1 a b c", "u4 a b", "u5 c d e"]
    write_lines(folder / "user_sequence.txt", lines)
    with (folder / "user_sequence.txt").open("ab") as handle:
        handle.write(b"u6 a \xff c\n")
    result = load_p5(folder, skip_bad=True)
    assert result.dataset.user_ids == ("u1", "u5")
    assert result.report.skipped == {
        "malformed_line": 1,
        "duplicate_item": 1,
        "unknown_item": 1,
        "empty_sequence": 1,
        "duplicate_user": 1,
        "too_short": 1,
        "bad_encoding": 1,
    }
    assert result.report.num_skipped == 7
    assert "1 too_short" in str(result.report)
    assert any("line 2" in message for message in result.report.examples["unknown_item"])


def test_repository_fixture_loads_with_readme_numbers() -> None:
    result = load_p5(FIXTURE_DIR)
    dataset = result.dataset
    assert (dataset.num_users, dataset.num_items) == (300, 2090)
    assert sum(len(sequence) for sequence in result.full_sequences) == 2695
    assert min(len(sequence) for sequence in result.full_sequences) == 5
    assert result.report.num_skipped == 0
