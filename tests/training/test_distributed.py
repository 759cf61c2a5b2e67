"""Two processes (Accelerate, gloo on CPU) train to the weights of one process.

Every optimizer step consumes the same global batch whatever the number of processes: each
process takes its rows, and its mean loss is weighted by its share of the loss terms. The
parity run goes through `accelerate launch` in subprocesses, so it runs as a user's job would.
"""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import llmrec
from llmrec.training.distributed import (
    ProcessShare,
    batch_rows,
    is_main_process,
    local_batch,
    split_batch,
)
from tests.conftest import FIXTURE_DIR
from tests.training.launch import (
    assert_same_weights,
    launch_config,
    launch_two_processes,
    one_and_two_processes,
    run_command,
)

# One script, run once by `accelerate launch` with 2 processes and once by plain python. Each
# scenario writes the main process' final weights to OUT/<name>.safetensors.
SCRIPT = textwrap.dedent(
    '''
    import gc
    import json
    import sys
    from pathlib import Path

    import numpy as np
    import torch
    from accelerate import PartialState
    from safetensors.torch import save_file
    from torch import nn

    from llmrec.models.sasrec import SASRecConfig, SASRecNetwork, SequenceBatches
    from llmrec.training.config import TrainConfig
    from llmrec.training.loop import train
    from llmrec.training.protocol import LossOutput, TrainableNetwork
    from tests.training.scenarios import calrec_token_loss

    torch.set_num_threads(1)
    OUT = Path(sys.argv[1])
    FIXTURE = Path(sys.argv[2])  # the Beauty fixture, for the LLM models


    class Regression(TrainableNetwork):
        def __init__(self, dropout, crash_at_call=None):
            super().__init__()
            torch.manual_seed(0)
            self.layers = nn.Sequential(nn.Linear(4, 8), nn.Dropout(dropout), nn.Linear(8, 1))
            self.calls, self.crash_at_call = 0, crash_at_call

        def forward(self, batch):
            self.calls += 1
            if self.calls == self.crash_at_call:
                raise KeyboardInterrupt
            inputs, targets = batch
            loss = ((self.layers(inputs).squeeze(-1) - targets) ** 2).mean()
            return LossOutput(loss, {"mse": loss.detach()}, num_tokens=len(targets))


    class Batches:
        """33 rows in batches of 8: the last batch has one row, fewer than the processes."""

        def __init__(self):
            generator = torch.Generator().manual_seed(0)
            self.inputs = torch.randn(33, 4, generator=generator)
            self.targets = self.inputs.sum(dim=1)

        def num_batches(self, epoch):
            return 5

        def batches(self, epoch, start=0):
            order = torch.randperm(33, generator=torch.Generator().manual_seed(epoch))
            for i in range(8 * start, 33, 8):
                yield self.inputs[order[i : i + 8]], self.targets[order[i : i + 8]]


    class CountedSASRec(SASRecNetwork):
        """SASRec's CE is a mean over its real positions: as many terms as num_tokens."""

        def forward(self, batch):
            out = super().forward(batch)
            out.num_terms = out.num_tokens
            return out


    class RowWeightedSASRec(SASRecNetwork):
        """The same loss weighted per row: not the global mean when positions vary."""

        def forward(self, batch):
            out = super().forward(batch)
            out.num_terms = None
            return out


    def save(name, module, **extra):
        if PartialState().is_main_process:
            weights = {k: v.detach().clone().contiguous() for k, v in module.state_dict().items()}
            save_file(weights, str(OUT / f"{name}.safetensors"))
            (OUT / f"{name}.json").write_text(json.dumps(extra))


    def toy_parity():
        module, batches = Regression(dropout=0.0), Batches()

        def validate(network):
            error = ((network.layers(batches.inputs).squeeze(-1) - batches.targets) ** 2).mean()
            return {"ndcg@10": -error.item()}

        config = TrainConfig(
            epochs=4, batch_size=8, lr=1e-2, log_every=1, patience=2, checkpoint_every=3,
            num_threads=1,
        )
        run_dir = OUT / "runs" / "toy"
        result = train(module, batches, validate, config, run_dir, seed=0, show_progress=False)
        log = []
        if PartialState().is_main_process:
            lines = (run_dir / "train_log.jsonl").read_text().splitlines()
            log = [json.loads(line) for line in lines]
        save("toy", module, best_step=result.best_step, history=result.history, log=log)


    def toy_resume():
        config = TrainConfig(epochs=3, batch_size=8, lr=1e-2, checkpoint_every=1, num_threads=1)
        full = Regression(dropout=0.3)
        train(full, Batches(), None, config, OUT / "runs" / "full", seed=1, show_progress=False)
        save("full", full)
        crashing = Regression(dropout=0.3, crash_at_call=8)  # epoch 2, batch 3
        try:
            train(crashing, Batches(), None, config, OUT / "runs" / "killed", seed=1,
                  show_progress=False)
        except KeyboardInterrupt:
            pass
        del crashing
        gc.collect()
        resumed = Regression(dropout=0.3)
        train(resumed, Batches(), None, config, OUT / "runs" / "killed", seed=1, resume=True,
              show_progress=False)
        save("resumed", resumed)


    def toy_deadline():
        """train.max_seconds with a deadline only the main process sees (the others' is put at
        infinity): the main process' clock decides, so every process stops after step 1."""
        import llmrec.training.loop as loop

        original = loop.Deadline.__init__

        def main_clock_only(self, accelerator, seconds):
            original(self, accelerator, seconds)
            if not accelerator.is_main_process:
                self.end = float("inf")

        loop.Deadline.__init__ = main_clock_only
        config = TrainConfig(epochs=4, batch_size=8, lr=1e-2, max_seconds=1e-9, num_threads=1)
        module = Regression(dropout=0.0)
        result = train(module, Batches(), None, config, OUT / "runs" / "deadline", seed=0,
                       show_progress=False)
        loop.Deadline.__init__ = original
        save("deadline", module, steps=result.steps)


    def sasrec(name, network_class):
        rng = np.random.default_rng(0)
        sequences = [rng.integers(0, 20, size=length) for length in (2, 3, 4, 6, 7, 9, 11, 13)]
        config = SASRecConfig(hidden_size=16, num_layers=1, num_heads=2, dropout=0.0, max_length=5)
        torch.manual_seed(0)
        network = network_class(config, num_items=20)
        batches = SequenceBatches(sequences, config, num_items=20, batch_size=5, seed=0)
        train_config = TrainConfig(epochs=3, batch_size=5, lr=1e-2, num_threads=1)
        train(network, batches, None, train_config, OUT / "runs" / name, seed=0,
              show_progress=False)
        save(name, network)


    def calrec():
        network, batches, train_config = calrec_token_loss(FIXTURE)
        train(network, batches, None, train_config, OUT / "runs" / "calrec", seed=0,
              show_progress=False)
        save("calrec", network)


    def cllm4rec():
        """CLLM4Rec's recommendation (per row) and collaborative (per token) losses, no MR."""
        from llmrec.data.registry import load_dataset
        from llmrec.models.cllm4rec.documents import DocumentBatches
        from llmrec.models.cllm4rec.model import CLLM4Rec, CLLM4RecConfig

        data = load_dataset(FIXTURE).dataset
        config = CLLM4RecConfig(backbone={"source": "tiny"}, mr_lambda=0.0)
        model = CLLM4Rec(config, data.catalogue)
        torch.manual_seed(0)
        model._build(data.user_ids[:20], config.backbone, show_progress=False)
        phases = ("recommend", "collaborative")
        batches = DocumentBatches(phases, model.templates, data.train[:20], [], 7, seed=0)
        train_config = TrainConfig(epochs=2, batch_size=7, lr=1e-2, num_threads=1)
        train(model.network, batches, None, train_config, OUT / "runs" / "cllm4rec", seed=0,
              show_progress=False)
        save("cllm4rec", model.network.ids)


    toy_parity()
    toy_resume()
    toy_deadline()
    sasrec("sasrec", CountedSASRec)
    sasrec("sasrec_rows", RowWeightedSASRec)
    calrec()
    cllm4rec()
    '''
)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, llm_cache_dir: Path) -> tuple[Path, Path]:
    """(one-process outputs, two-process outputs) of SCRIPT."""
    tmp_path = tmp_path_factory.mktemp("distributed")
    # `accelerate launch --cpu --num_processes 2` starts one process (it needs mpirun for more
    # on CPU); the DDP config (like --multi_gpu) launches through torchrun, and
    # ACCELERATE_USE_CPU selects gloo.
    arguments = [str(FIXTURE_DIR)]
    return one_and_two_processes(tmp_path, SCRIPT, "ddp.yaml", arguments, llm_cache_dir)


