"""UniSRec format (RecBole atomic files, Hou et al. KDD 2022): NAME.{text,train.inter,valid.inter,
test.inter,item2index,user2index}, with the files' own split.

Per user, the test row gives (history, target) and the valid row likewise; the training sequence
is the valid row's history. Histories in these files are cut to their last items (50 for UniSRec),
so a few long users lose their earliest items. The whole item text ("title. categories. brand. ")
goes into `Item.title`: splitting it back into fields is not reliable. Raw ids are ASINs and
reviewer ids, mapped back from the integer ids through item2index / user2index; the catalogue is
in item2index order.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from llmrec.data.catalogue import Catalogue, Item
from llmrec.data.loaders.common import (
    EvalRows,
    LoadResult,
    Problems,
    field_count_error,
    read_lines,
    require_rows,
)
from llmrec.data.loaders.recbole import read_header
from llmrec.data.sequences import Dataset
from llmrec.data.values import parse_index, shown
from llmrec.errors import DataError

INTER_COLUMNS = ("user_id", "item_id_list", "item_id")


@dataclass(frozen=True)
class InterRow:
    """One row of a .inter file in internal indices: (history, target) of a user."""

    line: int
    user_id: str
    history: list[int]
    target: int


def find_prefix(folder: Path) -> str:
    """NAME of the single NAME.train.inter in `folder`."""
    names = sorted(path.name for path in folder.glob("*.train.inter"))
    if len(names) != 1:
        found = ", ".join(names) or "none"
        raise DataError(f"expected exactly one *.train.inter file, found {found}", folder)
    return names[0].removesuffix(".train.inter")


def read_index(path: Path, problems: Problems, kind: Literal["item", "user"]) -> dict[str, str]:
    """A `RAW_ID<TAB>INTEGER` file as integer text -> raw id, in integer order."""
    raw_of: dict[int, str] = {}
    seen: set[str] = set()
    for line, text in read_lines(path, problems):
        fields = text.split("\t")
        if len(fields) != 2 or not fields[0].strip():
            problem = "expected RAW_ID<TAB>INTEGER"
            problems.handle("malformed_line", DataError(problem, path, line, "index"))
            continue
        try:
            number = parse_index(fields[1], path, line, "index")
        except DataError as error:
            problems.handle("bad_value", error)
            continue
        raw_id = fields[0]
        if raw_id in seen or number in raw_of:
            problem = f"duplicate {kind} id {shown(raw_id)} or index {number}"
            error = DataError(problem, path, line, f"{kind}_id")
            problems.handle("duplicate_item" if kind == "item" else "duplicate_user", error)
            continue
        seen.add(raw_id)
        raw_of[number] = raw_id
    return {str(number): raw_of[number] for number in sorted(raw_of)}


def read_columns(
    lines: list[tuple[int, str]], path: Path, wanted: tuple[str, ...]
) -> tuple[list[int], list[str]]:
    """Positions of the `wanted` columns in a typed RecBole header, and all column names."""
    columns = read_header(lines, path, wanted)
    return [columns[name][0] for name in wanted], list(columns)


def read_texts(path: Path, catalogue_ids: list[str], problems: Problems) -> Catalogue:
    """Items in item2index order, each titled with its whole text from NAME.text."""
    lines = read_lines(path, problems)
    (id_column, text_column), names = read_columns(lines, path, ("item_id", "text"))
    known = set(catalogue_ids)
    text_of: dict[str, str] = {}
    for line, text in lines[1:]:
        fields = text.split("\t")
        if len(fields) != len(names):
            error = field_count_error(len(fields), names, "tab", path, line)
            problems.handle("malformed_line", error)
            continue
        item_id = fields[id_column]
        if item_id not in known:
            problem = f"unknown item id {shown(item_id)} (not in the item2index file)"
            problems.handle("unknown_item", DataError(problem, path, line, "item_id"))
        elif item_id in text_of:
            problem = f"duplicate item id {shown(item_id)}"
            problems.handle("duplicate_item", DataError(problem, path, line, "item_id"))
        else:
            text_of[item_id] = fields[text_column].strip()
    for item_id in catalogue_ids:
        if item_id not in text_of:
            problem = f"item {shown(item_id)} has no text; it keeps an empty title"
            problems.handle("missing_text", DataError(problem, path, None, "item_id"))
    items = (Item(item_id, text_of.get(item_id, "")) for item_id in catalogue_ids)
    return Catalogue.from_items(items)


def read_inter(
    path: Path, user_of: dict[str, str], index_of: dict[str, int], problems: Problems
) -> list[InterRow]:
    """Rows of a NAME.*.inter file, with raw user ids and internal item indices."""
    lines = read_lines(path, problems)
    columns, names = read_columns(lines, path, INTER_COLUMNS)
    rows = []
    for line, text in lines[1:]:
        fields = text.split("\t")
        if len(fields) != len(names):
            error = field_count_error(len(fields), names, "tab", path, line)
            problems.handle("malformed_line", error)
            continue
        user_text, history_text, target_text = (fields[column] for column in columns)
        if user_text not in user_of:
            problem = f"unknown user {shown(user_text)} (not in the user2index file)"
            problems.handle("unknown_user", DataError(problem, path, line, "user_id"))
            continue
        tokens = history_text.split()
        unknown = [token for token in tokens if token not in index_of]
        if unknown or target_text.strip() not in index_of:
            field, token = ("item_id_list", unknown[0]) if unknown else ("item_id", target_text)
            problem = f"unknown item {shown(token.strip())} (not in the item2index file)"
            problems.handle("unknown_item", DataError(problem, path, line, field))
            continue
        history = [index_of[token] for token in tokens]
        target = index_of[target_text.strip()]
        rows.append(InterRow(line, user_of[user_text], history, target))
    return rows


def one_row_per_user(rows: list[InterRow], path: Path, problems: Problems) -> dict[str, InterRow]:
    by_user: dict[str, InterRow] = {}
    for row in rows:
        if row.user_id in by_user:
            problem = (
                f"duplicate user {shown(row.user_id)} (first on line {by_user[row.user_id].line})"
            )
            problems.handle("duplicate_user", DataError(problem, path, row.line, "user_id"))
            continue
        by_user[row.user_id] = row
    return by_user


def _test_follows_valid(valid: InterRow, test: InterRow) -> bool:
    """The test history is the valid history + valid target, cut by at most its first item."""
    whole = [*valid.history, valid.target]
    cut = len(whole) - len(test.history)
    return cut in (0, 1) and whole[cut:] == test.history


def _train_error(
    valid: InterRow, train_rows: list[InterRow], max_length: int, path: Path
) -> DataError | None:
    """Error when the training rows are not the prefixes of the valid history, else None.

    Checked only for users whose valid history was not cut to `max_length` items.
    """
    if len(valid.history) >= max_length:
        return None
    for row in train_rows:
        if [*row.history, row.target] != valid.history[: len(row.history) + 1]:
            problem = (
                f"training row of user {shown(valid.user_id)} is not a prefix of its valid history"
            )
            return DataError(problem, path, row.line, "item_id_list")
    if len(train_rows) != len(valid.history) - 1:
        problem = (
            f"user {shown(valid.user_id)} has {len(train_rows)} training rows; expected"
            f" {len(valid.history) - 1} (one per prefix of its valid history)"
        )
        return DataError(problem, path, train_rows[0].line if train_rows else None, "user_id")
    return None


def _missing_row_error(
    user_id: str, valid: InterRow | None, test: InterRow | None, paths: dict[str, Path]
) -> DataError:
    if valid is not None:
        problem = f"user {shown(user_id)} has a valid row but no test row"
        return DataError(problem, paths["valid"], valid.line, "user_id")
    problem = f"user {shown(user_id)} has a test row but no valid row"
    return DataError(problem, paths["test"], test.line if test else None, "user_id")


def _rows_error(
    valid: InterRow,
    test: InterRow,
    train_rows: list[InterRow],
    max_length: int,
    paths: dict[str, Path],
) -> DataError | None:
    """Why a user's test or train rows disagree with its valid row, or None."""
    if not _test_follows_valid(valid, test):
        problem = (
            f"test history of user {shown(test.user_id)} is not its valid history + valid target"
        )
        return DataError(problem, paths["test"], test.line, "item_id_list")
    return _train_error(valid, train_rows, max_length, paths["train"])


