"""Tests for data/sampling.py: `data.sample_users`, a seeded sample of whole users."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from llmrec.data.config import DataConfig
from llmrec.data.registry import load_dataset
from llmrec.data.sampling import sample_loaded_users
from llmrec.experiment import split_dataset
from tests.data.helpers import FIXTURE_DIR


@pytest.fixture(scope="module")
def loaded():
    return load_dataset(FIXTURE_DIR)


def _item_ids(dataset, sequence) -> list[str]:
    return [dataset.catalogue.items[item].item_id for item in sequence]


def test_sample_keeps_chosen_users_whole_with_their_items(loaded) -> None:
    whole = loaded.dataset
    sampled = sample_loaded_users(loaded, 40, seed=3).dataset
    assert sampled.num_users == 40 and set(sampled.user_ids) < set(whole.user_ids)
    assert sampled.name == f"{whole.name} (40 sampled users)"
    row_of = {user: row for row, user in enumerate(whole.user_ids)}
    test_row = {user: row for row, user in enumerate(whole.test.user_ids)}
    touched: set[str] = set()
    for row, user in enumerate(sampled.user_ids):
        # the same items (by id) in the same order, only re-indexed
        assert _item_ids(sampled, sampled.train[row]) == _item_ids(whole, whole.train[row_of[user]])
        touched.update(_item_ids(sampled, sampled.train[row]))
    for row, user in enumerate(sampled.test.user_ids):
        original = test_row[user]
        assert _item_ids(sampled, sampled.test.histories[row]) == _item_ids(
            whole, whole.test.histories[original]
        )
        assert _item_ids(sampled, [sampled.test.targets[row]]) == _item_ids(
            whole, [whole.test.targets[original]]
        )
        touched.update(_item_ids(sampled, [sampled.test.targets[row]]))
    assert sorted(sampled.test.user_ids) == sorted(sampled.user_ids)
    touched.update(_item_ids(sampled, sampled.valid.targets))
    # the catalogue holds exactly the items the sampled users touch, in catalogue order
    catalogue_ids = [item.item_id for item in sampled.catalogue.items]
    assert set(catalogue_ids) == touched
    order = [whole.catalogue.index(item_id) for item_id in catalogue_ids]
    assert order == sorted(order) and sampled.num_items < whole.num_items


def test_sample_is_seeded_and_none_keeps_everything(loaded) -> None:
    first = sample_loaded_users(loaded, 25, seed=1).dataset.user_ids
    assert sample_loaded_users(loaded, 25, seed=1).dataset.user_ids == first
    assert sample_loaded_users(loaded, 25, seed=2).dataset.user_ids != first
    assert sample_loaded_users(loaded, None, seed=0) is loaded
    assert sample_loaded_users(loaded, 10**6, seed=0) is loaded


def test_holdout_splits_the_sampled_users(loaded) -> None:
    config = DataConfig(split="holdout", sample_users=30)
    dataset, record = split_dataset(loaded, config)
    assert set(dataset.user_ids) <= set(sample_loaded_users(loaded, 30, 0).dataset.user_ids)
    assert record is not None and record["users"] == dataset.num_users
    items = np.concatenate([*dataset.train, *dataset.test.targets])
    assert items.max() < dataset.num_items


def test_seed_without_sample_is_refused() -> None:
    with pytest.raises(ValidationError, match=r"sample_seed is only used with data\.sample_users"):
        DataConfig(sample_seed=4)
