"""Tests for data/stats.py, including every staged data set against its README numbers."""

from __future__ import annotations

import numpy as np
import pytest

from llmrec.data.catalogue import Catalogue, Item
from llmrec.data.registry import DATASETS, load_dataset
from llmrec.data.sequences import Dataset
from llmrec.data.splits import leave_one_out
from llmrec.data.stats import compute_stats, format_stats
from tests.data.helpers import shared_data_dir


def _dataset() -> Dataset:
    catalogue = Catalogue.from_items(Item(f"i{index}") for index in range(4))
    sequences = [np.array([0, 1, 2]), np.array([3, 2, 1, 0]), np.array([0, 1, 2, 3, 0])]
    return leave_one_out("toy", catalogue, ["a", "b", "c"], sequences)


def test_counts_whole_sequences_under_leave_one_out() -> None:
    stats = compute_stats(_dataset())
    assert (stats.num_users, stats.num_items, stats.num_interactions) == (3, 4, 12)
    assert (stats.mean_length, stats.median_length) == (4.0, 4.0)
    assert (stats.max_length, stats.min_length) == (5, 3)
    assert stats.density == pytest.approx(12 / 12)
    assert (stats.num_valid, stats.num_test, stats.split) == (3, 3, "leave_one_out")


def test_full_sequences_override_what_the_dataset_shows() -> None:
    dataset = _dataset()
    longer = [np.arange(3), np.arange(4), np.arange(9)]
    stats = compute_stats(dataset, longer)
    assert (stats.num_interactions, stats.max_length) == (16, 9)
    with pytest.raises(ValueError, match="one sequence per dataset user"):
        compute_stats(dataset, longer[:2])


def test_format_stats_is_an_aligned_table() -> None:
    text = format_stats([compute_stats(_dataset()), compute_stats(_dataset())])
    lines = text.splitlines()
    assert len(lines) == 4
    assert lines[0].startswith("data set")
    assert "4.00 / 4 / 5 / 3" in lines[2]
    assert len({len(line) for line in lines[:2]}) == 1
    assert format_stats(compute_stats(_dataset())).count("\n") == 3


# users, items, interactions, mean, median, max, min (None: the README gives no minimum)
README_NUMBERS = {
    "beauty": (22_363, 12_101, 198_502, 8.88, 6, 204, 5),
    "toys": (19_412, 11_924, 167_597, 8.63, 6, 550, 5),
    "beauty-mini": (300, 2_090, 2_695, 8.98, 6, 150, 5),
    "scientific": (8_442, 4_385, 59_384, 7.03, 6, 51, None),
    "games": (49_156, 17_332, 342_329, 6.96, 5, 658, 1),
}

README_DENSITY = {"beauty": 0.00073, "toys": 0.00072}


@pytest.mark.parametrize("name", sorted(README_NUMBERS))
def test_staged_data_set_matches_its_readme(name: str) -> None:
    data_dir = shared_data_dir()
    if not (data_dir / DATASETS[name].folder).is_dir():
        pytest.skip(f"staged data not found under {data_dir} (set LLMREC_DATA to run this test)")
    result = load_dataset(name, data_dir=data_dir)
    stats = compute_stats(result.dataset, result.full_sequences)
    users, items, interactions, mean, median, longest, shortest = README_NUMBERS[name]
    assert (stats.num_users, stats.num_items) == (users, items)
    assert stats.num_interactions == interactions
    assert round(stats.mean_length, 2) == mean
    assert (stats.median_length, stats.max_length) == (median, longest)
    if shortest is not None:
        assert stats.min_length == shortest
    assert result.report.num_skipped == 0
    if name in README_DENSITY:
        assert round(stats.density, 5) == README_DENSITY[name]
