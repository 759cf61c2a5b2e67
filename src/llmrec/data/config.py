"""Which data set a run uses and how it is read."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

from pydantic import BaseModel, Field, NonNegativeInt, model_validator

from llmrec.config_rules import CONFIG_RULES

DataFormat = Literal["auto", "p5", "unisrec", "dealrec", "byo", "recbole"]


class HoldoutConfig(BaseModel):
    """The per-user random hold-out (CLLM4Rec sec. 5.3): each user's items split at random."""

    model_config = CONFIG_RULES

    valid_ratio: float = Field(
        0.1, gt=0.0, lt=1.0, description="fraction of each user's items held out for valid"
    )
    test_ratio: float = Field(
        0.1, gt=0.0, lt=1.0, description="fraction of each user's items held out for test"
    )
    seed: NonNegativeInt = Field(
        0, description="seed of the split (apart from the run seed, so runs share one split)"
    )
    test_history: Literal["train", "train_valid"] = Field(
        "train",
        description="what the model sees at test: the training items (official CLLM4Rec) or "
        "the training and valid items",
    )

    @model_validator(mode="after")
    def _train_keeps_items(self) -> Self:
        if self.valid_ratio + self.test_ratio >= 1.0:
            raise ValueError("valid_ratio + test_ratio must be below 1 (training keeps the rest)")
        return self

    @property
    def train_ratio(self) -> float:
        return 1.0 - self.valid_ratio - self.test_ratio


class DataConfig(BaseModel):
    model_config = CONFIG_RULES

    source: str = Field(
        "beauty-mini", description="a named data set (beauty, toys, ...) or a folder path"
    )
    format: DataFormat = Field("auto", description="file format; auto detects it from the files")
    data_dir: Path | None = Field(
        None, strict=False, description="root of the named data sets (default: $LLMREC_DATA)"
    )
    skip_bad: bool = Field(
        False, description="skip malformed lines/users and report counts instead of failing"
    )
    split: Literal["auto", "holdout"] = Field(
        "auto",
        description="auto: the format's own split (leave-one-out, or the files' split); "
        "holdout: a per-user random hold-out of each user's items (data.holdout)",
    )
    holdout: HoldoutConfig = Field(
        default_factory=HoldoutConfig, description="hold-out settings, with split: holdout only"
    )

    @model_validator(mode="after")
    def _holdout_needs_holdout_split(self) -> Self:
        # No silently ignored options (STYLE sec. 1); a dumped default still loads again.
        if self.split != "holdout" and self.holdout != HoldoutConfig():
            raise ValueError("data.holdout is only used with data.split: holdout")
        return self
