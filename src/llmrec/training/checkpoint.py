"""Resumable training checkpoints, written atomically into the run's own `checkpoints/` folder
(llmrec.atomic: fsynced before the rename; a kill between the renames is recovered on resume).

Weights and RNG states go to safetensors; optimizer and scheduler states (plain tensors and
numbers) go through `torch.save` and are read back with `weights_only=True`; counters to JSON.
The main process writes; the RNG file holds every process' states (keys `torch`, `cuda0`, ... for
process 0, `process1.torch`, ... for the others), so a multi-process run resumes exactly.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file, load_model, save_file, save_model
from torch import nn

from llmrec.atomic import finish_interrupted_swap, replacing_folder
from llmrec.training.protocol import TrainableNetwork

MODEL_FILE = "model.safetensors"
RNG_FILE = "rng.safetensors"

logger = logging.getLogger(__name__)


@dataclass
class LoopState:
    """Counters that, with the weights and RNG, let a run continue exactly where it stopped."""

    epoch: int = 0
    batches_done: int = 0  # batches of `epoch` already trained
    step: int = 0  # optimizer steps so far
    best_metric: float | None = None
    best_step: int | None = None
    best_epoch: int | None = None
    evals_without_improvement: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    train_seconds: float = 0.0  # wall time of the run so far, earlier resumed parts included


def save_weights(module: nn.Module, path: Path) -> None:
    """safetensors' save_model keeps one copy of tied weights (an LLM's embedding and head).

    A network whose `TrainingPlan` says `checkpoint_trainable_only` (CLLM4Rec: a frozen LLM
    under small ID tables) saves only the parameters that train; the frozen rest is rebuilt from
    its source.
    """
    if _trainable_only(module):
        save_file(_trainable(module), str(path))
    else:
        save_model(module, str(path))


def load_weights(module: nn.Module, path: Path) -> None:
    if not _trainable_only(module):
        load_model(module, str(path))
        return
    saved, expected = load_file(str(path)), _trainable(module)
    if saved.keys() != expected.keys():
        raise ValueError(
            f"{path} holds {sorted(saved)}, but the trainable parameters are {sorted(expected)}"
        )
    with torch.no_grad():
        for name, parameter in module.named_parameters():
            if name in saved:
                parameter.copy_(saved[name])


def _trainable_only(module: nn.Module) -> bool:
    return isinstance(module, TrainableNetwork) and module.training_plan().checkpoint_trainable_only


def _trainable(module: nn.Module) -> dict[str, torch.Tensor]:
    return {
        name: parameter.detach().contiguous()
        for name, parameter in module.named_parameters()
        if parameter.requires_grad
    }


def save_checkpoint(
    folder: Path,
    module: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    state: LoopState,
    rng: list[dict[str, torch.Tensor]] | None = None,
) -> None:
    """Write the checkpoint folder atomically (llmrec.atomic: temporary sibling, fsync, rename):
    a kill at any moment leaves the previous complete checkpoint or the new one.

    `rng`: each process' RNG states in process order (default: this process' own).
    """
    if rng is None:
        rng = [current_rng_states()]
    flat = {
        _rng_prefix(process) + name: tensor
        for process, states in enumerate(rng)
        for name, tensor in states.items()
    }
    with replacing_folder(folder) as temporary:
        save_weights(module, temporary / MODEL_FILE)
        torch.save(optimizer.state_dict(), temporary / "optimizer.pt")
        torch.save(scheduler.state_dict(), temporary / "scheduler.pt")
        save_file(flat, str(temporary / RNG_FILE))
        (temporary / "state.json").write_text(json.dumps(asdict(state), indent=1), encoding="utf-8")


def save_best_weights(folder: Path, module: nn.Module) -> None:
    """FOLDER/model.safetensors (the best validated weights so far), written atomically."""
    with replacing_folder(folder) as temporary:
        save_weights(module, temporary / MODEL_FILE)


def recover_checkpoint(folder: Path) -> bool:
    """Finish a swap of the checkpoint `folder` that a kill stopped between its two renames
    (then FOLDER.tmp and FOLDER.old are both complete; the newer one is kept); True when a
    complete checkpoint is then in `folder`."""
    finish_interrupted_swap(folder)
    return folder.is_dir()


def load_checkpoint(
    folder: Path,
    module: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    process_index: int = 0,
) -> LoopState:
    """Restore weights, optimizer, scheduler and this process' RNG; return the loop counters.

    choice: a process without saved RNG states (the run was started with fewer processes) keeps
    its freshly seeded state, with a warning: the data position and weights still resume exactly.
    """
    load_weights(module, folder / MODEL_FILE)
    optimizer.load_state_dict(torch.load(folder / "optimizer.pt", weights_only=True))
    scheduler.load_state_dict(torch.load(folder / "scheduler.pt", weights_only=True))
    prefix = _rng_prefix(process_index)
    saved = load_file(str(folder / RNG_FILE))
    rng = {
        name[len(prefix) :]: tensor
        for name, tensor in saved.items()
        if name.startswith(prefix) and "." not in name[len(prefix) :]
    }
    if "torch" in rng:
        torch.set_rng_state(rng.pop("torch"))
        if rng and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([rng[f"cuda{i}"] for i in range(len(rng))])
    else:
        logger.warning(
            "no RNG state for process %d in %s: random draws will differ", process_index, folder
        )
    return LoopState(**json.loads((folder / "state.json").read_text(encoding="utf-8")))


def current_rng_states() -> dict[str, torch.Tensor]:
    """This process' torch RNG states: CPU and every CUDA device."""
    states = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        states |= {f"cuda{i}": state for i, state in enumerate(torch.cuda.get_rng_state_all())}
    return states


def _rng_prefix(process_index: int) -> str:
    return "" if process_index == 0 else f"process{process_index}."
