"""AdamW with decay only on weight matrices, and a warm-up + constant/cosine LR schedule."""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import nn

from llmrec.training.config import TrainConfig


def build_optimizer(
    module: nn.Module, cfg: TrainConfig, scales: Mapping[str, float] | None = None
) -> torch.optim.AdamW:
    """Only matrices (ndim >= 2: linear weights, embedding tables) decay; biases and norms don't.
    `scales` maps parameter names to multiples of the lr (the network's `TrainingPlan`, e.g.
    CLLM4Rec's `table_lr_scale`); those get groups of their own, after the two."""
    scales = scales or {}
    groups: dict[tuple[bool, float], list[nn.Parameter]] = {(True, 1.0): [], (False, 1.0): []}
    for name, parameter in module.named_parameters():
        if parameter.requires_grad:
            key = (parameter.ndim >= 2, scales.get(name, 1.0))
            groups.setdefault(key, []).append(parameter)
    return torch.optim.AdamW(
        [
            {
                "params": params,
                "weight_decay": cfg.weight_decay if decays else 0.0,
                "lr": cfg.lr * factor,
            }
            for (decays, factor), params in groups.items()
        ],
        lr=cfg.lr,
    )


def build_scheduler(
    optimizer: torch.optim.Optimizer, cfg: TrainConfig, total_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    def factor(step: int) -> float:
        if step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        if cfg.schedule == "constant":
            return 1.0
        progress = (step - cfg.warmup_steps) / max(1, total_steps - cfg.warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
