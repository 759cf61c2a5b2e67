"""RecBole atomic files (Zhao et al. CIKM 2021): `NAME.inter` and an optional `NAME.item`.

Files are tab-separated with a typed header (`user_id:token<TAB>item_id:token<TAB>timestamp:float`).
From `.inter`, user_id and item_id are required and timestamp is optional (then file order is time
order); from `.item`, item_id is required and title, categories, brand, price and description are
read when present. Other columns (rating, sales_rank, ...) are ignored. A `token_seq` categories
value is split on `seq_separator` (RecBole's default: one space). Without `.item`, the catalogue
is the items of `.inter` in order of first appearance, with no text. The split is leave-one-out,
or the global temporal split (`data.split: temporal`) when `.inter` has timestamps.
"""

from __future__ import annotations

from pathlib import Path

from llmrec.data.catalogue import Catalogue, Item
from llmrec.data.loaders.common import (
    LoadResult,
    Problems,
    UserSequences,
    field_count_error,
    finish_leave_one_out,
    read_lines,
)
from llmrec.data.loaders.interactions import Interaction, group_by_user, parse_timestamp
from llmrec.data.values import parse_number, shown
from llmrec.errors import DataError

FIELD_TYPES = ("token", "token_seq", "float", "float_seq")
SPLIT_SUFFIXES = (".train.inter", ".valid.inter", ".test.inter")  # UniSRec files, not ours


def find_inter(folder: Path) -> Path:
    """The folder's single NAME.inter file (per-split UniSRec files do not count)."""
    found = sorted(p for p in folder.glob("*.inter") if not p.name.endswith(SPLIT_SUFFIXES))
    if len(found) != 1:
        names = ", ".join(path.name for path in found) or "none"
        raise DataError(f"expected exactly one NAME.inter file, found {names}", folder)
    return found[0]


def read_header(
    lines: list[tuple[int, str]], path: Path, required: tuple[str, ...]
) -> dict[str, tuple[int, str]]:
    """Typed header columns (`name:type<TAB>...`) as name -> (position, type)."""
    if not lines:
        raise DataError("empty file; expected a header like user_id:token", path, 1)
    line, text = lines[0]
    columns: dict[str, tuple[int, str]] = {}
    for position, column in enumerate(text.split("\t")):
        name, _, field_type = column.strip().partition(":")
        if field_type not in FIELD_TYPES or name in columns:
            problem = (
                f"header column {shown(column)} is not a unique name:type with type in"
                f" {FIELD_TYPES}"
            )
            raise DataError(problem, path, line, "header")
        columns[name] = (position, field_type)
    missing = [name for name in required if name not in columns]
    if missing:
        raise DataError(f"header lacks column(s) {missing}", path, line, "header")
    return columns


def read_inter(path: Path, problems: Problems) -> list[Interaction]:
    lines = read_lines(path, problems)
    columns = read_header(lines, path, ("user_id", "item_id"))
    user_at, item_at = columns["user_id"][0], columns["item_id"][0]
    time_at = columns["timestamp"][0] if "timestamp" in columns else None
    interactions = []
    for line, text in lines[1:]:
        fields = text.split("\t")
        if len(fields) != len(columns):
            error = field_count_error(len(fields), list(columns), "tab", path, line)
            problems.handle("malformed_line", error)
            continue
        if not fields[user_at].strip() or not fields[item_at].strip():
            field = "user_id" if not fields[user_at].strip() else "item_id"
            problems.handle("bad_value", DataError("empty id", path, line, field))
            continue
        time_text = None if time_at is None else fields[time_at]
        try:
            timestamp = parse_timestamp(time_text, path, line, "timestamp")
        except DataError as error:
            problems.handle("bad_value", error)
            continue
        interactions.append(Interaction(line, fields[user_at], fields[item_at], timestamp))
    return interactions


def _item_from_fields(
    fields: list[str],
    columns: dict[str, tuple[int, str]],
    seq_separator: str,
    path: Path,
    line: int,
) -> Item:
    def value(name: str) -> str | None:
        return (fields[columns[name][0]] or None) if name in columns else None

    categories: tuple[str, ...] = ()
    if (text := value("categories")) is not None:
        is_sequence = columns["categories"][1] == "token_seq"
        names = text.split(seq_separator) if is_sequence else [text]
        categories = tuple(name for name in names if name)
    price = value("price")
    price_value = None if price is None else parse_number(price, path, line, "price", minimum=0)
    return Item(
        item_id=fields[columns["item_id"][0]],
        title=value("title") or "",
        categories=categories,
        brand=value("brand"),
        price=price_value,
        description=value("description"),
    )


def read_items(path: Path, problems: Problems, seq_separator: str) -> Catalogue:
    """Catalogue from a NAME.item file, in file order."""
    lines = read_lines(path, problems)
    columns = read_header(lines, path, ("item_id",))
    items: dict[str, Item] = {}
    for line, text in lines[1:]:
        fields = text.split("\t")
        if len(fields) != len(columns):
            error = field_count_error(len(fields), list(columns), "tab", path, line)
            problems.handle("malformed_line", error)
            continue
        if not fields[columns["item_id"][0]].strip():
            problems.handle("bad_value", DataError("empty id", path, line, "item_id"))
            continue
        try:
            item = _item_from_fields(fields, columns, seq_separator, path, line)
        except DataError as error:
            problems.handle("bad_value", error)
            continue
        if item.item_id in items:
            problem = f"duplicate item id {shown(item.item_id)}"
            problems.handle("duplicate_item", DataError(problem, path, line, "item_id"))
            continue
        items[item.item_id] = item
    return Catalogue.from_items(items.values())


def load_recbole(
    folder: str | Path,
    *,
    name: str | None = None,
    skip_bad: bool = False,
    seq_separator: str = " ",
) -> LoadResult:
    """Load a RecBole folder and split it leave-one-out (see the module docstring)."""
    folder = Path(folder)
    problems = Problems(skip_bad)
    catalogue, users = read_recbole(folder, problems, seq_separator)
    return finish_leave_one_out(name or folder.name, catalogue, users, problems, "recbole", folder)


def read_recbole(
    folder: Path, problems: Problems, seq_separator: str = " "
) -> tuple[Catalogue, UserSequences]:
    """The catalogue and the whole, time-ordered user sequences of a RecBole folder, with their
    timestamps when `.inter` has them; before any split."""
    inter_path = find_inter(folder)
    interactions = read_inter(inter_path, problems)
    item_path = inter_path.with_suffix(".item")
    if item_path.is_file():
        catalogue = read_items(item_path, problems, seq_separator)
    else:
        first_seen = dict.fromkeys(row.item_id for row in interactions)
        catalogue = Catalogue.from_items(Item(item_id) for item_id in first_seen)
    users = group_by_user(
        interactions,
        catalogue,
        inter_path,
        problems,
        item_field="item_id",
        timestamp_field="timestamp",
        user_field="user_id",
    )
    return catalogue, users
