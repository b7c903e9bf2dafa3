#!/usr/bin/env bash
# End-to-end checks of `hybridml ingest keygen|export`: key files and their modes, keygen never
# replacing a key, the export of a database filled like devices would (ingest_fixture) into a
# sample directory, the stray batch sealed to another key reported by id and device, and an
# idempotent second export.
# Usage: ingest_cli_test.sh PATH/TO/hybridml PATH/TO/ingest_fixture
set -uo pipefail
hml="$1"; fixture="$2"
source "$(dirname "$0")/../testing/cli_check.sh"
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
reg="$tmp/registry"; mkdir "$reg"

check keygen 0 "wrote .*/keys/ingest.pub \(public: [0-9a-f]{64}\)" -- \
  "$hml" ingest keygen --out "$tmp/keys"
check key-private 0 "^600$" -- stat -c %a "$tmp/keys/ingest.key"
check pub-shared 0 "^644$" -- stat -c %a "$tmp/keys/ingest.pub"
key_before="$(cat "$tmp/keys/ingest.key")"
check keygen-again 1 "ALREADY_EXISTS.*ingest.pub' exists; an ingest key is never replaced" -- \
  "$hml" ingest keygen --out "$tmp/keys"
[ "$key_before" = "$(cat "$tmp/keys/ingest.key")" ] || { echo "FAIL the key changed"; fail=1; }

check export-no-db 1 "NOT_FOUND.*ingest.db' does not exist" -- \
  "$hml" ingest export --registry "$reg" --key "$tmp/keys/ingest.key" --out "$tmp/data"

"$fixture" "$tmp/keys/ingest.pub" "$reg/ingest.db" 3 5 || { echo "FAIL fixture"; exit 1; }
check export 0 "batches: 4 stored, 3 opened, 1 skipped; records: 15; samples: 15 written, 0 unchanged, shape \[1, ?4, ?4\]" -- \
  "$hml" ingest export --registry "$reg" --key "$tmp/keys/ingest.key" --out "$tmp/data"
check export-names-stray 0 "skipped batch 4 from device dev-stray \(key key-3\): DATA_LOSS.*does not open" -- \
  "$hml" ingest export --registry "$reg" --key "$tmp/keys/ingest.key" --out "$tmp/data"
check export-again 0 "samples: 0 written, 15 unchanged" -- \
  "$hml" ingest export --registry "$reg" --key "$tmp/keys/ingest.key" --out "$tmp/data"
check sample-files 0 "^15$" -- bash -c "ls '$tmp/data' | grep -c '\.hmls$'"
check export-model-filter 0 "samples: 0 written.*15 other model" -- \
  "$hml" ingest export --registry "$reg" --key "$tmp/keys/ingest.key" --out "$tmp/other" \
  --model teacher
chmod 0644 "$tmp/keys/ingest.key"
check export-open-key 1 "PERMISSION_DENIED.*it must be 0600" -- \
  "$hml" ingest export --registry "$reg" --key "$tmp/keys/ingest.key" --out "$tmp/data"
[ "$fail" = 0 ] && echo PASS
exit "$fail"
