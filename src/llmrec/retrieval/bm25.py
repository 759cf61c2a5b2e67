"""Okapi BM25 over item texts with bm25s: full score vectors and top-k, saved without pickle."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import bm25s
import numpy as np

from llmrec.errors import ModelFormatError


class BM25Index:
    """Documents are item texts in catalogue index order; a query is any text."""

    def __init__(self, retriever: bm25s.BM25) -> None:
        self.retriever = retriever
        self.vocabulary = retriever.vocab_dict

    @classmethod
    def build(cls, documents: Sequence[str], k1: float = 1.5, b: float = 0.75) -> BM25Index:
        retriever = bm25s.BM25(k1=k1, b=b)
        retriever.index(_tokenize(documents), show_progress=False)
        return cls(retriever)

    @property
    def num_documents(self) -> int:
        return int(self.retriever.scores["num_docs"])

    def scores(self, query: str) -> np.ndarray:
        """(n_documents,) BM25 score of every document; zeros when no query term is known."""
        tokens = [t for t in _tokenize([query])[0] if t in self.vocabulary]
        if not tokens:
            return np.zeros(self.num_documents, dtype=np.float32)
        return self.retriever.get_scores(tokens).astype(np.float32)

    def save(self, folder: Path) -> None:
        self.retriever.save(str(folder), allow_pickle=False, show_progress=False)

    @classmethod
    def load(cls, folder: Path, num_documents: int) -> BM25Index:
        """Read what `save` wrote for `num_documents` items; a missing, damaged or mismatched
        index is a ModelFormatError naming the folder."""
        if not folder.is_dir():
            raise ModelFormatError("missing: the model folder is incomplete", folder)
        try:
            index = cls(bm25s.BM25.load(str(folder), allow_pickle=False))
            problem = _index_problem(index.retriever.scores, num_documents)
        except (OSError, ValueError, KeyError, TypeError, RecursionError) as error:
            problem = f"{type(error).__name__}: {error}"
        if problem:
            raise ModelFormatError(f"not a readable BM25 index ({problem})", folder)
        return index


def _index_problem(scores: dict, num_documents: int) -> str | None:
    """What is wrong with bm25s' score matrix (CSC: one column per term), or None."""
    data, indices, pointers = (np.asarray(scores[key]) for key in ("data", "indices", "indptr"))
    if int(scores["num_docs"]) != num_documents:
        return f"{scores['num_docs']} documents for a catalogue of {num_documents} items"
    if not np.isfinite(data).all():
        return "scores hold NaN or infinite values"
    ordered = len(pointers) > 0 and pointers[0] == 0 and np.all(np.diff(pointers) >= 0)
    if not ordered or pointers[-1] != len(data) or len(indices) != len(data):
        return "inconsistent score matrix"
    if len(indices) and (indices.min() < 0 or indices.max() >= num_documents):
        return "document numbers out of range"
    return None


# choice: every word counts, one-character ones too (bm25s's default pattern drops them, which
# loses shade and size codes: "C" in "Vitamin C", "5", the "x" of "2 x 3"). English stopwords
# are still dropped.
TOKEN_PATTERN = r"(?u)\b\w+\b"


def _tokenize(texts: Sequence[str]) -> list[list[str]]:
    return bm25s.tokenize(
        list(texts),
        token_pattern=TOKEN_PATTERN,
        stopwords="en",
        return_ids=False,
        show_progress=False,
    )
