# Shared start of the `hybridml serve` end-to-end scripts (sourced, not run): a temp dir cleaned
# on exit (killing the server in $pid if one runs), `fail`, and a registry in $tmp/reg holding
# model "relu" (ONNX test_relu: x float [3,4,5]) version 1 released to "stable" at 100 %, and an
# admin key made with `hybridml auth admin-key create`: $admin_key, $admin_id, and
# auth=(-H "Authorization: Bearer $admin_key") for curl.
# Needs: hml (the hybridml binary).
model=/usr/share/libonnx-testdata/data/node/test_relu/model.onnx
tmp="$(mktemp -d)"; pid=""
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

"$hml" keys init --dir "$tmp/keys" >/dev/null || fail "keys init"
"$hml" publish "$model" --name relu --semver 1.0.0 --registry "$tmp/reg" --keys "$tmp/keys" \
  >/dev/null || fail "publish"
"$hml" rollout --name relu --version 1 --channel stable --percent 100 --registry "$tmp/reg" \
  --keys "$tmp/keys" >/dev/null || fail "rollout"

# `create` prints the token once, alone on its last line.
"$hml" auth admin-key create --registry "$tmp/reg" --name e2e >"$tmp/admin.out" \
  || fail "admin-key create"
admin_key="$(tail -n 1 "$tmp/admin.out")"
admin_id="$(sed -n 's/^created admin key \([0-9a-f]*\) .*/\1/p' "$tmp/admin.out")"
[[ "$admin_key" == hmla_"$admin_id"_* ]] \
  || fail "admin-key create printed no token: $(cat "$tmp/admin.out")"
auth=(-H "Authorization: Bearer $admin_key")
