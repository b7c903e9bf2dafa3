#!/usr/bin/env bash
# End-to-end TLS: `hybridml certs` writes a dev CA and server/client certificates;
# `hybridml serve --tls-cert --tls-key` serves HTTPS and gRPC over TLS with that certificate:
# curl trusting ca.pem gets 200 from /v2/health/ready while curl without --cacert fails
# verification, and `openssl s_client` completes a verified TLS handshake (ALPN h2) on the gRPC
# port. Then the same with --tls-client-ca (mutual TLS): curl without the client certificate
# fails, with it gets 200; model metadata needs the admin key (401 without it, also under mutual
# TLS: a client certificate is not a credential). Also: certs refuses to overwrite, serve
# refuses TLS together with --insecure, and SIGTERM drains and exits 0.
# Usage: serve_tls_curl_test.sh PATH/TO/hybridml
set -uo pipefail
hml="$1"
source "$(dirname "$0")/serve_test_setup.sh"

pki="$tmp/pki"
"$hml" certs --dir "$pki" --name hml.test >/dev/null || fail "certs"
for f in ca.pem ca.key server.pem server.key client.pem client.key; do
  [ -s "$pki/$f" ] || fail "certs did not write $f"
done
[ "$(stat -c %a "$pki/server.key")" = 600 ] || fail "server.key mode"
"$hml" certs --dir "$pki" >"$tmp/again.out" 2>&1 && fail "certs must refuse to overwrite"
grep -q "exists" "$tmp/again.out" || fail "no overwrite message: $(cat "$tmp/again.out")"

tls=(--tls-cert "$pki/server.pem" --tls-key "$pki/server.key")
"$hml" serve --registry "$tmp/reg" "${tls[@]}" --insecure --http-port 0 >"$tmp/both.out" 2>&1 \
  && fail "serve with TLS and --insecure must fail"
grep -q "contradicts" "$tmp/both.out" || fail "no TLS/insecure message: $(cat "$tmp/both.out")"

# Starts serve with the given extra flags; sets pid, port and url.
start() {
  "$hml" serve --registry "$tmp/reg" "${tls[@]}" --http-port 0 --grpc-port 0 "$@" \
    >"$tmp/serve.out" 2>&1 &
  pid=$!
  port=""
  for _ in $(seq 600); do  # up to 60 s: a loaded CI machine starts slowly
    port="$(sed -n 's/^http listening on [^:]*:\([0-9]*\).*/\1/p' "$tmp/serve.out")"
    [ -n "$port" ] && grep -q "^grpc listening" "$tmp/serve.out" && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  [ -n "$port" ] || { cat "$tmp/serve.out"; fail "server did not print its port"; }
  gport="$(sed -n 's/^grpc listening on [^:]*:\([0-9]*\).*/\1/p' "$tmp/serve.out")"
  [ -n "$gport" ] || fail "no gRPC port"
  url="https://localhost:$port"
}
stop() {
  kill -TERM "$pid"; wait "$pid"; local rc=$?; pid=""
  [ "$rc" = 0 ] || fail "serve exited $rc after SIGTERM"
}

start
grep -q "(HTTPS)" "$tmp/serve.out" || fail "not reported as HTTPS"
grep -q "^grpc listening on .* (TLS)" "$tmp/serve.out" || fail "gRPC not reported as TLS"
echo | openssl s_client -connect "127.0.0.1:$gport" -servername localhost -CAfile "$pki/ca.pem" \
  -alpn h2 >"$tmp/sclient.out" 2>&1
grep -q "Verify return code: 0 (ok)" "$tmp/sclient.out" || fail "gRPC TLS handshake not verified"
grep -q "ALPN protocol: h2" "$tmp/sclient.out" || fail "gRPC port did not negotiate h2"
code="$(curl -s -o /dev/null -w '%{http_code}' --cacert "$pki/ca.pem" "$url/v2/health/ready")"
[ "$code" = 200 ] || fail "ready over HTTPS got $code"
code="$(curl -s -o /dev/null -w '%{http_code}' --cacert "$pki/ca.pem" "$url/v2/models/relu")"
[ "$code" = 401 ] || fail "metadata over HTTPS without a credential got $code"
meta="$(curl -sf --cacert "$pki/ca.pem" "${auth[@]}" "$url/v2/models/relu")" \
  || fail "GET metadata over HTTPS"
grep -q '"name":"relu"' <<<"$meta" || fail "metadata over HTTPS: $meta"
curl -s -o /dev/null "$url/v2/health/ready" && fail "curl without --cacert must fail"
code="$(curl -s -o /dev/null -w '%{http_code}' "http://localhost:$port/v2/health/ready")"
[ "$code" != 200 ] || fail "plain HTTP must not be answered"
stop

start --tls-client-ca "$pki/ca.pem"
grep -q "(HTTPS, mutual TLS)" "$tmp/serve.out" || fail "not reported as mutual TLS"
curl -s -o /dev/null --cacert "$pki/ca.pem" "$url/v2/health/ready" \
  && fail "mutual TLS without a client certificate must fail"
code="$(curl -s -o /dev/null -w '%{http_code}' --cacert "$pki/ca.pem" \
  --cert "$pki/client.pem" --key "$pki/client.key" "$url/v2/health/ready")"
[ "$code" = 200 ] || fail "mutual TLS with the client certificate got $code"
# A client certificate is not a credential: the bearer token is still required.
code="$(curl -s -o /dev/null -w '%{http_code}' --cacert "$pki/ca.pem" \
  --cert "$pki/client.pem" --key "$pki/client.key" "$url/v2/models/relu")"
[ "$code" = 401 ] || fail "mutual TLS without a bearer token got $code"
code="$(curl -s -o /dev/null -w '%{http_code}' --cacert "$pki/ca.pem" \
  --cert "$pki/client.pem" --key "$pki/client.key" "${auth[@]}" "$url/v2/models/relu")"
[ "$code" = 200 ] || fail "mutual TLS with the bearer token got $code"
stop
echo "PASS"
