"""Reading `items.jsonl`: one JSON object per line, mapped onto `Item` with checked field types.

Known fields are item_id (required), title, categories, brand, price and description; any other
field (p5_item_id, category_paths, seq_item_id, ...) is left for the caller or ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmrec.data.catalogue import Item
from llmrec.data.loaders.common import Problems, read_lines
from llmrec.data.values import (
    parse_id,
    parse_json_object,
    parse_number,
    parse_optional_text,
    parse_text_list,
    shown,
)
from llmrec.errors import DataError


@dataclass(frozen=True)
class ItemRow:
    """One accepted row of an items file: its line, the parsed JSON object and the item."""

    line: int
    record: dict[str, Any]
    item: Item


def item_from_record(record: dict[str, Any], path: Path, line: int) -> Item:
    """Map one items.jsonl object onto an Item, checking each known field's type."""
    price = record.get("price")
    if price is not None:
        price = parse_number(price, path, line, "price", minimum=0, accept_text=False)
    return Item(
        item_id=parse_id(record.get("item_id"), path, line, "item_id"),
        title=parse_optional_text(record.get("title"), path, line, "title") or "",
        categories=parse_text_list(record.get("categories"), path, line, "categories"),
        brand=parse_optional_text(record.get("brand"), path, line, "brand"),
        price=price,
        description=parse_optional_text(record.get("description"), path, line, "description"),
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
            problem = f"duplicate item id {shown(item.item_id)} (first on line {first})"
            problems.handle("duplicate_item", DataError(problem, path, line, "item_id"))
            continue
        first_line[item.item_id] = line
        rows.append(ItemRow(line, record, item))
    if not rows:
        raise DataError("no items", path)
    return rows
