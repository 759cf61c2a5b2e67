"""Okapi BM25 over item texts with bm25s: full score vectors and top-k, saved without pickle."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import bm25s
import numpy as np


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
    def load(cls, folder: Path) -> BM25Index:
        return cls(bm25s.BM25.load(str(folder), allow_pickle=False))


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
