"""The commands shown in the README, run in-process through typer's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llmrec.cli.main import app

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURE = str(REPO_ROOT / "data" / "amazon-beauty-mini")
runner = CliRunner()


def test_data_stats_prints_the_fixture_numbers() -> None:
    result = runner.invoke(app, ["data", "stats", FIXTURE])
    assert result.exit_code == 0, result.output
    assert (
        "2,090" in result.output and "2,695" in result.output and "8.98 / 6 / 150" in result.output
    )


def test_data_stats_of_a_named_set_uses_data_dir(shared_data_dir: Path) -> None:
    result = runner.invoke(app, ["data", "stats", "beauty", "--data-dir", str(shared_data_dir)])
    assert result.exit_code == 0, result.output
    assert "22,363" in result.output and "198,502" in result.output


@pytest.fixture()
def quick_config(tmp_path: Path) -> Path:
    quickstart = (REPO_ROOT / "configs" / "quickstart.yaml").read_text(encoding="utf-8")
    path = tmp_path / "quick.yaml"
    path.write_text(quickstart.replace("data/amazon-beauty-10k", FIXTURE), encoding="utf-8")
    return path


def test_run_writes_the_report_folder(quick_config: Path, tmp_path: Path) -> None:
    args = [
        "run",
        str(quick_config),
        "-q",
        "--set",
        f"output.dir={tmp_path / 'runs'}",
        "--set",
        "train.epochs=1",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    run_dir = tmp_path / "runs" / "quickstart"
    for name in (
        "report.md",
        "metrics.json",
        "config.resolved.yaml",
        "versions.json",
        "validation_curve.png",
        "model/model.safetensors",
        "model/README.md",
        "test/ranks.jsonl",
    ):
        assert (run_dir / name).is_file(), name
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["test"]["protocol"]["filter_history"] is False
    assert "history filter off" in result.output

    evaluated = runner.invoke(app, ["evaluate", str(run_dir / "model"), FIXTURE, "--json", "-q"])
    assert evaluated.exit_code == 0, evaluated.output
    assert json.loads(evaluated.output)["metrics"] == metrics["test"]["metrics"]


def test_same_seed_gives_identical_numbers(quick_config: Path, tmp_path: Path) -> None:
    outputs = []
    for name in ("a", "b"):
        args = [
            "run",
            str(quick_config),
            "-q",
            "--set",
            f"output.dir={tmp_path}",
            "--set",
            f"output.name={name}",
            "--set",
            "train.epochs=1",
        ]
        assert runner.invoke(app, args).exit_code == 0
        outputs.append(json.loads((tmp_path / name / "metrics.json").read_text()))
    assert outputs[0] == outputs[1]

    compared = runner.invoke(app, ["compare", str(tmp_path / "a"), str(tmp_path / "b")])
    assert compared.exit_code == 0, compared.output
    assert "A - B = +0.0000" in compared.output


def test_train_then_unknown_key_is_a_clear_error(quick_config: Path) -> None:
    result = runner.invoke(app, ["train", str(quick_config), "--set", "train.nope=1"])
    assert result.exit_code != 0
    assert "train.nope" in str(result.exception)


def test_console_entry_turns_library_errors_into_one_line_and_exit_code_2() -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "llmrec", "data", "stats", "no-such-data-set"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error: no-such-data-set")
    assert "Traceback" not in result.stderr


def test_evaluate_refuses_a_model_fit_on_another_catalogue(tmp_path: Path, toy_dataset) -> None:
    from llmrec.models.pop import PopConfig, Popularity

    model = Popularity(PopConfig(), toy_dataset.catalogue)
    model.fit(toy_dataset.train)
    model.save(tmp_path / "pop")
    result = runner.invoke(app, ["evaluate", str(tmp_path / "pop"), FIXTURE, "-q"])
    assert result.exit_code != 0
    assert "another catalogue" in str(result.exception)


def test_run_under_the_holdout_split_and_compare_with_multvae(
    quick_config: Path, tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    common = ["-q", "--set", f"output.dir={runs}", "--set", "train.epochs=1"]
    holdout = ["--set", "data.split=holdout", "--set", "train.refit_before_test=false"]
    sasrec = runner.invoke(app, ["run", str(quick_config), *holdout, *common])
    assert sasrec.exit_code == 0, sasrec.output
    assert "per-user random hold-out, truncated recall/NDCG, history excluded" in sasrec.output
    multvae_text = (REPO_ROOT / "configs" / "multvae_quickstart.yaml").read_text(encoding="utf-8")
    multvae_config = tmp_path / "multvae.yaml"
    multvae_config.write_text(multvae_text.replace("data/amazon-beauty-mini", FIXTURE), "utf-8")
    multvae = runner.invoke(app, ["run", str(multvae_config), *common])
    assert multvae.exit_code == 0, multvae.output
    metrics = json.loads((runs / "multvae-quickstart" / "metrics.json").read_text())
    assert {"recall@20", "recall@40", "ndcg@100"} <= set(metrics["test"]["metrics"])
    compared = runner.invoke(
        app,
        [
            "compare",
            str(runs / "multvae-quickstart"),
            str(runs / "quickstart"),
            "--metric",
            "recall@20",
        ],
    )
    assert compared.exit_code == 0, compared.output
    assert "recall@20 (test)" in compared.output and "paired sign-flip p" in compared.output
