#!/usr/bin/env bash
# End-to-end checks of the credential commands: `hybridml auth admin-key|enrollment-secret
# create|revoke|list` and `hybridml devices list|revoke` on a temp registry directory. The token
# is printed once by create and appears neither in listings nor in auth.db or its WAL.
# Usage: auth_cli_test.sh PATH/TO/hybridml
set -uo pipefail
hml="$1"
source "$(dirname "$0")/../testing/cli_check.sh"
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
reg="$tmp/registry"; mkdir "$reg"

check admin-missing-registry 1 "NOT_FOUND.*registry directory .*nope' does not exist" -- \
  "$hml" auth admin-key create --registry "$tmp/nope" --name ops
check admin-empty-name 1 "INVALID_ARGUMENT.*name has 0 characters" -- \
  "$hml" auth admin-key create --registry "$reg" --name ""
check admin-list-empty 0 "no admin keys" -- "$hml" auth admin-key list --registry "$reg"
check admin-create 0 "^hmla_[0-9a-f]{16}_[0-9a-f]{64}$" -- \
  "$hml" auth admin-key create --registry "$reg" --name ops
check auth-db-private 0 "^600$" -- stat -c %a "$reg/auth.db"
out="$("$hml" auth admin-key create --registry "$reg" --name ci)"
token="$(tail -n 1 <<<"$out")"
id="$(sed -n 's/^created admin key \([0-9a-f]*\) .*/\1/p' <<<"$out")"
secret="${token##*_}"
check admin-list 0 "$id +ci +[0-9-]+ [0-9:]+Z +active" -- \
  "$hml" auth admin-key list --registry "$reg"
listing="$("$hml" auth admin-key list --registry "$reg")"
grep -q "$secret" <<<"$listing" && { echo "FAIL the listing shows a secret"; fail=1; }
if grep -qF "$secret" "$reg"/auth.db*; then echo "FAIL auth.db holds a secret"; fail=1; fi
check admin-revoke 0 "revoked admin key $id" -- \
  "$hml" auth admin-key revoke --registry "$reg" "$id"
check admin-list-revoked 0 "$id +ci .*revoked [0-9-]+ [0-9:]+Z" -- \
  "$hml" auth admin-key list --registry "$reg"
check admin-revoke-unknown 1 "NOT_FOUND.*admin key '0000000000000000' does not exist" -- \
  "$hml" auth admin-key revoke --registry "$reg" 0000000000000000

check secret-create 0 "^hmle_[0-9a-f]{16}_[0-9a-f]{64}$" -- \
  "$hml" auth enrollment-secret create --registry "$reg" --name fleet
check secret-create-unnamed 0 "created enrollment secret [0-9a-f]{16} 'unnamed'" -- \
  "$hml" auth enrollment-secret create --registry "$reg"
check secret-list 0 "fleet +[0-9-]+ [0-9:]+Z +active" -- \
  "$hml" auth enrollment-secret list --registry "$reg"
check secret-not-an-admin-key 1 "NOT_FOUND" -- \
  "$hml" auth enrollment-secret revoke --registry "$reg" "$id"

check devices-list-empty 0 "no devices" -- "$hml" devices list --registry "$reg"
check devices-revoke-unknown 1 "NOT_FOUND.*device '0000000000000000' does not exist" -- \
  "$hml" devices revoke --registry "$reg" 0000000000000000
check serve-help-no-auth 0 "--no-auth.*Turn authentication off" -- "$hml" serve --help
[ "$fail" = 0 ] && echo PASS
exit "$fail"
