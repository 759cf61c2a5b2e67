"""Popularity: every history gets the items most often seen in training."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from safetensors.torch import save_file

from llmrec.data.sequences import EvalSet
from llmrec.models.base import WEIGHTS_FILE, FitResult, ModelConfig, RecommenderModel, RunContext
from llmrec.models.saved import read_tensors
from llmrec.recommendations import Histories, Users


class PopConfig(ModelConfig):
    name: Literal["pop"] = "pop"


class Popularity(RecommenderModel):
    name = "pop"
    Config = PopConfig

    def __init__(self, config: PopConfig, catalogue) -> None:
        super().__init__(config, catalogue)
        self.counts = torch.zeros(len(catalogue))

    def _fit(
        self,
        train: Sequence[np.ndarray],
        valid: EvalSet | None,
        run: RunContext,
        user_ids: Sequence[str] | None,
    ) -> FitResult:
        items = np.concatenate([np.asarray(s, dtype=np.int64) for s in train] or [np.zeros(0, int)])
        counts = np.bincount(items, minlength=self.num_items).astype(np.float32)
        self.counts = torch.from_numpy(counts)
        return FitResult()

    def score(self, histories: Histories, users: Users = None) -> torch.Tensor:
        return self.counts.expand(len(histories), -1).clone()

    def tensor_files(self) -> dict[str, dict[str, torch.Tensor]]:
        return {WEIGHTS_FILE: {"counts": self.counts}}

    def _save_state(self, path: Path) -> None:
        save_file({"counts": self.counts.contiguous()}, str(path / WEIGHTS_FILE))

    def _load_state(self, path: Path) -> None:
        self.counts = read_tensors(path / WEIGHTS_FILE, self.tensor_files()[WEIGHTS_FILE])["counts"]
