"""P5 format (P5 / S3Rec / TIGER): `user_sequence.txt` plus `items.jsonl`, split leave-one-out.

Each line of `user_sequence.txt` is `USER_ID ITEM_ID ITEM_ID ...`, separated by whitespace, oldest
item first (P5, Geng et al. RecSys 2022, sec. 4.1); the last item is the test target and the one
before it the validation target. The catalogue is `items.jsonl` in file order.
"""

from __future__ import annotations

from pathlib import Path

from llmrec.data.catalogue import Catalogue
from llmrec.data.loaders.common import (
    LoadResult,
    Problems,
    UserSequences,
    finish_leave_one_out,
    read_sequence_lines,
)
from llmrec.data.loaders.items import read_items_jsonl

SEQUENCE_FILE = "user_sequence.txt"
ITEMS_FILE = "items.jsonl"


def read_p5(folder: Path, problems: Problems) -> tuple[Catalogue, UserSequences]:
    """The catalogue and the whole user sequences of a P5 folder, before any split."""
    rows = read_items_jsonl(folder / ITEMS_FILE, problems)
    catalogue = Catalogue.from_items(row.item for row in rows)
    index_of = {item.item_id: index for index, item in enumerate(catalogue.items)}
    users = read_sequence_lines(
        folder / SEQUENCE_FILE, index_of, problems, unknown_hint=f"not in {ITEMS_FILE}"
    )
    return catalogue, users


def load_p5(folder: str | Path, *, name: str | None = None, skip_bad: bool = False) -> LoadResult:
    """Load a P5 folder and split it leave-one-out; `name` defaults to the folder name."""
    folder = Path(folder)
    problems = Problems(skip_bad)
    catalogue, users = read_p5(folder, problems)
    return finish_leave_one_out(name or folder.name, catalogue, users, problems, "p5", folder)
