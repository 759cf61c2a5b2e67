"""Tests of evaluation/slices.py: the head by hand, slices by hand for one target and for target
sets, agreement with evaluating each slice's users alone, and the report's table and plot."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from llmrec.data.sequences import EvalSet, MultiTargetEvalSet
from llmrec.evaluation.config import EvalConfig
from llmrec.evaluation.ranking import evaluate_model
from llmrec.evaluation.report import write_report
from llmrec.evaluation.result import EvalResult, build_protocol
from llmrec.evaluation.slices import SliceBasis, slice_metrics
from llmrec.models.pop import PopConfig, Popularity


def protocol(ks: tuple[int, ...], resamples: int = 0) -> dict:
    config = EvalConfig(ks=ks, bootstrap_resamples=resamples)
    return build_protocol(config, 6, 4, "test", "fake", "score", None)


@pytest.mark.parametrize(
    ("counts", "head"),
    [
        ([5, 3, 1, 1, 0], [0]),  # item 0 alone holds 5 of 10: half
        ([3, 3, 3, 1], [0, 1, 2]),  # 3 + 3 pass half; the third 3 is as popular: head too
        ([1, 0, 4, 2], [2]),
        ([0, 0], []),
    ],
)
def test_head_items_hold_the_first_half_of_training_interactions(counts, head) -> None:
    basis = SliceBasis(np.asarray(counts))
    assert np.flatnonzero(basis.head_items()).tolist() == head


def test_basis_counts_training_items_and_describes_the_head() -> None:
    basis = SliceBasis.from_sequences([np.array([0, 0, 1]), np.array([0, 2])], num_items=4)
    assert basis.item_counts.tolist() == [3, 1, 1, 0]
    assert basis.describe() == {
        "train_interactions": 5,
        "head_items": 1,
        "head_share": 0.6,
        "head_min_count": 3,
        "cold_items": 1,
    }


def test_next_item_slices_by_hand() -> None:
    basis = SliceBasis(np.array([5, 3, 1, 1, 0, 0]))  # head {0}, cold {4, 5}
    histories = [np.zeros(2), np.zeros(5), np.zeros(9), np.zeros(12)]
    targets = np.array([0, 3, 4, 0])
    ranks = np.array([1, 3, 7, 2])
    slices = slice_metrics(basis, histories, targets, ranks, protocol((1, 5)))
    assert {name: part.num_users for name, part in slices.items()} == {
        "target head": 2,
        "target tail": 2,
        "target cold": 1,
        "history 1-3": 1,
        "history 4-7": 1,
        "history 8+": 2,
    }
    assert slices["target head"].metrics["recall@1"] == 0.5  # ranks 1 and 2
    assert slices["target tail"].metrics["recall@5"] == 0.5  # ranks 3 and 7
    assert slices["target cold"].metrics["recall@5"] == 0.0  # rank 7
    assert slices["history 8+"].metrics["mrr@5"] == 0.25  # ranks 7 and 2


def test_target_set_slices_score_only_the_slice_targets() -> None:
    basis = SliceBasis(np.array([5, 3, 1, 1, 0, 0]))  # head {0}
    targets = (np.array([0, 3]), np.array([2, 4, 5]))
    ranks = np.array([[9, 1, 0], [2, 4, 8]])  # aligned: item 0 at rank 9, item 3 at rank 1, ...
    slices = slice_metrics(basis, [np.zeros(1)] * 2, targets, ranks, protocol((1,)))
    head, tail = slices["target head"], slices["target tail"]
    assert head.num_users == 1 and head.metrics["recall@1"] == 0.0  # user 0's item 0: rank 9
    assert tail.num_users == 2 and tail.metrics["recall@1"] == 0.5  # user 0's item 3: rank 1
    assert slices["target cold"].num_users == 1  # user 1's items 4 and 5


def test_each_slice_equals_evaluating_its_users_alone(toy_dataset) -> None:
    model = Popularity(PopConfig(), toy_dataset.catalogue)
    model.fit(toy_dataset.train)
    basis = SliceBasis.from_sequences(toy_dataset.train, toy_dataset.num_items)
    config = EvalConfig(ks=(1, 5), bootstrap_resamples=50)
    result = evaluate_model(model, toy_dataset.test, config, show_progress=False, slice_basis=basis)
    head = basis.head_items()[toy_dataset.test.targets]
    alone = evaluate_model(
        model, toy_dataset.test.subset(np.flatnonzero(head)), config, show_progress=False
    )
    assert result.slices["target head"].metrics == alone.metrics
    assert result.slices["target head"].num_users == int(head.sum()) > 0
    assert set(result.slices["target head"].ci) == set(alone.metrics)
    assert result.protocol["slice_basis"] == basis.describe()
    without = evaluate_model(model, toy_dataset.test, config, show_progress=False)
    assert without.slices == {} and without.metrics == result.metrics


class FixedScores(Popularity):
    """Scores every history with the same given vector."""

    def __init__(self, scores: list[float], catalogue) -> None:
        super().__init__(PopConfig(), catalogue)
        self.counts = torch.tensor(scores)


def test_target_set_ranks_stay_sorted_and_slices_use_the_slice_targets(toy_dataset) -> None:
    scores = [float(12 - item) for item in range(12)]  # item 0 first, item 11 last
    model = FixedScores(scores, toy_dataset.catalogue)
    eval_set = MultiTargetEvalSet(
        ("a", "b"), (np.array([9]), np.array([8])), (np.array([1, 6]), np.array([0, 7]))
    )
    basis = SliceBasis(np.array([0, 9, 0, 0, 0, 0, 9, 0, 0, 0, 0, 0]))  # head {1, 6}
    config = EvalConfig(ks=(2,), bootstrap_resamples=0)
    result = evaluate_model(model, eval_set, config, show_progress=False, slice_basis=basis)
    assert result.ranks.tolist() == [[2, 7], [1, 8]]  # each row ascending (history excluded)
    head, cold = result.slices["target head"], result.slices["target cold"]
    assert head.num_users == 1 and head.metrics["recall@2"] == 0.5  # a: item 1 in, 6 out
    assert cold.num_users == 1 and cold.metrics["recall@2"] == 0.5  # b: item 0 in, 7 out


def test_slices_round_trip_and_are_reported(tmp_path: Path, toy_dataset) -> None:
    model = Popularity(PopConfig(), toy_dataset.catalogue)
    model.fit(toy_dataset.train)
    basis = SliceBasis.from_sequences(toy_dataset.train, toy_dataset.num_items)
    config = EvalConfig(ks=(1, 10), bootstrap_resamples=20)
    result = evaluate_model(model, toy_dataset.test, config, show_progress=False, slice_basis=basis)
    files = write_report(tmp_path, {"test": result})
    record = json.loads(files.metrics.read_text())["test"]
    assert record["slices"]["target head"]["users"] == result.slices["target head"].num_users
    assert EvalResult.load(tmp_path / "test").slices == result.slices
    report = files.report.read_text()
    assert "## Metrics by slice" in report and "| target cold |" in report
    assert "recall@10 [95% CI]" in report and "![metrics by slice, test](slices.png)" in report
    assert files.slices == tmp_path / "slices.png" and files.slices.stat().st_size > 0
    empty = EvalSet(("u",), (np.array([0]),), np.array([1]))
    plain = evaluate_model(model, empty, config, show_progress=False)
    assert write_report(tmp_path / "plain", {"test": plain}).slices is None
