#!/usr/bin/env bash
# The GPU figures, on a machine with a CUDA GPU and JAX's CUDA plugin (< 8 minutes on an H100).
# Needs lrbench's dependencies importable (pip install -e . or PYTHONPATH) and MNIST's IDX files
# at ../shared/data/mnist or $LRBENCH_MNIST. Writes ${OUT:-.}/gpu_results.json.
set -euo pipefail
cd "$(dirname "$0")/.."
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
python3 bench/gpu.py --out "${OUT:-.}/gpu_results.json" "$@"
