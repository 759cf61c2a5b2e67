"""Sharded training with 2 processes on the CPU (gloo), launched with the shipped configs.

FSDP (full shard, `configs/accelerate/fsdp.yaml`) trains to the weights of one process,
validates and checkpoints the full weights, resumes exactly, and leaves a model whose saved
folder `llmrec.load` reads; evaluation under the 2 processes ranks every user once. DeepSpeed
ZeRO-2 and ZeRO-3 (`zero2.yaml`, `zero3.yaml`; slow, and only where `deepspeed` is installed)
train SASRec to the one-process weights and refuse resumable checkpoints.

Accelerate takes its FSDP path only on GPUs (its `AcceleratorState` turns FSDP on for GPU
process groups alone), so the script puts it on the CPU's gloo group: after the loop has built
its `Accelerator`, it sets the distributed type to FSDP and the plugin the launch configured
(the `FSDP_*` variables of the config file), as `AcceleratorState` does on a GPU. Everything
after that (Accelerate's FSDP2 preparation, `fully_shard`, the state-dict gathering) is the
code a GPU run executes. For DeepSpeed, Accelerate finds no process-group backend on a machine
without GPUs; the script names gloo (DeepSpeed's own choice on the CPU) before the loop starts.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import llmrec
from tests.conftest import FIXTURE_DIR, REPO_ROOT
from tests.training.launch import (
    assert_same_weights,
    launch_config,
    launch_two_processes,
    one_and_two_processes,
)

SCRIPT = textwrap.dedent(
    '''
    import json
    import os
    import sys
    from pathlib import Path

    import numpy as np
    import torch
    from accelerate import PartialState
    from accelerate.utils import DistributedType, FullyShardedDataParallelPlugin
    from safetensors.torch import save_file
    from torch.distributed.fsdp import FSDPModule

    import llmrec.training.loop as loop
    from llmrec.models.base import RunContext
    from llmrec.models.sasrec import SASRec, SASRecConfig, SASRecNetwork, SequenceBatches
    from llmrec.training.config import TrainConfig
    from llmrec.training.loop import train
    from tests.training.scenarios import calrec_token_loss

    torch.set_num_threads(1)
    OUT = Path(sys.argv[1])
    FIXTURE = Path(sys.argv[2])
    MODE = sys.argv[3]  # "fsdp" or "deepspeed": the scenarios to run, and how, with 2 processes
    SHARDED = int(os.environ.get("WORLD_SIZE", "1")) > 1
    LAYER = {"name": None}  # None: the layer class of the launch config (LlamaDecoderLayer)
    PREPARED = []  # per prepared model: FSDP units, rows of the first weight (local, whole),
    # the dtype FSDP computes in


    def fsdp_on_cpu(make_accelerator):
        def accelerator_with_fsdp(cfg, unused):
            accelerator = make_accelerator(cfg, unused)
            accelerator.state.distributed_type = DistributedType.FSDP
            PartialState._shared_state["distributed_type"] = DistributedType.FSDP
            names = None if LAYER["name"] is None else [LAYER["name"]]
            plugin = FullyShardedDataParallelPlugin(transformer_cls_names_to_wrap=names)
            if accelerator.mixed_precision != "no":  # as AcceleratorState does on a GPU
                plugin.set_mixed_precision(accelerator.mixed_precision)
            accelerator.state.fsdp_plugin = plugin
            prepare = accelerator.prepare

            def recording_prepare(*objects):
                prepared = prepare(*objects)
                model = prepared[0]
                units = sum(isinstance(module, FSDPModule) for module in model.modules())
                first = next(model.parameters())
                policy = accelerator.state.fsdp_plugin.mixed_precision_policy
                compute = str(getattr(policy, "param_dtype", None))
                PREPARED.append([units, first.to_local().shape[0], first.shape[0], compute])
                return prepared

            accelerator.prepare = recording_prepare
            return accelerator

        return accelerator_with_fsdp


    if SHARDED and MODE == "fsdp":
        loop._accelerator = fsdp_on_cpu(loop._accelerator)
    if SHARDED and MODE == "deepspeed" and not torch.cuda.is_available():
        PartialState(backend="gloo")


    class CountedSASRec(SASRecNetwork):
        """SASRec's CE is a mean over its real positions: as many terms as num_tokens."""

        def __init__(self, config, num_items, crash_at_call=None):
            super().__init__(config, num_items)
            self.calls, self.crash_at_call = 0, crash_at_call

        def forward(self, batch):
            self.calls += 1
            if self.calls == self.crash_at_call:
                raise KeyboardInterrupt
            out = super().forward(batch)
            out.num_terms = out.num_tokens
            return out


    def save(name, module, **extra):
        if PartialState().is_main_process:
            state = module.state_dict()
            weights = {k: v.detach().cpu().clone().contiguous() for k, v in state.items()}
            save_file(weights, str(OUT / f"{name}.safetensors"))
            (OUT / f"{name}.json").write_text(json.dumps({**extra, "prepared": PREPARED}))
        PREPARED.clear()


    def embedding_norm(network):
        """A validation metric of the full weights (a sharded model would give a shard's)."""
        return {"ndcg@10": float(network.item_embedding.weight.norm())}


    def sasrec_network(dropout, crash_at_call=None):
        config = SASRecConfig(
            hidden_size=16, num_layers=2, num_heads=2, dropout=dropout, max_length=5
        )
        torch.manual_seed(0)
        return CountedSASRec(config, 20, crash_at_call), config


    def sasrec_batches(config):
        rng = np.random.default_rng(0)
        sequences = [rng.integers(0, 20, size=size) for size in (2, 3, 4, 6, 7, 9, 11, 13)]
        return SequenceBatches(sequences, config, num_items=20, batch_size=5, seed=0)


    def sasrec(name="sasrec", precision="no"):
        LAYER["name"] = "TransformerEncoderLayer"
        network, config = sasrec_network(dropout=0.0)
        cfg = TrainConfig(epochs=3, batch_size=5, lr=1e-2, num_threads=1, patience=5,
                          precision=precision)
        result = train(network, sasrec_batches(config), embedding_norm, cfg,
                       OUT / "runs" / name, seed=0, show_progress=False)
        save(name, network, history=result.history, best_step=result.best_step,
             parameter=type(network.item_embedding.weight).__name__)


    def sasrec_resume():
        """A run killed mid-epoch 2 and resumed from its step checkpoint ends as the full run."""
        LAYER["name"] = "TransformerEncoderLayer"
        cfg = TrainConfig(epochs=3, batch_size=5, lr=1e-2, checkpoint_every=1, num_threads=1)
        full, config = sasrec_network(dropout=0.3)
        batches = sasrec_batches(config)
        train(full, batches, None, cfg, OUT / "runs" / "full", seed=1, show_progress=False)
        save("full", full)
        crashing, _ = sasrec_network(dropout=0.3, crash_at_call=5)
        try:
            train(crashing, batches, None, cfg, OUT / "runs" / "killed", seed=1,
                  show_progress=False)
        except KeyboardInterrupt:
            pass
        resumed, _ = sasrec_network(dropout=0.3)
        train(resumed, batches, None, cfg, OUT / "runs" / "killed", seed=1, resume=True,
              show_progress=False)
        save("resumed", resumed)


    def calrec():
        LAYER["name"] = None  # the config's LlamaDecoderLayer: the tiny backbone is a Llama
        network, batches, cfg = calrec_token_loss(FIXTURE)
        train(network, batches, None, cfg, OUT / "runs" / "calrec", seed=0, show_progress=False)
        save("calrec", network)


    def sasrec_model_folder():
        """SASRec's own fit and save: the model folder that `llmrec.load` reads."""
        from llmrec.data.registry import load_dataset

        LAYER["name"] = "TransformerEncoderLayer"
        data = load_dataset(FIXTURE).dataset
        config = SASRecConfig(hidden_size=16, num_layers=1, num_heads=2, dropout=0.0,
                              max_length=10)
        model = SASRec(config, data.catalogue)
        cfg = TrainConfig(epochs=1, batch_size=64, lr=1e-2, num_threads=1)
        model.fit(data.train, run=RunContext(OUT / "runs" / "model", cfg, show_progress=False))
        if PartialState().is_main_process:
            model.save(OUT / "sasrec_model")
            (OUT / "sasrec_model.json").write_text(json.dumps({"prepared": PREPARED}))
        PREPARED.clear()
        evaluation(model, data.valid)


    def evaluation(model, valid):
        """Each process' ranked users, and its results split across processes and not."""
        from llmrec.evaluation.config import EvalConfig
        from llmrec.evaluation.ranking import evaluate_model

        ranked = []
        score = model.score

        def recording_score(histories, users=None):
            ranked.extend(users)
            return score(histories)

        model.reads_users, model.score = True, recording_score  # so the users are passed
        config = EvalConfig(batch_size=7, bootstrap_resamples=0)  # 43 batches: 21 + 22
        split = evaluate_model(model, valid, config, show_progress=False)
        mine = list(ranked)
        whole = evaluate_model(model, valid, config, show_progress=False, across_processes=False)
        results = {
            "ranked": mine,
            "split": [split.user_ids, split.ranks.tolist(), split.metrics],
            "whole": [whole.user_ids, whole.ranks.tolist(), whole.metrics],
            "valid_users": list(valid.user_ids),
        }
        index = PartialState().process_index
        (OUT / f"evaluation{index}.json").write_text(json.dumps(results))


    def deepspeed_refuses_checkpoints():
        from llmrec.errors import ConfigError

        network, config = sasrec_network(dropout=0.0)
        cfg = TrainConfig(epochs=1, batch_size=5, checkpoint_every=1, num_threads=1)
        try:
            train(network, sasrec_batches(config), None, cfg, OUT / "runs" / "refused", seed=0,
                  show_progress=False)
        except ConfigError as error:
            (OUT / "refused.txt").write_text(str(error))


    sasrec()
    if MODE == "fsdp":
        sasrec("sasrec_bf16", precision="bf16")
        sasrec_resume()
        calrec()
        sasrec_model_folder()
    elif SHARDED:
        deepspeed_refuses_checkpoints()
    '''
)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, llm_cache_dir: Path) -> tuple[Path, Path]:
    """(one-process outputs, two-process FSDP outputs) of SCRIPT."""
    tmp_path = tmp_path_factory.mktemp("fsdp")
    arguments = [str(FIXTURE_DIR), "fsdp"]
    return one_and_two_processes(tmp_path, SCRIPT, "fsdp.yaml", arguments, llm_cache_dir)


def _info(outputs: Path, name: str) -> dict:
    return json.loads((outputs / f"{name}.json").read_text())


def test_the_two_process_runs_were_sharded_by_fsdp(runs) -> None:
    one, two = runs
    # SASRec: its 2 encoder layers and the root are FSDP units; the item table (21 rows, the
    # padding row included) is split 11 + 10. CALRec: the tiny Llama's 2 decoder layers + root.
    assert _info(two, "sasrec")["prepared"] == [[3, 11, 21, "None"]]  # no mixed precision
    units, local, whole, _ = _info(two, "calrec")["prepared"][0]
    assert units == 3 and local == (whole + 1) // 2
    units, local, whole, _ = _info(two, "sasrec_model")["prepared"][0]
    assert units == 2 and local == (whole + 1) // 2
    assert _info(one, "sasrec")["prepared"] == []  # one process: no FSDP
    # the module handed to the loop comes back a plain module, not a sharded one
    assert _info(two, "sasrec")["parameter"] == "Parameter"


def test_fsdp_trains_sasrec_to_the_one_process_weights(runs) -> None:
    one, two = runs
    # Only the summation order differs (each process' rows, then the reduce-scatter): as with
    # DDP (test_distributed.py), differences stay below 1e-5, far below a wrong weighting's 0.1.
    assert_same_weights(
        one / "sasrec.safetensors", two / "sasrec.safetensors", 1e-4, 1e-5, 16, num_layers=2
    )


def test_validation_sees_the_full_weights_under_fsdp(runs) -> None:
    one, two = runs
    single, double = _info(one, "sasrec"), _info(two, "sasrec")
    assert double["best_step"] == single["best_step"]
    assert [h["step"] for h in double["history"]] == [h["step"] for h in single["history"]]
    # the metric (the item table's norm) grows with training: a stale or sharded copy fails
    for first, second in zip(single["history"], double["history"], strict=True):
        assert second["ndcg@10"] == pytest.approx(first["ndcg@10"], rel=1e-5)
    assert len({h["ndcg@10"] for h in double["history"]}) == 3


def test_fsdp_trains_in_bf16_with_fp32_master_weights(runs) -> None:
    """`train.precision: bf16` under FSDP: Accelerate's FSDP policy computes in bf16, the
    weights (and so what is saved and validated) stay fp32, and training follows the fp32 run
    to bf16's precision (3 significant digits)."""
    one, two = runs
    assert _info(two, "sasrec_bf16")["prepared"][0][3] == "torch.bfloat16"
    weights = load_file(str(two / "sasrec_bf16.safetensors"))
    assert {tensor.dtype for tensor in weights.values()} == {torch.float32}
    single, double = _info(one, "sasrec"), _info(two, "sasrec_bf16")
    for first, second in zip(single["history"], double["history"], strict=True):
        assert second["ndcg@10"] == pytest.approx(first["ndcg@10"], rel=1e-2)
        assert second["ndcg@10"] != first["ndcg@10"]  # bf16 did change the arithmetic


def test_fsdp_trains_calrec_to_the_one_process_weights(runs) -> None:
    one, two = runs
    assert_same_weights(one / "calrec.safetensors", two / "calrec.safetensors", 1e-4, 1e-5)


def test_a_killed_fsdp_run_resumes_exactly(runs) -> None:
    for outputs in runs:
        assert_same_weights(outputs / "full.safetensors", outputs / "resumed.safetensors", 0, 0)


def test_a_model_trained_under_fsdp_saves_a_folder_that_loads(runs) -> None:
    one, two = runs
    assert (two / "sasrec_model" / "config.json").is_file()
    single, double = llmrec.load(one / "sasrec_model"), llmrec.load(two / "sasrec_model")
    histories = [[0, 1, 2], [5], [7, 3, 9, 11]]
    torch.testing.assert_close(
        double.score(histories), single.score(histories), rtol=1e-4, atol=1e-5
    )


def test_evaluation_under_two_processes_ranks_every_user_once(runs) -> None:
    one, two = runs
    first, second = (_info(two, f"evaluation{index}") for index in (0, 1))
    users = first["valid_users"]
    assert len(users) == 300
    # process 0 ranked the first 21 batches of 7 users, process 1 the other 22: none twice,
    # none lost, in order
    assert len(first["ranked"]) == 21 * 7 and first["ranked"] + second["ranked"] == users
    for results in (first, second):  # both processes hold the whole result
        assert results["split"] == results["whole"]  # the one-process ranks, user by user
        assert results["split"][0] == users
    assert first["split"] == second["split"]
    alone = _info(one, "evaluation0")
    assert alone["ranked"] == users and alone["split"] == alone["whole"]


@pytest.fixture(scope="module")
def deepspeed_runs(
    runs, tmp_path_factory: pytest.TempPathFactory, llm_cache_dir: Path
) -> dict[str, Path]:
    """Outputs of SCRIPT's SASRec under ZeRO-2 and ZeRO-3, and the one-process run's."""
    pytest.importorskip("deepspeed", reason="DeepSpeed is an optional extra: pip install deepspeed")
    tmp_path = tmp_path_factory.mktemp("deepspeed")
    script = tmp_path / "script.py"
    script.write_text(SCRIPT, encoding="utf-8")
    outputs = {"one": runs[0]}
    for stage in ("zero2", "zero3"):
        outputs[stage] = tmp_path / stage
        outputs[stage].mkdir()
        arguments = [str(outputs[stage]), str(FIXTURE_DIR), "deepspeed"]
        config = launch_config(f"{stage}.yaml")
        launch_two_processes(config, script, arguments, tmp_path, llm_cache_dir, use_cpu=False)
    return outputs


@pytest.mark.slow
@pytest.mark.parametrize("stage", ["zero2", "zero3"])
def test_deepspeed_trains_sasrec_to_the_one_process_weights(deepspeed_runs, stage) -> None:
    one, sharded = deepspeed_runs["one"], deepspeed_runs[stage]
    assert_same_weights(
        one / "sasrec.safetensors", sharded / "sasrec.safetensors", 1e-4, 1e-5, 16, num_layers=2
    )
    single, double = _info(one, "sasrec"), _info(sharded, "sasrec")
    assert double["best_step"] == single["best_step"]
    for first, second in zip(single["history"], double["history"], strict=True):
        assert second["ndcg@10"] == pytest.approx(first["ndcg@10"], rel=1e-5)
    assert not (sharded / "runs" / "sasrec" / "checkpoints" / "last").exists()
    refused = (sharded / "refused.txt").read_text()
    assert "train.checkpoint_every" in refused and "DeepSpeed" in refused


def test_the_accelerate_configs_parse_as_accelerate_reads_them() -> None:
    from accelerate.commands.config.config_args import load_config_from_file
    from accelerate.utils import DistributedType

    expected = {
        "ddp.yaml": DistributedType.MULTI_GPU,
        "fsdp.yaml": DistributedType.FSDP,
        "zero2.yaml": DistributedType.DEEPSPEED,
        "zero3.yaml": DistributedType.DEEPSPEED,
    }
    folder = REPO_ROOT / "configs" / "accelerate"
    assert sorted(path.name for path in folder.glob("*.yaml")) == sorted(expected)
    for name, distributed_type in expected.items():
        config = load_config_from_file(str(folder / name))
        assert config.distributed_type == distributed_type, name
        assert config.num_processes == -1, name  # no process count fixed: --num_processes N
        assert config.mixed_precision == "no", name  # precision comes from train.precision
    zero3 = load_config_from_file(str(folder / "zero3.yaml")).deepspeed_config
    assert zero3["zero_stage"] == 3 and zero3["zero3_save_16bit_model"] is True
    fsdp = load_config_from_file(str(folder / "fsdp.yaml")).fsdp_config
    assert fsdp["fsdp_version"] == 2 and fsdp["fsdp_reshard_after_forward"] is True
