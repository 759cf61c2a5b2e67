from __future__ import annotations

from llmrec.data.catalogue import Catalogue, Item
from llmrec.models.bm25 import BM25Config, BM25Model


def _catalogue() -> Catalogue:
    return Catalogue.from_items(
        [
            Item("a", "Rose scented hand cream", ("Beauty", "Skin Care"), "Floris"),
            Item("b", "Hand cream rose", ("Skin Care",), "Floris"),
            Item("c", "Black eyeliner pencil", ("Makeup", "Eyes"), "Maybelline"),
            Item("d", "Waterproof mascara", ("Makeup", "Eyes"), "Maybelline"),
        ]
    )


def test_query_is_the_history_text_and_similar_items_rank_first() -> None:
    model = BM25Model(BM25Config(), _catalogue())
    model.fit([])
    recs = model.recommend([[0], [2]], k=2, exclude=[[0], [2]])
    assert recs.item_indices[:, 0].tolist() == [1, 3]
    assert recs.scores[0, 0] > 0


def test_only_recent_history_items_form_the_query() -> None:
    model = BM25Model(BM25Config(query_items=1), _catalogue())
    assert model.query([0, 2]) == model.documents[2]
