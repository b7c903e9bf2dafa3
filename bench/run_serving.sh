#!/bin/bash
# bench/serving (issue 5): `hybridml serve` under open-loop load from `hybridml loadgen`, over
# gRPC and HTTP, with dynamic batching and without, on the teacher CNN, on both cores.
#
#   bench/run_serving.sh [MODEL.onnx]
#
# MODEL defaults to <BUILD_DIR>/train_runs/teacher.onnx (the zoo's teacher-cnn as trained by
# `hybridml train --arch teacher-cnn`); without it, and with a CLI built with training, the
# zoo's teacher-cnn is exported after one short epoch (weights do not matter for speed).
#
# Steps:
#   1. FLOPs per sample of MODEL (`hybridml inspect`).
#   2. The runtime alone, in process, on the same cores and batch policy (bench/serving_batcher
#      --runtime_only: INSTANCES Sessions x 1 thread at batch MAX_BATCH and at batch 1), and the
#      machine's fp32 GEMM throughput through the runtime (--gemm 256).
#   3. A temp registry holding MODEL as "teacher" (keys init, publish, rollout).
#   4. Two `hybridml serve --insecure` processes (and --no-auth when this serve has it), one with
#      dynamic batching and one with --no-batching, each with INSTANCES instances, MAX_BATCH,
#      DELAY_US, QUEUE, HTTP_THREADS; only one is loaded at a time (the other idles). Over gRPC,
#      then HTTP: a rate sweep (fractions of the runtime alone), the two configurations
#      alternating rate by rate so that other work on this shared machine hits both alike; two
#      bisection steps of the knee (highest rate with p99 <= 50 ms and <= 1 % not OK) between
#      the last passing and the first failing rate; overload at 3x the dynamic-batching knee.
#   5. bench/serving_report.py prints the table and writes <source>/bench/results/serving.json.
# The server and the load generator share this machine's cores (2 here): the loadgen's CPU time
# is taken from the server's, which the report states, with its CPU use per point and the CPU
# that other processes used during each loadgen run (cpu_others.txt).
#
# Environment (defaults): BUILD_DIR (<source>/build; its src/cli/hybridml and
# bench/serving_batcher are built there unless SKIP_BUILD=1), OUT_DIR (<BUILD_DIR>/serving_bench),
# INSTANCES (2), MAX_BATCH (8), DELAY_US (1000), QUEUE (64), HTTP_THREADS (128: more than QUEUE +
# INSTANCES x MAX_BATCH, so that HTTP overload reaches the queue limit and gets 429s),
# CONNECTIONS (128, HTTP keep-alive connections of the loadgen), DURATION (4 s per point),
# WARMUP (1 s), TIMEOUT_MS (1000, the requests' deadline), FRACTIONS (the sweep, as fractions of
# the runtime alone at batch MAX_BATCH: 0.05,0.1,0.2,0.3,0.4,0.5,0.6,0.8,1.0).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$ROOT/build}"
OUT_DIR="${OUT_DIR:-$BUILD_DIR/serving_bench}"
HYBRIDML="$BUILD_DIR/src/cli/hybridml"
BATCHER="$BUILD_DIR/bench/serving_batcher"
INSTANCES="${INSTANCES:-2}"
MAX_BATCH="${MAX_BATCH:-8}"
DELAY_US="${DELAY_US:-1000}"
QUEUE="${QUEUE:-64}"
HTTP_THREADS="${HTTP_THREADS:-128}"
CONNECTIONS="${CONNECTIONS:-128}"
DURATION="${DURATION:-4}"
WARMUP="${WARMUP:-1}"
TIMEOUT_MS="${TIMEOUT_MS:-1000}"
FRACTIONS="${FRACTIONS:-0.05,0.1,0.2,0.3,0.4,0.5,0.6,0.8,1.0}"
REPORT="$ROOT/bench/serving_report.py"

if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
  if [[ ! -f "$BUILD_DIR/build.ninja" ]]; then
    cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release
  fi
  ninja -C "$BUILD_DIR" hybridml serving_batcher
fi
rm -rf "$OUT_DIR"
mkdir -p "$OUT_DIR" "$ROOT/bench/results"

