"""DEALRec format: a time-based split in `sequential_{train,valid,test}.txt`, plus `items.jsonl`.

Lines are `USER_ID ITEM_ID ...` with 1-based item ids (`seq_item_id` in items.jsonl); valid and test
lines may hold no items. The files' own split is kept (DEALRec, Lin et al. KDD 2024, sec. 4.1):
- train sequence = the user's items in the train file;
- valid: users with at least one valid item; history = train sequence, target = FIRST valid item;
- test: users with at least one test item; history = train + all valid items,
  target = FIRST test item.
choice: each held-out period is scored as next-item prediction of its first item, so every
evaluation row has one target as in leave-one-out; the later held-out items are kept in
`LoadResult.full_sequences` (and counted by the data statistics) but not evaluated.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from llmrec.data.catalogue import Catalogue
from llmrec.data.loaders.common import (
    EvalRows,
    LoadResult,
    Problems,
    UserSequences,
    read_sequence_lines,
    require_rows,
)
from llmrec.data.loaders.items import ItemRow, read_items_jsonl
from llmrec.data.sequences import Dataset
from llmrec.data.values import shown
from llmrec.errors import DataError

TRAIN_FILE = "sequential_train.txt"
VALID_FILE = "sequential_valid.txt"
TEST_FILE = "sequential_test.txt"
ITEMS_FILE = "items.jsonl"


def _catalogue(rows: list[ItemRow], path: Path, problems: Problems) -> tuple[Catalogue, dict]:
    """Catalogue of rows with a valid, unique `seq_item_id`, and that id (as text) -> index."""
    items = []
    index_of: dict[str, int] = {}
    for row in rows:
        value = row.record.get("seq_item_id")
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            problem = f"expected a positive integer, got {shown(value)}"
            problems.handle("bad_value", DataError(problem, path, row.line, "seq_item_id"))
            continue
        if str(value) in index_of:
            problem = f"duplicate seq_item_id {value}"
            problems.handle("duplicate_item", DataError(problem, path, row.line, "seq_item_id"))
            continue
        index_of[str(value)] = len(items)
        items.append(row.item)
    return Catalogue.from_items(items), index_of


def _held_out(users: UserSequences) -> dict[str, np.ndarray]:
    return dict(zip(users.user_ids, users.sequences, strict=True))


def _build_dataset(
    name: str,
    catalogue: Catalogue,
    train: UserSequences,
    valid_items: dict[str, np.ndarray],
    test_items: dict[str, np.ndarray],
) -> tuple[Dataset, tuple[np.ndarray, ...]]:
    valid_rows, test_rows = EvalRows(), EvalRows()
    full_sequences = []
    empty = np.zeros(0, dtype=np.int64)
    for user_id, train_sequence in zip(train.user_ids, train.sequences, strict=True):
        valid = valid_items.get(user_id, empty)
        test = test_items.get(user_id, empty)
        before_test = np.concatenate([train_sequence, valid])
        if len(valid):
            valid_rows.add(user_id, train_sequence, valid[0])
        if len(test):
            test_rows.add(user_id, before_test, test[0])
        full_sequences.append(np.concatenate([before_test, test]))
    dataset = Dataset(
        name,
        catalogue,
        tuple(train.user_ids),
        tuple(train.sequences),
        valid_rows.to_eval_set(),
        test_rows.to_eval_set(),
        "files",
    )
    return dataset, tuple(full_sequences)


def load_dealrec(
    folder: str | Path, *, name: str | None = None, skip_bad: bool = False
) -> LoadResult:
    """Load a DEALRec folder with its own time-based split (see the module docstring)."""
    folder = Path(folder)
    problems = Problems(skip_bad)
    items_path = folder / ITEMS_FILE
    catalogue, index_of = _catalogue(read_items_jsonl(items_path, problems), items_path, problems)
    hint = f"not a seq_item_id in {ITEMS_FILE}"
    train = read_sequence_lines(folder / TRAIN_FILE, index_of, problems, unknown_hint=hint)
    problem = "no usable user (a line with a user and an item)"
    require_rows(len(train.user_ids), train.path, problems, problem)
    known_users = set(train.user_ids)
    held_out = [
        read_sequence_lines(
            folder / file_name,
            index_of,
            problems,
            unknown_hint=hint,
            allow_empty=True,
            known_users=known_users,
        )
        for file_name in (VALID_FILE, TEST_FILE)
    ]
    dataset, full_sequences = _build_dataset(
        name or folder.name, catalogue, train, _held_out(held_out[0]), _held_out(held_out[1])
    )
    for eval_set, users in ((dataset.valid, held_out[0]), (dataset.test, held_out[1])):
        problem = "no user of the train file has an item here: nothing to evaluate"
        require_rows(len(eval_set), users.path, problems, problem)
    return LoadResult(dataset, problems.report(), "dealrec", folder, full_sequences)
