"""Item-kNN (Sarwar et al., WWW 2001; Deshpande & Karypis, TOIS 2004), the item-based
collaborative filtering baseline as tuned by Ferrari Dacrema et al. (RecSys 2019).

Similarity of items i and j: the cosine of their columns in the binary user-item matrix,
|U_i ∩ U_j| / (sqrt(|U_i|) sqrt(|U_j|) + shrink). Each item keeps its `neighbours` most similar
items (itself excluded), so the model is sparse: items x neighbours. A history's score of item j
is the sum of the similarities of j's neighbours that are in the history (x_u · W, W[i, j] =
sim(i, j) when i is among j's neighbours), as in Ferrari Dacrema et al.'s ItemKNNCF.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from pydantic import Field, NonNegativeFloat, PositiveInt
from safetensors.torch import save_file

from llmrec.data.catalogue import Catalogue
from llmrec.data.sequences import EvalSet
from llmrec.errors import ModelFormatError
from llmrec.models.base import FitResult, ModelConfig, RecommenderModel, RunContext
from llmrec.models.item_item import (
    Setting,
    State,
    UserItemMatrix,
    choose_on_validation,
    chosen_config,
    distinct_pairs,
)
from llmrec.models.saved import read_finite_tensors
from llmrec.recommendations import Histories, Users
from llmrec.training.config import use_threads

WEIGHTS_FILE = "model.safetensors"


@dataclass(frozen=True)
class WeightRows:
    """W by rows in CSR layout: entries offsets[i]:offsets[i + 1] are item i's row."""

    offsets: np.ndarray  # (n + 1,) int64
    targets: np.ndarray  # (nnz,) int64: the target item j of each entry
    similarities: torch.Tensor  # (nnz,) float32: sim(i, j)


class ItemKNNConfig(ModelConfig):
    """Cosine similarity with shrinkage; the neighbours kept per item, chosen on validation."""

    name: Literal["itemknn"] = "itemknn"
    neighbours: tuple[PositiveInt, ...] = Field(
        (50, 100, 200),
        min_length=1,
        strict=False,  # a YAML list; its items stay strict
        description="most similar items kept per item (top-N), tried in order",
    )
    shrinks: tuple[NonNegativeFloat, ...] = Field(
        (0.0, 10.0),
        min_length=1,
        strict=False,  # a YAML list; its items stay strict
        description="values added to the cosine's denominator (damping similarities of rare "
        "items), tried in order. Every (shrink, neighbours) pair is tried and the best on "
        "validation (train.metric) kept; a single pair is used without validation",
    )


