#!/usr/bin/env bash
# End-to-end checks of the `hybridml` command on models from the ONNX test suite.
# Usage: cli_test.sh PATH/TO/hybridml
set -uo pipefail
hml="$1"
data=/usr/share/libonnx-testdata/data
source "$(dirname "$0")/../testing/cli_check.sh"
model="$data/pytorch-converted/test_Conv2d/model.onnx"
check inspect-lists-ops 0 "Conv x1" -- "$hml" inspect "$model"
check inspect-shows-flops 0 "FLOPs:" -- "$hml" inspect "$model"
check infer-random 0 "ran on (xnnpack|reference)" -- "$hml" infer "$model"
check infer-reference 0 "ran on reference" -- "$hml" infer "$model" --backend reference
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
check infer-with-input 0 "written to" -- "$hml" infer "$data/node/test_relu/model.onnx" \
  --input "$data/node/test_relu/test_data_set_0/input_0.pb" --output-dir "$tmp/out"
check infer-output-matches 0 "" -- cmp "$tmp/out/output_0.pb" "$tmp/out/output_0.pb"
check bench-table 0 "p99 us" -- "$hml" bench "$model" --iterations 3 --warmup 1 --threads 1 \
  --json "$tmp/bench.json"
check bench-json 0 '"backend": "reference"' -- cat "$tmp/bench.json"
check missing-file 1 "NOT_FOUND.*no/such.onnx" -- "$hml" inspect /no/such.onnx
printf 'garbage' > "$tmp/bad.onnx"
check corrupt-file 1 "INVALID_ARGUMENT.*not a valid ModelProto" -- "$hml" infer "$tmp/bad.onnx"
check bad-shape-flag 1 "must look like" -- "$hml" inspect "$model" --shape oops
check wrong-input-count 1 "inputs but 2 --input" -- "$hml" infer "$data/node/test_relu/model.onnx" \
  --input "$data/node/test_relu/test_data_set_0/input_0.pb" \
  --input "$data/node/test_relu/test_data_set_0/input_0.pb"
check unknown-backend 1 "backend 'gpu' is not registered" -- "$hml" infer "$model" --backend gpu
check compress-prune 0 "sparsity 0.5000" -- "$hml" compress "$model" --prune-magnitude 0.5 \
  -o "$tmp/pruned.onnx"
check compressed-model-runs 0 "ran on" -- "$hml" infer "$tmp/pruned.onnx"
check compress-int8-old-opset 1 "per-channel quantization needs opset >= 13" -- \
  "$hml" compress "$model" --int8 -o "$tmp/q.onnx"
check compress-refuses-overwrite 1 "" -- "$hml" compress "$tmp/pruned.onnx" --prune-magnitude 0.1 \
  -o "$tmp/pruned.onnx"
check no-subcommand 106 "" -- "$hml"
exit $fail
