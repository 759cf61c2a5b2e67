"""The shared loop: seeded runs repeat exactly; a killed run resumes to the same weights."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from llmrec.training.checkpoint import MODEL_FILE, LoopState, load_weights
from llmrec.training.config import TrainConfig
from llmrec.training.loop import TrainResult, _batches_to_run, train
from llmrec.training.optim import build_optimizer
from llmrec.training.protocol import LossOutput, TrainableNetwork


class Regression(TrainableNetwork):
    """A small model with dropout, so the RNG state matters for exact resume."""

    def __init__(self, crash_at_call: int | None = None) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.layers = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.3), nn.Linear(8, 1))
        self.calls = 0
        self.crash_at_call = crash_at_call

    def forward(self, batch: tuple[torch.Tensor, torch.Tensor]) -> LossOutput:
        self.calls += 1
        if self.calls == self.crash_at_call:
            raise KeyboardInterrupt  # what a user's Ctrl-C or a killed job looks like
        inputs, targets = batch
        loss = ((self.layers(inputs).squeeze(-1) - targets) ** 2).mean()
        return LossOutput(loss, {"mse": loss.detach()}, num_tokens=len(targets))


class Batches:
    """40 rows in 5 batches of 8, made one at a time; `made` counts the batches collated."""

    def __init__(self, seed: int = 0) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.inputs = torch.randn(40, 4, generator=generator)
        self.targets = self.inputs.sum(dim=1)
        self.made = 0

    def num_batches(self, epoch: int) -> int:
        return 5

    def batches(self, epoch: int, start: int = 0):
        order = torch.randperm(40, generator=torch.Generator().manual_seed(epoch))
        for i in range(8 * start, 40, 8):
            self.made += 1
            yield self.inputs[order[i : i + 8]], self.targets[order[i : i + 8]]


CONFIG = TrainConfig(epochs=4, batch_size=8, lr=1e-2, checkpoint_every=1, log_every=1)


def _weights(module: nn.Module) -> dict[str, torch.Tensor]:
    return {name: tensor.clone() for name, tensor in module.state_dict().items()}


def test_same_seed_same_weights(tmp_path: Path) -> None:
    first, second = Regression(), Regression()
    train(first, Batches(), None, CONFIG, tmp_path / "a", seed=3, show_progress=False)
    train(second, Batches(), None, CONFIG, tmp_path / "b", seed=3, show_progress=False)
    for name, tensor in _weights(first).items():
        assert torch.equal(tensor, _weights(second)[name]), name


def test_loss_decreases(tmp_path: Path) -> None:
    module = Regression()
    batches = Batches()
    inputs, targets = batches.inputs, batches.targets
    before = ((module.eval().layers(inputs).squeeze(-1) - targets) ** 2).mean().item()
    train(module, batches, None, CONFIG, tmp_path, seed=0, show_progress=False)
    after = ((module.eval().layers(inputs).squeeze(-1) - targets) ** 2).mean().item()
    assert after < 0.5 * before


class RecordingRegression(Regression):
    """Keeps each training batch's loss, to check what the log reports."""

    def __init__(self) -> None:
        super().__init__()
        self.losses: list[float] = []

    def forward(self, batch: tuple[torch.Tensor, torch.Tensor]) -> LossOutput:
        out = super().forward(batch)
        if self.training:
            self.losses.append(out.total.item())
        return out


def test_logged_loss_is_the_mean_over_the_steps_since_the_previous_record(tmp_path: Path) -> None:
    module = RecordingRegression()
    config = TrainConfig(epochs=2, batch_size=8, lr=1e-2, log_every=3, tensorboard=False)
    train(module, Batches(), None, config, tmp_path, seed=0, show_progress=False)
    records = _log_records(tmp_path)
    assert [r["step"] for r in records] == [3, 6, 9]
    for record in records:
        window = module.losses[record["step"] - 3 : record["step"]]
        assert record["loss"] == pytest.approx(sum(window) / 3, rel=1e-6)
        assert record["mse"] == pytest.approx(record["loss"], rel=1e-6)


