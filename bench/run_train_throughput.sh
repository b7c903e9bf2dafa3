#!/bin/bash
# Builds train_throughput and runs it: hybridml's C++ trainer against the same models in Python
# with Debian's python3-torch (bench/train_throughput.py), side by side, 1 thread each. Prints one
# table and writes bench/results/train_throughput.json. Takes about 2 minutes. Extra arguments
# go to the benchmark (e.g. --rounds 1, --models mlp, --optimizers sgd, --data synthetic).
#
# Environment: BUILD_DIR (default <source>/build).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$ROOT/build}"

# /usr/bin/python3 has torch (the python3 first on PATH may not).
if ! /usr/bin/python3 -c 'import torch' 2>/dev/null; then
  echo "run_train_throughput.sh: /usr/bin/python3 cannot import torch (apt-get install python3-torch)" >&2
  exit 1
fi
if [[ ! -f "$BUILD_DIR/build.ninja" ]]; then
  cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja
fi
ninja -C "$BUILD_DIR" train_throughput
mkdir -p "$ROOT/bench/results"
exec "$BUILD_DIR/bench/train_throughput" --python /usr/bin/python3 \
  --script "$ROOT/bench/train_throughput.py" \
  --json "$ROOT/bench/results/train_throughput.json" "$@"
