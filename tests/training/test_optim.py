"""Tests of training/optim.py: which parameters decay, and the warm-up + cosine schedule."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from llmrec.training.config import TrainConfig
from llmrec.training.optim import build_optimizer, build_scheduler


def test_only_matrices_decay_and_frozen_parameters_are_left_out() -> None:
    module = nn.Sequential(nn.Embedding(5, 3), nn.Linear(3, 2), nn.LayerNorm(2))
    module[0].weight.requires_grad_(False)
    groups = build_optimizer(module, TrainConfig(weight_decay=0.1, lr=0.01)).param_groups
    decayed, plain = groups
    assert decayed["weight_decay"] == 0.1 and plain["weight_decay"] == 0.0
    assert [p.shape for p in decayed["params"]] == [torch.Size([2, 3])]  # the linear weight
    assert sorted(p.numel() for p in plain["params"]) == [2, 2, 2]  # linear bias, norm weight, bias
    assert all(group["lr"] == 0.01 for group in groups)


def test_parameters_a_module_scales_train_at_that_multiple_of_the_lr() -> None:
    module = nn.Sequential(nn.Embedding(5, 3), nn.Linear(3, 2))
    optimizer = build_optimizer(module, TrainConfig(lr=0.01), {"0.weight": 10.0})
    lrs = {p.shape: group["lr"] for group in optimizer.param_groups for p in group["params"]}
    assert lrs == {torch.Size([5, 3]): pytest.approx(0.1), torch.Size([2, 3]): 0.01, (2,): 0.01}
    scheduler = build_scheduler(optimizer, TrainConfig(lr=0.01, schedule="cosine"), 10)
    for _ in range(5):
        optimizer.step()
        scheduler.step()
    ratios = [group["lr"] / 0.01 for group in optimizer.param_groups if group["params"]]
    assert ratios[-1] == pytest.approx(10 * ratios[0])  # the schedule keeps the factor


def _factors(cfg: TrainConfig, total_steps: int) -> list[float]:
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = build_scheduler(optimizer, cfg, total_steps)
    factors = []
    for _ in range(total_steps + 1):
        factors.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return factors


def test_linear_warm_up_then_cosine_to_zero() -> None:
    factors = _factors(TrainConfig(lr=1.0, warmup_steps=4, schedule="cosine"), total_steps=12)
    assert factors[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert factors[4] == pytest.approx(1.0)  # the cosine starts at the peak
    assert factors[8] == pytest.approx(0.5)  # half way through the 8 cosine steps
    assert factors[12] == pytest.approx(0.0, abs=1e-12)


def test_constant_schedule_stays_at_the_peak_after_warm_up() -> None:
    factors = _factors(TrainConfig(lr=1.0, warmup_steps=2), total_steps=6)
    assert factors == pytest.approx([0.5, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0])
