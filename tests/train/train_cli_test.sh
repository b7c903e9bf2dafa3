#!/usr/bin/env bash
# End-to-end checks of `hybridml train` on tiny datasets written here (fast: no Fashion-MNIST).
# Usage: train_cli_test.sh PATH/TO/hybridml
set -uo pipefail
hml="$1"
source "$(dirname "$0")/../testing/cli_check.sh"
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
# Two separable classes in 3-D: class = (x0 > x1).
{
  echo "x0,x1,x2,label"
  for i in $(seq 0 299); do
    a=$(( (i * 37) % 100 )); b=$(( (i * 61 + 13) % 100 ))
    [ "$a" = "$b" ] && continue
    echo "$a.0,$b.0,$(( i % 7 )).5,$(( a > b ? 1 : 0 ))"
  done
} > "$tmp/data.csv"
check csv-trains 0 "validation accuracy" -- "$hml" train --data "csv:$tmp/data.csv" --arch mlp \
  --epochs 3 --batch 16 --optimizer adam --lr 0.01 --schedule cosine \
  --out "$tmp/mlp.onnx"
check csv-model-written 0 "Gemm x2" -- "$hml" inspect "$tmp/mlp.onnx"
check csv-model-runs 0 "ran on" -- "$hml" infer "$tmp/mlp.onnx"
check checkpoint 0 "checkpoint: epoch 2" -- "$hml" train --data "csv:$tmp/data.csv" \
  --epochs 2 --no-progress --checkpoint "$tmp/ckpt.onnx"
check checkpoint-state-written 0 "" -- test -s "$tmp/ckpt.onnx.state"
check fine-tune-from-checkpoint 0 "test accuracy|validation accuracy" -- "$hml" train \
  --data "csv:$tmp/data.csv" --model "$tmp/ckpt.onnx" --epochs 1 --no-progress
# --resume continues a killed run (bit-identical: tests/train/trainer_test.cc); a finished run
# has nothing to resume, and other options are named.
check resume-finished 1 "FAILED_PRECONDITION.*finished run" -- "$hml" train \
  --data "csv:$tmp/data.csv" --epochs 2 --no-progress --checkpoint "$tmp/ckpt.onnx" --resume
check resume-other-options 1 "INVALID_ARGUMENT.*other options.*batch 64.*batch 32" -- "$hml" \
  train --data "csv:$tmp/data.csv" --epochs 2 --batch 32 --no-progress \
  --checkpoint "$tmp/ckpt.onnx" --resume
check resume-needs-checkpoint 1 "--resume needs --checkpoint" -- "$hml" train \
  --data "csv:$tmp/data.csv" --resume --no-progress
check fine-tune-onnx 0 "wrote" -- "$hml" train --data "csv:$tmp/data.csv" --model "$tmp/mlp.onnx" \
  --epochs 1 --no-progress --out "$tmp/mlp2.onnx"
# Knowledge distillation from the MLP trained above.
check distill 0 "teacher: .*mlp.onnx.*temperature 2, alpha 0.5" -- "$hml" train \
  --data "csv:$tmp/data.csv" --arch mlp --teacher "$tmp/mlp.onnx" --temperature 2 --alpha 0.5 \
  --epochs 1 --no-progress
check distill-missing-teacher 1 "NOT_FOUND.*--teacher .*no-such-teacher.onnx" -- "$hml" train \
  --data "csv:$tmp/data.csv" --teacher "$tmp/no-such-teacher.onnx" --no-progress
printf 'not an onnx model' > "$tmp/corrupt.onnx"
check distill-corrupt-teacher 1 "--teacher .*corrupt.onnx" -- "$hml" train \
  --data "csv:$tmp/data.csv" --teacher "$tmp/corrupt.onnx" --no-progress
check distill-bad-alpha 1 "INVALID_ARGUMENT.*alpha must be in \\[0, 1\\]" -- "$hml" train \
  --data "csv:$tmp/data.csv" --teacher "$tmp/mlp.onnx" --alpha 1.5 --no-progress
check distill-bad-temperature 1 "INVALID_ARGUMENT.*temperature must be" -- "$hml" train \
  --data "csv:$tmp/data.csv" --teacher "$tmp/mlp.onnx" --temperature 0 --no-progress
# A usage error: CLI11 exits with its own code (107, RequiresError), like cli_test.sh's 106.
check distill-alpha-needs-teacher 107 "--alpha requires --teacher" -- "$hml" train \
  --data "csv:$tmp/data.csv" --alpha 0.5 --no-progress
