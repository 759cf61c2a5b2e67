"""BM25 on item text: the query is the text of the most recent history items."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from pydantic import Field, PositiveInt

from llmrec.data.sequences import EvalSet
from llmrec.models.base import FitResult, ModelConfig, RecommenderModel, RunContext
from llmrec.recommendations import Histories, Users
from llmrec.retrieval.bm25 import BM25Index
from llmrec.text.templates import DEFAULT_FIELDS, ItemField, item_text

INDEX_FOLDER = "bm25"


class BM25Config(ModelConfig):
    name: Literal["bm25"] = "bm25"
    fields: tuple[ItemField, ...] = Field(
        DEFAULT_FIELDS, strict=False, description="item fields indexed"
    )
    query_items: PositiveInt = Field(5, description="most recent history items in the query")
    k1: float = Field(1.5, gt=0, description="BM25 term-frequency saturation")
    b: float = Field(0.75, ge=0, le=1, description="BM25 length normalisation")


class BM25Model(RecommenderModel):
    name = "bm25"
    Config = BM25Config

    def __init__(self, config: BM25Config, catalogue) -> None:
        super().__init__(config, catalogue)
        self.documents = [
            item_text(item, config.fields, labelled=False) for item in catalogue.items
        ]
        self.index: BM25Index | None = None

    def _fit(
        self,
        train: Sequence[np.ndarray],
        valid: EvalSet | None,
        run: RunContext,
        user_ids: Sequence[str] | None,
    ) -> FitResult:
        """Index the catalogue; interactions are not used (a pure content baseline)."""
        self.index = BM25Index.build(self.documents, self.config.k1, self.config.b)
        return FitResult()

    def score(self, histories: Histories, users: Users = None) -> torch.Tensor:
        if self.index is None:
            self.fit([])
        rows = [self.index.scores(self.query(history)) for history in histories]
        return torch.from_numpy(np.stack(rows)) if rows else torch.zeros(0, self.num_items)

    def query(self, history: Sequence[int]) -> str:
        recent = list(history)[-self.config.query_items :]
        return " ".join(self.documents[int(i)] for i in recent)

    def _save_state(self, path: Path) -> None:
        if self.index is None:
            self.fit([])
        self.index.save(path / INDEX_FOLDER)

    def _load_state(self, path: Path) -> None:
        self.index = BM25Index.load(path / INDEX_FOLDER, self.num_items)
