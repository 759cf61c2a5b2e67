"""Bring your own data: `interactions.jsonl` or `interactions.csv`, plus `items.jsonl`.

Interactions are JSONL objects `{"user": ..., "item": ..., "timestamp": ...}` or CSV rows under
the header `user,item[,timestamp]` (other keys or columns are ignored). Timestamps are numbers
(e.g. Unix seconds) or ISO-8601 date/times; without them file order is time order. Each user's
interactions are sorted by timestamp with a stable sort, so ties keep file order. Items are
`items.jsonl` objects: item_id required; title, categories, brand, price and description optional.
The split is leave-one-out, or the global temporal split (`data.split: temporal`) when the
interactions have timestamps.
"""

from __future__ import annotations

from pathlib import Path

from llmrec.data.catalogue import Catalogue
from llmrec.data.loaders.common import (
    LoadResult,
    Problems,
    UserSequences,
    field_count_error,
    finish_leave_one_out,
    read_lines,
)
from llmrec.data.loaders.interactions import Interaction, group_by_user, parse_timestamp
from llmrec.data.loaders.items import read_items_jsonl
from llmrec.data.values import csv_fields, parse_id, parse_json_object, shown
from llmrec.errors import DataError

JSONL_FILE = "interactions.jsonl"
CSV_FILE = "interactions.csv"
ITEMS_FILE = "items.jsonl"


def read_interactions_jsonl(path: Path, problems: Problems) -> list[Interaction]:
    """One interaction per JSON object line."""
    interactions = []
    for line, text in read_lines(path, problems):
        try:
            record = parse_json_object(text, path, line)
        except DataError as error:
            problems.handle("malformed_line", error)
            continue
        try:
            interaction = Interaction(
                line,
                parse_id(record.get("user"), path, line, "user"),
                parse_id(record.get("item"), path, line, "item"),
                parse_timestamp(record.get("timestamp"), path, line, "timestamp"),
            )
        except DataError as error:
            problems.handle("bad_value", error)
            continue
        interactions.append(interaction)
    return interactions


def _csv_columns(lines: list[tuple[int, str]], path: Path) -> dict[str, int]:
    if not lines:
        raise DataError("empty file; expected the header user,item[,timestamp]", path, 1)
    line, text = lines[0]
    names = csv_fields(text, path, line)
    missing = [name for name in ("user", "item") if name not in names]
    if missing or len(set(names)) != len(names):
        problem = "header must name user and item (and optionally timestamp) once"
        problem += f"; got {shown(text)}"
        raise DataError(problem, path, line, "header")
    return {name: position for position, name in enumerate(names)}


def read_interactions_csv(path: Path, problems: Problems) -> list[Interaction]:
    """One interaction per CSV row under a `user,item[,timestamp]` header."""
    lines = read_lines(path, problems)
    columns = _csv_columns(lines, path)
    time_column = columns.get("timestamp")
    interactions = []
    for line, text in lines[1:]:
        try:
            fields = csv_fields(text, path, line)
        except DataError as error:
            problems.handle("malformed_line", error)
            continue
        if len(fields) != len(columns):
            error = field_count_error(len(fields), list(columns), "comma", path, line)
            problems.handle("malformed_line", error)
            continue
        time_text = None if time_column is None else fields[time_column]
        try:
            interaction = Interaction(
                line,
                parse_id(fields[columns["user"]], path, line, "user"),
                parse_id(fields[columns["item"]], path, line, "item"),
                parse_timestamp(time_text, path, line, "timestamp"),
            )
        except DataError as error:
            problems.handle("bad_value", error)
            continue
        interactions.append(interaction)
    return interactions


def interactions_path(folder: Path) -> Path:
    """The folder's single interactions file (JSONL or CSV)."""
    present = [folder / name for name in (JSONL_FILE, CSV_FILE) if (folder / name).is_file()]
    if len(present) != 1:
        found = "both" if present else "neither"
        problem = f"expected exactly one of {JSONL_FILE} or {CSV_FILE}, found {found}"
        raise DataError(problem, folder)
    return present[0]


def load_byo(folder: str | Path, *, name: str | None = None, skip_bad: bool = False) -> LoadResult:
    """Load a bring-your-own folder and split it leave-one-out (see the module docstring)."""
    folder = Path(folder)
    problems = Problems(skip_bad)
    catalogue, users = read_byo(folder, problems)
    return finish_leave_one_out(name or folder.name, catalogue, users, problems, "byo", folder)


def read_byo(folder: Path, problems: Problems) -> tuple[Catalogue, UserSequences]:
    """The catalogue and the whole, time-ordered user sequences of a bring-your-own folder,
    with their timestamps when the file has them; before any split."""
    path = interactions_path(folder)
    catalogue = Catalogue.from_items(
        row.item for row in read_items_jsonl(folder / ITEMS_FILE, problems)
    )
    if path.name == JSONL_FILE:
        interactions = read_interactions_jsonl(path, problems)
    else:
        interactions = read_interactions_csv(path, problems)
    users = group_by_user(
        interactions,
        catalogue,
        path,
        problems,
        item_field="item",
        timestamp_field="timestamp",
        user_field="user",
    )
    return catalogue, users
