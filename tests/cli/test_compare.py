"""`llmrec compare`: the documented example (docs/evaluation.md, section 6), runs paired by their
evaluation set rather than by the split label, a missing metric named with those there are, and
runs of different users refused."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import numpy as np
import pytest

from llmrec.cli.main import entry
from llmrec.evaluation.config import EvalConfig
from llmrec.evaluation.result import EvalResult, build_protocol

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURE = str(REPO_ROOT / "data" / "amazon-beauty-mini")
QUICKSTART = str(REPO_ROOT / "configs" / "quickstart.yaml")
SHARED = ["-q", "--set", f"data.source={FIXTURE}", "--set", "eval.bootstrap_resamples=0"]
SHARED += ["--set", "train.refit_before_test=false", "--set", "baselines=[]"]  # one model, as run


def _entry(args: list[str]) -> int:
    with pytest.raises(SystemExit) as exited:
        entry(args)
    return exited.value.code


def _documented_command() -> list[str]:
    docs = (REPO_ROOT / "docs" / "evaluation.md").read_text(encoding="utf-8")
    section = docs[docs.index("## 6.") : docs.index("## 7.")]
    return shlex.split(re.search(r"^llmrec compare .*$", section, re.MULTILINE).group(0))


def test_the_documented_example_compares_a_refit_sasrec_run_with_pop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # the example's paths are relative: runs/...
    sasrec = ["--set", "output.name=sasrec-beauty", "--set", "train.epochs=1"]
    refit = ["--set", "train.refit_before_test=true"]
    assert _entry(["run", QUICKSTART, *SHARED, *sasrec, *refit]) == 0
    pop = ["--set", "output.name=pop-beauty", "--set", "model={name: pop}"]
    assert _entry(["run", QUICKSTART, *SHARED, *pop]) == 0
    protocols = [
        json.loads((tmp_path / "runs" / name / "test" / "metrics.json").read_text())["protocol"]
        for name in ("sasrec-beauty", "pop-beauty")
    ]
    assert "refit" in protocols[0]["split"] and "refit" not in protocols[1]["split"]
    assert protocols[0]["eval_set_sha256"] == protocols[1]["eval_set_sha256"]
    capsys.readouterr()
    assert _entry(_documented_command()[1:]) == 0
    output = capsys.readouterr().out
    assert output.startswith("ndcg@10 (test): A ") and "paired sign-flip p = " in output


def test_a_metric_missing_from_holdout_runs_lists_the_metrics_they_have(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    common = [*SHARED, "--set", f"output.dir={tmp_path}", "--set", "model={name: pop}"]
    common += ["--set", "data.split=holdout", "--set", "eval.ks=[20, 40]"]
    for name in ("a", "b"):
        args = ["run", QUICKSTART, *common]
        assert _entry([*args, "--set", f"output.name={name}"]) == 0
    capsys.readouterr()
    assert _entry(["compare", str(tmp_path / "a"), str(tmp_path / "b")]) == 2
    stderr = capsys.readouterr().err
    assert stderr.count("\n") == 1 and "Traceback" not in stderr
    assert "'ndcg@10' is not in both results; they have recall@20, recall@40" in stderr


def test_a_run_folder_without_results_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _entry(["compare", str(tmp_path), str(tmp_path)]) == 2
    stderr = capsys.readouterr().err
    assert stderr.startswith(f"error: {tmp_path / 'test' / 'metrics.json'}: not found")


def test_runs_of_different_users_are_refused_with_the_users_they_lack(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    protocol = build_protocol(EvalConfig(ks=(10,)), 50, 3, "test", "pop", "score", None)
    for name, users in (("a", ("u1", "u2", "u3")), ("b", ("u3", "u1", "u9"))):
        EvalResult.from_ranks(np.array([1, 4, 20]), users, protocol).save(tmp_path / name / "test")
    assert _entry(["compare", str(tmp_path / "a"), str(tmp_path / "b")]) == 2
    stderr = capsys.readouterr().err
    assert (
        "paired comparison needs the same users: 1 only in A (e.g. ['u2']), 1 only in B" in stderr
    )
