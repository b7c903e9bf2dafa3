#!/bin/bash
# Footprint of the device runtime and of the whole device SDK. First the runtime: builds the shared library of our runtime code only
# (CMake target hybridml_runtime_shared: hml_base + hml_runtime from the real objects (-O3; -Os for reference kernels and ops),
# linking the system XNNPACK/pthreadpool/cpuinfo/onnx_proto/protobuf), strips a copy, prints its
# size against the 1 MB target, the sizes of the third-party libraries it links (not ours, for
# context) and what dominates, and writes bench/results/footprint.json. Then the device SDK
# (hybridml_device_shared: runtime + OTA + storage + SDK with its C ABI, no cloud code) against
# the 2 MB target, into bench/results/footprint_device.json.
#
# Usage: bench/footprint.sh [--variants] [BUILD_DIR]   (default BUILD_DIR: <source>/build)
#   --variants  also recompile the same sources with -O2, -Os, -fvisibility=hidden and a mixed
#               -Os/-O3 split, and report each size (a few minutes on 2 cores)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VARIANTS=""
BUILD_DIR="$ROOT/build"
for arg in "$@"; do
  case "$arg" in
    --variants) VARIANTS="--variants" ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) BUILD_DIR="$arg" ;;
  esac
done
if [[ ! -f "$BUILD_DIR/build.ninja" ]]; then
  cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja
fi
ninja -C "$BUILD_DIR" hybridml_runtime_shared hybridml_device_shared
/usr/bin/python3 "$ROOT/bench/footprint_report.py" "$BUILD_DIR" "$ROOT/bench/results" $VARIANTS
echo
/usr/bin/python3 "$ROOT/bench/footprint_report.py" "$BUILD_DIR" "$ROOT/bench/results" --device
