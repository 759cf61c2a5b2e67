"""Where a loaded model ranks: `auto` picks a CUDA GPU when torch sees one, else the CPU; and no
source file puts anything on a GPU it names itself (issue 20)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import torch

from llmrec.errors import ConfigError
from llmrec.models.base import resolve_device


def test_auto_is_the_gpu_when_torch_sees_one_else_the_cpu() -> None:
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device("cpu") == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_a_gpu_that_torch_does_not_see_is_refused_by_name() -> None:
    with pytest.raises(ConfigError, match="no CUDA GPU"):
        resolve_device("cuda:1")


def test_an_unknown_device_name_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="'tpu9'"):
        resolve_device("tpu9")


SOURCE = Path(__file__).resolve().parents[2] / "src" / "llmrec"
DEVICE_NAME = re.compile(r"cuda(:\d*)?")  # a torch device name, or the start of a formatted one


def _hard_coded_devices(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, what) of each `.cuda(` call and each literal CUDA device name outside
    `resolve_device`. A formatted string counts when it starts with `cuda:` (not `cuda{i}`, a
    key of the saved RNG states)."""
    allowed = {
        id(node)
        for function in ast.walk(tree)
        if isinstance(function, ast.FunctionDef) and function.name == "resolve_device"
        for node in ast.walk(function)
    }
    formatted = {
        id(part)
        for node in ast.walk(tree)
        if isinstance(node, ast.JoinedStr)
        for part in node.values
    }
    found = []
    for node in ast.walk(tree):
        if id(node) in allowed:
            continue
        if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "cuda":
            found.append((node.lineno, ".cuda("))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            pattern = r"cuda:.*" if id(node) in formatted else DEVICE_NAME.pattern
            if re.fullmatch(pattern, node.value, flags=re.DOTALL):
                found.append((node.lineno, repr(node.value)))
    return found


def test_no_tensor_or_module_goes_to_a_hard_coded_gpu() -> None:
    """The device is chosen in one place (`resolve_device`; training: Accelerate's device);
    everything else follows the weights or the batch."""
    offenders = [
        f"{path.relative_to(SOURCE)}:{line}: {what}"
        for path in sorted(SOURCE.rglob("*.py"))
        for line, what in _hard_coded_devices(ast.parse(path.read_text(encoding="utf-8")))
    ]
    assert offenders == []


def test_the_scan_finds_what_it_looks_for() -> None:
    source = """
x = torch.zeros(2).cuda()
y = torch.zeros(2, device="cuda")
z = model.to(f"cuda:{rank}")
keys = {f"cuda{i}": state}
def resolve_device(name):
    return torch.device("cuda")
"""
    assert _hard_coded_devices(ast.parse(source)) == [
        (2, ".cuda("),
        (3, "'cuda'"),
        (4, "'cuda:'"),
    ]
