"""RunConfig loading: defaults < YAML < --set overrides; unknown keys and bad values are errors."""

from __future__ import annotations

import re
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


def _documented_ablations() -> list[list[str]]:
    """The `--set` overrides in the ablation table of docs/calrec.md."""
    docs = (Path(__file__).parents[1] / "docs" / "calrec.md").read_text(encoding="utf-8")
    table = docs[docs.index("| ablation | overrides |") :].split("\n\n")[0]
    return [re.findall(r"--set (\S+?)[`\s]", row + " ") for row in table.splitlines()[2:]]


def test_calrec_ablations_documented_in_docs_take_effect() -> None:
    path = Path(__file__).parents[1] / "configs" / "calrec_cpu_beauty.yaml"
    ablations = [overrides for overrides in _documented_ablations() if overrides]
    assert len(ablations) == 5  # NIG only, + TT, + UT; Stage I only, Stage II only
    for overrides in ablations:
        model = load_config(path, overrides).model
        for override in overrides:
            key, value = override.removeprefix("model.").split("=")
            expected = {"0": 0.0, "false": False, "null": None}[value]
            assert getattr(model, key) == expected, override


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["model.name=cllm4rec", "model.pretrain.train.epochs=5"],
            r"pretrain\.train\.epochs is not used",
        ),
        (
            ["model.name=cllm4rec", "model.pretrain.train.refit_before_test=true"],
            r"pretrain\.train\.refit_before_test is not used",
        ),
        (
            ["model.name=calrec", "model.stage_one.train.refit_before_test=true"],
            r"stage_one\.train\.refit_before_test is not used",
        ),
        (
            ["model.name=calrec", "model.stage_one.include_target=false"],
            "Stage I mixes nothing",
        ),
    ],
)
def test_stage_settings_that_would_be_ignored_are_errors(overrides: list[str], message) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(None, overrides)


def test_llm_model_configs_round_trip(tmp_path: Path) -> None:
    """A saved resolved config (every field written) passes the unused-settings checks."""
    for name in ("cllm4rec", "calrec"):
        config = load_config(None, [f"model.name={name}"])
        save_config(config, tmp_path / f"{name}.yaml")
        assert load_config(tmp_path / f"{name}.yaml") == config


def test_a_stage_section_keeps_its_own_defaults_for_the_keys_a_config_leaves_out() -> None:
    """CLLM4Rec's pretraining loop defaults to the official batch 20, lr 1e-3, no clipping, and
    CALRec's Stage I to one epoch; setting one key must not reset the others to TrainConfig's."""
    pretrain = load_config(None, ["model.name=cllm4rec", "model.pretrain.train.lr=1e-4"])
    loop = pretrain.model.pretrain.train
    assert (loop.lr, loop.batch_size, loop.grad_clip) == (1e-4, 20, None)
    untouched = load_config(None, ["model.name=cllm4rec"]).model.pretrain.train
    assert (untouched.lr, untouched.batch_size, untouched.grad_clip) == (1e-3, 20, None)
    stage_one = load_config(None, ["model.name=calrec", "model.stage_one.train.lr=1e-4"])
    assert (stage_one.model.stage_one.train.epochs, stage_one.model.stage_one.train.lr) == (1, 1e-4)
    chosen = load_config(None, ["model.name=calrec", "model.stage_one.train.epochs=3"])
    assert chosen.model.stage_one.train.epochs == 3


def test_holdout_split_defaults_to_the_cllm4rec_cut_offs(tmp_path: Path) -> None:
    config = load_config(None, ["data.split=holdout"])
    assert config.eval.ks == (20, 40, 100)
    assert load_config(None, ["data.split=holdout", "eval.ks=[5, 10]"]).eval.ks == (5, 10)
    assert load_config(None).eval.ks == (1, 5, 10, 20)  # leave-one-out keeps its default
    assert RunConfig.model_validate({"data": {"split": "holdout"}}).eval.ks == (20, 40, 100)
    save_config(config, tmp_path / "resolved.yaml")
    assert load_config(tmp_path / "resolved.yaml") == config


