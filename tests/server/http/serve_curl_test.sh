#!/usr/bin/env bash
# End-to-end: publish a model into a temp registry, run `hybridml serve --insecure --http-port 0`,
# and talk to it with curl: readiness, model metadata, an infer request (output shape), /metrics
# with the request counter, an OTA file Range fetch, path traversal refused; then SIGTERM must
# drain and exit 0.
# Usage: serve_curl_test.sh PATH/TO/hybridml
set -uo pipefail
hml="$1"
source "$(dirname "$0")/serve_test_setup.sh"

"$hml" serve --registry "$tmp/reg" --http-port 0 >"$tmp/noinsecure.out" 2>&1 \
  && fail "serve without --insecure must fail"
grep -q "pass --tls-cert/--tls-key, or --insecure" "$tmp/noinsecure.out" \
  || fail "no TLS message"

"$hml" serve --registry "$tmp/reg" --insecure --http-port 0 --grpc-port 0 >"$tmp/serve.out" 2>&1 &
pid=$!
port=""
for _ in $(seq 600); do  # up to 60 s: a loaded CI machine starts slowly
  port="$(sed -n 's/^http listening on [^:]*:\([0-9]*\).*/\1/p' "$tmp/serve.out")"
  [ -n "$port" ] && grep -q "^grpc listening on 127.0.0.1:[0-9]" "$tmp/serve.out" && break
  sleep 0.1
done
[ -n "$port" ] || { cat "$tmp/serve.out"; fail "server did not print its port"; }
grep -q "^grpc listening on 127.0.0.1:[0-9]" "$tmp/serve.out" || fail "no gRPC listener"
url="http://127.0.0.1:$port"

[ "$(curl -s -o /dev/null -w '%{http_code}' "$url/v2/health/ready")" = 200 ] || fail "ready"
meta="$(curl -sf "$url/v2/models/relu")" || fail "GET metadata"
grep -q '"name":"relu"' <<<"$meta" || fail "metadata: $meta"
[ "$(curl -s -o /dev/null -w '%{http_code}' "$url/v2/models/nope")" = 404 ] || fail "404"

data="$(seq -s, -30 29)"
body="{\"inputs\":[{\"name\":\"x\",\"shape\":[3,4,5],\"datatype\":\"FP32\",\"data\":[$data]}]}"
out="$(curl -sf -X POST -H 'Content-Type: application/json' -d "$body" \
  "$url/v2/models/relu/infer")" || fail "infer"
echo "$out" | grep -q '"shape":\[3,4,5\]' || fail "infer output shape: $out"
echo "$out" | grep -q '"data":\[0,0,' || fail "infer output data: $out"

# Whole responses into variables, not `curl | grep -q`: grep -q exits at its first match, curl
# then dies of SIGPIPE and pipefail fails the check on a loaded machine.
metrics="$(curl -sf "$url/metrics")" || fail "GET /metrics"
grep -qF 'hml_inference_requests_total{model="relu",version="1",protocol="http",code="OK"} 1' \
  <<<"$metrics" || fail "metrics request counter: $(grep hml_inference_requests <<<"$metrics")"

size="$(stat -c %s "$tmp/reg/repo/targets.json")"
code="$(curl -s -o "$tmp/part" -w '%{http_code}' -H 'Range: bytes=0-9' "$url/ota/targets.json")"
[ "$code" = 206 ] || fail "range status $code"
cmp "$tmp/part" <(head -c 10 "$tmp/reg/repo/targets.json") || fail "range bytes"
[ "$size" -gt 10 ] || fail "targets.json too small"
code="$(curl -s -o /dev/null -w '%{http_code}' --path-as-is "$url/ota/../registry.db")"
[ "$code" = 400 ] || fail "path traversal got $code"

kill -TERM "$pid"; wait "$pid"; rc=$?; pid=""
[ "$rc" = 0 ] || fail "serve exited $rc after SIGTERM"
echo "PASS"
