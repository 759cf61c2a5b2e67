"""Exact dense retrieval: cosine similarity of query vectors against every item vector.

choice: brute-force matrix product instead of an approximate index (faiss/usearch): exact, and for
catalogues up to about a million items it is one (B, H) x (H, n) product per batch.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

VECTORS_FILE = "item_vectors.safetensors"


class DenseIndex:
    """Unit-normalised item vectors (n, H) in catalogue index order."""

    def __init__(self, item_vectors: torch.Tensor) -> None:
        self.item_vectors = F.normalize(item_vectors.float(), dim=-1)

    @property
    def num_items(self) -> int:
        return self.item_vectors.shape[0]

    def scores(self, query_vectors: torch.Tensor) -> torch.Tensor:
        """(B, n) cosine similarity of each query (B, H) with every item."""
        return F.normalize(query_vectors.float(), dim=-1) @ self.item_vectors.T

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        save_file({"item_vectors": self.item_vectors.contiguous()}, str(folder / VECTORS_FILE))

    @classmethod
    def load(cls, folder: Path) -> DenseIndex:
        return cls(load_file(str(folder / VECTORS_FILE))["item_vectors"])


def reciprocal_rank_fusion(rankings: list[list[int]], k: int, offset: int = 60) -> list[int]:
    """Items ordered by sum over rankings of 1 / (offset + rank), rank 1-based (Cormack et al.,
    SIGIR 2009); ties go to the lower item index. Returns at most k items."""
    fused: dict[int, float] = {}
    for ranking in rankings:
        for position, item in enumerate(ranking, start=1):
            fused[int(item)] = fused.get(int(item), 0.0) + 1.0 / (offset + position)
    return sorted(fused, key=lambda item: (-fused[item], item))[:k]
