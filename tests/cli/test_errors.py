"""The CLI's error boundary (`llmrec.cli.main.entry`): usage and input errors are one line on
stderr and exit status 2, runtime failures one line and status 1, tracebacks only on request."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from llmrec.cli import data as data_command
from llmrec.cli.main import entry

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURE = str(REPO_ROOT / "data" / "amazon-beauty-mini")
QUICKSTART = str(REPO_ROOT / "configs" / "quickstart.yaml")


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exited:
        entry(args)
    return exited.value.code, capsys.readouterr().err


USAGE_ERRORS = {
    "unknown command": ["bogus"],
    "unknown top-level option": ["--bogus", "data", "stats", FIXTURE],
    "data stats: missing argument": ["data", "stats"],
    "data stats: unknown option": ["data", "stats", FIXTURE, "--bogus"],
    "data stats: unknown format": ["data", "stats", FIXTURE, "--format", "bogus"],
    "data stats: no such data": ["data", "stats", "no-such-data-set"],
    "train: missing config file": ["train", "no-such.yaml"],
    "train: config is a folder": ["train", str(REPO_ROOT)],
    "train: override without =": ["train", QUICKSTART, "--set", "train.lr"],
    "train: unknown key": ["train", QUICKSTART, "--set", "train.nope=1"],
    "evaluate: missing argument": ["evaluate"],
    "evaluate: bogus split": ["evaluate", str(REPO_ROOT), FIXTURE, "--split", "bogus"],
    "run: missing config file": ["run", "no-such.yaml"],
    "run: bad value": ["run", QUICKSTART, "--set", "train.epochs=abc"],
    "run: missing option value": ["run", QUICKSTART, "--set"],
    "compare: missing argument": ["compare", str(REPO_ROOT)],
    "compare: no such run": ["compare", "no-such-run", "no-such-run-either"],
    "compare: bogus split": ["compare", str(REPO_ROOT), str(REPO_ROOT), "--split", "bogus"],
    "compare: no resamples": ["compare", str(REPO_ROOT), str(REPO_ROOT), "--resamples", "0"],
    "recommend: k not a number": ["recommend", str(REPO_ROOT), "-k", "abc"],
    "recommend: k zero": ["recommend", str(REPO_ROOT), "-k", "0"],
    "recommend: missing model folder": ["recommend", "no-such-model"],
    "serve: missing argument": ["serve"],
    "serve: port 0": ["serve", str(REPO_ROOT), "--port", "0"],
    "serve: port too large": ["serve", str(REPO_ROOT), "--port", "70000"],
    "serve: negative timeout": ["serve", str(REPO_ROOT), "--timeout-keep-alive-s", "-1"],
}


@pytest.mark.parametrize("args", list(USAGE_ERRORS.values()), ids=list(USAGE_ERRORS))
def test_usage_errors_are_one_line_and_exit_status_2(
    args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    status, stderr = _run(args, capsys)
    assert status == 2, stderr
    assert stderr.startswith("error: ") and stderr.count("\n") == 1, stderr
    assert "Traceback" not in stderr


def test_the_usage_error_names_the_option_and_where_help_is(
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, stderr = _run(["serve", str(REPO_ROOT), "--port", "0"], capsys)
    assert "'--port'" in stderr and "greater than or equal to 1" in stderr
    assert "llmrec serve --help" in stderr


def test_no_command_prints_the_help_and_exit_status_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        entry([])
    printed = capsys.readouterr()
    assert exited.value.code == 2 and "Commands" in printed.out + printed.err
    assert "Traceback" not in printed.err


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        entry(["data", "stats", "--help"])
    assert exited.value.code == 0 and "--skip-bad" in capsys.readouterr().out


def _fail(*args: object, **kwargs: object) -> None:
    raise RuntimeError("the disk is on fire")


def test_a_runtime_failure_is_one_line_and_exit_status_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(data_command, "load_dataset", _fail)
    monkeypatch.delenv("LLMREC_DEBUG", raising=False)
    status, stderr = _run(["data", "stats", FIXTURE], capsys)
    assert status == 1
    assert stderr.startswith("error: RuntimeError: the disk is on fire") and "--debug" in stderr
    assert stderr.count("\n") == 1 and "Traceback" not in stderr


@pytest.mark.parametrize("how", ["flag", "environment"])
def test_debug_shows_the_traceback_and_keeps_the_status(
    how: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(data_command, "load_dataset", _fail)
    monkeypatch.delenv("LLMREC_DEBUG", raising=False)
    args = ["data", "stats", FIXTURE]
    if how == "flag":
        args = ["--debug", *args]
    else:
        monkeypatch.setenv("LLMREC_DEBUG", "1")
    status, stderr = _run(args, capsys)
    assert status == 1
    assert "Traceback" in stderr and stderr.rstrip().splitlines()[-1].startswith("error: ")


def test_the_console_script_path_gives_one_line_and_status_2() -> None:
    """The real `python -m llmrec` process: typer's own click errors are caught there too."""
    result = subprocess.run(
        [sys.executable, "-m", "llmrec", "recommend", str(REPO_ROOT), "-k", "abc"],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT / "src"), "LLMREC_DEBUG": "0"},
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("error: Invalid value for '-k'")
    assert result.stderr.count("\n") == 1 and result.stdout == ""


def test_an_unwritable_output_dir_is_one_line_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder", encoding="utf-8")  # root may write anywhere: use a file
    args = ["train", QUICKSTART, "--set", f"data.source={FIXTURE}", "-q"]
    status, stderr = _run([*args, "--set", f"output.dir={blocker}"], capsys)
    assert status == 2 and stderr.count("\n") == 1
    assert stderr.startswith(f"error: output.dir: cannot write the run folder {blocker}")


def test_a_run_that_fails_at_loading_data_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = tmp_path / "quickstart"
    run_dir.mkdir()
    (run_dir / "config.resolved.yaml").write_text("the previous run's\n", encoding="utf-8")
    args = ["run", QUICKSTART, "--set", f"output.dir={tmp_path}", "--set", "data.source=nope"]
    status, stderr = _run(args, capsys)
    assert status == 2 and "nope" in stderr
    assert (run_dir / "config.resolved.yaml").read_text(encoding="utf-8") == "the previous run's\n"
    assert sorted(path.name for path in run_dir.iterdir()) == ["config.resolved.yaml"]


def test_resume_after_the_model_changed_names_the_change(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from llmrec.config import load_config, save_config

    common = ["--set", f"data.source={FIXTURE}", "--set", f"output.dir={tmp_path}"]
    earlier = load_config(QUICKSTART, [override for override in common if override != "--set"])
    (tmp_path / "quickstart").mkdir()
    save_config(earlier, tmp_path / "quickstart" / "config.resolved.yaml")
    args = ["train", QUICKSTART, *common, "--resume", "-q", "--set", "model.hidden_size=32"]
    status, stderr = _run(args, capsys)
    assert status == 2 and stderr.count("\n") == 1
    assert "--resume: " in stderr and "model.hidden_size: 64 -> 32" in stderr
