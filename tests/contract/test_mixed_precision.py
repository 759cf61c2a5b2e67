"""Every trainable model fits under bf16 autocast on the CPU (issue 20): its training really runs
in bf16, its loss falls, and its master weights and optimizer state stay fp32."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from llmrec.models.base import RunContext
from llmrec.models.registry import MODELS, build_model
from llmrec.training.config import TrainConfig
from tests.contract.test_models import TINY_CONFIGS
from tests.training.helpers import epoch_mean_losses

UNTRAINED = ("pop", "bm25", "ease", "itemknn")  # closed form or counts: no loop, no precision
# Stage sections have their own loop settings: under bf16 every stage is bf16.
BF16_STAGES = {
    "cllm4rec": {"pretrain": {"warmup_epochs": 1, "rounds": 1, "train": {"precision": "bf16"}}},
}
TRAINED = sorted(set(MODELS) - set(UNTRAINED))


@pytest.fixture(params=TRAINED)
def bf16_fit(request, toy_dataset, tmp_path: Path, llm_cache_dir: Path, monkeypatch):
    """(model, its last stage's run folder, the dtypes of every nn.Linear output in the fit)."""
    name = request.param
    raw = {**TINY_CONFIGS[name], **BF16_STAGES.get(name, {})}
    if "backbone" in raw:
        raw = {**raw, "backbone": {**raw["backbone"], "cache_dir": str(llm_cache_dir)}}
    model = build_model(MODELS[name].Config.model_validate(raw), toy_dataset.catalogue)
    dtypes: set[torch.dtype] = set()
    plain_forward = torch.nn.Linear.forward

    def recording_forward(self, inputs):
        output = plain_forward(self, inputs)
        dtypes.add(output.dtype)
        return output

    monkeypatch.setattr(torch.nn.Linear, "forward", recording_forward)
    train = TrainConfig(epochs=2, batch_size=16, lr=3e-3, precision="bf16", log_every=1)
    run = RunContext(tmp_path / "run", train, seed=0, show_progress=False)
    result = model.fit(toy_dataset.train, None, run)
    # The last stage trains one task: its loss compares from epoch to epoch (a stage that
    # alternates tasks, as CLLM4Rec's pretraining, mixes two losses).
    final_stage = list(result.stage_seconds)[-1] if result.stage_seconds else "."
    return model, run.run_dir / final_stage, dtypes


def test_a_bf16_fit_trains_in_bf16_lowers_the_loss_and_keeps_fp32_state(bf16_fit) -> None:
    model, stage_dir, dtypes = bf16_fit
    assert torch.bfloat16 in dtypes  # autocast was on: the layers computed in bf16
    losses = epoch_mean_losses(stage_dir)
    assert all(math.isfinite(loss) for loss in losses) and losses[-1] < losses[0]
    networks = [value for value in vars(model).values() if isinstance(value, torch.nn.Module)]
    assert networks
    for network in networks:
        assert {p.dtype for p in network.parameters()} == {torch.float32}
    optimizer = torch.load(stage_dir / "checkpoints" / "last" / "optimizer.pt", weights_only=True)
    moments = [t for state in optimizer["state"].values() for t in state.values()]
    assert moments and {t.dtype for t in moments if t.is_floating_point()} == {torch.float32}
