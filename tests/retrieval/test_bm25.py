"""Tests of retrieval/bm25.py: which words count, unknown queries, saving without pickle."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from llmrec.retrieval.bm25 import BM25Index

DOCUMENTS = ["Vitamin C serum", "Vitamin E serum", "Shade 5 lipstick", "Shade 6 lipstick"]


def test_one_character_words_decide_between_otherwise_equal_documents() -> None:
    index = BM25Index.build(DOCUMENTS)
    vitamin_c = index.scores("vitamin c")
    assert vitamin_c[0] > vitamin_c[1] > 0  # "c" counts; "vitamin" alone would tie them
    shade = index.scores("lipstick shade 6")
    assert shade[3] > shade[2] > 0
    assert shade[0] == shade[1] == 0


def test_a_query_with_only_unknown_words_or_stopwords_scores_zero_everywhere() -> None:
    index = BM25Index.build(DOCUMENTS)
    for query in ["", "qwerty", "the of and"]:
        scores = index.scores(query)
        assert scores.shape == (4,) and not scores.any()


def test_a_saved_index_loads_without_pickle_and_scores_the_same(tmp_path: Path) -> None:
    index = BM25Index.build(DOCUMENTS)
    index.save(tmp_path)
    assert not list(tmp_path.glob("*.pkl")) and not list(tmp_path.glob("*.pickle"))
    loaded = BM25Index.load(tmp_path, len(DOCUMENTS))
    assert loaded.num_documents == 4
    np.testing.assert_array_equal(loaded.scores("vitamin c"), index.scores("vitamin c"))
