"""Which data set a run uses and how it is read."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import BaseModel, Field, NonNegativeInt, PositiveInt, Strict, model_validator

from llmrec.config_rules import CONFIG_RULES

# A time written in YAML as an ISO-8601 string: parsed from text, unlike the strict numbers.
IsoTime = Annotated[datetime, Strict(False)]

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


class TemporalConfig(BaseModel):
    """The global temporal split: two cuts in time, the same for every user (Ji et al., "A
    critical study on data leakage in recommender system offline evaluation", TOIS 2023).
    Training holds the interactions before the validation cut, validation those between the
    cuts, test those from the test cut on. The cuts are the timestamps at the given fractions
    of all interactions in time order, or given as times."""

    model_config = CONFIG_RULES

    valid_fraction: float = Field(
        0.1,
        gt=0.0,
        lt=1.0,
        description="share of interactions, in time order, before the test "
        "ones, that validation holds (sets the validation cut)",
    )
    test_fraction: float = Field(
        0.1,
        gt=0.0,
        lt=1.0,
        description="share of the latest interactions that test holds (sets the test cut)",
    )
    valid_start: float | IsoTime | None = Field(
        None,
        description="the validation cut as a time (Unix seconds, or an ISO-8601 date/time, UTC "
        "when no zone is given), instead of the fractions; with test_start",
    )
    test_start: float | IsoTime | None = Field(
        None, description="the test cut as a time, instead of the fractions; with valid_start"
    )

    @model_validator(mode="after")
    def _cuts_agree(self) -> Self:
        if (self.valid_start is None) != (self.test_start is None):
            raise ValueError("give both valid_start and test_start, or neither")
        if self.valid_start is None:
            if self.valid_fraction + self.test_fraction >= 1.0:
                raise ValueError(
                    "valid_fraction + test_fraction must be below 1 (training keeps the rest)"
                )
            return self
        defaults = TemporalConfig.model_fields
        if (self.valid_fraction, self.test_fraction) != (
            defaults["valid_fraction"].default,
            defaults["test_fraction"].default,
        ):
            raise ValueError("the fractions are not used when the cuts are given as times")
        starts = self.start_seconds()
        if starts is not None and starts[0] >= starts[1]:
            raise ValueError("valid_start must be before test_start")
        return self

    def start_seconds(self) -> tuple[float, float] | None:
        """(validation cut, test cut) in seconds when given as times, else None."""
        if self.valid_start is None or self.test_start is None:
            return None
        return _seconds(self.valid_start), _seconds(self.test_start)


def _seconds(moment: float | datetime) -> float:
    if isinstance(moment, datetime):
        # A time without a zone is UTC, as timestamps in the data files are (loaders).
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
    return float(moment)


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
    split: Literal["auto", "holdout", "temporal"] = Field(
        "auto",
        description="auto: the format's own split (leave-one-out, or the files' split); "
        "holdout: a per-user random hold-out of each user's items (data.holdout); temporal: "
        "one global cut in time for every user (data.temporal; data with timestamps only)",
    )
    holdout: HoldoutConfig = Field(
        default_factory=HoldoutConfig, description="hold-out settings, with split: holdout only"
    )
    temporal: TemporalConfig = Field(
        default_factory=TemporalConfig,
        description="temporal split settings, with split: temporal only",
    )

    sample_users: PositiveInt | None = Field(
        None,
        description="use a seeded sample of this many users, each whole, and the items they "
        "touch (None: every user); to try a costly method on a large data set in minutes",
    )
    sample_seed: NonNegativeInt = Field(
        0, description="seed of the user sample (apart from the run seed, so runs share it)"
    )

    @model_validator(mode="after")
    def _settings_need_their_split(self) -> Self:
        # No silently ignored options (STYLE sec. 1); a dumped default still loads again.
        if self.split != "holdout" and self.holdout != HoldoutConfig():
            raise ValueError("data.holdout is only used with data.split: holdout")
        if self.split != "temporal" and self.temporal != TemporalConfig():
            raise ValueError("data.temporal is only used with data.split: temporal")
        if self.sample_users is None and self.sample_seed != 0:
            raise ValueError("data.sample_seed is only used with data.sample_users")
        return self

    @property
    def temporal_split(self) -> TemporalConfig | None:
        """The temporal settings when the split is temporal, else None (`load_dataset`'s
        `temporal`: the temporal split is made while loading, from the files' timestamps)."""
        return self.temporal if self.split == "temporal" else None
