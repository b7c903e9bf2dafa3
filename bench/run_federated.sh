#!/usr/bin/env bash
# Issue 7's federated-learning benchmark: three runs of bench/federated on Fashion-MNIST split
# Dirichlet(0.3) across simulated clients (see bench/federated.cc for what each prints).
#   1. 10 clients, all 10 per round, 100 rounds: central, FedAvg, FedProx, FedAdam, FedAvgM and
#      FedAvg with int8 updates -> bench/results/federated-10-clients.json. FedProx's mu (0.3) and
#      FedAdam's server learning rate (0.03) are the best of bench/tune_federated.sh, which
#      tunes them on held-out training images, never on the test set.
#   2. 100 clients, 10 per round, 100 rounds, FedAvg -> federated-100-clients.json
#   3. 1,000 clients, 10 per round, 20 rounds, FedAvg: the memory check (clients hold as few as
#      one sample, so min-samples is 1) -> federated-1000-clients.json
# Environment: BUILD (default build), SKIP_BUILD=1 to use an existing build, ROUNDS (default
# 100) for runs 1 and 2, THREADS (default 2).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
ROUNDS=${ROUNDS:-100}
THREADS=${THREADS:-2}
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  bash scripts/setup.sh
  cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DHML_BUILD_BENCH=ON \
    -DCMAKE_CXX_COMPILER_LAUNCHER=ccache >/dev/null
  ninja -C "$BUILD" federated
fi
mkdir -p bench/results
"$BUILD/bench/federated" --rounds "$ROUNDS" --threads "$THREADS" --name 10-clients \
  --prox-mu 0.3 --adam-lr 0.03 --runs central,fedavg,fedprox,fedadam,fedavgm,fedavg-int8
"$BUILD/bench/federated" --clients 100 --per-round 10 --rounds "$ROUNDS" --threads "$THREADS" \
  --runs fedavg --name 100-clients
"$BUILD/bench/federated" --clients 1000 --per-round 10 --rounds 20 --local-steps 20 \
  --min-samples 1 --eval-every 5 --threads "$THREADS" --runs fedavg --name 1000-clients
