#!/usr/bin/env bash
# Creates the RecBole 1.2.1 venv that benchmarks/recbole/run_sasrec.py runs in. Only benchmarks use
# it; llmrec and its tests never import RecBole. No file inside an installed package is edited:
# the pins in requirements.txt keep RecBole's own code paths working (see README.md).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
VENV="${RECBOLE_VENV:-$ROOT/.venv-recbole}"
PYTHON="${PYTHON:-python3}"
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip install --quiet)
"${PIP[@]}" --upgrade pip
# torch first and pinned: a bare torch (as RecBole's requirement) would pull a multi-GB CUDA build.
"${PIP[@]}" "torch==${RECBOLE_TORCH_VERSION:-2.13.0}"
"${PIP[@]}" -r "$HERE/requirements.txt" -c "$HERE/constraints.txt"
# The whole package imports unedited (quick_start pulls in ray.tune) with these pins.
"$VENV/bin/python" -W ignore -c 'import recbole, ray, torch, numpy, pandas
import recbole.quick_start, recbole.config, recbole.trainer, recbole.model.sequential_recommender
print("recbole", recbole.__version__, "torch", torch.__version__, "numpy", numpy.__version__,
      "pandas", pandas.__version__, "ray", ray.__version__)'
echo "RecBole is set up in $VENV"
