"""SASRec (Kang & McAuley, ICDM 2018) trained with full softmax cross-entropy over all items.

The strong variant (Klenitskiy & Vasilev, RecSys 2023; Petrov & Macdonald, RecSys 2023): every
position of a training sequence predicts its next item against the whole catalogue. Sequences
are right-padded so a causal mask alone keeps real positions away from padding; positions are
counted back from the most recent item, so the last item always has position 0.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Literal, Self

import numpy as np
import torch
from pydantic import Field, PositiveInt, model_validator
from torch import nn

from llmrec.models.base import ModelConfig, RunContext, module_device
from llmrec.models.losses import full_softmax_cross_entropy, sampled_softmax_cross_entropy
from llmrec.models.single_network import NetworkModel
from llmrec.recommendations import Histories
from llmrec.training.batching import count_batches, length_pooled_batches, pad_index_lists
from llmrec.training.protocol import LossOutput, TrainableNetwork


class SASRecConfig(ModelConfig):
    name: Literal["sasrec"] = "sasrec"
    hidden_size: PositiveInt = Field(64, description="embedding and hidden width")
    num_layers: PositiveInt = Field(2, description="transformer blocks")
    num_heads: PositiveInt = Field(2, description="attention heads per block")
    ffn_multiplier: PositiveInt = Field(4, description="feed-forward width / hidden_size")
    dropout: float = Field(0.5, ge=0.0, lt=1.0, description="dropout on embeddings and blocks")
    max_length: PositiveInt = Field(50, description="most recent history items the model reads")
    loss: Literal["full", "sampled"] = Field(
        "full",
        description="full: softmax cross-entropy over the whole catalogue (SASRec-CE); sampled: "
        "the target against num_negatives uniform negatives per position (sampled "
        "softmax, as the eSASRec benchmark's 'SASRec SS')",
    )
    num_negatives: PositiveInt = Field(256, description="negatives per position for loss: sampled")
    score_batch_size: PositiveInt = Field(1024, description="histories per scoring batch")

    @model_validator(mode="after")
    def _heads_divide_width(self) -> Self:
        if self.hidden_size % self.num_heads:
            raise ValueError(
                f"num_heads ({self.num_heads}) must divide hidden_size ({self.hidden_size}): "
                "each attention head gets hidden_size / num_heads dimensions"
            )
        return self


class SASRecNetwork(TrainableNetwork):
    """Item + reverse-position embeddings -> pre-LN causal transformer -> dot with item table."""

    def __init__(self, config: SASRecConfig, num_items: int) -> None:
        super().__init__()
        hidden = config.hidden_size
        self.num_items = num_items
        # None: full softmax; else the negatives of the sampled softmax
        self.num_negatives = config.num_negatives if config.loss == "sampled" else None
        self.item_embedding = nn.Embedding(num_items + 1, hidden, padding_idx=num_items)
        self.position_embedding = nn.Embedding(config.max_length, hidden)
        self.dropout = nn.Dropout(config.dropout)
        layer = nn.TransformerEncoderLayer(
            hidden,
            config.num_heads,
            hidden * config.ffn_multiplier,
            config.dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(
            layer, config.num_layers, norm=nn.LayerNorm(hidden), enable_nested_tensor=False
        )
        self.apply(_init_weights)

    def encode(self, items: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(B, T) right-padded item indices -> (B, T, H) hidden states."""
        steps = items.shape[1]
        columns = torch.arange(steps, device=items.device)
        positions = (lengths[:, None] - 1 - columns[None, :]).clamp(min=0)  # (B, T)
        hidden = self.item_embedding(items) * (self.item_embedding.embedding_dim**0.5)
        hidden = self.dropout(hidden + self.position_embedding(positions))
        causal = nn.Transformer.generate_square_subsequent_mask(steps, device=items.device)
        return self.encoder(hidden, mask=causal, is_causal=True)

    def item_table(self) -> torch.Tensor:
        return self.item_embedding.weight[: self.num_items]  # (V, H)

    def forward(self, batch: dict[str, torch.Tensor]) -> LossOutput:
        hidden = self.encode(batch["inputs"], batch["lengths"])  # (B, T, H)
        is_target = batch["targets"] >= 0
        # Logits only at real positions: against every item, or the batch's sampled negatives.
        hidden, targets = hidden[is_target], batch["targets"][is_target]
        if self.num_negatives is None:
            loss = full_softmax_cross_entropy(hidden, self.item_table(), targets)
        else:
            loss = sampled_softmax_cross_entropy(
                hidden, self.item_table(), targets, self.num_negatives
            )
        positions = int(is_target.sum())
        return LossOutput(loss, {"ce": loss.detach()}, positions, num_terms=positions)

    def last_hidden(self, items: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        hidden = self.encode(items, lengths)
        return hidden[torch.arange(len(items), device=items.device), lengths - 1]  # (B, H)


def _init_weights(module: nn.Module) -> None:
    if isinstance(module, nn.Linear | nn.Embedding):
        nn.init.normal_(module.weight, std=0.02)
    if isinstance(module, nn.Linear) and module.bias is not None:
        nn.init.zeros_(module.bias)


class SequenceBatches:
    """Training batches of (input, next-item target) windows, similar lengths grouped together.

    Sequences longer than max_length + 1 are cut from the end into windows that share one item,
    so every training target is used once. A window is kept as (sequence, start, end), not as a
    copy; the order depends only on (seed, epoch), and a batch is collated when asked for.
    """

    def __init__(
        self,
        sequences: Sequence[np.ndarray],
        config: SASRecConfig,
        num_items: int,
        batch_size: int,
        seed: int,
    ) -> None:
        self.sequences = sequences
        self.sequence_index, self.starts, self.ends = _windows(sequences, config.max_length + 1)
        self.lengths = self.ends - self.starts
        self.pad = num_items
        self.batch_size = batch_size
        self.seed = seed

    def num_batches(self, epoch: int) -> int:
        return count_batches(len(self.lengths), self.batch_size)

    def batches(self, epoch: int, start: int = 0) -> Iterator[dict[str, torch.Tensor]]:
        rng = np.random.default_rng([self.seed, epoch])
        plan = length_pooled_batches(self.lengths, self.batch_size, rng)
        return (self._collate(rows) for rows in plan[start:])

    def _collate(self, rows: np.ndarray) -> dict[str, torch.Tensor]:
        windows = [
            np.asarray(self.sequences[self.sequence_index[row]])[self.starts[row] : self.ends[row]]
            for row in rows
        ]
        return {
            "inputs": pad_index_lists([window[:-1] for window in windows], self.pad),
            "targets": pad_index_lists([window[1:] for window in windows], -100),
            "lengths": torch.from_numpy(self.lengths[rows] - 1),
        }


def _windows(
    sequences: Sequence[np.ndarray], size: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(sequence index, start, end) of each window of at most `size` items, cut from the end of
    each sequence of two or more items with one item shared between neighbours, in order."""
    lengths = np.fromiter((len(s) for s in sequences), dtype=np.int64, count=len(sequences))
    step = size - 1
    counts = np.where(lengths >= 2, -(-(lengths - 1) // step), 0)
    sequence_index = np.repeat(np.arange(len(sequences)), counts)
    from_end = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    ends = lengths[sequence_index] - from_end * step
    return sequence_index, np.maximum(0, ends - size), ends


class SASRec(NetworkModel):
    name = "sasrec"
    Config = SASRecConfig

    def new_network(self) -> SASRecNetwork:
        return SASRecNetwork(self.config, self.num_items)

    def batches(self, train_sequences: Sequence[np.ndarray], run: RunContext) -> SequenceBatches:
        return SequenceBatches(
            train_sequences, self.config, self.num_items, run.train.batch_size, run.seed
        )

    def _score_with(self, network: SASRecNetwork, histories: Histories) -> torch.Tensor:
        """(B, V) scores; an empty history scores every item 0 (no evidence either way)."""
        recent = [np.asarray(h, dtype=np.int64)[-self.config.max_length :] for h in histories]
        lengths = np.array([len(h) for h in recent], dtype=np.int64)
        steps = max(1, int(lengths.max(initial=1)))
        items = np.full((len(recent), steps), self.num_items, dtype=np.int64)
        for row, history in enumerate(recent):
            items[row, : len(history)] = history
        device = module_device(network)
        hidden = network.last_hidden(
            torch.from_numpy(items).to(device), torch.from_numpy(np.maximum(lengths, 1)).to(device)
        )
        scores = hidden @ network.item_table().T
        scores[torch.from_numpy(lengths == 0).to(device)] = 0.0
        return scores
