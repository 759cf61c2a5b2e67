from __future__ import annotations

from pathlib import Path

import torch

from llmrec.retrieval.dense import DenseIndex, reciprocal_rank_fusion


def test_cosine_scores_and_round_trip(tmp_path: Path) -> None:
    index = DenseIndex(torch.tensor([[2.0, 0.0], [0.0, 3.0], [1.0, 1.0]]))
    scores = index.scores(torch.tensor([[5.0, 0.0]]))
    torch.testing.assert_close(scores, torch.tensor([[1.0, 0.0, 2**-0.5]]))
    index.save(tmp_path)
    torch.testing.assert_close(DenseIndex.load(tmp_path).item_vectors, index.item_vectors)


def test_reciprocal_rank_fusion_hand_computed() -> None:
    # item 7: 1/61 + 1/62; item 3: 1/62 + 1/61 (tie -> lower index first); item 9: 1/63
    assert reciprocal_rank_fusion([[7, 3, 9], [3, 7]], k=3) == [3, 7, 9]
    assert reciprocal_rank_fusion([[1, 2], [2]], k=1) == [2]
