"""Paired tests on the benchmark pages (benchmarks/paired.py): who the reference is, what each row
gets, attaching a rerun's ranks, and what the page shows."""

import importlib
import sys
from pathlib import Path
from shutil import rmtree
from types import ModuleType

import numpy as np
import pytest
import typer

from llmrec.errors import DataError
from llmrec.evaluation.config import EvalConfig
from llmrec.evaluation.result import EvalResult, SliceResult, build_protocol, compare_results

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
USERS = tuple(f"u{index}" for index in range(300))


@pytest.fixture(scope="module")
def scripts() -> dict[str, ModuleType]:
    sys.path.insert(0, str(BENCHMARKS))  # the scripts import their siblings by name
    try:
        return {name: importlib.import_module(name) for name in ("paired", "cllm4rec")}
    finally:
        sys.path.remove(str(BENCHMARKS))


def make_result(model: str, ranks: np.ndarray, **slices: SliceResult) -> EvalResult:
    protocol = build_protocol(
        EvalConfig(ks=(1, 5, 10, 20), bootstrap_resamples=100),
        num_items=500,
        num_users=len(ranks),
        split="test",
        model_name=model,
        ranked_by="score",
        rank_cutoff=None,
    )
    protocol["eval_set_sha256"] = "same users"
    return EvalResult.from_ranks(ranks, USERS, protocol, slices)


def make_row(name: str, result: EvalResult, folder: Path | None = None) -> dict:
    row = {"name": name, "metrics": result.metrics, "ci": {}, "protocol": dict(result.protocol)}
    if folder is not None:
        result.save(folder)
        row["ranks_dir"] = str(folder)
    return row


def results(seed: int = 0) -> dict[str, EvalResult]:
    rng = np.random.default_rng(seed)
    return {
        "llm": make_result("cllm4rec", rng.integers(1, 40, size=300)),
        "pop": make_result("pop", rng.integers(5, 200, size=300)),
        "sasrec": make_result("sasrec", rng.integers(1, 25, size=300)),
    }


def test_each_row_is_tested_against_the_strongest_baseline(scripts, tmp_path: Path) -> None:
    paired, measured = scripts["paired"], results()
    rows = [make_row(name, result, tmp_path / name) for name, result in measured.items()]
    rows.append(make_row("calrec", make_result("calrec", np.full(300, 2))))  # no ranks kept
    paired.pair_rows(rows, lambda row: row["name"])
    llm, pop, sasrec, calrec = rows
    # calrec ranks best of all, but it is no baseline; sasrec beats pop at recall@10
    assert sasrec["paired"] == {"reference": "sasrec", "metric": "recall@10", "is_reference": True}
    expected = compare_results(measured["llm"], measured["sasrec"], "recall@10", 10_000)
    assert llm["paired"]["p_value"] == expected.p_value
    assert llm["paired"]["mean_difference"] == expected.mean_difference < 0
    assert pop["paired"]["reference"] == "sasrec" and pop["paired"]["p_value"] < 0.001
    assert calrec["paired"] is None
    assert paired.paired_cells(calrec, rows) == ["-"]
    assert paired.paired_cells(sasrec, rows) == ["reference"]
    assert paired.paired_cells(pop, rows) == [f"{pop['paired']['mean_difference']:+.4f}, p 0.0001"]
    paired.pair_rows(rows[:1], lambda row: row["name"])  # one row: nothing to compare
    assert paired.paired_header(rows[:1]) == paired.paired_cells(rows[0], rows[:1]) == []


def test_a_test_outlives_its_ranks_only_while_the_reference_stays(scripts, tmp_path) -> None:
    paired, measured = scripts["paired"], results()
    rows = [make_row(name, result, tmp_path / name) for name, result in measured.items()]
    paired.pair_rows(rows, lambda row: row["name"])
    before = rows[0]["paired"]
    (tmp_path / "llm" / "ranks.jsonl").unlink()  # the run folder was cleaned up
    paired.pair_rows(rows, lambda row: row["name"])
    assert rows[0]["paired"] == before
    rows[1]["metrics"] = {**rows[1]["metrics"], "recall@10": 1.0}  # now pop is the strongest
    paired.pair_rows(rows, lambda row: row["name"])
    assert rows[0]["paired"] is None and rows[2]["paired"]["reference"] == "pop"


def test_a_rerun_gives_its_ranks_and_slices_only_when_it_reproduces_the_row(
    scripts, tmp_path: Path
) -> None:
    paired = scripts["paired"]
    ranks = np.random.default_rng(4).integers(1, 30, size=300)
    row = make_row("pop", make_result("pop", ranks))
    head = SliceResult(120, {"recall@10": 0.5})
    make_result("pop", ranks, **{"target head": head}).save(tmp_path / "same")
    make_result("pop", ranks + 1).save(tmp_path / "other")
    with pytest.raises(DataError, match="does not reproduce the row: recall@1 "):
        paired.attach(row, tmp_path / "other")
    assert "ranks_dir" not in row
    paired.attach(row, tmp_path / "same")
    assert row["ranks_dir"] == str(tmp_path / "same")
    assert row["slices"] == {"target head": {"users": 120, "metrics": head.metrics, "ci": {}}}


