"""`llmrec.Recommender`: recommend for anyone from any saved model, by item id or free-text title.

The one user-facing facade over the model contract (`RecommenderModel`): histories of raw item ids
or titles in, `[(item_id, score, title)]` out. The CLI (`llmrec recommend`) and the HTTP server
(`llmrec serve`) are thin layers over it.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from llmrec.data.catalogue import Catalogue, Item, ItemId
from llmrec.errors import DataError
from llmrec.models.base import RecommenderModel
from llmrec.models.registry import load_model
from llmrec.retrieval.bm25 import BM25Index

MatchKind = Literal["id", "title", "bm25"]


@dataclass(frozen=True)
class RecommendedItem:
    """One recommendation; unpacks like the tuple `(item_id, score, title)`."""

    item_id: ItemId
    score: float
    title: str

    def __iter__(self) -> Iterator[ItemId | float | str]:
        return iter((self.item_id, self.score, self.title))


@dataclass(frozen=True)
class HistoryMatch:
    """How one history entry was read: an exact item id, an exact title (case and spacing
    ignored), or the best BM25 match over item titles (`score` is its BM25 score)."""

    entry: str
    item_id: ItemId
    title: str
    matched_by: MatchKind
    score: float | None = None


@dataclass(frozen=True)
class HistoryMapping:
    """Every history entry's catalogue item, in history order."""

    matches: tuple[HistoryMatch, ...]
    item_indices: tuple[int, ...]

    @property
    def item_ids(self) -> list[ItemId]:
        return [match.item_id for match in self.matches]


@dataclass(frozen=True)
class Query:
    """One history with its own options, for `recommend_batch` (the server batches these)."""

    history: Sequence[str]
    exclude_history: bool = True
    candidates: Collection[ItemId] | None = None
    user: str | None = None  # a user id of the training data (CLLM4Rec's user tokens)


