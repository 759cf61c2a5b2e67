"""EASE (Steck, WWW 2019, "Embarrassingly Shallow Autoencoders for Sparse Data").

An item-item weight matrix B with a zero diagonal, in closed form (paper sec. 3, eq. 8):
P = (X^T X + λI)^-1 and B = I - P · diagMat(1 / diag(P)), i.e. B_ij = -P_ij / P_jj off the
diagonal. A history's scores are the sum of the rows of B at its items (x_u · B). One weight λ,
chosen on validation users from a small grid. The solve is dense (items² values per copy); a
catalogue too large for `max_memory_gb` is refused with the memory it would need.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from pydantic import Field, PositiveFloat
from safetensors.torch import save_file

from llmrec.data.catalogue import Catalogue
from llmrec.data.sequences import EvalSet
from llmrec.errors import ConfigError, ModelFormatError
from llmrec.models.base import FitResult, ModelConfig, RecommenderModel, RunContext
from llmrec.models.item_item import (
    State,
    UserItemMatrix,
    choose_on_validation,
    chosen_config,
    history_matrix,
)
from llmrec.models.saved import read_finite_tensors
from llmrec.recommendations import Histories, Users
from llmrec.training.config import use_threads

logger = logging.getLogger(__name__)
WEIGHTS_FILE = "model.safetensors"
DTYPES = {"float32": torch.float32, "float64": torch.float64}


class EASEConfig(ModelConfig):
    """One L2 weight λ, chosen on validation from `lambdas`; the dense solve's precision and
    memory limit."""

    name: Literal["ease"] = "ease"
    lambdas: tuple[PositiveFloat, ...] = Field(
        (50.0, 200.0, 800.0),
        min_length=1,
        strict=False,  # a YAML list; its items stay strict
        description="L2 weights λ tried, in order; several: the best on validation "
        "(train.metric) is kept, one: it is used without validation",
    )
    precision: Literal["float32", "float64"] = Field(
        "float32", description="float type of the dense solve and of the saved weights"
    )
    max_memory_gb: PositiveFloat = Field(
        8.0,
        description="refuse catalogues whose dense solve needs more than this many GiB "
        "(2^30 bytes)",
    )


def solve_memory_bytes(num_items: int, config: EASEConfig) -> int:
    """Bytes of the dense matrices the fit holds at once: X^T X, the regularised copy, its
    Cholesky factor (then the inverse, in place of the copy), and the best B so far when
    several λ are tried."""
    copies = 3 + (len(config.lambdas) > 1)
    return copies * num_items**2 * DTYPES[config.precision].itemsize


def check_memory(num_items: int, config: EASEConfig) -> None:
    """A ConfigError stating the memory the solve needs, when it is above `max_memory_gb`."""
    need = solve_memory_bytes(num_items, config)
    if need <= config.max_memory_gb * 2**30:
        return
    copies = 3 + (len(config.lambdas) > 1)
    size = DTYPES[config.precision].itemsize
    raise ConfigError(
        f"EASE on {num_items:,} items needs about {need / 2**30:.1f} GiB: {copies} dense "
        f"{num_items:,} x {num_items:,} matrices of {size}-byte {config.precision} "
        f"({num_items:,}² x {size} bytes x {copies} copies), above model.max_memory_gb = "
        f"{config.max_memory_gb:g}. Raise model.max_memory_gb if this machine has the memory, "
        "try one λ (3 copies instead of 4) or precision float32, or use item-kNN (model.name: "
        "itemknn), whose memory grows with items x neighbours"
    )


def ease_weights(gram: torch.Tensor, weight: float) -> torch.Tensor:
    """B = I - P · diagMat(1 / diag(P)) with P = (gram + weight · I)^-1, diagonal zero."""
    regularised = gram.clone()
    regularised.diagonal().add_(weight)
    factor, info = torch.linalg.cholesky_ex(regularised)  # gram + λI is positive definite
    del regularised
    if int(info) != 0:
        raise ValueError(f"X^T X + {weight:g} I is not positive definite in this precision")
    inverse = torch.cholesky_inverse(factor)
    del factor
    weights = inverse.div_(-inverse.diagonal().clone()[None, :])  # B_ij = -P_ij / P_jj
    weights.diagonal().zero_()
    return weights


class EASE(RecommenderModel):
    name = "ease"
    Config = EASEConfig

    def __init__(self, config: EASEConfig, catalogue: Catalogue) -> None:
        super().__init__(config, catalogue)
        self.config: EASEConfig = config
        # Allocated by fit or load (items² values); None scores every item 0.
        self.weights: torch.Tensor | None = None
        self.weight_decay: float | None = None  # the λ chosen

    def _fit(
        self,
        train: Sequence[np.ndarray],
        valid: EvalSet | None,
        run: RunContext,
        user_ids: Sequence[str] | None,
    ) -> FitResult:
        use_threads(run.train)
        check_memory(self.num_items, self.config)
        dtype = DTYPES[self.config.precision]
        matrix = UserItemMatrix.from_sequences(train, self.num_items)
        gram = torch.empty(self.num_items, self.num_items, dtype=dtype)
        for columns, block in matrix.cooccurrence_blocks(dtype):
            gram[:, columns] = block
        result = choose_on_validation(
            self,
            [{"lambda": weight} for weight in self.config.lambdas],
            lambda setting: {
                "weights": ease_weights(gram, setting["lambda"]),
                "lambda": _scalar(setting["lambda"]),
            },
            self._use,
            valid,
            run,
        )
        logger.info("EASE: λ = %g", self.weight_decay)
        return result

    def refit_config(self, fit: FitResult) -> EASEConfig:
        return chosen_config(self.config, fit, {"lambda": "lambdas"})

    def _use(self, state: State) -> None:
        self.weights = state["weights"]
        self.weight_decay = float(state["lambda"][0])

    def score(self, histories: Histories, users: Users = None) -> torch.Tensor:
        if self.weights is None:
            return torch.zeros(len(histories), self.num_items)
        inputs = history_matrix(histories, self.num_items, self.weights.dtype)
        return torch.sparse.mm(inputs, self.weights).float()  # (B, n): x_u · B

    def _save_state(self, path: Path) -> None:
        if self.weights is None:
            raise ValueError("fit EASE before saving it")
        state = {"weights": self.weights.contiguous(), "lambda": _scalar(self.weight_decay)}
        save_file(state, str(path / WEIGHTS_FILE))

    def _load_state(self, path: Path) -> None:
        state = read_finite_tensors(path / WEIGHTS_FILE)
        shape = tuple(state["weights"].shape)
        if shape != (self.num_items, self.num_items):
            raise ModelFormatError(
                f"{path / WEIGHTS_FILE}: weights of shape {shape} for {self.num_items} items"
            )
        self._use(state)


def _scalar(value: float | None) -> torch.Tensor:
    return torch.tensor([value], dtype=torch.float64)