def test_published_ranks_leave_the_run_folder_for_the_store_and_pair_from_there(
    scripts, tmp_path: Path
) -> None:
    """A fresh clone has no run folders: a page pairs again only from ranks kept in the store."""
    paired = scripts["paired"]
    runs, store = tmp_path / "tmp", tmp_path / "ranks"
    measured = results(seed=5)
    rows = [make_row(name, result, runs / "page" / name) for name, result in measured.items()]
    elsewhere = make_row("other", measured["pop"], tmp_path / "elsewhere")
    gone = {**make_row("gone", measured["pop"]), "ranks_dir": str(runs / "gone")}
    record = {"rows": [*rows, elsewhere, gone]}
    paired.store_ranks(record, runs_root=runs, store=store)
    assert [row["ranks_dir"] for row in record["rows"]] == [
        *(str(store / "page" / name) for name in measured),
        str(tmp_path / "elsewhere"),  # not a run folder: left where it is
        str(runs / "gone"),  # nothing to keep
    ]
    for name, result in measured.items():
        kept = EvalResult.load(store / "page" / name)
        assert kept.metrics == result.metrics
        np.testing.assert_array_equal(kept.ranks, result.ranks)
    rmtree(runs)  # the clone is fresh: only the store is left
    paired.pair_rows(rows, lambda row: row["name"])
    expected = compare_results(measured["llm"], measured["sasrec"], "recall@10", 10_000)
    assert rows[0]["paired"]["p_value"] == pytest.approx(expected.p_value)


def test_the_page_shows_the_tests_and_names_the_rows_without_ranks(scripts, tmp_path) -> None:
    paired, cllm4rec = scripts["paired"], scripts["cllm4rec"]
    measured = results()
    rows = [make_row(name, result, tmp_path / name) for name, result in measured.items()]
    rows.append(make_row("calrec", make_result("calrec", np.full(300, 2))))
    for row in rows:
        row.update(p50_s=0.1, p95_s=0.2, train={}, stage_seconds={}, tokens_per_s={})
        row["best_epoch"] = None
    record = {
        "command": "python benchmarks/cllm4rec.py --name page",
        "machine": {"cpu": "cpu", "cores": 2},
        "protocol": "a",
        "split": "test",
        "rows": rows,
    }
    paired.pair_page(record)
    cllm4rec.write_markdown(record, tmp_path / "page.md")
    page = (tmp_path / "page.md").read_text(encoding="utf-8")
    assert "| Δ recall@10 vs strongest baseline, p | latency p50 / p95 (s) |" in page
    assert f"| {paired.paired_cells(rows[0], rows)[0]} | 0.1000 / 0.2000 |" in page
    assert "| reference |" in page
    assert (
        "Per-user ranks not kept (measured before the benchmarks kept them) for calrec: "
        "their p-values, and their slices where the slice table lacks them, need a rerun:\n\n"
        "- calrec: `python benchmarks/cllm4rec.py --name page`"
    ) in page
    assert (
        "## recall@10 by slice\n\nNo slices for llm, pop, sasrec, calrec: measured before" in page
    )


def test_the_note_names_only_the_reference_rows_without_ranks(scripts, tmp_path) -> None:
    """The baselines page has one reference per data set: one without ranks blocks only its own."""
    paired = scripts["paired"]
    measured = results(seed=6)
    kept = make_row("beauty / sasrec", measured["sasrec"], tmp_path / "beauty")
    lost = make_row("toys / sasrec", measured["sasrec"])
    for row in (kept, lost):
        row["paired"] = {"reference": row["name"], "metric": "recall@10", "is_reference": True}
    lines = paired.paired_note([kept, lost], lambda row: row["name"], lambda row: "RERUN", "p.json")
    note = "\n".join(lines)
    assert "for toys / sasrec: their p-values" in note
    assert "(toys / sasrec among them, so no row tested against it has a p-value" in note
    assert "beauty / sasrec among" not in note
    assert "- toys / sasrec: `RERUN`" in note


def test_rows_are_tested_against_any_row_asked_for(scripts, tmp_path: Path) -> None:
    paired, measured = scripts["paired"], results()
    rows = {name: make_row(name, result, tmp_path / name) for name, result in measured.items()}
    rows["calrec"] = make_row("calrec", make_result("calrec", np.full(300, 2)))  # no ranks kept
    lines = paired.tests_against(rows, "pop", ["recall@10"])
    expected = compare_results(measured["llm"], measured["pop"], "recall@10", 10_000)
    assert len(lines) == 2 and lines[1].startswith("sasrec vs pop, recall@10: +")
    assert lines[0] == (
        f"llm vs pop, recall@10: {expected.mean_difference:+.4f} [{expected.ci_low:+.4f}, "
        f"{expected.ci_high:+.4f}], p {expected.p_value:.4f}"
    )
    with pytest.raises(typer.BadParameter, match="no row 'calrec' with kept ranks"):
        paired.tests_against(rows, "calrec", ["recall@10"])
