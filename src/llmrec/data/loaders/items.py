"""Reading `items.jsonl`: one JSON object per line, mapped onto `Item` with checked field types.

Known fields are item_id (required), title, categories, brand, price and description; any other
field (p5_item_id, category_paths, seq_item_id, ...) is left for the caller or ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmrec.data.catalogue import Item, item_from_record
from llmrec.data.loaders.common import Problems, read_lines
from llmrec.data.values import parse_json_object, shown
from llmrec.errors import DataError


@dataclass(frozen=True)
class ItemRow:
    """One accepted row of an items file: its line, the parsed JSON object and the item."""

    line: int
    record: dict[str, Any]
    item: Item


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
