"""Shared fixtures: the embedded 300-user Beauty fixture and a small synthetic data set."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from llmrec.data.catalogue import Catalogue, Item
from llmrec.data.sequences import Dataset
from llmrec.data.splits import leave_one_out

REPO_ROOT = Path(__file__).resolve().parents[1]
FIXTURE_DIR = REPO_ROOT / "data" / "amazon-beauty-mini"


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist, each worker's torch gets its share of the cores at most: a config's
    `num_threads: 2` run in-process by one worker while another computes would oversubscribe
    the 2 CI cores, where OpenMP's spinning threads slow both several times over."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        share = max(1, (os.cpu_count() or 1) // workers)
        os.environ["OMP_NUM_THREADS"] = str(share)  # for the processes tests start
        set_num_threads = torch.set_num_threads
        torch.set_num_threads = lambda count: set_num_threads(min(count, share))


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    # One thread: the CI machine has 2 shared cores, where 2 threads are slower (notes/llm-on-cpu).
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def llm_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One backbone cache per test session, shared by pytest-xdist's workers: the SmolLM2
    tokenizer is converted once (about 10 s), by the first worker to need it, under a lock."""
    from filelock import FileLock

    from llmrec.models.backbone import BackboneConfig, load_backbone

    base = tmp_path_factory.getbasetemp()
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    cache = root / "llmrec-cache"
    with FileLock(str(root / "llmrec-cache.lock")):
        cache.mkdir(exist_ok=True)
        load_backbone(BackboneConfig(source="tiny", cache_dir=cache), show_progress=False)
    return cache


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    """The staged data sets: $LLMREC_DATA, else ../shared/data beside the repo; skip if absent."""
    path = Path(os.environ.get("LLMREC_DATA", REPO_ROOT.parent / "shared" / "data"))
    if not path.is_dir():
        pytest.skip(f"staged data not found at {path} (set LLMREC_DATA)")
    return path


@pytest.fixture(scope="session")
def beauty_mini() -> Dataset:
    from llmrec.data.registry import load_dataset

    return load_dataset(FIXTURE_DIR).dataset


@pytest.fixture()
def toy_dataset() -> Dataset:
    """12 items, 30 users whose sequences follow item i -> i+1 (mod 12): easy to learn."""
    return make_toy_dataset()


def make_toy_dataset() -> Dataset:
    """The `toy_dataset` fixture's data, for fixtures of a wider scope (the same every call)."""
    items = [
        Item(
            f"i{index}",
            title=f"product {index} {'red' if index % 2 else 'blue'}",
            categories=("toys",),
            brand=f"brand{index % 3}",
        )
        for index in range(12)
    ]
    catalogue = Catalogue.from_items(items)
    rng = np.random.default_rng(0)
    users, sequences = [], []
    for user in range(30):
        start = int(rng.integers(12))
        length = int(rng.integers(4, 9))
        sequences.append(np.array([(start + step) % 12 for step in range(length)]))
        users.append(f"u{user}")
    return leave_one_out("toy", catalogue, users, sequences)
