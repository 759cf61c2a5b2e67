"""What the item-item models (EASE, item-kNN) share: the binary user-item matrix X of the training
sequences, the co-occurrence matrix X^T X computed by column blocks, histories as sparse
multi-hot rows, and the choice of one setting on validation users.

Sparse matrices are torch.sparse COO tensors: scipy is not a dependency (docs/dependencies.md).
A user's repeated item counts once (X is binary), in training and in a history alike.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import torch
from torch import nn

from llmrec.data.sequences import AnyEvalSet
from llmrec.errors import ConfigError
from llmrec.models.base import FitResult, ModelConfig, RecommenderModel, RunContext
from llmrec.recommendations import Histories

logger = logging.getLogger(__name__)

# Elements of one dense (users x block) slice of X; 2**25 float32 values are 128 MiB.
BLOCK_ELEMENTS = 2**25
# Closed-form models train no network: the validator scores the model itself and ignores this.
NO_NETWORK = nn.Module()
ConfigT = TypeVar("ConfigT", bound=ModelConfig)


@dataclass(frozen=True)
class UserItemMatrix:
    """The binary user-item matrix X (num_users x num_items) as its distinct (user, item) pairs,
    sorted by item."""

    users: np.ndarray  # (nnz,) int64
    items: np.ndarray  # (nnz,) int64, ascending
    num_users: int
    num_items: int

    @classmethod
    def from_sequences(cls, sequences: Sequence[np.ndarray], num_items: int) -> UserItemMatrix:
        """X[u, i] = 1 when item i is in training sequence u (once, however often)."""
        num_users = len(sequences)
        lengths = [len(sequence) for sequence in sequences]
        users = np.repeat(np.arange(num_users, dtype=np.int64), lengths)
        items = np.concatenate([np.asarray(s, dtype=np.int64) for s in sequences] or [users])
        # one number per (item, user) pair: unique drops repeats and sorts by item, then user
        pairs = np.unique(items * num_users + users)
        return cls(pairs % max(num_users, 1), pairs // max(num_users, 1), num_users, num_items)

    def item_counts(self) -> np.ndarray:
        """(num_items,) users per item: the diagonal of X^T X."""
        return np.bincount(self.items, minlength=self.num_items)

    def cooccurrence_blocks(self, dtype: torch.dtype) -> Iterator[tuple[slice, torch.Tensor]]:
        """(columns, (num_items, b) dense block of X^T X) for consecutive column blocks, each X^T
        (sparse) times those columns of X (dense): the caller keeps the whole (EASE) or each
        block's top neighbours (item-kNN)."""
        transposed = sparse_matrix(self.items, self.users, (self.num_items, self.num_users), dtype)
        width = max(1, min(self.num_items, BLOCK_ELEMENTS // max(self.num_users, 1)))
        bounds = np.searchsorted(self.items, np.arange(0, self.num_items + width, width))
        for block, start in enumerate(range(0, self.num_items, width)):
            columns = slice(start, min(start + width, self.num_items))
            pairs = slice(bounds[block], bounds[block + 1])
            dense = torch.zeros(self.num_users, columns.stop - start, dtype=dtype)
            users = torch.from_numpy(self.users[pairs])
            dense[users, torch.from_numpy(self.items[pairs] - start)] = 1.0
            yield columns, torch.sparse.mm(transposed, dense)


def distinct_pairs(histories: Histories) -> tuple[np.ndarray, np.ndarray]:
    """(rows, items): each history's distinct items with its row (a repeat counts once)."""
    rows, items = [], []
    for row, history in enumerate(histories):
        distinct = np.unique(np.asarray(history, dtype=np.int64))
        rows.append(np.full(len(distinct), row, dtype=np.int64))
        items.append(distinct)
    empty = np.zeros(0, dtype=np.int64)
    return np.concatenate(rows or [empty]), np.concatenate(items or [empty])


def history_matrix(histories: Histories, num_items: int, dtype: torch.dtype) -> torch.Tensor:
    """Sparse (B, num_items) multi-hot rows of `histories` (a repeated item counts once)."""
    return sparse_matrix(*distinct_pairs(histories), (len(histories), num_items), dtype)


def sparse_matrix(
    rows: np.ndarray, columns: np.ndarray, shape: tuple[int, int], dtype: torch.dtype
) -> torch.Tensor:
    """A sparse COO matrix of ones at distinct (row, column) pairs."""
    indices = torch.from_numpy(np.stack([rows, columns]).astype(np.int64))
    values = torch.ones(len(rows), dtype=dtype)
    # Invariant checks reject out-of-range indices, and saying so silences torch's warning.
    return torch.sparse_coo_tensor(indices, values, shape, check_invariants=True).coalesce()


State = Mapping[str, torch.Tensor]
Setting = Mapping[str, float]  # one candidate setting, e.g. {"lambda": 200.0}


def choose_on_validation(
    model: RecommenderModel,
    settings: Sequence[Setting],
    solve: Callable[[Setting], State],
    use: Callable[[State], None],
    valid: AnyEvalSet | None,
    run: RunContext,
) -> FitResult:
    """Solve the model for each of `settings` and keep the state with the best validation
    `run.train.metric` (ties: the earlier setting); the curve holds one point per setting, with
    the setting's values. Only the best state is kept between solves, so at most two are held
    at once."""
    started = time.perf_counter()
    if len(settings) > 1 and valid is None:
        raise ConfigError(
            f"{model.name}: {len(settings)} settings to choose from ({describe(settings)}) need "
            "validation users; fit with a validation set or give one value of each option"
        )
    if valid is None:
        use(solve(settings[0]))
        return FitResult(train_seconds=time.perf_counter() - started)
    validate = model.validator(valid, run, run.train.eval_users)
    assert validate is not None  # valid is given
    metric = run.train.metric
    history: list[dict[str, float]] = []
    best: tuple[float, int, State] | None = None
    for step, setting in enumerate(settings, start=1):
        state = solve(setting)
        use(state)
        metrics = validate(NO_NETWORK)
        history.append({"step": step, **setting, **metrics})
        logger.info(
            "%s %s: validation %s %.4f", model.name, describe([setting]), metric, metrics[metric]
        )
        if best is None or metrics[metric] > best[0]:
            best = (metrics[metric], step, state)
        use(best[2])  # drop a worse state before the next solve allocates its own
        del state
    assert best is not None  # settings is not empty
    return FitResult(
        best_step=best[1],
        best_metric=best[0],
        history=history,
        train_seconds=time.perf_counter() - started,
    )


def chosen_config(config: ConfigT, fit: FitResult, options: Mapping[str, str]) -> ConfigT:
    """`config` with the setting `fit` chose on validation as the only value of each option
    (`options`: setting key -> config field holding its candidates), so that a refit on train +
    valid items needs no validation users; `config` itself when nothing was chosen."""
    if fit.best_step is None:
        return config
    chosen = fit.history[fit.best_step - 1]
    update = {
        field: (type(getattr(config, field)[0])(chosen[key]),) for key, field in options.items()
    }
    return config.model_copy(update=update)


def describe(settings: Sequence[Setting]) -> str:
    """ "lambda 50; lambda 200" for the log and error messages."""
    return "; ".join(", ".join(f"{key} {value:g}" for key, value in s.items()) for s in settings)
