"""`save` killed at random moments (SIGKILL of a child process saving over and over): the folder
is always the old complete model or the new complete one, never a mix; a first save killed
before it finished is refused with a ModelFormatError, never loaded half-written."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import llmrec
from llmrec.data.catalogue import Catalogue, Item
from llmrec.errors import ModelFormatError
from llmrec.models.pop import PopConfig, Popularity

NUM_ITEMS = 3_000  # a save then takes about 0.1 s: random kills land in all of its steps
TRIALS = 10


def _version(number: int) -> Popularity:
    """Model `number`: its own catalogue (ids, size) and counts all equal to `number`, so that
    any mix of two versions' files is either refused or visible."""
    catalogue = Catalogue.from_items(
        Item(f"v{number}-{j}", title=f"item {j} of version {number}")
        for j in range(NUM_ITEMS + number)
    )
    model = Popularity(PopConfig(), catalogue)
    model.counts = torch.full((len(catalogue),), float(number))
    return model


def _save_forever(folder: Path, versions: list[Popularity]) -> None:
    """Save `versions` in turn, over and over, until killed."""
    turn = 0
    while True:
        versions[turn % len(versions)].save(folder)
        turn += 1


def _kill_while_saving(folder: Path, versions: list[Popularity], delay_s: float) -> None:
    """Start a child saving `versions` in turn over `folder`; SIGKILL it after `delay_s`."""
    # fork: the child starts at once with the models built; it only writes files (no torch ops)
    context = multiprocessing.get_context("fork")
    with warnings.catch_warnings():  # Python >= 3.12 warns about fork in a threaded process
        warnings.simplefilter("ignore", DeprecationWarning)
        child = context.Process(target=_save_forever, args=(folder, versions), daemon=True)
        child.start()
    child.join(delay_s)
    os.kill(child.pid, signal.SIGKILL)
    child.join()


def _loaded_version(folder: Path) -> int:
    """The version a folder loads as, after checking it is that version throughout."""
    model = llmrec.load(folder, device="cpu")
    number = int(model.counts[0])
    assert number in (1, 2)
    assert len(model.catalogue) == NUM_ITEMS + number
    assert model.catalogue.item_id(0) == f"v{number}-0"
    assert torch.equal(model.counts, torch.full((NUM_ITEMS + number,), float(number)))
    return number


@pytest.fixture(scope="module")
def versions() -> dict[int, Popularity]:
    return {1: _version(1), 2: _version(2)}


def test_a_save_killed_over_an_existing_model_leaves_the_old_or_the_new_one(
    tmp_path: Path, versions: dict[int, Popularity]
) -> None:
    """Each child first saves the other version over the one in the folder."""
    folder = tmp_path / "model"
    versions[1].save(folder)
    current = 1
    for delay in np.random.default_rng(0).uniform(0.0, 0.3, size=TRIALS):
        new = 3 - current
        _kill_while_saving(folder, [versions[new], versions[current]], float(delay))
        current = _loaded_version(folder)


def test_a_first_save_killed_is_refused_or_complete(
    tmp_path: Path, versions: dict[int, Popularity]
) -> None:
    folder = tmp_path / "model"
    for delay in np.random.default_rng(1).uniform(0.0, 0.3, size=TRIALS):
        for leftover in (folder, folder.with_name("model.tmp"), folder.with_name("model.old")):
            shutil.rmtree(leftover, ignore_errors=True)
        _kill_while_saving(folder, [versions[1], versions[2]], float(delay))
        try:
            _loaded_version(folder)
        except ModelFormatError as error:
            assert "interrupted while writing" in str(error) or "no such model" in str(error)