def test_two_processes_train_the_toy_model_to_the_same_weights(runs) -> None:
    one, two = runs
    assert_same_weights(one / "toy.safetensors", two / "toy.safetensors", 1e-5, 1e-6)
    single = json.loads((one / "toy.json").read_text())
    double = json.loads((two / "toy.json").read_text())
    assert double["best_step"] == single["best_step"]
    assert [h["step"] for h in double["history"]] == [h["step"] for h in single["history"]]
    for first, second in zip(single["log"], double["log"], strict=True):
        assert first["step"] == second["step"]
        assert second["loss"] == pytest.approx(first["loss"], rel=1e-5)  # the whole batch's loss


def test_two_processes_resume_exactly_with_dropout(runs) -> None:
    for outputs in runs:
        assert_same_weights(outputs / "full.safetensors", outputs / "resumed.safetensors", 0, 0)


def test_the_main_process_clock_stops_every_process_at_max_seconds(runs) -> None:
    for outputs in runs:
        assert json.loads((outputs / "deadline.json").read_text())["steps"] == 1
    one, two = runs
    assert_same_weights(one / "deadline.safetensors", two / "deadline.safetensors", 1e-5, 1e-6)


def test_sasrec_positions_are_weighted_exactly(runs) -> None:
    one, two = runs
    # Summation order differs between one and two processes, and by CPU: on an AMD EPYC the
    # exact weighting still differs by up to 2e-6 after AdamW, while the control below differs
    # by about 0.1; the tolerance sits between them.
    assert_same_weights(one / "sasrec.safetensors", two / "sasrec.safetensors", 1e-4, 1e-5, 16)
    # the control: a mean per process weighted by rows is not the mean over all positions
    with pytest.raises(AssertionError):
        assert_same_weights(
            one / "sasrec_rows.safetensors", two / "sasrec_rows.safetensors", 1e-4, 1e-5, 16
        )


