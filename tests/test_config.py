"""RunConfig loading: defaults < YAML < --set overrides; unknown keys and bad values are errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmrec.config import RunConfig, load_config, save_config
from llmrec.errors import ConfigError
from llmrec.models.pop import PopConfig
from llmrec.models.sasrec import SASRecConfig


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_precedence_defaults_then_yaml_then_overrides(tmp_path: Path) -> None:
    path = _write(tmp_path, "train:\n  lr: 0.002\n  batch_size: 32\n")
    config = load_config(path, ["train.lr=3e-4"])
    assert config.train.lr == 3e-4  # override beats YAML
    assert config.train.batch_size == 32  # YAML beats default
    assert config.train.epochs == RunConfig().train.epochs  # default kept


def test_model_section_validates_against_the_named_model_only(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, "model:\n  name: sasrec\n  hidden_size: 32\n"))
    assert isinstance(config.model, SASRecConfig) and config.model.hidden_size == 32
    assert isinstance(load_config(None, ["model.name=pop"]).model, PopConfig)
    with pytest.raises(ConfigError, match="hidden_size"):
        load_config(_write(tmp_path, "model:\n  name: pop\n  hidden_size: 32\n"))


def test_unknown_key_names_the_file_and_dotted_key(tmp_path: Path) -> None:
    path = _write(tmp_path, "train:\n  learning_rate: 0.1\n")
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert str(path) in str(error.value) and "train.learning_rate" in str(error.value)


def test_bad_value_names_key_and_value() -> None:
    with pytest.raises(ConfigError) as error:
        load_config(None, ["train.epochs=-3"])
    assert "train.epochs" in str(error.value) and "-3" in str(error.value)


@pytest.mark.parametrize("text", ["- a\n- b\n", "train: [1\n"])
def test_malformed_yaml_is_a_config_error(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigError):
        load_config(_write(tmp_path, text))


def test_override_needs_key_and_value() -> None:
    with pytest.raises(ConfigError, match=r"key\.sub=value"):
        load_config(None, ["train.lr"])


def test_resolved_config_round_trips(tmp_path: Path) -> None:
    config = load_config(None, ["model.name=bm25", "eval.ks=[5, 10]", "seed=7"])
    save_config(config, tmp_path / "resolved.yaml")
    assert load_config(tmp_path / "resolved.yaml") == config


def test_quickstart_config_is_valid() -> None:
    config = load_config(Path(__file__).parents[1] / "configs" / "quickstart.yaml")
    assert config.model.name == "sasrec"


def test_every_shipped_config_is_valid() -> None:
    configs = sorted((Path(__file__).parents[1] / "configs").glob("*.yaml"))
    assert len(configs) >= 5
    for path in configs:
        load_config(path)


@pytest.mark.parametrize(
    "overrides",
    [
        ["model.alpha=0", "model.beta=0"],
        ["model.beta=0"],
        ["model.alpha=0"],
        ["model.stage_two=false"],
        ["model.stage_one=null"],
    ],
)
def test_calrec_ablations_documented_in_docs_are_valid_overrides(overrides: list[str]) -> None:
    path = Path(__file__).parents[1] / "configs" / "calrec_cpu_beauty.yaml"
    config = load_config(path, overrides)
    assert config.model.name == "calrec"
