#!/usr/bin/env bash
# The GPU suite on a bare device machine (torch, transformers, timm there; nothing else of ours). Needs the carry
# made by benchmarks/gpu_prepare.sh: .whl (wheels) and .gpu_clips (real clips). Writes $OUT/gpu.json (or
# benchmarks/results/gpu.json) and $OUT/gpu.log, and prints one table.
set -uo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || { echo "wheel install failed: run benchmarks/gpu_prepare.sh here and carry .whl"; exit 2; }
export PYTHONPATH="/tmp/site:$PWD" HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 SYNTHACT_CLIPS="$PWD/.gpu_clips"
DEST=${OUT:-benchmarks/results}
mkdir -p "$DEST"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
python3 -m benchmarks --gpu --out "$DEST/gpu.json" 2>&1 | tee "$DEST/gpu.log"
