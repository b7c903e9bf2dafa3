#!/bin/bash
# Does distillation pay? Trains the student CNN on Fashion-MNIST on the labels alone and distilled
# from a teacher, with the same seeds, epochs and optimiser, for several temperatures and alphas,
# and prints one table of test accuracies (mean and per seed) plus
# bench/results/distill_seeds.json. One run takes about 2 minutes with 1 thread.
#
# Usage: bench/run_distill_seeds.sh TEACHER.onnx [OUT_DIR]
# Environment: SEEDS (default "1 2 3"), CONFIGS (default "4:0.5 2:0.5 4:0.3", each T:alpha),
#   EPOCHS (default 10), HYBRIDML (default <build>/src/cli/hybridml), BUILD_DIR.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$ROOT/build}"
HYBRIDML="${HYBRIDML:-$BUILD_DIR/src/cli/hybridml}"
SEEDS="${SEEDS:-1 2 3}"
CONFIGS="${CONFIGS:-4:0.5 2:0.5 4:0.3}"
EPOCHS="${EPOCHS:-10}"
if [[ $# -lt 1 || ! -f "$1" ]]; then
  echo "usage: $0 TEACHER.onnx [OUT_DIR]  (train one with: hybridml train --arch teacher-cnn ...)" >&2
  exit 2
fi
TEACHER="$1"
OUT="${2:-$BUILD_DIR/distill_seeds}"
mkdir -p "$OUT" "$ROOT/bench/results"
[[ -x "$HYBRIDML" ]] || { echo "$0: $HYBRIDML is not built (bash scripts/build.sh)" >&2; exit 1; }

COMMON=(train --arch student-cnn --epochs "$EPOCHS" --optimizer sgd --lr 0.05 --momentum 0.9
        --weight-decay 5e-4 --schedule cosine --batch 128 --no-progress)

# run NAME SEED EXTRA... -> prints the test accuracy; the log stays in $OUT/NAME_sSEED.log.
run() {
  local name="$1" seed="$2"; shift 2
  local log="$OUT/${name}_s${seed}.log"
  if ! grep -q '^test accuracy' "$log" 2>/dev/null; then
    "$HYBRIDML" "${COMMON[@]}" --seed "$seed" --out "$OUT/${name}_s${seed}.onnx" "$@" >"$log" 2>&1
  fi
  sed -n 's/^test accuracy \([0-9.]*\)%.*/\1/p' "$log"
}

rows=()
json="["
row() {  # row NAME EXTRA...
  local name="$1"; shift
  local accs=() sum=0
  for s in $SEEDS; do
    local a; a="$(run "$name" "$s" "$@")"
    accs+=("$a"); sum="$(awk -v x="$sum" -v y="$a" 'BEGIN{print x+y}')"
    echo "  $name seed $s: $a %" >&2
  done
  local mean; mean="$(awk -v x="$sum" -v n="${#accs[@]}" 'BEGIN{printf "%.2f", x/n}')"
  rows+=("$(printf '| %-22s | %6s | %s |' "$name" "$mean" "${accs[*]}")")
  [[ "$json" == "[" ]] || json+=","
  json+="{\"config\":\"$name\",\"mean\":$mean,\"per_seed\":[$(IFS=,; echo "${accs[*]}")]}"
}

row labels-only
for c in $CONFIGS; do
  t="${c%%:*}"; a="${c##*:}"
  row "distill-T${t}-a${a}" --teacher "$TEACHER" --temperature "$t" --alpha "$a"
done
json+="]"

echo "student-cnn, $EPOCHS epochs, seeds: $SEEDS, teacher: $TEACHER"
echo "| config                 |   mean | test accuracy per seed (%) |"
echo "|---|---|---|"
printf '%s\n' "${rows[@]}"
echo "{\"epochs\":$EPOCHS,\"seeds\":\"$SEEDS\",\"teacher\":\"$TEACHER\",\"rows\":$json}" \
  >"$ROOT/bench/results/distill_seeds.json"
