"""CLLM4Rec ID tokens: the id layout, document encoding and the routed, partly frozen embedding."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from llmrec.models.backbone import Backbone, BackboneConfig, load_backbone
from llmrec.models.cllm4rec.vocab import IdEmbedding, IdVocabulary, encode_document

NUM_USERS, NUM_ITEMS = 5, 7


@pytest.fixture(scope="module")
def backbone(llm_cache_dir: Path) -> Backbone:
    return load_backbone(
        BackboneConfig(source="tiny", cache_dir=llm_cache_dir), show_progress=False
    )


@pytest.fixture(scope="module")
def vocabulary(backbone: Backbone) -> IdVocabulary:
    return IdVocabulary(len(backbone.tokenizer), NUM_USERS, NUM_ITEMS)


def _embedding(backbone: Backbone, vocabulary: IdVocabulary) -> IdEmbedding:
    # A copy of the tiny model's table: freezing must not leak into the module-scoped backbone.
    base = torch.nn.Embedding.from_pretrained(
        backbone.model.get_input_embeddings().weight.detach().clone(), freeze=False
    )
    torch.manual_seed(0)
    return IdEmbedding(base, vocabulary)


def test_id_layout_maps_both_ways() -> None:
    vocabulary = IdVocabulary(base_vocab_size=100, num_users=3, num_items=4)
    assert vocabulary.user_range == range(100, 103)
    assert vocabulary.item_range == range(103, 107)
    assert vocabulary.size == 107
    assert [vocabulary.user_id(i) for i in range(3)] == [100, 101, 102]
    assert [vocabulary.item_id(j) for j in range(4)] == [103, 104, 105, 106]
    assert [vocabulary.kind_of(t) for t in (0, 99, 100, 102, 103, 106)] == [
        "text",
        "text",
        "user",
        "user",
        "item",
        "item",
    ]
    assert [vocabulary.user_index(vocabulary.user_id(i)) for i in range(3)] == [0, 1, 2]
    assert [vocabulary.item_index(vocabulary.item_id(j)) for j in range(4)] == [0, 1, 2, 3]
    for bad in (
        lambda: vocabulary.kind_of(107),
        lambda: vocabulary.kind_of(-1),
        lambda: vocabulary.user_index(103),
        lambda: vocabulary.item_index(102),
        lambda: vocabulary.user_id(3),
        lambda: vocabulary.item_id(-1),
    ):
        with pytest.raises(ValueError):
            bad()


def test_document_ids_are_atomic(backbone: Backbone, vocabulary: IdVocabulary) -> None:
    tokenizer = backbone.tokenizer
    ids = encode_document(
        [("text", "user"), ("user", 3), ("text", " has interacted with"), ("item", 5), ("item", 0)],
        tokenizer,
        vocabulary,
    )
    expected_text = tokenizer(" has interacted with", add_special_tokens=False)["input_ids"]
    head = tokenizer("user", add_special_tokens=False)["input_ids"]
    item_ids = [vocabulary.item_id(5), vocabulary.item_id(0)]
    assert ids == [*head, vocabulary.user_id(3), *expected_text, *item_ids]
    assert [vocabulary.kind_of(t) for t in ids].count("user") == 1
    assert [vocabulary.kind_of(t) for t in ids].count("item") == 2


def test_id_like_text_stays_base_tokens(backbone: Backbone, vocabulary: IdVocabulary) -> None:
    title = "Shampoo item_12 for user_3, item_0 user_0"
    ids = encode_document([("text", title)], backbone.tokenizer, vocabulary)
    assert ids == backbone.tokenizer(title, add_special_tokens=False)["input_ids"]
    assert all(vocabulary.kind_of(t) == "text" for t in ids)
    assert backbone.tokenizer.decode(ids) == title


def test_encode_rejects_bad_segments(backbone: Backbone, vocabulary: IdVocabulary) -> None:
    for segments in ([("item", NUM_ITEMS)], [("user", -1)], [("title", "x")], [("text", 3)]):
        with pytest.raises(ValueError):
            encode_document(segments, backbone.tokenizer, vocabulary)
    with pytest.raises(ValueError, match="base_vocab_size"):
        encode_document([("text", "a")], backbone.tokenizer, IdVocabulary(10, 1, 1))


def test_routing_reads_the_right_rows(backbone: Backbone, vocabulary: IdVocabulary) -> None:
    embedding = _embedding(backbone, vocabulary)
    text_ids = [11, 0, vocabulary.base_vocab_size - 1]
    input_ids = torch.tensor([[*text_ids, vocabulary.user_id(2), vocabulary.item_id(6)]])
    for view in ("collaborative", "content"):
        out = embedding(input_ids, view)  # (1, 5, H)
        assert out.shape == (1, 5, embedding.base.embedding_dim)
        assert torch.equal(out[0, :3], embedding.base.weight[text_ids])
        assert torch.equal(out[0, 3], embedding.user_weight(view)[2])
        assert torch.equal(out[0, 4], embedding.item_weight(view)[6])
    assert not torch.equal(embedding.item_weight("collaborative"), embedding.item_weight("content"))
    base_std = float(embedding.base.weight.std())
    assert embedding.init_std == pytest.approx(base_std)
    assert float(embedding.item_weight("content").detach().std()) == pytest.approx(
        base_std, rel=0.3
    )
    with pytest.raises(ValueError):
        embedding(torch.tensor([[vocabulary.size]]), "content")
    with pytest.raises(ValueError):
        embedding(input_ids, "collab")


def test_gradients_reach_only_the_view_tables(backbone: Backbone, vocabulary: IdVocabulary) -> None:
    embedding = _embedding(backbone, vocabulary)
    assert not embedding.base.weight.requires_grad
    trainable = {name for name, p in embedding.named_parameters() if p.requires_grad}
    assert trainable == {
        f"{table}.{view}.weight"
        for table in ("users", "items")
        for view in ("collaborative", "content")
    }
    base_before = embedding.base.weight.detach().clone()
    input_ids = torch.tensor([[5, vocabulary.user_id(1), 7, vocabulary.item_id(4)]])
    optimizer = torch.optim.AdamW(embedding.parameters(), lr=0.1, weight_decay=0.1)
    embedding(input_ids, "collaborative").square().sum().backward()
    assert embedding.base.weight.grad is None
    assert embedding.users["content"].weight.grad is None
    assert embedding.items["content"].weight.grad is None
    user_grad = embedding.users["collaborative"].weight.grad
    item_grad = embedding.items["collaborative"].weight.grad
    assert user_grad[1].abs().sum() > 0 and item_grad[4].abs().sum() > 0
    assert user_grad[[0, 2, 3, 4]].abs().sum() == 0
    assert item_grad[[0, 1, 2, 3, 5, 6]].abs().sum() == 0
    optimizer.step()
    assert torch.equal(embedding.base.weight, base_before)


def test_batched_forward_equals_per_example(backbone: Backbone, vocabulary: IdVocabulary) -> None:
    embedding = _embedding(backbone, vocabulary)
    rows = [
        [3, vocabulary.user_id(0), 9, vocabulary.item_id(2), vocabulary.item_id(6)],
        [vocabulary.item_id(1), 42, 42, vocabulary.user_id(4), 0],
    ]
    batched = embedding(torch.tensor(rows), "content")  # (2, 5, H)
    for index, row in enumerate(rows):
        assert torch.equal(batched[index], embedding(torch.tensor([row]), "content")[0])
