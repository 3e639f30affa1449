#!/usr/bin/env bash
# Fuzz every service's OpenAPI document with schemathesis on a fresh
# all-in-one: the documents the services serve at /openapi.json (generated
# from their routers and request types) drive generated requests, valid and
# invalid, with an admin's token (tests/fuzz/admin.py); the checks are `not_a_server_error` and
# `response_schema_conformance`. A 5xx, a response outside its schema, or a
# request that hangs past the timeout fails the run.
#
#   tests/fuzz/run.sh [SERVICE ...]     # default: identity image network compute volume
#
# Prints, per service, the operations and generated cases, then one
# "N passed, N failed" line (one test per service) that scripts/test.sh adds
# to its total. Environment: FERROSTACK_BIN (default target/debug/ferrostack),
# FERROSTACK_VENV, FUZZ_MAX_EXAMPLES (per operation and phase, default 12),
# FUZZ_MAX_TIME (seconds per service, default 75), FUZZ_SEED (default 1),
# KEEP_DATA=1 (keep the work dir with the schemathesis reports).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
die() { echo "tests/fuzz/run.sh: $*" >&2; exit 1; }

BIN="${FERROSTACK_BIN:-$REPO/target/debug/ferrostack}"
[[ "$BIN" == /* ]] || BIN="$PWD/$BIN"
[[ -x "$BIN" ]] || die "$BIN not found; build it first: cargo build -p ferrostack (or set FERROSTACK_BIN)"
VENV="${FERROSTACK_VENV:-$REPO/.venv}"
[[ -x "$VENV/bin/schemathesis" ]] || "$REPO/tools/setup-venv.sh"

# As root the all-in-one's network agents run, in a private network
# namespace so that their bridges and namespaces stay out of the host's.
if [[ $EUID -eq 0 && -z "${FERROSTACK_FUZZ_NETNS:-}" ]]; then
    export FERROSTACK_FUZZ_NETNS=1 FERROSTACK_BIN="$BIN"
    exec unshare -n -- bash -c 'ip link set lo up && exec "$@"' bash \
        "$BASH" "${BASH_SOURCE[0]}" "$@"
fi

services=("$@")
# Identity last: its fuzzing may disable the guessable default domain.
[[ ${#services[@]} -gt 0 ]] || services=(image network compute volume identity)
declare -A port=([identity]=5000 [image]=9292 [network]=9696 [compute]=8774 [volume]=8776)
for s in "${services[@]}"; do
    [[ -n "${port[$s]:-}" ]] || die "unknown service '$s' (identity, image, network, compute, volume)"
done

HOST=127.0.0.1
CURL=(curl -sS --noproxy '*')
export FERROSTACK__COMMON__BIND_HOST=$HOST FERROSTACK__COMMON__PUBLIC_HOST=$HOST
export FERROSTACK__IDENTITY__BCRYPT_COST=4
[[ -n "${FERROSTACK_FUZZ_NETNS:-}" ]] || export FERROSTACK__NETWORK_AGENT__ENABLED=false

# shellcheck source=scripts/lib/all-in-one.sh
source "$REPO/scripts/lib/all-in-one.sh"
aio_start fuzz

passed=0
failed=0
for s in "${services[@]}"; do
    token="$("$VENV/bin/python" "$REPO/tests/fuzz/admin.py" "http://$HOST:5000/v3")" \
        || die "no token for the fuzzing admin"
    report="$WORK/$s.json"
    echo "==> schemathesis: $s (http://$HOST:${port[$s]}/openapi.json)"
    # The run's own exit status is read from its report.
    PYTHONPATH="$REPO/tests/fuzz" SCHEMATHESIS_HOOKS=hooks \
        "$VENV/bin/schemathesis" run "http://$HOST:${port[$s]}/openapi.json" \
        --checks not_a_server_error,response_schema_conformance \
        --header "X-Auth-Token: $token" \
        --max-examples "${FUZZ_MAX_EXAMPLES:-12}" \
        --max-time "${FUZZ_MAX_TIME:-75}" \
        --request-timeout 30 \
        --seed "${FUZZ_SEED:-1}" \
        --workers 2 \
        --suppress-health-check all \
        --output-truncate true \
        --report json --report-json-path "$report" \
        >"$WORK/$s.log" 2>&1 || true
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        tail -n 40 "$LOG" >&2
        die "the all-in-one died while $s was fuzzed"
    fi
    if "$VENV/bin/python" "$REPO/tests/fuzz/summary.py" "$s" "$report"; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        awk '/^=+ (FAILURES|ERRORS) =+$/ {on=1} /^=+ (WARNINGS|SUMMARY) =+$/ {on=0} on' \
            "$WORK/$s.log" | head -n 150
        KEEP_DATA=1
    fi
done
echo "fuzz: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
