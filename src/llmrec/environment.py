"""What a run ran on: library versions, git commit and device, saved beside every result."""

from __future__ import annotations

import importlib.metadata
import platform
import subprocess
from pathlib import Path

import torch

from llmrec.version import __version__

TRACKED_PACKAGES = ("torch", "numpy", "transformers", "accelerate", "peft", "bm25s", "pydantic")


def collect_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {
        "llmrec": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "git_commit": _git_commit(),
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else _cpu_name(),
        "torch_threads": str(torch.get_num_threads()),
    }
    for package in TRACKED_PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    return versions


def _git_commit() -> str | None:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).parent,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if result.returncode != 0:
        return None  # not a git checkout (an installed package) or no commit yet
    return result.stdout.strip() or None


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return "CPU: " + line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "CPU: " + (platform.processor() or "unknown")
