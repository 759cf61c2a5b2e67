"""run_experiment: the refit-before-test protocol trains on train + valid items, never test."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from llmrec.config import load_config
from llmrec.experiment import before_test_sequences, run_experiment

FIXTURE = Path(__file__).resolve().parents[1] / "data" / "amazon-beauty-mini"


def test_before_test_sequences_are_train_plus_valid_target(toy_dataset) -> None:
    sequences = before_test_sequences(toy_dataset)
    for sequence, train, valid_target, test_history in zip(
        sequences,
        toy_dataset.train,
        toy_dataset.valid.targets,
        toy_dataset.test.histories,
        strict=True,
    ):
        np.testing.assert_array_equal(sequence, np.append(train, valid_target))
        np.testing.assert_array_equal(sequence, test_history)


def test_refit_before_test_is_recorded_and_replaces_the_model(tmp_path: Path) -> None:
    config = load_config(
        None,
        [
            f"data.source={FIXTURE}",
            f"output.dir={tmp_path}",
            "output.name=refit",
            "model.hidden_size=16",
            "model.num_layers=1",
            "model.num_heads=1",
            "train.epochs=3",
            "train.refit_before_test=true",
            "eval.bootstrap_resamples=0",
        ],
    )
    result = run_experiment(config, show_progress=False)
    assert "refit on train + valid items for" in result.results["test"].protocol["split"]
    assert "refit" not in result.results["valid"].protocol["split"]
    assert (tmp_path / "refit" / "refit" / "checkpoints" / "last").is_dir()
    assert "refit on train + valid" in (tmp_path / "refit" / "report.md").read_text()
