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
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.utils import gather_object

from llmrec.training.checkpoint import current_rng_states


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
