"""What every loader shares: strict UTF-8 line reading, the raise-or-skip policy, the load result.

Each problem in the input is raised as a `DataError` naming the file, the 1-based line and the
field; with `skip_bad=True` the offending line (or user) is skipped instead and counted by kind in
the `LoadReport`, so nothing is dropped silently.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from llmrec.data.catalogue import Catalogue
from llmrec.data.sequences import Dataset, EvalSet, UserId
from llmrec.data.splits import leave_one_out
from llmrec.data.values import shown
from llmrec.errors import DataError

ProblemKind = Literal[
    "bad_encoding",
    "malformed_line",
    "bad_value",
    "unknown_item",
    "unknown_user",
    "duplicate_item",
    "duplicate_user",
    "empty_sequence",
    "too_short",
    "missing_text",
    "inconsistent_split",
]
"""Kinds of skipped input; each count in a `LoadReport` is a number of skipped lines or users."""

_MAX_EXAMPLES = 3


@dataclass(frozen=True)
class LoadReport:
    """What `skip_bad` skipped: counts per problem kind and the first messages of each kind."""

    skipped: dict[str, int] = field(default_factory=dict)
    examples: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def num_skipped(self) -> int:
        return sum(self.skipped.values())

    def summary(self) -> str:
        if not self.skipped:
            return "nothing skipped"
        parts = [f"{count} {kind}" for kind, count in sorted(self.skipped.items())]
        return "skipped " + ", ".join(parts)

    def __str__(self) -> str:
        return self.summary()


@dataclass(frozen=True)
class LoadResult:
    """A loaded data set, what was skipped on the way, and where it came from.

    `full_sequences[u]` is user u's whole known sequence (internal indices, oldest first), aligned
    with `dataset.user_ids`. It equals train + valid target + test target under leave-one-out, but
    holds more when a file split keeps several held-out items per user (DEALRec).
    """

    dataset: Dataset
    report: LoadReport
    format: str
    path: Path
    full_sequences: tuple[np.ndarray, ...]
    split_record: dict[str, Any] | None = None  # what a split made by loading did (temporal)


class Problems:
    """Raise each input problem, or (with `skip_bad`) count it so the caller can skip the line."""

    def __init__(self, skip_bad: bool) -> None:
        self.skip_bad = skip_bad
        self._counts: Counter[str] = Counter()
        self._examples: dict[str, list[str]] = {}

    def handle(self, kind: ProblemKind, error: DataError) -> None:
        """Raise `error`, or record it when skipping; the caller then skips what it read."""
        if not self.skip_bad:
            raise error
        self._counts[kind] += 1
        examples = self._examples.setdefault(kind, [])
        if len(examples) < _MAX_EXAMPLES:
            examples.append(str(error))

    def report(self) -> LoadReport:
        return LoadReport(
            dict(self._counts),
            {kind: tuple(messages) for kind, messages in self._examples.items()},
        )


@dataclass(frozen=True)
class UserSequences:
    """Whole user sequences before a split, and the file line where each user starts; with the
    time of each interaction (aligned with `sequences`) where the file gives timestamps."""

    path: Path
    user_ids: list[UserId]
    sequences: list[np.ndarray]
    lines: list[int]
    user_field: str = "user_id"
    timestamps: list[np.ndarray] | None = None  # (len(sequence),) float64 seconds per user


@dataclass
class EvalRows:
    """Evaluation rows gathered one user at a time, then frozen into an `EvalSet`."""

    user_ids: list[UserId] = field(default_factory=list)
    histories: list[np.ndarray] = field(default_factory=list)
    targets: list[int] = field(default_factory=list)

    def add(self, user_id: UserId, history: np.ndarray, target: int) -> None:
        self.user_ids.append(user_id)
        self.histories.append(history)
        self.targets.append(int(target))

    def to_eval_set(self) -> EvalSet:
        targets = np.asarray(self.targets, dtype=np.int64).reshape(-1)
        return EvalSet(tuple(self.user_ids), tuple(self.histories), targets)


def require_file(path: Path) -> Path:
    if not path.is_file():
        raise DataError("file not found", path)
    return path


def field_count_error(
    num_found: int, names: list[str], separator: str, path: Path, line: int
) -> DataError:
    """A row with the wrong number of fields; names the first missing column when short."""
    problem = f"{num_found} {separator}-separated fields, expected {len(names)}"
    if num_found < len(names):
        return DataError(f"{problem} (missing '{names[num_found]}')", path, line, names[num_found])
    return DataError(f"{problem} (extra fields after '{names[-1]}')", path, line)


def read_lines(path: Path, problems: Problems) -> list[tuple[int, str]]:
    """Non-blank lines of a UTF-8 file with their 1-based numbers; a leading BOM is dropped.

    Blank lines hold no data and are passed over. Line ends are "\\n" or "\\r\\n".
    """
    try:
        data = require_file(path).read_bytes()
    except OSError as error:  # e.g. no read permission
        raise DataError(f"cannot read the file ({error.strerror})", path) from None
    try:
        texts = data.decode("utf-8").split("\n")
    except UnicodeDecodeError:
        texts = _decode_line_by_line(data, path, problems)
    if texts and texts[0].startswith("\ufeff"):
        texts[0] = texts[0][1:]
    return [
        (number, text.rstrip("\r"))
        for number, text in enumerate(texts, start=1)
        if text and not text.isspace()
    ]


def _decode_line_by_line(data: bytes, path: Path, problems: Problems) -> list[str]:
    texts = []
    for number, raw in enumerate(data.split(b"\n"), start=1):
        try:
            texts.append(raw.decode("utf-8"))
        except UnicodeDecodeError as error:
            byte = error.start + 1
            problem = f"not valid UTF-8 (byte {byte} of the line); save the file as UTF-8"
            problems.handle("bad_encoding", DataError(problem, path, number))
            texts.append("")  # skipped like a blank line, keeping the line numbers
    return texts


def finish_leave_one_out(
    name: str,
    catalogue: Catalogue,
    users: UserSequences,
    problems: Problems,
    data_format: str,
    folder: Path,
) -> LoadResult:
    """Leave-one-out split of whole sequences; users with under 3 items are raised or skipped."""
    kept = []
    for position, sequence in enumerate(users.sequences):
        if len(sequence) < 3:
            problem = (
                f"user {shown(users.user_ids[position])} has {len(sequence)} item(s); leave-one-out"
                " needs at least 3 (last = test target, second last = valid target)"
            )
            error = DataError(problem, users.path, users.lines[position], users.user_field)
            problems.handle("too_short", error)
            continue
        kept.append(position)
    problem = "no usable user (leave-one-out needs users with at least 3 items)"
    require_rows(len(kept), users.path, problems, problem)
    user_ids = [users.user_ids[position] for position in kept]
    sequences = [users.sequences[position] for position in kept]
    dataset = leave_one_out(name, catalogue, user_ids, sequences)
    return LoadResult(dataset, problems.report(), data_format, folder, tuple(sequences))


def require_rows(count: int, path: Path, problems: Problems, problem: str) -> None:
    """A data set with nothing to train or evaluate on is an error naming the file, also when
    `skip_bad` dropped everything (then the message says what it skipped)."""
    if count:
        return
    report = problems.report()
    skipped = f"; --skip-bad {report.summary()}" if report.num_skipped else ""
    raise DataError(problem + skipped, path)


def read_sequence_lines(
    path: Path,
    index_of: dict[str, int],
    problems: Problems,
    *,
    unknown_hint: str,
    allow_empty: bool = False,
    known_users: set[str] | None = None,
) -> UserSequences:
    """Read `USER_ID ITEM_ID ITEM_ID ...` lines, mapping raw item ids through `index_of`.

    A repeated user, a line with no items (unless `allow_empty`), a user outside `known_users`
    or an unknown item raises or, with skip_bad, skips the whole line.
    """
    users = UserSequences(path, [], [], [])
    first_line: dict[str, int] = {}
    for line, text in read_lines(path, problems):
        user_id, *tokens = text.split()
        if user_id in first_line:
            problem = f"duplicate user id {shown(user_id)} (first on line {first_line[user_id]})"
            problems.handle("duplicate_user", DataError(problem, path, line, "user_id"))
            continue
        first_line[user_id] = line
        if known_users is not None and user_id not in known_users:
            problem = f"unknown user id {shown(user_id)} (not in the training file)"
            problems.handle("unknown_user", DataError(problem, path, line, "user_id"))
            continue
        if not tokens and not allow_empty:
            problem = f"user {shown(user_id)} has no items"
            problems.handle("empty_sequence", DataError(problem, path, line, "item_id"))
            continue
        indices = [index_of.get(token) for token in tokens]
        if None in indices:
            position = indices.index(None)
            problem = f"unknown item id {shown(tokens[position])} at item position {position + 1}"
            error = DataError(f"{problem} ({unknown_hint})", path, line, "item_id")
            problems.handle("unknown_item", error)
            continue
        users.user_ids.append(user_id)
        users.sequences.append(np.asarray(indices, dtype=np.int64))
        users.lines.append(line)
    return users