class Recommender:
    """A loaded model and its catalogue, answering histories given by item id or title."""

    def __init__(self, model: RecommenderModel) -> None:
        self.model = model
        self.catalogue: Catalogue = model.catalogue
        self._title_index: BM25Index | None = None
        self._index_of_title: dict[str, int] = {}

    @classmethod
    def load(cls, model_dir: str | Path, device: str = "auto") -> Recommender:
        """Load any saved model folder (every registered kind) onto `device` (`auto`: a CUDA GPU
        when torch sees one, else the CPU)."""
        return cls(load_model(model_dir, device))

    def item(self, item_id: ItemId) -> Item:
        """The catalogue item with this id; DataError when unknown."""
        index = self.catalogue.get_index(item_id)
        if index is None:
            raise DataError(f"unknown item id {item_id!r}", field="item_id")
        return self.catalogue.items[index]

    def recommend(
        self,
        history: Sequence[str],
        k: int = 10,
        exclude_history: bool = True,
        candidates: Collection[ItemId] | None = None,
        user: str | None = None,
    ) -> list[RecommendedItem]:
        """Top-k items after `history` (item ids or titles, oldest first). `candidates` restricts
        the ranking to those item ids. Items the model gave no score (a generative model whose
        generations named fewer than k items) are left out, so the list may be shorter than k."""
        return self.recommend_batch([Query(history, exclude_history, candidates, user)], k)[0]

    def recommend_batch(
        self,
        histories: Sequence[Sequence[str] | Query],
        k: int = 10,
        exclude_history: bool = True,
        candidates: Collection[ItemId] | None = None,
    ) -> list[list[RecommendedItem]]:
        """`recommend` for many histories in one model call; a `Query` carries its own options,
        a plain history takes this call's `exclude_history` and `candidates`."""
        if k < 1:
            raise DataError(f"k must be at least 1, got {k}", field="k")
        queries = [
            entry if isinstance(entry, Query) else Query(entry, exclude_history, candidates)
            for entry in histories
        ]
        if any(isinstance(query.history, str) for query in queries):
            raise DataError("a history is a list of item ids or titles, not one string")
        users = [query.user for query in queries]
        if not self.model.reads_users and any(user is not None for user in users):
            raise DataError(
                f"the {self.model.name} model has no per-user parameters: it ranks the history "
                "alone; send no user",
                field="user",
            )
        indices = [list(self.resolve_history(query.history).item_indices) for query in queries]
        excluded = [self._excluded(q, h) for q, h in zip(queries, indices, strict=True)]
        allowed = max((len(self.catalogue) - len(e) for e in excluded), default=0)
        if allowed == 0:
            return [[] for _ in queries]
        recs = self.model.recommend(
            indices,
            min(k, allowed),
            [np.array(sorted(e)) for e in excluded],
            users=users if self.model.reads_users else None,
        )
        return [
            self._items(row, scores, banned, k)
            for row, scores, banned in zip(recs.item_indices, recs.scores, excluded, strict=True)
        ]

    def resolve_history(self, entries: Sequence[str]) -> HistoryMapping:
        """Map each entry to a catalogue item: an exact item id, else an exact title, else the
        best BM25 match over titles. DataError lists every entry that matches nothing."""
        matches, unknown = [], []
        for entry in entries:
            match = self._match(entry)
            if match is None:
                unknown.append(entry)
            else:
                matches.append(match)
        if unknown:
            raise DataError(
                f"no catalogue item matches {_listed(unknown)} "
                "(neither an item id nor a title with a word in common)",
                field="history",
            )
        indices = tuple(self.catalogue.index(match.item_id) for match in matches)
        return HistoryMapping(tuple(matches), indices)

    def _match(self, entry: str) -> HistoryMatch | None:
        index = self.catalogue.get_index(entry)
        if index is not None:
            return HistoryMatch(entry, entry, self.catalogue.items[index].title, "id")
        title_index = self.title_index
        index = self._index_of_title.get(_normalize(entry))
        if index is not None:
            item = self.catalogue.items[index]
            return HistoryMatch(entry, item.item_id, item.title, "title")
        scores = title_index.scores(entry)
        best = int(np.argmax(scores)) if len(scores) else 0  # argmax: ties to the lower index
        if not len(scores) or scores[best] <= 0:
            return None
        item = self.catalogue.items[best]
        return HistoryMatch(entry, item.item_id, item.title, "bm25", float(scores[best]))

    @property
    def title_index(self) -> BM25Index:
        """BM25 over item titles (the id stands in for a missing title), built on first use
        together with the exact-title lookup."""
        if self._title_index is None:
            index_of: dict[str, int] = {}
            for index, item in enumerate(self.catalogue.items):
                index_of.setdefault(_normalize(item.title), index)  # first item wins a tie
            index_of.pop("", None)
            self._index_of_title = index_of
            documents = [item.title or item.item_id for item in self.catalogue.items]
            self._title_index = BM25Index.build(documents)
        return self._title_index

    def _excluded(self, query: Query, history: list[int]) -> set[int]:
        excluded = set(history) if query.exclude_history else set()
        if query.candidates is not None:
            allowed = self._candidate_indices(query.candidates)
            excluded |= set(range(len(self.catalogue))) - allowed
        return excluded

    def _candidate_indices(self, candidates: Collection[ItemId]) -> set[int]:
        unknown = [item_id for item_id in candidates if item_id not in self.catalogue]
        if unknown:
            raise DataError(f"unknown candidate item ids: {_listed(unknown)}", field="candidates")
        if not candidates:
            raise DataError("candidates is empty: give at least one item id", field="candidates")
        return {self.catalogue.index(item_id) for item_id in candidates}

    def _items(
        self, row: np.ndarray, scores: np.ndarray, excluded: set[int], k: int
    ) -> list[RecommendedItem]:
        items = []
        for index, score in zip(row.tolist(), scores.tolist(), strict=True):
            if index in excluded or not np.isfinite(score):
                continue  # excluded, or padding the model did not rank
            item = self.catalogue.items[index]
            items.append(RecommendedItem(item.item_id, float(score), item.title))
        return items[:k]


def _normalize(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().casefold()


def _listed(entries: Sequence[str], limit: int = 10) -> str:
    """The first `limit` entries, quoted; '... (N in all)' when there are more."""
    shown = ", ".join(map(repr, entries[:limit]))
    return shown + (f" ... ({len(entries)} in all)" if len(entries) > limit else "")
