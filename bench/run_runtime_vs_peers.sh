#!/bin/bash
# Exports the torchvision models (once; the export script skips models already present), builds
# runtime_vs_peers and runs it. Extra arguments go to the benchmark (e.g. --quick,
# --models mobilenet_v2,cnn28, --engines xnnpack,opencv).
#
# Environment: BUILD_DIR (default <source>/build), MODELS_DIR (default <source>/build/models).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$ROOT/build}"
MODELS_DIR="${MODELS_DIR:-$ROOT/build/models}"

# /usr/bin/python3 has torch, torchvision and onnx (the python3 first on PATH may not).
/usr/bin/python3 "$ROOT/bench/models/export_torchvision.py" "$MODELS_DIR"

if [[ ! -f "$BUILD_DIR/build.ninja" ]]; then
  cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja
fi
ninja -C "$BUILD_DIR" runtime_vs_peers hybridml
# int8 QDQ twins of the torchvision models by our own PTQ (calibrated on 16 random inputs: the
# latency does not depend on the calibration data).
for m in mobilenet_v2 resnet18 squeezenet1_1; do
  if [[ -f "$MODELS_DIR/$m.onnx" && ! -f "$MODELS_DIR/$m.int8.onnx" ]]; then
    "$BUILD_DIR/src/cli/hybridml" compress "$MODELS_DIR/$m.onnx" --int8 --calibration-samples 16 \
      --random-samples 2 --iterations 0 -o "$MODELS_DIR/$m.int8.onnx"
  fi
done
mkdir -p "$ROOT/bench/results"
exec "$BUILD_DIR/bench/runtime_vs_peers" --models-dir "$MODELS_DIR" \
  --json "$ROOT/bench/results/runtime_vs_peers.json" "$@"
