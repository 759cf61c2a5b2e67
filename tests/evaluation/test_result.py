"""Tests of evaluation/result.py: summarising ranks, JSON round trip, the table and comparisons."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from llmrec.errors import DataError
from llmrec.evaluation.config import EvalConfig
from llmrec.evaluation.result import (
    EvalResult,
    align_users,
    build_protocol,
    compare_results,
    eval_set_fingerprint,
)

RANKS = np.array([1, 2, 3, 5, 11, 21])
USER_IDS = ("u1", "u2", "u3", "u4", "u5", "u6")


def make_result(
    ranks: np.ndarray = RANKS, config: EvalConfig | None = None, **changes: object
) -> EvalResult:
    config = config or EvalConfig(ks=(1, 10), bootstrap_resamples=200)
    protocol = build_protocol(
        config,
        num_items=30,
        num_users=len(ranks),
        split="test",
        model_name="fake",
        ranked_by="score",
        rank_cutoff=None,
    )
    protocol.update(changes)
    return EvalResult.from_ranks(ranks, tuple(f"u{row + 1}" for row in range(len(ranks))), protocol)


def test_from_ranks_computes_metrics_and_intervals() -> None:
    result = make_result()
    assert result.metrics["recall@10"] == pytest.approx(4 / 6)
    assert result.metrics["mrr@1"] == pytest.approx(1 / 6)
    assert set(result.ci) == set(result.metrics)
    for key, interval in result.ci.items():
        assert interval.low <= result.metrics[key] <= interval.high
    assert result.ranks.dtype == np.int64 and result.user_ids == USER_IDS


def test_from_ranks_honours_the_rank_cutoff() -> None:
    with pytest.raises(ValueError, match="K=10"):
        make_result(rank_cutoff=5)


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    result = make_result()
    result.save(tmp_path)
    lines = (tmp_path / "ranks.jsonl").read_text(encoding="utf-8").splitlines()
    assert json.loads(lines[1]) == {"user_id": "u2", "rank": 2}
    record = json.loads((tmp_path / "metrics.json").read_text(encoding="utf-8"))
    assert record["protocol"]["filter_history"] is False
    assert record["ci"]["ndcg@10"]["low"] == result.ci["ndcg@10"].low
    loaded = EvalResult.load(tmp_path)
    assert (loaded.metrics, loaded.ci, loaded.protocol) == (
        result.metrics,
        result.ci,
        result.protocol,
    )
    np.testing.assert_array_equal(loaded.ranks, result.ranks)
    assert loaded.user_ids == result.user_ids


def test_table_shows_values_intervals_and_the_protocol() -> None:
    result = make_result()
    table = result.format_table()
    interval = result.ci["recall@10"]
    row = f"| recall@10 | 0.6667 | {interval.low:.4f} - {interval.high:.4f} |"
    assert row in table.splitlines()
    assert "| metric | value | 95% CI |" in table
    assert "full ranking over 30 items; history filter off; split test" in table
    filtered = make_result(config=EvalConfig(ks=(1,), filter_history=True))
    assert "history filter on" in filtered.format_table()


def test_table_labels_the_sampled_protocol_and_missing_intervals() -> None:
    config = EvalConfig(ks=(1,), protocol="sampled", num_negatives=100, bootstrap_resamples=0)
    table = make_result(config=config).format_table()
    assert "SAMPLED ranking (target + 100 uniform negatives per user" in table
    assert "| recall@1 | 0.1667 | n/a |" in table
    assert "history filter off" in table


def test_compare_results_pairs_users_and_checks_the_protocol() -> None:
    rng = np.random.default_rng(0)
    good = make_result(rng.integers(1, 3, size=400))
    bad = make_result(rng.integers(5, 40, size=400))
    better = compare_results(good, bad, "recall@1", num_resamples=500)
    assert better.mean_difference > 0 and better.p_value < 0.01
    same = compare_results(good, good, "ndcg@10", num_resamples=500)
    assert same.p_value == 1.0
    with pytest.raises(DataError, match="filter_history"):
        compare_results(good, make_result(good.ranks, filter_history=True), "recall@1")
    with pytest.raises(DataError, match="same users"):
        compare_results(good, make_result(good.ranks[:10]), "recall@1")


def test_users_are_paired_by_id_not_by_position() -> None:
    rng = np.random.default_rng(3)
    ranks_a, ranks_b = rng.integers(1, 5, size=60), rng.integers(3, 30, size=60)
    result_a, result_b = make_result(ranks_a), make_result(ranks_b)
    order = rng.permutation(60)  # B's rows shuffled, each still under its own user id
    shuffled = EvalResult.from_ranks(
        ranks_b[order], tuple(result_b.user_ids[row] for row in order), result_b.protocol
    )
    expected = compare_results(result_a, result_b, "ndcg@10", num_resamples=300)
    assert compare_results(result_a, shuffled, "ndcg@10", num_resamples=300) == expected
    np.testing.assert_array_equal(
        align_users(result_b.user_ids, shuffled.user_ids)[:3],
        [int(np.flatnonzero(order == row)[0]) for row in range(3)],
    )


def test_different_or_repeated_users_are_refused_by_name() -> None:
    with pytest.raises(
        DataError, match=r"1 only in A \(e.g. \['u3'\]\), 1 only in B \(e.g. \['x'\]\)"
    ):
        align_users(("u1", "u2", "u3"), ("u2", "x", "u1"))
    with pytest.raises(DataError, match=r"result B holds a user more than once \(e.g. \['u1'\]\)"):
        align_users(("u1", "u2"), ("u1", "u1"))


def test_results_are_paired_by_the_evaluation_set_not_by_the_split_label() -> None:
    rng = np.random.default_rng(2)
    ranks = rng.integers(1, 20, size=50)
    plain = make_result(ranks, split="leave_one_out:test", eval_set_sha256="abc")
    refit = make_result(
        ranks,
        split="leave_one_out:test (model refit on train + valid items for 3 epochs)",
        eval_set_sha256="abc",
    )
    assert compare_results(plain, refit, "ndcg@10", num_resamples=10).mean_difference == 0.0
    other = make_result(ranks, split="leave_one_out:test", eval_set_sha256="def")
    with pytest.raises(DataError, match="different evaluation sets"):
        compare_results(plain, other, "ndcg@10")
    older = make_result(ranks, split="leave_one_out:valid")  # saved before fingerprints
    with pytest.raises(DataError, match="'split'"):
        compare_results(make_result(ranks, split="leave_one_out:test"), older, "ndcg@10")


def test_the_fingerprint_covers_users_histories_targets_and_the_catalogue(toy_dataset) -> None:
    from llmrec.data.catalogue import Catalogue

    test, catalogue = toy_dataset.test, toy_dataset.catalogue
    fingerprint = eval_set_fingerprint(test, catalogue)
    assert fingerprint == eval_set_fingerprint(test.subset(range(len(test))), catalogue)
    changed_history = (test.histories[0][:-1], *test.histories[1:])
    changed = [
        type(test)(test.user_ids, changed_history, test.targets),
        type(test)(test.user_ids, test.histories, (test.targets + 1) % toy_dataset.num_items),
        type(test)(("x", *test.user_ids[1:]), test.histories, test.targets),
    ]
    for other in changed:
        assert eval_set_fingerprint(other, catalogue) != fingerprint
    renamed = Catalogue.from_items([*catalogue.items[1:], catalogue.items[0]])
    assert eval_set_fingerprint(test, renamed) != fingerprint


def test_a_metric_the_results_lack_names_the_metrics_they_have() -> None:
    result = make_result()
    with pytest.raises(DataError, match=r"'ndcg@20' is not in both results; they have recall@1"):
        compare_results(result, result, "ndcg@20")


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({}, r"metrics\.json: not found"),
        ({"metrics.json": "{", "ranks.jsonl": ""}, r"metrics\.json: not JSON"),
        ({"metrics.json": "[]", "ranks.jsonl": ""}, "not a saved evaluation result"),
        ({"metrics.json": "{}", "ranks.jsonl": "\n{nope\n"}, r"ranks\.jsonl, line 2: not JSON"),
    ],
)
def test_loading_a_damaged_result_names_the_file(
    tmp_path: Path, files: dict[str, str], message: str
) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    with pytest.raises(DataError, match=message):
        EvalResult.load(tmp_path)


# --- target sets (the per-user hold-out) -------------------------------------------------------

SET_RANKS = np.array([[1, 4, 0], [2, 0, 0], [3, 7, 30], [40, 0, 0]])


def make_set_result(ranks: np.ndarray = SET_RANKS, **changes: object) -> EvalResult:
    protocol = build_protocol(
        EvalConfig(ks=(2, 20), bootstrap_resamples=200),
        num_items=50,
        num_users=len(ranks),
        split="holdout(0.8/0.1/0.1, seed 0, test history train):test",
        model_name="fake",
        ranked_by="score",
        rank_cutoff=None,
        targets="set",
    )
    protocol.update(changes)
    return EvalResult.from_ranks(ranks, tuple(f"u{row + 1}" for row in range(len(ranks))), protocol)


def test_target_set_results_round_trip_and_state_their_protocol(tmp_path: Path) -> None:
    result = make_set_result()
    assert list(result.metrics) == ["recall@2", "recall@20", "ndcg@2", "ndcg@20"]
    assert result.metrics["recall@2"] == pytest.approx((1 / 2 + 1 + 0 + 0) / 4)
    assert result.protocol["filter_history"] is True and result.protocol["targets"] == "set"
    result.save(tmp_path)
    lines = (tmp_path / "ranks.jsonl").read_text(encoding="utf-8").splitlines()
    assert json.loads(lines[0]) == {"user_id": "u1", "ranks": [1, 4]}  # no padding written
    loaded = EvalResult.load(tmp_path)
    np.testing.assert_array_equal(loaded.ranks, SET_RANKS)
    assert (loaded.metrics, loaded.ci, loaded.protocol) == (
        result.metrics,
        result.ci,
        result.protocol,
    )
    assert loaded.per_user_metrics()["ndcg@20"] == pytest.approx(
        result.per_user_metrics()["ndcg@20"]
    )
    table = result.format_table()
    assert (
        "Protocol: per-user random hold-out, truncated recall/NDCG, history excluded; full "
        "ranking over 50 items; split holdout(0.8/0.1/0.1, seed 0, test history train):test;"
    ) in table
    assert "history filter" not in table


def test_compare_results_pairs_target_set_results() -> None:
    rng = np.random.default_rng(1)
    good = make_set_result(rng.integers(1, 3, size=(300, 2)))
    bad = make_set_result(rng.integers(10, 40, size=(300, 2)))
    better = compare_results(good, bad, "recall@2", num_resamples=500)
    assert better.mean_difference > 0 and better.p_value < 0.01
    next_item = make_result(rng.integers(1, 3, size=300))
    next_item = EvalResult(
        next_item.metrics, next_item.ci, next_item.ranks, good.user_ids, next_item.protocol
    )
    with pytest.raises(DataError, match="targets"):
        compare_results(good, next_item, "recall@2")
    older = {key: value for key, value in next_item.protocol.items() if key != "targets"}
    saved_before_sets = EvalResult(next_item.metrics, {}, next_item.ranks, good.user_ids, older)
    same = compare_results(next_item, saved_before_sets, "recall@1", num_resamples=10)
    assert (same.mean_difference, same.p_value) == (0.0, 1.0)  # no "targets" key: still paired
