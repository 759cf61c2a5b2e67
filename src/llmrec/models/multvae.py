"""Mult-VAE (Liang et al., WWW 2018, "Variational Autoencoders for Collaborative Filtering").

A user's items, a multi-hot vector over the catalogue, are L2-normalised, dropped out, encoded to a
Gaussian (items -> 600 -> 2 x 200, tanh), and a sample is decoded to logits over every item
(200 -> 600 -> items). The loss is the multinomial log-likelihood of the user's items plus a KL
term whose weight beta grows linearly from 0 to `beta_max` over `total_anneal_steps` training
batches (paper sec. 2.2.2). The order of the history is ignored; scores are the decoder logits at
the mean of the encoding.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Literal

import numpy as np
import torch
from pydantic import Field, PositiveInt
from torch import nn
from torch.nn import functional

from llmrec.models.base import ModelConfig, RunContext, module_device
from llmrec.models.losses import multinomial_nll
from llmrec.models.single_network import NetworkModel
from llmrec.recommendations import Histories
from llmrec.training.batching import count_batches, pad_index_lists, scatter_counts
from llmrec.training.protocol import LossOutput, TrainableNetwork


class MultVAEConfig(ModelConfig):
    """The paper's architecture and annealing; batch (500 users) and lr (1e-3) are train.*."""

    name: Literal["multvae"] = "multvae"
    hidden_size: PositiveInt = Field(600, description="width of the encoder and decoder layer")
    latent_size: PositiveInt = Field(200, description="dimension of the Gaussian latent")
    dropout: float = Field(0.5, ge=0.0, lt=1.0, description="dropout on the normalised input")
    beta_max: float = Field(0.2, ge=0.0, description="final weight of the KL term (anneal cap)")
    total_anneal_steps: PositiveInt = Field(
        200_000, description="training batches over which beta grows linearly from 0"
    )
    score_batch_size: PositiveInt = Field(1024, description="histories per scoring batch")


def gaussian_kl(mean: torch.Tensor, log_variance: torch.Tensor) -> torch.Tensor:
    """Mean over users of KL(N(mean, exp(log_variance)) || N(0, I)); both (B, D)."""
    terms = log_variance.exp() + mean.square() - 1.0 - log_variance
    return 0.5 * terms.sum(dim=1).mean()


class MultVAENetwork(TrainableNetwork):
    """Encoder items -> hidden -> (mean, log-variance); decoder latent -> hidden -> item logits."""

    def __init__(self, config: MultVAEConfig, num_items: int) -> None:
        super().__init__()
        self.num_items = num_items
        self.dropout = nn.Dropout(config.dropout)
        self.encoder = nn.Linear(num_items, config.hidden_size)
        self.to_gaussian = nn.Linear(config.hidden_size, 2 * config.latent_size)
        self.decoder = nn.Linear(config.latent_size, config.hidden_size)
        self.to_items = nn.Linear(config.hidden_size, num_items)
        for layer in (self.encoder, self.to_gaussian, self.decoder, self.to_items):
            # As the authors' code: Xavier weights, biases normal with std 0.001.
            nn.init.xavier_uniform_(layer.weight)
            nn.init.normal_(layer.bias, std=0.001)

    def multi_hot(self, items: torch.Tensor) -> torch.Tensor:
        """(B, T) item indices padded with num_items -> (B, V) 0/1 (a repeat counts once), made
        on the indices' device: the batches carry index lists, never (B, V) rows."""
        return scatter_counts(items, self.num_items).clamp_(max=1.0)

    def encode(self, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, V) multi-hot -> mean, log-variance, each (B, D)."""
        hidden = functional.normalize(inputs, dim=1)  # an empty history stays the zero vector
        hidden = torch.tanh(self.encoder(self.dropout(hidden)))
        mean, log_variance = self.to_gaussian(hidden).chunk(2, dim=1)
        return mean, log_variance

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        return self.to_items(torch.tanh(self.decoder(latent)))  # (B, V)

    def forward(self, batch: dict[str, torch.Tensor]) -> LossOutput:
        inputs = self.multi_hot(batch["items"])  # (B, V)
        mean, log_variance = self.encode(inputs)
        latent = mean
        if self.training:  # the reparameterisation trick (sec. 2.2)
            latent = mean + torch.randn_like(mean) * (0.5 * log_variance).exp()
        nll = multinomial_nll(self.decode(latent), inputs)
        kl = gaussian_kl(mean, log_variance)
        loss = nll + batch["beta"] * kl
        parts = {"nll": nll.detach(), "kl": kl.detach()}
        return LossOutput(loss, parts, num_tokens=int(inputs.sum()), num_terms=len(inputs))

    def scores(self, inputs: torch.Tensor) -> torch.Tensor:
        """(B, V) item logits at the mean of the encoding (no sampling)."""
        mean, _ = self.encode(inputs)
        return self.decode(mean)


class UserBatches:
    """Each epoch: training users shuffled with (seed, epoch), cut into batches of `batch_size`.

    A batch holds its users' items (B, T), padded with num_items, and the KL weight of its update:
    beta = min(beta_max, update / total_anneal_steps), update = epoch x batches per epoch + batch
    (choice: batches, as the authors count updates; with grad_accum > 1 they differ). Users
    without training items have nothing to reconstruct and are left out.
    """

    def __init__(
        self,
        sequences: Sequence[np.ndarray],
        config: MultVAEConfig,
        num_items: int,
        batch_size: int,
        seed: int,
    ) -> None:
        self.sequences = sequences
        self.users = np.flatnonzero([len(s) > 0 for s in sequences])  # rows with training items
        self.config = config
        self.pad = num_items
        self.batch_size = batch_size
        self.seed = seed

    def num_batches(self, epoch: int) -> int:
        return count_batches(len(self.users), self.batch_size)

    def batches(self, epoch: int, start: int = 0) -> Iterator[dict[str, torch.Tensor]]:
        order = np.random.default_rng([self.seed, epoch]).permutation(len(self.users))
        per_epoch = self.num_batches(epoch)
        for index in range(start, per_epoch):
            rows = order[index * self.batch_size : (index + 1) * self.batch_size]
            yield self._collate(self.users[rows], epoch * per_epoch + index)

    def _collate(self, users: np.ndarray, update: int) -> dict[str, torch.Tensor]:
        items = [np.unique(np.asarray(self.sequences[user], dtype=np.int64)) for user in users]
        beta = min(self.config.beta_max, update / self.config.total_anneal_steps)
        return {"items": pad_index_lists(items, self.pad), "beta": torch.tensor(beta)}


class MultVAE(NetworkModel):
    name = "multvae"
    Config = MultVAEConfig

    def new_network(self) -> MultVAENetwork:
        return MultVAENetwork(self.config, self.num_items)

    def batches(self, train_sequences: Sequence[np.ndarray], run: RunContext) -> UserBatches:
        return UserBatches(
            train_sequences, self.config, self.num_items, run.train.batch_size, run.seed
        )

    def _score_with(self, network: MultVAENetwork, histories: Histories) -> torch.Tensor:
        """(B, V) logits of the multi-hot of each history (order and repeats ignored)."""
        items = pad_index_lists([np.asarray(h, dtype=np.int64) for h in histories], self.num_items)
        return network.scores(network.multi_hot(items.to(module_device(network))))
