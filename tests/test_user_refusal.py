"""Models declare whether they read users (`reads_users`); a user sent to one that does not is
refused with a clear error by the CLI (exit 2, one line) and by HTTP (4xx), never ignored."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from llmrec.models.registry import MODELS
from llmrec.serving.app import create_app
from tests.serving.helpers import save_tiny_model


@pytest.fixture()
def pop_dir(toy_dataset, tmp_path: Path, llm_cache_dir: Path) -> Path:
    return save_tiny_model("pop", toy_dataset, tmp_path, llm_cache_dir)


def test_only_models_with_per_user_parameters_read_users() -> None:
    always = {name for name, model in MODELS.items() if model.reads_users is True}
    assert always == {"cllm4rec"}  # cllm4rec-lite: only with extensions.prompt_user_token


def test_the_cli_refuses_a_user_for_a_model_without_user_parameters(pop_dir: Path) -> None:
    command = "from llmrec.cli.main import entry; entry()"
    args = ["recommend", str(pop_dir), "-H", "i1", "--user", "u3", "-k", "3"]
    done = subprocess.run(
        [sys.executable, "-c", command, *args], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: field 'user': the pop model has no per-user parameters: it ranks the history "
        "alone; send no user"
    ]
    assert "Traceback" not in done.stderr


def test_http_refuses_a_user_for_a_model_without_user_parameters(pop_dir: Path) -> None:
    with TestClient(create_app(pop_dir)) as client:
        refused = client.post("/recommend", json={"history": ["i1"], "user": "u3", "k": 3})
        served = client.post("/recommend", json={"history": ["i1"], "k": 3})
    assert refused.status_code == 400 and "no per-user parameters" in refused.json()["detail"]
    assert served.status_code == 200
