"""Data parallelism that leaves the optimisation unchanged: the same global batch per step.

Every process builds the same batches (a `BatchSource` depends only on the seed and the epoch) and
trains on its own rows of each one: rows `index::count`. DDP then averages the processes'
gradients, and `global_loss_scale` weights each process' mean loss so that this average is the
gradient of the mean over the whole batch, as in a one-process run. It is exact for a loss that
is a mean of per-row or per-token terms, given `LossOutput.num_terms` (one term per row when it
is None).

choice: a contrastive loss with in-batch negatives (CALRec's InfoNCE) sees only its own
process' rows as negatives; embeddings are not gathered across processes, as in most
implementations. Such a loss changes with the number of processes (fewer negatives per anchor),
so a multi-process run matches the one-process run only when it is off (CALRec with
alpha = beta = 0, whose token loss is then exact with num_terms = its target tokens).

Under FSDP or DeepSpeed (`accelerate launch --config_file configs/accelerate/...`), which shard
the module they are given, the loop trains a copy and keeps the module it was handed whole
(`Sharding`): the full weights are gathered into it for validation, checkpoints and the end of
training, and the optimizer state of a checkpoint is gathered whole by `FullOptimizerState`.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
from accelerate import Accelerator
from accelerate.utils import DistributedType, gather_object
from torch import nn

from llmrec.errors import ConfigError
from llmrec.training.checkpoint import current_rng_states
from llmrec.training.config import TrainConfig

logger = logging.getLogger(__name__)

T = TypeVar("T")


def batch_rows(batch: Any) -> int:
    """Rows of a batch: the leading size of its first tensor (dicts, tuples and lists nest)."""
    rows = _find_rows(batch)
    if rows is None:
        raise ValueError(f"no tensor with a batch dimension in a {type(batch).__name__}")
    return rows


def _find_rows(value: Any) -> int | None:
    if isinstance(value, torch.Tensor):
        return value.shape[0] if value.ndim > 0 else None
    items = value.values() if isinstance(value, Mapping) else value
    if isinstance(value, Mapping | list | tuple):
        for item in items:
            rows = _find_rows(item)
            if rows is not None:
                return rows
    return None


def select_rows(batch: Any, rows: torch.Tensor) -> Any:
    """The given rows of every tensor with a batch dimension; other values pass through."""
    size = batch_rows(batch)
    return _select(batch, rows, size)


def _select(value: Any, rows: torch.Tensor, size: int) -> Any:
    if isinstance(value, torch.Tensor):
        if value.ndim == 0:
            return value
        if value.shape[0] != size:
            raise ValueError(f"a tensor of leading size {value.shape[0]} in a batch of {size}")
        return value[rows.to(value.device)]
    if isinstance(value, Mapping):
        return type(value)({key: _select(item, rows, size) for key, item in value.items()})
    if isinstance(value, tuple) and hasattr(value, "_fields"):  # a named tuple
        return type(value)(*(_select(item, rows, size) for item in value))
    if isinstance(value, list | tuple):
        return type(value)(_select(item, rows, size) for item in value)
    return value


def split_batch(batch: Any, index: int, count: int) -> Any:
    """Process `index` of `count`: rows index, index + count, ... (empty when index >= rows).

    choice: strided rather than contiguous rows, since batches may be sorted by length
    (SASRec groups similar lengths): strides give every process a similar share of the work.
    """
    if not 0 <= index < count:
        raise ValueError(f"process index {index} is not in [0, {count})")
    return select_rows(batch, torch.arange(index, batch_rows(batch), count))


def local_batch(batch: Any, index: int, count: int) -> tuple[Any, bool]:
    """This process' rows of `batch`, and whether they are a stand-in that must weigh nothing.

    A batch with fewer rows than processes leaves some processes without rows; they run the
    batch's first row instead (every process must run forward and backward for DDP) and
    `global_loss_scale` gives that loss the weight 0.
    """
    local = split_batch(batch, index, count)
    if batch_rows(local) > 0:
        return local, False
    return select_rows(batch, torch.tensor([0])), True


def global_loss_scale(
    accelerator: Accelerator, num_terms: int, num_tokens: int
) -> tuple[float, int]:
    """(factor for this process' mean loss, tokens of the whole batch) -- one all-reduce.

    A process' loss is the mean of its `num_terms` terms; DDP averages gradients over P
    processes. With factor = num_terms * P / global_terms, that average is the gradient of the
    mean over all global_terms terms: exactly the one-process loss of the whole batch.
    """
    counts = torch.tensor([num_terms, num_tokens], dtype=torch.long, device=accelerator.device)
    global_terms, global_tokens = accelerator.reduce(counts, reduction="sum").tolist()
    if global_terms == 0:
        return 0.0, global_tokens
    return num_terms * accelerator.num_processes / global_terms, global_tokens


def rng_states(accelerator: Accelerator) -> list[dict[str, torch.Tensor]]:
    """Every process' torch RNG states (CPU and CUDA), gathered on every process."""
    states = current_rng_states()
    if accelerator.num_processes == 1:
        return [states]
    return gather_object([states])


def is_sharded(accelerator: Accelerator) -> bool:
    """Whether Accelerate shards the module it prepares (FSDP, DeepSpeed): then no process holds
    the whole model during training."""
    return accelerator.distributed_type in (DistributedType.FSDP, DistributedType.DEEPSPEED)


def configure_deepspeed(accelerator: Accelerator, batch_size: int, grad_clip: float | None) -> None:
    """Under DeepSpeed, fill the two settings it takes from elsewhere than the loop: the rows
    each process trains on per batch (Accelerate reads them from a data loader, and the loop
    hands it none) and gradient clipping (DeepSpeed clips inside its step, so Accelerate's
    `clip_grad_norm_` does nothing; "auto" would clip at 1.0 whatever `train.grad_clip` says)."""
    if accelerator.distributed_type != DistributedType.DEEPSPEED:
        return
    plugin = accelerator.state.deepspeed_plugin
    config = plugin.deepspeed_config
    config["train_micro_batch_size_per_gpu"] = math.ceil(batch_size / accelerator.num_processes)
    clip = 0.0 if grad_clip is None else grad_clip  # DeepSpeed: 0 = no clipping
    if plugin.is_auto("gradient_clipping") or "gradient_clipping" not in config:
        config["gradient_clipping"] = clip
    elif config["gradient_clipping"] != clip:
        raise ConfigError(
            f"the DeepSpeed config clips gradients at {config['gradient_clipping']}, "
            f"train.grad_clip is {grad_clip}: set one of them to the other"
        )


def can_checkpoint(accelerator: Accelerator) -> bool:
    """Whether the loop can write a resumable checkpoint: not under DeepSpeed, whose ZeRO
    optimizer keeps its state in its own per-process format."""
    return accelerator.distributed_type != DistributedType.DEEPSPEED


def check_resumable(accelerator: Accelerator, resume: bool, checkpoint_every: int | None) -> None:
    """A clear error where the run asks for what `can_checkpoint` rules out."""
    if can_checkpoint(accelerator):
        return
    if not (resume or checkpoint_every):
        logger.warning("DeepSpeed: no resumable checkpoints are written (docs/training.md)")
        return
    asked = "--resume" if resume else "train.checkpoint_every"
    raise ConfigError(
        f"{asked}: resumable checkpoints are not supported under DeepSpeed (its ZeRO optimizer "
        "state is per process); leave train.checkpoint_every unset and do not resume, or "
        "launch with configs/accelerate/fsdp.yaml (docs/training.md)"
    )


class FullOptimizerState:
    """The optimizer state of an FSDP model as one process' optimizer would hold it, for the
    loop's checkpoints: keyed by parameter names (torch.distributed.checkpoint), gathered whole
    on the main process by `gather` (every process calls it), loaded whole on every process.

    DeepSpeed keeps its own optimizer, which this does not read: see `check_resumable`.
    torch.distributed.checkpoint is imported where used: only FSDP runs need it.
    """

    def __init__(self, model: nn.Module, optimizer: Any) -> None:
        self.model, self.optimizer = model, getattr(optimizer, "optimizer", optimizer)
        self.gathered: dict[str, Any] | None = None

    def gather(self) -> None:
        from torch.distributed.checkpoint.state_dict import (
            StateDictOptions,
            get_optimizer_state_dict,
        )

        options = StateDictOptions(full_state_dict=True, cpu_offload=True)
        self.gathered = get_optimizer_state_dict(self.model, self.optimizer, options=options)

    def state_dict(self) -> dict[str, Any]:
        if self.gathered is None:
            raise RuntimeError("FullOptimizerState.gather() must run on every process first")
        return self.gathered

    def load_state_dict(self, state: dict[str, Any]) -> None:
        from torch.distributed.checkpoint.state_dict import (
            StateDictOptions,
            set_optimizer_state_dict,
        )

        options = StateDictOptions(full_state_dict=True)
        set_optimizer_state_dict(self.model, self.optimizer, state, options=options)


class Sharding:
    """What the loop does differently when Accelerate shards the model (FSDP, DeepSpeed); without
    sharding `trained` is the module itself and the gathering methods do nothing.

    FSDP2 turns the module it shards into an FSDP module with sharded parameters in place, and
    there is no public way back. choice: a copy (`trained`) is sharded, and the module handed to
    the loop stays a plain module for validation, saving and the evaluation after training, at
    the cost of a second copy of the weights on each process while training (docs/training.md,
    "Several processes").
    """

    def __init__(
        self, accelerator: Accelerator, module: nn.Module, cfg: TrainConfig, resume: bool
    ) -> None:
        check_resumable(accelerator, resume, cfg.checkpoint_every)
        configure_deepspeed(accelerator, cfg.batch_size, cfg.grad_clip)
        self.accelerator, self.module = accelerator, module
        self.is_sharded = is_sharded(accelerator)
        self.can_checkpoint = can_checkpoint(accelerator)
        self.trained = copy.deepcopy(module) if self.is_sharded else module
        self.model: nn.Module = module
        self.saved_optimizer: Any = None  # what checkpoints save and load as the optimizer

    def prepare(self, optimizer: Any, scheduler: Any) -> tuple[nn.Module, Any, Any]:
        """`accelerator.prepare` of the trained module, its optimizer and scheduler."""
        model, optimizer, scheduler = self.accelerator.prepare(self.trained, optimizer, scheduler)
        self.model = model
        is_fsdp = self.accelerator.distributed_type == DistributedType.FSDP
        self.saved_optimizer = FullOptimizerState(model, optimizer) if is_fsdp else optimizer
        return model, optimizer, scheduler

    def gather_weights(self, everywhere: bool = False) -> None:
        """The full weights of the prepared model into the module on the main process
        (`everywhere`: on every process), on the training device. A collective: every process
        calls it."""
        if not self.is_sharded:
            return
        accelerator, module = self.accelerator, self.module
        state = accelerator.get_state_dict(self.model)  # whole on the main process only
        if accelerator.is_main_process or everywhere:
            module.to(accelerator.device)  # validation and evaluation run where training runs
        if accelerator.is_main_process:
            module.load_state_dict(state)
        if everywhere:
            with torch.no_grad():
                for tensor in module.state_dict().values():  # views of parameters and buffers
                    torch.distributed.broadcast(tensor, src=0)

    def gather_checkpoint(self) -> None:
        """Every process: the full weights into the module and, under FSDP, the whole optimizer
        state onto the main process, before it writes a checkpoint."""
        self.gather_weights()
        if isinstance(self.saved_optimizer, FullOptimizerState):
            self.saved_optimizer.gather()

    def load_resumed_weights(self) -> None:
        """After a resume loaded the module (whole, on every process): its weights into the
        shards of the prepared model."""
        if self.is_sharded:
            from torch.distributed.checkpoint.state_dict import (
                StateDictOptions,
                set_model_state_dict,
            )

            options = StateDictOptions(full_state_dict=True)
            set_model_state_dict(self.model, self.module.state_dict(), options=options)


def is_main_process() -> bool:
    """Process 0 of a running process group (`accelerate launch`), or the only process: the one
    that writes a run's shared files (two processes saving one folder at once would collide)."""
    return ProcessShare.current().index == 0


@dataclass(frozen=True)
class ProcessShare:
    """This process' contiguous share of a list of work, and the gathering of every share's
    results in order onto every process (evaluation: each user is ranked by one process).

    Without a running process group (one process, or processes that never formed one) the
    share is everything and gathering returns the results unchanged.
    """

    index: int = 0
    count: int = 1

    @classmethod
    def current(cls, enabled: bool = True) -> ProcessShare:
        """The share of this process in the running process group (`enabled`: else all)."""
        distributed = torch.distributed
        if not (enabled and distributed.is_available() and distributed.is_initialized()):
            return cls()
        return cls(distributed.get_rank(), distributed.get_world_size())

    def of(self, items: Sequence[T]) -> Sequence[T]:
        """Items [len * index / count, len * (index + 1) / count): none lost, none twice."""
        size = len(items)
        return items[size * self.index // self.count : size * (self.index + 1) // self.count]

    def gather(self, results: list[T]) -> list[T]:
        """Every process' results, in process order (so in item order), on every process; a
        collective: every process calls it."""
        if self.count == 1:
            return results
        parts: list[list[T] | None] = [None] * self.count
        torch.distributed.all_gather_object(parts, results)
        return [result for part in parts for result in part or []]
