#!/usr/bin/env bash
# Tunes FedProx's mu and FedAdam's server settings for issue 7's round target WITHOUT the test
# set: every run scores on 6,000 held-out training images (bench/federated --validation 6000),
# the clients share the other 54,000 (Dirichlet 0.3, 10 clients, the benchmark's client
# settings). FedAvg runs 60 rounds; each candidate runs 40 rounds and is ranked by the first
# round it reaches FedAvg's round-60 validation accuracy (then by its round-40 accuracy).
# The winner of each strategy is what bench/run_federated.sh then measures on the test set.
# Writes bench/results/federated-tune-*.json and prints the ranking.
# Environment: BUILD (default build; bench/federated must be built), THREADS (default 2),
# MUS (default "0.03 0.1 0.3 1"), ADAM (default "0.01:1e-3 0.03:1e-3 0.1:1e-3 0.03:1e-2
# 0.1:1e-2": server-lr:tau pairs; a blank value runs none), FEDAVG=0 to reuse an earlier
# FedAvg run's JSON, EXTRA (more bench/federated flags for every run, e.g. "--local-steps 150")
# with TAG (names that setting's JSON files: federated-tune-TAG-*.json).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
THREADS=${THREADS:-2}
MUS=${MUS:-"0.03 0.1 0.3 1"}
ADAM=${ADAM:-"0.01:1e-3 0.03:1e-3 0.1:1e-3 0.03:1e-2 0.1:1e-2"}
OUT=bench/results
PREFIX=federated-tune${TAG:+-$TAG}
mkdir -p "$OUT"
run() {  # name, rounds, flags...
  local name=$1 rounds=$2
  shift 2
  "$BUILD/bench/federated" --validation 6000 --rounds "$rounds" --threads "$THREADS" \
    --print-every 100 --json "$OUT/$PREFIX-$name.json" ${EXTRA:-} "$@" >/dev/null
  echo "  done $name" >&2
}
if [ "${FEDAVG:-1}" != 0 ]; then run fedavg 60 --runs fedavg; fi
for mu in $MUS; do run "fedprox-mu$mu" 40 --runs fedprox --prox-mu "$mu"; done
for pair in $ADAM; do
  run "fedadam-lr${pair%%:*}-tau${pair##*:}" 40 --runs fedadam --adam-lr "${pair%%:*}" \
    --adam-tau "${pair##*:}"
done
python3 - "$OUT" "$PREFIX" <<'PY'
import glob, json, sys
out, prefix = sys.argv[1], sys.argv[2]
fedavg = json.load(open(f"{out}/{prefix}-fedavg.json"))["runs"][0]["accuracy"]
target = fedavg[59]
print(f"FedAvg on validation: round 40 {100*fedavg[39]:.2f} %, round 60 {100*target:.2f} % (target)")
rows = []
for path in sorted(glob.glob(f"{out}/{prefix}-*.json")):
    name = path[len(out) + len(prefix) + 2:-5]
    if not name.startswith(("fedprox", "fedadam")):  # FedAvg, or another TAG's files
        continue
    acc = json.load(open(path))["runs"][0]["accuracy"]
    first = next((i + 1 for i, a in enumerate(acc) if a >= target), 0)
    rows.append((first if first else 999, -acc[-1], name, acc[-1], max(acc)))
print(f"{'candidate':28} {'round 40':>9} {'best':>7} {'reaches target':>15}")
for first, _, name, last, best in sorted(rows):
    print(f"{name:28} {100*last:8.2f}% {100*best:6.2f}% {first if first != 999 else 'no':>15}")
PY