def consistent_users(
    user_order: list[str],
    rows: dict[str, list[InterRow]],
    paths: dict[str, Path],
    problems: Problems,
) -> list[tuple[InterRow, InterRow]]:
    """(valid row, test row) of each user whose rows agree, in user2index order."""
    valid = one_row_per_user(rows["valid"], paths["valid"], problems)
    test = one_row_per_user(rows["test"], paths["test"], problems)
    train_rows: dict[str, list[InterRow]] = defaultdict(list)
    for row in rows["train"]:
        train_rows[row.user_id].append(row)
    max_length = max((len(row.history) for row in test.values()), default=0)
    kept = []
    for user_id in user_order:
        valid_row, test_row = valid.get(user_id), test.get(user_id)
        if valid_row is None and test_row is None:
            continue  # listed in user2index without interactions: nothing to drop
        if valid_row is None or test_row is None:
            error = _missing_row_error(user_id, valid_row, test_row, paths)
            problems.handle("inconsistent_split", error)
            continue
        if not valid_row.history:
            problem = f"user {shown(user_id)} has an empty valid history (no training items)"
            error = DataError(problem, paths["valid"], valid_row.line, "item_id_list")
            problems.handle("empty_sequence", error)
            continue
        rows_error = _rows_error(valid_row, test_row, train_rows[user_id], max_length, paths)
        if rows_error is not None:
            problems.handle("inconsistent_split", rows_error)
            continue
        kept.append((valid_row, test_row))
    return kept


