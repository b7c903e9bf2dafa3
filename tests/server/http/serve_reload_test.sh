#!/usr/bin/env bash
# End-to-end: `hybridml serve` follows its registry while another process changes it. A publish +
# rollout made with the CLI is served without a restart (the model metadata lists the new
# version and `latest` answers from it), and a rollback unloads the bad version again.
# Usage: serve_reload_test.sh PATH/TO/hybridml
set -uo pipefail
hml="$1"
source "$(dirname "$0")/serve_test_setup.sh"

"$hml" serve --registry "$tmp/reg" --insecure --http-port 0 --grpc-port -1 \
  --reload-interval-ms 100 >"$tmp/serve.out" 2>&1 &
pid=$!
port=""
for _ in $(seq 600); do
  port="$(sed -n 's/^http listening on [^:]*:\([0-9]*\).*/\1/p' "$tmp/serve.out")"
  [ -n "$port" ] && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
[ -n "$port" ] || { cat "$tmp/serve.out"; fail "server did not print its port"; }
url="http://127.0.0.1:$port"

# Waits up to 30 s until the metadata of "relu" lists exactly the versions $1 (e.g. '"1","2"').
wait_versions() {
  local meta=""
  for _ in $(seq 300); do
    meta="$(curl -s "${auth[@]}" "$url/v2/models/relu")"
    grep -q "\"versions\":\[$1\]" <<<"$meta" && return 0
    sleep 0.1
  done
  fail "versions [$1] not served; metadata: $meta; server log: $(cat "$tmp/serve.out")"
}
wait_versions '"1"'

# Another process publishes and rolls out version 2 while the server runs.
"$hml" publish "$model" --name relu --semver 2.0.0 --registry "$tmp/reg" --keys "$tmp/keys" \
  >/dev/null || fail "publish v2"
"$hml" rollout --name relu --version 2 --channel stable --percent 100 --registry "$tmp/reg" \
  --keys "$tmp/keys" >/dev/null || fail "rollout v2"
wait_versions '"1","2"'
grep -q "registry sync: loaded model 'relu' version 2" "$tmp/serve.out" \
  || fail "no log line for the load: $(cat "$tmp/serve.out")"
data="$(seq -s, -30 29)"
body="{\"inputs\":[{\"name\":\"x\",\"shape\":[3,4,5],\"datatype\":\"FP32\",\"data\":[$data]}]}"
out="$(curl -sf "${auth[@]}" -X POST -H 'Content-Type: application/json' -d "$body" \
  "$url/v2/models/relu/infer")" || fail "infer after reload"
grep -q '"model_version":"2"' <<<"$out" || fail "latest did not answer from version 2: $out"

# Rollback: version 2 leaves the channel and is unloaded; latest is version 1 again.
"$hml" rollback --name relu --channel stable --registry "$tmp/reg" --keys "$tmp/keys" \
  >/dev/null || fail "rollback"
wait_versions '"1"'
grep -q "registry sync: unloaded model 'relu' version 2" "$tmp/serve.out" \
  || fail "no log line for the unload"

kill -TERM "$pid"; wait "$pid"; rc=$?; pid=""
[ "$rc" = 0 ] || fail "serve exited $rc after SIGTERM"
echo "PASS"
