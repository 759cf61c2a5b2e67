"""The one place that turns items into text (BM25 documents now; LLM prompts later).

Attribute order is Title, Category, Brand, Price; missing fields are dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from llmrec.data.catalogue import Item

ItemField = Literal["title", "categories", "brand", "price", "description"]
DEFAULT_FIELDS: tuple[ItemField, ...] = ("title", "categories", "brand", "price")
LABELS = {
    "title": "Title",
    "categories": "Category",
    "brand": "Brand",
    "price": "Price",
    "description": "Description",
}


def field_text(item: Item, field: ItemField) -> str:
    value = getattr(item, field)
    if value is None:
        return ""
    if field == "categories":
        return ", ".join(value)
    if field == "price":
        return f"{value:.2f}"
    return str(value).strip()


def item_text(
    item: Item,
    fields: Sequence[ItemField] = DEFAULT_FIELDS,
    labelled: bool = True,
) -> str:
    """`Title: ..; Category: ..; Brand: ..` (labelled) or the bare values joined by '. '."""
    parts = []
    for field in fields:
        text = field_text(item, field)
        if text:
            parts.append(f"{LABELS[field]}: {text}" if labelled else text)
    return ("; " if labelled else ". ").join(parts)