def test_split_batch_takes_strided_rows_of_dicts_and_tuples() -> None:
    batch = {"x": torch.arange(10).view(5, 2), "y": torch.arange(5), "scale": torch.tensor(2.0)}
    first = split_batch(batch, 0, 2)
    assert first["x"].tolist() == [[0, 1], [4, 5], [8, 9]]
    assert first["y"].tolist() == [0, 2, 4]
    assert first["scale"].item() == 2.0  # no batch dimension: passed through
    inputs, targets = split_batch((torch.arange(5), torch.arange(5) * 10), 1, 2)
    assert inputs.tolist() == [1, 3] and targets.tolist() == [10, 30]
    assert split_batch(torch.arange(3), 2, 3).tolist() == [2]
    assert batch_rows(batch) == 5 and batch_rows(((torch.zeros(4, 1),),)) == 4


def test_split_batch_rejects_bad_indices_and_ragged_batches() -> None:
    with pytest.raises(ValueError, match="not in"):
        split_batch(torch.arange(3), 2, 2)
    with pytest.raises(ValueError, match="leading size"):
        split_batch({"a": torch.zeros(4), "b": torch.zeros(3)}, 0, 2)
    with pytest.raises(ValueError, match="no tensor"):
        batch_rows({"a": 1})


def test_process_shares_cover_every_item_once_in_order() -> None:
    for count in (1, 2, 3, 4):
        for size in range(10):
            items = list(range(size))
            shares = [ProcessShare(index, count).of(items) for index in range(count)]
            assert [item for share in shares for item in share] == items
            assert max(map(len, shares)) - min(map(len, shares)) <= 1
    assert ProcessShare.current() == ProcessShare(0, 1)  # no process group in this test
    assert ProcessShare().gather([3, 1]) == [3, 1] and is_main_process()


def test_a_process_without_rows_gets_a_stand_in_row() -> None:
    batch = (torch.tensor([[1.0, 2.0]]), torch.tensor([3.0]))
    mine, stand_in = local_batch(batch, 0, 2)
    assert not stand_in and mine[1].tolist() == [3.0]
    other, stand_in = local_batch(batch, 1, 2)
    assert stand_in and other[0].tolist() == [[1.0, 2.0]]  # the first row, to be weighted 0


def test_calrec_token_loss_is_weighted_exactly(runs) -> None:
    one, two = runs
    assert_same_weights(one / "calrec.safetensors", two / "calrec.safetensors", 1e-4, 1e-5)


def test_cllm4rec_id_tables_train_to_the_same_values(runs) -> None:
    one, two = runs
    assert_same_weights(one / "cllm4rec.safetensors", two / "cllm4rec.safetensors", 1e-4, 1e-5)


@pytest.mark.slow
def test_llmrec_run_under_two_processes_reports_the_one_process_metrics(
    tmp_path: Path, llm_cache_dir: Path
) -> None:
    """The documented CPU command, `accelerate launch --config_file configs/accelerate/ddp.yaml
    --num_processes 2 -m llmrec run CONFIG`: training, validation, the evaluation split across
    the processes, the report and the model folder, against `llmrec run CONFIG`."""
    config = tmp_path / "sasrec.yaml"
    config.write_text(
        f"data: {{source: {FIXTURE_DIR}}}\n"
        "model: {name: sasrec, hidden_size: 16, num_layers: 1, num_heads: 2, dropout: 0.0,"
        " max_length: 10}\n"
        "train: {epochs: 2, batch_size: 64, lr: 0.01, num_threads: 1}\n"
        "eval: {ks: [10, 20], bootstrap_resamples: 0}\n"
        f"output: {{dir: {tmp_path / 'runs'}}}\n",
        encoding="utf-8",
    )
    run = ["-m", "llmrec", "run", str(config), "--quiet", "--set"]
    run_command([sys.executable, *run, "output.name=one"], tmp_path, llm_cache_dir)
    arguments = [*run[2:], "output.name=two"]
    config_option = launch_config("ddp.yaml")
    launch_two_processes(config_option, "llmrec", arguments, tmp_path, llm_cache_dir, module=True)
    runs = tmp_path / "runs"
    one, two = (json.loads((runs / name / "metrics.json").read_text()) for name in ("one", "two"))
    for split in ("valid", "test"):
        for name, value in one[split]["metrics"].items():
            assert two[split]["metrics"][name] == pytest.approx(value, abs=1e-3), (split, name)
    model = llmrec.load(runs / "two" / "model")
    assert model.recommend([[0, 1, 2]], k=5).item_indices.shape == (1, 5)
