"""RunConfig (the root config) and its loader: code defaults < one YAML file < --set overrides."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path, PurePath
from typing import Annotated, Any, Self

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from llmrec.config_rules import CONFIG_RULES
from llmrec.data.config import DataConfig
from llmrec.errors import ConfigError
from llmrec.evaluation.config import EvalConfig
from llmrec.models.registry import AnyModelConfig
from llmrec.models.sasrec import SASRecConfig
from llmrec.training.config import TrainConfig

HOLDOUT_EVAL_KS = (20, 40, 100)  # CLLM4Rec's recall@20, recall@40, ndcg@100 (note sec. 5.4)


class ConfigLoader(yaml.SafeLoader):
    """`yaml.SafeLoader` (plain data only) that also reads `1e-3` as a number, as YAML 1.2 does:
    PyYAML's YAML 1.1 rules need a dot and a signed exponent (`1.0e-3`), else it is a string,
    which the configs' strict number types refuse."""


ConfigLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


class OutputConfig(BaseModel):
    model_config = CONFIG_RULES

    dir: Path = Field(Path("runs"), strict=False, description="parent folder of run folders")
    name: str | None = Field(
        None, description="run folder name, a relative path inside `dir` (default: MODEL-DATA)"
    )

    @field_validator("name")
    @classmethod
    def _inside_dir(cls, name: str | None) -> str | None:
        """A run writes only below output.dir: no absolute path, no `..`, not `dir` itself."""
        if name is None:
            return name
        path = PurePath(name)
        if path.is_absolute() or ".." in path.parts or path.parts in ((), (".",)):
            raise ValueError(
                "must be a relative folder name inside output.dir (no absolute path, no '..')"
            )
        return name


class RunConfig(BaseModel):
    """One experiment: data, model, training loop, evaluation, output folder, seed."""

    model_config = CONFIG_RULES

    data: DataConfig = Field(default_factory=DataConfig)
    model: Annotated[AnyModelConfig, Field(discriminator="name")] = Field(
        default_factory=SASRecConfig
    )
    train: TrainConfig = Field(default_factory=TrainConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)
    seed: int = Field(0, description="seed of every random source in the run")
    baselines: tuple[Annotated[AnyModelConfig, Field(discriminator="name")], ...] = Field(
        (),
        strict=False,  # a YAML list; each entry is still validated strictly by its model config
        description="models fit on the same split beside `model` and reported with it, each"
        " name once (e.g. [{name: pop}, {name: bm25}])",
    )

    @model_validator(mode="before")
    @classmethod
    def _holdout_cut_offs(cls, raw: Any) -> Any:
        """choice: under data.split: holdout, eval.ks defaults to the CLLM4Rec cut-offs."""
        if not isinstance(raw, dict):
            return raw
        data, evaluation = raw.get("data"), raw.get("eval")
        split = data.get("split") if isinstance(data, dict) else getattr(data, "split", None)
        if split == "holdout" and (evaluation is None or isinstance(evaluation, dict)):
            evaluation = evaluation or {}
            if "ks" not in evaluation:
                raw = {**raw, "eval": {**evaluation, "ks": list(HOLDOUT_EVAL_KS)}}
        return raw

    @model_validator(mode="after")
    def _split_choices_agree(self) -> Self:
        """Options that mean nothing, or something wrong, under the chosen split are errors."""
        is_holdout = self.data.split == "holdout"
        metric, cutoff = self.train.metric.split("@")
        if is_holdout and metric == "mrr":
            raise ValueError(
                "train.metric: under data.split: holdout validation computes recall and ndcg "
                "at 10, 20, 40, 100 (no mrr)"
            )
        if not is_holdout and cutoff in ("40", "100"):
            raise ValueError(
                f"train.metric {self.train.metric!r}: K = 40 and 100 are validated under "
                "data.split: holdout only (next-item validation uses K = 10, 20)"
            )
        if is_holdout and self.eval.protocol == "sampled":
            raise ValueError("eval.protocol: sampled is not defined for hold-out target sets")
        sees_valid = self.data.holdout.test_history == "train_valid"
        if is_holdout and self.train.refit_before_test and not sees_valid:
            raise ValueError(
                "train.refit_before_test under data.split: holdout needs "
                "data.holdout.test_history: train_valid (the refit learns the valid items)"
            )
        return self

    @model_validator(mode="after")
    def _baselines_are_distinct(self) -> Self:
        """Baseline folders and report columns are keyed by model name: each name once."""
        names = [baseline.name for baseline in self.baselines]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"baselines: {', '.join(repeated)} listed twice; list each model once")
        return self

    def run_dir(self) -> Path:
        name = self.output.name or f"{self.model.name}-{Path(self.data.source).name}"
        return self.output.dir / name


