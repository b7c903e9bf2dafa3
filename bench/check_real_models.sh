#!/usr/bin/env bash
# Exports torchvision mobilenet_v2, resnet18 and squeezenet1_1 (random weights, random BatchNorm
# statistics, nothing downloaded), runs each on every backend with PyTorch's input, and checks
# our output against PyTorch's: max |diff| <= 1e-4 * max |PyTorch output|.
# Usage: bench/check_real_models.sh [BUILD_DIR]   (default: build)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="$(cd "${1:-$root/build}" && pwd)"
models="$build/models"
/usr/bin/python3 "$root/bench/models/export_torchvision.py" "$models"
status=0
printf '%-16s %-10s %s\n' model backend result
for m in mobilenet_v2 resnet18 squeezenet1_1; do
  for backend in xnnpack reference; do
    out="$models/out_${m}_$backend"
    "$build/src/cli/hybridml" infer "$models/$m.onnx" --backend "$backend" \
      --input "$models/$m.input.pb" --output-dir "$out" > "$out.log" 2>&1 || { cat "$out.log"; status=1; continue; }
    if result="$("$build/bench/compare_tensors" "$out/output_0.pb" "$models/$m.output.pb" 1e-4)"; then :; else status=1; fi
    printf '%-16s %-10s %s\n' "$m" "$backend" "$result"
  done
done
exit $status
