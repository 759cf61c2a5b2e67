"""Stop a diverging run: the first optimizer step whose loss is NaN or infinite is noted on the
device (no synchronisation per step) and checked before anything is logged, validated or
checkpointed, so that no checkpoint ever holds diverged weights."""

from __future__ import annotations

from pathlib import Path

import torch
from accelerate import Accelerator

from llmrec.errors import TrainingDivergedError

NONE = -1  # no non-finite loss seen yet


class DivergenceGuard:
    """Notes the first non-finite loss (step and learning rate) and raises
    `TrainingDivergedError` at the next `check`, naming the last good checkpoint."""

    def __init__(self, device: torch.device, checkpoint: Path, checkpoint_step: int | None):
        self.bad_step = torch.tensor(NONE, device=device)
        self.bad_lr = torch.tensor(0.0, device=device)
        self.checkpoint = checkpoint
        self.checkpoint_step = checkpoint_step  # the step of the checkpoint this run wrote last

    def observe(self, loss: torch.Tensor, step: int, lr: float) -> None:
        """Note `step` (with its learning rate) if `loss` is not finite and none was before."""
        is_first = ~torch.isfinite(loss.detach()).all() & (self.bad_step == NONE)
        self.bad_step = torch.where(is_first, step, self.bad_step)
        self.bad_lr = torch.where(is_first, lr, self.bad_lr)

    def check(self, accelerator: Accelerator) -> None:
        """Raise if any process saw a non-finite loss (every process must call it)."""
        steps, lrs = self.bad_step.reshape(1), self.bad_lr.reshape(1)
        if accelerator.num_processes > 1:
            steps, lrs = accelerator.gather(steps), accelerator.gather(lrs)
        seen = [(s, lr) for s, lr in zip(steps.tolist(), lrs.tolist(), strict=True) if s != NONE]
        if not seen:
            return
        step, lr = min(seen)
        if self.checkpoint_step is None:
            last_good = "none: no checkpoint was written before it"
        else:
            last_good = f"{self.checkpoint} (step {self.checkpoint_step})"
        raise TrainingDivergedError(
            f"training diverged: the loss was NaN or infinite at optimizer step {step} "
            f"(learning rate {lr:.3g}); last good checkpoint: {last_good}. Lower train.lr "
            "(or add train.warmup_steps / train.grad_clip) and train again"
        )
