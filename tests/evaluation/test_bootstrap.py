"""Tests of evaluation/bootstrap.py: interval behaviour, agreement with a naive bootstrap, and the
paired test on clearly different, identical and exactly enumerable cases."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from llmrec.evaluation.bootstrap import (
    bootstrap_ci,
    bootstrap_cis,
    bootstrap_means,
    paired_test,
    sign_flip_p_value,
)


def test_interval_contains_the_mean_and_shrinks_with_more_users() -> None:
    rng = np.random.default_rng(0)
    small = rng.binomial(1, 0.3, size=100).astype(np.float64)
    large = rng.binomial(1, 0.3, size=10_000).astype(np.float64)
    small_interval = bootstrap_ci(small)
    large_interval = bootstrap_ci(large)
    assert small_interval.low <= small.mean() <= small_interval.high
    assert large_interval.low <= large.mean() <= large_interval.high
    small_width = small_interval.high - small_interval.low
    large_width = large_interval.high - large_interval.low
    assert large_width < small_width / 5  # width ~ 1 / sqrt(n): 10x narrower here


def test_interval_follows_the_seed_and_the_confidence() -> None:
    values = np.random.default_rng(1).random(300)
    assert bootstrap_ci(values, seed=3) == bootstrap_ci(values, seed=3)
    assert bootstrap_ci(values, seed=3) != bootstrap_ci(values, seed=4)
    narrow = bootstrap_ci(values, confidence=0.5)
    wide = bootstrap_ci(values, confidence=0.99)
    assert wide.low < narrow.low < narrow.high < wide.high


def test_constant_values_give_a_point_interval() -> None:
    interval = bootstrap_ci(np.full(50, 0.25), num_resamples=200)
    assert (interval.low, interval.high) == pytest.approx((0.25, 0.25), abs=1e-15)


def test_bootstrap_means_match_naive_resampling() -> None:
    values = np.random.default_rng(2).random((7, 2))
    rng = np.random.default_rng(9)
    draws = rng.integers(7, size=(5, 7), dtype=np.int32)
    naive = values[draws].mean(axis=1)  # (5, 2)
    np.testing.assert_allclose(bootstrap_means(values, 5, seed=9), naive, atol=1e-12)


def test_all_metrics_share_the_resampled_users() -> None:
    rng = np.random.default_rng(4)
    first, second = rng.random(200), rng.random(200)
    intervals = bootstrap_cis({"a": first, "b": second}, num_resamples=300, seed=6)
    assert intervals["b"] == bootstrap_ci(second, num_resamples=300, seed=6)


def test_resamples_are_drawn_in_chunks_that_add_up(monkeypatch) -> None:
    """Memory is bounded by drawing CHUNK_ELEMENTS indices at a time: here 2, 2 and 1 resamples."""
    import llmrec.evaluation.bootstrap as bootstrap

    monkeypatch.setattr(bootstrap, "CHUNK_ELEMENTS", 14)
    values = np.random.default_rng(2).random((7, 2))
    rng = np.random.default_rng(9)
    draws = np.concatenate([rng.integers(7, size=(size, 7), dtype=np.int32) for size in (2, 2, 1)])
    np.testing.assert_allclose(bootstrap_means(values, 5, seed=9), values[draws].mean(axis=1))


def test_paired_test_finds_a_clearly_better_model() -> None:
    rng = np.random.default_rng(8)
    better = rng.binomial(1, 0.6, size=2000).astype(np.float64)
    worse = rng.binomial(1, 0.3, size=2000).astype(np.float64)
    result = paired_test(better, worse, num_resamples=2000)
    assert result.mean_difference == pytest.approx(better.mean() - worse.mean())
    assert 0 < result.ci_low < result.mean_difference < result.ci_high
    assert result.p_value == pytest.approx(1 / 2001)  # no flipped mean comes close


def test_paired_test_of_identical_models_finds_nothing() -> None:
    values = np.random.default_rng(9).random(500)
    result = paired_test(values, values.copy(), num_resamples=500)
    assert (result.mean_difference, result.ci_low, result.ci_high) == (0.0, 0.0, 0.0)
    assert result.p_value == 1.0


def test_sign_flip_p_value_matches_exact_enumeration() -> None:
    differences = np.array([0.5, 1.0, -0.25, 0.75, 0.1, 0.3])
    observed = abs(differences.mean())
    flipped = [
        abs((np.array(signs) * differences).mean())
        for signs in itertools.product((-1.0, 1.0), repeat=len(differences))
    ]
    exact = np.mean([value >= observed - 1e-12 for value in flipped])  # 6 of 64
    estimate = sign_flip_p_value(differences, num_resamples=20_000, seed=1)
    assert estimate == pytest.approx(exact, abs=0.01)


@pytest.mark.parametrize(
    ("values_a", "values_b", "message"),
    [
        (np.ones(3), np.ones(4), "same users"),
        (np.array([]), np.array([]), "non-empty"),
        (np.array([1.0, np.nan]), np.ones(2), "finite"),
    ],
)
def test_paired_test_rejects_bad_input(
    values_a: np.ndarray, values_b: np.ndarray, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        paired_test(values_a, values_b)


def test_zero_resamples_are_rejected() -> None:
    with pytest.raises(ValueError, match="num_resamples"):
        bootstrap_ci(np.ones(3), num_resamples=0)