MODEL="${1:-$BUILD_DIR/train_runs/teacher.onnx}"
if [[ ! -f "$MODEL" ]]; then
  if "$HYBRIDML" train --help >/dev/null 2>&1; then
    echo "== exporting the zoo's teacher-cnn (one epoch; weights do not matter for speed)"
    MODEL="$OUT_DIR/teacher-cnn.onnx"
    "$HYBRIDML" train --arch teacher-cnn --epochs 1 --no-progress --out "$MODEL"
  else
    echo "run_serving.sh: no model at $MODEL and this hybridml has no 'train' (pass MODEL.onnx)" >&2
    exit 1
  fi
fi

echo "== 1. FLOPs of $MODEL"
"$HYBRIDML" inspect "$MODEL" --batch 1 | tee "$OUT_DIR/inspect.txt" | sed -n 1,5p

echo "== 2. runtime alone ($INSTANCES x 1 thread, batch $MAX_BATCH and 1) and fp32 GEMM"
"$BATCHER" --model "$MODEL" --runtime_only --instances "$INSTANCES" --max_batch "$MAX_BATCH" \
  --duration_ms 2000 --gemm 256 --json "$OUT_DIR/runtime.json"
RUNTIME_ALONE="$(python3 "$REPORT" runtime-alone "$OUT_DIR/runtime.json")"
RATES="$(python3 "$REPORT" rates "$RUNTIME_ALONE" "$FRACTIONS")"
echo "runtime alone: $RUNTIME_ALONE samples/s; sweep rates: $RATES"

echo "== 3. registry"
REG="$OUT_DIR/registry"
"$HYBRIDML" keys init --dir "$OUT_DIR/keys" >/dev/null
"$HYBRIDML" publish "$MODEL" --name teacher --semver 1.0.0 --registry "$REG" \
  --keys "$OUT_DIR/keys" >/dev/null
"$HYBRIDML" rollout --name teacher --version 1 --channel stable --percent 100 --registry "$REG" \
  --keys "$OUT_DIR/keys" >/dev/null

NO_AUTH=()
if "$HYBRIDML" serve --help 2>&1 | grep -q -- '--no-auth'; then NO_AUTH=(--no-auth); fi

# One serve per batching configuration, side by side (only one is loaded at a time).
declare -A SERVE_PID GRPC_PORT HTTP_PORT
stop_serves() {
  for name in "${!SERVE_PID[@]}"; do
    kill -TERM "${SERVE_PID[$name]}" 2>/dev/null || true
    wait "${SERVE_PID[$name]}" 2>/dev/null || true
  done
  SERVE_PID=()
}
trap stop_serves EXIT

# start_serve NAME EXTRA_FLAGS...: sets SERVE_PID, GRPC_PORT and HTTP_PORT [NAME].
start_serve() {
  local name="$1"
  shift
  local log="$OUT_DIR/serve_$name.log"
  "$HYBRIDML" serve --registry "$REG" --insecure "${NO_AUTH[@]}" --http-port 0 --grpc-port 0 \
    --instances "$INSTANCES" --max-batch "$MAX_BATCH" --batch-delay-us "$DELAY_US" \
    --max-queue "$QUEUE" --http-threads "$HTTP_THREADS" "$@" >"$log" 2>&1 &
  SERVE_PID[$name]=$!
  for _ in $(seq 1 100); do
    if grep -q '^grpc listening' "$log"; then break; fi
    if ! kill -0 "${SERVE_PID[$name]}" 2>/dev/null; then
      echo "run_serving.sh: serve exited:" >&2
      cat "$log" >&2
      exit 1
    fi
    sleep 0.1
  done
  GRPC_PORT[$name]="$(sed -n 's/^grpc listening on [^:]*:\([0-9]*\).*/\1/p' "$log")"
  HTTP_PORT[$name]="$(sed -n 's/^http listening on [^:]*:\([0-9]*\).*/\1/p' "$log")"
  if [[ -z "${GRPC_PORT[$name]}" || -z "${HTTP_PORT[$name]}" ]]; then
    echo "run_serving.sh: serve did not report its ports:" >&2
    cat "$log" >&2
    exit 1
  fi
}

