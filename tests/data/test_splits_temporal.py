"""Tests for the global temporal split (data/splits.py `temporal_split`, `load_dataset(...,
temporal=...)`): no leak across the cuts, the boundaries, users and items unseen before a cut,
the cuts by fraction, and the refusal of data without timestamps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from llmrec.data.catalogue import Catalogue, Item
from llmrec.data.config import DataConfig, TemporalConfig
from llmrec.data.registry import LOADERS, NO_TIMESTAMPS, TIMED_READERS, load_dataset
from llmrec.data.splits import temporal_cuts, temporal_split
from llmrec.errors import DataError
from tests.data.helpers import FIXTURE_DIR, item_records, write_jsonl, write_lines

GIVEN = TemporalConfig(valid_start=5, test_start=8)
USERS = {  # user -> (items, times), times ascending
    "a": ([0, 1, 2, 3, 5], [1, 2, 3, 6, 8]),  # item 5 at t=8: exactly at the test cut
    "b": ([5, 6, 7], [2, 7, 9]),
    "c": ([1, 8], [6, 9]),  # nothing before the validation cut: history from the valid period
    "d": ([0, 1], [9, 10]),  # nothing before the test cut: no row at all
    "e": ([9], [5]),  # at the validation cut: a validation-period item, no target after it
}


def _catalogue(size: int) -> Catalogue:
    return Catalogue.from_items(Item(f"i{index}") for index in range(size))


def _split(users: dict, config: TemporalConfig = GIVEN):
    items = [np.asarray(user[0]) for user in users.values()]
    times = [np.asarray(user[1], dtype=float) for user in users.values()]
    return temporal_split("toy", _catalogue(10), list(users), items, times, config)


def test_periods_by_hand() -> None:
    split = _split(USERS)
    dataset = split.dataset
    assert dataset.user_ids == ("a", "b")  # c, d and e have nothing before t=5
    assert [list(train) for train in dataset.train] == [[0, 1, 2], [5]]
    assert dataset.valid.user_ids == ("a", "b")
    assert list(dataset.valid.targets) == [3, 6]
    assert [list(history) for history in dataset.valid.histories] == [[0, 1, 2], [5]]
    assert dataset.test.user_ids == ("a", "b", "c")
    assert list(dataset.test.targets) == [5, 7, 8]
    assert [list(h) for h in dataset.test.histories] == [[0, 1, 2, 3], [5, 6], [1]]
    assert [list(sequence) for sequence in split.full_sequences] == [[0, 1, 2, 3, 5], [5, 6, 7]]
    assert split.record["interactions"] == {"train": 4, "valid": 4, "test": 5}
    assert split.record["users_without_training_items"] == 3
    # training holds items 0, 1, 2, 5: valid targets 3, 6 and test targets 7, 8 are cold
    assert (split.record["cold_valid_targets"], split.record["cold_test_targets"]) == (2, 2)
    assert dataset.split == (
        "temporal(given times; valid from 5 (1970-01-01T00:00:05Z), "
        "test from 8 (1970-01-01T00:00:08Z))"
    )


def test_an_interaction_at_a_cut_belongs_to_the_later_period() -> None:
    dataset = _split({"a": ([0, 1, 2, 3], [1, 5, 6, 8])}).dataset
    assert list(dataset.train[0]) == [0]  # t=5 is validation
    assert list(dataset.valid.targets) == [1]
    assert list(dataset.test.targets) == [3]  # t=8 is test
    assert list(dataset.test.histories[0]) == [0, 1, 2]


def test_no_interaction_crosses_its_cut() -> None:
    """Leak test on random data with ties: every training interaction is before the validation
    cut, every validation history before it and target between the cuts, every test history
    before the test cut and target from it on."""
    rng = np.random.default_rng(0)
    users = {}
    for user in range(200):
        length = int(rng.integers(1, 12))
        users[f"u{user}"] = (rng.integers(10, size=length), np.sort(rng.integers(100, size=length)))
    config = TemporalConfig(valid_fraction=0.15, test_fraction=0.2)
    split = _split(users, config)
    valid_cut, test_cut = split.record["valid_start"], split.record["test_start"]
    times = {user: np.asarray(value[1], dtype=float) for user, value in users.items()}
    for user, train in zip(split.dataset.user_ids, split.dataset.train, strict=True):
        assert times[user][len(train) - 1] < valid_cut
        assert len(train) == len(times[user]) or times[user][len(train)] >= valid_cut
    for user, history in zip(
        split.dataset.valid.user_ids, split.dataset.valid.histories, strict=True
    ):
        assert times[user][len(history) - 1] < valid_cut <= times[user][len(history)] < test_cut
    for user, history in zip(
        split.dataset.test.user_ids, split.dataset.test.histories, strict=True
    ):
        assert times[user][len(history) - 1] < test_cut <= times[user][len(history)]
    assert len(split.dataset.test) > 0 and len(split.dataset.valid) > 0


def test_cuts_by_fraction_of_interactions_in_time() -> None:
    times = [np.arange(1.0, 11.0)]  # ten interactions at t = 1..10
    config = TemporalConfig(valid_fraction=0.2, test_fraction=0.2)
    assert temporal_cuts(times, config) == (7.0, 9.0)  # train t<7 (6), valid 7, 8, test 9, 10
    split = _split({"a": (list(range(10)), list(range(1, 11)))}, config)
    assert split.record["interactions"] == {"train": 6, "valid": 2, "test": 2}
    assert split.dataset.split.startswith("temporal(0.6/0.2/0.2 of interactions in time; ")


def test_an_empty_period_is_a_data_error_naming_the_data_set() -> None:
    with pytest.raises(DataError, match="data set 'toy' leaves valid empty"):
        _split({"a": ([0, 1, 2], [1, 2, 9])})


def _byo(folder: Path, with_times: bool) -> Path:
    write_jsonl(folder / "items.jsonl", item_records(f"i{index}" for index in range(10)))
    rows = []
    for user, (items, times) in USERS.items():
        for item, time in zip(items, times, strict=True):
            row = {"user": user, "item": f"i{item}"}
            rows.append({**row, "timestamp": f"2024-01-{time:02d}T00:00:00"} if with_times else row)
    write_jsonl(folder / "interactions.jsonl", rows)
    return folder


def test_bring_your_own_with_dates_splits_in_time(tmp_path: Path) -> None:
    """Users with under 3 items (refused by leave-one-out) are fine under the temporal split."""
    config = TemporalConfig(valid_start="2024-01-05", test_start="2024-01-08T00:00:00+00:00")
    loaded = load_dataset(_byo(tmp_path / "shop", with_times=True), temporal=config)
    assert loaded.format == "byo" and loaded.dataset.user_ids == ("a", "b")
    assert list(loaded.dataset.test.targets) == [5, 7, 8]
    assert loaded.split_record is not None and loaded.split_record["test_rows"] == 3
    assert "test from 1704672000 (2024-01-08T00:00:00Z)" in loaded.dataset.split


def test_recbole_atomic_files_split_in_time(tmp_path: Path) -> None:
    header = "user_id:token\titem_id:token\ttimestamp:float"
    rows = [
        f"{user}\ti{item}\t{time}"
        for user, value in USERS.items()
        for item, time in zip(*value, strict=True)
    ]
    write_lines(tmp_path / "shop" / "shop.inter", [header, *rows])
    loaded = load_dataset(tmp_path / "shop", temporal=GIVEN)
    assert loaded.format == "recbole" and loaded.dataset.test.user_ids == ("a", "b", "c")
    catalogue = loaded.dataset.catalogue  # items in order of first appearance in the file
    assert catalogue.item_ids(loaded.dataset.test.targets) == ["i5", "i7", "i8"]


def test_data_without_timestamps_is_refused_naming_the_data_set(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"data set 'amazon-beauty-mini' \(p5 format\) has no"):
        load_dataset(FIXTURE_DIR, temporal=TemporalConfig())
    with pytest.raises(DataError, match="data set 'shop' has no timestamps") as error:
        load_dataset(_byo(tmp_path / "shop", with_times=False), temporal=TemporalConfig())
    assert error.value.path == tmp_path / "shop" / "interactions.jsonl"
    assert set(LOADERS) == set(TIMED_READERS) | set(NO_TIMESTAMPS)
    assert "already by time" in NO_TIMESTAMPS["dealrec"]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"valid_start": 5}, "give both valid_start and test_start"),
        ({"valid_start": 8, "test_start": 5}, "valid_start must be before test_start"),
        ({"valid_start": 1, "test_start": 5, "test_fraction": 0.2}, "fractions are not used"),
        ({"valid_fraction": 0.5, "test_fraction": 0.5}, "must be below 1"),
    ],
)
def test_temporal_settings_are_checked(settings: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        TemporalConfig(**settings)


def test_temporal_settings_need_the_temporal_split() -> None:
    with pytest.raises(ValidationError, match=r"data\.temporal is only used with data\.split"):
        DataConfig(temporal={"test_fraction": 0.2})
    config = DataConfig(split="temporal", temporal={"valid_start": "2024-01-05", "test_start": 8e9})
    assert config.temporal_split is config.temporal
    assert config.temporal.start_seconds() == (1704412800.0, 8e9)
    assert DataConfig().temporal_split is None
