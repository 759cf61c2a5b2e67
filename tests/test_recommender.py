"""`llmrec.Recommender`: histories by id or title, candidates, history exclusion, clear errors."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

import llmrec
from llmrec.data.catalogue import Catalogue, Item
from llmrec.errors import DataError
from llmrec.models.pop import PopConfig, Popularity
from llmrec.recommendations import Recommendations
from llmrec.recommender import Query, RecommendedItem, Recommender


def _catalogue() -> Catalogue:
    return Catalogue.from_items(
        [
            Item("a", "Rose scented hand cream", ("Skin Care",), "Floris"),
            Item("b", "Black eyeliner pencil", ("Makeup",), "Maybelline"),
            Item("c", "Waterproof mascara, very black", ("Makeup",), "Maybelline"),
            Item("d", "Vitamin C serum for face with hyaluronic acid"),
            Item("e", ""),
        ]
    )


@pytest.fixture()
def recommender(tmp_path: Path) -> Recommender:
    """Popularity saved and loaded back: counts e=4, c=3, a=2, d=1, b=0."""
    model = Popularity(PopConfig(), _catalogue())
    model.fit([np.array([4, 4, 2, 0]), np.array([4, 4, 2, 2, 0, 3])])
    model.save(tmp_path / "pop")
    return llmrec.Recommender.load(tmp_path / "pop")


def test_history_by_item_id_excludes_it_and_unpacks_as_tuples(recommender) -> None:
    items = recommender.recommend(["e", "a"], k=2)
    assert [tuple(item) for item in items] == [
        ("c", 3.0, "Waterproof mascara, very black"),
        ("d", 1.0, "Vitamin C serum for face with hyaluronic acid"),
    ]
    item_id, score, title = items[0]
    assert isinstance(items[0], RecommendedItem) and (item_id, score, title) == tuple(items[0])
    assert (items[0].item_id, items[0].score) == ("c", 3.0)


def test_keeping_the_history_lets_its_items_rank(recommender) -> None:
    assert [item.item_id for item in recommender.recommend(["e"], k=2)] == ["c", "a"]
    kept = recommender.recommend(["e"], k=2, exclude_history=False)
    assert [item.item_id for item in kept] == ["e", "c"]


def test_titles_with_typos_map_by_bm25_and_the_mapping_is_returned(recommender) -> None:
    mapping = recommender.resolve_history(
        ["b", "  rose SCENTED hand   cream ", "vitamn c serum for the fase", "waterproof mascarra"]
    )
    assert mapping.item_ids == ["b", "a", "d", "c"]
    assert [match.matched_by for match in mapping.matches] == ["id", "title", "bm25", "bm25"]
    assert mapping.matches[2].title.startswith("Vitamin C serum")
    assert mapping.matches[2].score > 0 and mapping.matches[0].score is None
    assert mapping.item_indices == (1, 0, 3, 2)
    items = recommender.recommend(["vitamn c serum for the fase", "e"], k=5)
    assert {item.item_id for item in items} == {"a", "b", "c"}  # d and e excluded


def test_unknown_entries_are_one_error_naming_each(recommender) -> None:
    with pytest.raises(DataError, match="'zzz', 'qwerty'") as raised:
        recommender.recommend(["a", "zzz", "qwerty"])
    assert raised.value.field == "history"


def test_candidates_restrict_the_ranking_exactly(recommender) -> None:
    items = recommender.recommend(["e"], k=10, candidates=["b", "d", "e", "a"])
    assert [item.item_id for item in items] == ["a", "d", "b"]  # e: history
    assert [item.score for item in items] == [2.0, 1.0, 0.0]
    kept = recommender.recommend(["e"], k=2, exclude_history=False, candidates=["b", "e"])
    assert [item.item_id for item in kept] == ["e", "b"]
    assert recommender.recommend(["e"], candidates=["e"]) == []


def test_bad_candidates_and_k_are_errors(recommender) -> None:
    with pytest.raises(DataError, match="unknown candidate item ids: 'x'"):
        recommender.recommend(["a"], candidates=["b", "x"])
    with pytest.raises(DataError, match="candidates is empty"):
        recommender.recommend(["a"], candidates=[])
    with pytest.raises(DataError, match="k must be at least 1"):
        recommender.recommend(["a"], k=0)


def test_batch_equals_one_by_one_with_per_history_options(recommender) -> None:
    queries = [["e"], Query(["e"], exclude_history=False), Query(["a"], candidates=["b", "c"])]
    batched = recommender.recommend_batch(queries, k=3)
    assert batched == [
        recommender.recommend(["e"], k=3),
        recommender.recommend(["e"], k=3, exclude_history=False),
        recommender.recommend(["a"], k=3, candidates=["b", "c"]),
    ]
    assert recommender.recommend([], k=1)[0].item_id == "e"  # no history: the most popular


class _Generative(Popularity):
    """Names only item 1 and pads with -inf, as a generative model that found little does."""

    def score(self, histories, users=None) -> torch.Tensor | None:
        return None

    def recommend(self, histories, k, exclude=None, users=None) -> Recommendations:
        items = np.array([[1, 0, 2, 3, 4][:k]])
        scores = np.array([[1.0, *[-np.inf] * (k - 1)]], dtype=np.float32)
        return Recommendations(items.repeat(len(histories), 0), scores.repeat(len(histories), 0))


def test_items_the_model_did_not_rank_are_left_out() -> None:
    recommender = Recommender(_Generative(PopConfig(), _catalogue()))
    assert [tuple(item) for item in recommender.recommend(["a"], k=3)] == [
        ("b", 1.0, "Black eyeliner pencil")
    ]


class _UserAware(Popularity):
    """Records the users it was asked for (models with user tokens, e.g. CLLM4Rec, read them)."""

    reads_users = True

    def __init__(self, config, catalogue) -> None:
        super().__init__(config, catalogue)
        self.seen: list = []

    def score(self, histories, users=None) -> torch.Tensor | None:
        self.seen.append(list(users) if users is not None else None)
        return super().score(histories, users)


def test_user_ids_reach_the_model_per_query() -> None:
    recommender = Recommender(_UserAware(PopConfig(), _catalogue()))
    recommender.model.counts = torch.ones(len(recommender.catalogue))
    recommender.recommend(["a"], k=2, user="u7")
    recommender.recommend_batch([Query(["a"], user="u1"), Query(["b"])], k=2)
    assert recommender.model.seen == [["u7"], ["u1", None]]


def test_a_user_for_a_model_without_user_parameters_is_refused() -> None:
    recommender = Recommender(Popularity(PopConfig(), _catalogue()))
    recommender.model.counts = torch.ones(len(recommender.catalogue))
    with pytest.raises(DataError, match="pop model has no per-user parameters"):
        recommender.recommend(["a"], k=2, user="u7")
    with pytest.raises(DataError, match="field 'user'"):
        recommender.recommend_batch([Query(["a"]), Query(["b"], user="u1")], k=2)
    assert len(recommender.recommend(["a"], k=2)) == 2  # without a user it ranks as before


def test_the_python_example_in_docs_serving_runs(beauty_mini, tmp_path: Path, capsys) -> None:
    docs = (Path(__file__).resolve().parents[1] / "docs" / "serving.md").read_text("utf-8")
    snippet = re.search(r"```python\n(.*?)```", docs, re.DOTALL).group(1)
    model = Popularity(PopConfig(), beauty_mini.catalogue)
    model.fit(beauty_mini.train)
    model.save(tmp_path / "model")
    exec(snippet.replace("runs/quickstart/model", str(tmp_path / "model")), {})
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 11 and "B00812ZWOS" in printed[-1] and "'bm25'" in printed[-1]


def test_a_bare_string_is_not_taken_for_a_history(recommender) -> None:
    with pytest.raises(DataError, match="not one string"):
        recommender.recommend("abc")
