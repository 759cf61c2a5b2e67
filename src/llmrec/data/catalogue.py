"""The item catalogue: raw item ids <-> internal indices 0..n-1, and each item's text fields."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from llmrec.data.values import (
    parse_id,
    parse_json_object,
    parse_number,
    parse_optional_text,
    parse_text_list,
)
from llmrec.errors import DataError

ItemId = str


@dataclass(frozen=True)
class Item:
    """One catalogue item. Text fields are optional except the id; missing ones are None/empty."""

    item_id: ItemId
    title: str = ""
    categories: tuple[str, ...] = ()
    brand: str | None = None
    price: float | None = None
    description: str | None = None  # any extra text (e.g. a pre-joined "title. categories. brand.")

    def to_json(self) -> dict:
        record = asdict(self)
        record["categories"] = list(self.categories)
        return record


@dataclass(frozen=True)
class Catalogue:
    """Items in index order. Index i is the item's internal index used by every model."""

    items: tuple[Item, ...]
    _index_of: dict[ItemId, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        index_of: dict[ItemId, int] = {}
        for index, item in enumerate(self.items):
            if item.item_id in index_of:
                raise DataError(f"duplicate item id {item.item_id!r}", field="item_id")
            index_of[item.item_id] = index
        object.__setattr__(self, "_index_of", index_of)

    @classmethod
    def from_items(cls, items: Iterable[Item]) -> Catalogue:
        return cls(tuple(items))

    def __len__(self) -> int:
        return len(self.items)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._index_of

    def index(self, item_id: ItemId) -> int:
        """Internal index of a raw item id; KeyError names the id when it is unknown."""
        try:
            return self._index_of[item_id]
        except KeyError:
            raise KeyError(f"unknown item id {item_id!r}") from None

    def get_index(self, item_id: ItemId) -> int | None:
        return self._index_of.get(item_id)

    def item_id(self, item_index: int) -> ItemId:
        return self.items[item_index].item_id

    def item_ids(self, item_indices: Sequence[int]) -> list[ItemId]:
        return [self.items[int(i)].item_id for i in item_indices]

    def fingerprint(self) -> str:
        """sha256 over the ids in index order: a saved model checks it against its catalogue."""
        digest = hashlib.sha256()
        for item in self.items:
            digest.update(item.item_id.encode("utf-8"))
            digest.update(b"\n")
        return digest.hexdigest()

    def save_jsonl(self, path: str | Path) -> None:
        with open(path, "w", encoding="utf-8") as handle:
            for index, item in enumerate(self.items):
                handle.write(json.dumps({"index": index, **item.to_json()}, ensure_ascii=False))
                handle.write("\n")

    @classmethod
    def load_jsonl(cls, path: str | Path) -> Catalogue:
        """Read what `save_jsonl` wrote (rows in index order); a damaged file is named with the
        line and field at fault."""
        items = []
        with open(path, encoding="utf-8") as handle:
            for line_number, line in enumerate(handle, start=1):
                items.append(_saved_item(line, len(items), path, line_number))
        return cls(tuple(items))


ITEM_FIELDS = frozenset(Item.__dataclass_fields__)


def item_from_record(record: dict[str, Any], path: Path, line: int) -> Item:
    """Map one items.jsonl object onto an Item, checking each known field's type (a bare string
    is no list of categories, a price is a finite number)."""
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


def _saved_item(line: str, index: int, path: str | Path, line_number: int) -> Item:
    """One row of a saved catalogue: a JSON object with its index and the `Item` fields."""
    path = Path(path)
    record = parse_json_object(line, path, line_number)
    if record.pop("index", None) != index:
        raise DataError(f"expected index {index} (rows in index order)", path, line_number, "index")
    unknown = sorted(set(record) - ITEM_FIELDS)
    if unknown:
        raise DataError(
            f"unknown field (known: {sorted(ITEM_FIELDS)})", path, line_number, unknown[0]
        )
    if not isinstance(record.get("item_id"), str):  # saved ids are strings, never numbers
        raise DataError("expected a string", path, line_number, "item_id")
    return item_from_record(record, path, line_number)
