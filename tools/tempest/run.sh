#!/usr/bin/env bash
# Run tempest's API tests for one service against a running Ferrostack
# all-in-one on 127.0.0.1.
#
#   tools/tempest/run.sh <service> [DATA_DIR]
#
# service: identity | image | network | compute | volume | object_storage
#          (the tempest.api.<service> package) | telemetry
#          (telemetry-tempest-plugin: the Aodh API tests and the Gnocchi
#          gabbi live tests, which need no Heat).
# DATA_DIR: the all-in-one's data dir. The workspace goes to
#          DATA_DIR/tempest/<service> and failing test ids to
#          DATA_DIR/tempest-<service>-failed.txt. Without DATA_DIR a fresh
#          workspace is made under ${TMPDIR:-/tmp} and the failed list goes
#          into it.
#
# The last line printed is "tempest <service>: N passed, N failed, N skipped".
# Exit status is 0 whatever the tests did, unless TEMPEST_STRICT=1 (then 1
# when a test failed); 2 when tempest could not be run at all.
#
# Environment:
#   FERROSTACK_VENV     venv with tempest (made by tools/setup-venv.sh)
#   FERROSTACK_LOOPBACK_GUARD_ALLOW  the one non-loopback CIDR tempest may
#                       reach (see below)  [none]
#   TEMPEST_REGEX       test selection  [^tempest\.api\.<service>]
#   TEMPEST_EXCLUDE_REGEX  tests to leave out  [none]
#   TEMPEST_CONCURRENCY workers          [2]
#   TEMPEST_WAIT        seconds to wait for the identity API  [30]
#   TEMPEST_VERBOSE=1   stream tempest's full output (else: failures only;
#                       the full output is always in <workspace>/run.log)
#   plus the conf settings documented in tools/tempest/ferrotempest.py
#   (FERROSTACK_SERVICES, TEMPEST_IDENTITY_*, TEMPEST_CONF_EXTRA, ...)
#
# Tempest may only talk to loopback: the catalog is checked before the run
# (any non-loopback endpoint aborts it) and every Python process of the run
# loads tools/tempest/loopback_guard, which refuses other connections and
# name lookups. The one exception is FERROSTACK_LOOPBACK_GUARD_ALLOW: one
# private CIDR, the test cloud's external network, which guest validation
# (SSH to floating IPs) needs; scripts/tempest-vm.sh sets it to the network
# it builds inside its private network namespace.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="${FERROSTACK_VENV:-$repo/.venv}"

die() { printf 'tempest/run.sh: %s\n' "$*" >&2; exit 2; }
say() { printf 'tempest/run.sh: %s\n' "$*" >&2; }

[[ $# -ge 1 && $# -le 2 ]] || die "usage: $0 <identity|image|network|compute|volume|object_storage|telemetry> [DATA_DIR]"
service="$1"
data_dir="${2:-}"
case "$service" in
    identity|image|network|compute|volume|object_storage|telemetry) ;;
    *) die "unknown service '$service'" ;;
esac

# --- venv -----------------------------------------------------------------
FERROSTACK_VENV="$venv" "$repo/tools/setup-venv.sh" || die "venv setup failed"
py="$venv/bin/python"
helper="$here/ferrotempest.py"

# --- workspace ------------------------------------------------------------
if [[ -n "$data_dir" ]]; then
    mkdir -p "$data_dir"
    data_dir="$(cd "$data_dir" && pwd)"
    ws="$data_dir/tempest/$service"
    failed_out="$data_dir/tempest-$service-failed.txt"
    if [[ -e "$ws" ]]; then
        # only ever remove a workspace this script made
        [[ -f "$ws/.ferrostack-tempest" ]] || die "$ws exists and is not a ferrostack tempest workspace"
        rm -rf "$ws"
    fi
    mkdir -p "$ws"
else
    ws="$(mktemp -d "${TMPDIR:-/tmp}/ferrostack-tempest-$service.XXXXXX")"
    failed_out="$ws/tempest-$service-failed.txt"
fi
: > "$ws/.ferrostack-tempest"
mkdir -p "$ws/etc" "$ws/logs" "$ws/tempest_lock"
rm -f "$failed_out"

