"""Tests of retrieval/constrained.py: the catalogue trie's allowed tokens, item sets, uniqueness,
shared leaves and reachability, on hand-written sequences and a random catalogue."""

from __future__ import annotations

import numpy as np
import pytest

from llmrec.retrieval.constrained import CatalogueTrie

NEWLINE = 9
# items 0 and 4 share a line; item 3 is a one-token line; item 2 branches off after one token
SEQUENCES = [(1, 2, 3), (1, 2, 4), (1, 5), (6,), (1, 2, 3)]


def allowed_tokens(trie: CatalogueTrie, prefix) -> list[int]:
    """Tokens that may follow the prefix, ascending; empty for a finished or unknown prefix."""
    return trie.children(prefix).tokens.tolist()


def ended_items(trie: CatalogueTrie, prefix) -> np.ndarray:
    """The items whose whole sequence is the prefix: those under it that no child continues."""
    continuing = [trie.items([*prefix, token]) for token in allowed_tokens(trie, prefix)]
    return np.setdiff1d(trie.items(prefix), np.concatenate([[], *continuing]).astype(np.int64))


def num_sequences(trie: CatalogueTrie) -> int:
    """Distinct sequences (leaves); fewer than the items when items share a line."""
    return int(trie.leaf[-1]) + 1


@pytest.fixture()
def trie() -> CatalogueTrie:
    return CatalogueTrie(SEQUENCES, suffix=(NEWLINE,))


def test_allowed_tokens_follow_the_sequences(trie: CatalogueTrie) -> None:
    assert allowed_tokens(trie, []) == [1, 6]
    assert allowed_tokens(trie, [1]) == [2, 5]
    assert allowed_tokens(trie, [1, 2]) == [3, 4]
    assert allowed_tokens(trie, [1, 2, 3]) == [NEWLINE]  # the line must end with its newline
    assert allowed_tokens(trie, [6]) == [NEWLINE]
    assert allowed_tokens(trie, [1, 2, 3, NEWLINE]) == []  # finished
    assert allowed_tokens(trie, [7]) == []  # no item starts so
    assert allowed_tokens(trie, [1, 3]) == []


def test_items_under_a_prefix(trie: CatalogueTrie) -> None:
    assert trie.items([]).tolist() == [0, 1, 2, 3, 4]
    assert trie.items([1]).tolist() == [0, 1, 2, 4]
    assert trie.items([1, 2]).tolist() == [0, 1, 4]
    assert trie.items([1, 2, 4]).tolist() == [1]
    assert trie.items([1, 2, 3, NEWLINE]).tolist() == [0, 4]
    assert trie.items([2]).tolist() == []
    assert trie.find([2]) is None


def test_uniqueness(trie: CatalogueTrie) -> None:
    assert not trie.is_unique([])
    assert not trie.is_unique([1])
    assert not trie.is_unique([1, 2])
    assert trie.is_unique([1, 2, 4])
    assert trie.is_unique([1, 5])
    assert trie.is_unique([6])
    assert trie.is_unique([1, 2, 3])  # items 0 and 4: one line, no token tells them apart
    assert not trie.is_unique([7])


def test_identical_sequences_share_a_leaf(trie: CatalogueTrie) -> None:
    assert trie.num_items == 5
    assert num_sequences(trie) == 4
    assert ended_items(trie, [1, 2, 3, NEWLINE]).tolist() == [0, 4]
    assert ended_items(trie, [1, 2, 3]).tolist() == []  # the newline is still to come
    children = trie.children([1, 2, 3])
    assert children.tokens.tolist() == [NEWLINE]
    assert children.num_ended.tolist() == [2]
    assert children.is_unique.tolist() == [True]


def test_children_describe_each_branch(trie: CatalogueTrie) -> None:
    children = trie.children([1])
    assert children.depth == 2
    assert children.tokens.tolist() == [2, 5]
    assert (children.stops - children.starts).tolist() == [3, 1]  # items under each child
    assert children.is_unique.tolist() == [False, True]
    assert children.num_ended.tolist() == [0, 0]


def test_a_line_that_is_a_prefix_of_another_ends_midway() -> None:
    """A newline inside a line: the shorter item ends where the longer goes on."""
    trie = CatalogueTrie([(1,), (1, NEWLINE, 2)], suffix=(NEWLINE,))
    assert ended_items(trie, [1, NEWLINE]).tolist() == [0]
    assert allowed_tokens(trie, [1, NEWLINE]) == [2]
    assert trie.children([1]).num_ended.tolist() == [1]
    assert not trie.is_unique([1, NEWLINE])
    assert trie.is_unique([1, NEWLINE, 2])


def test_every_item_is_reachable_token_by_token() -> None:
    rng = np.random.default_rng(0)
    sequences = [
        tuple(rng.integers(0, 6, size=int(rng.integers(1, 7))).tolist()) for _ in range(300)
    ]
    trie = CatalogueTrie(sequences, suffix=(NEWLINE,))
    assert num_sequences(trie) == len(set(sequences))
    for item, sequence in enumerate(sequences):
        line = (*sequence, NEWLINE)
        for depth, token in enumerate(line):
            assert token in allowed_tokens(trie, line[:depth])
            assert item in trie.items(line[: depth + 1])
        same = [other for other, s in enumerate(sequences) if s == sequence]
        assert ended_items(trie, line).tolist() == same
        assert trie.is_unique(line)
    assert sorted(allowed_tokens(trie, [])) == sorted({s[0] for s in sequences})


def test_invalid_catalogues_are_refused() -> None:
    with pytest.raises(ValueError, match="empty catalogue"):
        CatalogueTrie([])
    with pytest.raises(ValueError, match="at least one token"):
        CatalogueTrie([(1,), ()])
    with pytest.raises(ValueError, match="token ids"):
        CatalogueTrie([(1, -3)])
