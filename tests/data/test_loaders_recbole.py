"""Tests for data/loaders/recbole.py: RecBole atomic NAME.inter (+ optional NAME.item)."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmrec.data.loaders.recbole import load_recbole
from llmrec.errors import DataError
from tests.data.helpers import assert_leave_one_out_without_leak, assert_points_at, write_lines

INTER = [
    "user_id:token\titem_id:token\trating:float\ttimestamp:float",
    "u1\ti2\t5\t200",
    "u1\ti1\t4\t100",
    "u2\ti3\t3\t50",
    "u1\ti3\t2\t300",
    "u2\ti2\t1\t60",
    "u2\ti1\t1\t60",
]
SEQUENCES = {"u1": ["i1", "i2", "i3"], "u2": ["i3", "i2", "i1"]}  # u2: tie at 60 keeps file order
ITEMS = [
    "item_id:token\ttitle:token_seq\tcategories:token_seq\tbrand:token\tprice:float",
    "i1\tRed nail polish\tBeauty Nails\tOPI\t7.5",
    "i2\tBlue lipstick\tBeauty\t\t",
    "i3\tShampoo\t\tAcme\t3",
]


def _write_folder(folder: Path, inter: list[str] = INTER, items: list[str] | None = ITEMS) -> Path:
    write_lines(folder / "shop.inter", inter)
    if items is not None:
        write_lines(folder / "shop.item", items)
    return folder


def _load_error(folder: Path) -> DataError:
    with pytest.raises(DataError) as caught:
        load_recbole(folder)
    return caught.value


def test_sorted_by_timestamp_without_leak(tmp_path: Path) -> None:
    result = load_recbole(_write_folder(tmp_path / "shop"))
    assert (result.dataset.name, result.format) == ("shop", "recbole")
    assert_leave_one_out_without_leak(result.dataset, SEQUENCES)


def test_item_columns_are_mapped(tmp_path: Path) -> None:
    items = load_recbole(_write_folder(tmp_path)).dataset.catalogue.items
    assert (items[0].title, items[0].categories, items[0].brand, items[0].price) == (
        "Red nail polish",
        ("Beauty", "Nails"),
        "OPI",
        7.5,
    )
    assert (items[1].brand, items[1].price) == (None, None)
    assert items[2].categories == ()


def test_seq_separator_splits_categories(tmp_path: Path) -> None:
    items = [ITEMS[0], "i1\tt\tSkin Care,Face\tb\t1", "i2\tt\tBeauty\tb\t1", "i3\tt\tx\tb\t1"]
    folder = _write_folder(tmp_path, items=items)
    catalogue = load_recbole(folder, seq_separator=",").dataset.catalogue
    assert catalogue.items[0].categories == ("Skin Care", "Face")


def test_without_item_file_catalogue_is_first_appearance_order(tmp_path: Path) -> None:
    inter = ["user_id:token\titem_id:token", "u1\tx", "u1\ty", "u1\tz"]
    dataset = load_recbole(_write_folder(tmp_path, inter, items=None)).dataset
    assert [item.item_id for item in dataset.catalogue.items] == ["x", "y", "z"]
    assert_leave_one_out_without_leak(dataset, {"u1": ["x", "y", "z"]})


def test_no_inter_file_is_an_error(tmp_path: Path) -> None:
    write_lines(tmp_path / "shop.item", ITEMS)
    assert "found none" in str(_load_error(tmp_path))


def test_bad_header_type_names_file_line_and_field(tmp_path: Path) -> None:
    folder = _write_folder(tmp_path, ["user_id:token\titem_id:text", "u1\ti1"])
    assert_points_at(_load_error(folder), folder / "shop.inter", 1, "header")


def test_missing_column_names_file_line_and_field(tmp_path: Path) -> None:
    folder = _write_folder(tmp_path, ["user_id:token\ttimestamp:float", "u1\t1"])
    assert_points_at(_load_error(folder), folder / "shop.inter", 1, "header")


def test_short_row_names_file_line_and_missing_field(tmp_path: Path) -> None:
    folder = _write_folder(tmp_path, [*INTER, "u2\ti3\t5"])
    assert_points_at(_load_error(folder), folder / "shop.inter", 8, "timestamp")


def test_bad_timestamp_names_file_line_and_field(tmp_path: Path) -> None:
    folder = _write_folder(tmp_path, [*INTER[:3], "u2\ti3\t3\tlate", *INTER[4:]])
    assert_points_at(_load_error(folder), folder / "shop.inter", 4, "timestamp")


def test_bad_price_names_file_line_and_field(tmp_path: Path) -> None:
    folder = _write_folder(tmp_path, items=[*ITEMS[:3], "i3\tShampoo\t\tAcme\tcheap"])
    assert_points_at(_load_error(folder), folder / "shop.item", 4, "price")


def test_duplicate_item_names_file_line_and_field(tmp_path: Path) -> None:
    folder = _write_folder(tmp_path, items=[*ITEMS, "i1\tAgain\t\t\t"])
    assert_points_at(_load_error(folder), folder / "shop.item", 5, "item_id")


def test_unknown_item_names_file_line_and_field(tmp_path: Path) -> None:
    folder = _write_folder(tmp_path, [*INTER, "u2\ti9\t1\t70"])
    assert_points_at(_load_error(folder), folder / "shop.inter", 8, "item_id")


def test_user_with_under_three_items_names_file_line_and_field(tmp_path: Path) -> None:
    folder = _write_folder(tmp_path, [*INTER, "u3\ti1\t1\t1"])
    assert_points_at(_load_error(folder), folder / "shop.inter", 8, "user_id")


def test_bad_encoding_names_file_and_line(tmp_path: Path) -> None:
    folder = _write_folder(tmp_path)
    (folder / "shop.item").write_bytes((folder / "shop.item").read_bytes() + b"i4\t\x80\t\t\t\n")
    assert_points_at(_load_error(folder), folder / "shop.item", 5, None)


def test_skip_bad_skips_and_counts(tmp_path: Path) -> None:
    inter = [*INTER, "u2\ti9\t1\t70", "u3\ti1\t1\t1", "u1\ti1\t1"]
    result = load_recbole(_write_folder(tmp_path, inter), skip_bad=True)
    assert_leave_one_out_without_leak(result.dataset, SEQUENCES)
    assert result.report.skipped == {"unknown_item": 1, "too_short": 1, "malformed_line": 1}
