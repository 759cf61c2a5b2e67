"""Tests of text/templates.py: item lines (fields in order, missing ones dropped) and CALRec's
user-tower prompts built from them."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmrec.data.catalogue import Item
from llmrec.models.backbone import BackboneConfig, load_backbone
from llmrec.text.templates import ItemLines, TextConfig, item_text, normalize_text

ITEMS = [
    Item("A", "Red Lipstick", ("Beauty", "Makeup"), "Acme", 3.5),
    Item("B", "Night Cream", (), None, None),
    Item("C"),  # no text at all: its id stands in
]


def test_labelled_fields_in_order_missing_ones_dropped() -> None:
    assert item_text(ITEMS[0]) == (
        "Title: Red Lipstick; Category: Beauty, Makeup; Brand: Acme; Price: 3.50"
    )
    assert item_text(ITEMS[1]) == "Title: Night Cream"
    assert item_text(ITEMS[0], ("brand", "title"), labelled=False) == "Acme. Red Lipstick"
    assert item_text(ITEMS[2]) == ""


def test_normalize_text_collapses_whitespace() -> None:
    assert normalize_text("  red \t lipstick\n matte ") == "red lipstick matte"
    assert normalize_text("Red Lipstick") == "Red Lipstick"  # case is kept


def test_an_item_line_never_breaks() -> None:
    # one Beauty title holds a newline; it must not end the item's line early
    item = Item("D", "Lip Balm\n  Mint", ("Skin\tCare",), " Acme ", None)
    assert item_text(item) == "Title: Lip Balm Mint; Category: Skin Care; Brand: Acme"


@pytest.fixture(scope="module")
def tokenizer(llm_cache_dir: Path):
    return load_backbone(BackboneConfig(source="tiny", cache_dir=llm_cache_dir), False).tokenizer


def test_prompts_hold_the_preamble_then_the_recent_lines(tokenizer) -> None:
    config = TextConfig(
        fields=("title",), max_history_items=2, max_item_tokens=2, preamble="Bought"
    )
    lines = ItemLines(ITEMS, tokenizer, config)
    full = tokenizer("Title: Red Lipstick", add_special_tokens=False)["input_ids"]
    assert len(full) > 2 and lines.ids[0] == tuple(full[:2])  # cut to max_item_tokens
    assert lines.texts[2] == "C"  # the item id stands in for an item without text
    newline = list(lines.newline)
    prompt = lines.prompt_ids([2, 0, 1])  # the oldest item falls out of a 2-item window
    assert prompt == [*lines.preamble, *lines.ids[0], *newline, *lines.ids[1], *newline]
    assert tokenizer.decode(lines.preamble) == "Bought\n"
    assert lines.target_ids(1) == [*lines.ids[1], *newline]
    empty = ItemLines(ITEMS, tokenizer, config.model_copy(update={"preamble": ""}))
    assert empty.prompt_ids([]) == newline  # an empty history still gives one token
