"""Tests for data/registry.py: named data sets, the data directory, format detection."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmrec.data.registry import DATA_DIR_ENV, DATASETS, detect_format, load_dataset
from llmrec.errors import DataError
from tests.data.helpers import FIXTURE_DIR, REPO_ROOT, item_records, write_jsonl, write_lines


def _touch(folder: Path, *names: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_text("", encoding="utf-8")
    return folder


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (("user_sequence.txt", "items.jsonl"), "p5"),
        (("X.train.inter", "X.valid.inter", "X.test.inter", "X.text"), "unisrec"),
        (("sequential_train.txt", "items.jsonl"), "dealrec"),
        (("interactions.jsonl", "items.jsonl"), "byo"),
        (("interactions.csv", "items.jsonl"), "byo"),
        (("shop.inter", "shop.item"), "recbole"),
    ],
)
def test_detects_format_from_files(tmp_path: Path, names: tuple[str, ...], expected: str) -> None:
    assert detect_format(_touch(tmp_path, *names)) == expected


def test_ambiguous_or_unknown_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"several formats \(p5, dealrec\)"):
        detect_format(_touch(tmp_path / "both", "user_sequence.txt", "sequential_train.txt"))
    with pytest.raises(DataError, match="no known data files"):
        detect_format(_touch(tmp_path / "none", "notes.txt"))


def test_named_data_set_from_data_dir_argument() -> None:
    result = load_dataset("beauty-mini", data_dir=REPO_ROOT / "data")
    assert (result.dataset.name, result.format) == ("beauty-mini", "p5")
    assert result.dataset.num_users == 300


def test_named_data_set_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DATA_DIR_ENV, str(REPO_ROOT / "data"))
    assert load_dataset("beauty-mini").dataset.num_items == 2090


def test_missing_data_dir_gives_a_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    with pytest.raises(DataError, match=f"set {DATA_DIR_ENV}"):
        load_dataset("beauty")


def test_missing_named_folder_names_it(tmp_path: Path) -> None:
    with pytest.raises(DataError) as caught:
        load_dataset("games", data_dir=tmp_path)
    assert caught.value.path == tmp_path / "amazon-games"
    assert "data set 'games'" in str(caught.value)


def test_folder_path_uses_folder_name_and_detected_format(tmp_path: Path) -> None:
    folder = tmp_path / "my-shop"
    write_jsonl(folder / "items.jsonl", item_records("abc"))
    write_lines(folder / "interactions.csv", ["user,item", "u,a", "u,b", "u,c"])
    result = load_dataset(folder)
    assert (result.dataset.name, result.format, result.path) == ("my-shop", "byo", folder)
    assert load_dataset(str(folder)).dataset.name == "my-shop"


def test_explicit_format_overrides_detection(tmp_path: Path) -> None:
    folder = tmp_path / "mixed"
    write_jsonl(folder / "items.jsonl", item_records("abc"))
    write_lines(folder / "user_sequence.txt", ["u a b c"])
    write_lines(folder / "sequential_train.txt", ["1 1 2 3"])
    with pytest.raises(DataError, match="several formats"):
        load_dataset(folder)
    assert load_dataset(folder, data_format="p5").format == "p5"


def test_unknown_name_lists_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="beauty, beauty-10k, beauty-mini, games, scientific, toys"):
        load_dataset(str(tmp_path / "sports"))


def test_fixture_is_the_beauty_mini_folder() -> None:
    assert DATASETS["beauty-mini"].folder == FIXTURE_DIR.name
    first = json.loads((FIXTURE_DIR / "items.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert {"item_id", "title", "categories", "brand"} <= set(first)
