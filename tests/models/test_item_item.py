"""Tests of EASE (models/ease.py), item-kNN (models/itemknn.py) and what they share
(models/item_item.py): each against a direct numpy implementation of its formula, the choice on
validation, the memory refusal, and both above popularity on the toy sequences."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from llmrec.data.catalogue import Catalogue, Item
from llmrec.errors import ConfigError
from llmrec.evaluation.config import EvalConfig
from llmrec.evaluation.ranking import evaluate_model
from llmrec.evaluation.validation import validation_metrics
from llmrec.models import item_item
from llmrec.models.base import FitResult, RunContext
from llmrec.models.ease import EASE, EASEConfig, solve_memory_bytes
from llmrec.models.item_item import UserItemMatrix, history_matrix
from llmrec.models.itemknn import ItemKNN, ItemKNNConfig
from llmrec.models.pop import PopConfig, Popularity
from llmrec.models.registry import load_model
from llmrec.training.config import TrainConfig

SEQUENCES = [
    np.array([0, 1, 2, 1]),  # the repeated 1 counts once
    np.array([1, 2]),
    np.array([2, 3, 0]),
    np.array([4]),
    np.array([0, 1]),
]
NUM_ITEMS = 6  # item 5 is never seen


def binary_matrix() -> np.ndarray:
    dense = np.zeros((len(SEQUENCES), NUM_ITEMS))
    for user, sequence in enumerate(SEQUENCES):
        dense[user, sequence] = 1.0
    return dense


def run_context(tmp_path: Path, metric: str = "ndcg@10") -> RunContext:
    train = TrainConfig(metric=metric)
    return RunContext(tmp_path, train, show_progress=False, validation_metrics=validation_metrics)


def test_cooccurrence_blocks_assemble_x_transpose_x(monkeypatch) -> None:
    monkeypatch.setattr(item_item, "BLOCK_ELEMENTS", 2 * len(SEQUENCES))  # blocks of 2 columns
    matrix = UserItemMatrix.from_sequences(SEQUENCES, NUM_ITEMS)
    blocks = list(matrix.cooccurrence_blocks(torch.float64))
    assert [columns.stop - columns.start for columns, _ in blocks] == [2, 2, 2]
    gram = torch.cat([block for _, block in blocks], dim=1).numpy()
    dense = binary_matrix()
    np.testing.assert_array_equal(gram, dense.T @ dense)
    np.testing.assert_array_equal(matrix.item_counts(), dense.sum(axis=0))


def test_history_matrix_counts_a_repeat_once() -> None:
    rows = history_matrix([[2, 2, 0], []], 4, torch.float32).to_dense()
    assert rows.tolist() == [[1.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0]]


def test_ease_weights_are_steck_closed_form() -> None:
    """B = I - P diagMat(1/diag(P)), P = (X^T X + λI)^-1 (Steck 2019, eq. 8), in numpy."""
    dense = binary_matrix()
    inverse = np.linalg.inv(dense.T @ dense + 2.0 * np.eye(NUM_ITEMS))
    expected = np.eye(NUM_ITEMS) - inverse / np.diag(inverse)[None, :]
    model = EASE(EASEConfig(lambdas=(2.0,), precision="float64"), catalogue(NUM_ITEMS))
    model.fit(SEQUENCES)
    np.testing.assert_allclose(model.weights.numpy(), expected, atol=1e-12)
    assert np.all(np.diag(model.weights.numpy()) == 0.0)
    scores = model.score([[0, 3, 3]]).numpy()
    np.testing.assert_allclose(scores[0], expected[0] + expected[3], atol=1e-6)


def test_ease_chooses_lambda_on_validation_and_saves_it(toy_dataset, tmp_path: Path) -> None:
    config = EASEConfig(lambdas=(0.5, 50.0, 5000.0))
    model = EASE(config, toy_dataset.catalogue)
    result = model.fit(toy_dataset.train, toy_dataset.valid, run_context(tmp_path / "run"))
    curve = [point["ndcg@10"] for point in result.history]
    assert [point["lambda"] for point in result.history] == [0.5, 50.0, 5000.0]
    assert result.best_step == 1 + int(np.argmax(curve)) and result.best_metric == max(curve)
    assert model.weight_decay == config.lambdas[result.best_step - 1]
    model.save(tmp_path / "saved")
    loaded = load_model(tmp_path / "saved")
    assert isinstance(loaded, EASE) and loaded.weight_decay == model.weight_decay


def test_a_refit_keeps_the_setting_chosen_on_validation(toy_dataset, tmp_path: Path) -> None:
    """`refit_config` fixes what validation chose, so the refit on train + valid items
    (no validation users) solves that setting alone; with nothing chosen the config is kept."""
    ease = EASE(EASEConfig(lambdas=(0.5, 50.0, 5000.0)), toy_dataset.catalogue)
    fit = ease.fit(toy_dataset.train, toy_dataset.valid, run_context(tmp_path / "ease"))
    assert ease.refit_config(fit).lambdas == (ease.weight_decay,)
    refit = EASE(ease.refit_config(fit), toy_dataset.catalogue)
    refit.fit(toy_dataset.train)  # refused with several lambdas (below)
    assert refit.weight_decay == ease.weight_decay
    assert torch.equal(refit.weights, ease.weights)
    knn = ItemKNN(ItemKNNConfig(neighbours=(2, 4), shrinks=(0.0, 5.0)), toy_dataset.catalogue)
    fit = knn.fit(toy_dataset.train, toy_dataset.valid, run_context(tmp_path / "knn"))
    chosen = fit.history[fit.best_step - 1]
    config = knn.refit_config(fit)
    assert (config.shrinks, config.neighbours) == ((chosen["shrink"],), (chosen["neighbours"],))
    assert isinstance(config.neighbours[0], int)
    single = EASEConfig(lambdas=(3.0,))
    assert EASE(single, toy_dataset.catalogue).refit_config(FitResult()) is single


def test_several_values_without_validation_are_refused(toy_dataset) -> None:
    with pytest.raises(ConfigError, match=r"2 settings to choose from \(lambda 1; lambda 2\)"):
        EASE(EASEConfig(lambdas=(1.0, 2.0)), toy_dataset.catalogue).fit(toy_dataset.train)


def test_ease_refuses_a_catalogue_beyond_its_memory_limit(toy_dataset) -> None:
    config = EASEConfig(lambdas=(1.0, 2.0), precision="float64", max_memory_gb=1e-6)
    assert solve_memory_bytes(12, config) == 4 * 12 * 12 * 8
    with pytest.raises(ConfigError) as error:
        EASE(config, toy_dataset.catalogue).fit(toy_dataset.train)
    message = str(error.value)
    assert "needs about 0.0 GiB" in message and "12² x 8 bytes x 4 copies" in message
    assert "model.max_memory_gb = 1e-06" in message and "itemknn" in message


def test_itemknn_keeps_the_top_cosine_neighbours_of_each_item() -> None:
    dense = binary_matrix()
    shrink = 0.5
    counts = dense.sum(axis=0)
    cosine = (dense.T @ dense) / (np.sqrt(counts)[:, None] * np.sqrt(counts)[None, :] + shrink)
    np.fill_diagonal(cosine, 0.0)
    model = ItemKNN(ItemKNNConfig(neighbours=(2,), shrinks=(shrink,)), catalogue(NUM_ITEMS))
    model.fit(SEQUENCES)
    for item in range(NUM_ITEMS):
        expected = np.sort(cosine[:, item])[::-1][:2]
        np.testing.assert_allclose(model.similarities[item].numpy(), expected, rtol=1e-6)
        assert item not in model.neighbours[item][model.similarities[item] > 0].tolist()
    # The score of item j sums the similarities of j's neighbours found in the history.
    kept = np.zeros((NUM_ITEMS, NUM_ITEMS))  # kept[i, j] = sim(i, j) if i is j's neighbour
    for item in range(NUM_ITEMS):
        kept[model.neighbours[item].numpy(), item] = model.similarities[item].numpy()
    scores = model.score([[0, 2, 2]]).numpy()
    np.testing.assert_allclose(scores[0], kept[0] + kept[2], rtol=1e-6)


def test_itemknn_tries_every_shrink_and_neighbour_count(toy_dataset, tmp_path: Path) -> None:
    model = ItemKNN(ItemKNNConfig(neighbours=(2, 4), shrinks=(0.0, 5.0)), toy_dataset.catalogue)
    result = model.fit(toy_dataset.train, toy_dataset.valid, run_context(tmp_path))
    tried = [(point["shrink"], point["neighbours"]) for point in result.history]
    assert tried == [(0.0, 2), (0.0, 4), (5.0, 2), (5.0, 4)]
    assert model.neighbours.shape == (12, tried[result.best_step - 1][1])


def test_item_item_models_learn_the_toy_sequences(toy_dataset, tmp_path: Path) -> None:
    """Items of the toy data follow i -> i+1: neighbours of the history's ends are the targets.
    With the history filtered, both models find the target in their top 2 far more often than
    popularity does."""
    config = EvalConfig(ks=(2,), bootstrap_resamples=0, filter_history=True)
    pop = Popularity(PopConfig(), toy_dataset.catalogue)
    pop.fit(toy_dataset.train)
    floor = evaluate_model(pop, toy_dataset.test, config, show_progress=False).metrics
    for model in (
        EASE(EASEConfig(lambdas=(1.0, 100.0)), toy_dataset.catalogue),
        ItemKNN(ItemKNNConfig(neighbours=(2, 4)), toy_dataset.catalogue),
    ):
        model.fit(toy_dataset.train, toy_dataset.valid, run_context(tmp_path / model.name))
        metrics = evaluate_model(model, toy_dataset.test, config, show_progress=False).metrics
        assert metrics["recall@2"] >= 0.8 > 0.3 > floor["recall@2"], model.name


def catalogue(num_items: int) -> Catalogue:
    return Catalogue.from_items(Item(f"i{index}") for index in range(num_items))
