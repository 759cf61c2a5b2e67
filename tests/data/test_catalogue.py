"""Tests for data/catalogue.py: raw id <-> index, duplicates, fingerprint, JSONL round trip."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmrec.data.catalogue import Catalogue, Item
from llmrec.errors import DataError


def _catalogue() -> Catalogue:
    return Catalogue.from_items(
        [
            Item("A", "Alpha", ("Beauty", "Nails"), "OPI", 9.5, "red"),
            Item("B", "Beta"),
            Item("C"),
        ]
    )


def test_ids_map_to_indices_in_order_and_back() -> None:
    catalogue = _catalogue()
    assert len(catalogue) == 3
    assert [catalogue.index(item_id) for item_id in "ABC"] == [0, 1, 2]
    assert catalogue.item_ids([2, 0]) == ["C", "A"]
    assert catalogue.item_id(1) == "B"
    assert "A" in catalogue and "Z" not in catalogue
    assert catalogue.get_index("Z") is None


def test_unknown_id_raises_key_error_naming_it() -> None:
    with pytest.raises(KeyError, match="'Z'"):
        _catalogue().index("Z")


def test_duplicate_item_ids_raise() -> None:
    with pytest.raises(DataError, match="duplicate item id 'A'"):
        Catalogue.from_items([Item("A"), Item("A")])


def test_fingerprint_depends_on_ids_and_order() -> None:
    first = Catalogue.from_items([Item("A"), Item("B")])
    assert first.fingerprint() == Catalogue.from_items([Item("A", "x"), Item("B")]).fingerprint()
    assert first.fingerprint() != Catalogue.from_items([Item("B"), Item("A")]).fingerprint()


def test_jsonl_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "items.jsonl"
    catalogue = _catalogue()
    catalogue.save_jsonl(path)
    assert Catalogue.load_jsonl(path) == catalogue
    assert Catalogue.load_jsonl(path).items[0].categories == ("Beauty", "Nails")


@pytest.mark.parametrize(
    ("second_line", "field", "problem"),
    [
        ('{"index": 2, "item_id": "B"}', "index", "expected index 1"),
        ('{"item_id": "B"}', "index", "expected index 1"),
        ('{"index": 1, "item_id": "B", "colour": "red"}', "colour", "unknown field"),
        ('{"index": 1, "item_id": 7}', "item_id", "expected a string"),
        ('{"index": 1, "item_id": "B"', None, "not valid JSON"),
        ("[1, 2]", None, "expected a JSON object"),
    ],
)
def test_a_damaged_saved_catalogue_names_file_line_and_field(
    tmp_path: Path, second_line: str, field: str | None, problem: str
) -> None:
    path = tmp_path / "items.jsonl"
    path.write_text('{"index": 0, "item_id": "A"}\n' + second_line + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=problem) as caught:
        Catalogue.load_jsonl(path)
    assert (caught.value.line, caught.value.field) == (2, field)
    assert str(path) in str(caught.value)
