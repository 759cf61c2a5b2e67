#!/usr/bin/env bash
# Sets up a fresh machine: a virtual environment in .venv with llmrec and its test tools.
# torch comes first and pinned, so pip takes the CPU build instead of a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet "torch==${LLMREC_TORCH_VERSION:-2.13.0}"
.venv/bin/python -m pip install --quiet -e ".[dev]"
echo "llmrec is set up in .venv (activate with: source .venv/bin/activate)"
