"""How many settings each LLM method has, split into the published method's (core) and those
beyond the paper (`extensions`); docs/configuration.md shows the same table."""

from __future__ import annotations

import re
import typing
from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError

from llmrec.models.registry import MODELS
from llmrec.training.config import TrainConfig

DOCS = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"
LLM_METHODS = ("calrec", "cllm4rec", "cllm4rec-lite")


def _section(annotation) -> type[BaseModel] | None:
    """The config class a field holds (also inside `X | None`), or None for a single setting."""
    candidates = [annotation, *typing.get_args(annotation)]
    return next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)


def config_leaves(config: type[BaseModel], prefix: str = "") -> list[str]:
    """Dotted names of every single setting under `config`, nested sections opened."""
    names = []
    for name, field in config.model_fields.items():
        section = _section(field.annotation)
        if section is None:
            names.append(prefix + name)
        else:
            names += config_leaves(section, f"{prefix}{name}.")
    return names


def count_leaves(config: type[BaseModel]) -> dict[str, int]:
    loop_leaves = set(config_leaves(TrainConfig))
    counts = {"core": 0, "extensions": 0, "loop": 0}
    for leaf in config_leaves(config):
        parts = leaf.split(".")
        if len(parts) > 1 and parts[-1] in loop_leaves and "train" in parts[:-1]:
            counts["loop"] += 1
        elif parts[0] == "extensions":
            counts["extensions"] += 1
        else:
            counts["core"] += 1
    return counts


def test_the_docs_table_gives_each_methods_core_and_extension_leaves() -> None:
    table = re.search(
        r"<!-- config-leaves -->\n(.*?)<!-- /config-leaves -->", DOCS.read_text(), re.S
    )
    rows = {}
    for line in table.group(1).splitlines()[2:]:
        name, core, extensions, loop = (cell.strip(" `") for cell in line.strip("|").split("|"))
        rows[name] = {"core": int(core), "extensions": int(extensions), "loop": int(loop)}
    computed = {name: count_leaves(MODELS[name].Config) for name in LLM_METHODS}
    print(computed)  # the numbers, for the record
    assert rows == computed


def test_a_recipe_that_drops_what_defines_cllm4rec_carries_its_own_name() -> None:
    lite_shape = {"pretrain": {"warmup_epochs": 0, "rounds": 0}, "mr_lambda": 0.0}
    with pytest.raises(ValidationError, match="name it `cllm4rec-lite`"):
        MODELS["cllm4rec"].Config.model_validate(lite_shape)
    lite = MODELS["cllm4rec-lite"].Config.model_validate({})
    assert (lite.pretrains, lite.mr_lambda, lite.extensions.prompt_user_token) == (False, 0, False)
    # an extensions block that names other options keeps the anonymous prompts; asked, user tokens
    other = MODELS["cllm4rec-lite"].Config.model_validate({"extensions": {"untied_head": True}})
    assert (other.extensions.untied_head, other.extensions.prompt_user_token) == (True, False)
    named = {"extensions": {"prompt_user_token": True}}
    assert MODELS["cllm4rec-lite"].Config.model_validate(named).extensions.prompt_user_token
    with pytest.raises(ValidationError, match="cllm4rec-lite has no pretraining"):
        MODELS["cllm4rec-lite"].Config.model_validate({"pretrain": {"rounds": 1}})
    with pytest.raises(ValidationError, match="mutual regularisation"):
        MODELS["cllm4rec-lite"].Config.model_validate({"mr_lambda": 1.0})


@pytest.mark.parametrize("name", LLM_METHODS)
def test_a_setting_beyond_the_paper_given_beside_the_core_ones_says_where_it_goes(name) -> None:
    config = MODELS[name].Config
    extension_keys = [key for key in config_leaves(config) if key.startswith("extensions.")]
    key = extension_keys[0].split(".")[1]
    where = rf"{key}: beyond the paper, so set under `extensions:`"
    with pytest.raises(ValidationError, match=where):
        config.model_validate({key: None})
    # the same key inside the block is read as usual
    assert config.model_validate({"extensions": {}}).extensions == config().extensions


def test_cllm4rec_mean_mutual_regularisation_is_an_extension() -> None:
    config = MODELS["cllm4rec"].Config
    assert "mr_mode" not in config.model_fields and config().extensions.mr_mode == "sum"
    assert config.model_validate({"extensions": {"mr_mode": "mean"}}).extensions.mr_mode == "mean"
