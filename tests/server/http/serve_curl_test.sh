#!/usr/bin/env bash
# End-to-end: publish a model into a temp registry, run `hybridml serve --insecure --http-port 0`,
# and talk to it with curl: readiness, model metadata, an infer request (output shape), /metrics
# with the request counter, an OTA file Range fetch, path traversal refused; authentication: the
# admin key from `hybridml auth admin-key create` is sent with every request, a request without
# it (or with a wrong or revoked one) gets 401 with `WWW-Authenticate: Bearer`, health and
# /metrics stay open, and `hybridml auth admin-key revoke` run while the server runs takes effect
# on the next request; `serve --no-auth` opens everything. SIGTERM must drain and exit 0.
# Usage: serve_curl_test.sh PATH/TO/hybridml
set -uo pipefail
hml="$1"
source "$(dirname "$0")/serve_test_setup.sh"

"$hml" serve --registry "$tmp/reg" --http-port 0 >"$tmp/noinsecure.out" 2>&1 \
  && fail "serve without --insecure must fail"
grep -q "pass --tls-cert/--tls-key, or --insecure" "$tmp/noinsecure.out" \
  || fail "no TLS message"

# Starts serve with the given extra flags; sets pid, port and url.
start() {
  "$hml" serve --registry "$tmp/reg" --insecure --http-port 0 --grpc-port 0 "$@" \
    >"$tmp/serve.out" 2>&1 &
  pid=$!
  port=""
  for _ in $(seq 600); do  # up to 60 s: a loaded CI machine starts slowly
    port="$(sed -n 's/^http listening on [^:]*:\([0-9]*\).*/\1/p' "$tmp/serve.out")"
    [ -n "$port" ] && grep -q "^auth " "$tmp/serve.out" && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  [ -n "$port" ] || { cat "$tmp/serve.out"; fail "server did not print its port"; }
  grep -q "^grpc listening on 127.0.0.1:[0-9]" "$tmp/serve.out" || fail "no gRPC listener"
  url="http://127.0.0.1:$port"
}
stop() {
  kill -TERM "$pid"; wait "$pid"; local rc=$?; pid=""
  [ "$rc" = 0 ] || fail "serve exited $rc after SIGTERM"
}
# The status code of a GET of $1 with the extra curl arguments that follow.
code() { local path="$1"; shift; curl -s -o /dev/null -w '%{http_code}' "$@" "$url$path"; }

start
grep -q "^auth on" "$tmp/serve.out" || fail "auth is not on by default: $(cat "$tmp/serve.out")"
[ "$(code /v2/health/ready)" = 200 ] || fail "ready must be open"
[ "$(code /healthz)" = 200 ] || fail "/healthz must be open"
[ "$(code /metrics)" = 200 ] || fail "/metrics must be open"
# Without a credential, or with a malformed or unknown one: 401 with WWW-Authenticate: Bearer.
headers="$(curl -s -D - -o /dev/null "$url/v2/models/relu")"
grep -q "^HTTP/1.1 401" <<<"$headers" || fail "metadata without a credential: $headers"
grep -qi "^WWW-Authenticate: Bearer" <<<"$headers" || fail "no WWW-Authenticate: $headers"
[ "$(code /v2/models/relu -H 'Authorization: Bearer nope')" = 401 ] || fail "malformed token"
wrong="hmla_${admin_id}_$(printf '0%.0s' $(seq 64))"
[ "$(code /v2/models/relu -H "Authorization: Bearer $wrong")" = 401 ] || fail "wrong secret"
[ "$(code /ota/targets.json)" = 401 ] || fail "/ota without a credential"
[ "$(code /v2/models/relu/infer -X POST -d '{}')" = 401 ] || fail "infer without a credential"

meta="$(curl -sf "${auth[@]}" "$url/v2/models/relu")" || fail "GET metadata"
grep -q '"name":"relu"' <<<"$meta" || fail "metadata: $meta"
[ "$(code /v2/models/nope "${auth[@]}")" = 404 ] || fail "404"

data="$(seq -s, -30 29)"
body="{\"inputs\":[{\"name\":\"x\",\"shape\":[3,4,5],\"datatype\":\"FP32\",\"data\":[$data]}]}"
out="$(curl -sf "${auth[@]}" -X POST -H 'Content-Type: application/json' -d "$body" \
  "$url/v2/models/relu/infer")" || fail "infer"
echo "$out" | grep -q '"shape":\[3,4,5\]' || fail "infer output shape: $out"
echo "$out" | grep -q '"data":\[0,0,' || fail "infer output data: $out"

# Whole responses into variables, not `curl | grep -q`: grep -q exits at its first match, curl
# then dies of SIGPIPE and pipefail fails the check on a loaded machine.
metrics="$(curl -sf "$url/metrics")" || fail "GET /metrics"
grep -qF 'hml_inference_requests_total{model="relu",version="1",protocol="http",code="OK"} 1' \
  <<<"$metrics" || fail "metrics request counter: $(grep hml_inference_requests <<<"$metrics")"

size="$(stat -c %s "$tmp/reg/repo/targets.json")"
code="$(curl -s -o "$tmp/part" -w '%{http_code}' "${auth[@]}" -H 'Range: bytes=0-9' \
  "$url/ota/targets.json")"
[ "$code" = 206 ] || fail "range status $code"
cmp "$tmp/part" <(head -c 10 "$tmp/reg/repo/targets.json") || fail "range bytes"
[ "$size" -gt 10 ] || fail "targets.json too small"
code="$(curl -s -o /dev/null -w '%{http_code}' "${auth[@]}" --path-as-is "$url/ota/../registry.db")"
[ "$code" = 400 ] || fail "path traversal got $code"

# Revoked by another process (the CLI) while the server runs: refused from the next request on.
"$hml" auth admin-key revoke --registry "$tmp/reg" "$admin_id" >/dev/null || fail "revoke"
[ "$(code /v2/models/relu "${auth[@]}")" = 401 ] || fail "a revoked admin key must get 401"
"$hml" auth admin-key list --registry "$tmp/reg" | grep -q "$admin_id .*revoked" \
  || fail "list does not show the revocation"
stop

# --no-auth: an explicit choice, and then everything is open.
start --no-auth
grep -q "^auth off (--no-auth)" "$tmp/serve.out" || fail "--no-auth not reported"
[ "$(code /v2/models/relu)" = 200 ] || fail "--no-auth: metadata without a credential"
stop
echo "PASS"
