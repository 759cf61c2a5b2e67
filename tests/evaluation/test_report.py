"""Tests of evaluation/report.py: the files a run report writes, and the validation curve."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from llmrec.evaluation.config import EvalConfig
from llmrec.evaluation.report import (
    RunSummary,
    plot_comparison,
    plot_validation_curve,
    write_report,
)
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


SUMMARY = RunSummary(
    model="sasrec",
    data_name="amazon-beauty-mini",
    data="`data/amazon-beauty-mini`: 300 users, 2,090 items",
    split="leave_one_out",
    train_seconds=12.5,
    best_epoch=2,
    best_step=200,
    epochs_run=3,
    metric="ndcg@10",
    best_metric=0.05,
    baseline_seconds={"pop": 0.1},
)


def test_report_names_model_data_split_training_time_and_best_epoch(tmp_path: Path) -> None:
    files = write_report(tmp_path, {"test": make_result("test", [2, 30])}, CURVE, SUMMARY)
    report = files.report.read_text(encoding="utf-8")
    assert report.startswith("# Report: sasrec on amazon-beauty-mini\n")
    for shown in (
        "- Model: `sasrec`",
        "- Data: amazon-beauty-mini (`data/amazon-beauty-mini`: 300 users, 2,090 items).",
        "- Split: `leave_one_out`.",
        "- Training: 12.5 s; best epoch 2 (step 200; validation ndcg@10 0.0500), 3 epochs run.",
        "The dashed line marks the chosen checkpoint.",
    ):
        assert shown in report


def test_validation_curve_has_a_title_marks_the_checkpoint_and_keeps_the_legend_aside(
    tmp_path: Path,
) -> None:
    figure = plot_validation_curve(CURVE, tmp_path / "curve.png", 200, "T", best_epoch=2)
    [axes] = figure.axes
    assert axes.get_title() == "T"
    [marker] = [line for line in axes.get_lines() if line.get_linestyle() == "--"]
    assert list(marker.get_xdata()) == [200, 200]
    assert marker.get_label() == "chosen checkpoint: epoch 2, step 200"
    renderer = figure.canvas.get_renderer()
    [legend] = figure.legends
    legend_box = legend.get_window_extent(renderer)
    assert not legend_box.overlaps(axes.get_window_extent(renderer))  # beside the curves
    assert [text.get_text() for text in legend.get_texts()][-1] == marker.get_label()


def test_baselines_share_the_tables_metrics_json_and_a_comparison_plot(tmp_path: Path) -> None:
    results = {"valid": make_result("valid", [1, 4, 12]), "test": make_result("test", [2, 30])}
    pop = {"valid": make_result("valid", [9, 40, 12]), "test": make_result("test", [20, 31])}
    files = write_report(tmp_path, results, CURVE, SUMMARY, baselines={"pop": pop})
    record = json.loads(files.metrics.read_text(encoding="utf-8"))
    assert list(record) == ["valid", "test", "baselines"]
    assert record["baselines"]["pop"]["test"]["metrics"]["recall@10"] == 0.0
    assert files.baseline_directories["pop"] == tmp_path / "baselines" / "pop"
    assert EvalResult.load(tmp_path / "baselines" / "pop" / "test").metrics == pop["test"].metrics
    report = files.report.read_text(encoding="utf-8")
    assert "| metric | fake [95% CI] | pop [95% CI] |" in report  # the protocol names the model
    assert "| recall@10 | 0.5000 [0.0000, 1.0000] | 0.0000 [0.0000, 0.0000] |" in report
    assert report.count("Protocol: ") == 2  # one line per split: the models share the protocol
    assert (
        "- Baselines, fit on the same split and ranked for the same users: `pop` (0.1 s)." in report
    )
    assert "![test metrics per model](comparison.png)" in report
    assert files.comparison.read_bytes().startswith(b"\x89PNG")


def test_comparison_plot_draws_each_models_recall_with_its_interval(tmp_path: Path) -> None:
    by_model = {"a": make_result("test", [1, 1, 30]), "b": make_result("test", [20, 30, 40])}
    figure = plot_comparison(by_model, tmp_path / "comparison.png", title="T")
    [axes] = figure.axes
    assert [tick.get_text() for tick in axes.get_xticklabels()] == ["recall@1", "recall@10"]
    heights = [bar.get_height() for bar in axes.patches]  # model a's bars, then b's
    assert heights == pytest.approx([2 / 3, 2 / 3, 0.0, 0.0])
    assert len(axes.collections) == 2  # an error bar set per model
    assert axes.get_title() == "T (error bars: 95% CI)"
    assert [text.get_text() for text in figure.legends[0].get_texts()] == ["a", "b"]


def test_a_baseline_of_the_models_own_kind_gets_its_own_column(tmp_path: Path) -> None:
    results = {"test": make_result("test", [2, 30])}  # the protocol's model is "fake"
    files = write_report(tmp_path, results, baselines={"fake": {"test": make_result("test", [1])}})
    assert "| metric | fake [95% CI] | fake (baseline) [95% CI] |" in files.report.read_text()
