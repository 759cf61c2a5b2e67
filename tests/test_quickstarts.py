"""The README's main jobs run whole: fast on the 300-user fixture, and the real main job (SASRec-CE
beside Pop and BM25 on the shipped 10,000-user Beauty subset) as a slow test."""

from __future__ import annotations

import filecmp
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llmrec.cli.main import app

REPO_ROOT = Path(__file__).resolve().parents[1]
MINI = REPO_ROOT / "data" / "amazon-beauty-mini"


def _run(config: str, tmp_path: Path, *extra: str, data: Path | None = MINI) -> dict:
    """`llmrec run` on the config, on `data` (None: the config's own data)."""
    runner = CliRunner()
    started = time.perf_counter()
    source = [] if data is None else ["--set", f"data.source={data}"]
    result = runner.invoke(
        app,
        [
            "run",
            str(REPO_ROOT / "configs" / config),
            "-q",
            *source,
            "--set",
            f"output.dir={tmp_path}",
            *extra,
        ],
    )
    assert result.exit_code == 0, result.output
    run_dirs = [path.parent for path in tmp_path.glob("*/report.md")]
    assert len(run_dirs) == 1
    metrics = json.loads((run_dirs[0] / "metrics.json").read_text())
    return {"seconds": time.perf_counter() - started, "metrics": metrics, "dir": run_dirs[0]}


def test_sasrec_quickstart_runs_whole_in_seconds(tmp_path: Path) -> None:
    outcome = _run("quickstart.yaml", tmp_path, "--set", "train.epochs=1")
    assert outcome["seconds"] < 300  # issue 3: under 5 minutes on 2 cores
    for name in ("validation_curve.png", "comparison.png", "baselines/bm25/test/ranks.jsonl"):
        assert (outcome["dir"] / name).is_file(), name
    assert set(outcome["metrics"]["baselines"]) == {"pop", "bm25"}
    report = (outcome["dir"] / "report.md").read_text(encoding="utf-8")
    assert "| metric | sasrec [95% CI] | pop [95% CI] | bm25 [95% CI] |" in report
    # issue 22: metrics by slice in metrics.json, as a table and a plot in the report
    slices = outcome["metrics"]["test"]["slices"]
    assert {"target head", "target tail", "target cold", "history 8+"} <= set(slices)
    assert slices["target head"]["users"] + slices["target tail"]["users"] == 300
    assert "## Metrics by slice" in report
    assert (outcome["dir"] / "slices.png").is_file()


@pytest.mark.slow
def test_the_main_job_shows_sasrec_above_both_baselines(tmp_path: Path) -> None:
    """Issue 23: the main job as shipped, at most 3 minutes on the idle 2-core machine, test
    recall@10 of SASRec-CE with its interval above Pop's and BM25's."""
    outcome = _run("quickstart.yaml", tmp_path, data=None)
    assert outcome["seconds"] < 180
    test = outcome["metrics"]["test"]
    assert test["protocol"]["num_users"] == 10_000 and test["protocol"]["model"] == "sasrec"
    for name in ("pop", "bm25"):
        baseline = outcome["metrics"]["baselines"][name]["test"]
        assert test["ci"]["recall@10"]["low"] > baseline["ci"]["recall@10"]["high"], name


@pytest.mark.slow
def test_calrec_quickstart_runs_both_stages_and_reports(
    tmp_path: Path, llm_cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 23: on the main job's data, at most 10 minutes on the idle 2-core machine."""
    monkeypatch.setenv("LLMREC_CACHE", str(llm_cache_dir))  # the converted SmolLM2 stays in tmp
    outcome = _run("calrec_quickstart.yaml", tmp_path, data=None)
    assert outcome["seconds"] < 10 * 60
    for stage in ("stage_one", "stage_two"):
        assert (outcome["dir"] / stage / "checkpoints" / "last").is_dir()
    test = outcome["metrics"]["test"]
    assert "diagnostics" in test["protocol"] and test["protocol"]["num_users"] == 300
    assert set(outcome["metrics"]["baselines"]) == {"pop", "bm25"}


@pytest.mark.slow
def test_cllm4rec_quickstart_runs_every_stage_and_reports(
    tmp_path: Path, llm_cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 23: on a 300-user sample of the main job's data, at most 10 minutes on the idle
    2-core machine."""
    monkeypatch.setenv("LLMREC_CACHE", str(llm_cache_dir))
    outcome = _run("cllm4rec_quickstart.yaml", tmp_path, data=None)
    assert outcome["seconds"] < 10 * 60
    for stage in ("pretrain", "finetune"):
        assert (outcome["dir"] / stage / "checkpoints" / "last").is_dir()
    assert (outcome["dir"] / "model" / "id_tables.safetensors").is_file()
    assert outcome["metrics"]["test"]["protocol"]["num_users"] == 300
    report = (outcome["dir"] / "report.md").read_text(encoding="utf-8")
    assert "(300 sampled users)" in report
    assert set(outcome["metrics"]["baselines"]) == {"pop", "bm25"}


@pytest.mark.parametrize(
    ("folder", "arguments"),
    [
        ("amazon-beauty-mini", ["--users", "300"]),
        (
            "amazon-beauty-10k",
            ["--users", "10000", "--fields", "item_id", "title", "categories", "brand"],
        ),
    ],
)
def test_the_shipped_data_sets_are_the_scripts_seeded_subsets(
    folder: str, arguments: list[str], tmp_path: Path, shared_data_dir: Path
) -> None:
    """scripts/make_subset.py, run as each data set's README says, rewrites it byte for byte."""
    script = REPO_ROOT / "scripts" / "make_subset.py"
    made = subprocess.run(
        [
            sys.executable,
            str(script),
            str(shared_data_dir / "amazon-beauty"),
            str(tmp_path),
            *arguments,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    readme = (REPO_ROOT / "data" / folder / "README.md").read_text(encoding="utf-8")
    for name in ("user_sequence.txt", "items.jsonl"):
        assert filecmp.cmp(tmp_path / name, REPO_ROOT / "data" / folder / name, shallow=False)
        digest = made.stdout.split(f"{name} sha256 ")[1].split()[0]
        assert f"`{name}` {digest}" in " ".join(readme.split())  # the README's sha256
