"""Tests of evaluation/ranking.py: the tie rule, exclusion, ranks from top-k lists, the sampled
protocol, and `evaluate_model` on both the score path and the recommend-only path; for single
targets and for the target sets of the per-user hold-out."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
import pytest
import torch

from llmrec.data.catalogue import Catalogue, Item
from llmrec.data.sequences import EvalSet, MultiTargetEvalSet
from llmrec.evaluation.config import EvalConfig
from llmrec.evaluation.ranking import (
    evaluate_model,
    ranks_from_recommendations,
    ranks_from_sampled_negatives,
    ranks_from_scores,
    sample_negatives,
    target_set_ranks,
    target_set_ranks_from_recommendations,
)
from llmrec.models.base import FitResult, ModelConfig, RecommenderModel
from llmrec.recommendations import Exclusions, Histories, Recommendations, top_k


class MatrixConfig(ModelConfig):
    name: Literal["matrix"] = "matrix"


class MatrixScorer(RecommenderModel):
    """Scores item j after a history ending in item i as matrix[i, j]: a fixed transition table."""

    name: ClassVar[str] = "matrix_scorer"
    Config: ClassVar[type[ModelConfig]] = MatrixConfig

    def __init__(self, matrix: np.ndarray) -> None:
        num_items = matrix.shape[1]
        catalogue = Catalogue.from_items(Item(f"item{index}") for index in range(num_items))
        super().__init__(MatrixConfig(), catalogue)
        self.matrix = matrix

    def _fit(self, train, valid, run, user_ids) -> FitResult:
        return FitResult()

    def score(self, histories: Histories, users=None) -> torch.Tensor | None:
        return torch.as_tensor(self.matrix[[int(history[-1]) for history in histories]])

    def _save_state(self, path: Path) -> None:
        raise NotImplementedError("a test double: never saved")

    def _load_state(self, path: Path) -> None:
        raise NotImplementedError("a test double: never loaded")


class MatrixRecommender(MatrixScorer):
    """The same table, but only through `recommend` (like a model that cannot score every item)."""

    name: ClassVar[str] = "matrix_recommender"

    def score(self, histories: Histories, users=None) -> torch.Tensor | None:
        return None

    def recommend(
        self, histories: Histories, k: int, exclude: Exclusions = None, users=None
    ) -> Recommendations:
        return top_k(super().score(histories), k, exclude)


# Rows: the last history item; columns: the five catalogue items.
HAND_MATRIX = np.array(
    [
        [0.0, 0.9, 0.5, 0.5, 0.1],
        [0.3, 0.0, 0.3, 0.8, 0.3],
        [0.2, 0.2, 0.2, 0.2, 0.2],
        [0.1, 0.1, 0.1, 0.1, 0.1],
        [0.1, 0.1, 0.1, 0.1, 0.1],
    ]
)
# user a: row 0, target 2 (0.5): items 1 (0.9) and 3 (0.5, a tie) count -> rank 3.
# user b: row 1, target 0 (0.3): items 2, 4 (ties) and 3 -> rank 4; filter drops 3 -> rank 3.
# user c: row 2 is constant -> rank 5 (= n); filter drops item 2 -> rank 4.
# user d: row 0, target 1 (0.9) -> rank 1; it is in the history, so the filter makes it a miss (6).
HAND_SET = EvalSet(
    user_ids=("a", "b", "c", "d"),
    histories=(np.array([0]), np.array([3, 1]), np.array([2]), np.array([1, 0])),
    targets=np.array([2, 0, 4, 1]),
)
HAND_RANKS = [3, 4, 5, 1]
HAND_RANKS_FILTERED = [3, 3, 4, 6]
QUIET = EvalConfig(ks=(1, 3), bootstrap_resamples=0)
GAIN_2 = 1 / np.log2(3)  # the gain at rank 2


def test_ties_count_against_the_target() -> None:
    scores = torch.tensor([[0.1, 0.9, 0.5, 0.5], [1.0, 1.0, 1.0, 1.0], [0.4, 0.3, 0.2, 0.1]])
    np.testing.assert_array_equal(ranks_from_scores(scores, [2, 0, 0]), [3, 4, 1])
    np.testing.assert_array_equal(ranks_from_scores(scores, [3, 3, 3]), [3, 4, 4])


def test_excluded_items_cannot_outrank_and_an_excluded_target_misses() -> None:
    scores = torch.tensor([[5.0, float("inf"), 1.0, 3.0], [0.0, 1.0, 2.0, 3.0]])
    ranks = ranks_from_scores(scores, [2, 1], exclude=[{0, 1, 3}, [1]])
    np.testing.assert_array_equal(ranks, [1, 5])  # 5 = n + 1: beyond every cut-off


def test_nan_scores_raise_unless_excluded() -> None:
    scores = torch.tensor([[0.1, float("nan"), 0.3]])
    with pytest.raises(ValueError, match="NaN"):
        ranks_from_scores(scores, [0])
    np.testing.assert_array_equal(ranks_from_scores(scores, [0], exclude=[[1]]), [2])


def test_bad_targets_and_exclusions_raise() -> None:
    scores = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="item indices"):
        ranks_from_scores(scores, [0, 3])
    with pytest.raises(ValueError, match="one target per row"):
        ranks_from_scores(scores, [0])
    with pytest.raises(ValueError, match="exclude has 1 rows"):
        ranks_from_scores(scores, [0, 1], exclude=[[0]])


def test_integer_scores_are_ranked_too() -> None:
    scores = torch.tensor([[3, 1, 2]])
    np.testing.assert_array_equal(ranks_from_scores(scores, [2], exclude=[[0]]), [1])


def test_ranks_from_recommendations_by_hand() -> None:
    recommendations = Recommendations(
        item_indices=np.array([[3, 1, 2]] * 5), scores=np.array([[0.9, 0.5, 0.5]] * 5)
    )
    recommendations.scores[4, 0] = -np.inf  # item 3 excluded in the last row
    ranks = ranks_from_recommendations(recommendations, [3, 1, 2, 0, 3])
    # 3 leads; 1 and 2 tie (each counts the other); 0 is not listed; a -inf entry is a miss.
    np.testing.assert_array_equal(ranks, [1, 3, 3, 4, 4])


def test_recommendation_ranks_match_full_ranks_below_the_list_length() -> None:
    rng = np.random.default_rng(3)
    scores = torch.as_tensor(rng.integers(4, size=(80, 25)).astype(np.float32))
    targets = rng.integers(25, size=80)
    list_length = 6
    full = ranks_from_scores(scores, targets)
    listed = ranks_from_recommendations(top_k(scores, list_length), targets)
    exact = full < list_length
    assert exact.any() and (~exact).any()
    np.testing.assert_array_equal(listed[exact], full[exact])
    assert (listed[~exact] >= list_length).all()


def test_sampled_negatives_avoid_history_and_target_and_follow_the_seed() -> None:
    histories = [np.array([0, 1, 2]), np.array([5]), np.array([], dtype=np.int64)]
    targets = np.array([3, 6, 7])
    negatives = sample_negatives(30, histories, targets, num_negatives=10, seed=1)
    assert negatives.shape == (3, 10)
    for row, history in enumerate(histories):
        assert len(set(negatives[row].tolist())) == 10
        assert not set(negatives[row].tolist()) & ({int(targets[row])} | set(history.tolist()))
    np.testing.assert_array_equal(negatives, sample_negatives(30, histories, targets, 10, seed=1))
    assert not np.array_equal(negatives, sample_negatives(30, histories, targets, 10, seed=2))
    with pytest.raises(ValueError, match="fewer than num_negatives=27"):
        sample_negatives(30, histories, targets, num_negatives=27, seed=1)


def test_sampled_ranks_use_the_same_tie_rule() -> None:
    scores = torch.tensor([[0.5, 0.5, 0.9, 0.1, 0.5], [0.1, 0.2, 0.3, 0.4, 0.5]])
    negatives = np.array([[1, 3], [2, 3]])
    ranks = ranks_from_sampled_negatives(scores, [0, 4], negatives)
    np.testing.assert_array_equal(ranks, [2, 1])  # item 1 ties with target 0
    excluded = ranks_from_sampled_negatives(scores, [0, 4], negatives, exclude=[[0], []])
    np.testing.assert_array_equal(excluded, [4, 1])  # excluded target: 1 + 2 candidates + 1


@pytest.mark.parametrize("model_class", [MatrixScorer, MatrixRecommender])
def test_evaluate_model_by_hand(model_class: type[MatrixScorer]) -> None:
    result = evaluate_model(model_class(HAND_MATRIX), HAND_SET, QUIET, show_progress=False)
    np.testing.assert_array_equal(result.ranks, HAND_RANKS)
    expected = {
        "recall@1": 0.25,
        "recall@3": 0.5,
        "ndcg@1": 0.25,
        "ndcg@3": (0.5 + 1.0) / 4,
        "mrr@1": 0.25,
        "mrr@3": (1 / 3 + 1.0) / 4,
    }
    assert result.metrics == pytest.approx(expected, abs=1e-12)
    assert result.user_ids == ("a", "b", "c", "d")
    is_scorer = model_class is MatrixScorer
    assert result.protocol["ranked_by"] == ("score" if is_scorer else "recommend")
    assert result.protocol["rank_cutoff"] == (None if is_scorer else 3)


@pytest.mark.parametrize("model_class", [MatrixScorer, MatrixRecommender])
def test_history_filter_is_off_by_default_and_applied_when_on(
    model_class: type[MatrixScorer],
) -> None:
    config = QUIET.model_copy(update={"filter_history": True})
    result = evaluate_model(model_class(HAND_MATRIX), HAND_SET, config, show_progress=False)
    expected_ranks = np.array(HAND_RANKS_FILTERED)
    if model_class is MatrixRecommender:
        expected_ranks = np.minimum(expected_ranks, 5)  # top-4 lists: 4 = ">= 4", 5 = "absent"
    np.testing.assert_array_equal(result.ranks, expected_ranks)
    assert result.metrics["recall@1"] == 0.0
    assert result.metrics["mrr@3"] == pytest.approx((1 / 3 + 1 / 3) / 4)
    assert result.protocol["filter_history"] is True
    assert EvalConfig().filter_history is False


def test_score_and_recommend_paths_agree_on_random_data() -> None:
    rng = np.random.default_rng(11)
    num_items, num_users = 30, 50
    matrix = rng.integers(4, size=(num_items, num_items)).astype(np.float32)
    histories = tuple(rng.integers(num_items, size=rng.integers(1, 6)) for _ in range(num_users))
    eval_set = EvalSet(tuple(map(str, range(num_users))), histories, rng.integers(30, size=50))
    for filter_history in (False, True):
        config = EvalConfig(ks=(1, 5, 10), filter_history=filter_history, bootstrap_resamples=0)
        scored = evaluate_model(MatrixScorer(matrix), eval_set, config, 7, show_progress=False)
        listed = evaluate_model(MatrixRecommender(matrix), eval_set, config, 7, False)
        for key, value in scored.metrics.items():
            assert listed.metrics[key] == pytest.approx(value, abs=1e-12), key


def test_batch_size_does_not_change_results() -> None:
    model = MatrixScorer(HAND_MATRIX)
    config = EvalConfig(ks=(1, 3), bootstrap_resamples=50)
    one = evaluate_model(model, HAND_SET, config, batch_size=1, show_progress=False)
    all_rows = evaluate_model(model, HAND_SET, config, batch_size=100, show_progress=False)
    np.testing.assert_array_equal(one.ranks, all_rows.ranks)
    assert one.ci == all_rows.ci


def test_users_stream_through_the_model_one_batch_at_a_time() -> None:
    """No users x items scores exist beyond one batch: the model scores `batch_size` users per
    call, every user once (docs/training.md, "Streaming batches")."""
    calls: list[int] = []

    class Recording(MatrixScorer):
        def score(self, histories: Histories, users=None) -> torch.Tensor | None:
            calls.append(len(histories))
            return super().score(histories, users)

    config = EvalConfig(ks=(1, 3), bootstrap_resamples=0)
    evaluate_model(Recording(HAND_MATRIX), HAND_SET, config, batch_size=2, show_progress=False)
    assert max(calls) == 2 and sum(calls) == len(HAND_SET)


def test_progress_bar_goes_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    evaluate_model(MatrixScorer(HAND_MATRIX), HAND_SET, QUIET, batch_size=2, show_progress=True)
    assert "evaluate" in capsys.readouterr().err


def test_protocol_records_the_evaluation() -> None:
    config = EvalConfig(ks=(1, 3), seed=4, bootstrap_resamples=20)
    result = evaluate_model(
        MatrixScorer(HAND_MATRIX), HAND_SET, config, show_progress=False, split="test"
    )
    protocol = result.protocol
    assert protocol["protocol"] == "full" and protocol["num_negatives"] is None
    assert (protocol["num_items"], protocol["num_users"]) == (5, 4)
    assert (protocol["split"], protocol["seed"], protocol["model"]) == ("test", 4, "matrix_scorer")
    assert set(result.ci) == set(result.metrics)


def test_sampled_protocol_is_labelled_and_deterministic() -> None:
    rng = np.random.default_rng(5)
    matrix = rng.normal(size=(40, 40))
    histories = tuple(rng.integers(40, size=3) for _ in range(20))
    eval_set = EvalSet(tuple(map(str, range(20))), histories, rng.integers(40, size=20))
    config = EvalConfig(ks=(1, 5), protocol="sampled", num_negatives=10, bootstrap_resamples=0)
    first = evaluate_model(MatrixScorer(matrix), eval_set, config, 3, show_progress=False)
    again = evaluate_model(MatrixScorer(matrix), eval_set, config, 8, show_progress=False)
    assert first.protocol["protocol"] == "sampled" and first.protocol["num_negatives"] == 10
    np.testing.assert_array_equal(first.ranks, again.ranks)
    assert first.ranks.min() >= 1 and first.ranks.max() <= 11
    other_seed = config.model_copy(update={"seed": 1})
    reseeded = evaluate_model(MatrixScorer(matrix), eval_set, other_seed, show_progress=False)
    assert not np.array_equal(first.ranks, reseeded.ranks)
    full = evaluate_model(MatrixScorer(matrix), eval_set, QUIET, show_progress=False)
    assert (first.ranks <= full.ranks).all()  # fewer candidates can only raise the target


def test_sampled_protocol_needs_scores() -> None:
    config = EvalConfig(protocol="sampled", num_negatives=2, bootstrap_resamples=0)
    with pytest.raises(ValueError, match="sampled protocol needs scores"):
        evaluate_model(MatrixRecommender(HAND_MATRIX), HAND_SET, config, show_progress=False)


def test_empty_eval_set_raises() -> None:
    empty = EvalSet((), (), np.array([], dtype=np.int64))
    with pytest.raises(ValueError, match="empty"):
        evaluate_model(MatrixScorer(HAND_MATRIX), empty, QUIET, show_progress=False)


def test_user_sample_is_seeded_recorded_and_shared_across_models() -> None:
    rng = np.random.default_rng(0)
    matrix = rng.random((6, 6))
    histories = tuple(np.array([i % 6]) for i in range(30))
    eval_set = EvalSet(tuple(f"u{i}" for i in range(30)), histories, np.arange(30) % 6)
    config = EvalConfig(sample_users=10, seed=3, bootstrap_resamples=0)
    first = evaluate_model(MatrixScorer(matrix), eval_set, config, show_progress=False)
    second = evaluate_model(MatrixRecommender(matrix), eval_set, config, show_progress=False)
    assert len(first.user_ids) == 10 and first.user_ids == second.user_ids
    assert first.protocol["user_sample"] == "10 of 30 users (seed 3)"
    assert "10 of 30 users (seed 3)" in first.format_table()
    assert (
        "user_sample"
        not in evaluate_model(MatrixScorer(matrix), eval_set, show_progress=False).protocol
    )


# --- target sets (the per-user hold-out) -------------------------------------------------------

# The same table. user a: row 0, targets 2 and 3 tie at 0.5 behind item 1 -> ranks 2, 3.
# user b: row 1, history {1, 3} excluded; targets 0 and 4 tie at 0.3 with item 2 -> ranks 2, 3.
# user c: row 2 is constant, history {2} excluded; target 0 ties with 1, 3, 4 -> rank 4.
# user d: row 0, history {0, 1} excluded; target 4 (0.1) behind items 2 and 3 -> rank 3.
HAND_TARGET_SETS = MultiTargetEvalSet(
    user_ids=("a", "b", "c", "d"),
    histories=(np.array([0]), np.array([3, 1]), np.array([2]), np.array([1, 0])),
    targets=(np.array([2, 3]), np.array([0, 4]), np.array([0]), np.array([4])),
)
HAND_SET_RANKS = [[2, 3], [2, 3], [4, 0], [3, 0]]


def test_target_set_ranks_by_hand() -> None:
    scores = torch.as_tensor(HAND_MATRIX[[0, 1, 2, 0]])
    ranks = target_set_ranks(scores, HAND_TARGET_SETS.targets, HAND_TARGET_SETS.histories)
    np.testing.assert_array_equal(ranks, HAND_SET_RANKS)
    assert ranks.dtype == np.int64
    unfiltered = target_set_ranks(scores, HAND_TARGET_SETS.targets)
    np.testing.assert_array_equal(unfiltered[1], [3, 4])  # item 3 (0.8) is not excluded
    # Ties count against the targets: a constant scorer puts every target last.
    constant = target_set_ranks(torch.zeros(2, 6), [np.array([0, 5]), np.array([3])])
    np.testing.assert_array_equal(constant, [[5, 6], [6, 0]])


def test_target_set_ranks_make_excluded_targets_misses() -> None:
    ranks = target_set_ranks(torch.tensor([[0.9, 0.5, 0.1]]), [np.array([0, 2])], [[0]])
    np.testing.assert_array_equal(ranks, [[2, 4]])  # target 0 excluded: n + 1
    with pytest.raises(ValueError, match="NaN"):
        target_set_ranks(torch.tensor([[np.nan, 0.5]]), [np.array([1])])
    with pytest.raises(ValueError, match="item indices"):
        target_set_ranks(torch.zeros(1, 3), [np.array([3])])


def test_target_set_ranks_from_lists_are_exact_up_to_list_length_minus_set_size() -> None:
    rng = np.random.default_rng(4)
    scores = torch.as_tensor(rng.integers(5, size=(40, 25)).astype(np.float64))  # many ties
    targets = [
        np.sort(rng.choice(25, size=int(rng.integers(1, 4)), replace=False)) for _ in range(40)
    ]
    full = target_set_ranks(scores, targets)
    listed = target_set_ranks_from_recommendations(top_k(scores, 8), targets)
    assert listed.shape == full.shape
    cutoff = 8 - 3  # list length - the largest target set
    exact = full <= cutoff
    np.testing.assert_array_equal(listed[exact], full[exact])
    assert (listed[(full > cutoff) & (full > 0)] > cutoff).all()  # misses stay misses
    # With the list of one row alone: two targets tie with unlisted items at the last score.
    tied = torch.tensor([[0.9, 0.5, 0.5, 0.5, 0.5]])
    lists = top_k(tied, 3)  # items 0, 1, 2
    listed_ranks = target_set_ranks_from_recommendations(lists, [np.array([1, 2])])
    np.testing.assert_array_equal(listed_ranks, [[2, 3]])
    np.testing.assert_array_equal(target_set_ranks(tied, [np.array([1, 2])]), [[4, 5]])
    assert listed_ranks.min() > 3 - 2  # beyond the cut-off L - M = 1: reported as misses


@pytest.mark.parametrize("model_class", [MatrixScorer, MatrixRecommender])
def test_evaluate_model_on_target_sets_by_hand(model_class: type[MatrixScorer]) -> None:
    result = evaluate_model(
        model_class(HAND_MATRIX), HAND_TARGET_SETS, QUIET, show_progress=False, split="h:test"
    )
    np.testing.assert_array_equal(result.ranks, HAND_SET_RANKS)
    two_targets = (GAIN_2 + 0.5) / (1 + GAIN_2)
    expected = {
        "recall@1": 0.0,
        "recall@3": 3 / 4,
        "ndcg@1": 0.0,
        "ndcg@3": (2 * two_targets + 0.5) / 4,
    }
    assert result.metrics == pytest.approx(expected, abs=1e-12)
    protocol = result.protocol
    assert (protocol["targets"], protocol["filter_history"]) == ("set", True)  # always excluded
    assert protocol["rank_cutoff"] is None  # lists of max(ks) + 2 items cover the 5 items
    assert (
        "per-user random hold-out, truncated recall/NDCG, history excluded" in result.format_table()
    )


class HistoryLover(MatrixScorer):
    """Scores its own history items far above everything else."""

    name: ClassVar[str] = "history_lover"

    def score(self, histories: Histories, users=None) -> torch.Tensor | None:
        scores = super().score(histories).clone()
        for row, history in enumerate(histories):
            scores[row, torch.as_tensor(history)] = 100.0
        return scores


class HistoryLoverRecommender(HistoryLover):
    """The same, through `recommend` only; it records the lists it returns."""

    name: ClassVar[str] = "history_lover_recommender"

    def __init__(self, matrix: np.ndarray) -> None:
        super().__init__(matrix)
        self.lists: list[np.ndarray] = []

    def score(self, histories: Histories, users=None) -> torch.Tensor | None:
        return None

    def recommend(
        self, histories: Histories, k: int, exclude: Exclusions = None, users=None
    ) -> Recommendations:
        recommendations = top_k(HistoryLover.score(self, histories), k, exclude)
        self.lists.extend(recommendations.item_indices)
        return recommendations


def test_seen_items_never_reach_the_top_k_of_target_sets() -> None:
    rng = np.random.default_rng(2)
    matrix = rng.normal(size=(40, 40))
    histories = tuple(
        rng.choice(40, size=int(rng.integers(1, 15)), replace=False) for _ in range(25)
    )
    targets = tuple(
        np.sort(rng.choice(np.setdiff1d(np.arange(40), history), size=3, replace=False))
        for history in histories
    )
    eval_set = MultiTargetEvalSet(tuple(map(str, range(25))), histories, targets)
    config = EvalConfig(ks=(5, 10), bootstrap_resamples=0)  # filter_history off: sets ignore it
    lover = evaluate_model(HistoryLover(matrix), eval_set, config, show_progress=False)
    plain = evaluate_model(MatrixScorer(matrix), eval_set, config, show_progress=False)
    np.testing.assert_array_equal(lover.ranks, plain.ranks)
    assert (lover.ranks <= 40 - np.array([len(h) for h in histories])[:, None]).all()
    assert lover.metrics["recall@10"] > 0
    recommender = HistoryLoverRecommender(matrix)
    listed = evaluate_model(recommender, eval_set, config, show_progress=False)
    assert listed.metrics == pytest.approx(lover.metrics, abs=1e-12)
    assert len(recommender.lists) == 25
    for history, top in zip(histories, recommender.lists, strict=True):
        assert not set(top.tolist()) & set(history.tolist())


def test_target_set_results_do_not_depend_on_the_batch_size_or_allow_sampling() -> None:
    model = MatrixScorer(HAND_MATRIX)
    config = EvalConfig(ks=(1, 3), bootstrap_resamples=50, sample_users=3)
    one = evaluate_model(model, HAND_TARGET_SETS, config, batch_size=1, show_progress=False)
    all_rows = evaluate_model(model, HAND_TARGET_SETS, config, batch_size=10, show_progress=False)
    np.testing.assert_array_equal(one.ranks, all_rows.ranks)
    assert one.ci == all_rows.ci and len(one.user_ids) == 3
    sampled = EvalConfig(protocol="sampled", num_negatives=2, bootstrap_resamples=0)
    with pytest.raises(ValueError, match="target sets"):
        evaluate_model(model, HAND_TARGET_SETS, sampled, show_progress=False)
