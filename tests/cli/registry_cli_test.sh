#!/usr/bin/env bash
# End-to-end checks of the registry commands (keys, publish, rollout, rollback, models) on
# models from the ONNX test suite (Debian's libonnx-testdata).
# Usage: registry_cli_test.sh PATH/TO/hybridml
set -uo pipefail
hml="$1"
data=/usr/share/libonnx-testdata/data/node
source "$(dirname "$0")/../testing/cli_check.sh"
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
reg="$tmp/registry"; keys="$tmp/keys"
v1="$data/test_relu/model.onnx"; v2="$data/test_abs/model.onnx"

check keys-init 0 "created keys" -- "$hml" keys init --dir "$keys"
check keys-are-private 0 "^600$" -- stat -c %a "$keys/targets.key"
check keys-init-refuses-overwrite 1 "ALREADY_EXISTS.*root.key.*never overwritten" -- \
  "$hml" keys init --dir "$keys"
check models-missing-registry 1 "NOT_FOUND.*registry directory .*registry' does not exist" -- \
  "$hml" models --registry "$reg"
check publish-v1 0 "published m version 1 \(1.0.0\)" -- "$hml" publish "$v1" --name m \
  --semver 1.0.0 --metadata '{"accuracy":91}' --registry "$reg" --keys "$keys"
check publish-v2 0 "delta target m/2.from-1.delta" -- "$hml" publish "$v2" --name m \
  --semver 1.1.0 --registry "$reg" --keys "$keys"
check repo-has-delta 0 "" -- test -s "$reg/repo/targets/m/2.from-1.delta"
check targets-json-lists-both 0 '"m/1.onnx".*"m/2.onnx"' -- cat "$reg/repo/targets.json"
snapshot() { (cd "$reg" && find repo blobs -type f -exec sha256sum {} + | sort); }
before="$(snapshot)"
printf 'garbage' > "$tmp/bad.onnx"
check publish-not-onnx 1 "INVALID_ARGUMENT.*bad.onnx.*runtime cannot load" -- "$hml" publish \
  "$tmp/bad.onnx" --name m --semver 2.0.0 --registry "$reg" --keys "$keys"
check publish-duplicate-semver 1 "ALREADY_EXISTS.*1.1.0" -- "$hml" publish "$v1" --name m \
  --semver 1.1.0 --registry "$reg" --keys "$keys"
check publish-bad-metadata 1 "INVALID_ARGUMENT.*metadata" -- "$hml" publish "$v1" --name m \
  --semver 2.0.0 --metadata '{oops' --registry "$reg" --keys "$keys"
check rollout-unknown-version 1 "NOT_FOUND.*no version 9" -- "$hml" rollout --name m \
  --version 9 --channel stable --percent 10 --registry "$reg" --keys "$keys"
check rollout-unknown-model 1 "NOT_FOUND.*'nope'" -- "$hml" rollout --name nope --version 1 \
  --channel stable --percent 10 --registry "$reg" --keys "$keys"
check rollout-bad-percent 1 "INVALID_ARGUMENT.*--percent 150" -- "$hml" rollout --name m \
  --version 2 --channel stable --percent 150 --registry "$reg" --keys "$keys"
check rollout-fractional-percent 1 "integer" -- "$hml" rollout --name m --version 2 \
  --channel stable --percent 12.5 --registry "$reg" --keys "$keys"
check rollback-no-channel 1 "NOT_FOUND.*no channel 'stable'" -- "$hml" rollback --name m \
  --channel stable --registry "$reg" --keys "$keys"
check failures-changed-nothing 0 "" -- test "$before" = "$(snapshot)"
check rollout-v1 0 "m version 1 on channel stable at 100%" -- "$hml" rollout --name m \
  --version 1 --channel stable --percent 100 --registry "$reg" --keys "$keys"
check rollout-v2-half 0 "at 50%" -- "$hml" rollout --name m --version 2 --channel stable \
  --percent 50 --registry "$reg" --keys "$keys"
check models-shows-rollout 0 "m +2 1.1.0 .* stable 50% rolling out" -- \
  "$hml" models --registry "$reg"
check models-shows-previous 0 "m +1 1.0.0 .* stable previous" -- "$hml" models --registry "$reg"
check targets-json-channels 0 '"channels":\{"stable":50\}' -- cat "$reg/repo/targets.json"
check rollback 0 "rolled back to version 1" -- "$hml" rollback --name m --channel stable \
  --registry "$reg" --keys "$keys"
check models-after-rollback 0 "m +1 1.0.0 .* stable 100%$" -- "$hml" models --registry "$reg"
check rotate-bad-role 1 "INVALID_ARGUMENT.*--role 'admin'" -- "$hml" keys rotate \
  --dir "$keys" --role admin --registry "$reg"
check rotate-targets 0 "rotated the targets key; root is now version 2" -- "$hml" keys rotate \
  --dir "$keys" --role targets --registry "$reg"
check rotate-root 0 "root is now version 3" -- "$hml" keys rotate --dir "$keys" --role root \
  --registry "$reg"
check root-chain 0 "" -- test -s "$reg/repo/3.root.json"
check publish-after-rotation 0 "published m version 3" -- "$hml" publish "$v1" --name m \
  --semver 2.0.0 --registry "$reg" --keys "$keys"
"$hml" keys init --dir "$tmp/other" > /dev/null
check wrong-keys 1 "FAILED_PRECONDITION.*role 'root'" -- "$hml" rollout --name m --version 3 \
  --channel stable --percent 5 --registry "$reg" --keys "$tmp/other"
check missing-keys 1 "NOT_FOUND.*keys init" -- "$hml" publish "$v1" --name m --semver 4.0.0 \
  --registry "$reg" --keys "$tmp/none"
exit $fail
