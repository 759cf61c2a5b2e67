"""The package's layers (docs/architecture.md): the import-linter contract in pyproject.toml holds,
and it does catch an import that points up (a negative control on a copy of the sources)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _lint_imports(source_root: Path, cwd: Path) -> subprocess.CompletedProcess:
    """`lint-imports` with `source_root` first on the path, in a fresh process (grimp reads the
    package from disk; a separate process keeps this one's imported modules out of it)."""
    env = {**os.environ, "PYTHONPATH": str(source_root)}
    command = [sys.executable, "-c", "from importlinter.cli import lint_imports_command as c; c()"]
    command += ["--config", str(ROOT / "pyproject.toml"), "--no-cache"]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_every_import_points_down_the_layers(tmp_path: Path) -> None:
    done = _lint_imports(ROOT / "src", tmp_path)
    assert done.returncode == 0, done.stdout[-3000:]
    assert "1 kept, 0 broken" in done.stdout


def test_an_import_of_a_higher_layer_breaks_the_contract(tmp_path: Path) -> None:
    sources = tmp_path / "src"
    shutil.copytree(ROOT / "src" / "llmrec", sources / "llmrec")
    base = sources / "llmrec" / "models" / "base.py"
    base.write_text(base.read_text("utf-8") + "\nimport llmrec.evaluation.ranking\n", "utf-8")
    done = _lint_imports(sources, tmp_path)
    assert done.returncode != 0
    assert "llmrec.models.base -> llmrec.evaluation.ranking" in done.stdout
