"""The one training loop (Hugging Face Accelerate) shared by SASRec, CALRec and CLLM4Rec.

A model's `fit` hands it an `nn.Module` whose `forward(batch)` returns a `LossOutput`, a
`BatchSource` that makes the same batch for the same (seed, epoch, position) on every process,
one batch at a time, and a validation callback. The loop knows nothing of any model's losses.

Under `accelerate launch` with several processes, each optimizer step still trains on one whole
batch of the `BatchSource`: every process takes its rows of it and weighs its loss so that the
averaged gradient is the one-process gradient (training/distributed.py).
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState
from accelerate.utils import (
    DistributedDataParallelKwargs,
    broadcast,
    broadcast_object_list,
    send_to_device,
)
from torch import nn
from tqdm.auto import tqdm

from llmrec.errors import ConfigError
from llmrec.training.checkpoint import (
    MODEL_FILE,
    LoopState,
    load_checkpoint,
    load_weights,
    recover_checkpoint,
    save_best_weights,
    save_checkpoint,
)
from llmrec.training.config import TrainConfig, use_threads
from llmrec.training.distributed import (
    Sharding,
    batch_rows,
    global_loss_scale,
    local_batch,
    rng_states,
)
from llmrec.training.divergence import DivergenceGuard
from llmrec.training.optim import build_optimizer, build_scheduler
from llmrec.training.protocol import LossOutput, TrainableNetwork
from llmrec.training.seed import set_seed

logger = logging.getLogger(__name__)

Validate = Callable[[nn.Module], dict[str, float]]

LOG_FILE = "train_log.jsonl"
TENSORBOARD_FOLDER = "tensorboard"


class BatchSource(Protocol):
    """Deterministic batches made one at a time (docs/training.md, "Streaming batches").

    The batch at (epoch, position) depends only on the seed, the epoch and the position: a
    resumed run starts mid-epoch without building the batches before it, and no epoch is held
    whole (memory grows with one batch, not with the data).
    """

    def num_batches(self, epoch: int) -> int:
        """Batches of `epoch`, counted without collating any."""
        ...

    def batches(self, epoch: int, start: int = 0) -> Iterator[Any]:
        """The batches of `epoch` from position `start` on, each collated when asked for."""
        ...


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
    module: TrainableNetwork,
    batches: BatchSource,
    validate: Validate | None,
    cfg: TrainConfig,
    run_dir: Path,
    *,
    seed: int = 0,
    resume: bool = False,
    show_progress: bool = True,
) -> TrainResult:
    """Train `module` in place; on return it holds the best validated weights (or the last).

    choice: process p seeds its RNG with seed + p, so dropout differs between the rows of
    different processes (one seed would repeat the same masks on every process' rows).
    choice: `validate` runs on the main process only, on the unwrapped model, and its metrics
    are broadcast: every process then takes the same early-stopping decisions.
    """
    use_threads(cfg)
    plan = module.training_plan()
    unused = DistributedDataParallelKwargs(find_unused_parameters=plan.unused_parameters)
    accelerator = _accelerator(cfg, unused)
    rank, world = accelerator.process_index, accelerator.num_processes
    set_seed(seed + rank)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    checkpoints = run_dir / "checkpoints"
    steps_per_epoch = batches.num_batches(0)  # every process takes part in every batch
    steps = cfg.epochs * math.ceil(steps_per_epoch / cfg.grad_accum)  # see `_accumulation`
    total_steps = cfg.max_steps or max(1, steps)
    sharding = Sharding(accelerator, module, cfg, resume)  # trains a copy under FSDP, DeepSpeed
    optimizer = build_optimizer(sharding.trained, cfg, plan.lr_scales)
    scheduler = build_scheduler(optimizer, cfg, total_steps)
    model, optimizer, scheduler = sharding.prepare(optimizer, scheduler)
    state = LoopState()
    if resume:
        recover_checkpoint(checkpoints / "best")
        if not recover_checkpoint(checkpoints / "last"):
            raise ConfigError(f"cannot resume: {checkpoints / 'last'} does not exist")
        state = load_checkpoint(
            checkpoints / "last", module, sharding.saved_optimizer, scheduler, rank
        )
        sharding.load_resumed_weights()
        logger.info("resumed from %s at epoch %d step %d", checkpoints, state.epoch, state.step)
    elif accelerator.is_main_process:  # an earlier run's best weights are not this run's
        shutil.rmtree(checkpoints / "best", ignore_errors=True)
    resume_step = state.step if resume else None
    guard = DivergenceGuard(accelerator.device, checkpoints / "last", resume_step)
    log = RunLog(run_dir, cfg.tensorboard, resume_step, accelerator)
    epoch_seconds: list[float] = []
    started = time.perf_counter() - state.train_seconds  # a resumed run counts earlier parts
    deadline = Deadline(accelerator, cfg.max_seconds)
    # choice: the bar is labelled with the folder it trains in (the run, `refit`, a stage).
    # With validation, patience may end training before cfg.epochs: the bar then counts epochs
    # with no total, so tqdm shows no ETA computed for the maximum.
    progress = tqdm(
        total=None if validate is not None else cfg.epochs,
        initial=state.epoch,
        desc=run_dir.name + (f" (at most {cfg.epochs} epochs)" if validate is not None else ""),
        unit="epoch",
        disable=not (show_progress and accelerator.is_main_process),
    )
    try:
        while state.epoch < cfg.epochs and not _is_done(state, cfg, deadline):
            epoch_start = time.perf_counter()
            num_batches = batches.num_batches(state.epoch)
            stream = batches.batches(state.epoch, state.batches_done)
            model.train()
            # An epoch of an LLM method runs for minutes to hours: a bar of its batches under the
            # bar of epochs, gone when the epoch ends.
            batch_bar = tqdm(
                total=_batches_to_run(state, cfg, num_batches),
                initial=state.batches_done,
                desc=f"epoch {state.epoch + 1}",
                unit="batch",
                leave=False,
                disable=progress.disable,
            )
            for number, batch in zip(range(state.batches_done, num_batches), stream, strict=True):
                step_start = time.perf_counter()
                local, stand_in = local_batch(batch, rank, world) if world > 1 else (batch, False)
                local = send_to_device(local, accelerator.device)  # batches are built on the CPU
                accelerator.step, group_weight = _accumulation(number, num_batches, cfg.grad_accum)
                with accelerator.accumulate(model):
                    out = model(local)
                    guard.observe(out.total, state.step + 1, scheduler.get_last_lr()[0])
                    loss, scale, tokens = _weighted_loss(accelerator, out, local, stand_in)
                    accelerator.backward(loss * group_weight)
                    if cfg.grad_clip is not None and accelerator.sync_gradients:
                        accelerator.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                    optimizer.step()
                    scheduler.step()
                    optimizer.zero_grad(set_to_none=True)
                state.batches_done += 1
                batch_bar.update(1)
                log.count(tokens, time.perf_counter() - step_start, out, scale)
                if accelerator.sync_gradients:
                    state.step += 1
                    deadline.check()  # at optimizer steps only: no accumulated gradient is lost
                    if state.step % cfg.log_every == 0:
                        guard.check(accelerator)
                        losses = log.window_losses(accelerator)
                        log.train(state, losses, scheduler.get_last_lr()[0])
                        progress.set_postfix(loss=f"{losses['loss']:.4f}")
                    if cfg.checkpoint_every and state.step % cfg.checkpoint_every == 0:
                        state.train_seconds = time.perf_counter() - started
                        _checkpoint(accelerator, checkpoints, sharding, scheduler, state, guard)
                if _is_done(state, cfg, deadline):
                    break
            batch_bar.close()
            epoch_seconds.append(time.perf_counter() - epoch_start)
            if state.batches_done >= num_batches:
                state.epoch += 1
                state.batches_done = 0
                progress.update(1)
            stopping = _is_done(state, cfg, deadline)
            guard.check(accelerator)  # never validate or checkpoint diverged weights
            if validate is not None and (state.epoch % cfg.eval_every == 0 or stopping):
                sharding.gather_weights()  # into `module` on the main process, if sharded
                _validate_and_track(accelerator, validate, module, state, cfg, checkpoints, log)
                progress.set_postfix({cfg.metric: f"{state.history[-1][cfg.metric]:.4f}"})
            state.train_seconds = time.perf_counter() - started
            _checkpoint(accelerator, checkpoints, sharding, scheduler, state, guard)
        if state.evals_without_improvement >= cfg.patience:
            stopped = (
                f"early stop: no better {cfg.metric} in {cfg.patience} validations; "
                f"best epoch {state.best_epoch}"
            )
            progress.set_postfix_str(stopped)
            logger.info(stopped)
    finally:
        progress.close()
        log.close()
        # Accelerate wrapped `module.forward` in autocast and marked the module as prepared, so
        # that a later prepare would return it untouched: undo both, so that a later part of the
        # run (the next stage) trains at its own precision and compilation, and nothing else
        # runs the module under this part's autocast.
        accelerator.unwrap_model(model, keep_fp32_wrapper=False)
        vars(sharding.trained).pop("_is_accelerate_prepared", None)
    sharding.gather_weights(everywhere=True)  # the last weights, if sharded
    accelerator.wait_for_everyone()  # the main process has written checkpoints/best
    if validate is not None and state.best_step is not None:
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


def _accelerator(cfg: TrainConfig, unused: DistributedDataParallelKwargs) -> Accelerator:
    """The Accelerator of this part of the run, with its precision and compilation.

    Accelerate keeps one precision and compile setting per process, fixed by the first
    Accelerator; parts of one run (CALRec's Stage I and II) and runs in one process (tests, a
    notebook) may differ, so its per-run state starts afresh here. The process group
    (`PartialState`) is kept. `train.compile: false` leaves compilation to `accelerate launch`'s
    own setting (off unless asked).
    """
    AcceleratorState._reset_state(reset_partial_state=False)
    accelerator = Accelerator(
        mixed_precision=cfg.precision,
        gradient_accumulation_steps=cfg.grad_accum,
        kwargs_handlers=[unused],
        dynamo_backend="inductor" if cfg.compile else None,
    )
    # Accelerate makes fp16's gradient scaler on a GPU only and on the CPU would train in fp32
    # without a word: an option silently ignored is an error.
    if cfg.precision == "fp16" and accelerator.device.type == "cpu":
        raise ConfigError(
            "precision: 'fp16' needs a CUDA GPU (autocast with a gradient scaler); this run is "
            "on the CPU: use precision 'bf16' (autocast, no scaler) or 'no'"
        )
    return accelerator


def _accumulation(number: int, num_batches: int, grad_accum: int) -> tuple[int, float]:
    """(Accelerate's batch counter to set before batch `number` of an epoch, its loss weight).

    choice: batches accumulate in groups of `grad_accum` within an epoch; the last group of an
    epoch may be shorter and still ends in an optimizer step, so no epoch's gradient leaks into
    the next and a resumed run (which restarts at a group boundary) groups as the first did.
    Accelerate divides each loss by `grad_accum` and steps when its counter reaches a multiple
    of it: the counter is set so that it does at a group's last batch, and the weight makes a
    short group's gradient the mean over its own batches.
    """
    start = number - number % grad_accum
    size = min(grad_accum, num_batches - start)
    position = number - start
    counter = grad_accum - 1 if position == size - 1 else position
    return counter, grad_accum / size


def _weighted_loss(
    accelerator: Accelerator, out: LossOutput, local: Any, stand_in: bool
) -> tuple[torch.Tensor, float, int]:
    """(loss to back-propagate, its weight, tokens of the whole batch)."""
    if accelerator.num_processes == 1:
        return out.total, 1.0, out.num_tokens
    terms = out.num_terms if out.num_terms is not None else batch_rows(local)
    if stand_in:  # no rows of its own: the graph takes part in DDP, the loss weighs nothing
        terms, tokens = 0, 0
    else:
        tokens = out.num_tokens
    scale, global_tokens = global_loss_scale(accelerator, terms, tokens)
    return out.total * scale, scale, global_tokens


def _batches_to_run(state: LoopState, cfg: TrainConfig, num_batches: int) -> int:
    """Where this epoch's batches end: the epoch's end, or sooner where `max_steps` stops it
    (so the bar's ETA is that of the run, not of an epoch it never finishes)."""
    if cfg.max_steps is None:
        return num_batches
    remaining = (cfg.max_steps - state.step) * cfg.grad_accum
    return min(num_batches, state.batches_done + remaining)


def _is_done(state: LoopState, cfg: TrainConfig, deadline: Deadline) -> bool:
    if cfg.max_steps is not None and state.step >= cfg.max_steps:
        return True
    return deadline.passed or state.evals_without_improvement >= cfg.patience


class Deadline:
    """`train.max_seconds` of this part of the run, read on the main process' clock and
    broadcast, so that every process stops after the same batch."""

    def __init__(self, accelerator: Accelerator, seconds: float | None) -> None:
        self.accelerator = accelerator
        self.end = None if seconds is None else time.perf_counter() + seconds
        self.passed = False

    def check(self) -> None:
        if self.end is None or self.passed:
            return
        passed = time.perf_counter() >= self.end
        if self.accelerator.num_processes > 1:
            flag = torch.tensor([float(passed)], device=self.accelerator.device)
            passed = bool(broadcast(flag, from_process=0).item())
        self.passed = passed
        if passed:
            logger.info("train.max_seconds reached: stopping this part of the run")


def _validate_and_track(
    accelerator: Accelerator,
    validate: Validate,
    module: nn.Module,
    state: LoopState,
    cfg: TrainConfig,
    checkpoints: Path,
    log: RunLog,
) -> None:
    """Validate on the main process' unwrapped model; keep the best weights; count patience."""
    metrics = None
    if accelerator.is_main_process:
        module.eval()
        with torch.no_grad():
            metrics = validate(accelerator.unwrap_model(module))
        module.train()
    if accelerator.num_processes > 1:
        metrics = broadcast_object_list([metrics])[0]
    if cfg.metric not in metrics:
        raise KeyError(f"validation returned {sorted(metrics)}, not the metric {cfg.metric!r}")
    state.history.append({"epoch": state.epoch, "step": state.step, **metrics})
    log.validation(state.step, metrics)
    value = metrics[cfg.metric]
    if state.best_metric is None or value > state.best_metric:
        state.best_metric, state.best_step, state.best_epoch = value, state.step, state.epoch
        state.evals_without_improvement = 0
        if accelerator.is_main_process:
            save_best_weights(checkpoints / "best", accelerator.unwrap_model(module))
    else:
        state.evals_without_improvement += 1
    logger.info("epoch %d step %d: %s", state.epoch, state.step, metrics)


def _checkpoint(accelerator, checkpoints, sharding, scheduler, state, guard) -> None:
    """The main process writes; every process' RNG goes in; nobody runs ahead of the write;
    diverged weights are never written."""
    if not sharding.can_checkpoint:  # DeepSpeed
        return
    guard.check(accelerator)
    rng = rng_states(accelerator)
    sharding.gather_checkpoint()
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        module, optimizer = accelerator.unwrap_model(sharding.module), sharding.saved_optimizer
        save_checkpoint(checkpoints / "last", module, optimizer, scheduler, state, rng)
    accelerator.wait_for_everyone()
    guard.checkpoint_step = state.step


class RunLog:
    """`train_log.jsonl` and TensorBoard scalars in `RUN_DIR/tensorboard/`, main process only.

    Each training record holds the loss and its parts averaged over the micro-batches since the
    previous record (one batch's loss swings with its users: a multinomial loss sums over a
    user's targets), the learning rate and tokens/s (tokens of the whole batch over the seconds
    spent in training steps since the previous record);
    TensorBoard also gets the validation metrics (`valid/<name>`). A fresh run clears both; a
    resumed run drops what the interrupted run logged after its checkpoint's step.
    """

    def __init__(
        self, run_dir: Path, tensorboard: bool, resume_step: int | None, accelerator: Accelerator
    ) -> None:
        self.path = run_dir / LOG_FILE
        self.enabled = accelerator.is_main_process
        self.tokens, self.seconds = 0, 0.0
        self.loss_sums: dict[str, torch.Tensor] = {}
        self.loss_counts: dict[str, int] = {}
        self.writer = None
        if not self.enabled:
            return
        if resume_step is None:
            self.path.unlink(missing_ok=True)
            shutil.rmtree(run_dir / TENSORBOARD_FOLDER, ignore_errors=True)
        elif self.path.is_file():
            lines = self.path.read_text(encoding="utf-8").splitlines(keepends=True)
            kept = [line for line in lines if json.loads(line)["step"] <= resume_step]
            self.path.write_text("".join(kept), encoding="utf-8")
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter  # only when used: a heavy import

            purge = None if resume_step is None else resume_step + 1
            self.writer = SummaryWriter(str(run_dir / TENSORBOARD_FOLDER), purge_step=purge)

    def count(self, tokens: int, seconds: float, out: LossOutput, scale: float) -> None:
        """Adds one micro-batch: its tokens, seconds and losses (kept on the device, no sync)."""
        self.tokens += tokens
        self.seconds += seconds
        for name, value in (("loss", out.total), *out.parts.items()):
            weighted = value.detach().float() * scale
            self.loss_sums[name] = self.loss_sums.get(name, 0.0) + weighted
            self.loss_counts[name] = self.loss_counts.get(name, 0) + 1

    def window_losses(self, accelerator: Accelerator) -> dict[str, float]:
        """The loss and its parts over the whole batches since the previous record, then a
        fresh window; with several processes an all-reduce (every process must call it).

        The total is exact; a part is weighted like the total, so a part that averages a
        different number of terms (CALRec's InfoNCE next to its token loss) is the mean of
        weighted means. A part missing from some micro-batches averages those that had it.
        """
        names = list(self.loss_sums)
        values = torch.stack([self.loss_sums[name] / self.loss_counts[name] for name in names])
        if accelerator.num_processes > 1:
            values = accelerator.reduce(values.to(accelerator.device), reduction="mean")
        self.loss_sums, self.loss_counts = {}, {}
        return dict(zip(names, values.tolist(), strict=True))

    def train(self, state: LoopState, losses: dict[str, float], lr: float) -> None:
        tokens_per_s = self.tokens / self.seconds if self.seconds > 0 else 0.0
        self.tokens, self.seconds = 0, 0.0
        if not self.enabled:
            return
        record = {
            "epoch": state.epoch,
            "step": state.step,
            **losses,
            "lr": lr,
            "tokens_per_s": tokens_per_s,
        }
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
        if self.writer is not None:
            for name, value in losses.items():
                self.writer.add_scalar(f"train/{name}", value, state.step)
            self.writer.add_scalar("train/lr", lr, state.step)
            self.writer.add_scalar("train/tokens_per_s", tokens_per_s, state.step)

    def validation(self, step: int, metrics: dict[str, float]) -> None:
        if self.writer is not None:
            for name, value in metrics.items():
                self.writer.add_scalar(f"valid/{name}", value, step)
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
