"""Reading `items.jsonl`: one JSON object per line, mapped onto `Item` with checked field types.

Known fields are item_id (required), title, categories, brand, price and description; any other
field (p5_item_id, category_paths, seq_item_id, ...) is left for the caller or ignored.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmrec.data.catalogue import Item
from llmrec.data.loaders.common import Problems, read_lines
from llmrec.errors import DataError


@dataclass(frozen=True)
class ItemRow:
    """One accepted row of an items file: its line, the parsed JSON object and the item."""

    line: int
    record: dict[str, Any]
    item: Item


def parse_json_object(text: str, path: Path, line: int) -> dict[str, Any]:
    """One JSONL line as a dict; a syntax error or a non-object raises DataError."""
    try:
        record = json.loads(text)
    except json.JSONDecodeError as error:
        raise DataError(f"not valid JSON ({error.msg}, column {error.colno})", path, line) from None
    if not isinstance(record, dict):
        raise DataError(f"expected a JSON object, got {type(record).__name__}", path, line)
    return record


def parse_id(value: object, path: Path, line: int, field: str) -> str:
    """A raw id: a non-empty string, or an integer (kept as its decimal string)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value
    shown = "missing" if value is None else f"{value!r} is not a non-empty string or an integer"
    raise DataError(f"id {shown}", path, line, field)


def _optional_text(record: dict[str, Any], key: str, path: Path, line: int) -> str | None:
    value = record.get(key)
    if value is None or isinstance(value, str):
        return value
    raise DataError(f"expected a string or null, got {type(value).__name__}", path, line, key)


def _categories(record: dict[str, Any], path: Path, line: int) -> tuple[str, ...]:
    value = record.get("categories")
    if value is None:
        return ()
    if isinstance(value, list) and all(isinstance(name, str) for name in value):
        return tuple(value)
    raise DataError("expected a list of strings or null", path, line, "categories")


def _price(record: dict[str, Any], path: Path, line: int) -> float | None:
    value = record.get("price")
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    raise DataError(f"expected a number or null, got {value!r}", path, line, "price")


def item_from_record(record: dict[str, Any], path: Path, line: int) -> Item:
    """Map one items.jsonl object onto an Item, checking each known field's type."""
    return Item(
        item_id=parse_id(record.get("item_id"), path, line, "item_id"),
        title=_optional_text(record, "title", path, line) or "",
        categories=_categories(record, path, line),
        brand=_optional_text(record, "brand", path, line),
        price=_price(record, path, line),
        description=_optional_text(record, "description", path, line),
    )


def read_items_jsonl(path: Path, problems: Problems) -> list[ItemRow]:
    """Rows of an items.jsonl file in file order; bad and duplicate rows raise or are skipped."""
    rows: list[ItemRow] = []
    first_line: dict[str, int] = {}
    for line, text in read_lines(path, problems):
        try:
            record = parse_json_object(text, path, line)
        except DataError as error:
            problems.handle("malformed_line", error)
            continue
        try:
            item = item_from_record(record, path, line)
        except DataError as error:
            problems.handle("bad_value", error)
            continue
        if item.item_id in first_line:
            first = first_line[item.item_id]
            problem = f"duplicate item id {item.item_id!r} (first on line {first})"
            problems.handle("duplicate_item", DataError(problem, path, line, "item_id"))
            continue
        first_line[item.item_id] = line
        rows.append(ItemRow(line, record, item))
    if not rows:
        raise DataError("no items", path)
    return rows
