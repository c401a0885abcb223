#!/usr/bin/env bash
# GPU check (under 5 minutes): tests/test_cuda.py, CPU/GPU agreement of the curvature path, its
# GPU timings, and the anchor comparison table (benchmarks.compare --quick) run on the GPU.
# Run on a machine with CUDA and saddlescope (and the bench extra) importable:
#   bash benchmarks/gpu_check.sh            (JSON=path to place the table's JSON elsewhere)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
export PYTHONUNBUFFERED=1
status=0
timeout 120 "$PY" -m pytest -q -p no:cacheprovider tests/test_cuda.py || status=1
timeout 120 "$PY" -m benchmarks.gpu_check --device cuda || status=1
timeout 170 "$PY" -m benchmarks.compare --quick --device cuda --threads 4 \
  --json "${JSON:-results/compare-gpu.json}" || status=1
exit $status
