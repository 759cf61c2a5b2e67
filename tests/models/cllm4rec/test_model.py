"""CLLM4Rec on the tiny backbone: documents, heads, losses, gradients, schedule, save/load.

Follows the checklist of the implementer's notes (sec. 8.6): (b) gradients only in the intended
tables and a bit-identical backbone, (c) head shapes, (d) padding/prompt invariance and the first
main token, (e) mutual regularisation, (f) masking, (g) batched = per-example, (i) overfit.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from llmrec.data.catalogue import Catalogue, Item
from llmrec.errors import ModelFormatError
from llmrec.models.base import RunContext
from llmrec.models.cllm4rec.config import CLLM4RecConfig, CLLM4RecExtensions
from llmrec.models.cllm4rec.documents import DocumentBatches, collate, masked_split
from llmrec.models.cllm4rec.model import CLLM4Rec
from llmrec.models.losses import multinomial_nll
from llmrec.training.config import TrainConfig
from tests.training.helpers import assert_streams_from_any_position

NUM_ITEMS, NUM_USERS = 40, 16


def _catalogue() -> Catalogue:
    return Catalogue.from_items(
        Item(
            f"i{j}",
            title=f"widget {j} model item_{j}",
            categories=("tools", f"c{j % 4}"),
            brand=f"brand{j % 5}",
        )
        for j in range(NUM_ITEMS)
    )


def _sequences(seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [
        rng.choice(NUM_ITEMS, size=int(rng.integers(3, 9)), replace=False) for _ in range(NUM_USERS)
    ]


def _config(cache: Path, **fields) -> CLLM4RecConfig:
    """A tiny-backbone config without pretraining; `fields` may name extension options too."""
    extensions = {k: fields.pop(k) for k in list(fields) if k in CLLM4RecExtensions.model_fields}
    raw = {
        "backbone": {"source": "tiny", "cache_dir": str(cache)},
        "pretrain": {"warmup_epochs": 0, "rounds": 0},
        "extensions": extensions,
        **fields,
    }
    return CLLM4RecConfig.model_validate(raw)


def _built(cache: Path, **fields) -> CLLM4Rec:
    """A model with fresh tables for NUM_USERS users (no training)."""
    model = CLLM4Rec(_config(cache, **fields), _catalogue())
    torch.manual_seed(0)
    model._build([f"u{u}" for u in range(NUM_USERS)], model.config.backbone, show_progress=False)
    return model


def _batch(model: CLLM4Rec, task: str, epoch: int = 0) -> dict:
    content = model.templates.item_documents(model.catalogue.items)
    batches = DocumentBatches((task,), model.templates, _sequences(), content, 64, seed=0)
    return next(batches.batches(epoch))


@pytest.fixture()
def model(llm_cache_dir: Path) -> CLLM4Rec:
    return _built(llm_cache_dir)


def test_id_tokens_follow_an_embedding_table_padded_beyond_the_tokenizer(
    llm_cache_dir: Path, monkeypatch
) -> None:
    """Backbones such as Qwen2.5 or Pythia have more embedding rows than tokenizer tokens."""
    import llmrec.models.cllm4rec.model as model_module
    from llmrec.models.backbone import BackboneConfig, load_backbone

    padded = load_backbone(BackboneConfig(source="tiny", cache_dir=llm_cache_dir), False)
    padded.model.resize_token_embeddings(len(padded.tokenizer) + 7)
    monkeypatch.setattr(model_module, "load_backbone", lambda *args, **kwargs: padded)
    model = _built(llm_cache_dir)
    assert model.network.vocabulary.base_vocab_size == len(padded.tokenizer) + 7
    scores = model.score([np.array([1, 2])], ["u0"])
    assert scores.shape == (1, NUM_ITEMS) and torch.isfinite(scores).all()


def test_id_tokens_in_documents_are_atomic_and_titles_stay_text(model) -> None:
    vocabulary = model.network.vocabulary
    document = model.templates.collaborative(3, [5, 7])
    assert document.prompt[0] == vocabulary.user_id(3)
    assert document.main == (vocabulary.item_id(5), vocabulary.item_id(7))
    (title,) = [d for d in model.templates.item_documents(model.catalogue.items[:1])][:1]
    assert title.prompt[0] == vocabulary.item_id(0)
    # "item_0" inside the title is text: every main token is a base-vocabulary token.
    assert all(token < vocabulary.base_vocab_size for token in title.main)
    prompt = model.templates.recommendation(2, [4, 9]).prompt
    assert prompt.count(vocabulary.user_id(2)) == 2
    assert [t for t in prompt if t in vocabulary.item_range] == [
        vocabulary.item_id(4),
        vocabulary.item_id(9),
    ]


@pytest.mark.parametrize(
    ("task", "view"),
    [("collaborative", "collaborative"), ("content", "content"), ("recommend", "collaborative")],
)
def test_gradients_reach_only_the_task_view_and_the_backbone_stays_bit_identical(
    model, task, view
) -> None:
    network = model.network
    frozen = {n: p.detach().clone() for n, p in network.language_model.named_parameters()}
    trainable = [p for p in network.parameters() if p.requires_grad]
    assert {id(p) for p in trainable} == {
        id(getattr(network.ids, kind)[v].weight)
        for kind in ("users", "items")
        for v in ("collaborative", "content")
    }
    optimizer = torch.optim.Adam(trainable, lr=0.1)
    network(_batch(model, task)).total.backward()
    for kind in ("users", "items"):
        for other in ("collaborative", "content"):
            grad = getattr(network.ids, kind)[other].weight.grad
            if other != view:
                assert grad is None or not grad.any(), (kind, other)
    assert network.ids.items[view].weight.grad.abs().sum() > 0
    optimizer.step()
    for name, parameter in network.language_model.named_parameters():
        assert torch.equal(parameter, frozen[name]), name


def test_heads_are_items_only_and_vocabulary_only(model) -> None:
    network = model.network
    hidden = torch.randn(3, 5, network.ids.base.embedding_dim)
    assert network.item_logits(hidden).shape == (3, 5, NUM_ITEMS)
    torch.testing.assert_close(
        network.item_logits(hidden), hidden @ network.ids.item_weight("collaborative").T
    )
    assert network.vocabulary_logits(hidden).shape == (3, 5, network.vocabulary.base_vocab_size)


def test_item_logit_scale_multiplies_rank_scores_and_the_loss_sees_it(llm_cache_dir) -> None:
    plain, scaled = _built(llm_cache_dir), _built(llm_cache_dir, item_logit_scale=0.25)
    histories = [sequence[:-1] for sequence in _sequences()[:4]]
    users = [f"u{u}" for u in range(4)]
    torch.testing.assert_close(scaled.score(histories, users), 0.25 * plain.score(histories, users))
    batch = _batch(plain, "recommend")
    assert scaled.network(batch).parts["recommend"] != plain.network(batch).parts["recommend"]


def test_centered_head_scores_centred_states_plus_an_item_bias_and_trains_both(
    llm_cache_dir,
) -> None:
    model = _built(llm_cache_dir, centered_head=True)
    network = model.network
    with torch.no_grad():
        network.state_mean.normal_()
        network.item_bias.normal_()
    batch = _batch(model, "recommend")
    states = network.prompt_states(batch["input_ids"], batch["attention_mask"])
    expected = network.item_logits(states - network.state_mean) + network.item_bias
    scores = network.rank_scores(batch["input_ids"], batch["attention_mask"])
    torch.testing.assert_close(scores, expected)
    network(batch).total.backward()
    assert network.state_mean.grad.abs().sum() > 0 and network.item_bias.grad.abs().sum() > 0


def test_untied_head_scores_with_its_own_rows_started_at_zero(llm_cache_dir) -> None:
    model = _built(llm_cache_dir, untied_head=True)
    network = model.network
    batch = _batch(model, "recommend")
    scores = network.rank_scores(batch["input_ids"], batch["attention_mask"])
    assert torch.count_nonzero(scores) == 0  # zero rows: uniform until trained
    with torch.no_grad():
        network.head_items.normal_()
    states = network.prompt_states(batch["input_ids"], batch["attention_mask"])
    scores = network.rank_scores(batch["input_ids"], batch["attention_mask"])
    torch.testing.assert_close(scores, states @ network.head_items.T)
    network(batch).total.backward()
    assert network.head_items.grad.abs().sum() > 0
    prompt_items = network.ids.item_weight("collaborative").grad.abs().sum(1) > 0
    assert 0 < prompt_items.sum() < NUM_ITEMS  # the item table learns from the prompts only


def test_content_item_init_points_item_rows_along_their_words(
    llm_cache_dir, tmp_path, monkeypatch
) -> None:
    model = _built(llm_cache_dir, item_init="content", content_fields=["title", "brand"])
    templates, ids = model.templates, model.network.ids
    tokens = templates.item_text_tokens(templates.item_documents(model.catalogue.items))
    assert sorted(tokens) == list(range(NUM_ITEMS))
    assert tokens[3] == [*templates.words(" widget 3 model item_3"), *templates.words(" brand3")]
    random_rows = ids.item_weight("collaborative").detach().clone()
    ids.start_items_from_text(tokens)
    base = ids.base.weight.detach().float()
    norm = ids.init_std * base.shape[1] ** 0.5
    for item in (0, 3, NUM_ITEMS - 1):
        direction = base[tokens[item]].mean(0) - base.mean(0)
        for view in ("collaborative", "content"):
            row = ids.item_weight(view)[item].detach()
            assert torch.cosine_similarity(row, direction, dim=0) > 0.9999
            torch.testing.assert_close(row.norm(), torch.tensor(norm))
    assert not torch.equal(ids.item_weight("collaborative")[0], random_rows[0])
    assert not torch.equal(ids.item_weight("collaborative")[0], ids.item_weight("collaborative")[1])
    # fit starts the tables this way, before any stage trains them.
    calls = []
    monkeypatch.setattr(
        type(ids), "start_items_from_text", lambda self, item_tokens: calls.append(item_tokens)
    )
    fresh = CLLM4Rec(
        _config(llm_cache_dir, item_init="content", content_fields=["title"]), _catalogue()
    )
    _fit(fresh, tmp_path, epochs=1)
    assert len(calls) == 1 and calls[0][3] == list(templates.words(" widget 3 model item_3"))


def test_table_lr_scale_speeds_the_id_tables_only(llm_cache_dir) -> None:
    from llmrec.training.config import TrainConfig
    from llmrec.training.optim import build_optimizer

    model = _built(llm_cache_dir, table_lr_scale=10.0, centered_head=True, untied_head=True)
    network = model.network
    plan = network.training_plan()
    assert plan.checkpoint_trainable_only and plan.unused_parameters
    optimizer = build_optimizer(network, TrainConfig(lr=1e-3), plan.lr_scales)
    lrs = {id(p): group["lr"] for group in optimizer.param_groups for p in group["params"]}
    tables = [network.ids.user_weight(v) for v in ("collaborative", "content")]
    tables += [network.ids.item_weight(v) for v in ("collaborative", "content")]
    assert [lrs[id(table)] for table in tables] == [pytest.approx(1e-2)] * 4
    assert [lrs[id(p)] for p in network.head_parameters().values()] == [1e-3] * 3
    assert len(lrs) == 7  # nothing of the frozen backbone
    assert _built(llm_cache_dir).network.training_plan().lr_scales == {}


def test_items_mean_readout_averages_the_states_of_the_prompts_item_tokens(llm_cache_dir) -> None:
    model = _built(llm_cache_dir, prompt_readout="items_mean")
    network, templates = model.network, model.templates
    prompts = [templates.recommendation(0, [1, 2, 3]), templates.recommendation(1, [])]
    batch = collate("recommend", prompts, network.vocabulary, model.config)
    ids, mask = batch["input_ids"], batch["attention_mask"]
    with torch.no_grad():
        hidden = network.hidden_states(ids, mask, "collaborative")
        states = network.prompt_states(ids, mask)
    kinds = [network.vocabulary.kind_of(token) for token in ids[0].tolist()]
    items = [position for position, kind in enumerate(kinds) if kind == "item"]
    assert len(items) == 3
    torch.testing.assert_close(states[0], hidden[0, items].mean(0))
    torch.testing.assert_close(states[1], hidden[1, int(mask[1].sum()) - 1])  # no items: last


def test_centered_head_starts_as_popularity_and_survives_save_and_load(
    llm_cache_dir, tmp_path
) -> None:
    model = _built(llm_cache_dir, centered_head=True)
    sequences = _sequences()
    model._start_centered_head(sequences, seed=0)  # fewer users than the sample: all of them
    prompts = [
        model.templates.recommendation(user, model.templates.recent(items))
        for user, items in enumerate(sequences)
    ]
    batch = collate("recommend", prompts, model.network.vocabulary, model.config)
    with torch.no_grad():
        states = model.network.prompt_states(batch["input_ids"], batch["attention_mask"])
    torch.testing.assert_close(model.network.state_mean, states.mean(0))
    counts = torch.zeros(NUM_ITEMS)
    for items in sequences:
        counts[torch.as_tensor(items)] += 1  # items are distinct within a sequence
    torch.testing.assert_close(model.network.item_bias, torch.log1p(counts))

    trained = CLLM4Rec(_config(llm_cache_dir, centered_head=True), _catalogue())
    _fit(trained, tmp_path / "run", epochs=1)
    assert trained.network.item_bias.abs().sum() > 0
    trained.save(tmp_path / "saved")
    histories, users = [np.array([1, 2]), np.array([3])], ["u1", "u2"]
    loaded = CLLM4Rec.load(tmp_path / "saved")
    torch.testing.assert_close(trained.score(histories, users), loaded.score(histories, users))
    config = tmp_path / "saved" / "config.json"
    saved = config.read_text()
    flips = [
        ('"centered_head": true', '"centered_head": false'),
        ('"untied_head": false', '"untied_head": true'),
    ]
    for old, new in flips:
        config.write_text(saved.replace(old, new))
        with pytest.raises(ModelFormatError, match=r"do not match the model: \w+ head\."):
            CLLM4Rec.load(tmp_path / "saved")


def test_first_main_token_is_a_target_only_when_asked(llm_cache_dir) -> None:
    for flag in (True, False):
        model = _built(llm_cache_dir, first_main_token_target=flag)
        document = model.templates.collaborative(0, [5, 7, 9])
        batch = collate("collaborative", [document], model.network.vocabulary, model.config)
        last_prompt = len(document.prompt) - 1
        targets = batch["next_targets"][0]
        assert (targets[last_prompt].item() == document.main[0]) is flag
        assert (targets[:last_prompt] == -1).all()  # prompt tokens are never targets
        assert targets[last_prompt + 1 : last_prompt + 3].tolist() == list(document.main[1:])


@pytest.mark.parametrize("task", ["collaborative", "content", "recommend"])
def test_batched_loss_is_the_term_weighted_mean_of_per_example_losses(model, task) -> None:
    no_training = {"warmup_epochs": 0, "rounds": 1}  # built, never trained
    model = _built(model.config.backbone.cache_dir, mr_lambda=0.0, pretrain=no_training)
    network, vocabulary = model.network.eval(), model.network.vocabulary
    content = model.templates.item_documents(model.catalogue.items)
    source = DocumentBatches((task,), model.templates, _sequences(), content, 64, seed=0)
    documents = source.documents(task, source.rows[task][0][:4], np.random.default_rng(0))
    with torch.no_grad():
        together = network(collate(task, documents, vocabulary, model.config))
        alone = [network(collate(task, [d], vocabulary, model.config)) for d in documents]
    weights = torch.tensor([float(out.num_terms) for out in alone])
    expected = (torch.stack([out.total for out in alone]) * weights).sum() / weights.sum()
    torch.testing.assert_close(together.total, expected, rtol=1e-4, atol=1e-5)


def test_batched_scores_equal_per_example_scores(model) -> None:
    histories = [np.array([1, 2, 3, 4, 5, 6]), np.array([7]), np.array([8, 9])]
    users = ["u0", "u1", "u2"]
    together = model.score(histories, users)
    alone = torch.cat([model.score([h], [u]) for h, u in zip(histories, users, strict=True)])
    torch.testing.assert_close(together, alone, rtol=1e-4, atol=1e-5)


def test_mutual_regularisation_is_zero_for_equal_views_and_pulls_only_the_active_view(
    model,
) -> None:
    network = model.network
    with torch.no_grad():
        for kind in ("users", "items"):
            getattr(network.ids, kind)["content"].weight.copy_(
                getattr(network.ids, kind)["collaborative"].weight
            )
    batch = _batch(model, "collaborative")
    mr = network.mutual_regularisation(batch["input_ids"], batch["mr_mask"], "collaborative")
    assert mr.item() == 0.0
    with torch.no_grad():
        network.ids.items["content"].weight.add_(0.5)
    mr = network.mutual_regularisation(batch["input_ids"], batch["mr_mask"], "collaborative")
    occurrences = int(batch["mr_mask"].sum())
    hidden = network.ids.base.embedding_dim
    torch.testing.assert_close(mr, torch.tensor(0.25 * hidden * occurrences), rtol=1e-4, atol=0)
    mr.backward()
    assert network.ids.items["collaborative"].weight.grad.abs().sum() > 0
    assert network.ids.items["content"].weight.grad is None


def test_mutual_regularisation_mean_mode_and_item_only_mask(llm_cache_dir) -> None:
    model = _built(llm_cache_dir, extensions={"mr_mode": "mean"})
    batch = _batch(model, "collaborative")
    vocabulary = model.network.vocabulary
    masked = batch["input_ids"][batch["mr_mask"]]
    assert (masked >= vocabulary.item_range.start).all()  # users excluded by default
    with torch.no_grad():
        model.network.ids.items["content"].weight.copy_(
            model.network.ids.items["collaborative"].weight + 1.0
        )
    mr = model.network.mutual_regularisation(batch["input_ids"], batch["mr_mask"], "collaborative")
    torch.testing.assert_close(mr, torch.tensor(float(model.network.ids.base.embedding_dim)))


@pytest.mark.parametrize("length", [1, 2, 4, 5, 9, 10, 23])
def test_masked_count_and_split(length: int) -> None:
    items = list(range(100, 100 + length))
    visible, masked = masked_split(items, 0.2, np.random.default_rng(length))
    assert len(masked) == max(1, int(np.floor(0.2 * length)))
    assert sorted(visible + masked) == items
    assert not set(visible) & set(masked)


@pytest.mark.parametrize("target_set", ["heldout", "all_train"])
def test_recommendation_targets_follow_the_mode(llm_cache_dir, target_set) -> None:
    model = _built(llm_cache_dir, target_set=target_set)
    sequences = _sequences()
    batches = DocumentBatches(("recommend",), model.templates, sequences, [], 64, seed=0)
    users = batches.rows["recommend"][0]
    documents = batches.documents("recommend", users, np.random.default_rng(1))
    vocabulary = model.network.vocabulary
    for document, sequence in zip(documents, sequences, strict=True):
        shown = {vocabulary.item_index(t) for t in document.prompt if t in vocabulary.item_range}
        targets = set(document.targets)
        if target_set == "heldout":
            assert len(targets) == max(1, len(sequence) // 5)
            assert not shown & targets and shown | targets == set(sequence.tolist())
        else:
            assert targets == set(sequence.tolist())


def test_batches_stream_from_any_position_planned_with_the_documents_lengths(llm_cache_dir) -> None:
    model = _built(llm_cache_dir, max_history_items=5)  # some histories are cut
    content = model.templates.item_documents(model.catalogue.items)
    phases = ("recommend", "collaborative", "content")
    source = DocumentBatches(phases, model.templates, _sequences(), content, 6, seed=0)
    assert source.num_batches(0) == 3 + 3 + 20  # 16 users twice, 120 item documents
    assert_streams_from_any_position(source, epoch=1)
    for task, (rows, lengths) in source.rows.items():
        documents = source.documents(task, rows, np.random.default_rng(0))
        assert lengths.tolist() == [len(d.prompt) + len(d.main) for d in documents], task


@pytest.mark.parametrize("mr_include_targets", [False, True])
def test_target_indices_give_the_loss_of_the_dense_target_counts(
    llm_cache_dir, mr_include_targets
) -> None:
    """Recommendation batches carry their targets as indices, scattered on the device in the
    forward: the loss is, bit for bit, the one of the dense (B, J) counts batches carried."""
    model = _built(llm_cache_dir, target_set="all_train", mr_include_targets=mr_include_targets)
    sequences = [np.array([1, 2, 1, 3]), np.array([4]), np.array([5, 5, 5, 6, 7])]  # repeats
    source = DocumentBatches(("recommend",), model.templates, sequences, [], 64, seed=0)
    batch = next(source.batches(0))
    indices = batch["target_indices"]
    assert indices.shape == (3, 5) and "target_items" not in batch  # no (B, J) on the host
    dense = torch.zeros(3, NUM_ITEMS)  # the dense counts, built as the batches used to
    for row, items in enumerate(indices.tolist()):
        for item in items:
            if item < NUM_ITEMS:  # J pads
                dense[row, item] += 1.0
    assert dense.sum().item() == 10 and dense.max().item() == 3
    network = model.network.eval()
    with torch.no_grad():
        out = network(batch)
        ids, mask = batch["input_ids"], batch["attention_mask"]
        states = network.read_prompt(network.hidden_states(ids, mask, "collaborative"), ids, mask)
        expected = multinomial_nll(network.recommend_logits(states), dense)
        mr = network.mutual_regularisation(
            ids, batch["mr_mask"], "collaborative", dense if mr_include_targets else None
        )
    assert torch.equal(out.parts["recommend"], expected)
    assert torch.equal(out.total, expected + model.config.mr_lambda * mr)


def test_prompts_without_the_user_token_name_no_user_and_score_alike(llm_cache_dir) -> None:
    model = _built(llm_cache_dir, prompt_user_token=False)
    vocabulary = model.network.vocabulary
    history = [3, 7, 11]
    document = model.templates.recommendation(5, history)
    assert not [t for t in document.prompt if t in vocabulary.user_range]
    assert [vocabulary.item_index(t) for t in document.prompt if t in vocabulary.item_range] == [
        3,
        7,
        11,
    ]
    text = model.templates.tokenizer.decode(
        [t for t in document.prompt if t in vocabulary.base_range]
    )
    assert text.startswith("A user has interacted with") and "the user will interact" in text
    scores = model.score([history, history], users=["u1", "u9"])
    assert torch.equal(scores[0], scores[1])
    named = _built(llm_cache_dir).score([history, history], users=["u1", "u9"])
    assert not torch.equal(named[0], named[1])  # the paper's prompt reads the user's own row


def _fit(model: CLLM4Rec, folder: Path, epochs: int, resume: bool = False, **train):
    cfg = TrainConfig(epochs=epochs, lr=0.05, batch_size=8, log_every=1000, **train)
    run = RunContext(folder, cfg, seed=0, show_progress=False, resume=resume)
    users = [f"u{u}" for u in range(NUM_USERS)]
    return model.fit(_sequences(), None, run, user_ids=users)


def test_overfit_recommends_each_users_items_far_above_random(llm_cache_dir, tmp_path) -> None:
    model = CLLM4Rec(
        _config(
            llm_cache_dir,
            target_set="all_train",
            mr_lambda=0.0,
            finetune_content_epochs=False,
            pretrain={"warmup_epochs": 1, "rounds": 0},  # CLLM4Rec keeps some pretraining
        ),
        _catalogue(),
    )
    _fit(model, tmp_path, epochs=60)  # 2 batches per epoch: 120 steps
    sequences = _sequences()
    users = [f"u{u}" for u in range(NUM_USERS)]
    top = model.recommend([s[:-1] for s in sequences], k=5, users=users).item_indices
    # Share of the top 5 that are the user's own items; 5 random items score len(s) / J.
    hits = [len(set(row) & set(s.tolist())) / 5 for row, s in zip(top, sequences, strict=True)]
    random = np.mean([len(s) / NUM_ITEMS for s in sequences])
    assert np.mean(hits) > 4 * random, (np.mean(hits), random)


def test_schedule_runs_every_stage_and_saves_only_the_id_tables(llm_cache_dir, tmp_path) -> None:
    config = _config(
        llm_cache_dir, pretrain={"warmup_epochs": 1, "rounds": 1, "train": {"batch_size": 64}}
    )
    model = CLLM4Rec(config, _catalogue())
    fit = _fit(model, tmp_path / "run", epochs=1)
    assert set(fit.stage_seconds) == {"warmup", "pretrain", "finetune"}
    assert [entry["stage"] for entry in fit.history] == []  # no validation set given
    model.save(tmp_path / "saved")
    names = {path.name for path in (tmp_path / "saved").iterdir()}
    assert {"id_tables.safetensors", "users.json", "backbone_identity.json"} <= names
    assert "backbone" not in names  # frozen: reloaded from its source, hash checked
    loaded = CLLM4Rec.load(tmp_path / "saved")
    histories, users = [np.array([1, 2]), np.array([3])], ["u1", "never-seen"]
    torch.testing.assert_close(model.score(histories, users), loaded.score(histories, users))
    checkpoint = tmp_path / "run" / "finetune" / "checkpoints" / "last" / "model.safetensors"
    assert checkpoint.stat().st_size < 1_000_000  # ID tables, not the LLM


def test_unknown_users_get_the_mean_user(model) -> None:
    model._set_anonymous_user()
    table = model.network.ids.user_weight("collaborative")
    torch.testing.assert_close(table[NUM_USERS], table[:NUM_USERS].mean(0))
    history = [np.array([1, 2, 3])]
    torch.testing.assert_close(model.score(history, ["nobody"]), model.score(history, None))


def test_loading_with_another_backbone_is_refused(llm_cache_dir, tmp_path) -> None:
    model = CLLM4Rec(_config(llm_cache_dir), _catalogue())
    _fit(model, tmp_path / "run", epochs=1)
    model.save(tmp_path / "saved")
    identity = tmp_path / "saved" / "backbone_identity.json"
    identity.write_text(identity.read_text().replace('"sha256": "', '"sha256": "0'))
    with pytest.raises(ModelFormatError, match="sha256"):
        CLLM4Rec.load(tmp_path / "saved")


@pytest.mark.parametrize("head", [{}, {"centered_head": True, "untied_head": True}])
def test_killed_run_resumes_to_the_same_tables(llm_cache_dir, tmp_path, monkeypatch, head) -> None:
    from llmrec.models.cllm4rec.network import CLLM4RecNetwork

    def fit(folder: Path, resume: bool = False) -> CLLM4Rec:
        model = CLLM4Rec(_config(llm_cache_dir, **head), _catalogue())
        _fit(model, folder, epochs=3, resume=resume, checkpoint_every=2)
        return model

    reference = fit(tmp_path / "whole")
    original, calls = CLLM4RecNetwork.forward, {"n": 0}

    def crash_on_fifth_step(self, batch):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return original(self, batch)

    monkeypatch.setattr(CLLM4RecNetwork, "forward", crash_on_fifth_step)
    with pytest.raises(KeyboardInterrupt):
        fit(tmp_path / "killed")
    monkeypatch.setattr(CLLM4RecNetwork, "forward", original)
    resumed = fit(tmp_path / "killed", resume=True)
    trained = [name for name, p in resumed.network.named_parameters() if p.requires_grad]
    assert len(trained) == 4 + 3 * bool(head)  # the four ID tables (+ the head's three)
    for name in trained:
        torch.testing.assert_close(
            resumed.network.get_parameter(name),
            reference.network.get_parameter(name),
            rtol=0,
            atol=0,
        )
