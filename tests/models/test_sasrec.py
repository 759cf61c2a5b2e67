from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from llmrec.evaluation.ranking import evaluate_model
from llmrec.evaluation.validation import validation_metrics
from llmrec.models.base import RunContext
from llmrec.models.sasrec import SASRec, SASRecConfig, SequenceBatches, _windows
from llmrec.training.config import TrainConfig
from tests.training.helpers import assert_streams_from_any_position

TINY = SASRecConfig(hidden_size=32, num_layers=1, num_heads=1, dropout=0.1, max_length=8)


def test_long_sequences_are_cut_into_windows_that_use_every_target_once() -> None:
    """Windows are (sequence, start, end) from the end of each sequence; one item too few to
    predict anything makes none."""
    sequence_index, starts, ends = _windows([np.arange(10), np.arange(1), np.arange(3)], 4)
    windows = list(zip(sequence_index.tolist(), starts.tolist(), ends.tolist(), strict=True))
    assert windows == [(0, 6, 10), (0, 3, 7), (0, 0, 4), (2, 0, 3)]
    targets = [t for _, start, end in windows[:3] for t in range(start + 1, end)]
    assert sorted(targets) == list(range(1, 10))


def test_batches_stream_from_any_position() -> None:
    rng = np.random.default_rng(0)
    sequences = [rng.integers(0, 9, size=int(rng.integers(0, 20))) for _ in range(40)]
    batches = SequenceBatches(sequences, TINY, num_items=9, batch_size=4, seed=0)
    assert_streams_from_any_position(batches, epoch=1)


def test_batches_pad_right_and_mark_padding_as_ignored() -> None:
    batches = SequenceBatches(
        [np.array([1, 2, 3]), np.array([4, 5])], TINY, num_items=9, batch_size=2, seed=0
    ).batches(0)
    batch = next(batches)
    assert batch["inputs"].tolist() == [[1, 2], [4, 9]]
    assert batch["targets"].tolist() == [[2, 3], [5, -100]]
    assert batch["lengths"].tolist() == [2, 1]


def test_padding_does_not_change_scores(toy_dataset) -> None:
    model = SASRec(TINY, toy_dataset.catalogue)
    model.network.eval()
    alone = model.score([np.array([1, 2])])
    with_longer = model.score([np.array([1, 2]), np.array([3, 4, 5, 6, 7])])
    torch.testing.assert_close(alone[0], with_longer[0], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("loss", ["full", "sampled"])
def test_sasrec_learns_a_deterministic_successor_pattern(
    toy_dataset, tmp_path: Path, loss: str
) -> None:
    """Full softmax, and sampled softmax with 4 negatives of the 12 items per batch."""
    model = SASRec(
        TINY.model_copy(update={"loss": loss, "num_negatives": 4}), toy_dataset.catalogue
    )
    run = RunContext(
        tmp_path,
        TrainConfig(epochs=40, batch_size=8, lr=5e-3, patience=40),
        seed=0,
        show_progress=False,
        validation_metrics=validation_metrics,
    )
    fit = model.fit(toy_dataset.train, toy_dataset.valid, run)
    result = evaluate_model(model, toy_dataset.test, show_progress=False)
    assert fit.best_metric is not None
    assert result.metrics["recall@1"] > 0.8  # random would be 1/12


def test_an_absurd_learning_rate_stops_training_with_the_step_not_nan_scores(
    toy_dataset, tmp_path: Path
) -> None:
    """The loss diverges: fit ends with TrainingDivergedError naming the step and the lr, before
    validation would rank with NaN scores."""
    from llmrec.errors import TrainingDivergedError

    model = SASRec(TINY, toy_dataset.catalogue)
    run = RunContext(
        tmp_path,
        TrainConfig(epochs=3, batch_size=8, lr=1e30, grad_clip=None),
        seed=0,
        show_progress=False,
        validation_metrics=validation_metrics,
    )
    with pytest.raises(
        TrainingDivergedError, match=r"at optimizer step \d+ \(learning rate 1e\+30\)"
    ):
        model.fit(toy_dataset.train, toy_dataset.valid, run)
