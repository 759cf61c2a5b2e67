"""`llmrec recommend` and `llmrec serve` through typer's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from llmrec.cli.main import app
from tests.serving.helpers import save_tiny_model

runner = CliRunner()


@pytest.fixture()
def pop_dir(toy_dataset, tmp_path: Path, llm_cache_dir: Path) -> Path:
    return save_tiny_model("pop", toy_dataset, tmp_path, llm_cache_dir)


def test_recommend_prints_a_table_and_the_title_mapping(pop_dir: Path) -> None:
    result = runner.invoke(
        app, ["recommend", str(pop_dir), "-H", "i1", "-H", "prodct 4 blue", "-k", "3"]
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    # "4" counts as a word, so the typo maps to product 4, not to another blue product
    assert lines[0] == "history 'prodct 4 blue' -> i4 'product 4 blue' (bm25, score 1.14)"
    assert lines[1].split() == ["rank", "item_id", "score", "title"]
    assert len(lines) == 5 and lines[2].split()[0] == "1"
    assert all(" i1 " not in line and " i4 " not in line for line in lines[2:])


def test_recommend_json_keeps_history_when_asked(pop_dir: Path) -> None:
    args = ["recommend", str(pop_dir), "--history", "i7", "-k", "12", "--json"]
    excluded = json.loads(runner.invoke(app, args).output)
    kept = json.loads(runner.invoke(app, [*args, "--keep-history"]).output)
    assert len(excluded["items"]) == 11 and len(kept["items"]) == 12
    assert "i7" in {item["item_id"] for item in kept["items"]}
    assert excluded["history"] == [
        {
            "entry": "i7",
            "item_id": "i7",
            "title": "product 7 red",
            "matched_by": "id",
            "score": None,
        }
    ]
    assert set(excluded["items"][0]) == {"item_id", "score", "title"}


def test_recommend_names_entries_that_match_nothing(pop_dir: Path) -> None:
    result = runner.invoke(app, ["recommend", str(pop_dir), "-H", "zzz"])
    assert result.exit_code != 0
    assert "no catalogue item matches 'zzz'" in str(result.exception)


def test_recommend_takes_a_device_and_refuses_a_gpu_torch_does_not_see(pop_dir: Path) -> None:
    on_cpu = runner.invoke(app, ["recommend", str(pop_dir), "-H", "i1", "--device", "cpu"])
    assert on_cpu.exit_code == 0, on_cpu.output
    if not torch.cuda.is_available():
        missing = runner.invoke(app, ["recommend", str(pop_dir), "-H", "i1", "--device", "cuda:3"])
        assert missing.exit_code != 0
        assert "torch sees no CUDA GPU" in str(missing.exception)


def test_serve_help_lists_its_options() -> None:
    result = runner.invoke(app, ["serve", "--help"])
    assert result.exit_code == 0
    for option in ("--host", "--port", "--max-batch", "--batch-wait-ms", "--max-body-bytes"):
        assert option in result.output


@pytest.mark.parametrize(
    ("option", "value"), [("--max-batch", "5000"), ("--batch-wait-ms", "2000"), ("--port", "0")]
)
def test_serve_refuses_out_of_range_options_by_name(pop_dir: Path, option, value) -> None:
    result = runner.invoke(app, ["serve", str(pop_dir), option, value])
    assert result.exit_code == 2  # a usage error, before any model is loaded
    assert option in result.output