def _scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    return {
        tag: [(event.step, event.value) for event in events.Scalars(tag)]
        for tag in events.Tags()["scalars"]
    }


def _log_records(run_dir: Path) -> list[dict]:
    text = (run_dir / "train_log.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines()]


def test_logs_losses_lr_throughput_and_metrics(tmp_path: Path) -> None:
    scores = iter([0.1, 0.2])
    config = TrainConfig(epochs=2, batch_size=8, lr=1e-2, log_every=2)
    validate = lambda network: {"ndcg@10": next(scores), "recall@10": 0.5}  # noqa: E731
    train(Regression(), Batches(), validate, config, tmp_path, seed=0, show_progress=False)
    records = _log_records(tmp_path)
    assert [r["step"] for r in records] == [2, 4, 6, 8, 10]
    assert set(records[0]) == {"epoch", "step", "loss", "mse", "lr", "tokens_per_s"}
    assert all(r["tokens_per_s"] > 0 and r["loss"] == r["mse"] for r in records)
    scalars = _scalars(tmp_path)
    assert set(scalars) == {
        "train/loss",
        "train/mse",
        "train/lr",
        "train/tokens_per_s",
        "valid/ndcg@10",
        "valid/recall@10",
    }
    assert scalars["train/loss"] == [(r["step"], pytest.approx(r["loss"])) for r in records]
    assert scalars["valid/ndcg@10"] == [(5, pytest.approx(0.1)), (10, pytest.approx(0.2))]

    quiet = TrainConfig(epochs=1, batch_size=8, tensorboard=False)
    train(Regression(), Batches(), None, quiet, tmp_path / "quiet", show_progress=False)
    assert not (tmp_path / "quiet" / "tensorboard").exists()


def _resume(config: TrainConfig, run_dir: Path) -> tuple[Regression, TrainResult]:
    """A fresh module trained on from the killed run's last checkpoint, with the same seed."""
    module = Regression()
    result = train(
        module, Batches(), None, config, run_dir, seed=1, resume=True, show_progress=False
    )
    return module, result


def _assert_same_weights(module: nn.Module, reference: nn.Module) -> None:
    for name, tensor in _weights(reference).items():
        torch.testing.assert_close(_weights(module)[name], tensor, rtol=0, atol=0)


def test_killed_run_resumes_to_identical_weights(tmp_path: Path) -> None:
    uninterrupted = Regression()
    train(uninterrupted, Batches(), None, CONFIG, tmp_path / "full", seed=1, show_progress=False)

    # checkpoints at steps 4, 5 (epoch end), 8, 10, 12; killed in step 14, mid-epoch 3, after
    # logging step 13, which the resumed run trains and logs again
    config = CONFIG.model_copy(update={"checkpoint_every": 4})
    crashing = Regression(crash_at_call=14)
    with pytest.raises(KeyboardInterrupt):
        train(crashing, Batches(), None, config, tmp_path / "killed", seed=1, show_progress=False)
    assert _log_records(tmp_path / "killed")[-1]["step"] == 13
    state = json.loads((tmp_path / "killed" / "checkpoints" / "last" / "state.json").read_text())
    assert state["train_seconds"] > 0
    resumed, result = _resume(config, tmp_path / "killed")
    _assert_same_weights(resumed, uninterrupted)
    assert not (tmp_path / "killed" / "checkpoints" / "last.tmp").exists()
    assert result.train_seconds > state["train_seconds"]  # the killed part's time counts too
    # the logs read as one run: what the killed run logged after its checkpoint is dropped
    steps = [record["step"] for record in _log_records(tmp_path / "killed")]
    assert steps == list(range(1, 21))
    assert [step for step, _ in _scalars(tmp_path / "killed")["train/loss"]] == steps


def test_batches_are_made_as_trained_and_a_resumed_run_makes_only_the_rest(
    tmp_path: Path,
) -> None:
    """The loop asks for each batch just before its step (no epoch is held whole); a run
    killed mid-epoch resumes at its checkpoint's position, making only the batches it has yet
    to train, and ends identical to an uninterrupted run."""
    uninterrupted, source = Regression(), Batches()
    ahead: list[int] = []
    original = Regression.forward

    def counting(self, batch):
        ahead.append(source.made - self.calls)  # batches made beyond those already trained
        return original(self, batch)

    uninterrupted.forward = counting.__get__(uninterrupted)
    train(uninterrupted, source, None, CONFIG, tmp_path / "full", seed=1, show_progress=False)
    assert source.made == 20 and set(ahead) == {1}
    # checkpoints at steps 4, 5 (epoch end), 8, 10 and 12 (epoch 2, two batches trained);
    # killed in step 14: the resumed run makes epoch 2's last three batches and epoch 3's five
    config = CONFIG.model_copy(update={"checkpoint_every": 4})
    with pytest.raises(KeyboardInterrupt):
        crashing = Regression(crash_at_call=14)
        train(crashing, Batches(), None, config, tmp_path / "killed", seed=1, show_progress=False)
    resumed, rest = Regression(), Batches()
    killed = tmp_path / "killed"
    train(resumed, rest, None, config, killed, seed=1, resume=True, show_progress=False)
    assert rest.made == 8
    _assert_same_weights(resumed, uninterrupted)


def test_early_stopping_keeps_the_best_weights(tmp_path: Path) -> None:
    module = Regression()
    scores = iter([0.1, 0.5, 0.3, 0.2, 0.1, 0.0])
    snapshots = []

    def validate(network: nn.Module) -> dict[str, float]:
        snapshots.append(_weights(network))
        return {"ndcg@10": next(scores)}

    config = TrainConfig(epochs=6, batch_size=8, patience=2)
    result = train(module, Batches(), validate, config, tmp_path, seed=0, show_progress=False)
    assert result.best_epoch == 2 and result.best_metric == 0.5
    assert len(result.history) == 4  # stopped after two evaluations without improvement
    best = nn.Module()
    best.layers = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.3), nn.Linear(8, 1))
    load_weights(best, tmp_path / "checkpoints" / "best" / MODEL_FILE)
    for name, tensor in snapshots[1].items():
        assert torch.equal(_weights(module)[name], tensor), name
        assert torch.equal(_weights(best)[name], tensor), name  # the file holds them too


