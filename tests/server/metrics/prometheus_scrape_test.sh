#!/usr/bin/env bash
# Issue 5, must-show #2: a real Prometheus scrapes our /metrics and a query for the request
# counter returns the number of requests sent.
#
# Starts metrics_test_server (it picks its port and prints it), sends 37 POST /work with curl,
# starts Debian's prometheus (2.42) scraping that port every second with its storage in a temp
# directory, and polls the query API until hml_inference_requests_total is 37 (up to 60 s).
# Prometheus rejects a whole scrape when any line does not parse, so the counter arriving also
# shows that the full exposition (histograms, process metrics, escaped labels) is valid; the
# escaped label value is then compared with the string the server set.
# Usage: prometheus_scrape_test.sh PATH/TO/metrics_test_server
set -uo pipefail
server_bin="$1"
prometheus=/usr/bin/prometheus
python=/usr/bin/python3
requests=37

tmp="$(mktemp -d)"
server_pid=""
prom_pid=""
cleanup() {
  # Only the two processes this script started, by their pids.
  [[ -n "$prom_pid" ]] && kill "$prom_pid" 2>/dev/null && wait "$prom_pid" 2>/dev/null
  [[ -n "$server_pid" ]] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*"
  for log in server.out server.err prometheus.log; do
    [[ -s "$tmp/$log" ]] && { echo "--- $log (last 30 lines)"; tail -n 30 "$tmp/$log"; }
  done
  exit 1
}

[[ -x "$prometheus" ]] || fail "$prometheus is missing (scripts/setup.sh installs it)"

"$server_bin" >"$tmp/server.out" 2>"$tmp/server.err" &
server_pid=$!
port=""
for _ in $(seq 600); do
  port="$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' "$tmp/server.out")"
  [[ -n "$port" ]] && break
  kill -0 "$server_pid" 2>/dev/null || fail "metrics_test_server exited"
  sleep 0.1
done
[[ -n "$port" ]] || fail "metrics_test_server printed no port within 60 s"
echo "metrics_test_server on 127.0.0.1:$port"

for _ in $(seq "$requests"); do
  # -d '': a POST with Content-Length 0 (cpp-httplib answers 400 to a POST without a length).
  curl -fsS -d '' "http://127.0.0.1:$port/work" >/dev/null || fail "POST /work failed"
done
series='hml_inference_requests_total{model="m",version="1",protocol="http",code="OK"}'
curl -fsS "http://127.0.0.1:$port/metrics" >"$tmp/metrics.txt" || fail "GET /metrics failed"
grep -qxF "$series $requests" "$tmp/metrics.txt" || fail "/metrics lacks '$series $requests'"

# A free port for Prometheus's web listener: the kernel picks one, the socket is closed, and
# Prometheus binds it right after (a narrow race that a busy machine could lose: the error is
# then in prometheus.log).
prom_port="$("$python" -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
cat >"$tmp/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: hml_metrics_test
    static_configs:
      - targets: ['127.0.0.1:$port']
EOF
"$prometheus" --config.file="$tmp/prometheus.yml" --storage.tsdb.path="$tmp/data" \
  --web.listen-address="127.0.0.1:$prom_port" >"$tmp/prometheus.log" 2>&1 &
prom_pid=$!
echo "prometheus on 127.0.0.1:$prom_port"

# Prints the values of an instant query's result vector, one per line ("" when empty).
query() {
  curl -fsS --get --data-urlencode "query=$1" "http://127.0.0.1:$prom_port/api/v1/query" |
    "$python" -c 'import json, sys
r = json.load(sys.stdin)
assert r["status"] == "success", r
for sample in r["data"]["result"]:
    print(sample["value"][1])'
}

value=""
deadline=$((SECONDS + 60))
while ((SECONDS < deadline)); do
  kill -0 "$prom_pid" 2>/dev/null || fail "prometheus exited"
  value="$(query hml_inference_requests_total 2>/dev/null)"
  [[ "$value" == "$requests" ]] && break
  sleep 1
done
[[ "$value" == "$requests" ]] ||
  fail "query hml_inference_requests_total returned '$value', expected $requests within 60 s"
echo "PASS: Prometheus reports hml_inference_requests_total = $value after $requests requests"

# The same scrape carried the histogram and the process metrics.
count="$(query hml_inference_queue_time_seconds_count)"
[[ "$count" == "$requests" ]] || fail "queue time histogram count is '$count', not $requests"
rss="$(query process_resident_memory_bytes)"
"$python" -c "import sys; sys.exit(0 if float('$rss') > 0 else 1)" ||
  fail "process_resident_memory_bytes is '$rss'"
# The label value, parsed back by Prometheus, is the server's string exactly.
curl -fsS --get --data-urlencode "query=hml_test_label_escaping" \
  "http://127.0.0.1:$prom_port/api/v1/query" |
  "$python" -c 'import json, sys
r = json.load(sys.stdin)["data"]["result"]
want = "quote \" backslash \\ newline \n end"
sys.exit(0 if len(r) == 1 and r[0]["metric"]["v"] == want else 1)' ||
  fail "the escaped label value did not survive the round trip"
echo "PASS: histogram count $count, resident memory $rss bytes, escaped label value intact"