def load_config(path: str | Path | None = None, overrides: Sequence[str] = ()) -> RunConfig:
    """Validate a YAML file plus `key.sub=value` overrides (values parsed as YAML scalars)."""
    raw: dict[str, Any] = {}
    source = "defaults"
    if path is not None:
        source = str(path)
        raw = _read_yaml(Path(path))
    for override in overrides:
        _apply_override(raw, override)
    model = raw.get("model")
    if isinstance(model, dict) and "name" not in model:
        model["name"] = SASRecConfig().name  # the default model, as when `model` is absent
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as error:
        raise ConfigError(_describe(error, source)) from None


def check_resumable(config: RunConfig, saved_path: Path) -> None:
    """Refuse to resume a run whose saved config (`saved_path`, when there is one) names other
    data or another model: its checkpoints would not fit."""
    if not saved_path.is_file():
        return
    saved, new = (
        _flatten(run.model_dump(mode="json")) for run in (load_config(saved_path), config)
    )
    changed = [
        f"{key}: {saved.get(key)!r} -> {new.get(key)!r}"
        for key in dict.fromkeys([*saved, *new])
        if key.split(".")[0] in ("data", "model")
        and key != "data.data_dir"  # where the data lies, not what it is
        and saved.get(key) != new.get(key)
    ]
    if changed:
        raise ConfigError(
            f"--resume: {saved_path} names other data or another model ({'; '.join(changed)}); "
            "resume with the run's own settings, or start a new run (another output.name)"
        )


def save_config(config: RunConfig, path: Path) -> None:
    """Write the resolved config: loading it again reproduces the run."""
    data = config.model_dump(mode="json")
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


def parse_yaml(text: str) -> Any:
    """Config text (a file or a `--set` value) as plain data; raises yaml.YAMLError."""
    return yaml.load(text, Loader=ConfigLoader)  # a SafeLoader: plain data, never objects


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        raw = parse_yaml(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path}: not UTF-8 text (at byte {error.start})") from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot be read: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping, not {type(raw).__name__}")
    return raw


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _apply_override(raw: dict[str, Any], override: str) -> None:
    key, separator, text = override.partition("=")
    if not separator or not key:
        raise ConfigError(f"override {override!r} must look like key.sub=value")
    try:
        value = parse_yaml(text)
    except yaml.YAMLError as error:
        raise ConfigError(f"override {override!r}: value is not valid YAML: {error}") from None
    *parents, leaf = key.strip().split(".")
    node = raw
    for part in parents:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"override {override!r}: {part!r} is not a section")
        node = child
    node[leaf] = value


def _describe(error: ValidationError, source: str) -> str:
    """One line per problem: `key: what is wrong (got value)`; one problem fits on one line."""
    problems = []
    for problem in error.errors():
        key = ".".join(str(part) for part in problem["loc"])
        value = problem.get("input")
        shown = "" if isinstance(value, dict) else f" (got {value!r})"
        # A check across sections (RunConfig's validators) has no key; its message names them.
        message = problem["msg"].removeprefix("Value error, ")  # pydantic's prefix adds nothing
        problems.append(f"{key}: {message}{shown}" if key else message)
    if len(problems) == 1:
        return f"{source}: invalid config: {problems[0]}"
    return "\n  ".join([f"{source}: invalid config", *problems])
