"""Small helpers for the training tests: read what a run's loop logged."""

from __future__ import annotations

import json
import statistics
from pathlib import Path


def epoch_mean_losses(run_dir: Path) -> list[float]:
    """The mean logged loss of each epoch in `run_dir/train_log.jsonl` (log every step), in
    epoch order. One batch's loss swings with its users; an epoch's mean is over the same users
    every epoch, so these compare."""
    records = [json.loads(line) for line in (run_dir / "train_log.jsonl").read_text().splitlines()]
    epochs = sorted({record["epoch"] for record in records})
    return [statistics.mean(r["loss"] for r in records if r["epoch"] == e) for e in epochs]


def assert_streams_from_any_position(source, epoch: int) -> None:
    """A `BatchSource` makes `num_batches(epoch)` batches, and the stream started at any
    position is the rest of the whole stream, tensor for tensor (what resume relies on)."""
    import torch

    whole = list(source.batches(epoch))
    assert len(whole) == source.num_batches(epoch) > 0
    for start in (0, 1, len(whole) // 2, len(whole) - 1, len(whole)):
        rest = list(source.batches(epoch, start))
        assert len(rest) == len(whole) - start
        for made, expected in zip(rest, whole[start:], strict=True):
            assert made.keys() == expected.keys()
            for key, value in made.items():
                if isinstance(value, torch.Tensor):
                    assert torch.equal(value, expected[key]), key
                else:
                    assert value == expected[key], key