# Busy CPU time of the whole machine (user, nice, system, irq, softirq, steal), of serve, and of
# this shell's finished children (the loadgen runs), in seconds.
HZ="$(getconf CLK_TCK)"
machine_cpu() { awk -v hz="$HZ" '/^cpu /{print ($2+$3+$4+$7+$8+$9)/hz}' /proc/stat; }
serve_cpu() { awk -v hz="$HZ" '{print ($14+$15)/hz}' "/proc/${SERVE_PID[$1]}/stat"; }
# (`times` must run in this shell, not in a $(...) subshell, to see its children.)
children_cpu() {
  times >"$OUT_DIR/.times"
  CHILDREN_CPU="$(tail -1 "$OUT_DIR/.times" |
    awk '{s=0; for(i=1;i<=2;i++){split($i,a,/[ms]/); s+=a[1]*60+a[2]} print s}')"
}

# loadgen BATCHING PROTOCOL JSON FLAGS...
# Appends "<json> <cores used by other processes during the run>" to cpu_others.txt: the
# machine's busy time minus serve's and the loadgen's, over the run's wall time. Other work on
# the machine (e.g. compilers) disturbs the numbers; the report shows it.
loadgen() {
  local batching="$1" protocol="$2" json="$3"
  shift 3
  local port="${GRPC_PORT[$batching]}"
  [[ "$protocol" == http ]] && port="${HTTP_PORT[$batching]}"
  local m0 s0 c0 t0 m1 s1 c1 t1
  children_cpu; c0="$CHILDREN_CPU"
  m0="$(machine_cpu)"; s0="$(serve_cpu "$batching")"; t0="$(date +%s.%N)"
  "$HYBRIDML" loadgen --target "127.0.0.1:$port" --protocol "$protocol" --model teacher \
    --duration "$DURATION" --warmup "$WARMUP" --timeout-ms "$TIMEOUT_MS" \
    --connections "$CONNECTIONS" --json "$json" "$@"
  m1="$(machine_cpu)"; s1="$(serve_cpu "$batching")"; t1="$(date +%s.%N)"
  children_cpu; c1="$CHILDREN_CPU"
  echo "$(basename "$json") $(awk -v a="$m0" -v b="$m1" -v c="$s0" -v d="$s1" \
    -v e="$c0" -v f="$c1" -v g="$t0" -v h="$t1" \
    'BEGIN{printf "%.3f", ((b-a)-(d-c)-(f-e))/(h-g)}')" >>"$OUT_DIR/cpu_others.txt"
}

echo "== 4. serve + loadgen"
start_serve dynamic
start_serve none --no-batching
echo "serve, dynamic batching: grpc :${GRPC_PORT[dynamic]}, http :${HTTP_PORT[dynamic]}"
echo "serve, no batching:      grpc :${GRPC_PORT[none]}, http :${HTTP_PORT[none]}"
IFS=, read -r -a RATE_LIST <<<"$RATES"
for protocol in grpc http; do
  # The two configurations alternate rate by rate, so that other work on the machine (it is
  # shared) disturbs both alike.
  for i in "${!RATE_LIST[@]}"; do
    for batching in dynamic none; do
      echo "-- $protocol, $batching batching: ${RATE_LIST[$i]}/s"
      loadgen "$batching" "$protocol" "$OUT_DIR/${protocol}_${batching}.r$i.json" \
        --rate "${RATE_LIST[$i]}" --quiet | tail -1
    done
  done
  # Two bisection steps between the last rate within budget and the first beyond it.
  for step in 1 2; do
    for batching in dynamic none; do
      base="$OUT_DIR/${protocol}_${batching}"
      mid="$(python3 "$REPORT" bisect "$base".*.json)"
      if [[ -z "$mid" ]]; then continue; fi
      echo "-- $protocol, $batching batching: knee bisection at $mid/s"
      loadgen "$batching" "$protocol" "$base.bisect$step.json" --rate "$mid" --quiet | tail -1
    done
  done
  overload="$(python3 "$REPORT" overload-rate "$OUT_DIR/${protocol}_dynamic".*.json)"
  echo "-- $protocol, dynamic batching: overload at 3x the knee = $overload/s"
  loadgen dynamic "$protocol" "$OUT_DIR/${protocol}_overload.json" --rate "$overload" --quiet |
    tail -1
done
stop_serves

echo "== 5. report"
python3 "$REPORT" report "$OUT_DIR" "$MODEL" "$ROOT/bench/results/serving.json"
