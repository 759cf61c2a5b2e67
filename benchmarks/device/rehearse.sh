#!/usr/bin/env bash
# Rehearses the two device calls on this CPU machine (benchmarks/device/README.md): a CPython 3.12
# venv with the device image's versions of what it holds (not pydantic, bm25s or gguf, which the
# calls carry), a copy of the working tree as the device receives it, then `run.sh stash` and
# `run.sh bench COMMAND...`. Catches what differs there: Python 3.12, transformers 5.17.
#
#     bash benchmarks/device/pack.sh
#     bash benchmarks/device/rehearse.sh /tmp/device-py312/bin/python benchmarks/calrec.py ...
#
# COMMAND runs with the venv's python, which is the first word to give. Results land in
# /tmp/device-rehearsal-out ($OUT there). Needs python3.12 (PYTHON312) and the package registry.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
VENV=${VENV:-/tmp/device-py312}
if [[ -z ${PYTHON312:-} ]]; then  # the first that runs: a pyenv shim may not
  for candidate in python3.12 "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.12*/bin/python; do
    if "$candidate" -c 'import sys; assert sys.version_info[:2] == (3, 12)' 2>/dev/null; then
      PYTHON312=$candidate
      break
    fi
  done
fi
[[ -n ${PYTHON312:-} ]] || { echo "no working CPython 3.12: set PYTHON312" >&2; exit 2; }
COPY=/tmp/device-rehearsal
[[ -d $REPO/.device/part2 ]] || { echo "run benchmarks/device/pack.sh first" >&2; exit 2; }

if [[ ! -x $VENV/bin/python ]]; then
  "$PYTHON312" -m venv "$VENV"
  "$VENV/bin/pip" install -q torch==2.13.0
  "$VENV/bin/pip" install -q transformers==5.17.0 accelerate==1.15.0 peft safetensors tensorboard \
    matplotlib psutil pyyaml typer tqdm numpy scipy requests pytest hypothesis
  # the device image lacks these: the calls carry them as wheels
  "$VENV/bin/pip" uninstall -y -q pydantic pydantic-core annotated-types typing-inspection gguf \
    bm25s || true
fi

rm -rf "$COPY" /tmp/site /tmp/data /tmp/llmrec-cache
mkdir -p "$COPY"
(cd "$REPO" && git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$COPY")
cp -r "$REPO/.device" "$COPY/.device"
cd "$COPY"
export OUT=/tmp/device-rehearsal-out PYTHON=$VENV/bin/python
rm -rf "$OUT"
bash benchmarks/device/run.sh stash
rm -rf .device/part1  # call 2 does not carry it
bash benchmarks/device/run.sh bench "$@"
ls -l "$OUT"