def nearest_neighbours(
    matrix: UserItemMatrix, count: int, shrink: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """(num_items, count) indices of each item's most similar items, most similar first, and
    their cosine similarities (0 where an item has fewer similar items than `count`)."""
    norms = torch.from_numpy(matrix.item_counts()).float().sqrt()
    count = min(count, matrix.num_items - 1)
    indices = torch.zeros(matrix.num_items, count, dtype=torch.int64)
    similarities = torch.zeros(matrix.num_items, count)
    for columns, block in matrix.cooccurrence_blocks(torch.float32):  # (n, b) |U_i ∩ U_j|
        denominator = norms[:, None] * norms[None, columns] + shrink
        cosine = torch.where(denominator > 0, block / denominator.clamp_min(1e-12), 0.0)
        positions = torch.arange(columns.stop - columns.start)
        cosine[columns.start + positions, positions] = 0.0  # an item is not its own neighbour
        top = torch.topk(cosine, count, dim=0)  # (count, b), sorted descending
        indices[columns] = top.indices.T
        similarities[columns] = top.values.T
    return indices, similarities


class ItemKNN(RecommenderModel):
    name = "itemknn"
    Config = ItemKNNConfig

    def __init__(self, config: ItemKNNConfig, catalogue: Catalogue) -> None:
        super().__init__(config, catalogue)
        self.config: ItemKNNConfig = config
        # Row j: the neighbours of target item j and their similarities (none before fit).
        self.neighbours = torch.zeros(self.num_items, 0, dtype=torch.int64)
        self.similarities = torch.zeros(self.num_items, 0)
        self._rows: WeightRows | None = None  # built from the lists when first needed

    def _fit(
        self,
        train: Sequence[np.ndarray],
        valid: EvalSet | None,
        run: RunContext,
        user_ids: Sequence[str] | None,
    ) -> FitResult:
        use_threads(run.train)
        matrix = UserItemMatrix.from_sequences(train, self.num_items)
        most = max(self.config.neighbours)
        computed: dict[float, tuple[torch.Tensor, torch.Tensor]] = {}

        def solve(setting: Setting) -> State:
            # Top-N lists are sorted, so fewer neighbours are a prefix of the most computed;
            # the settings run shrink by shrink, so one shrink's lists are held at a time.
            shrink, count = setting["shrink"], int(setting["neighbours"])
            if shrink not in computed:
                computed.clear()
                computed[shrink] = nearest_neighbours(matrix, most, shrink)
            indices, similarities = computed[shrink]
            return {
                "neighbours": indices[:, :count].contiguous(),
                "similarities": similarities[:, :count].contiguous(),
            }

        settings = [
            {"shrink": shrink, "neighbours": count}
            for shrink in self.config.shrinks
            for count in self.config.neighbours
        ]
        return choose_on_validation(self, settings, solve, self._use, valid, run)

    def refit_config(self, fit: FitResult) -> ItemKNNConfig:
        return chosen_config(self.config, fit, {"shrink": "shrinks", "neighbours": "neighbours"})

    def _use(self, state: State) -> None:
        self.neighbours = state["neighbours"]
        self.similarities = state["similarities"]
        self._rows = None

    @property
    def weight_rows(self) -> WeightRows:
        if self._rows is None:
            self._rows = self._weight_rows()
        return self._rows

    def _weight_rows(self) -> WeightRows:
        """The rows of W: for each item i, the target items that have i as a neighbour, with
        sim(i, target) (the neighbour lists inverted), so a history adds up its items' rows."""
        num_items, count = self.neighbours.shape
        items = self.neighbours.reshape(-1).numpy()
        order = np.argsort(items, kind="stable")
        offsets = np.zeros(num_items + 1, dtype=np.int64)
        offsets[1:] = np.cumsum(np.bincount(items, minlength=num_items))
        targets = np.repeat(np.arange(num_items, dtype=np.int64), count)[order]
        return WeightRows(offsets, targets, self.similarities.reshape(-1)[order])

    def score(self, histories: Histories, users: Users = None) -> torch.Tensor:
        """(B, n) x_u · W: each distinct history item adds its row of W."""
        rows, items = distinct_pairs(histories)
        offsets = self.weight_rows.offsets
        starts, lengths = offsets[items], offsets[items + 1] - offsets[items]
        # The entries of every (row, item) pair's row of W, one row after the other: entry e of
        # pair p sits at starts[p] + e, and pair p's entries begin at ends[p] - lengths[p].
        ends = np.cumsum(lengths)
        total = int(ends[-1]) if len(ends) else 0
        entries = np.arange(total) + np.repeat(starts - (ends - lengths), lengths)
        cells = np.repeat(rows, lengths) * self.num_items + self.weight_rows.targets[entries]
        scores = torch.zeros(len(histories) * self.num_items)
        scores.index_add_(0, torch.from_numpy(cells), self.weight_rows.similarities[entries])
        return scores.view(len(histories), self.num_items)

    def _save_state(self, path: Path) -> None:
        state = {"neighbours": self.neighbours, "similarities": self.similarities}
        save_file(state, str(path / WEIGHTS_FILE))

    def _load_state(self, path: Path) -> None:
        state = read_finite_tensors(path / WEIGHTS_FILE)
        neighbours, similarities = state["neighbours"], state["similarities"]
        if neighbours.ndim != 2 or len(neighbours) != self.num_items:
            raise ModelFormatError(
                f"{path / WEIGHTS_FILE}: neighbours of shape {tuple(neighbours.shape)} for "
                f"{self.num_items} items"
            )
        if similarities.shape != neighbours.shape:
            raise ModelFormatError(f"{path / WEIGHTS_FILE}: similarities and neighbours differ")
        if neighbours.numel() and (neighbours.min() < 0 or neighbours.max() >= self.num_items):
            raise ModelFormatError(f"{path / WEIGHTS_FILE}: a neighbour outside the catalogue")
        self._use(state)
