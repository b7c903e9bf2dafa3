#!/usr/bin/env bash
# End-to-end wiring of device telemetry in `hybridml serve`: with auth on (the default) the
# server creates a TelemetryAggregator over its metrics registry, so /metrics lists the
# hml_device_* families from the start (the unlabelled ones as 0) and the serving metrics still
# appear beside them; with --no-auth there are no device services and no device families.
# (Telemetry.Report itself, over gRPC, is tested in tests/server/grpc/telemetry_service_test.cc.)
# Usage: serve_telemetry_test.sh PATH/TO/hybridml
set -uo pipefail
hml="$1"
source "$(dirname "$0")/../http/serve_test_setup.sh"

# Starts serve with the given extra flags; sets pid and url.
start() {
  "$hml" serve --registry "$tmp/reg" --insecure --http-port 0 --grpc-port 0 "$@" \
    >"$tmp/serve.out" 2>&1 &
  pid=$!
  local port=""
  for _ in $(seq 600); do  # up to 60 s: a loaded CI machine starts slowly
    port="$(sed -n 's/^http listening on [^:]*:\([0-9]*\).*/\1/p' "$tmp/serve.out")"
    [ -n "$port" ] && grep -q "^auth " "$tmp/serve.out" && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  [ -n "$port" ] || { cat "$tmp/serve.out"; fail "server did not print its port"; }
  url="http://127.0.0.1:$port"
}
stop() {
  kill -TERM "$pid"; wait "$pid"; local rc=$?; pid=""
  [ "$rc" = 0 ] || fail "serve exited $rc after SIGTERM"
}

start
metrics="$(curl -sf "$url/metrics")" || fail "GET /metrics"
grep -q '^hml_device_reporting_devices 0$' <<<"$metrics" \
  || fail "no device count on /metrics: $(grep hml_device <<<"$metrics")"
grep -q '^hml_device_telemetry_reports_total{result="accepted"} 0$' <<<"$metrics" \
  || fail "no report counter on /metrics"
grep -q '^# TYPE hml_device_reporting_devices gauge$' <<<"$metrics" || fail "no TYPE line"
grep -q '^# TYPE hml_inference_queue_time_seconds histogram$' <<<"$metrics" \
  || fail "serving metrics missing beside the device metrics"
stop

start --no-auth
metrics="$(curl -sf "$url/metrics")" || fail "GET /metrics (--no-auth)"
grep -q 'hml_device_' <<<"$metrics" && fail "--no-auth serves no device services, yet: $(grep hml_device <<<"$metrics")"
stop
echo PASS
