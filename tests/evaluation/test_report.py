"""Tests of evaluation/report.py: the files a run report writes, and the validation curve."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from llmrec.evaluation.config import EvalConfig
from llmrec.evaluation.report import plot_validation_curve, write_report
from llmrec.evaluation.result import EvalResult, build_protocol

CURVE = [
    {"step": 100, "ndcg@10": 0.02, "recall@10": 0.04, "loss": 7.1},
    {"step": 200, "ndcg@10": 0.05, "recall@10": 0.08, "loss": 6.3},
    {"step": 300, "ndcg@10": 0.06, "recall@10": 0.10, "loss": 6.0},
]


def make_result(split: str, ranks: list[int]) -> EvalResult:
    config = EvalConfig(ks=(1, 10), bootstrap_resamples=100)
    protocol = build_protocol(config, 50, len(ranks), split, "fake", "score", None)
    user_ids = tuple(f"user{row}" for row in range(len(ranks)))
    return EvalResult.from_ranks(np.array(ranks), user_ids, protocol)


def test_report_writes_metrics_tables_ranks_and_curve(tmp_path: Path) -> None:
    results = {"valid": make_result("valid", [1, 4, 12]), "test": make_result("test", [2, 30])}
    files = write_report(tmp_path, results, CURVE)
    record = json.loads(files.metrics.read_text(encoding="utf-8"))
    assert list(record) == ["valid", "test"]
    assert record["test"]["metrics"]["recall@1"] == 0.0
    assert record["valid"]["protocol"]["split"] == "valid"
    report = files.report.read_text(encoding="utf-8")
    assert "## valid" in report and "## test" in report
    assert report.count("history filter off") == 2
    assert "![validation curve](validation_curve.png)" in report
    assert files.curve == tmp_path / "validation_curve.png"
    assert files.curve.read_bytes().startswith(b"\x89PNG")
    assert files.curve.stat().st_size > 1000
    ranks_lines = (files.split_directories["test"] / "ranks.jsonl").read_text().splitlines()
    assert [json.loads(line)["rank"] for line in ranks_lines] == [2, 30]


def test_report_without_curve_draws_nothing(tmp_path: Path) -> None:
    files = write_report(tmp_path, {"test": make_result("test", [1])})
    assert files.curve is None
    assert not (tmp_path / "validation_curve.png").exists()
    assert "Validation curve" not in files.report.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("curve", "message"),
    [([{"ndcg@10": 0.1}], "needs a 'step'"), ([{"step": 1, "loss": 2.0}], "no metric")],
)
def test_malformed_curves_are_errors(
    tmp_path: Path, curve: list[dict[str, float]], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        plot_validation_curve(curve, tmp_path / "curve.png")
