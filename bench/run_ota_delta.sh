#!/bin/bash
# The OTA delta scenario of issue 4: a student whose last layer was fine-tuned, shipped as a zstd
# delta patch against the version the device has, compared with the full file.
# Target: the int8 delta is at most 25 % of the full int8 student.
#
#   bench/run_ota_delta.sh [STUDENT.onnx]     (default <BUILD_DIR>/train_runs/student_kd.onnx)
#
# Steps, with the hybridml CLI of BUILD_DIR:
#   (a) quantize STUDENT to int8 (calibrated on Fashion-MNIST):      old_int8.onnx
#   (b) fine-tune only the parameters named logits.* for one epoch:   tuned.onnx
#   (c) quantize tuned.onnx the same way:                             new_int8.onnx
#   (d) ota_delta old_int8.onnx new_int8.onnx, and STUDENT vs tuned.onnx (fp32).
# The models go to OUT_DIR; each ota_delta run prints a table and writes JSON to
# <source>/bench/results/ota_delta_{int8,fp32}.json.
#
# Environment: BUILD_DIR (default <source>/build; its src/cli/hybridml is used, and
# bench/ota_delta is built there unless OTA_DELTA names the binary), OUT_DIR (default
# <BUILD_DIR>/ota_delta), OTA_DELTA (path of a built ota_delta).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$ROOT/build}"
OUT_DIR="${OUT_DIR:-$BUILD_DIR/ota_delta}"
HYBRIDML="$BUILD_DIR/src/cli/hybridml"
STUDENT="${1:-$BUILD_DIR/train_runs/student_kd.onnx}"

if [[ ! -x "$HYBRIDML" ]]; then
  echo "run_ota_delta.sh: no CLI at $HYBRIDML (build target hybridml, HML_WITH_TRAIN=ON)" >&2
  exit 1
fi
if [[ ! -f "$STUDENT" ]]; then
  echo "run_ota_delta.sh: no student model at $STUDENT (train one, or pass its path)" >&2
  exit 1
fi
if [[ -z "${OTA_DELTA:-}" ]]; then
  ninja -C "$BUILD_DIR" ota_delta
  OTA_DELTA="$BUILD_DIR/bench/ota_delta"
fi
mkdir -p "$OUT_DIR" "$ROOT/bench/results"

# Timing is off (--iterations 0): only the quantized files matter here.
quantize() {
  "$HYBRIDML" compress "$1" --data fashion-mnist --int8 -o "$2" --iterations 0
}

echo "== (a) quantize $STUDENT"
quantize "$STUDENT" "$OUT_DIR/old_int8.onnx"
echo "== (b) fine-tune only logits.* for one epoch"
"$HYBRIDML" train --data fashion-mnist --model "$STUDENT" --epochs 1 --lr 0.01 \
  --trainable logits --no-progress --out "$OUT_DIR/tuned.onnx"
echo "== (c) quantize the tuned model"
quantize "$OUT_DIR/tuned.onnx" "$OUT_DIR/new_int8.onnx"

echo "== (d) int8: delta against the full int8 student (target: delta/new <= 25 %)"
"$OTA_DELTA" "$OUT_DIR/old_int8.onnx" "$OUT_DIR/new_int8.onnx" \
  --json "$ROOT/bench/results/ota_delta_int8.json"
echo
echo "== (d) fp32: $STUDENT vs tuned.onnx"
"$OTA_DELTA" "$STUDENT" "$OUT_DIR/tuned.onnx" --json "$ROOT/bench/results/ota_delta_fp32.json"
