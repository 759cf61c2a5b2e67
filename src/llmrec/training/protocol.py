"""The typed contract between a trained network and the loop: `TrainableNetwork.forward(batch)`
returns a `LossOutput`, and `training_plan()` says what the loop and the optimizer need beyond
the parameters (learning-rate multiples, what a checkpoint holds, unused parameters per step)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn


@dataclass
class LossOutput:
    """The loss to minimise, its named parts (logged separately) and what it is a mean of.

    `num_terms`: how many terms `total` averages (SASRec: real positions; a token loss: target
    tokens); None counts one term per batch row. With several processes it weighs each
    process' loss so that their average is the mean over the whole batch (see
    `training.distributed.global_loss_scale`); a one-process run does not use it.
    """

    total: torch.Tensor
    parts: dict[str, torch.Tensor] = field(default_factory=dict)
    num_tokens: int = 0  # items or tokens in the batch, for throughput
    num_terms: int | None = None


@dataclass(frozen=True)
class TrainingPlan:
    """How the loop treats a network beyond its trainable parameters.

    `lr_scales`: parameter name -> multiple of the learning rate (own optimizer groups).
    `checkpoint_trainable_only`: checkpoints and best weights hold only the parameters that
    train (a frozen LLM under small tables is rebuilt from its source, not saved each epoch).
    `unused_parameters`: a step may leave some trainable parameters without a gradient
    (CLLM4Rec trains one view's tables per task), so DDP must look for them after backward.
    """

    lr_scales: Mapping[str, float] = field(default_factory=dict)
    checkpoint_trainable_only: bool = False
    unused_parameters: bool = False


class TrainableNetwork(nn.Module):
    """Base of every network the loop trains (SASRec, Mult-VAE, CALRec, CLLM4Rec)."""

    def forward(self, batch: Any) -> LossOutput:
        raise NotImplementedError

    def training_plan(self) -> TrainingPlan:
        """The default: one learning rate, whole checkpoints, every parameter used each step."""
        return TrainingPlan()
