from __future__ import annotations

import numpy as np

from llmrec.models.pop import PopConfig, Popularity


def test_popularity_ranks_by_training_counts(toy_dataset) -> None:
    model = Popularity(PopConfig(), toy_dataset.catalogue)
    model.fit([np.array([3, 3, 1]), np.array([3, 1, 5])])
    recs = model.recommend([[0]], k=3)
    assert recs.item_indices.tolist() == [[3, 1, 5]]
    assert recs.scores.tolist() == [[3.0, 2.0, 1.0]]
    # Zero-count items tie; ties go to the lower index.
    assert model.recommend([[0]], k=5).item_indices[0, 3:].tolist() == [0, 2]
