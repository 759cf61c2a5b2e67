"""The loop's precision and compilation settings (issue 20): bf16 autocast through Accelerate on
the CPU, fp16 refused there, parts of a run at different precisions in one process, and
`train.compile` on SASRec."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from llmrec.errors import ConfigError
from llmrec.evaluation.validation import validation_metrics
from llmrec.models.base import RunContext
from llmrec.models.sasrec import SASRec, SASRecConfig
from llmrec.training.config import TrainConfig
from llmrec.training.loop import train
from tests.training.helpers import epoch_mean_losses
from tests.training.test_loop import Batches, Regression

CONFIG = TrainConfig(epochs=2, batch_size=8, lr=1e-2, tensorboard=False)


class DtypeRecording(Regression):
    """Keeps the dtype its first layer computes in, at each call."""

    def __init__(self) -> None:
        super().__init__()
        self.dtypes: list[torch.dtype] = []

    def forward(self, batch):
        self.dtypes.append(self.layers[0](batch[0]).dtype)
        return super().forward(batch)


def test_fp16_on_the_cpu_is_a_config_error(tmp_path: Path) -> None:
    """Accelerate would train in fp32 without a word; a silently ignored option is an error."""
    config = CONFIG.model_copy(update={"precision": "fp16"})
    with pytest.raises(ConfigError, match=r"'fp16' needs a CUDA GPU.*'bf16'"):
        train(Regression(), Batches(), None, config, tmp_path, show_progress=False)


def test_parts_of_one_process_train_at_their_own_precision(tmp_path: Path) -> None:
    """Accelerate fixes the precision of a process at its first Accelerator; the loop starts
    afresh for each part (CALRec's two stages may differ), and hands the module back with its
    own forward: nothing runs in bf16 after a bf16 part."""
    module = DtypeRecording()
    for index, precision in enumerate(("no", "bf16", "no")):
        module.dtypes.clear()
        config = CONFIG.model_copy(update={"precision": precision})
        train(module, Batches(), None, config, tmp_path / str(index), show_progress=False)
        expected = torch.bfloat16 if precision == "bf16" else torch.float32
        assert set(module.dtypes) == {expected}
        assert {p.dtype for p in module.parameters()} == {torch.float32}
    module.dtypes.clear()
    module(next(Batches().batches(0)))
    assert module.dtypes == [torch.float32]


@pytest.mark.slow  # inductor compiles SASRec's steps: about a minute on 2 cores
# torch's own warnings while it compiles (torch 2.13), which warnings-as-errors would raise:
# inductor imports its deprecated torch.jit helpers, dynamo probes `.grad` of non-leaf tensors
# and instantiates autograd functions (any, here the fused cross-entropy) to trace them.
@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")
@pytest.mark.filterwarnings("ignore:The .grad attribute of a Tensor that is not a leaf:UserWarning")
@pytest.mark.filterwarnings("ignore:<class 'torch.autograd.function.Function'> should not be:")
def test_sasrec_fits_compiled_on_the_cpu(toy_dataset, tmp_path: Path, monkeypatch) -> None:
    """`train.compile: true` trains through torch.compile (inductor); validation and the saved
    weights use the plain module."""
    compiled: list[dict] = []
    plain_compile = torch.compile

    def recording_compile(model, **options):
        compiled.append(options)
        return plain_compile(model, **options)

    monkeypatch.setattr(torch, "compile", recording_compile)
    config = SASRecConfig(hidden_size=16, num_layers=1, num_heads=1, max_length=10)
    model = SASRec(config, toy_dataset.catalogue)
    train_config = TrainConfig(epochs=3, batch_size=16, lr=1e-2, log_every=1, compile=True)
    run = RunContext(
        tmp_path, train_config, show_progress=False, validation_metrics=validation_metrics
    )
    result = model.fit(toy_dataset.train, toy_dataset.valid, run)
    assert [options["backend"] for options in compiled] == ["inductor"]
    losses = epoch_mean_losses(tmp_path)
    assert all(math.isfinite(loss) for loss in losses) and losses[-1] < losses[0]
    assert result.best_metric is not None and math.isfinite(result.best_metric)
    assert not hasattr(model.network, "_orig_mod")  # the model keeps the plain network
    assert torch.isfinite(model.score(toy_dataset.test.histories[:4])).all()