def load_unisrec(
    folder: str | Path, *, name: str | None = None, skip_bad: bool = False
) -> LoadResult:
    """Load a UniSRec folder with the split its .inter files define (see the module docstring)."""
    folder = Path(folder)
    problems = Problems(skip_bad)
    prefix = find_prefix(folder)
    paths = {split: folder / f"{prefix}.{split}.inter" for split in ("train", "valid", "test")}
    item_of = read_index(folder / f"{prefix}.item2index", problems, "item")
    user_of = read_index(folder / f"{prefix}.user2index", problems, "user")
    catalogue = read_texts(folder / f"{prefix}.text", list(item_of.values()), problems)
    index_of = {number: position for position, number in enumerate(item_of)}
    rows = {split: read_inter(path, user_of, index_of, problems) for split, path in paths.items()}
    users = consistent_users(list(user_of.values()), rows, paths, problems)
    problem = "no usable user (one with a valid and a test row that agree)"
    require_rows(len(users), paths["test"], problems, problem)
    valid_rows, test_rows = EvalRows(), EvalRows()
    for valid, test in users:
        valid_rows.add(valid.user_id, _array(valid.history), valid.target)
        test_rows.add(test.user_id, _array(test.history), test.target)
    dataset = Dataset(
        name or folder.name,
        catalogue,
        tuple(valid_rows.user_ids),
        tuple(valid_rows.histories),
        valid_rows.to_eval_set(),
        test_rows.to_eval_set(),
        "files",
    )
    full_sequences = tuple(
        np.append(history, target)
        for history, target in zip(test_rows.histories, test_rows.targets, strict=True)
    )
    return LoadResult(dataset, problems.report(), "unisrec", folder, full_sequences)


def _array(indices: list[int]) -> np.ndarray:
    return np.asarray(indices, dtype=np.int64)
