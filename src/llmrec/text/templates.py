"""The one place that turns items into text: BM25 documents, CALRec's user and item towers.

Attribute order is Title, Category, Brand, Price; missing fields are dropped (CALRec sec. 3:
items are described by these attributes; the exact template is not published, see docs).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, Field, PositiveInt

from llmrec.config_rules import CONFIG_RULES
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


def normalize_text(text: str) -> str:
    """Collapse every run of whitespace to one space and strip the ends."""
    return " ".join(text.split())


def field_text(item: Item, field: ItemField) -> str:
    """One field's text on one line: an item line must never break (a title holding a newline
    would end the line early, so the model would learn and BM25 would index half a title)."""
    value = getattr(item, field)
    if value is None:
        return ""
    if field == "categories":
        return ", ".join(normalize_text(category) for category in value)
    if field == "price":
        return f"{value:.2f}"
    return normalize_text(str(value))


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


class TextConfig(BaseModel):
    """How CALRec writes items and histories (the user-tower and item-tower templates).

    choice: one item per line, `Title: ..; Category: ..; Brand: ..; Price: ..`; the history is the
    most recent items' lines, oldest first, and the target is the next line. The item-tower string
    (the truncated line) is also the BM25 document, so generations and documents share a format.
    """

    model_config = CONFIG_RULES

    fields: tuple[ItemField, ...] = Field(
        DEFAULT_FIELDS, strict=False, description="item fields, in this order"
    )
    labelled: bool = Field(True, description="write 'Title: ..' labels before each field")
    max_history_items: PositiveInt = Field(10, description="most recent history items in a prompt")
    max_item_tokens: PositiveInt = Field(64, description="tokens kept of each item line")
    preamble: str = Field("", description="optional first line of every user-tower prompt")


class ItemLines:
    """Every catalogue item's line, tokenized once and cut to `max_item_tokens`.

    `ids[i]` are item i's line tokens (no newline); `texts[i]` is their decoded text, the exact
    string the item tower reads, generation aims at, and BM25 indexes.
    """

    def __init__(self, items: Sequence[Item], tokenizer, config: TextConfig) -> None:
        lines = [item_text(item, config.fields, config.labelled) or item.item_id for item in items]
        encoded = tokenizer(lines, add_special_tokens=False)["input_ids"]
        self.ids = [tuple(ids[: config.max_item_tokens]) for ids in encoded]
        self.texts = [tokenizer.decode(ids).strip() for ids in self.ids]
        self.newline = tuple(tokenizer("\n", add_special_tokens=False)["input_ids"])
        self.preamble = tuple(
            tokenizer(config.preamble + "\n", add_special_tokens=False)["input_ids"]
            if config.preamble
            else ()
        )
        self.max_history_items = config.max_history_items

    def prompt_ids(self, history: Sequence[int]) -> list[int]:
        """User-tower prompt: the preamble, then one line per recent history item."""
        ids = list(self.preamble)
        for item_index in list(history)[-self.max_history_items :]:
            ids += [*self.ids[int(item_index)], *self.newline]
        return ids or list(self.newline)  # an empty history still gives the model one token

    def target_ids(self, item_index: int) -> list[int]:
        """What the model learns to write next: the item's line and the newline that ends it."""
        return [*self.ids[int(item_index)], *self.newline]