def test_a_fresh_run_never_loads_an_earlier_runs_best_weights(tmp_path: Path) -> None:
    """A run that validates nothing (eval_every beyond its epochs) keeps its own final weights,
    even in a folder where an earlier run left checkpoints/best."""
    validate = lambda network: {"ndcg@10": 1.0}  # noqa: E731
    earlier = TrainConfig(epochs=1, batch_size=8, lr=1e-2)
    train(Regression(), Batches(), validate, earlier, tmp_path, seed=0, show_progress=False)
    assert (tmp_path / "checkpoints" / "best" / MODEL_FILE).is_file()
    module, unvalidated = Regression(), TrainConfig(epochs=2, batch_size=8, lr=1e-2, eval_every=5)
    train(module, Batches(), validate, unvalidated, tmp_path, seed=0, show_progress=False)
    plain = Regression()
    train(plain, Batches(), None, unvalidated, tmp_path / "plain", seed=0, show_progress=False)
    for name, tensor in _weights(plain).items():
        assert torch.equal(_weights(module)[name], tensor), name
    assert not (tmp_path / "checkpoints" / "best").exists()


def test_max_steps_and_gradient_accumulation_count_optimizer_steps(tmp_path: Path) -> None:
    """5 batches per epoch: max_steps stops mid-epoch; grad_accum=2 groups each epoch's batches
    as 2 + 2 + 1, so 2 epochs are 6 optimizer steps."""
    capped = TrainConfig(epochs=4, batch_size=8, max_steps=3)
    result = train(Regression(), Batches(), None, capped, tmp_path / "a", show_progress=False)
    assert result.steps == 3
    accumulated = TrainConfig(epochs=2, batch_size=8, grad_accum=2, log_every=1)
    result = train(Regression(), Batches(), None, accumulated, tmp_path / "b", show_progress=False)
    assert result.steps == 6
    assert [record["step"] for record in _log_records(tmp_path / "b")] == [1, 2, 3, 4, 5, 6]


