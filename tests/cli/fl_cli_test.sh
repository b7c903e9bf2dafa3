#!/usr/bin/env bash
# `hybridml fl start|status` and `hybridml serve --keys` end to end: a task file is validated and
# registered under <registry>/fl/, `fl status` shows it as registered, a server started with the
# registry keys loads it (its status.json then says "waiting" for devices), and --keys refuses
# --no-auth. The rounds themselves (JoinRound/SubmitUpdate, publish) are tested in
# tests/server/fl/federated_tasks_test.cc.
# Usage: fl_cli_test.sh PATH/TO/hybridml
set -uo pipefail
hml="$1"
source "$(dirname "$0")/../testing/cli_check.sh"
model=/usr/share/libonnx-testdata/data/pytorch-converted/test_Linear/model.onnx
tmp="$(mktemp -d)"; pid=""
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT
reg="$tmp/reg"; keys="$tmp/keys"

check keys-init 0 "" -- "$hml" keys init --dir "$keys"
check publish 0 "published lin version 1" -- "$hml" publish "$model" --name lin --semver 1.0.0 \
  --registry "$reg" --keys "$keys"

cat >"$tmp/task.json" <<'JSON'
{"name": "t1", "model": "lin", "gather_ms": 5000,
 "round": {"clients_per_round": 4, "over_selection": 1.5, "deadline_ms": 120000,
           "strategy": "fedadam", "codec": "int8"}}
JSON
printf '{"name": "t2", "model": "lin", "round": {"clients_per_round": 4, "deadlin_ms": 5}}' \
  >"$tmp/typo.json"
printf '{"name": "t3", "model": "nope"}' >"$tmp/nomodel.json"
printf '{"name": "t4", "model": "lin", "round": {"strategy": "sgd"}}' >"$tmp/badstrategy.json"

check status-empty 0 "no federated tasks in .*/fl" -- "$hml" fl status --registry "$reg"
check start-needs-task 106 "--task is required" -- "$hml" fl start --registry "$reg"
check start-typo 1 "INVALID_ARGUMENT.*unknown field 'deadlin_ms'" -- \
  "$hml" fl start --registry "$reg" --task "$tmp/typo.json"
check start-unknown-model 1 "NOT_FOUND.*model 'nope'" -- \
  "$hml" fl start --registry "$reg" --task "$tmp/nomodel.json"
check start-bad-strategy 1 "INVALID_ARGUMENT.*strategy 'sgd'" -- \
  "$hml" fl start --registry "$reg" --task "$tmp/badstrategy.json"
check start 0 "registered task t1: model lin from version 1, fedadam/weighted_mean, 4 clients per round \(6 selected, 4 needed\), deadline 120s" -- \
  "$hml" fl start --registry "$reg" --task "$tmp/task.json"
check start-twice 1 "ALREADY_EXISTS.*'t1' is already registered" -- \
  "$hml" fl start --registry "$reg" --task "$tmp/task.json"
check status-registered 0 "^t1 +lin +0 +registered +- +0 +0 +0/4 +- +- +-" -- \
  "$hml" fl status --registry "$reg"
check status-unknown-task 1 "NOT_FOUND.*no federated task 'zz'" -- \
  "$hml" fl status --registry "$reg" --task zz
check serve-keys-no-auth 1 "--keys .*needs authentication" -- \
  "$hml" serve --registry "$reg" --insecure --http-port 0 --grpc-port 0 --no-auth --keys "$keys"

"$hml" serve --registry "$reg" --insecure --http-port 0 --grpc-port 0 --keys "$keys" \
  --fl-tick-ms 50 >"$tmp/serve.out" 2>&1 &
pid=$!
for _ in $(seq 600); do  # up to 60 s on a loaded machine
  grep -q "federated task 't1' loaded" "$tmp/serve.out" && [ -f "$reg/fl/t1/status.json" ] && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
check serve-says-fl-on 0 "federated learning: tasks from .*/fl, tick 50 ms" -- cat "$tmp/serve.out"
check serve-loaded-task 0 "federated task 't1' loaded" -- cat "$tmp/serve.out"
check status-waiting 0 "^t1 +lin +1 +waiting +- +0 +0 +0/4 +- +- +-" -- \
  "$hml" fl status --registry "$reg" --task t1
kill -TERM "$pid"; wait "$pid"; rc=$?; pid=""
check serve-stops-cleanly 0 "" -- test "$rc" = 0
[ "$fail" = 0 ] && echo PASS
exit "$fail"
