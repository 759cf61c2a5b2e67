"""CLLM4Rec's documents as token ids, and their deterministic padded batches.

A document is a prompt (ID tokens + words; no loss) and a homogeneous main text (only item tokens,
or only vocabulary tokens; all the loss), the paper's "soft + hard" prompting (notes sec. 2.3):
- collaborative: `user_i has interacted with` -> the user's items (an item-only softmax);
- content: `item_j has the title:` -> the title (vocabulary-only softmax); likewise categories
  and brand. No reviews are staged, so content documents are item metadata only (notes 8.1).
- recommendation (finetuning): `user_i has interacted with <visible>, user_i will interact with`,
  scored against every item at the last prompt token; targets are the masked items.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from llmrec.data.catalogue import Item
from llmrec.models.cllm4rec.config import CLLM4RecConfig, ContentField
from llmrec.models.cllm4rec.vocab import IdVocabulary, encode_document
from llmrec.text.templates import field_text
from llmrec.training.batching import count_batches, length_pooled_batches, pad_index_lists

Task = Literal["collaborative", "content", "recommend"]
CONTENT_PROMPTS: dict[ContentField, str] = {
    "title": " has the title:",
    "categories": " belongs to the categories:",
    "brand": " is made by the brand:",
}


@dataclass(frozen=True)
class Document:
    """Token ids: `prompt` gets no loss; `main` holds the targets (item or vocabulary ids)."""

    prompt: tuple[int, ...]
    main: tuple[int, ...] = ()
    targets: tuple[int, ...] = ()  # recommendation: item indices of the multinomial target


class Templates:
    """The fixed text pieces, tokenized once, and the documents built from them."""

    def __init__(self, tokenizer, vocabulary: IdVocabulary, config: CLLM4RecConfig) -> None:
        self.vocabulary, self.config = vocabulary, config

        def words(text: str) -> tuple[int, ...]:
            return tuple(encode_document([("text", text)], tokenizer, vocabulary))

        self.words = words
        self.interacted = words(" has interacted with")
        self.comma = words(",")
        self.will_interact = words(" will interact with")
        self.a_user, self.the_user = words("A user"), words(" the user")
        self.content_prompts = {name: words(text) for name, text in CONTENT_PROMPTS.items()}
        self.bought_titled = words(" has bought items titled:")
        self.tokenizer = tokenizer

    def recent(self, items: Sequence[int]) -> list[int]:
        return [int(i) for i in items[-self.config.max_history_items :]]

    def collaborative(self, user: int, items: Sequence[int]) -> Document:
        vocab = self.vocabulary
        return Document(
            (vocab.user_id(user), *self.interacted), tuple(vocab.item_id(int(i)) for i in items)
        )

    def recommendation(
        self, user: int, visible: Sequence[int], targets: Sequence[int] = ()
    ) -> Document:
        """`user_i has interacted with <visible>, user_i will interact with` (official wording);
        without `prompt_user_token`, `A user ...` and `the user ...` name the user."""
        vocab = self.vocabulary
        if self.config.extensions.prompt_user_token:
            first = second = (vocab.user_id(user),)
        else:
            first, second = self.a_user, self.the_user
        prompt = (
            *first,
            *self.interacted,
            *(vocab.item_id(int(i)) for i in visible),
            *self.comma,
            *second,
            *self.will_interact,
        )
        return Document(prompt, (), tuple(int(t) for t in targets))

    def item_documents(self, items: Sequence[Item]) -> list[Document]:
        """One document per item and non-empty configured field (item metadata leaks nothing)."""
        documents = []
        for index, item in enumerate(items):
            for name in self.config.content_fields:
                text = field_text(item, name).strip()
                if text:
                    documents.append(self._content(index, name, text))
        return documents

    def item_text_tokens(self, item_documents: Sequence[Document]) -> dict[int, list[int]]:
        """Item index -> the text tokens of its content documents (`item_documents`' output)."""
        tokens: dict[int, list[int]] = {}
        start = self.vocabulary.item_range.start
        for document in item_documents:
            tokens.setdefault(document.prompt[0] - start, []).extend(document.main)
        return tokens

    def user_documents(self, train: Sequence[np.ndarray], items: Sequence[Item]) -> list[Document]:
        """`user_i has bought items titled:` -> titles of training items (off by default)."""
        documents = []
        for user, sequence in enumerate(train):
            titles = "; ".join(items[i].title for i in self.recent(sequence) if items[i].title)
            if titles:
                prompt = (self.vocabulary.user_id(user), *self.bought_titled)
                main = self.words(" " + titles)[: self.config.max_content_tokens]
                documents.append(Document(prompt, main))
        return documents

    def _content(self, item: int, name: ContentField, text: str) -> Document:
        prompt = (self.vocabulary.item_id(item), *self.content_prompts[name])
        return Document(prompt, self.words(" " + text)[: self.config.max_content_tokens])


def masked_split(
    items: Sequence[int], ratio: float, rng: np.random.Generator
) -> tuple[list[int], list[int]]:
    """(visible, masked): max(1, floor(ratio * n)) items masked uniformly (notes 4.1)."""
    count = max(1, int(np.floor(ratio * len(items))))
    chosen = set(rng.choice(len(items), size=count, replace=False).tolist())
    visible = [item for position, item in enumerate(items) if position not in chosen]
    masked = [item for position, item in enumerate(items) if position in chosen]
    return visible, masked


class DocumentBatches:
    """Deterministic batches per (seed, epoch) for the shared loop: one phase after another.

    `phases` name the tasks of one loop epoch in order, e.g. ("collaborative", "content") for a
    pretraining round (one full epoch of each, as the official alternation). An epoch is planned
    from the documents' lengths alone (item tokens are atomic, so a user's document length
    follows from its item count); a batch's documents are built when it is asked for, the
    random ones (permuted histories, masked items) from a generator of (seed, epoch, phase,
    batch position), so a batch never depends on the batches before it.
    """

    def __init__(
        self,
        phases: Sequence[Task],
        templates: Templates,
        train: Sequence[np.ndarray],
        item_documents: Sequence[Document],
        batch_size: int,
        seed: int,
        mutual: bool = True,
    ) -> None:
        self.phases = tuple(phases)
        self.mutual = mutual
        self.templates = templates
        self.train = train  # the caller's sequences: a batch reads its users' recent items
        self.item_documents = list(item_documents)
        self.batch_size, self.seed = batch_size, seed
        self.config = templates.config
        self.rows = {task: self._rows_and_lengths(task) for task in set(self.phases)}

    def _rows_and_lengths(self, task: Task) -> tuple[np.ndarray, np.ndarray]:
        """(rows, document lengths): item documents for `content`, else users with items."""
        if task == "content":
            lengths = [len(d.prompt) + len(d.main) for d in self.item_documents]
            return np.arange(len(lengths)), np.asarray(lengths, dtype=np.int64)
        cap = self.config.max_history_items
        counts = np.fromiter((min(len(s), cap) for s in self.train), np.int64, len(self.train))
        users = np.flatnonzero(counts)
        counts = counts[users]
        if task == "collaborative":
            return users, len(self.templates.collaborative(0, ()).prompt) + counts
        masked = np.maximum(1, np.floor(self.config.mask_ratio * counts).astype(np.int64))
        return users, len(self.templates.recommendation(0, ()).prompt) + counts - masked

    def num_batches(self, epoch: int) -> int:
        return sum(count_batches(len(self.rows[task][0]), self.batch_size) for task in self.phases)

    def batches(self, epoch: int, start: int = 0) -> Iterator[dict]:
        first = 0  # the epoch position of the phase's first batch
        for number, task in enumerate(self.phases):
            rows, lengths = self.rows[task]
            count = count_batches(len(rows), self.batch_size)
            if start < first + count:
                rng = np.random.default_rng([self.seed, epoch, number])
                plan = length_pooled_batches(lengths, self.batch_size, rng)
                for position in range(max(start - first, 0), count):
                    rng = np.random.default_rng([self.seed, epoch, number, position])
                    documents = self.documents(task, rows[plan[position]], rng)
                    batch = collate(task, documents, self.templates.vocabulary, self.config)
                    yield {**batch, "mutual": self.mutual}
            first += count

    def documents(self, task: Task, rows: np.ndarray, rng: np.random.Generator) -> list[Document]:
        """The documents of `rows` (item documents or users), random choices drawn in order."""
        if task == "content":
            return [self.item_documents[row] for row in rows]
        documents = []
        for user in rows.tolist():
            items = self.templates.recent(self.train[user])
            if task == "collaborative":
                order = rng.permutation(items) if self.config.permute_history else items
                documents.append(self.templates.collaborative(user, order))
                continue
            visible, masked = masked_split(items, self.config.mask_ratio, rng)
            if self.config.permute_history:
                visible = list(rng.permutation(visible)) if visible else []
            targets = masked if self.config.target_set == "heldout" else items
            documents.append(self.templates.recommendation(user, visible, targets))
        return documents


def collate(
    task: Task, documents: Sequence[Document], vocabulary: IdVocabulary, config: CLLM4RecConfig
) -> dict:
    """Right-padded [prompt; main] ids with the masks the losses need.

    - `next_targets` (B, T): at position p the id the model must predict next (main token p+1;
      -1 where nothing is predicted); the first main token is predicted from the last prompt
      token when `first_main_token_target` is on.
    - `mr_mask` (B, T): ID positions under mutual regularisation (collaborative: prompt + main;
      content and recommendation: prompt; items only unless `mr_users`).
    - `target_indices` (B, L): recommendation only, the items of the multinomial target (a
      repeat counts twice), padded with J; the network makes the dense (B, J) counts on its
      device (`scatter_counts`), so a batch on the host never grows with the catalogue.
    """
    rows = [(*d.prompt, *d.main) for d in documents]
    size, width = len(rows), max(len(r) for r in rows)
    input_ids = torch.zeros((size, width), dtype=torch.long)  # pad 0: masked out, no loss
    attention_mask = torch.zeros((size, width), dtype=torch.bool)
    next_targets = torch.full((size, width), -1, dtype=torch.long)
    for row, (document, ids) in enumerate(zip(documents, rows, strict=True)):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        attention_mask[row, : len(ids)] = True
        first = len(document.prompt) - (1 if config.first_main_token_target else 0)
        for position in range(max(first, 0), len(ids) - 1):
            next_targets[row, position] = ids[position + 1]
    batch = {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "next_targets": next_targets,
        "mr_mask": _mr_mask(task, documents, input_ids, vocabulary, config),
        "task": task,
    }
    if task == "recommend":
        targets = [document.targets for document in documents]
        batch["target_indices"] = pad_index_lists(targets, vocabulary.num_items)
    return batch


def _mr_mask(task, documents, input_ids, vocabulary: IdVocabulary, config) -> torch.Tensor:
    is_item = input_ids >= vocabulary.item_range.start
    is_user = (input_ids >= vocabulary.user_range.start) & ~is_item
    mask = is_item | is_user if config.mr_users else is_item
    if task != "collaborative":  # content and recommendation: prompt IDs only
        prompt_lengths = torch.tensor([len(d.prompt) for d in documents])
        positions = torch.arange(input_ids.shape[1])
        mask &= positions[None, :] < prompt_lengths[:, None]
    return mask
