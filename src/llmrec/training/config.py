"""Settings of the one training loop shared by every trainable model."""

from __future__ import annotations

from typing import Any, Literal

import torch
from pydantic import BaseModel, Field, NonNegativeFloat, PositiveFloat, PositiveInt

from llmrec.config_rules import CONFIG_RULES


class TrainConfig(BaseModel):
    """How to train: optimisation, evaluation cadence, early stopping, checkpoints."""

    model_config = CONFIG_RULES

    epochs: PositiveInt = Field(200, description="maximum number of passes over the training users")
    max_steps: PositiveInt | None = Field(None, description="stop after this many optimizer steps")
    max_seconds: PositiveFloat | None = Field(
        None,
        description="stop this part of the run after this much wall time in the loop (validation "
        "included; per stage where a model trains in stages), then validate and checkpoint as at "
        "an epoch's end; `--resume` continues. For job time limits and leased machines: the LR "
        "schedule is still planned on epochs / max_steps, so a stopped run ends mid-schedule",
    )
    batch_size: PositiveInt = Field(128, description="training sequences per optimizer step")
    lr: PositiveFloat = Field(1e-3, description="peak learning rate")
    weight_decay: NonNegativeFloat = Field(0.0, description="AdamW decoupled weight decay")
    warmup_steps: int = Field(0, ge=0, description="linear warm-up steps")
    schedule: Literal["constant", "cosine"] = Field("constant", description="LR after warm-up")
    grad_clip: PositiveFloat | None = Field(1.0, description="max global grad norm; None = off")
    grad_accum: PositiveInt = Field(1, description="gradient accumulation steps")
    precision: Literal["no", "bf16", "fp16"] = Field(
        "no",
        description="mixed precision through Accelerate: bf16 autocast (CPU or GPU) or fp16 "
        "autocast with a gradient scaler (CUDA GPU only); weights and optimizer state stay fp32",
    )
    compile: bool = Field(
        False,
        description="torch.compile the network for training steps (Accelerate's inductor "
        "backend; needs a C++ compiler on the CPU, Triton on a GPU); validation runs it uncompiled",
    )
    eval_every: PositiveInt = Field(1, description="validate every N epochs")
    eval_users: PositiveInt | None = Field(
        None, description="validate on a seeded sample of this many users (None = all)"
    )
    metric: str = Field(
        "ndcg@10",
        pattern=r"^((recall|ndcg|mrr)@(10|20)|(recall|ndcg)@(40|100))$",
        description="validation metric for early stopping: recall|ndcg|mrr @ 10|20; under "
        "data.split: holdout, recall|ndcg @ 10|20|40|100",
    )
    patience: PositiveInt = Field(10, description="stop after N validations without improvement")
    checkpoint_every: PositiveInt | None = Field(
        None,
        description="also write a resumable checkpoint every N optimizer steps (one is "
        "always written after each epoch)",
    )
    log_every: PositiveInt = Field(50, description="log losses every N optimizer steps")
    tensorboard: bool = Field(
        True, description="also write the logged scalars to RUN_DIR/tensorboard/ (TensorBoard)"
    )
    refit_before_test: bool = Field(
        False,
        description="after early stopping on valid, train a fresh model for the best number of "
        "epochs on everything before each test target (train + valid items) and test that one",
    )
    num_threads: PositiveInt | None = Field(
        None, description="torch CPU threads (None = torch default; 1 on a shared machine)"
    )


def refuse_unused(train: TrainConfig, section: str, unused: dict[str, str]) -> None:
    """Raise when `train` (the config section `section`) sets a field its stage never reads,
    `unused` naming each with the reason: an option that would be silently ignored is an error.
    Left at its default (as in a saved resolved config), a field is fine."""
    for name, reason in unused.items():
        if getattr(train, name) != TrainConfig.model_fields[name].default:
            raise ValueError(f"{section}.{name} is not used: {reason}")


def fill_defaults(value: Any, defaults: dict[str, Any]) -> Any:
    """A nested TrainConfig section as a config gives it, with `defaults` (the section's own,
    which differ from TrainConfig's) under the keys it leaves out: setting only
    `pretrain.train.lr` keeps CLLM4Rec's pretraining batch of 20, not TrainConfig's 128."""
    return {**defaults, **value} if isinstance(value, dict) else value


def use_threads(cfg: TrainConfig) -> None:
    """Honour `num_threads` (torch's CPU threads) for whatever trains under this config: the
    loop, and the closed-form solves of EASE and item-kNN."""
    if cfg.num_threads is not None:
        torch.set_num_threads(cfg.num_threads)
