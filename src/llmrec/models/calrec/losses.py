"""CALRec's losses as pure tensor functions (Li et al., RecSys 2024, sec. 3).

L = (1 - alpha - beta) * L_NIG + alpha * L_TT + beta * L_UT, where L_NIG is next-item generation
(token cross-entropy on the target item's tokens only), L_TT aligns the target encoded in context
(v_T|U) with the target alone (v_T), and L_UT aligns the history (v_U) with the target alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of hidden states (B, T, H) over the positions where mask (B, T) is true -> (B, H)."""
    weights = mask.to(hidden.dtype).unsqueeze(-1)  # (B, T, 1)
    return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)


@dataclass(frozen=True)
class ContrastiveInputs:
    """P anchors with their target keys, and the item tower's input: U rows of item tokens, and
    for each anchor the row of its target (`inverse`, (P,)); U < P when targets repeat."""

    user: torch.Tensor  # (P, H) v_U
    in_context: torch.Tensor  # (P, H) v_T|U
    keys: torch.Tensor  # (P,)
    item_ids: torch.Tensor  # (U, W)
    item_mask: torch.Tensor  # (U, W)
    inverse: torch.Tensor  # (P,)


def example_inputs(joint: torch.Tensor, batch: dict[str, torch.Tensor]) -> ContrastiveInputs:
    """One anchor per example row (`batches.collate`): v_U over the prompt, v_T|U over the target
    in context; the item tower reads every row's target (U = P)."""
    return ContrastiveInputs(
        mean_pool(joint, batch["user_mask"]),
        mean_pool(joint, batch["target_mask"]),
        batch["keys"],
        batch["item_ids"],
        batch["item_mask"],
        torch.arange(len(batch["keys"]), device=joint.device),
    )


def info_nce(
    anchors: torch.Tensor, positives: torch.Tensor, keys: torch.Tensor, temperature: float
) -> torch.Tensor:
    """In-batch InfoNCE with cosine similarity / temperature.

    For each positive i (an item alone), the softmax runs over all anchors j (context-side
    vectors), as in CALRec's L_TT / L_UT. choice: an anchor j != i whose example has the same
    target (`keys[j] == keys[i]`) is not a negative for i; it is masked out. choice: under
    several processes the negatives are that process's rows only (training/distributed.py).
    """
    similarity = F.normalize(anchors, dim=-1) @ F.normalize(positives, dim=-1).T  # (N, N) a x p
    logits = similarity.T / temperature  # row i: positive i against every anchor j
    duplicates = keys[:, None] == keys[None, :]
    duplicates.fill_diagonal_(False)
    logits = logits.masked_fill(duplicates, float("-inf"))
    targets = torch.arange(len(keys), device=logits.device)
    return F.cross_entropy(logits, targets)


def next_item_generation_loss(
    hidden: torch.Tensor,
    lm_head: torch.nn.Module,
    input_ids: torch.Tensor,
    label_mask: torch.Tensor,
) -> torch.Tensor:
    """Token cross-entropy on target tokens only; vocabulary logits only where they are needed.

    `label_mask[b, t]` marks the tokens to predict (the target line and its newline); the state
    at t - 1 predicts token t. Computing the vocabulary head at those positions only is the
    largest saving of the CPU recipe (the head is 49k wide).
    """
    predicting = label_mask[:, 1:]  # (B, T-1): state t predicts token t+1
    states = hidden[:, :-1][predicting]  # (N, H)
    logits = lm_head(states).float()  # (N, V)
    return F.cross_entropy(logits, input_ids[:, 1:][predicting])


def combine(
    generation: torch.Tensor,
    target_target: torch.Tensor | None,
    user_target: torch.Tensor | None,
    alpha: float,
    beta: float,
) -> torch.Tensor:
    """(1 - alpha - beta) * L_NIG + alpha * L_TT + beta * L_UT; a zero weight skips its term."""
    total = (1.0 - alpha - beta) * generation
    if alpha > 0 and target_target is not None:
        total = total + alpha * target_target
    if beta > 0 and user_target is not None:
        total = total + beta * user_target
    return total