# Compression scored on data: calibration on the training part, accuracy on a held-out 10 %.
check compress-with-data 0 "accuracy on 30 samples of csv" -- "$hml" compress "$tmp/mlp.onnx" \
  --data "csv:$tmp/data.csv" --int8 --calibration-samples 32 --iterations 1 -o "$tmp/mlp8.onnx" \
  --json "$tmp/report.json"
check compress-json 0 '"name":"int8".*"accuracy":0\.[0-9]' -- cat "$tmp/report.json"
printf 'x0,x1,x2,label\n' > "$tmp/empty.csv"
check compress-empty-calibration 1 "INVALID_ARGUMENT.*empty.csv: no data rows" -- "$hml" compress \
  "$tmp/mlp.onnx" --data "csv:$tmp/empty.csv" --int8 -o "$tmp/never.onnx"
printf 'x0,x1,x2,label\n1,2,3,0\n' > "$tmp/one.csv"
check compress-too-few-samples 1 "1 samples are too few" -- "$hml" compress "$tmp/mlp.onnx" \
  --data "csv:$tmp/one.csv" --int8 -o "$tmp/never.onnx"
check compress-failure-writes-nothing 1 "" -- test -e "$tmp/never.onnx"
# Magnitude pruning, then fine-tuning that keeps the zeros.
check prune-for-fine-tuning 0 "sparsity 0.5000" -- "$hml" compress "$tmp/mlp.onnx" \
  --data "csv:$tmp/data.csv" --prune-magnitude 0.5 --iterations 1 -o "$tmp/sparse.onnx"
check fine-tune-pruned 0 "wrote" -- "$hml" train --data "csv:$tmp/data.csv" \
  --model "$tmp/sparse.onnx" --keep-sparsity --epochs 1 --no-progress --out "$tmp/sparse_ft.onnx"
# --prune-magnitude 0 zeroes nothing and reports the sparsity the model already has.
check fine-tuned-keeps-sparsity 0 "sparsity 0.5000" -- "$hml" compress "$tmp/sparse_ft.onnx" \
  --prune-magnitude 0 --iterations 1 -o "$tmp/sparse2.onnx"
check fine-tuning-without-keep-refills 0 "sparsity 0\\.[0-3]" -- bash -c "'$hml' train \
  --data 'csv:$tmp/data.csv' --model '$tmp/sparse.onnx' --weight-decay 1e-3 --epochs 1 \
  --no-progress --out '$tmp/refilled.onnx' && '$hml' compress '$tmp/refilled.onnx' \
  --prune-magnitude 0 --iterations 1 -o '$tmp/refilled2.onnx'"
# A hyper-parameter sweep: a leaderboard ranked on validation, the best model kept and written.
check sweep 0 "best: lr [0-9.]+ batch (16|32) width 0.1 \\(validation accuracy" -- "$hml" train --data "csv:$tmp/data.csv" \
  --arch mlp --sweep-lr 0.001,0.05 --sweep-batch 16,32 --sweep-width 0.1 --epochs 1 \
  --no-progress --out "$tmp/best.onnx"
check sweep-best-written 0 "Gemm x2" -- "$hml" inspect "$tmp/best.onnx"
check sweep-bad-axis 1 "INVALID_ARGUMENT.*learning rates must be > 0" -- "$hml" train \
  --data "csv:$tmp/data.csv" --sweep-lr 0.1,-1 --no-progress
check sweep-width-needs-arch 1 "apply to --arch" -- "$hml" train --data "csv:$tmp/data.csv" \
  --model "$tmp/mlp.onnx" --sweep-width 0.5,1 --no-progress
printf 'x0,x1,label\n1,2,0\n1,oops,1\n' > "$tmp/bad.csv"
check csv-bad-cell 1 "INVALID_ARGUMENT.*bad.csv:3 column 2" -- "$hml" train --data "csv:$tmp/bad.csv"
check missing-dataset 1 "NOT_FOUND.*no/such/dir/train-images" -- \
  "$hml" train --data fashion-mnist:/no/such/dir
check bad-data-spec 1 "expected fashion-mnist" -- "$hml" train --data parquet:x
check bad-optimizer 1 "expected sgd or adam" -- "$hml" train --data "csv:$tmp/data.csv" \
  --optimizer lbfgs
exit $fail
