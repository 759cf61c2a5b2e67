"""CALRec training examples (history -> next item, as token ids) and their padded batches.

One example per user by default (the last training transition); `all` uses every transition.
Stage I mixes several data sets, sampling each example's data set with probability proportional
to its number of users ** exponent (CALRec sec. 3.3: users ** 0.3).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from llmrec.text.templates import ItemLines
from llmrec.training.batching import count_batches

TrainingTargets = Literal["last", "all"]


@dataclass(frozen=True)
class Example:
    """Token ids of one user-tower prompt and its target; `key` identifies the target item
    across every data set of a mixture (duplicates are masked in the contrastive losses)."""

    prompt: tuple[int, ...]
    target: tuple[int, ...]  # the target line without its newline
    newline: tuple[int, ...]
    key: int


def build_examples(
    sequences: Sequence[np.ndarray], lines: ItemLines, targets: TrainingTargets, key_offset: int = 0
) -> list[Example]:
    """Examples from training sequences; a transition needs at least one history item."""
    examples = []
    for sequence in sequences:
        positions = range(1, len(sequence)) if targets == "all" else [len(sequence) - 1]
        for position in positions:
            if position < 1:
                continue
            target = int(sequence[position])
            examples.append(
                Example(
                    tuple(lines.prompt_ids(sequence[:position])),
                    lines.ids[target],
                    lines.newline,
                    key_offset + target,
                )
            )
    return examples


class ExampleBatches:
    """Deterministic batches per (seed, epoch): one pool is shuffled; several are mixed. An
    epoch is planned as (pool, example) indices; each batch is collated when asked for. A pool
    holds examples (`collate`) or packed user sequences (`packing.collate_packed`)."""

    def __init__(
        self,
        pools: Sequence[Sequence[Any]],
        batch_size: int,
        pad_id: int,
        seed: int,
        weights: Sequence[float] | None = None,
        examples_per_epoch: int | None = None,
        collate_fn: Callable[[Sequence[Any], int], dict[str, torch.Tensor]] | None = None,
    ) -> None:
        self.pools = [list(pool) for pool in pools if pool]
        if not self.pools:
            raise ValueError(
                "no training examples: every sequence is shorter than two items (packed: than "
                "two lines within extensions.packing.token_budget)"
            )
        weights = np.asarray(weights if weights is not None else [1.0] * len(pools), dtype=float)
        weights = weights[[bool(pool) for pool in pools]]
        self.weights = weights / weights.sum()
        self.examples_per_epoch = examples_per_epoch or sum(len(pool) for pool in self.pools)
        self.batch_size = batch_size
        self.pad_id = pad_id
        self.seed = seed
        self.collate = collate_fn or collate

    def num_batches(self, epoch: int) -> int:
        return count_batches(self.examples_per_epoch, self.batch_size)

    def batches(self, epoch: int, start: int = 0) -> Iterator[dict[str, torch.Tensor]]:
        pools, examples = self._epoch_plan(np.random.default_rng([self.seed, epoch]))
        size = self.batch_size
        for begin in range(start * size, len(examples), size):
            rows = zip(pools[begin : begin + size], examples[begin : begin + size], strict=True)
            yield self.collate([self.pools[pool][example] for pool, example in rows], self.pad_id)

    def _epoch_plan(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """(pool, example index) of each example of the epoch, in order: indices, not examples."""
        if len(self.pools) == 1 and self.examples_per_epoch == len(self.pools[0]):
            order = rng.permutation(len(self.pools[0]))
            return np.zeros_like(order), order
        chosen_pools = rng.choice(len(self.pools), size=self.examples_per_epoch, p=self.weights)
        sizes = [len(pool) for pool in self.pools]
        draws = (rng.integers(sizes[pool]) for pool in chosen_pools)  # one at a time, in order
        return chosen_pools, np.fromiter(draws, dtype=np.int64, count=len(chosen_pools))


def collate(examples: Sequence[Example], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded joint inputs (prompt + target + newline) and item-tower inputs (target).

    Masks: `user_mask` over prompt tokens (v_U), `target_mask` over the target line in context
    (v_T|U), `label_mask` over the tokens the model learns to write (target line + newline).
    """
    joint = [[*e.prompt, *e.target, *e.newline] for e in examples]
    width = max(len(ids) for ids in joint)
    item_width = max(len(e.target) for e in examples)
    size = len(examples)
    input_ids = torch.full((size, width), pad_id, dtype=torch.long)
    masks = {
        name: torch.zeros((size, width), dtype=torch.bool)
        for name in ("attention_mask", "user_mask", "target_mask", "label_mask")
    }
    item_ids = torch.full((size, item_width), pad_id, dtype=torch.long)
    item_mask = torch.zeros((size, item_width), dtype=torch.bool)
    for row, (example, ids) in enumerate(zip(examples, joint, strict=True)):
        prompt_end = len(example.prompt)
        target_end = prompt_end + len(example.target)
        input_ids[row, : len(ids)] = torch.tensor(ids)
        masks["attention_mask"][row, : len(ids)] = True
        masks["user_mask"][row, :prompt_end] = True
        masks["target_mask"][row, prompt_end:target_end] = True
        masks["label_mask"][row, prompt_end : len(ids)] = True
        item_ids[row, : len(example.target)] = torch.tensor(example.target)
        item_mask[row, : len(example.target)] = True
    keys = torch.tensor([e.key for e in examples], dtype=torch.long)
    return {
        "input_ids": input_ids,
        **masks,
        "item_ids": item_ids,
        "item_mask": item_mask,
        "keys": keys,
    }