tempest_dir="$("$py" -c 'import os, tempest; print(os.path.dirname(tempest.__file__))')"
cat > "$ws/.stestr.conf" <<EOF
[DEFAULT]
test_path=$tempest_dir/test_discover
top_dir=$tempest_dir/..
group_regex=([^\.]*\.)*
EOF

# Everything below runs with: the venv first on PATH, no proxies, and the
# loopback guard loaded into every Python process.
export PATH="$venv/bin:$PATH"
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY
export no_proxy='*' NO_PROXY='*'
export PYTHONPATH="$here/loopback_guard${PYTHONPATH:+:$PYTHONPATH}"
export FERROSTACK_LOOPBACK_GUARD=1
export TEMPEST_CONFIG_DIR="$ws/etc" TEMPEST_CONFIG=tempest.conf
# keep tempest from reading or writing ~/.tempest
export HOME="$ws"

auth_url="${FERROSTACK_AUTH_URL:-http://127.0.0.1:5000/v3}"

# --- wait for the identity API --------------------------------------------
wait_s="${TEMPEST_WAIT:-30}"
for ((i = 0; ; i++)); do
    if curl -sf --noproxy '*' -o /dev/null "$auth_url"; then
        break
    fi
    ((i < wait_s)) || die "identity API not answering at $auth_url after ${wait_s}s"
    sleep 1
done

"$py" "$helper" preflight || die "preflight failed (see above); not running tempest"
"$py" "$helper" conf --workspace "$ws" --service "$service" --out "$ws/etc/tempest.conf"

default_regex="^tempest\.api\.$service\."
if [[ "$service" == telemetry ]]; then
    default_regex='^telemetry_tempest_plugin\.(aodh\.api\.|scenario\.test_gnocchi\.)'
fi
regex="${TEMPEST_REGEX:-$default_regex}"
run_args=(--config-file "$ws/etc/tempest.conf" --regex "$regex")
if [[ -n "${TEMPEST_EXCLUDE_REGEX:-}" ]]; then
    run_args+=(--exclude-regex "$TEMPEST_EXCLUDE_REGEX")
fi

cd "$ws"
stestr init > /dev/null
tempest run "${run_args[@]}" --list-tests > "$ws/tests.list" 2> "$ws/list.err" \
    || { cat "$ws/list.err" >&2; die "could not list tests"; }
ntests="$(grep -cE '^(tempest|telemetry_tempest_plugin)\.' "$ws/tests.list" || true)"
say "workspace $ws: running $ntests tests (concurrency ${TEMPEST_CONCURRENCY:-2})"

set +e
if [[ "${TEMPEST_VERBOSE:-0}" == 1 ]]; then
    tempest run "${run_args[@]}" --concurrency "${TEMPEST_CONCURRENCY:-2}" 2>&1 | tee "$ws/run.log"
else
    tempest run "${run_args[@]}" --concurrency "${TEMPEST_CONCURRENCY:-2}" > "$ws/run.log" 2>&1 &
    run_pid=$!
    # live view: only failing tests
    tail -n +1 --pid="$run_pid" -f "$ws/run.log" 2>/dev/null \
        | grep --line-buffered -E '\.\.\. FAILED|^(Traceback|ERROR:|CRITICAL)' || true
    wait "$run_pid"
fi
set -e

stestr last --subunit > "$ws/results.subunit" 2> /dev/null || true
"$py" "$helper" summarize --subunit "$ws/results.subunit" --tests "$ws/tests.list" \
    --service "$service" --failed-out "$failed_out" > "$ws/summary.txt" \
    || die "could not summarize results (see $ws/run.log)"

nfailed="$(grep -c . "$failed_out" || true)"
if [[ "$nfailed" -gt 0 ]]; then
    say "failed tests listed in $failed_out (details: $ws/run.log, $ws/logs/tempest.log)"
fi
cat "$ws/summary.txt"
if [[ "${TEMPEST_STRICT:-0}" == 1 && "$nfailed" -gt 0 ]]; then
    exit 1
fi
exit 0
