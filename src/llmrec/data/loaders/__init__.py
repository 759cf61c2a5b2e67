"""One loader per on-disk format; each returns a `LoadResult` (dataset + what was skipped)."""

from llmrec.data.loaders.byo import load_byo
from llmrec.data.loaders.common import LoadReport, LoadResult
from llmrec.data.loaders.dealrec import load_dealrec
from llmrec.data.loaders.p5 import load_p5
from llmrec.data.loaders.recbole import load_recbole
from llmrec.data.loaders.unisrec import load_unisrec

__all__ = [
    "LoadReport",
    "LoadResult",
    "load_byo",
    "load_dealrec",
    "load_p5",
    "load_recbole",
    "load_unisrec",
]