def test_holdout_settings_are_read_and_checked() -> None:
    config = load_config(
        None, ["data.split=holdout", "data.holdout.seed=3", "data.holdout.test_history=train_valid"]
    )
    assert (config.data.holdout.seed, config.data.holdout.test_history) == (3, "train_valid")
    with pytest.raises(ConfigError, match=r"data\.holdout"):
        load_config(None, ["data.holdout.seed=3"])  # without split: holdout
    with pytest.raises(ConfigError, match="valid_ratio"):
        load_config(None, ["data.split=holdout", "data.holdout.valid_ratio=0.95"])


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["data.split=holdout", "train.metric=mrr@10"], "no mrr"),
        (["train.metric=recall@40"], "holdout only"),
        (["data.split=holdout", "eval.protocol=sampled"], "sampled"),
        (["data.split=holdout", "train.refit_before_test=true"], "test_history: train_valid"),
    ],
)
def test_options_that_disagree_with_the_split_are_errors(
    overrides: list[str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(None, overrides)


def test_holdout_metrics_are_allowed_for_early_stopping() -> None:
    for metric in ("recall@20", "recall@40", "ndcg@100", "ndcg@10"):
        assert load_config(None, ["data.split=holdout", f"train.metric={metric}"]).train.metric
    refit = ["data.split=holdout", "data.holdout.test_history=train_valid"]
    assert load_config(None, [*refit, "train.refit_before_test=true"]).train.refit_before_test


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ('train.epochs="5"', "train.epochs"),
        ("train.epochs=true", "train.epochs"),
        ("train.epochs=2.0", "train.epochs"),
        ("train.lr=true", "train.lr"),
        ('train.lr="0.1"', "train.lr"),
        ("train.lr=.inf", "train.lr"),
        ("train.lr=-.inf", "train.lr"),
        ("train.lr=.nan", "train.lr"),
        ("model.dropout=.nan", "model.sasrec.dropout"),
        ('eval.ks=[5, "10"]', "eval.ks.1"),
        ("eval.ks=[5, true]", "eval.ks.1"),
        ("train.tensorboard=1", "train.tensorboard"),
        ("seed=1.5", "seed"),
    ],
)
def test_types_are_strict_and_floats_finite(override: str, key: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_config(None, [override])
    message = str(error.value)
    assert message.startswith(f"defaults: invalid config: {key}: ") and "\n" not in message


def test_strict_types_hold_from_python_too() -> None:
    from pydantic import ValidationError

    from llmrec.training.config import TrainConfig

    with pytest.raises(ValidationError):
        TrainConfig(epochs="5")
    with pytest.raises(ValidationError):
        TrainConfig(lr=float("inf"))


def test_yaml_numbers_in_scientific_notation_are_numbers(tmp_path: Path) -> None:
    """PyYAML reads `1e-3` as a string (YAML 1.1); the config loader reads it as YAML 1.2 does."""
    config = load_config(_write(tmp_path, "train:\n  lr: 1e-3\nmodel:\n  dropout: 2E-1\n"))
    assert (config.train.lr, config.model.dropout) == (1e-3, 0.2)
    assert load_config(None, ["train.lr=3e-4", "train.weight_decay=1.0e2"]).train.lr == 3e-4
    assert load_config(None, ["output.name=1e3x"]).output.name == "1e3x"  # not a number


def test_a_config_file_that_is_not_utf8_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_bytes(b"output:\n  name: caf\xe9\n")
    with pytest.raises(ConfigError, match=rf"{re.escape(str(path))}: not UTF-8 text"):
        load_config(path)


def test_heads_must_divide_the_width() -> None:
    with pytest.raises(ConfigError, match=r"num_heads \(3\) must divide hidden_size \(64\)"):
        load_config(None, ["model.num_heads=3"])
    assert load_config(None, ["model.num_heads=4"]).model.num_heads == 4


@pytest.mark.parametrize("name", ["../x", "a/../../x", "/tmp/x", ".", ""])
def test_output_name_stays_inside_output_dir(name: str) -> None:
    with pytest.raises(ConfigError, match=r"output\.name: must be a relative folder name"):
        load_config(None, [f"output.name='{name}'"])


def test_output_name_may_be_a_nested_relative_folder() -> None:
    config = load_config(None, ["output.dir=runs", "output.name=sweep/lr-3e-4"])
    assert config.run_dir() == Path("runs/sweep/lr-3e-4")


def test_baselines_are_typed_model_configs_each_listed_once() -> None:
    config = load_config(None, ["baselines=[{name: pop}, {name: bm25, query_items: 3}]"])
    assert [baseline.name for baseline in config.baselines] == ["pop", "bm25"]
    assert config.baselines[1].query_items == 3
    for bad, message in [
        ("[{name: bm25, query_items: '3'}]", "baselines.0.bm25.query_items"),
        ("[{name: bm25, k: 1}]", "baselines.0.bm25.k: Extra inputs"),
        ("[{name: pop}, {name: pop}]", "baselines: pop listed twice"),
    ]:
        with pytest.raises(ConfigError, match=re.escape(message)):
            load_config(None, [f"baselines={bad}"])
