"""The README's main jobs run whole on the embedded fixture (slow: the CALRec one takes minutes)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llmrec.cli.main import app

REPO_ROOT = Path(__file__).resolve().parents[1]


def _run(config: str, tmp_path: Path, *extra: str) -> dict:
    runner = CliRunner()
    started = time.perf_counter()
    result = runner.invoke(
        app,
        [
            "run",
            str(REPO_ROOT / "configs" / config),
            "-q",
            "--set",
            f"data.source={REPO_ROOT / 'data' / 'amazon-beauty-mini'}",
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
    outcome = _run("quickstart.yaml", tmp_path)
    assert outcome["seconds"] < 300  # issue 3: under 5 minutes on 2 cores
    assert (outcome["dir"] / "validation_curve.png").is_file()
    # issue 22: metrics by slice in metrics.json, as a table and a plot in the report
    slices = outcome["metrics"]["test"]["slices"]
    assert {"target head", "target tail", "target cold", "history 8+"} <= set(slices)
    assert slices["target head"]["users"] + slices["target tail"]["users"] == 300
    assert "## Metrics by slice" in (outcome["dir"] / "report.md").read_text()
    assert (outcome["dir"] / "slices.png").is_file()


@pytest.mark.slow
def test_calrec_quickstart_runs_both_stages_and_reports(
    tmp_path: Path, llm_cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLMREC_CACHE", str(llm_cache_dir))  # the converted SmolLM2 stays in tmp
    outcome = _run("calrec_quickstart.yaml", tmp_path)
    assert outcome["seconds"] < 15 * 60  # issue 4: under 15 minutes on 2 cores
    for stage in ("stage_one", "stage_two"):
        assert (outcome["dir"] / stage / "checkpoints" / "last").is_dir()
    assert "diagnostics" in outcome["metrics"]["test"]["protocol"]


@pytest.mark.slow
def test_cllm4rec_quickstart_runs_every_stage_and_reports(
    tmp_path: Path, llm_cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLMREC_CACHE", str(llm_cache_dir))
    outcome = _run("cllm4rec_quickstart.yaml", tmp_path)
    assert outcome["seconds"] < 15 * 60  # issue 5: under 15 minutes on 2 cores
    for stage in ("warmup", "pretrain", "finetune"):
        assert (outcome["dir"] / stage / "checkpoints" / "last").is_dir()
    assert (outcome["dir"] / "model" / "id_tables.safetensors").is_file()
    assert outcome["metrics"]["test"]["protocol"]["num_items"] == 2090
