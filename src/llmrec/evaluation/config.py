"""Evaluation settings: cut-offs, ranking protocol, history filter and bootstrap intervals.

Defaults follow the field's full-ranking convention (anchors sec. 4.4): every item is ranked, the
history is not filtered, and sampled negatives exist only as an explicit, labelled option.
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import (
    BaseModel,
    Field,
    NonNegativeInt,
    PositiveInt,
    field_validator,
    model_validator,
)

from llmrec.config_rules import CONFIG_RULES


class EvalConfig(BaseModel):
    """How a model is evaluated; recorded with every result as its protocol."""

    model_config = CONFIG_RULES

    ks: tuple[PositiveInt, ...] = Field(
        default=(1, 5, 10, 20),
        min_length=1,
        strict=False,
        description="Cut-offs K (list positions) for recall@K, ndcg@K and mrr@K; stored sorted.",
    )
    filter_history: bool = Field(
        default=False,
        description="Remove each user's history items from the ranking before ranking the target.",
    )
    protocol: Literal["full", "sampled"] = Field(
        default="full",
        description="'full' ranks the target among all items; 'sampled' among uniform negatives.",
    )
    num_negatives: PositiveInt = Field(
        default=100,
        description="Negatives (items) drawn per user under the 'sampled' protocol only.",
    )
    bootstrap_resamples: NonNegativeInt = Field(
        default=1000,
        description="Bootstrap resamples of users for confidence intervals; 0 skips the intervals.",
    )
    confidence: float = Field(
        default=0.95,
        gt=0.0,
        lt=1.0,
        description="Two-sided confidence level of the bootstrap intervals (fraction).",
    )
    batch_size: PositiveInt = Field(
        default=512,
        description="Histories scored per model call (users per batch).",
    )
    seed: NonNegativeInt = Field(
        default=0,
        description="Seed of the bootstrap resamples, the sampled negatives and the user sample.",
    )
    sample_users: PositiveInt | None = Field(
        default=None,
        description="Evaluate a seeded random sample of this many users (None: every user); "
        "the sample is recorded in the protocol. For costly generative models only.",
    )

    @field_validator("ks")
    @classmethod
    def _sorted_unique(cls, ks: tuple[int, ...]) -> tuple[int, ...]:
        if len(set(ks)) != len(ks):
            raise ValueError(f"ks must not repeat a cut-off, got {list(ks)}")
        return tuple(sorted(ks))

    @model_validator(mode="after")
    def _negatives_need_sampled_protocol(self) -> Self:
        # No silently ignored options (STYLE sec. 1): negatives mean nothing under full ranking.
        # Only a changed value is refused, so a dumped config (default included) loads again.
        default = type(self).model_fields["num_negatives"].default
        if self.protocol == "full" and self.num_negatives != default:
            raise ValueError("num_negatives is only used with protocol 'sampled'")
        return self
