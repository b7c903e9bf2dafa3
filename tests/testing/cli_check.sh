# Sourced by the CLI test scripts. check NAME EXPECTED_EXIT PATTERN -- command...
# runs the command, and records a failure in $fail unless it exits with EXPECTED_EXIT and its
# output (stdout + stderr) matches the extended regex PATTERN.
fail=0
check() {
  local name="$1" want_rc="$2" pattern="$3"; shift 4
  local out rc
  out="$("$@" 2>&1)"; rc=$?
  if [ "$rc" != "$want_rc" ] || ! grep -qE -- "$pattern" <<<"$out"; then
    echo "FAIL $name (exit $rc, want $want_rc, pattern '$pattern')"; echo "$out" | head -20; fail=1
  else
    echo "ok   $name"
  fi
}
