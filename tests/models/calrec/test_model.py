"""CALRec end to end on the tiny backbone: losses fall, 20 users are memorised through the
generative path (generate -> BM25 -> merge), configs are validated."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from llmrec.data.registry import load_dataset
from llmrec.data.sequences import EvalSet
from llmrec.errors import ConfigError
from llmrec.evaluation.ranking import evaluate_model
from llmrec.models.base import RunContext
from llmrec.models.calrec.model import CALRec, CALRecConfig
from llmrec.training.config import TrainConfig


def _config(cache: Path, **fields) -> CALRecConfig:
    return CALRecConfig.model_validate(
        {
            "backbone": {"source": "tiny", "cache_dir": str(cache)},
            "text": {"fields": ["title"], "max_history_items": 2, "max_item_tokens": 12},
            "generation": {"num_samples": 1, "temperature": 0, "max_new_tokens": 14},
            **fields,
        }
    )


def _distinct_target_users(dataset, count: int) -> list[np.ndarray]:
    """Users whose last training item has a title no other catalogue item shares."""
    titles = [item.title for item in dataset.catalogue.items]
    unique = {title for title in titles if titles.count(title) == 1}
    chosen = [s for s in dataset.train if len(s) >= 2 and titles[s[-1]] in unique]
    return chosen[:count]


# slow: 34 s on 2 idle cores (60 steps of the tiny backbone, then generation for 20 users); the
# contract suite, the packed equivalence test and the resume tests keep CALRec's losses and
# ranking in the default suite
@pytest.mark.slow
def test_twenty_users_are_memorised_through_generation(beauty_mini, llm_cache_dir, tmp_path):
    train = _distinct_target_users(beauty_mini, 20)
    model = CALRec(_config(llm_cache_dir), beauty_mini.catalogue)
    run = RunContext(
        tmp_path,
        TrainConfig(epochs=60, batch_size=20, lr=5e-3, log_every=1),
        seed=0,
        show_progress=False,
    )
    model.fit(train, None, run)

    log_text = (tmp_path / "stage_two" / "train_log.jsonl").read_text(encoding="utf-8")
    log = [json.loads(line) for line in log_text.splitlines()]
    for part in ("nig", "tt", "ut"):
        values = [record[part] for record in log]
        assert all(np.isfinite(values)), part
        assert np.mean(values[-5:]) < 0.5 * np.mean(values[:5]), part

    memorised = EvalSet(
        tuple(map(str, range(20))), tuple(s[:-1] for s in train), np.array([s[-1] for s in train])
    )
    result = evaluate_model(model, memorised, show_progress=False)
    assert result.metrics["recall@1"] == 1.0
    assert result.protocol["ranked_by"] == "recommend"
    assert result.protocol["diagnostics"]["exact_match_share"] == 1.0  # every line is real

    # The contrastive terms aligned v_U with v_T: dense retrieval finds the targets too.
    model.config = model.config.with_extensions(retrieval="dense")
    dense = evaluate_model(model, memorised, show_progress=False)
    assert dense.protocol["ranked_by"] == "score"
    assert dense.metrics["recall@10"] >= 0.5  # random: 10 / 2090


def test_stage_one_mixes_other_data_sets_before_stage_two(beauty_mini, llm_cache_dir, tmp_path):
    fixture = Path(__file__).resolve().parents[3] / "data" / "amazon-beauty-mini"
    config = _config(
        llm_cache_dir,
        stage_one={
            "sources": [str(fixture)],
            "examples_per_epoch": 8,
            "train": {"epochs": 1, "batch_size": 4},
        },
    )
    model = CALRec(config, beauty_mini.catalogue)
    mixture = {str(fixture): load_dataset(fixture).dataset}
    train = TrainConfig(epochs=1, batch_size=4)
    run = RunContext(tmp_path, train, seed=0, show_progress=False, auxiliary=mixture)
    model.fit(beauty_mini.train[:8], None, run)
    assert (tmp_path / "stage_one" / "checkpoints" / "last").is_dir()
    assert (tmp_path / "stage_two" / "checkpoints" / "last").is_dir()


def test_stage_one_trains_on_the_mixture_it_is_handed(beauty_mini, llm_cache_dir, tmp_path) -> None:
    """The model names its Stage I sources; the caller (the experiment layer) loads them."""
    stage_one = {"sources": ["beauty-mini"], "include_target": False, "examples_per_epoch": 4}
    config = _config(llm_cache_dir, stage_one={**stage_one, "train": {"batch_size": 4}})
    model = CALRec(config, beauty_mini.catalogue)
    assert model.auxiliary_sources() == {"beauty-mini": None}
    train = TrainConfig(epochs=1, batch_size=4)
    with pytest.raises(ConfigError, match=r"RunContext\.auxiliary"):
        model.fit(beauty_mini.train[:4], None, RunContext(tmp_path, train, show_progress=False))
    run = RunContext(tmp_path, train, show_progress=False, auxiliary={"beauty-mini": beauty_mini})
    model.fit(beauty_mini.train[:4], None, run)
    assert (tmp_path / "stage_one" / "checkpoints" / "last").is_dir()


def test_weights_must_leave_room_for_the_generation_loss(llm_cache_dir) -> None:
    with pytest.raises(ValidationError, match="alpha \\+ beta"):
        _config(llm_cache_dir, alpha=0.6, beta=0.4)


def test_lora_trains_adapters_only_and_merges_into_a_plain_model(
    beauty_mini, llm_cache_dir, tmp_path
) -> None:
    import torch

    config = _config(llm_cache_dir, extensions={"lora": {"rank": 4, "alpha": 8, "dropout": 0.0}})
    model = CALRec(config, beauty_mini.catalogue)
    before = {n: p.detach().clone() for n, p in model.network.language_model.named_parameters()}
    run = RunContext(
        tmp_path, TrainConfig(epochs=2, batch_size=4, lr=1e-2), seed=0, show_progress=False
    )
    model.fit(beauty_mini.train[:8], None, run)
    after = dict(model.network.language_model.named_parameters())
    assert set(after) == set(before)  # merged: no adapter parameters left, no peft wrapper
    assert not torch.equal(
        after["model.layers.0.self_attn.q_proj.weight"],
        before["model.layers.0.self_attn.q_proj.weight"],
    )
    # Embeddings had no adapter, so they did not change.
    assert torch.equal(after["model.embed_tokens.weight"], before["model.embed_tokens.weight"])
    model.save(tmp_path / "saved")
    assert (tmp_path / "saved" / "backbone" / "model.safetensors").is_file()


@pytest.mark.parametrize("lora", [None, {"rank": 4, "alpha": 8, "dropout": 0.0}])
def test_trainable_layers_train_only_the_top_layers(
    beauty_mini, llm_cache_dir, tmp_path, lora
) -> None:
    """The CPU recipe's cut: layer 0 and the (tied) embedding stay bit-identical, the top layer
    and the final norm train, with full weights or adapters alike."""
    import torch

    extensions = {"trainable_layers": 1, "lora": lora}
    model = CALRec(_config(llm_cache_dir, extensions=extensions), beauty_mini.catalogue)
    before = {n: p.detach().clone() for n, p in model.network.language_model.named_parameters()}
    run = RunContext(
        tmp_path, TrainConfig(epochs=1, batch_size=4, lr=1e-2), seed=0, show_progress=False
    )
    model.fit(beauty_mini.train[:8], None, run)
    after = dict(model.network.language_model.named_parameters())
    frozen = ["model.embed_tokens.weight", "model.layers.0.mlp.up_proj.weight"]
    trained = ["model.layers.1.mlp.up_proj.weight"] + ["model.norm.weight"] * (lora is None)
    for name in frozen:
        assert torch.equal(after[name], before[name]), name
    for name in trained:
        assert not torch.equal(after[name], before[name]), name
    with pytest.raises(ConfigError, match="has 2"):
        CALRec(
            _config(llm_cache_dir, extensions={"trainable_layers": 3}), beauty_mini.catalogue
        ).fit(beauty_mini.train[:4], None, run)


def test_grounding_diagnostics_are_reported_by_the_evaluator(beauty_mini, llm_cache_dir) -> None:
    config = _config(llm_cache_dir, generation={"num_samples": 3, "max_new_tokens": 6})
    model = CALRec(config, beauty_mini.catalogue)
    result = evaluate_model(model, beauty_mini.test.subset(range(4)), show_progress=False)
    diagnostics = result.protocol["diagnostics"]
    assert diagnostics["generations"] == 12
    assert 0.0 <= diagnostics["exact_match_share"] <= 1.0
    assert 0.0 <= diagnostics["duplicate_share"] <= 1.0
    assert "Diagnostics: generations 12" in result.format_table()


PACKED = {"training_targets": "all", "extensions": {"packing": {"token_budget": 48}}}


@pytest.mark.parametrize("fields", [{}, PACKED], ids=["examples", "packed"])
def test_killed_calrec_run_resumes_to_the_same_weights(
    beauty_mini, llm_cache_dir, tmp_path, fields
):
    import torch

    from llmrec.models.calrec.model import CALRecNetwork

    train = beauty_mini.train[:16]
    loop = TrainConfig(epochs=2, batch_size=4, lr=1e-3, checkpoint_every=1)

    def fit(folder: Path, resume: bool = False) -> CALRec:
        model = CALRec(_config(llm_cache_dir, **fields), beauty_mini.catalogue)
        model.fit(train, None, RunContext(folder, loop, seed=0, show_progress=False, resume=resume))
        return model

    uninterrupted = fit(tmp_path / "whole")
    forward, calls = CALRecNetwork.forward, []

    def crash_on_sixth_step(self, batch):
        calls.append(1)
        if len(calls) == 6:  # mid-epoch 2 of 2 (4 steps per epoch)
            raise KeyboardInterrupt
        return forward(self, batch)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(CALRecNetwork, "forward", crash_on_sixth_step)
        with pytest.raises(KeyboardInterrupt):
            fit(tmp_path / "killed")
    resumed_calls = []

    def count(self, batch):
        resumed_calls.append(1)
        return forward(self, batch)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(CALRecNetwork, "forward", count)
        resumed = fit(tmp_path / "killed", resume=True)
    assert len(resumed_calls) == 3  # steps 6-8 only: it continued from the step-5 checkpoint
    expected = dict(uninterrupted.network.language_model.named_parameters())
    for name, parameter in resumed.network.language_model.named_parameters():
        torch.testing.assert_close(parameter, expected[name], rtol=0, atol=0, msg=name)


def test_the_history_list_queries_the_prompts_own_lines(beauty_mini, llm_cache_dir) -> None:
    model = CALRec(_config(llm_cache_dir), beauty_mini.catalogue)
    assert model._history_list([[0, 1, 2]]) is None  # off by default: the paper
    model.config = model.config.with_extensions(history_list="last")
    history = model._history_list([[0, 1, 2]])
    texts = model.lines.texts
    assert list(history.queries) == [f"{texts[1]} {texts[2]}"]  # the prompt's 2 recent items
    assert history.first is False
