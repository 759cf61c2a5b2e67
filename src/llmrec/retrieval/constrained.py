"""A prefix trie over the catalogue's item token sequences, for catalogue-constrained decoding
(beyond the CALRec paper, which grounds free generations with BM25 instead): which tokens may
follow a prefix, which items lie under it, and whether it already names a single item.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

END = -1  # fills a row after its sequence ends; sorts before every token id


@dataclass(frozen=True)
class TrieNode:
    """A prefix of `depth` tokens: the rows `start:stop` of the sorted sequences begin with it."""

    depth: int
    start: int
    stop: int


@dataclass(frozen=True)
class Children:
    """The children of one node, by ascending token: child c holds rows `starts[c]:stops[c]`."""

    depth: int  # tokens in each child's prefix
    tokens: np.ndarray  # (C,) int64
    starts: np.ndarray  # (C,) int64
    stops: np.ndarray  # (C,) int64
    num_ended: np.ndarray  # (C,) int64, rows whose sequence ends at the child (its first rows)
    is_unique: np.ndarray  # (C,) bool, one distinct sequence left under the child


class CatalogueTrie:
    """Prefix trie over item token sequences, each followed by `suffix` (the newline that ends a
    line), so a path is complete only once the line has ended as the model was trained to end it.

    choice: the trie is implicit: the sequences are padded into one (N, L + 1) int32 matrix and
    sorted lexicographically, so a node is a row range and its children are the runs of equal
    tokens in the next column of that range (found with `searchsorted` and run boundaries). This
    costs 4 bytes a token instead of a Python dict per node, and builds with one `np.lexsort`.
    Items with identical sequences are adjacent rows, in index order: they share a leaf.
    """

    def __init__(self, sequences: Sequence[Sequence[int]], suffix: Sequence[int] = ()) -> None:
        if not sequences:
            raise ValueError("cannot build a trie over an empty catalogue")
        suffix = [int(token) for token in suffix]
        lengths = np.fromiter((len(s) for s in sequences), np.int64, len(sequences)) + len(suffix)
        if lengths.min() == 0:
            raise ValueError("every item needs at least one token")
        tokens = np.fromiter(
            (int(t) for sequence in sequences for t in (*sequence, *suffix)),
            np.int64,
            int(lengths.sum()),
        )
        if tokens.min() < 0 or tokens.max() > np.iinfo(np.int32).max:
            raise ValueError("token ids must lie in [0, 2**31)")
        width = int(lengths.max()) + 1  # a last column of END: every sequence ends inside
        padded = np.full((len(sequences), width), END, dtype=np.int32)
        padded[np.arange(width) < lengths[:, None]] = tokens  # row-major, as concatenated
        order = np.lexsort(padded.T[::-1])  # column 0 is the primary key; stable, so ties by index
        self.matrix = padded[order]  # (N, L + 1)
        self.order = order.astype(np.int64)  # item index of each sorted row
        changed = (self.matrix[1:] != self.matrix[:-1]).any(axis=1)
        self.leaf = np.concatenate([[0], np.cumsum(changed)])  # (N,) distinct-sequence id per row

    @property
    def num_items(self) -> int:
        return len(self.order)

    @property
    def root(self) -> TrieNode:
        return TrieNode(0, 0, self.num_items)

    def find(self, prefix: Sequence[int]) -> TrieNode | None:
        """The node of `prefix`, or None if no item's sequence starts with it."""
        node = self.root
        for token in prefix:
            if token < 0:
                return None
            column = self.matrix[node.start : node.stop, node.depth]
            low, high = np.searchsorted(column, [token, token + 1])
            if low == high:
                return None
            node = TrieNode(node.depth + 1, node.start + int(low), node.start + int(high))
        return node

    def children(self, where: Sequence[int] | TrieNode) -> Children:
        node = self._node(where)
        if node is None:
            return _no_children(len(where) + 1)
        depth = node.depth + 1
        column = self.matrix[node.start : node.stop, node.depth]
        first = int(np.searchsorted(column, END, side="right"))  # rows that ended at `node`
        column = column[first:]
        if not len(column):
            return _no_children(depth)
        boundaries = np.flatnonzero(column[1:] != column[:-1]) + 1
        starts = np.concatenate([[0], boundaries]).astype(np.int64)
        stops = np.concatenate([boundaries, [len(column)]]).astype(np.int64)
        tokens = column[starts].astype(np.int64)
        starts += node.start + first
        stops += node.start + first
        num_ended = np.zeros(len(starts), dtype=np.int64)
        for child in np.flatnonzero(self.matrix[starts, depth] == END):  # lines ending here
            rows = self.matrix[starts[child] : stops[child], depth]
            num_ended[child] = np.searchsorted(rows, END, side="right")
        is_unique = self.leaf[starts] == self.leaf[stops - 1]
        return Children(depth, tokens, starts, stops, num_ended, is_unique)

    def items(self, where: Sequence[int] | TrieNode) -> np.ndarray:
        """Sorted indices of the items whose sequence starts with the prefix."""
        node = self._node(where)
        if node is None:
            return np.zeros(0, dtype=np.int64)
        return np.sort(self.order[node.start : node.stop])

    def is_unique(self, where: Sequence[int] | TrieNode) -> bool:
        """Whether exactly one distinct sequence lies under the prefix (items sharing it count as
        one: no further token can tell them apart)."""
        node = self._node(where)
        return node is not None and bool(self.leaf[node.start] == self.leaf[node.stop - 1])

    def _node(self, where: Sequence[int] | TrieNode) -> TrieNode | None:
        return where if isinstance(where, TrieNode) else self.find(where)


def _no_children(depth: int) -> Children:
    empty = np.zeros(0, dtype=np.int64)
    return Children(depth, empty, empty, empty, empty, np.zeros(0, dtype=bool))
