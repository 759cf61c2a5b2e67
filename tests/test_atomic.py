"""Folders replaced whole: what a kill at each step of a swap leaves, and how it is recovered."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmrec.atomic import complete_copy, finish_interrupted_swap, replacing_folder, sibling


def _write(folder: Path, text: str) -> Path:
    with replacing_folder(folder) as temporary:
        (temporary / "a.txt").write_text(text)
        (temporary / "sub").mkdir()
        (temporary / "sub" / "b.txt").write_text(text)
    return folder


def _contents(folder: Path) -> tuple[str, str]:
    return (folder / "a.txt").read_text(), (folder / "sub" / "b.txt").read_text()


def test_a_save_replaces_the_whole_folder_and_leaves_no_sibling(tmp_path: Path) -> None:
    folder = _write(tmp_path / "model", "old")
    (folder / "stale.txt").write_text("from the old save")
    _write(folder, "new")
    assert _contents(folder) == ("new", "new")
    assert not (folder / "stale.txt").exists()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["model"]


def test_an_error_while_writing_keeps_the_old_folder(tmp_path: Path) -> None:
    folder = _write(tmp_path / "model", "old")
    with pytest.raises(RuntimeError), replacing_folder(folder) as temporary:
        (temporary / "a.txt").write_text("half")
        raise RuntimeError("disk full")
    assert _contents(folder) == ("old", "old")
    assert not sibling(folder, ".tmp").exists()


def _killed_between_renames(tmp_path: Path) -> Path:
    """What a kill after `FOLDER -> FOLDER.old`, before `FOLDER.tmp -> FOLDER` leaves."""
    folder = _write(tmp_path / "model", "old")
    _write(tmp_path / "new", "new").rename(sibling(folder, ".tmp"))
    folder.rename(sibling(folder, ".old"))
    return folder


def test_a_kill_between_the_renames_is_finished_with_the_new_copy(tmp_path: Path) -> None:
    folder = _killed_between_renames(tmp_path)
    assert complete_copy(folder) == sibling(folder, ".tmp")
    finish_interrupted_swap(folder)
    assert _contents(folder) == ("new", "new")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["model"]


def test_the_next_save_after_a_kill_between_the_renames_starts_from_the_new_copy(
    tmp_path: Path,
) -> None:
    folder = _killed_between_renames(tmp_path)
    _write(folder, "newer")
    assert _contents(folder) == ("newer", "newer")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["model"]


def test_a_lone_temporary_copy_is_incomplete_and_a_lone_old_copy_is_complete(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "model"
    assert complete_copy(folder) is None
    sibling(folder, ".tmp").mkdir()  # a first save killed while writing
    assert complete_copy(folder) is None
    finish_interrupted_swap(folder)
    assert not folder.exists()
    sibling(folder, ".tmp").rmdir()
    sibling(folder, ".old").mkdir()  # only if something else removed the folder
    assert complete_copy(folder) == sibling(folder, ".old")


def test_a_save_over_a_partial_temporary_copy_discards_it(tmp_path: Path) -> None:
    folder = _write(tmp_path / "model", "old")
    partial = sibling(folder, ".tmp")
    partial.mkdir()
    (partial / "a.txt").write_text("half")
    (partial / "junk.txt").write_text("junk")
    _write(folder, "new")
    assert _contents(folder) == ("new", "new")
    assert not (folder / "junk.txt").exists() and not partial.exists()
