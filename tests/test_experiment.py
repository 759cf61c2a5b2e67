"""run_experiment: the refit-before-test protocol trains on train + valid items, never test; the
per-user hold-out split evaluates target sets and records its settings."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from llmrec.config import load_config
from llmrec.data.registry import load_dataset
from llmrec.errors import ConfigError
from llmrec.evaluation.validation import validation_metrics
from llmrec.experiment import (
    before_test_sequences,
    evaluate_saved_model,
    prepare_run_dir,
    refit_before_test,
    run_experiment,
)
from llmrec.models.base import FitResult
from llmrec.models.ease import EASE, EASEConfig
from llmrec.models.pop import Popularity
from llmrec.models.registry import load_model
from llmrec.models.single_network import NetworkModel

FIXTURE = Path(__file__).resolve().parents[1] / "data" / "amazon-beauty-mini"


def test_before_test_sequences_are_train_plus_valid_target(toy_dataset) -> None:
    sequences = before_test_sequences(toy_dataset)
    for sequence, train, valid_target, test_history in zip(
        sequences,
        toy_dataset.train,
        toy_dataset.valid.targets,
        toy_dataset.test.histories,
        strict=True,
    ):
        np.testing.assert_array_equal(sequence, np.append(train, valid_target))
        np.testing.assert_array_equal(sequence, test_history)


def test_refit_before_test_is_recorded_and_replaces_the_model(tmp_path: Path, monkeypatch) -> None:
    fits = []  # (model, training sequences) of each fit: the first, then the refit
    fit = NetworkModel._fit

    def spy(self, train, valid, run, user_ids):
        fits.append((self, [np.array(sequence) for sequence in train]))
        return fit(self, train, valid, run, user_ids)

    monkeypatch.setattr(NetworkModel, "_fit", spy)
    config = load_config(
        None,
        [
            f"data.source={FIXTURE}",
            f"output.dir={tmp_path}",
            "output.name=refit",
            "model.hidden_size=16",
            "model.num_layers=1",
            "model.num_heads=1",
            "train.epochs=3",
            "train.refit_before_test=true",
            "eval.bootstrap_resamples=0",
        ],
    )
    result = run_experiment(config, show_progress=False)
    assert "refit on train + valid items for" in result.results["test"].protocol["split"]
    assert "refit" not in result.results["valid"].protocol["split"]
    assert (tmp_path / "refit" / "refit" / "checkpoints" / "last").is_dir()
    assert "refit on train + valid" in (tmp_path / "refit" / "report.md").read_text()
    dataset = load_dataset(FIXTURE).dataset
    (_, first_train), (refit, refit_train) = fits
    for sequence, train, valid_target, test_history in zip(
        refit_train, dataset.train, dataset.valid.targets, dataset.test.histories, strict=True
    ):
        np.testing.assert_array_equal(sequence, np.append(train, valid_target))
        np.testing.assert_array_equal(sequence, test_history)  # all before the test target
    assert all(np.array_equal(a, b) for a, b in zip(first_train, dataset.train, strict=True))
    saved = load_model(result.model_dir)  # the refit model, not the early-stopped one
    histories = dataset.test.histories[:8]
    assert torch.equal(saved.score(histories), refit.score(histories))


def _holdout_overrides(tmp_path: Path, name: str, *extra: str) -> list[str]:
    return [
        f"data.source={FIXTURE}",
        "data.split=holdout",
        f"output.dir={tmp_path}",
        f"output.name={name}",
        "eval.bootstrap_resamples=0",
        *extra,
    ]


def test_the_refit_loads_the_data_sets_a_model_asks_for_from_the_runs_data_dir(
    tmp_path, monkeypatch, toy_dataset
):
    """A model's auxiliary sources (CALRec's Stage I mixture) are loaded by the experiment
    layer, from data.data_dir, for the refit as for the first fit; validation is scored by the
    evaluator; only models that read users get user ids."""
    seen = []
    fit = Popularity._fit

    def spy(self, train, valid, run, user_ids):
        seen.append((dict(run.auxiliary), run.validation_metrics, user_ids))
        return fit(self, train, valid, run, user_ids)

    monkeypatch.setattr(Popularity, "_fit", spy)
    monkeypatch.setattr(Popularity, "auxiliary_sources", lambda self: {"beauty-mini": None})
    data_dir = Path(__file__).resolve().parents[1] / "data"
    config = load_config(None, ["model.name=pop", f"data.data_dir={data_dir}"])
    refit_before_test(config, toy_dataset, FitResult(), tmp_path / "run", show_progress=False)
    [(auxiliary, metrics, user_ids)] = seen
    assert list(auxiliary) == ["beauty-mini"] and auxiliary["beauty-mini"].num_users == 300
    assert metrics is validation_metrics and user_ids is None


def test_holdout_run_evaluates_target_sets_and_records_the_split(tmp_path: Path) -> None:
    model = ["model.name=multvae", "model.hidden_size=32", "model.latent_size=8"]
    train = ["train.epochs=2", "train.batch_size=64", "train.metric=ndcg@100"]
    config = load_config(None, _holdout_overrides(tmp_path, "mv", *model, *train))
    result = run_experiment(config, show_progress=False)
    split = "holdout(0.8/0.1/0.1, seed 0, test history train)"
    for name in ("valid", "test"):
        protocol = result.results[name].protocol
        assert (protocol["targets"], protocol["filter_history"]) == ("set", True)
        assert protocol["split"] == f"{split}:{name}" and protocol["ks"] == [20, 40, 100]
        assert result.results[name].ranks.ndim == 2
    run_dir = tmp_path / "mv"
    report = (run_dir / "report.md").read_text()
    assert report.count("per-user random hold-out, truncated recall/NDCG, history excluded") == 2
    data_report = json.loads((run_dir / "data_report.json").read_text())
    assert data_report["holdout"] == {"split": split, "users": 300, "dropped": 0}
    assert "ranks" in json.loads((run_dir / "test" / "ranks.jsonl").read_text().splitlines()[0])
    assert {"recall@40", "ndcg@100"} <= set(result.fit.history[0])
    # evaluated later from its folder, the model meets the same hold-out, not leave-one-out
    again = evaluate_saved_model(run_dir / "model", str(FIXTURE))  # the run's own eval settings
    assert again.protocol["split"] == f"{split}:test" and again.protocol["ks"] == [20, 40, 100]
    assert again.metrics == result.results["test"].metrics


def test_holdout_refit_trains_on_train_and_valid_items(tmp_path: Path) -> None:
    overrides = _holdout_overrides(
        tmp_path,
        "refit",
        "data.holdout.test_history=train_valid",
        "model.hidden_size=16",
        "model.num_layers=1",
        "model.num_heads=1",
        "train.epochs=2",
        "train.refit_before_test=true",
    )
    config = load_config(None, overrides)
    result = run_experiment(config, show_progress=False)
    test_split = result.results["test"].protocol["split"]
    assert test_split.startswith("holdout(0.8/0.1/0.1, seed 0, test history train+valid):test")
    assert "refit on train + valid items" in test_split


def test_baselines_are_fit_on_the_same_split_refit_alike_and_reported(
    tmp_path: Path, capsys
) -> None:
    """Pop and BM25 beside a tiny SASRec: the same test users, the same refit protocol (Pop
    counts the valid items for test), their rows in metrics.json and one comparison table; the
    progress bars name each part, count epochs and say why training stopped."""
    overrides = [
        f"data.source={FIXTURE}",
        f"output.dir={tmp_path}",
        "output.name=beside",
        "model.hidden_size=8",
        "model.num_layers=1",
        "model.num_heads=1",
        "train.epochs=40",
        "train.lr=1e-6",  # nothing improves: patience ends training
        "train.patience=1",
        "train.refit_before_test=true",
        "eval.bootstrap_resamples=50",
        "baselines=[{name: pop}, {name: bm25, query_items: 3}]",
    ]
    result = run_experiment(load_config(None, overrides), show_progress=True)
    shown = capsys.readouterr().err
    assert "beside (at most 40 epochs): " in shown and "/40" not in shown  # no ETA to epoch 40
    assert "early stop: no better ndcg@10 in 1 validations; best epoch 1" in shown
    assert "refit: 100%" in shown and "1/1" in shown  # the refit knows its epochs
    assert list(result.baselines) == ["pop", "bm25"]
    for name, baseline in result.baselines.items():
        for split in ("valid", "test"):
            assert baseline[split].user_ids == result.results[split].user_ids
            assert baseline[split].protocol["model"] == name
        assert (
            baseline["test"].protocol["split"]
            == "leave_one_out:test (model refit on train + valid items)"
        )
    dataset = load_dataset(FIXTURE).dataset
    targets = np.asarray(dataset.test.targets)

    def pop_ranks(sequences) -> np.ndarray:
        """1 + the other items counted at least as often as the target (ties against it)."""
        counts = np.bincount(np.concatenate(sequences), minlength=dataset.num_items)
        return (counts[None, :] >= counts[targets][:, None]).sum(axis=1)  # the target counts 1

    refit_ranks = pop_ranks(before_test_sequences(dataset))
    assert np.array_equal(result.baselines["pop"]["test"].ranks, refit_ranks)
    assert not np.array_equal(refit_ranks, pop_ranks(dataset.train))  # the refit mattered
    run_dir = tmp_path / "beside"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert set(metrics["baselines"]) == {"pop", "bm25"}
    assert (run_dir / "baselines" / "bm25" / "test" / "ranks.jsonl").is_file()
    report = (run_dir / "report.md").read_text()
    assert "| metric | sasrec [95% CI] | pop [95% CI] | bm25 [95% CI] |" in report
    assert "- Data: amazon-beauty-mini (`" in report and "300 users, 2,090 items)." in report
    assert f"best epoch {result.fit.best_epoch} (step {result.fit.best_step}" in report
    assert (run_dir / "comparison.png").is_file()


def test_a_run_folder_holds_one_model_on_one_data_set(tmp_path: Path, monkeypatch) -> None:
    """A second run into a folder is refused when its model or data differ from the folder's
    run; the same folder written another way is the same data."""
    monkeypatch.chdir(tmp_path.parent)
    first = load_config(None, [f"data.source={FIXTURE}", f"output.dir={tmp_path}"])
    run_dir = prepare_run_dir(first)
    assert run_dir == tmp_path / "sasrec-amazon-beauty-mini"  # MODEL-DATA by default
    relative = os.path.relpath(FIXTURE, tmp_path.parent)
    pinned = [f"output.dir={tmp_path}", "output.name=sasrec-amazon-beauty-mini"]
    assert prepare_run_dir(load_config(None, [f"data.source={relative}", *pinned])) == run_dir
    with pytest.raises(ConfigError, match=r"holds a run of sasrec on .*amazon-beauty-mini; this"):
        prepare_run_dir(load_config(None, ["data.source=toys", *pinned]))
    with pytest.raises(ConfigError, match="this run is pop on"):
        prepare_run_dir(load_config(None, [f"data.source={FIXTURE}", "model.name=pop", *pinned]))
    toys = load_config(None, ["data.source=toys", f"output.dir={tmp_path}"])
    assert toys.run_dir() == tmp_path / "sasrec-toys"


def _timed_folder(folder: Path) -> Path:
    """40 users of the toy kind (i -> i+1 mod 12), each interaction a day later than the user's
    previous one, users starting on different days."""
    folder.mkdir(parents=True)
    items = [{"item_id": f"i{index}", "title": f"item {index}"} for index in range(12)]
    (folder / "items.jsonl").write_text("".join(json.dumps(row) + "\n" for row in items))
    rows = []
    for user in range(40):
        for step in range(3 + user % 6):
            day = 86400 * (user % 10 + step)
            rows.append(f"u{user},i{(user + step) % 12},{1_700_000_000 + day}")
    (folder / "interactions.csv").write_text("user,item,timestamp\n" + "\n".join(rows) + "\n")
    return folder


def test_temporal_run_records_the_cuts_and_meets_them_again(tmp_path: Path) -> None:
    folder = _timed_folder(tmp_path / "shop")
    overrides = [
        f"data.source={folder}",
        "data.split=temporal",
        "data.temporal.valid_fraction=0.2",
        "data.temporal.test_fraction=0.2",
        "model.name=itemknn",
        "model.neighbours=[2, 4]",
        f"output.dir={tmp_path}",
        "output.name=knn",
        "eval.bootstrap_resamples=0",
    ]
    result = run_experiment(load_config(None, overrides), show_progress=False)
    data_report = json.loads((tmp_path / "knn" / "data_report.json").read_text())
    split = data_report["temporal"]["split"]
    assert split.startswith("temporal(0.6/0.2/0.2 of interactions in time; valid from ")
    assert result.results["test"].protocol["split"] == f"{split}:test"
    assert data_report["temporal"]["test_rows"] == len(result.results["test"].user_ids) > 0
    again = evaluate_saved_model(tmp_path / "knn" / "model", str(folder))
    assert again.protocol["split"] == f"{split}:test"
    assert again.metrics == result.results["test"].metrics


def test_a_model_chosen_on_validation_is_refit_with_its_choice(tmp_path: Path) -> None:
    """EASE with several λ under refit_before_test: the refit solves the λ validation chose on
    train + valid items (it has no validation users to choose again), and the report says so
    without epochs."""
    overrides = [
        f"data.source={FIXTURE}",
        f"output.dir={tmp_path}",
        "output.name=ease",
        "model.name=ease",
        "model.lambdas=[5, 500]",
        "train.refit_before_test=true",
    ]
    result = run_experiment(load_config(None, overrides), show_progress=False)
    assert result.results["test"].protocol["split"].endswith("(model refit on train + valid items)")
    chosen = result.fit.history[result.fit.best_step - 1]["lambda"]
    saved = load_model(result.model_dir)
    expected = EASE(EASEConfig(lambdas=(chosen,)), saved.catalogue)
    expected.fit(before_test_sequences(load_dataset(FIXTURE).dataset))
    assert saved.weight_decay == chosen and torch.equal(saved.weights, expected.weights)
