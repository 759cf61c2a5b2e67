"""Named data sets and the one entry point, `load_dataset`, for a name or a folder of any format.

Named sets live in folders under a data directory: the `data_dir` argument, else `$LLMREC_DATA`.
A folder's format is detected from the files present unless given.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from llmrec.data.catalogue import Catalogue
from llmrec.data.config import DataFormat, TemporalConfig
from llmrec.data.loaders import (
    LoadResult,
    load_byo,
    load_dealrec,
    load_p5,
    load_recbole,
    load_unisrec,
)
from llmrec.data.loaders.byo import read_byo
from llmrec.data.loaders.common import Problems, UserSequences, require_rows
from llmrec.data.loaders.recbole import SPLIT_SUFFIXES, read_recbole
from llmrec.data.splits import temporal_split
from llmrec.errors import DataError

DATA_DIR_ENV = "LLMREC_DATA"


@dataclass(frozen=True)
class NamedDataset:
    """A staged data set: its folder under the data directory and its file format."""

    folder: str
    format: DataFormat
    description: str


DATASETS: dict[str, NamedDataset] = {
    "beauty": NamedDataset("amazon-beauty", "p5", "Amazon 2014 Beauty, 5-core (P5/S3Rec)"),
    "toys": NamedDataset("amazon-toys", "p5", "Amazon 2014 Toys and Games, 5-core (P5)"),
    "beauty-mini": NamedDataset("amazon-beauty-mini", "p5", "300 users of beauty, for tests"),
    "beauty-10k": NamedDataset("amazon-beauty-10k", "p5", "10,000 users of beauty, main job"),
    "scientific": NamedDataset(
        "amazon-scientific", "unisrec", "Amazon 2018 Industrial and Scientific (UniSRec)"
    ),
    "games": NamedDataset("amazon-games", "dealrec", "Amazon 2018 Video Games (DEALRec)"),
}

Loader = Callable[..., LoadResult]
LOADERS: dict[str, Loader] = {
    "p5": load_p5,
    "unisrec": load_unisrec,
    "dealrec": load_dealrec,
    "byo": load_byo,
    "recbole": load_recbole,
}

# The formats whose files can carry timestamps, read before any split (data.split: temporal).
TIMED_READERS: dict[str, Callable[[Path, Problems], tuple[Catalogue, UserSequences]]] = {
    "byo": read_byo,
    "recbole": read_recbole,
}
# Why the other formats cannot be cut in time.
NO_TIMESTAMPS = {
    "p5": "user_sequence.txt holds items in time order but no times",
    "unisrec": "its .inter files hold histories and targets but no times (the files' own "
    "split is leave-one-out)",
    "dealrec": "its sequence files hold no times; their own split (data.split: auto) is "
    "already by time, train before valid before test (DEALRec sec. 4.1)",
}


def resolve_data_dir(data_dir: str | Path | None = None) -> Path:
    """The data directory: `data_dir`, else $LLMREC_DATA; an error with a hint when neither."""
    if data_dir is None:
        data_dir = os.environ.get(DATA_DIR_ENV) or None
    if data_dir is None:
        raise DataError(
            f"no data directory for the named data sets; pass data_dir (config data.data_dir)"
            f" or set {DATA_DIR_ENV}, e.g. export {DATA_DIR_ENV}=/path/to/data"
        )
    path = Path(data_dir).expanduser()
    if not path.is_dir():
        raise DataError(f"data directory not found (from data_dir or ${DATA_DIR_ENV})", path)
    return path


def detect_format(folder: Path) -> str:
    """The format whose marker files are in `folder`; an error unless exactly one matches."""
    markers = {
        "p5": (folder / "user_sequence.txt").is_file(),
        "unisrec": any(folder.glob("*.train.inter")) and any(folder.glob("*.text")),
        "dealrec": (folder / "sequential_train.txt").is_file(),
        "byo": (folder / "items.jsonl").is_file()
        and any((folder / name).is_file() for name in ("interactions.jsonl", "interactions.csv")),
        "recbole": any(not p.name.endswith(SPLIT_SUFFIXES) for p in folder.glob("*.inter")),
    }
    found = [name for name, present in markers.items() if present]
    if len(found) == 1:
        return found[0]
    problem = (
        "cannot tell the data format: "
        + (f"files of several formats ({', '.join(found)})" if found else "no known data files")
        + "; expected user_sequence.txt (p5), NAME.train.inter + NAME.text (unisrec),"
        " sequential_train.txt (dealrec), interactions.jsonl/.csv + items.jsonl (byo) or"
        " NAME.inter (recbole); or pass the format"
    )
    raise DataError(problem, folder)


def resolve_source(source: str | Path, data_dir: str | Path | None) -> tuple[Path, str, str]:
    """(folder, data set name, registered format or "auto") for a data set name or a folder.

    A registered name wins over a folder of the same name; write "./beauty" for the folder.
    """
    if isinstance(source, str) and source in DATASETS:
        named = DATASETS[source]
        folder = resolve_data_dir(data_dir) / named.folder
        if not folder.is_dir():
            hint = f"data set {source!r} expects the folder {named.folder!r} in the data directory"
            raise DataError(f"folder not found; {hint}", folder)
        return folder, source, named.format
    folder = Path(source).expanduser()
    if not folder.is_dir():
        names = ", ".join(sorted(DATASETS))
        problem = f"not a data set name ({names}) nor an existing folder"
        raise DataError(problem, folder)
    return folder, folder.resolve().name, "auto"


def load_dataset(
    source: str | Path,
    *,
    data_format: DataFormat = "auto",
    data_dir: str | Path | None = None,
    skip_bad: bool = False,
    temporal: TemporalConfig | None = None,
) -> LoadResult:
    """Load a named data set or a data folder, split it, and report what was skipped.

    `data_format="auto"` uses the registered format of a named set, else detects it from the files.
    `skip_bad=True` skips bad lines/users and counts them in `LoadResult.report`. `temporal`:
    split by the global temporal split instead of the format's own (data with timestamps only).
    """
    folder, name, registered = resolve_source(source, data_dir)
    chosen = data_format if data_format != "auto" else registered
    if chosen == "auto":
        chosen = detect_format(folder)
    if chosen not in LOADERS:
        raise DataError(f"unknown data format {chosen!r}; expected one of {sorted(LOADERS)}")
    if temporal is not None:
        return load_temporal(folder, name, chosen, skip_bad, temporal)
    return LOADERS[chosen](folder, name=name, skip_bad=skip_bad)


def load_temporal(
    folder: Path, name: str, data_format: str, skip_bad: bool, config: TemporalConfig
) -> LoadResult:
    """Read a folder's interactions with their times and split them by the global temporal
    split; a DataError naming the data set where the files hold no timestamps."""
    if data_format not in TIMED_READERS:
        raise DataError(
            f"data set {name!r} ({data_format} format) has no timestamps, so data.split: "
            f"temporal cannot cut it in time: {NO_TIMESTAMPS[data_format]}",
            folder,
        )
    problems = Problems(skip_bad)
    catalogue, users = TIMED_READERS[data_format](folder, problems)
    require_rows(len(users.user_ids), users.path, problems, "no usable interaction")
    if users.timestamps is None:
        raise DataError(
            f"data set {name!r} has no timestamps, so data.split: temporal cannot cut it in "
            "time; give every interaction a timestamp, or use data.split: auto",
            users.path,
        )
    split = temporal_split(
        name, catalogue, users.user_ids, users.sequences, users.timestamps, config
    )
    return LoadResult(
        split.dataset, problems.report(), data_format, folder, split.full_sequences, split.record
    )
