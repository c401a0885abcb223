#!/usr/bin/env bash
# GPU check (under 5 minutes): CPU/GPU agreement and GPU timings of the curvature path.
# Run on a machine with CUDA and saddlescope installed:  bash benchmarks/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
export PYTHONUNBUFFERED=1
timeout 290 "$PY" -m benchmarks.gpu_check --device cuda