def test_max_seconds_stops_after_a_step_validates_checkpoints_and_resume_ends_identical(
    tmp_path: Path,
) -> None:
    """A deadline already passed stops the run after its first optimizer step (mid-epoch); the
    stopped part validates and checkpoints like an epoch's end, and `--resume` without the
    limit ends with the weights of an uninterrupted run."""
    validated: list[int] = []

    def validate(network: nn.Module) -> dict[str, float]:
        validated.append(1)
        return {"ndcg@10": 0.5}

    uninterrupted = Regression()
    train(uninterrupted, Batches(), None, CONFIG, tmp_path / "full", seed=1, show_progress=False)
    limited = CONFIG.model_copy(update={"max_seconds": 1e-9, "checkpoint_every": None})
    result = train(
        Regression(), Batches(), validate, limited, tmp_path / "cut", seed=1, show_progress=False
    )
    assert result.steps == 1 and validated == [1]
    state = json.loads((tmp_path / "cut" / "checkpoints" / "last" / "state.json").read_text())
    assert state["step"] == 1
    resumed, result = _resume(CONFIG, tmp_path / "cut")
    assert result.steps == 20
    _assert_same_weights(resumed, uninterrupted)


class Deterministic(Regression):
    """No dropout, so a hand-written optimizer loop can repeat the training exactly."""

    def __init__(self, crash_at_call: int | None = None) -> None:
        super().__init__(crash_at_call)
        self.layers[1].p = 0.0


def test_an_accumulated_group_steps_on_the_mean_gradient_of_its_batches(tmp_path: Path) -> None:
    """One epoch of 5 batches with grad_accum=2 is three AdamW steps, on the mean gradient of
    batches (0, 1), of (2, 3), and of batch 4 alone: the short last group is not dropped."""
    config = TrainConfig(epochs=1, batch_size=8, lr=1e-2, grad_accum=2, grad_clip=None)
    trained = Deterministic()
    train(trained, Batches(), None, config, tmp_path, show_progress=False)
    by_hand = Deterministic()
    optimizer = build_optimizer(by_hand, config)
    batches = list(Batches().batches(0))
    for group in [(0, 1), (2, 3), (4,)]:
        optimizer.zero_grad()
        loss = sum(by_hand(batches[index]).total for index in group) / len(group)
        loss.backward()
        optimizer.step()
    for name, tensor in _weights(by_hand).items():
        torch.testing.assert_close(_weights(trained)[name], tensor, rtol=1e-6, atol=1e-7)


def test_a_killed_accumulating_run_resumes_to_identical_weights(tmp_path: Path) -> None:
    """grad_accum=2, 5 batches per epoch: killed in batch 3 of epoch 2, with batch 2's gradient
    accumulated but not applied; the resumed run restarts that group and ends identical."""
    config = CONFIG.model_copy(update={"grad_accum": 2})
    uninterrupted = Regression()
    train(uninterrupted, Batches(), None, config, tmp_path / "full", seed=1, show_progress=False)
    with pytest.raises(KeyboardInterrupt):
        crashing = Regression(crash_at_call=14)  # calls 11-15 are epoch 2's batches 0-4
        train(crashing, Batches(), None, config, tmp_path / "killed", seed=1, show_progress=False)
    resumed, result = _resume(config, tmp_path / "killed")
    assert result.steps == 12
    _assert_same_weights(resumed, uninterrupted)


