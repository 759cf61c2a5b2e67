"""Tests for data/sequences.py: the multi-target evaluation set of the per-user hold-out."""

from __future__ import annotations

import numpy as np
import pytest

from llmrec.data.sequences import MultiTargetEvalSet


def _eval_set() -> MultiTargetEvalSet:
    return MultiTargetEvalSet(
        ("a", "b", "c"),
        (np.array([0, 1]), np.array([2]), np.array([], dtype=np.int64)),
        (np.array([3, 4]), np.array([5]), np.array([0, 6, 7])),
    )


def test_multi_target_eval_set_has_the_eval_set_surface() -> None:
    eval_set = _eval_set()
    assert len(eval_set) == 3
    subset = eval_set.subset([2, 0])
    assert isinstance(subset, MultiTargetEvalSet)
    assert subset.user_ids == ("c", "a")
    assert [t.tolist() for t in subset.targets] == [[0, 6, 7], [3, 4]]
    assert [h.tolist() for h in subset.histories] == [[], [0, 1]]


def test_multi_target_eval_set_checks_lengths_and_empty_targets() -> None:
    with pytest.raises(ValueError, match="same length"):
        MultiTargetEvalSet(("a",), (np.array([0]),), ())
    with pytest.raises(ValueError, match="at least one target"):
        MultiTargetEvalSet(("a",), (np.array([0]),), (np.array([], dtype=np.int64),))
