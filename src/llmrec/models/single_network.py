"""`NetworkModel`: the shape shared by models that are one network trained on the shared loop
(SASRec, Mult-VAE): a fresh network per fit, the model's batches, validation on a seeded user
sample (`RecommenderModel.validator`), chunked scoring, and the weights in one safetensors file."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from llmrec.data.catalogue import Catalogue
from llmrec.data.sequences import AnyEvalSet
from llmrec.models.base import WEIGHTS_FILE, FitResult, ModelConfig, RecommenderModel, RunContext
from llmrec.models.saved import read_tensors
from llmrec.recommendations import Histories, Users
from llmrec.training.checkpoint import save_weights
from llmrec.training.loop import BatchSource, train
from llmrec.training.protocol import TrainableNetwork


class NetworkModel(RecommenderModel):
    """Subclasses build the network, the batches, and score histories with a given network."""

    def __init__(self, config: ModelConfig, catalogue: Catalogue) -> None:
        super().__init__(config, catalogue)
        self.network = self.new_network()

    @abstractmethod
    def new_network(self) -> TrainableNetwork:
        """A freshly initialised network (the caller seeds the RNG)."""

    @abstractmethod
    def batches(self, train_sequences: Sequence[np.ndarray], run: RunContext) -> BatchSource:
        """The training batches of one fit."""

    @abstractmethod
    def _score_with(self, network: nn.Module, histories: Histories) -> torch.Tensor:
        """(B, n_items) scores of `histories` by `network` (the loop's unwrapped module)."""

    def _fit(
        self,
        train_sequences: Sequence[np.ndarray],
        valid: AnyEvalSet | None,
        run: RunContext,
        user_ids: Sequence[str] | None,
    ) -> FitResult:
        torch.manual_seed(run.seed)
        self.network = self.new_network()
        result = train(
            self.network,
            self.batches(train_sequences, run),
            self.validator(valid, run, run.train.eval_users),
            run.train,
            run.run_dir,
            seed=run.seed,
            resume=run.resume,
            show_progress=run.show_progress,
        )
        self.network.eval()
        return FitResult.from_train(result)

    def score(self, histories: Histories, users: Users = None) -> torch.Tensor:
        self.network.eval()
        size = self.config.score_batch_size
        # Chunks of similar lengths: a chunk is padded to its longest history, not the longest
        # of all (most histories are short), then the rows go back to their order.
        # Each chunk is written into its rows at once: one (B, n_items) result and one chunk
        # exist at a time (no concatenated copy, no reordered copy).
        order = sorted(range(len(histories)), key=lambda row: len(histories[row]))
        scores = torch.zeros(0, self.num_items)
        with torch.no_grad():
            for start in range(0, len(histories), size):
                rows = order[start : start + size]
                chunk = self._score_with(self.network, [histories[row] for row in rows]).cpu()
                if start == 0:
                    scores = torch.empty(len(histories), self.num_items, dtype=chunk.dtype)
                scores[torch.tensor(rows, dtype=torch.long)] = chunk
        return scores

    def tensor_files(self) -> dict[str, dict[str, torch.Tensor]]:
        return {WEIGHTS_FILE: self.network.state_dict()}

    def _save_state(self, path: Path) -> None:
        save_weights(self.network, path / WEIGHTS_FILE)

    def _load_state(self, path: Path) -> None:
        expected = self.tensor_files()[WEIGHTS_FILE]
        self.network.load_state_dict(read_tensors(path / WEIGHTS_FILE, expected))
        self.network.eval()
