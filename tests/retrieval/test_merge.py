"""Tests of retrieval/merge.py: generation ordering, the quasi-round-robin merge, grounding metrics.
Every expected value is written out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from llmrec.retrieval.merge import (
    GenerationGroup,
    duplicate_share,
    exact_match_share,
    order_generations,
    rank_items,
    round_robin_merge,
)


# --- ordering the generations ------------------------------------------------------------------
def test_order_by_count_then_logprob_then_first_occurrence() -> None:
    texts = ["b", "a", "c", "a ", "d", " b", "e"]
    logprobs = [-1.0, -3.0, -0.5, -1.0, -0.5, -2.0, -0.5]
    groups = order_generations(texts, logprobs)
    # a and b: 2 samples each; a's mean log-prob -2.0, b's -1.5, so b first.
    # c, d, e: 1 sample each, all -0.5: by first occurrence (positions 2, 4, 6).
    assert groups == [
        GenerationGroup("b", 2, -1.5, 0),
        GenerationGroup("a", 2, -2.0, 1),
        GenerationGroup("c", 1, -0.5, 2),
        GenerationGroup("d", 1, -0.5, 4),
        GenerationGroup("e", 1, -0.5, 6),
    ]


def test_frequency_beats_logprob() -> None:
    groups = order_generations(["rare", "common", "common"], [-0.1, -5.0, -5.0])
    assert [group.text for group in groups] == ["common", "rare"]


def test_order_rejects_mismatched_lengths() -> None:
    with pytest.raises(ValueError, match="2 texts but 1 log-probs"):
        order_generations(["a", "b"], [-1.0])


# --- ranking one generation's scores ----------------------------------------------------------
def test_rank_items_descending_ties_to_lower_index_positive_only() -> None:
    scores = np.array([0.0, 2.0, 5.0, 2.0, 0.0, 1.0], dtype=np.float32)
    assert rank_items(scores, 10).tolist() == [2, 1, 3, 5]
    assert rank_items(scores, 2).tolist() == [2, 1]
    assert rank_items(np.zeros(3, dtype=np.float32), 3).tolist() == []


# --- the merge ---------------------------------------------------------------------------------
def test_round_robin_takes_rank_by_rank_in_list_order() -> None:
    merged = round_robin_merge([[1, 2, 3], [4, 5, 6], [7, 8, 9]], k=7)
    assert merged.item_indices == [1, 4, 7, 2, 5, 8, 3]
    assert merged.scores == [1.0, 1 / 2, 1 / 3, 1 / 4, 1 / 5, 1 / 6, 1 / 7]


def test_round_robin_removes_duplicates() -> None:
    # Round 0: 1, then 1 again (skipped), then 2. Round 1: 2 (skipped), 3, 1 (skipped).
    merged = round_robin_merge([[1, 2, 4], [1, 3, 5], [2, 1, 6]], k=10)
    assert merged.item_indices == [1, 2, 3, 4, 5, 6]


def test_round_robin_honours_exclusions() -> None:
    merged = round_robin_merge([[1, 2, 3], [4, 5, 6]], k=3, exclude={1, 5})
    assert merged.item_indices == [4, 2, 3]
    assert merged.scores == [1.0, 1 / 2, 1 / 3]


def test_k_larger_than_available_returns_all_unique_items() -> None:
    merged = round_robin_merge([[3, 1], [1], [2, 3, 0]], k=10, exclude=np.array([0]))
    assert merged.item_indices == [3, 1, 2]
    assert len(merged.scores) == 3


def test_lists_of_unequal_length_and_numpy_input() -> None:
    merged = round_robin_merge([np.array([9]), np.array([8, 7, 6])], k=4)
    assert merged.item_indices == [9, 8, 7, 6]
    assert all(isinstance(item, int) for item in merged.item_indices)


def test_empty_inputs_and_k_zero() -> None:
    assert round_robin_merge([], k=5).item_indices == []
    assert round_robin_merge([[], []], k=5).item_indices == []
    assert round_robin_merge([[1, 2]], k=0).item_indices == []
    with pytest.raises(ValueError, match="k must be >= 0"):
        round_robin_merge([[1]], k=-1)


def test_scores_strictly_decrease_along_the_merge() -> None:
    merged = round_robin_merge([list(range(50)), list(range(50, 100))], k=100)
    scores = np.array(merged.scores, dtype=np.float32)  # as a Recommendations row holds them
    assert np.all(np.diff(scores) < 0)


# --- grounding metrics -------------------------------------------------------------------------
def test_exact_match_share() -> None:
    generations = ["Red  lipstick", "blue mascara", "Green", "x"]
    documents = ["Red lipstick ", "Blue mascara", None, "x"]
    # 1: equal after whitespace; 2: case differs; 3: no hit; 4: equal.
    assert exact_match_share(generations, documents) == 2 / 4


def test_duplicate_share() -> None:
    assert duplicate_share(["a", "b", "c", "d"]) == 0.0
    assert duplicate_share(["a", "a ", " a", "a"]) == 3 / 4
    assert duplicate_share(["a", "b", "a", "c", "b", "a"]) == 3 / 6


def test_metrics_reject_empty_or_mismatched_input() -> None:
    with pytest.raises(ValueError, match="no generations"):
        duplicate_share([])
    with pytest.raises(ValueError, match="no generations"):
        exact_match_share([], [])
    with pytest.raises(ValueError, match="2 generations but 1 documents"):
        exact_match_share(["a", "b"], ["a"])
