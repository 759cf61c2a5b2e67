"""Saved tiny models of every kind (the contract suite's configs), fit on the toy data set."""

from __future__ import annotations

from pathlib import Path

from llmrec.data.sequences import Dataset
from llmrec.models.base import RunContext
from llmrec.models.registry import MODELS, build_model
from llmrec.training.config import TrainConfig
from tests.contract.test_models import TINY_CONFIGS


def save_tiny_model(name: str, dataset: Dataset, folder: Path, cache_dir: Path) -> Path:
    """Fit the contract suite's tiny `name` model for one epoch and save it in `folder`."""
    raw = dict(TINY_CONFIGS[name])
    if "backbone" in raw:
        raw["backbone"] = {**raw["backbone"], "cache_dir": str(cache_dir)}
    model = build_model(MODELS[name].Config.model_validate(raw), dataset.catalogue)
    run = RunContext(folder / "run", TrainConfig(epochs=1, batch_size=8), show_progress=False)
    model.fit(dataset.train, None, run)
    model.save(folder / "model")
    return folder / "model"
