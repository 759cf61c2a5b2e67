"""A saved tiny popularity model for the server and CLI tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmrec.data.sequences import Dataset
from tests.serving.helpers import save_tiny_model


@pytest.fixture()
def pop_dir(toy_dataset: Dataset, tmp_path: Path, llm_cache_dir: Path) -> Path:
    return save_tiny_model("pop", toy_dataset, tmp_path, llm_cache_dir)
