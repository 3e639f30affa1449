#!/usr/bin/env bash
# The dashboard's browser tests: a private network namespace (the
# all-in-one's network agents build bridges there), then node's test
# runner over tests/dashboard. Screenshots land in $DASHBOARD_TEST_OUT
# (default tests/dashboard/output). Ends with the plain "N passed, N
# failed" line scripts/test.sh adds up.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
[ -d "$here/node_modules/playwright-core" ] || "$here/../../tools/setup-dashboard-tests.sh" || exit 1
log=$(mktemp)
unshare -n -- bash -c 'ip link set lo up && exec node --test --test-concurrency=1 "$0"/dashboard.test.mjs "$0"/console.test.mjs "$0"/usage.test.mjs' "$here" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
pass=$(awk '/^# pass /{print $3}' "$log")
fail=$(awk '/^# fail /{print $3}' "$log")
rm -f "$log"
echo "dashboard: ${pass:-0} passed, ${fail:-1} failed"
exit "$status"
