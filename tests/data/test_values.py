"""Tests for data/values.py: each checked value is clean or a DataError naming file, line, field."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from llmrec.data.values import (
    MAX_EXACT_INTEGER,
    csv_fields,
    parse_id,
    parse_index,
    parse_json_object,
    parse_number,
    parse_text,
    parse_text_list,
    shown,
)
from llmrec.errors import DataError
from tests.data.helpers import assert_points_at

PATH = Path("shop/items.jsonl")


def _error(call, *args, **kwargs) -> DataError:
    with pytest.raises(DataError) as caught:
        call(*args, **kwargs)
    return caught.value


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[" * 100_000, "nested too deeply"),
        ('{"price": ' + "1" * 5000 + "}", "a number of more than 4300 digits"),
        ('{"price": 1', "not valid JSON"),
        ("[1]", "expected a JSON object, got list"),
    ],
)
def test_unreadable_json_is_a_data_error(text: str, message: str) -> None:
    error = _error(parse_json_object, text, PATH, 4)
    assert_points_at(error, PATH, 4, None)
    assert message in str(error)


def test_json_nan_and_big_integers_parse_and_are_refused_by_the_field() -> None:
    record = parse_json_object('{"price": NaN, "time": ' + "9" * 400 + "}", PATH, 1)
    for key in ("price", "time"):
        error = _error(parse_number, record[key], PATH, 1, key)
        assert_points_at(error, PATH, 1, key)
        assert "expected a finite number from -2**53 to 2**53" in str(error)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(3, 3.0), (-2.5, -2.5), ("1e3", 1000.0), (" 7 ", 7.0), (MAX_EXACT_INTEGER, 2.0**53)],
)
def test_finite_numbers_in_range_pass(value: object, expected: float) -> None:
    assert parse_number(value, PATH, 1, "price") == expected


@pytest.mark.parametrize(
    "value", [math.nan, math.inf, "-inf", "nan", "1e400", 10**400, MAX_EXACT_INTEGER + 2]
)
def test_non_finite_or_huge_numbers_are_out_of_range(value: object) -> None:
    error = _error(parse_number, value, PATH, 2, "timestamp")
    assert_points_at(error, PATH, 2, "timestamp")
    assert "expected a finite number" in str(error)


@pytest.mark.parametrize("value", [True, None, [1], "cheap"])
def test_non_numbers_are_refused(value: object) -> None:
    assert "expected a number" in str(_error(parse_number, value, PATH, 1, "price"))


def test_text_is_refused_where_only_a_json_number_is_documented() -> None:
    error = _error(parse_number, "12.5", PATH, 1, "price", accept_text=False)
    assert "expected a number, got '12.5'" in str(error)


def test_minimum_is_enforced() -> None:
    error = _error(parse_number, -1, PATH, 1, "price", minimum=0)
    assert "from 0 to 2**53, got -1" in str(error)


def test_lone_surrogate_is_refused_with_its_position() -> None:
    error = _error(parse_text, "ab\ud800", PATH, 3, "title")
    assert_points_at(error, PATH, 3, "title")
    assert "lone surrogate '\\ud800' at character 3" in str(error)
    assert parse_text("café \U0001f600", PATH, 3, "title") == "café \U0001f600"


@pytest.mark.parametrize("value", ["Beauty", [["Beauty"]], ["ok", 5], ["ok", "\udfff"]])
def test_a_category_list_must_be_a_list_of_utf8_strings(value: object) -> None:
    assert_points_at(_error(parse_text_list, value, PATH, 5, "categories"), PATH, 5, "categories")


def test_ids_are_non_empty_strings_or_integers() -> None:
    assert parse_id(12, PATH, 1, "user") == "12"
    assert parse_id("u1", PATH, 1, "user") == "u1"
    for value in (True, 1.5, "  ", None, ["u1"], "\ud800"):
        assert_points_at(_error(parse_id, value, PATH, 1, "user"), PATH, 1, "user")


@pytest.mark.parametrize("text", ["-1", "\u00b2", "1" * 19, "1" * 5000, "", "1.0"])
def test_an_index_is_at_most_18_ascii_digits(text: str) -> None:
    assert_points_at(_error(parse_index, text, PATH, 2, "index"), PATH, 2, "index")
    assert parse_index("9" * 18, PATH, 2, "index") == 10**18 - 1


@pytest.mark.parametrize(
    "text", ['u1,"' + "x" * 140_000 + '",1', "u1," + "x" * 140_000 + ",1", 'u1,"a"b,1', 'u1,"a']
)
def test_bad_csv_lines_are_data_errors(text: str) -> None:
    error = _error(csv_fields, text, PATH, 9)
    assert_points_at(error, PATH, 9, None)
    assert "not valid CSV" in str(error)


def test_csv_fields_are_trimmed_and_quotes_read() -> None:
    assert csv_fields(' u1 ,"A, B", 3', PATH, 1) == ["u1", "A, B", "3"]


def test_shown_values_stay_short_and_never_recurse() -> None:
    assert shown("x" * 1000).endswith("...") and len(shown("x" * 1000)) == 60
    deep: list = []
    for _ in range(100_000):
        deep = [deep]
    assert shown(deep) == "a JSON array"
    assert shown(10**5000) == "an integer of about 5001 digits"
