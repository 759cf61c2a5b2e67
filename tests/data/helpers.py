"""Small helpers for the data tests: write synthetic files, check where an error points."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from llmrec.data.sequences import Dataset
from llmrec.errors import DataError

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURE_DIR = REPO_ROOT / "data" / "amazon-beauty-mini"


def shared_data_dir() -> Path:
    """The staged data sets: $LLMREC_DATA, else ../shared/data next to the repository."""
    return Path(os.environ.get("LLMREC_DATA") or REPO_ROOT.parent / "shared" / "data")


def write_lines(path: Path, lines: Iterable[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def write_jsonl(path: Path, records: Iterable[dict]) -> Path:
    return write_lines(path, (json.dumps(record) for record in records))


def item_records(item_ids: Iterable[str]) -> list[dict]:
    return [{"item_id": item_id, "title": f"title of {item_id}"} for item_id in item_ids]


UNISREC_INTER_HEADER = "user_id:token\titem_id_list:token_seq\titem_id:token"


def unisrec_rows(whole: Mapping[str, Sequence[int]], max_length: int) -> dict[str, list[str]]:
    """UniSRec .inter rows (without header) of whole sequences in integer ids, keyed by split:
    test = (all but last, last), valid = (all but last two, second last), and one training row
    per shorter prefix; histories keep their last `max_length` items, as UniSRec's files do."""

    def row(user: str, history: Sequence[int], target: int) -> str:
        return f"{user}\t{' '.join(map(str, history[-max_length:]))}\t{target}"

    rows: dict[str, list[str]] = {"train": [], "valid": [], "test": []}
    for user, items in whole.items():
        rows["test"].append(row(user, items[:-1], items[-1]))
        rows["valid"].append(row(user, items[:-2], items[-2]))
        for end in range(len(items) - 3, 0, -1):
            rows["train"].append(row(user, items[:end], items[end]))
    return rows


def write_unisrec_folder(
    folder: Path,
    prefix: str,
    *,
    item_ids: Sequence[str],
    user_ids: Sequence[str],
    texts: Iterable[tuple[str, str]],
    whole: Mapping[str, Sequence[int]],
    max_length: int,
) -> Path:
    """A UniSRec folder: index files in the given order, `texts` as (raw item id, text) lines,
    and the .inter files of `whole` (user index -> item indices, as `unisrec_rows`)."""
    write_lines(folder / f"{prefix}.item2index", [f"{i}\t{n}" for n, i in enumerate(item_ids)])
    write_lines(folder / f"{prefix}.user2index", [f"{u}\t{n}" for n, u in enumerate(user_ids)])
    text_lines = [f"{item_id}\t{text}" for item_id, text in texts]
    write_lines(folder / f"{prefix}.text", ["item_id:token\ttext:token_seq", *text_lines])
    for split, rows in unisrec_rows(whole, max_length).items():
        write_lines(folder / f"{prefix}.{split}.inter", [UNISREC_INTER_HEADER, *rows])
    return folder


def assert_points_at(error: DataError, path: Path, line: int | None, field: str | None) -> None:
    """The error and its message name the file, the 1-based line and the field."""
    assert error.path == path
    assert error.line == line
    assert error.field == field
    message = str(error)
    assert str(path) in message
    if line is not None:
        assert f"line {line}" in message
    if field is not None:
        assert f"field '{field}'" in message


def assert_leave_one_out_without_leak(dataset: Dataset, sequences: dict[str, list[str]]) -> None:
    """Leave-one-out against the whole raw sequences: train[u] is exactly the prefix before the
    valid target, the valid history is train[u], the test history is train + valid target, and no
    target position appears in training."""
    catalogue = dataset.catalogue
    assert dataset.split == "leave_one_out"
    assert list(dataset.user_ids) == list(sequences)
    for row, user_id in enumerate(dataset.user_ids):
        whole = [catalogue.index(item_id) for item_id in sequences[user_id]]
        np.testing.assert_array_equal(dataset.train[row], whole[:-2])
        assert dataset.valid.user_ids[row] == dataset.test.user_ids[row] == user_id
        np.testing.assert_array_equal(dataset.valid.histories[row], whole[:-2])
        assert dataset.valid.targets[row] == whole[-2]
        np.testing.assert_array_equal(dataset.test.histories[row], whole[:-1])
        assert dataset.test.targets[row] == whole[-1]
        assert len(dataset.train[row]) == len(whole) - 2  # neither target position is in train
