"""Tests of evaluation/config.py: defaults, strictness and validation of EvalConfig."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from llmrec.evaluation.config import EvalConfig


def test_defaults_are_full_ranking_without_history_filter() -> None:
    config = EvalConfig()
    assert config.ks == (1, 5, 10, 20)
    assert (config.protocol, config.filter_history) == ("full", False)
    assert (config.num_negatives, config.bootstrap_resamples, config.confidence) == (
        100,
        1000,
        0.95,
    )
    assert (config.batch_size, config.seed) == (512, 0)


def test_every_field_is_described() -> None:
    assert all(field.description for field in EvalConfig.model_fields.values())


def test_unknown_keys_and_mutation_are_errors() -> None:
    with pytest.raises(ValidationError, match="filter_histroy"):
        EvalConfig.model_validate({"filter_histroy": True})
    with pytest.raises(ValidationError, match="frozen"):
        EvalConfig().seed = 3  # type: ignore[misc]


def test_ks_are_sorted_and_must_not_repeat() -> None:
    assert EvalConfig.model_validate({"ks": [20, 5, 10]}).ks == (5, 10, 20)
    with pytest.raises(ValidationError, match="repeat"):
        EvalConfig(ks=(5, 5))
    with pytest.raises(ValidationError, match="ks"):
        EvalConfig(ks=())
    with pytest.raises(ValidationError, match="greater than 0"):
        EvalConfig(ks=(0, 5))


def test_num_negatives_needs_the_sampled_protocol() -> None:
    assert EvalConfig(protocol="sampled", num_negatives=50).num_negatives == 50
    with pytest.raises(ValidationError, match="only used with protocol 'sampled'"):
        EvalConfig(num_negatives=50)
    dumped = EvalConfig().model_dump()  # holds the default num_negatives, and must load again
    assert EvalConfig.model_validate(dumped) == EvalConfig()


@pytest.mark.parametrize("changes", [{"confidence": 1.0}, {"protocol": "uni100"}, {"seed": -1}])
def test_out_of_range_values_are_errors(changes: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        EvalConfig.model_validate(changes)