def test_resume_without_a_checkpoint_is_an_error(tmp_path: Path) -> None:
    from llmrec.errors import ConfigError

    with pytest.raises(ConfigError, match="cannot resume"):
        train(Regression(), Batches(), None, CONFIG, tmp_path, resume=True, show_progress=False)


def test_a_run_killed_between_the_renames_of_a_checkpoint_resumes_to_identical_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A kill after `last -> last.old` and before `last.tmp -> last` leaves both complete: the
    resumed run takes last.tmp (the newer one) and ends identical to an uninterrupted run."""
    import os

    uninterrupted = Regression()
    train(uninterrupted, Batches(), None, CONFIG, tmp_path / "full", seed=1, show_progress=False)
    # checkpoints at steps 4, 5 (epoch end), 8, 10: killed while swapping in the one of step 10
    config = CONFIG.model_copy(update={"checkpoint_every": 4})
    real_replace, swaps = os.replace, []

    def replace(source, target) -> None:
        if Path(source).name == "last.tmp":
            swaps.append(source)
            if len(swaps) == 4:
                raise KeyboardInterrupt
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(KeyboardInterrupt):
        train(
            Regression(), Batches(), None, config, tmp_path / "killed", seed=1, show_progress=False
        )
    monkeypatch.undo()
    checkpoints = tmp_path / "killed" / "checkpoints"
    assert not (checkpoints / "last").exists()
    steps = {
        name: json.loads((checkpoints / name / "state.json").read_text())["step"]
        for name in ("last.old", "last.tmp")
    }
    assert steps == {"last.old": 8, "last.tmp": 10}
    resumed, result = _resume(config, tmp_path / "killed")
    assert result.steps == 20
    _assert_same_weights(resumed, uninterrupted)
    assert sorted(path.name for path in checkpoints.iterdir()) == ["last"]


def test_a_diverging_run_stops_naming_the_step_the_lr_and_the_last_good_checkpoint(
    tmp_path: Path,
) -> None:
    """An absurd learning rate: the loss overflows at step 2; the run stops there instead of
    validating NaN scores, and the checkpoint it names (step 1) holds finite weights."""
    from llmrec.errors import TrainingDivergedError

    config = TrainConfig(epochs=4, batch_size=8, lr=1e30, checkpoint_every=1, grad_clip=None)
    validate = lambda network: {"ndcg@10": 0.5}  # noqa: E731
    last = tmp_path / "checkpoints" / "last"
    expected = rf"step 2 \(learning rate 1e\+30\); last good checkpoint: {last} \(step 1\)"
    with pytest.raises(TrainingDivergedError, match=expected):
        train(Regression(), Batches(), validate, config, tmp_path, seed=0, show_progress=False)
    assert json.loads((last / "state.json").read_text())["step"] == 1
    weights = load_file(str(last / MODEL_FILE))
    assert all(torch.isfinite(tensor).all() for tensor in weights.values())
    assert not (tmp_path / "checkpoints" / "best").exists()  # nothing diverged was validated


def test_a_run_diverging_before_any_checkpoint_says_there_is_none(tmp_path: Path) -> None:
    from llmrec.errors import TrainingDivergedError

    config = TrainConfig(epochs=1, batch_size=8, lr=1e30, grad_clip=None)
    with pytest.raises(TrainingDivergedError, match="last good checkpoint: none"):
        train(Regression(), Batches(), None, config, tmp_path, seed=0, show_progress=False)


def test_the_batch_bar_ends_where_max_steps_stops_the_epoch() -> None:
    state = LoopState(step=90, batches_done=30)
    assert _batches_to_run(state, TrainConfig(), 625) == 625
    assert _batches_to_run(state, TrainConfig(max_steps=100), 625) == 40
    assert _batches_to_run(state, TrainConfig(max_steps=100, grad_accum=2), 625) == 50
    assert _batches_to_run(state, TrainConfig(max_steps=10_000), 625) == 625
