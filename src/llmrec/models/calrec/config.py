"""CALRec's typed configuration: backbone, text templates, loss weights, stages, ranking."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import (
    BaseModel,
    Field,
    PositiveFloat,
    PositiveInt,
    field_validator,
    model_validator,
)

from llmrec.config_rules import CONFIG_RULES
from llmrec.models.backbone import BackboneConfig, LoraSettings
from llmrec.models.base import ModelConfig
from llmrec.models.calrec.batches import TrainingTargets
from llmrec.models.calrec.constrained import ConstrainedConfig
from llmrec.models.calrec.generate import GenerationConfig
from llmrec.models.calrec.packing import PackingSettings
from llmrec.text.templates import TextConfig
from llmrec.training.config import TrainConfig, fill_defaults, refuse_unused

Retrieval = Literal["bm25", "dense", "hybrid", "constrained"]
STAGE_ONE_TRAIN = {"epochs": 1}  # Stage I's loop defaults where they differ from TrainConfig's


class StageOneConfig(BaseModel):
    """Stage I: multi-category finetuning on a mixture of data sets (CALRec sec. 3.3)."""

    model_config = CONFIG_RULES

    sources: tuple[str, ...] = Field(
        (), strict=False, description="named data sets or folders mixed in"
    )
    data_dir: Path | None = Field(
        None,
        strict=False,
        description="root of named data sets (default: the run's data.data_dir, else $LLMREC_DATA)",
    )
    include_target: bool = Field(True, description="mix in the target's own training part")
    exponent: float = Field(0.3, ge=0.0, description="data set sampled with p ~ users ** exponent")
    examples_per_epoch: PositiveInt | None = Field(
        None, description="examples drawn per Stage I epoch (None: the mixture's total)"
    )
    train: TrainConfig = Field(
        default_factory=lambda: TrainConfig(**STAGE_ONE_TRAIN),
        description="Stage I loop settings (default: one epoch)",
    )

    @field_validator("train", mode="before")
    @classmethod
    def _section_defaults(cls, value):
        return fill_defaults(value, STAGE_ONE_TRAIN)

    @model_validator(mode="after")
    def _no_unused_train_settings(self) -> StageOneConfig:
        if not self.sources and not self.include_target:
            raise ValueError(
                "Stage I mixes nothing: name sources or set include_target (stage_one: null "
                "skips Stage I)"
            )
        refuse_unused(
            self.train,
            "stage_one.train",
            {"refit_before_test": "refitting before test is the run's train.refit_before_test"},
        )
        return self


class CALRecExtensions(BaseModel):
    """Beyond the paper (docs/calrec.md sec. 13): every default here is the published method, so
    an empty `extensions:` block is CALRec as published."""

    model_config = CONFIG_RULES

    retrieval: Retrieval = Field(
        "bm25",
        description="bm25: generations grounded by BM25, merged quasi-round-robin (the paper); "
        "beyond it, dense: cos(v_U, v_T) over the catalogue; hybrid: reciprocal rank fusion of "
        "both; constrained: beam search over a prefix trie of item lines (only real items)",
    )
    lora: LoraSettings | None = Field(
        None, description="train low-rank adapters instead of every weight (merged after fit)"
    )
    trainable_layers: PositiveInt | None = Field(
        None,
        description="train only the last N decoder layers and the final norm (the embedding and "
        "tied head frozen; backpropagation stops below them); None trains every weight",
    )
    constrained: ConstrainedConfig = Field(
        default_factory=ConstrainedConfig, description="settings of constrained decoding"
    )
    hybrid_depth: PositiveInt = Field(100, description="items taken from each ranking for fusion")
    packing: PackingSettings | None = Field(
        None,
        description="train every transition of a user in one joint pass (needs training_targets: "
        "all); None: one joint pass per example, as in the paper",
    )
    history_list: Literal["off", "first", "last"] = Field(
        "off",
        description="the BM25 ranking of the history's own lines joins the quasi-round-robin as "
        "one more list, before (first) or after (last) the generations'; off: the paper",
    )

    @model_validator(mode="after")
    def _history_list_needs_generations(self) -> CALRecExtensions:
        if self.history_list != "off" and self.retrieval not in ("bm25", "hybrid"):
            raise ValueError(
                f"history_list joins the round-robin of generations; retrieval {self.retrieval!r}"
                " has none (use bm25 or hybrid, or history_list: off)"
            )
        return self


class CALRecConfig(ModelConfig):
    name: Literal["calrec"] = "calrec"
    backbone: BackboneConfig = Field(default_factory=BackboneConfig)
    text: TextConfig = Field(default_factory=TextConfig)
    alpha: float = Field(0.1, ge=0.0, le=1.0, description="weight of L_TT (in context vs alone)")
    beta: float = Field(0.1, ge=0.0, le=1.0, description="weight of L_UT (history vs target alone)")
    temperature: PositiveFloat = Field(0.05, description="InfoNCE temperature tau (cosine / tau)")
    training_targets: TrainingTargets = Field(
        "last", description="last: one example per user; all: every training transition"
    )
    stage_one: StageOneConfig | None = Field(None, description="Stage I mixture; None skips it")
    stage_two: bool = Field(True, description="Stage II on the target data set (run's train)")
    generation: GenerationConfig = Field(default_factory=GenerationConfig)
    bm25_k1: PositiveFloat = Field(1.5, description="BM25 k1 of the grounding index")
    bm25_b: float = Field(0.75, ge=0.0, le=1.0, description="BM25 b of the grounding index")
    extensions: CALRecExtensions = Field(
        default_factory=CALRecExtensions,
        description="options beyond the paper, each off by default (docs/calrec.md sec. 13)",
    )
    encode_batch_size: PositiveInt = Field(32, description="lines per forward pass when encoding")

    def with_extensions(self, **changes) -> CALRecConfig:
        """This config with the named extension options changed (e.g. `retrieval="dense"`)."""
        extensions = self.extensions.model_copy(update=changes)
        return self.model_copy(update={"extensions": extensions})

    @model_validator(mode="after")
    def _weights_leave_room_for_generation(self) -> CALRecConfig:
        if self.alpha + self.beta >= 1.0:
            raise ValueError("alpha + beta must be below 1 (the generation loss keeps the rest)")
        if self.extensions.packing is not None and self.training_targets != "all":
            raise ValueError(
                "extensions.packing trains every transition of a user: set training_targets: all"
            )
        return self
