#!/bin/bash
# bench/hybrid_split (issue 6, "What must be shown" 1, second half): split inference through the
# device Router on a slowed device over emulated 4G and poor links, against local-only,
# cloud-only and every fixed cut (bench/hybrid_split.cc explains the emulation).
# Targets: the planner's p50 within 10 % of the best fixed cut on each link; split beats both
# local-only and cloud-only on at least one link.
#
#   bench/run_hybrid_split.sh [MODEL ...]      (default: mobilenet_v2 resnet18)
#
# Each MODEL is a torchvision model that bench/models/export_torchvision.py exports (random
# weights, nothing downloaded) into <BUILD_DIR>/models when MODEL.onnx is not there yet. One run
# per model; each prints its tables and writes <source>/bench/results/hybrid_split_MODEL.json.
#
# Environment (defaults): BUILD_DIR (<source>/build; bench/hybrid_split is built there unless
# SKIP_BUILD=1; configure it with -DHML_BUILD_BENCH=ON), SLOWDOWN (6), LINKS (4g,poor), REQUESTS
# (15), WARMUP (2), EXTRA_ARGS (more hybrid_split flags, e.g. --all-cuts), NICE (unset: run at
# the shell's priority; e.g. -5 as root makes other jobs on a shared machine preempt the emulated
# device less, whose compute jitter the slowdown multiplies).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$ROOT/build}"
MODELS_DIR="$BUILD_DIR/models"
BIN="$BUILD_DIR/bench/hybrid_split"
SLOWDOWN="${SLOWDOWN:-6}"
LINKS="${LINKS:-4g,poor}"
REQUESTS="${REQUESTS:-15}"
WARMUP="${WARMUP:-2}"
read -r -a extra <<< "${EXTRA_ARGS:-}"
models=("$@")
if [[ ${#models[@]} -eq 0 ]]; then models=(mobilenet_v2 resnet18); fi

if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
  ninja -C "$BUILD_DIR" -j2 hybrid_split
fi
if [[ ! -x "$BIN" ]]; then
  echo "run_hybrid_split.sh: no $BIN (configure with -DHML_BUILD_BENCH=ON)" >&2
  exit 1
fi
for m in "${models[@]}"; do
  if [[ ! -f "$MODELS_DIR/$m.onnx" ]]; then
    /usr/bin/python3 "$ROOT/bench/models/export_torchvision.py" "$MODELS_DIR" "$m"
  fi
  ${NICE:+nice -n "$NICE"} "$BIN" "$MODELS_DIR/$m.onnx" --name "$m" --slowdown "$SLOWDOWN" --links "$LINKS" \
    --requests "$REQUESTS" --warmup "$WARMUP" --json "$ROOT/bench/results/hybrid_split_$m.json" \
    "${extra[@]}"
done
