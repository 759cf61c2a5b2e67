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
