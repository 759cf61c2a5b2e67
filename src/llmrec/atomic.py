"""Folders written whole or not at all: saved models and training checkpoints.

A folder is written into a temporary sibling, fsynced, then swapped in by two renames, so that a
kill at any moment leaves the previous complete folder or the new complete one, never a mix:

    1. write FOLDER.tmp, fsync its files and folders     (FOLDER untouched)
    2. rename FOLDER -> FOLDER.old                        (FOLDER.tmp is complete from here on)
    3. rename FOLDER.tmp -> FOLDER, fsync the parent
    4. remove FOLDER.old

Only a kill between 2 and 3 leaves no FOLDER: FOLDER.tmp (new) and FOLDER.old (previous) are then
both complete, and the next save, load or resume takes FOLDER.tmp (`complete_copy`). A lone
FOLDER.tmp is a save killed in step 1: incomplete, never read.
choice: two concurrent saves to one folder are not supported (they share FOLDER.tmp).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TEMPORARY_SUFFIX = ".tmp"
PREVIOUS_SUFFIX = ".old"


def sibling(folder: Path, suffix: str) -> Path:
    """FOLDER.tmp or FOLDER.old beside `folder`."""
    return folder.with_name(folder.name + suffix)


@contextmanager
def replacing_folder(folder: str | Path) -> Iterator[Path]:
    """Yield an empty temporary sibling of `folder` to write into; when the block ends without
    an error, make it durable and swap it in as `folder`. On an error (or Ctrl-C) the temporary
    copy is removed and `folder` is left as it was."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    finish_interrupted_swap(folder)
    temporary = sibling(folder, TEMPORARY_SUFFIX)
    shutil.rmtree(temporary, ignore_errors=True)  # the partial copy of an earlier, killed save
    temporary.mkdir()
    try:
        yield temporary
        fsync_tree(temporary)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    previous = sibling(folder, PREVIOUS_SUFFIX)
    shutil.rmtree(previous, ignore_errors=True)  # left by a kill in step 4 of an earlier swap
    if folder.exists():
        os.replace(folder, previous)
    os.replace(temporary, folder)
    fsync_folder(folder.parent)
    shutil.rmtree(previous, ignore_errors=True)


def complete_copy(folder: Path) -> Path | None:
    """Where the complete copy of `folder` is: `folder` itself; after a kill between the two
    renames of a swap, FOLDER.tmp (the new copy; FOLDER.old alone if that is all there is);
    None when there is no complete copy (nothing, or only the partial FOLDER.tmp of a kill while
    writing)."""
    if folder.exists():
        return folder
    temporary, previous = sibling(folder, TEMPORARY_SUFFIX), sibling(folder, PREVIOUS_SUFFIX)
    if previous.is_dir():
        return temporary if temporary.is_dir() else previous
    return None


def finish_interrupted_swap(folder: Path) -> None:
    """Complete a swap that a kill stopped between its two renames: the complete copy becomes
    `folder` and FOLDER.old is removed. Nothing happens when `folder` exists."""
    copy = complete_copy(folder)
    if copy is None or copy == folder:
        return
    try:
        os.replace(copy, folder)
    except OSError:  # another process (of a multi-process run) finished the same swap first
        if not folder.exists():
            raise
    fsync_folder(folder.parent)
    shutil.rmtree(sibling(folder, PREVIOUS_SUFFIX), ignore_errors=True)


def fsync_tree(folder: Path) -> None:
    """Flush every file under `folder`, then the folders themselves (deepest first), to disk:
    a rename must never reach the disk before the data it names."""
    for root, _, files in os.walk(folder, topdown=False):
        for name in files:
            with open(os.path.join(root, name), "rb") as handle:
                os.fsync(handle.fileno())
        fsync_folder(Path(root))


def fsync_folder(folder: Path) -> None:
    """Flush a folder's entries (new names, renames) to disk; a no-op where a folder cannot be
    opened for that (Windows)."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
