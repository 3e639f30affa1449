#!/usr/bin/env bash
# On-demand metering benchmark (not a test): the telemetry store alone,
# in-process (crates/telemetry/examples/bench.rs), printing
#
#   ingest samples/s        RESOURCES x DAYS of 1-minute cpu samples through
#                           the collector's path (raw sample, resource,
#                           metric, rollups), one writer, BATCH per
#                           transaction
#   statistics p50 / p99    period 1 h over the DAYS, one resource and all
#                           of them grouped by resource (rollup rows only)
#   bytes per sample        the database files over the samples
#
#   bench/telemetry.sh                      # release build, 100 x 30 days
#   RESOURCES=10 DAYS=7 bench/telemetry.sh
#
# Environment: RESOURCES (100), DAYS (30), BATCH (5000), QUERIES (50),
# PROFILE (release), DB_URL (default: a fresh SQLite file), METER (cpu:
# a cumulative counter, cpu_util derived from it on ingest; any other name
# is a gauge with nothing derived), and
# CARGO_TARGET_DIR as cargo reads it.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
profile="${PROFILE:-release}"
flag=()
[[ "$profile" == release ]] && flag=(--release)
cd "$repo"
cargo build -q -p ferrostack-telemetry --example bench "${flag[@]}"
target="${CARGO_TARGET_DIR:-$repo/target}"
dir="$profile"
[[ "$profile" == dev ]] && dir=debug
exec "$target/$dir/examples/bench"
