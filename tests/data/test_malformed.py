"""Every malformed copy of the fixture (tests/data/malformed.py) gives one clear line, exit 2.

`llmrec data stats` runs on every case, `llmrec run` (a Pop model, so a good load is fast) on a
subset of them: both exit 2 with one line on stderr naming the file, and the line where there is
one, and no traceback. With `--skip-bad` the bad lines are counted and the rest loads, or, where
nothing usable is left, the load still fails naming the file. In-process through `entry()`, the
console entry point, so the test sees what a user sees.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from llmrec.cli.main import entry
from tests.data.malformed import BASES, CASES, NUM_USERS, Case, build_case, write_base

RUN_CASES = {
    "p5-title-lone-surrogate",  # the case that used to fail at the final save, after training
    "p5-price-nan",
    "p5-sequence-file-empty",
    "p5-skip-bad-drops-every-user",
    "byo-jsonl-deeply-nested",
    "byo-jsonl-timestamp-huge-integer",
    "byo-csv-quoted-field-over-128-kib",
    "byo-csv-header-only",
    "recbole-item-price-400-digits",
    "unisrec-index-over-4300-digits",
    "unisrec-inter-files-header-only",
    "dealrec-test-file-without-items",
}


@pytest.fixture(scope="module")
def bases(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixture in every format, written once; each case damages a copy."""
    root = tmp_path_factory.mktemp("bases")
    for base in BASES:
        write_base(base, root / base)
    return root


def _llmrec(args: list[str], monkeypatch: pytest.MonkeyPatch, capsys) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of the `llmrec` console command."""
    monkeypatch.setattr(sys, "argv", ["llmrec", *args])
    try:
        entry()
        status = 0
    except SystemExit as stop:
        status = stop.code if isinstance(stop.code, int) else int(stop.code is not None)
    out, err = capsys.readouterr()
    return status, out, err


def _assert_one_line_naming(err: str, path: Path, line: int | None) -> None:
    assert "Traceback" not in err, err
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert str(path) in err, err
    if line is not None:
        assert f"line {line}," in err or f"line {line}:" in err, err


def _write_config(folder: Path, tmp_path: Path) -> Path:
    config = {
        "data": {"source": str(folder)},
        "model": {"name": "pop"},
        "output": {"dir": str(tmp_path / "runs"), "name": "case"},
    }
    path = tmp_path / "pop.yaml"
    path.write_text(json.dumps(config), encoding="utf-8")  # JSON is YAML
    return path


def _check_skip_bad_stats(case: Case, folder: Path, result: tuple[int, str, str]) -> None:
    status, out, err = result
    if case.skip is None:
        assert status == 2, out
        _assert_one_line_naming(err, folder / case.file, None)
        return
    assert status == 0, err
    assert "users" in out  # the statistics table
    skipped = out.strip().splitlines()[-1]
    assert skipped.startswith("skipped ") and f" {case.skip}" in skipped, out


def _check_run(case: Case, folder: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    config = str(_write_config(folder, tmp_path))
    status, _, err = _llmrec(["run", config, "-q"], monkeypatch, capsys)
    assert status == 2
    _assert_one_line_naming(err, folder / case.file, case.line)
    args = ["run", config, "-q", "--set", "data.skip_bad=true"]
    status, _, err = _llmrec(args, monkeypatch, capsys)
    if case.skip is None:
        assert status == 2
        _assert_one_line_naming(err, folder / case.file, None)
        return
    assert status == 0, err
    report = json.loads((tmp_path / "runs" / "case" / "data_report.json").read_text("utf-8"))
    assert report["skipped"].get(case.skip, 0) >= 1
    assert (tmp_path / "runs" / "case" / "model" / "items.jsonl").is_file()  # the save succeeded


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.case_id)
def test_bad_input_is_one_line_naming_file_and_line(
    case: Case, bases: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    folder = build_case(case, bases, tmp_path)
    status, out, err = _llmrec(["data", "stats", str(folder)], monkeypatch, capsys)
    assert status == 2, out
    _assert_one_line_naming(err, folder / case.file, case.line)
    skip_bad = _llmrec(["data", "stats", str(folder), "--skip-bad"], monkeypatch, capsys)
    _check_skip_bad_stats(case, folder, skip_bad)
    if case.case_id in RUN_CASES:
        _check_run(case, folder, tmp_path, monkeypatch, capsys)


# What issue 24 (item 4) found failing, as case-id fragments; each must have a case.
ISSUE_CATEGORIES = (
    "deeply-nested",
    "over-4300-digits",
    "price-huge-integer",
    "timestamp-huge-integer",
    "quoted-field-over-128-kib",
    "title-lone-surrogate",
    "price-nan",
    "categories-string",
    "sequence-file-empty",
    "csv-header-only",
    "skip-bad-drops-every-user",
)


def test_the_corpus_covers_every_format_and_category() -> None:
    ids = {case.case_id for case in CASES}
    assert len(ids) == len(CASES) >= 60
    assert {case.base for case in CASES} == set(BASES)
    assert ids >= RUN_CASES
    assert all(any(category in case_id for case_id in ids) for category in ISSUE_CATEGORIES)
    kinds = {case.skip for case in CASES}
    assert kinds >= {"malformed_line", "bad_value", "bad_encoding", "unknown_item", None}


@pytest.mark.parametrize("base", BASES)
def test_every_base_loads_cleanly(
    base: str, bases: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    status, out, err = _llmrec(
        ["data", "stats", str(bases / base), "--skip-bad"], monkeypatch, capsys
    )
    assert status == 0, err
    assert "nothing skipped" in out
    assert f" {NUM_USERS} " in out
