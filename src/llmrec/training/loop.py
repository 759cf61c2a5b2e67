"""The one training loop (Hugging Face Accelerate) shared by SASRec, CALRec and CLLM4Rec.

A model's `fit` hands it an `nn.Module` whose `forward(batch)` returns a `LossOutput`, a
`BatchSource` that yields the same batches for the same (seed, epoch) on every process, and a
validation callback. The loop knows nothing of any model's losses.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from accelerate import Accelerator
from torch import nn
from tqdm.auto import tqdm

from llmrec.errors import ConfigError
from llmrec.training.checkpoint import (
    MODEL_FILE,
    LoopState,
    load_checkpoint,
    load_weights,
    save_checkpoint,
    save_weights,
)
from llmrec.training.config import TrainConfig
from llmrec.training.optim import build_optimizer, build_scheduler
from llmrec.training.seed import set_seed

logger = logging.getLogger(__name__)

Validate = Callable[[nn.Module], dict[str, float]]


@dataclass
class LossOutput:
    """The loss to minimise and its named parts (logged separately)."""

    total: torch.Tensor
    parts: dict[str, torch.Tensor] = field(default_factory=dict)
    num_tokens: int = 0  # items or tokens in the batch, for throughput


class BatchSource(Protocol):
    """Deterministic batches: `epoch_batches(epoch)` depends only on the seed and the epoch."""

    def epoch_batches(self, epoch: int) -> Sequence[Any]: ...


@dataclass
class TrainResult:
    best_step: int | None
    best_epoch: int | None
    best_metric: float | None
    history: list[dict[str, float]]
    steps: int
    train_seconds: float
    epoch_seconds: list[float]


def train(
    module: nn.Module,
    batches: BatchSource,
    validate: Validate | None,
    cfg: TrainConfig,
    run_dir: Path,
    *,
    seed: int = 0,
    resume: bool = False,
    show_progress: bool = True,
) -> TrainResult:
    """Train `module` in place; on return it holds the best validated weights (or the last)."""
    if cfg.num_threads is not None:
        torch.set_num_threads(cfg.num_threads)
    accelerator = Accelerator(
        mixed_precision=cfg.precision, gradient_accumulation_steps=cfg.grad_accum
    )
    set_seed(seed)
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    checkpoints = Path(run_dir) / "checkpoints"
    steps_per_epoch = math.ceil(len(batches.epoch_batches(0)) / accelerator.num_processes)
    total_steps = cfg.max_steps or cfg.epochs * max(1, steps_per_epoch // cfg.grad_accum)
    optimizer = build_optimizer(module, cfg)
    scheduler = build_scheduler(optimizer, cfg, total_steps)
    model, optimizer, scheduler = accelerator.prepare(module, optimizer, scheduler)
    state = LoopState()
    log_path = Path(run_dir) / "train_log.jsonl"
    if resume:
        if not (checkpoints / "last").is_dir():
            raise ConfigError(f"cannot resume: {checkpoints / 'last'} does not exist")
        state = load_checkpoint(checkpoints / "last", module, optimizer, scheduler)
        logger.info("resumed from %s at epoch %d step %d", checkpoints, state.epoch, state.step)
    else:
        log_path.unlink(missing_ok=True)
    epoch_seconds: list[float] = []
    started = time.perf_counter()
    progress = tqdm(
        total=cfg.epochs,
        initial=state.epoch,
        desc="train",
        unit="epoch",
        disable=not (show_progress and accelerator.is_main_process),
    )
    while state.epoch < cfg.epochs and not _is_done(state, cfg):
        epoch_start = time.perf_counter()
        epoch_batches = batches.epoch_batches(state.epoch)
        own = epoch_batches[accelerator.process_index :: accelerator.num_processes]
        model.train()
        for batch in own[state.batches_done :]:
            with accelerator.accumulate(model):
                out = model(batch)
                accelerator.backward(out.total)
                if cfg.grad_clip is not None and accelerator.sync_gradients:
                    accelerator.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
            state.batches_done += 1
            if accelerator.sync_gradients:
                state.step += 1
                if state.step % cfg.log_every == 0 and accelerator.is_main_process:
                    _log(log_path, state, out, scheduler)
                    progress.set_postfix(loss=f"{out.total.item():.4f}")
                if cfg.checkpoint_every and state.step % cfg.checkpoint_every == 0:
                    _checkpoint(accelerator, checkpoints, module, optimizer, scheduler, state)
            if _is_done(state, cfg):
                break
        epoch_seconds.append(time.perf_counter() - epoch_start)
        finished_epoch = state.batches_done >= len(own)
        if finished_epoch:
            state.epoch += 1
            state.batches_done = 0
            progress.update(1)
        if validate is not None and (state.epoch % cfg.eval_every == 0 or _is_done(state, cfg)):
            _validate_and_track(accelerator, validate, module, state, cfg, checkpoints)
            progress.set_postfix({cfg.metric: f"{state.history[-1][cfg.metric]:.4f}"})
        _checkpoint(accelerator, checkpoints, module, optimizer, scheduler, state)
    progress.close()
    if validate is not None and (checkpoints / "best" / MODEL_FILE).is_file():
        load_weights(module, checkpoints / "best" / MODEL_FILE)
    return TrainResult(
        state.best_step,
        state.best_epoch,
        state.best_metric,
        state.history,
        state.step,
        time.perf_counter() - started,
        epoch_seconds,
    )


def _is_done(state: LoopState, cfg: TrainConfig) -> bool:
    if cfg.max_steps is not None and state.step >= cfg.max_steps:
        return True
    return state.evals_without_improvement >= cfg.patience


def _validate_and_track(
    accelerator: Accelerator,
    validate: Validate,
    module: nn.Module,
    state: LoopState,
    cfg: TrainConfig,
    checkpoints: Path,
) -> None:
    """Validate on the main process' unwrapped model; keep the best weights; count patience."""
    module.eval()
    with torch.no_grad():
        metrics = validate(accelerator.unwrap_model(module))
    module.train()
    if cfg.metric not in metrics:
        raise KeyError(f"validation returned {sorted(metrics)}, not the metric {cfg.metric!r}")
    state.history.append({"epoch": state.epoch, "step": state.step, **metrics})
    value = metrics[cfg.metric]
    if state.best_metric is None or value > state.best_metric:
        state.best_metric, state.best_step, state.best_epoch = value, state.step, state.epoch
        state.evals_without_improvement = 0
        if accelerator.is_main_process:
            (checkpoints / "best").mkdir(parents=True, exist_ok=True)
            save_weights(accelerator.unwrap_model(module), checkpoints / "best" / MODEL_FILE)
    else:
        state.evals_without_improvement += 1
    logger.info("epoch %d step %d: %s", state.epoch, state.step, metrics)


def _checkpoint(accelerator, checkpoints, module, optimizer, scheduler, state) -> None:
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        save_checkpoint(
            checkpoints / "last", accelerator.unwrap_model(module), optimizer, scheduler, state
        )


def _log(path: Path, state: LoopState, out: LossOutput, scheduler) -> None:
    record = {
        "epoch": state.epoch,
        "step": state.step,
        "loss": out.total.item(),
        "lr": scheduler.get_last_lr()[0],
        **{name: value.item() for name, value in out.parts.items()},
    }
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")
