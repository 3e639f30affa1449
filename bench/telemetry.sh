#!/usr/bin/env bash
# On-demand metering benchmark (not a test): the telemetry store alone,
# in-process (crates/telemetry/examples/bench.rs), printing the build
# profile and database, then
#
#   ingest samples/s        RESOURCES x DAYS of 1-minute cpu samples through
#                           the collector's path (raw sample, derived
#                           cpu_util, resource, metric, rollups), one
#                           writer, BATCH per transaction
#                           (target >= 50,000), with the process's CPU
#                           time over it (how many cores were busy)
#   memory                  the process's resident memory after the ingest
#                           and its peak (the writer's page cache in it)
#   statistics p50 / p99    period 1 h over the DAYS: one resource, all
#                           resources together (the target's query,
#                           <= 50 ms), and all grouped by resource
#   bytes per sample        the database (files, or the engine's count)
#                           over the samples
#
#   bench/telemetry.sh                      # release build, 100 x 30 days
#   RESOURCES=10 DAYS=7 bench/telemetry.sh
#
# Environment: RESOURCES (100), DAYS (30), BATCH (5000), QUERIES (50),
# PROFILE (release), DB_URL (default: a fresh SQLite file), METER (cpu:
# a cumulative counter, cpu_util derived from it on ingest; any other name
# is a gauge with nothing derived), and
# CARGO_TARGET_DIR as cargo reads it. DB_URL names an empty database,
# e.g. postgres://postgres@127.0.0.1:5432/ferrostack_bench (created
# beforehand) or sqlite:///tmp/bench.sqlite?mode=rwc.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
profile="${PROFILE:-release}"
flag=()
[[ "$profile" == release ]] && flag=(--release)
cd "$repo"
echo "bench/telemetry.sh: profile $profile, database ${DB_URL:-a fresh SQLite file}"
cargo build -q -p ferrostack-telemetry --example bench "${flag[@]}"
target="${CARGO_TARGET_DIR:-$repo/target}"
dir="$profile"
[[ "$profile" == dev ]] && dir=debug
exec "$target/$dir/examples/bench"
