"""What every model returns and the shared top-k: `Recommendations`, `top_k`, `mask_excluded`.

A leaf module (it imports no other llmrec module), so that models, the evaluator, the facade and
the server share one definition without importing each other.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, Self

import numpy as np
import torch

if TYPE_CHECKING:  # the catalogue's type only; the data layer sits above this leaf
    from llmrec.data.catalogue import Catalogue

# Histories of internal item indices (oldest first), items to leave out per history, and who each
# history belongs to (user ids; only models that read users accept them).
Histories = Sequence[Sequence[int] | np.ndarray]
Exclusions = Sequence[Collection[int] | np.ndarray] | None
Users = Sequence[str | None] | None


class RankingDiagnostics(Protocol):
    """Counts a model gathers while ranking one batch (e.g. CALRec's grounding of its
    generations): batches add up with `+`, and `summary()` gives the reported figures."""

    def __add__(self, other: Self) -> Self: ...

    def summary(self) -> Mapping[str, float]: ...


@dataclass(frozen=True)
class Recommendations:
    """Top-k per history, sorted by score descending, ties to the lower item index; with the
    model's diagnostics of this ranking, if it keeps any."""

    item_indices: np.ndarray  # (B, k) int64
    scores: np.ndarray  # (B, k) float32
    diagnostics: RankingDiagnostics | None = field(default=None, compare=False)

    def item_ids(self, catalogue: Catalogue) -> list[list[str]]:
        """Raw item ids per history."""
        return [catalogue.item_ids(row) for row in self.item_indices]


def mask_excluded(scores: torch.Tensor, exclude: Exclusions) -> torch.Tensor:
    """Copy of `scores` (B, n) with excluded items set to -inf."""
    if exclude is None:
        return scores
    scores = scores.clone()
    for row, items in enumerate(exclude):
        indices = torch.as_tensor(np.fromiter(items, dtype=np.int64, count=len(items)))
        if len(indices):
            scores[row, indices] = float("-inf")
    return scores


def top_k(scores: torch.Tensor, k: int, exclude: Exclusions = None) -> Recommendations:
    """Top-k of (B, n) scores, excluded items removed, ties broken toward the lower item index."""
    scores = mask_excluded(scores.float().cpu(), exclude)
    k = min(k, scores.shape[1])
    # A stable descending sort keeps equal scores in index order; topk makes no such promise.
    order = torch.sort(scores, dim=1, descending=True, stable=True).indices[:, :k]
    top_scores = torch.gather(scores, 1, order)
    return Recommendations(order.numpy().astype(np.int64), top_scores.numpy())
