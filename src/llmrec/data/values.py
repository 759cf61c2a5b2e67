"""Checked field values: the one place where readers of data files validate what a line holds.

Each function returns a clean value or raises a `DataError` naming the file, line and field, so
no raw Python error (RecursionError, OverflowError, the 4,300-digit integer limit, csv.Error,
an un-encodable string) escapes a loader. Strings must be encodable as UTF-8, numbers finite
and in range, and types as documented (docs/data.md, "Bad input").
"""

from __future__ import annotations

import csv
import json
import math
import re
import sys
from pathlib import Path
from typing import Any

from llmrec.errors import DataError

MAX_EXACT_INTEGER = 2**53
"""Largest magnitude of a timestamp or price: above it float64 no longer holds every integer, so
distinct timestamps could compare equal (and tie order would decide the sequence)."""

MAX_INDEX_DIGITS = 18
"""Longest integer index (RAW_ID<TAB>INTEGER files): 18 digits always fit in int64."""

_SHOWN_CHARS = 60
_INDEX = re.compile(rf"[0-9]{{1,{MAX_INDEX_DIGITS}}}")


def shown(value: object) -> str:
    """A short, one-line repr of a bad value for an error message (never a 100 KB one)."""
    if isinstance(value, list | dict):  # repr of a deeply nested value could itself recurse
        return f"a JSON {'array' if isinstance(value, list) else 'object'}"
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return f"an integer of about {int(value.bit_length() * math.log10(2)) + 1} digits"
    text = repr(value)
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 3] + "..."


def parse_json_object(text: str, path: Path, line: int) -> dict[str, Any]:
    """One JSONL line as a dict; bad syntax, too deep nesting, an integer over Python's digit
    limit or a non-object raises DataError."""
    try:
        record = json.loads(text)
    except json.JSONDecodeError as error:
        raise DataError(f"not valid JSON ({error.msg}, column {error.colno})", path, line) from None
    except RecursionError:
        raise DataError("JSON nested too deeply to read", path, line) from None
    except ValueError:  # the only other ValueError: an integer over Python's digit limit
        problem = f"not readable JSON: a number of more than {sys.get_int_max_str_digits()} digits"
        raise DataError(problem, path, line) from None
    if not isinstance(record, dict):
        raise DataError(f"expected a JSON object, got {type(record).__name__}", path, line)
    return record


def parse_text(value: object, path: Path, line: int | None, field: str) -> str:
    """A string that can be written back as UTF-8 (a JSON "\\ud800" escape cannot)."""
    if not isinstance(value, str):
        raise DataError(f"expected a string, got {shown(value)}", path, line, field)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        problem = (
            f"not encodable as UTF-8: lone surrogate {value[error.start]!r} at character"
            f" {error.start + 1} (a \\ud800-\\udfff escape without its pair)"
        )
        raise DataError(problem, path, line, field) from None
    return value


def parse_optional_text(value: object, path: Path, line: int, field: str) -> str | None:
    """A UTF-8 string, or None for a missing or null value."""
    return None if value is None else parse_text(value, path, line, field)


def parse_text_list(value: object, path: Path, line: int, field: str) -> tuple[str, ...]:
    """A list of UTF-8 strings (a bare string is refused, not read as its letters); null is ()."""
    if value is None:
        return ()
    if not isinstance(value, list):
        problem = f"expected a list of strings or null, got {shown(value)}"
        raise DataError(problem, path, line, field)
    return tuple(parse_text(name, path, line, field) for name in value)


def parse_id(value: object, path: Path, line: int, field: str) -> str:
    """A raw id: a non-empty UTF-8 string, or an integer (kept as its decimal string)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str) and value.strip():
        return parse_text(value, path, line, field)
    problem = "missing" if value is None else f"got {shown(value)}"
    raise DataError(
        f"expected an id (a non-empty string or an integer), {problem}", path, line, field
    )


def parse_number(
    value: object,
    path: Path,
    line: int,
    field: str,
    *,
    minimum: float = -MAX_EXACT_INTEGER,
    maximum: float = MAX_EXACT_INTEGER,
    accept_text: bool = True,
) -> float:
    """A finite number in [minimum, maximum]: a JSON number (not a boolean), or a decimal text
    when `accept_text` (the field of a text format, or a JSON field documented as either)."""
    number = None if isinstance(value, str) and not accept_text else _as_float(value)
    if number is None:
        raise DataError(f"expected a number, got {shown(value)}", path, line, field)
    if not minimum <= number <= maximum:  # NaN fails this too
        span = f"from {_bound(minimum)} to {_bound(maximum)}"
        raise DataError(f"expected a finite number {span}, got {shown(value)}", path, line, field)
    return number


def _bound(limit: float) -> str:
    if abs(limit) == MAX_EXACT_INTEGER:
        return "-2**53" if limit < 0 else "2**53"
    return f"{limit:g}"


def _as_float(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return float(value)
    except OverflowError:  # an integer beyond float64: out of range, not "not a number"
        return math.inf
    except ValueError:
        return None


def parse_index(text: str, path: Path, line: int, field: str) -> int:
    """A non-negative integer index written in decimal digits (at most 18 of them)."""
    if not _INDEX.fullmatch(text.strip()):
        problem = f"expected a non-negative integer of at most {MAX_INDEX_DIGITS} digits"
        raise DataError(f"{problem}, got {shown(text)}", path, line, field)
    return int(text)


def csv_fields(text: str, path: Path, line: int) -> list[str]:
    """The trimmed fields of one CSV line; bad quoting or a field over the csv module's size
    limit (128 KiB), quoted or not, raises DataError."""
    if '"' in text:
        try:
            fields = next(csv.reader([text], strict=True))
        except csv.Error as error:
            raise DataError(f"not valid CSV ({error})", path, line) from None
    else:  # fast path; quoted fields go through the csv module
        fields = text.split(",")
    limit = csv.field_size_limit()
    if any(len(value) > limit for value in fields):
        raise DataError(f"not valid CSV (field larger than field limit ({limit}))", path, line)
    return [value.strip() for value in fields]
