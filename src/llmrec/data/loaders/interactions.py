"""Interaction rows (user, item, optional timestamp) grouped into time-ordered user sequences,
with their timestamps (for the global temporal split, `data.split: temporal`).

Shared by the one-interaction-per-line formats (bring-your-own JSONL/CSV and RecBole `.inter`).
Each user's interactions are sorted by timestamp with a stable sort, so ties keep file order; a
file without timestamps keeps file order throughout.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from llmrec.data.catalogue import Catalogue
from llmrec.data.loaders.common import Problems, UserSequences
from llmrec.data.values import parse_number, shown
from llmrec.errors import DataError


@dataclass(frozen=True, slots=True)
class Interaction:
    """One interaction as read, with its 1-based line in the file."""

    line: int
    user_id: str
    item_id: str
    timestamp: float | None


def parse_timestamp(value: object, path: Path, line: int, field: str) -> float | None:
    """A number (e.g. Unix seconds, finite, at most 2**53 in magnitude) or an ISO-8601
    date/time (UTC when no zone is given). None or an empty string means "no timestamp"."""
    if value is None or value == "":
        return None
    if isinstance(value, str) and not _is_number_text(value):
        seconds = _iso_seconds(value)
        if seconds is None:
            problem = f"expected a number or an ISO-8601 date/time, got {shown(value)}"
            raise DataError(problem, path, line, field)
        return seconds
    return parse_number(value, path, line, field)


def _is_number_text(text: str) -> bool:
    # Numeric text is a number, even where fromisoformat would read it (e.g. "20240105").
    try:
        float(text)
    except ValueError:
        return False
    return True


def _iso_seconds(text: str) -> float | None:
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def group_by_user(
    interactions: list[Interaction],
    catalogue: Catalogue,
    path: Path,
    problems: Problems,
    *,
    item_field: str,
    timestamp_field: str,
    user_field: str,
) -> UserSequences:
    """Per-user item sequences, users in order of first appearance, each sorted by time.

    Timestamps must be given on every row or on none (then file order is the time order); the
    rows that differ from the majority are the ones named (or skipped). An interaction with an
    unknown item or a missing/extra timestamp raises or is skipped.
    """
    timed = sum(row.timestamp is not None for row in interactions)
    has_time = bool(interactions) and 2 * timed >= len(interactions)
    odd_one = (
        "timestamp missing, though most rows have one (give it on all rows or none)"
        if has_time
        else "timestamp given, though most rows have none (give it on all rows or none)"
    )
    by_user: dict[str, list[Interaction]] = {}
    for row in interactions:
        if (row.timestamp is not None) != has_time:
            problems.handle("bad_value", DataError(odd_one, path, row.line, timestamp_field))
            continue
        if row.item_id not in catalogue:
            problem = f"unknown item id {shown(row.item_id)} (not in the items file)"
            problems.handle("unknown_item", DataError(problem, path, row.line, item_field))
            continue
        by_user.setdefault(row.user_id, []).append(row)
    users = UserSequences(path, [], [], [], user_field, [] if has_time else None)
    for user_id, rows in by_user.items():
        users.user_ids.append(user_id)
        users.lines.append(rows[0].line)  # the user's first line in the file
        ordered = sorted(rows, key=_time_of) if has_time else rows  # stable: ties keep file order
        indices = [catalogue.index(row.item_id) for row in ordered]
        users.sequences.append(np.asarray(indices, dtype=np.int64))
        if users.timestamps is not None:
            users.timestamps.append(np.asarray([_time_of(row) for row in ordered]))
    return users


def _time_of(row: Interaction) -> float:
    return row.timestamp if row.timestamp is not None else 0.0
