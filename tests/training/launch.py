"""Run a script as a user's multi-process job would: `accelerate launch` with 2 processes on the
CPU (gloo), and compare the weights it saved with a one-process run's."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

from tests.conftest import REPO_ROOT


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_command(command: list[str], tmp_path: Path, cache: Path, use_cpu: bool = True) -> None:
    """Run `command` to success with one thread, no user Accelerate config, and (`use_cpu`)
    ACCELERATE_USE_CPU: gloo on the CPU, even on a machine with GPUs. Accelerate turns DeepSpeed
    off under ACCELERATE_USE_CPU: DeepSpeed runs leave it out (and use any GPUs there are)."""
    env = {
        **os.environ,
        "LLMREC_CACHE": str(cache),  # the tiny backbone's tokenizer, converted once per session
        "OMP_NUM_THREADS": "1",
        "HF_HOME": str(tmp_path / "hf"),  # no user accelerate config
        # the scripts import tests.training.scenarios
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
    }
    if use_cpu:
        env["ACCELERATE_USE_CPU"] = "true"
    else:
        env.pop("ACCELERATE_USE_CPU", None)
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]


def launch_two_processes(
    options: list[str],
    script: Path | str,
    arguments: list[str],
    tmp_path: Path,
    cache: Path,
    use_cpu: bool = True,
    module: bool = False,
) -> None:
    """`accelerate launch OPTIONS --num_processes 2 SCRIPT ARGUMENTS` on a free port
    (`module`: SCRIPT names a module, `-m SCRIPT`)."""
    accelerate = str(Path(sys.executable).parent / "accelerate")
    launch = [accelerate, "launch", *options, "--num_processes", "2", "--num_machines", "1"]
    launch += ["--main_process_port", str(free_port()), *(["-m"] if module else [])]
    launch += [str(script), *arguments]
    run_command(launch, tmp_path, cache, use_cpu)


def launch_config(name: str) -> list[str]:
    """The `accelerate launch` option of the shipped config `configs/accelerate/NAME`."""
    return ["--config_file", str(REPO_ROOT / "configs" / "accelerate" / name)]


def one_and_two_processes(
    tmp_path: Path, script_text: str, config: str, arguments: list[str], cache: Path
) -> tuple[Path, Path]:
    """(one-process outputs, two-process outputs): the script run by python, then by
    `accelerate launch` with the shipped `config` and 2 processes on the CPU, each given its
    output folder and `arguments`."""
    script = tmp_path / "script.py"
    script.write_text(script_text, encoding="utf-8")
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    run_command([sys.executable, str(script), str(one), *arguments], tmp_path, cache)
    launch_two_processes(launch_config(config), script, [str(two), *arguments], tmp_path, cache)
    return one, two


# The gradient of the attention's key bias is zero in exact arithmetic (a softmax ignores a
# shift shared by all keys); AdamW divides its rounding noise by its own size and takes steps
# of about lr in a random direction. Those values differ between any two summation orders.
KEY_BIAS = "encoder.layers.{layer}.self_attn.in_proj_bias"


def assert_same_weights(
    first: Path,
    second: Path,
    rtol: float,
    atol: float,
    hidden: int | None = None,
    num_layers: int = 1,
) -> None:
    """The two safetensors files hold the same tensors; SASRec (`hidden` given): but for the
    attention's key bias of each of its `num_layers` layers."""
    left, right = load_file(str(first)), load_file(str(second))
    assert left.keys() == right.keys()
    if hidden is not None:
        for weights in (left, right):
            for layer in range(num_layers):
                weights[KEY_BIAS.format(layer=layer)][hidden : 2 * hidden] = 0.0
    for name in left:
        torch.testing.assert_close(right[name], left[name], rtol=rtol, atol=atol, msg=name)
