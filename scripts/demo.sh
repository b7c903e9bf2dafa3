#!/usr/bin/env bash
# The main job at this stage: export a real model (torchvision mobilenet_v2, random weights,
# nothing downloaded), then inspect it, run it, check it against PyTorch, and benchmark it.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bash "$root/scripts/setup.sh"
bash "$root/scripts/build.sh"
build="${HML_BUILD_DIR:-$root/build}"
models="$build/models"
/usr/bin/python3 "$root/bench/models/export_torchvision.py" "$models" mobilenet_v2
hml="$build/src/cli/hybridml"
echo; echo "== hybridml inspect (first lines; the full report is in $models/mobilenet_v2.inspect.txt)"
"$hml" inspect "$models/mobilenet_v2.onnx" > "$models/mobilenet_v2.inspect.txt"
sed -n '1,12p' "$models/mobilenet_v2.inspect.txt"
grep -A8 '^cut points' "$models/mobilenet_v2.inspect.txt"
echo; echo "== hybridml infer (PyTorch's input; compare with PyTorch's output)"
"$hml" infer "$models/mobilenet_v2.onnx" --input "$models/mobilenet_v2.input.pb" \
  --output-dir "$models"
"$build/bench/compare_tensors" "$models/output_0.pb" "$models/mobilenet_v2.output.pb" 1e-4
echo; echo "== hybridml bench"
"$hml" bench "$models/mobilenet_v2.onnx" --iterations 30 --threads 1,2
echo; echo "next: bench/run_runtime_vs_peers.sh compares hybridml with OpenCV DNN, LibTorch and raw XNNPACK"
