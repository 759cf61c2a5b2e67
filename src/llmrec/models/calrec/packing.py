"""Packed CALRec training (beyond the paper, `extensions.packing`): one joint pass per user reads
the whole training sequence as item lines, and every line from the second on is a target.

Causal attention conditions each line on the lines before it, so one pass gives every transition
of the user at once: L_NIG on every target line, v_U at each target = the mean of the last-layer
states before its line (a prefix mean), v_T|U = the mean over its line. This equals `all`
(one example per transition) when neither the token budget nor `max_history_items` binds
(tests/models/calrec/test_packing.py), at one pass per user instead of one per transition.

Every tensor of a packed batch has one row per user, so `training/distributed.py` splits it by
user like any other batch; the item tower's inputs (each distinct target once) are gathered from
the joint tokens inside the network.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from pydantic import BaseModel, Field, PositiveInt

from llmrec.config_rules import CONFIG_RULES
from llmrec.models.calrec.batches import ExampleBatches
from llmrec.models.calrec.losses import ContrastiveInputs
from llmrec.text.templates import ItemLines

# choice: users are sorted by length within runs of this many batches of the shuffled epoch, as
# Hugging Face's `group_by_length` does within its mega-batches: little padding, yet each batch
# still comes from a random slice of the epoch. Measured: benchmarks/results/calrec_work.md.
GROUP_BATCHES = 50


class PackingSettings(BaseModel):
    """`extensions.packing`: every training transition of a user in one joint pass."""

    model_config = CONFIG_RULES

    token_budget: PositiveInt = Field(
        512,
        description="tokens of a user's packed sequence at most (preamble + lines + newlines); "
        "the oldest lines are dropped first, whole",
    )
    group_by_length: bool = Field(
        True,
        description="batch users of similar packed length together (within runs of "
        f"{GROUP_BATCHES} batches of the shuffled epoch), so batches hold little padding",
    )


@dataclass(frozen=True)
class PackedSequence:
    """One user's packed joint input: line i is the token span [starts[i], ends[i]) (its newline
    follows it); `keys[i]` identifies line i's item across a mixture's data sets."""

    tokens: tuple[int, ...]
    starts: tuple[int, ...]
    ends: tuple[int, ...]
    keys: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.tokens)


def cut_to_budget(line_lengths: Sequence[int], fixed: int, budget: int) -> int:
    """Index of the first line kept: the most recent lines whose tokens (each line's length
    counts its newline) plus `fixed` (the preamble) fit in `budget`."""
    total, first = fixed, len(line_lengths)
    while first > 0 and total + line_lengths[first - 1] <= budget:
        first -= 1
        total += line_lengths[first]
    return first


def pack_sequence(
    sequence: np.ndarray, lines: ItemLines, budget: int, key_offset: int = 0
) -> PackedSequence | None:
    """The preamble then one line (+ newline) per item, cut from the left on line boundaries to
    `budget` tokens; None when fewer than two lines fit (no transition to learn)."""
    newline = len(lines.newline)
    items = [int(item) for item in sequence]
    first = cut_to_budget(
        [len(lines.ids[item]) + newline for item in items], len(lines.preamble), budget
    )
    if len(items) - first < 2:
        return None
    tokens, starts, ends = list(lines.preamble), [], []
    for item in items[first:]:
        starts.append(len(tokens))
        tokens += lines.ids[item]
        ends.append(len(tokens))
        tokens += lines.newline
    keys = tuple(key_offset + item for item in items[first:])
    return PackedSequence(tuple(tokens), tuple(starts), tuple(ends), keys)


def build_packed(
    sequences: Sequence[np.ndarray], lines: ItemLines, budget: int, key_offset: int = 0
) -> list[PackedSequence]:
    """Packed sequences of the users with at least two lines within the budget."""
    packed = (pack_sequence(sequence, lines, budget, key_offset) for sequence in sequences)
    return [sequence for sequence in packed if sequence is not None]


class PackedBatches(ExampleBatches):
    """Batches of packed users (`collate_packed`), deterministic per (seed, epoch) like every
    `ExampleBatches`; with `group_by_length`, each run of GROUP_BATCHES batches of the shuffled
    epoch is sorted by length (`len`) before it is cut, and its batches are shuffled."""

    def __init__(self, *args, group_by_length: bool = True, **kwargs) -> None:
        super().__init__(*args, collate_fn=collate_packed, **kwargs)
        self.group_by_length = group_by_length

    def _epoch_plan(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        pools, examples = super()._epoch_plan(rng)
        if not self.group_by_length:
            return pools, examples
        lengths = np.fromiter(
            (len(self.pools[pool][example]) for pool, example in zip(pools, examples, strict=True)),
            dtype=np.int64,
            count=len(examples),
        )
        size, order = self.batch_size, []
        span = size * GROUP_BATCHES
        for start in range(0, len(examples), span):
            # longest first; a stable sort keeps the shuffled order among equal lengths
            group = start + np.argsort(-lengths[start : start + span], kind="stable")
            batches = [group[i : i + size] for i in range(0, len(group), size)]
            full = len(batches) - (len(batches[-1]) < size)  # a short last batch stays last
            for index in [*rng.permutation(full), *range(full, len(batches))]:
                order.extend(batches[index])
        chosen = np.asarray(order, dtype=np.int64)
        return pools[chosen], examples[chosen]


def collate_packed(sequences: Sequence[PackedSequence], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded packed inputs, one row per user (L = most lines of a row).

    `label_mask` marks the tokens to write (every line from the second, with its newline);
    `line_starts` / `line_ends` (B, L) are each line's token span, `line_keys` (B, L) its item key,
    and `is_target` (B, L) the lines that are targets (from the second on; padding lines not).
    """
    width = max(len(s.tokens) for s in sequences)
    num_lines = max(len(s.keys) for s in sequences)
    size = len(sequences)
    input_ids = torch.full((size, width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((size, width), dtype=torch.bool)
    label_mask = torch.zeros((size, width), dtype=torch.bool)
    spans = {name: torch.zeros((size, num_lines), dtype=torch.long) for name in ("starts", "ends")}
    line_keys = torch.full((size, num_lines), -1, dtype=torch.long)
    is_target = torch.zeros((size, num_lines), dtype=torch.bool)
    for row, sequence in enumerate(sequences):
        count = len(sequence.keys)
        input_ids[row, : len(sequence.tokens)] = torch.tensor(sequence.tokens)
        attention_mask[row, : len(sequence.tokens)] = True
        label_mask[row, sequence.starts[1] : len(sequence.tokens)] = True
        spans["starts"][row, :count] = torch.tensor(sequence.starts)
        spans["ends"][row, :count] = torch.tensor(sequence.ends)
        line_keys[row, :count] = torch.tensor(sequence.keys)
        is_target[row, 1:count] = True
    return {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "label_mask": label_mask,
        "line_starts": spans["starts"],
        "line_ends": spans["ends"],
        "line_keys": line_keys,
        "is_target": is_target,
    }


@dataclass(frozen=True)
class PackedVectors:
    """Per target line (P of them, row-major over the batch): v_U, v_T|U and the item key."""

    user: torch.Tensor  # (P, H)
    in_context: torch.Tensor  # (P, H)
    keys: torch.Tensor  # (P,)


def packed_vectors(hidden: torch.Tensor, batch: dict[str, torch.Tensor]) -> PackedVectors:
    """v_U = the mean of the states before a target line (preamble, earlier lines, newlines),
    v_T|U = the mean over the line itself, from one cumulative sum per row (no loop over
    positions). choice: the sums run in at least float32, so bf16 states lose nothing more."""
    dtype = torch.promote_types(hidden.dtype, torch.float32)
    zero = hidden.new_zeros((hidden.shape[0], 1, hidden.shape[2]), dtype=dtype)
    sums = torch.cat([zero, hidden.to(dtype).cumsum(dim=1)], dim=1)  # (B, T+1, H): sums[t] = Σ_<t
    target = batch["is_target"]
    rows = torch.arange(hidden.shape[0], device=hidden.device)[:, None].expand_as(target)[target]
    starts, ends = batch["line_starts"][target], batch["line_ends"][target]  # (P,)
    before = sums[rows, starts]  # (P, H): Σ of the states before the line
    user = before / starts[:, None].to(dtype)
    in_context = (sums[rows, ends] - before) / (ends - starts)[:, None].to(dtype)
    return PackedVectors(
        user.to(hidden.dtype), in_context.to(hidden.dtype), batch["line_keys"][target]
    )


@dataclass(frozen=True)
class DistinctTargets:
    """The item tower's input: each distinct target of the batch once (U rows), and for each of
    the P target lines the row of its item."""

    item_ids: torch.Tensor  # (U, W), right-padded
    item_mask: torch.Tensor  # (U, W)
    inverse: torch.Tensor  # (P,): target line -> row of item_ids


def distinct_targets(batch: dict[str, torch.Tensor], pad_id: int) -> DistinctTargets:
    """Gathers each distinct target key's line tokens from its first occurrence in the joint
    input (a key's line is the same wherever it occurs)."""
    target = batch["is_target"]
    keys = batch["line_keys"][target]  # (P,)
    unique, inverse = torch.unique(keys, return_inverse=True)
    positions = torch.arange(len(keys), device=keys.device)
    first = torch.full((len(unique),), len(keys), dtype=torch.long, device=keys.device)
    first = first.scatter_reduce(0, inverse, positions, reduce="amin")  # (U,)
    rows = torch.arange(target.shape[0], device=keys.device)[:, None].expand_as(target)[target]
    starts = batch["line_starts"][target][first]
    lengths = (batch["line_ends"][target] - batch["line_starts"][target])[first]  # (U,)
    offsets = torch.arange(int(lengths.max()), device=keys.device)  # (W,)
    item_mask = offsets[None, :] < lengths[:, None]  # (U, W)
    columns = (starts[:, None] + offsets[None, :]).clamp(max=batch["input_ids"].shape[1] - 1)
    item_ids = batch["input_ids"][rows[first][:, None], columns].masked_fill(~item_mask, pad_id)
    return DistinctTargets(item_ids, item_mask, inverse)


def packed_inputs(
    joint: torch.Tensor, batch: dict[str, torch.Tensor], pad_id: int
) -> ContrastiveInputs:
    """One anchor per target line of the batch, each distinct target once in the item tower."""
    vectors, items = packed_vectors(joint, batch), distinct_targets(batch, pad_id)
    return ContrastiveInputs(
        vectors.user,
        vectors.in_context,
        vectors.keys,
        items.item_ids,
        items.item_mask,
        items.inverse,
    )
