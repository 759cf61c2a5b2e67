"""One suite for every registered model: fit, recommend, exclusion, save/load round trip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from llmrec.evaluation.validation import validation_metrics
from llmrec.models.base import RunContext
from llmrec.models.registry import MODELS, build_model, load_model
from llmrec.training.config import TrainConfig
from tests.conftest import make_toy_dataset

TINY_CONFIGS = {
    "pop": {},
    "bm25": {"query_items": 3},
    "sasrec": {"hidden_size": 16, "num_layers": 1, "num_heads": 1, "max_length": 10},
    "multvae": {"hidden_size": 16, "latent_size": 8},
    "ease": {"lambdas": [10.0]},  # grids chosen on validation: tests/models/test_item_item.py
    "itemknn": {"neighbours": [3], "shrinks": [1.0]},
    "calrec": {
        "backbone": {"source": "tiny"},  # cache_dir added per session
        "text": {"fields": ["title"], "max_history_items": 3, "max_item_tokens": 8},
        "generation": {"num_samples": 2, "max_new_tokens": 6},
    },
    "cllm4rec": {
        "backbone": {"source": "tiny"},
        "pretrain": {"warmup_epochs": 1, "rounds": 1, "train": {"batch_size": 8}},
    },
    "cllm4rec-lite": {"backbone": {"source": "tiny"}, "target_set": "all_train"},
}
# Other ranking paths of the same model kind: "kind:variant" -> config changes. Training and
# grounding options ride on a ranking variant (no extra fit): packed training on dense, the
# history's BM25 list on hybrid.
VARIANTS = {
    "sasrec:sampled": {"loss": "sampled", "num_negatives": 5},
    "calrec:dense-packed": {
        "training_targets": "all",
        "extensions": {"retrieval": "dense", "packing": {"token_budget": 32}},
    },
    "calrec:hybrid-history": {"extensions": {"retrieval": "hybrid", "history_list": "first"}},
    "calrec:constrained": {
        "extensions": {"retrieval": "constrained", "constrained": {"max_new_tokens": 8}}
    },
}


def test_every_registered_model_has_a_tiny_config() -> None:
    assert set(TINY_CONFIGS) == set(MODELS)


# Fitted once per model kind for the whole module (the tests only read the model): fitting the
# LLM kinds dominates the suite's time otherwise.
@pytest.fixture(scope="module", params=sorted(MODELS) + sorted(VARIANTS))
def fitted(request, tmp_path_factory: pytest.TempPathFactory, llm_cache_dir: Path):
    toy_dataset = make_toy_dataset()
    tmp_path = tmp_path_factory.mktemp("fitted")
    name = request.param.split(":")[0]
    raw = {**TINY_CONFIGS[name], **VARIANTS.get(request.param, {})}
    if "backbone" in raw:
        raw = {**raw, "backbone": {**raw["backbone"], "cache_dir": str(llm_cache_dir)}}
    config = MODELS[name].Config.model_validate(raw)
    model = build_model(config, toy_dataset.catalogue)
    run = RunContext(
        tmp_path / "run",
        TrainConfig(epochs=3, batch_size=8),
        seed=0,
        show_progress=False,
        validation_metrics=validation_metrics,
    )
    model.fit(toy_dataset.train, toy_dataset.valid, run)
    return model, toy_dataset


def test_recommend_shapes_sorted_unique_in_catalogue(fitted) -> None:
    model, data = fitted
    recs = model.recommend(data.test.histories[:5], k=4)
    assert recs.item_indices.shape == (5, 4) and recs.scores.shape == (5, 4)
    assert np.all(recs.scores[:, :-1] >= recs.scores[:, 1:])  # -inf padding allowed
    for row in recs.item_indices:
        assert len(set(row.tolist())) == 4
        assert all(0 <= index < len(data.catalogue) for index in row)


def test_recommend_honours_exclude(fitted) -> None:
    model, data = fitted
    histories = data.test.histories[:5]
    recs = model.recommend(histories, k=5, exclude=histories)
    for history, row in zip(histories, recs.item_indices, strict=True):
        assert not set(row.tolist()) & set(history.tolist())


def test_exclusions_that_leave_fewer_than_k_items_rank_them_last(fitted) -> None:
    """k may exceed the items a request allows (one asking for two candidates, batched with
    others): the allowed items come first, then excluded ones at -inf."""
    model, data = fitted
    allowed = {0, 1}
    exclude = [set(range(len(data.catalogue))) - allowed, set()]
    recs = model.recommend(data.test.histories[:2], k=4, exclude=exclude)
    assert recs.item_indices.shape == (2, 4)
    assert set(recs.item_indices[0, :2].tolist()) == allowed
    assert np.all(np.isneginf(recs.scores[0, 2:]))
    assert len(set(recs.item_indices[1].tolist())) == 4


def test_save_load_gives_identical_recommendations(fitted, tmp_path: Path) -> None:
    model, data = fitted
    model.save(tmp_path / "saved")
    loaded = load_model(tmp_path / "saved")
    assert type(loaded) is type(model)
    histories = data.test.histories
    before, after = model.recommend(histories, k=6), loaded.recommend(histories, k=6)
    np.testing.assert_array_equal(before.item_indices, after.item_indices)
    np.testing.assert_allclose(before.scores, after.scores, rtol=1e-6)


def test_loading_onto_the_cpu_by_name_moves_every_network_there(fitted, tmp_path: Path) -> None:
    """`device="cpu"` places every torch network of the loaded model on the CPU (on a GPU
    machine `auto` would pick the GPU), and `to` returns the model itself."""
    model, _ = fitted
    model.save(tmp_path / "saved")
    loaded = load_model(tmp_path / "saved", device="cpu")
    networks = [value for value in vars(loaded).values() if isinstance(value, torch.nn.Module)]
    assert all(p.device.type == "cpu" for network in networks for p in network.parameters())
    assert loaded.to("cpu") is loaded


def test_score_covers_the_catalogue(fitted) -> None:
    model, data = fitted
    scores = model.score(data.test.histories[:3])
    if scores is None:
        pytest.skip(f"{model.name} ranks through recommend() only (generative)")
    assert isinstance(scores, torch.Tensor)
    assert scores.shape == (3, len(data.catalogue))
    assert torch.isfinite(scores).all()
