"""CLLM4Rec ID tokens without resizing the base vocabulary (CLLM4Rec sec. 3.1; notes 1.2, 8.2-8.3).

User i is token N + i and item j is token N + I + j, with N the base vocabulary size and I the
number of users. Documents are lists of segments, so only text segments ever reach the base
tokenizer, and `IdEmbedding` reads frozen base rows for ids < N and a view's learned tables above.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

SegmentKind = Literal["text", "user", "item"]
Segment = tuple[Literal["text"], str] | tuple[Literal["user", "item"], int]
View = Literal["collaborative", "content"]
VIEWS: tuple[View, ...] = ("collaborative", "content")


@dataclass(frozen=True)
class IdVocabulary:
    """The id layout: base tokens [0, N), users [N, N + I), items [N + I, N + I + J)."""

    base_vocab_size: int  # N, the base model's embedding rows (>= its tokenizer's tokens)
    num_users: int  # I
    num_items: int  # J

    def __post_init__(self) -> None:
        for name in ("base_vocab_size", "num_users", "num_items"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"IdVocabulary.{name} must be a positive int, got {value!r}")

    @property
    def base_range(self) -> range:
        return range(0, self.base_vocab_size)

    @property
    def user_range(self) -> range:
        return range(self.base_vocab_size, self.base_vocab_size + self.num_users)

    @property
    def item_range(self) -> range:
        start = self.base_vocab_size + self.num_users
        return range(start, start + self.num_items)

    @property
    def size(self) -> int:
        """N + I + J: every valid token id is below this."""
        return self.base_vocab_size + self.num_users + self.num_items

    def user_id(self, user_index: int) -> int:
        return self.user_range[_checked_index(user_index, self.num_users, "user")]

    def item_id(self, item_index: int) -> int:
        return self.item_range[_checked_index(item_index, self.num_items, "item")]

    def kind_of(self, token_id: int) -> SegmentKind:
        """'text' for a base-vocabulary id, else 'user' or 'item'."""
        if token_id in self.base_range:
            return "text"
        if token_id in self.user_range:
            return "user"
        if token_id in self.item_range:
            return "item"
        raise ValueError(f"token id {token_id} is outside [0, {self.size})")

    def user_index(self, token_id: int) -> int:
        if token_id not in self.user_range:
            raise ValueError(f"token id {token_id} is not a user token ({self.user_range})")
        return token_id - self.user_range.start

    def item_index(self, token_id: int) -> int:
        if token_id not in self.item_range:
            raise ValueError(f"token id {token_id} is not an item token ({self.item_range})")
        return token_id - self.item_range.start


def _checked_index(index: int, count: int, kind: str) -> int:
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < count:
        raise ValueError(f"{kind} index must be an int in [0, {count}), got {index!r}")
    return index


def encode_document(segments: Sequence[Segment], tokenizer, vocabulary: IdVocabulary) -> list[int]:
    """Token ids of a document: text through `tokenizer` (no special tokens), IDs mapped directly.

    Text is never searched for "user_3"/"item_12" patterns (notes sec. 8.2, step 6), so a title that
    contains such a string stays base-vocabulary tokens. choice: no BOS/EOS (as the official code).
    """
    if len(tokenizer) > vocabulary.base_vocab_size:
        raise ValueError(
            f"the tokenizer has {len(tokenizer)} tokens, more than the vocabulary's "
            f"base_vocab_size {vocabulary.base_vocab_size}: its ids would collide with ID tokens"
        )
    ids: list[int] = []
    for position, (kind, value) in enumerate(segments):
        if kind == "text":
            if not isinstance(value, str):
                raise ValueError(f"segment {position}: text must be a str, got {value!r}")
            ids.extend(tokenizer(value, add_special_tokens=False)["input_ids"])
        elif kind == "user":
            ids.append(vocabulary.user_id(value))
        elif kind == "item":
            ids.append(vocabulary.item_id(value))
        else:
            raise ValueError(f"segment {position}: kind must be text, user or item, got {kind!r}")
    return ids


class IdEmbedding(nn.Module):
    """Input embeddings over N + I + J ids: the frozen base table plus per-view user/item tables.

    The base embedding is frozen in place (`requires_grad_(False)`); with tied weights this also
    freezes the LM head, as CLLM4Rec trains only the ID tables (notes sec. 1). Not resizing the base
    table keeps the vocabulary head N-way and lets the two views hold separate tables (sec. 8.3).
    """

    def __init__(
        self, base: nn.Embedding, vocabulary: IdVocabulary, init_std: float | None = None
    ) -> None:
        super().__init__()
        if base.num_embeddings != vocabulary.base_vocab_size:
            raise ValueError(
                f"the base embedding has {base.num_embeddings} rows but the vocabulary's "
                f"base_vocab_size is {vocabulary.base_vocab_size}"
            )
        self.vocabulary = vocabulary
        self.base = base.requires_grad_(False)
        weight = base.weight
        # choice: match the base embedding's std unless given (notes sec. 8.3, step 12).
        std = float(weight.detach().float().std()) if init_std is None else init_std
        self.init_std = std

        def table(rows: int) -> nn.Embedding:
            embedding = nn.Embedding(
                rows, base.embedding_dim, device=weight.device, dtype=weight.dtype
            )
            nn.init.normal_(embedding.weight, mean=0.0, std=std)
            return embedding

        self.users = nn.ModuleDict({view: table(vocabulary.num_users) for view in VIEWS})
        self.items = nn.ModuleDict({view: table(vocabulary.num_items) for view in VIEWS})

    def start_items_from_text(self, item_tokens: Mapping[int, Sequence[int]]) -> None:
        """Point each listed item's rows (both views) along the mean base embedding of its text
        tokens, centred on the base table's mean (else every item would share the direction all
        words share), at the random start's expected norm init_std · √H (`item_init: content`)."""
        base = self.base.weight.detach().float()
        centre = base.mean(0)
        norm = self.init_std * math.sqrt(base.shape[1])
        with torch.no_grad():
            for item, tokens in item_tokens.items():
                direction = base[list(tokens)].mean(0) - centre
                row = direction * (norm / direction.norm().clamp_min(1e-12))
                for view in VIEWS:
                    self.items[view].weight[item] = row

    def user_weight(self, view: View) -> torch.Tensor:
        """The view's user table, (I, H)."""
        return self.users[_checked_view(view)].weight

    def item_weight(self, view: View) -> torch.Tensor:
        """The view's item table, (J, H): also the tied item head (notes sec. 8.3, step 15)."""
        return self.items[_checked_view(view)].weight

    def forward(self, input_ids: torch.Tensor, view: View) -> torch.Tensor:
        """Embeddings of `input_ids` (B, T) -> (B, T, H), each id range read from its own table."""
        view = _checked_view(view)
        vocabulary = self.vocabulary
        if input_ids.numel() and (input_ids.min() < 0 or input_ids.max() >= vocabulary.size):
            raise ValueError(f"token ids must lie in [0, {vocabulary.size})")
        user_start, item_start = vocabulary.user_range.start, vocabulary.item_range.start
        is_base = input_ids < user_start
        is_item = input_ids >= item_start
        is_user = ~is_base & ~is_item
        weight = self.base.weight
        embeddings = weight.new_empty(*input_ids.shape, weight.shape[1])  # (B, T, H)
        # Masked writes: each table sees only its own ids, so the other view gets no gradient.
        embeddings[is_base] = self.base(input_ids[is_base])
        embeddings[is_user] = self.users[view](input_ids[is_user] - user_start)
        embeddings[is_item] = self.items[view](input_ids[is_item] - item_start)
        return embeddings


def _checked_view(view: str) -> View:
    if view not in VIEWS:
        raise ValueError(f"view must be one of {VIEWS}, got {view!r}")
    return view
