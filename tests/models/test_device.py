"""Where a loaded model ranks: `auto` picks a CUDA GPU when torch sees one, else the CPU."""

from __future__ import annotations

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
