#!/usr/bin/env bash
# On-demand dashboard benchmark (not a test): an all-in-one (fake compute
# driver, network agents off) with SERVERS (default 1000) servers in the
# admin project, then the instances page opened cold RUNS times (default 5)
# in headless chromium; prints its time to interactive (the first page of
# 50 rows drawn, the pager and the launch button usable).
#
#   cargo build --release -p ferrostack && bench/dashboard.sh
#   FERROSTACK_BIN=target/debug/ferrostack SERVERS=200 bench/dashboard.sh
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
export FERROSTACK_BIN="${FERROSTACK_BIN:-$repo/target/release/ferrostack}"
[ -d "$repo/tests/dashboard/node_modules/playwright-core" ] || "$repo/tools/setup-dashboard-tests.sh"
exec unshare -n -- bash -c 'ip link set lo up && exec node "$0"' "$repo/bench/dashboard.mjs"
