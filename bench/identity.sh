#!/usr/bin/env bash
# On-demand identity benchmark for the Ferrostack all-in-one (not a test).
#
#   cargo build --release && bench/identity.sh
#
# Starts target/release/ferrostack on a fresh temp data dir (default bcrypt
# cost), then measures with wrk on 127.0.0.1:5000:
#   * token validation  GET  /v3/auth/tokens (X-Auth-Token + X-Subject-Token)
#   * token issue       POST /v3/auth/tokens (password, project-scoped)
# at each concurrency in $CONCURRENCY, and reports the server's VmRSS idle and
# after each load phase.
#
# Environment:
#   FERROSTACK_BIN   server binary   (default: <repo>/target/release/ferrostack)
#   DURATION         per run         (default: 10s)
#   CONCURRENCY      connection list (default: "1 8 64")
#   THREADS          wrk threads for concurrency > 1 (default: 2; 1 for c=1)
#   WRK_TIMEOUT      wrk request timeout (default: 30s; bcrypt is slow)
#   SKIP_ISSUE=1     skip the token-issue phase
#   KEEP_DATA=1      keep the temp data dir and server log
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${FERROSTACK_BIN:-$REPO/target/release/ferrostack}"
DURATION="${DURATION:-10s}"
CONCURRENCY="${CONCURRENCY:-1 8 64}"
THREADS="${THREADS:-2}"
WRK_TIMEOUT="${WRK_TIMEOUT:-30s}"
HOST=127.0.0.1
URL="http://$HOST:5000"

die() { echo "bench/identity.sh: $*" >&2; exit 1; }

[[ -x "$BIN" ]] || die "$BIN not found; build it first: cargo build --release"
command -v curl >/dev/null || die "curl is required"
if ! command -v wrk >/dev/null; then
    echo "wrk not found; installing it with apt-get ..." >&2
    if [[ $(id -u) -eq 0 ]]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
    else
        sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
    fi
    command -v wrk >/dev/null || die "could not install wrk"
fi
for port in 5000 35357; do
    if (exec 3<>"/dev/tcp/$HOST/$port") 2>/dev/null; then
        die "$HOST:$port is already in use; stop the running server first"
    fi
done

WORK="$(mktemp -d /tmp/ferrostack-bench.XXXXXX)"
DATA="$WORK/data"
LOG="$WORK/server.log"
mkdir -p "$DATA"
SERVER_PID=""

cleanup() {
    local rc=$?
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 1 100); do
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    if [[ "${KEEP_DATA:-0}" == 1 || $rc -ne 0 ]]; then
        echo "data dir and server log kept in $WORK" >&2
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# PIDs of the server and any child processes it spawned.
server_tree() {
    local pids=("$SERVER_PID") i=0 p
    while (( i < ${#pids[@]} )); do
        for p in $(ps -o pid= --ppid "${pids[$i]}" 2>/dev/null); do pids+=("$p"); done
        i=$((i + 1))
    done
    echo "${pids[@]}"
}
# Sum of VmRSS / VmHWM (kB) over the server's process tree.
proc_sum() {
    local key=$1 total=0 p v
    for p in $(server_tree); do
        v=$(awk -v k="$key:" '$1 == k {print $2}' "/proc/$p/status" 2>/dev/null || true)
        total=$((total + ${v:-0}))
    done
    echo "$total"
}
rss_kb() { proc_sum VmRSS; }
hwm_kb() { proc_sum VmHWM; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'; }

# ------------------------------------------------------------------ server
echo "starting $BIN all-in-one (log: $LOG)"
# Default bcrypt cost: do not inherit a test override.
env -u FERROSTACK__IDENTITY__BCRYPT_COST \
    "$BIN" all-in-one --data-dir "$DATA" >"$LOG" 2>&1 &
SERVER_PID=$!

for i in $(seq 1 240); do
    if curl -sf -o /dev/null "$URL/v3"; then break; fi
    kill -0 "$SERVER_PID" 2>/dev/null || { tail -n 40 "$LOG" >&2; die "server exited during startup"; }
    sleep 0.25
    [[ $i -eq 240 ]] && { tail -n 40 "$LOG" >&2; die "server not ready after 60s"; }
done
echo "server ready (pid $SERVER_PID)"

sleep 2
RSS_IDLE=$(rss_kb)

# ------------------------------------------------------------------ tokens
AUTH_BODY='{"auth":{"identity":{"methods":["password"],"password":{"user":{"name":"admin","domain":{"name":"Default"},"password":"admin_pass"}}},"scope":{"project":{"name":"admin","domain":{"name":"Default"}}}}}'

issue_token() {
    local hdrs code
    hdrs="$(mktemp "$WORK/hdr.XXXXXX")"
    code=$(curl -s -o /dev/null -D "$hdrs" -w '%{http_code}' \
        -H 'Content-Type: application/json' -d "$AUTH_BODY" "$URL/v3/auth/tokens")
    [[ "$code" == 201 ]] || die "token issue returned HTTP $code"
    tr -d '\r' <"$hdrs" | awk -F': ' 'tolower($1)=="x-subject-token" {print $2}'
    rm -f "$hdrs"
}

AUTH_TOKEN=$(issue_token)
SUBJECT_TOKEN=$(issue_token)
[[ -n "$AUTH_TOKEN" && -n "$SUBJECT_TOKEN" ]] || die "no X-Subject-Token in response"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "X-Auth-Token: $AUTH_TOKEN" \
    -H "X-Subject-Token: $SUBJECT_TOKEN" "$URL/v3/auth/tokens")
[[ "$code" == 200 ]] || die "token validation returned HTTP $code"

# ------------------------------------------------------------------ wrk scripts
# Shared reporting: one machine-readable line per run.
REPORT_LUA='
function done(summary, latency, requests)
  local secs = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format("RESULT requests=%d rps=%.1f p50_us=%d p99_us=%d non2xx=%d socket_errors=%d timeouts=%d\n",
    summary.requests, summary.requests / secs,
    latency:percentile(50), latency:percentile(99),
    e.status, e.connect + e.read + e.write, e.timeout))
end
'
cat >"$WORK/validate.lua" <<EOF
wrk.method = "GET"
wrk.headers["X-Auth-Token"] = "$AUTH_TOKEN"
wrk.headers["X-Subject-Token"] = "$SUBJECT_TOKEN"
$REPORT_LUA
EOF
cat >"$WORK/issue.lua" <<EOF
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '$AUTH_BODY'
$REPORT_LUA
EOF

RESULTS=()   # "scenario conc threads rps p50 p99 requests errors"

run_wrk() {  # scenario lua conc
    local scenario=$1 lua=$2 conc=$3 threads out line
    threads=$THREADS
    (( conc == 1 )) && threads=1
    (( threads > conc )) && threads=$conc
    echo "  $scenario: concurrency $conc, $threads thread(s), $DURATION ..." >&2
    out=$(wrk -t "$threads" -c "$conc" -d "$DURATION" --timeout "$WRK_TIMEOUT" \
        -s "$lua" "$URL/v3/auth/tokens" 2>&1) || { echo "$out" >&2; die "wrk failed"; }
    line=$(grep '^RESULT ' <<<"$out" | tail -n 1)
    [[ -n "$line" ]] || { echo "$out" >&2; die "no RESULT line from wrk"; }
    local kv rps p50 p99 req non2xx sock tmo
    for kv in ${line#RESULT }; do
        case $kv in
            rps=*) rps=${kv#*=} ;;
            p50_us=*) p50=${kv#*=} ;;
            p99_us=*) p99=${kv#*=} ;;
            requests=*) req=${kv#*=} ;;
            non2xx=*) non2xx=${kv#*=} ;;
            socket_errors=*) sock=${kv#*=} ;;
            timeouts=*) tmo=${kv#*=} ;;
        esac
    done
    RESULTS+=("$scenario $conc $threads $rps $p50 $p99 $req $((non2xx + sock + tmo))")
}

echo "warm-up ..."
wrk -t 1 -c 4 -d 2s -s "$WORK/validate.lua" "$URL/v3/auth/tokens" >/dev/null 2>&1 || true

echo "token validation:"
for c in $CONCURRENCY; do run_wrk validate "$WORK/validate.lua" "$c"; done
RSS_AFTER_VALIDATE=$(rss_kb)

if [[ "${SKIP_ISSUE:-0}" != 1 ]]; then
    echo "token issue (password, default bcrypt cost):"
    for c in $CONCURRENCY; do run_wrk issue "$WORK/issue.lua" "$c"; done
fi
RSS_AFTER_ISSUE=$(rss_kb)
sleep 2
RSS_SETTLED=$(rss_kb)
HWM=$(hwm_kb)

# Sanity: the server still answers and the first token is still valid.
code=$(curl -s -o /dev/null -w '%{http_code}' -H "X-Auth-Token: $AUTH_TOKEN" \
    -H "X-Subject-Token: $SUBJECT_TOKEN" "$URL/v3/auth/tokens")

# ------------------------------------------------------------------ report
echo
echo "Ferrostack identity benchmark  ($(nproc) CPUs, wrk and server share them; $DURATION per run)"
echo "binary: $BIN"
echo
printf '%-10s %6s %8s %12s %10s %10s %10s %8s\n' \
    scenario conc threads 'req/s' 'p50 ms' 'p99 ms' requests errors
printf '%-10s %6s %8s %12s %10s %10s %10s %8s\n' \
    ---------- ------ -------- ------------ ---------- ---------- ---------- --------
UNRELIABLE=0
for r in "${RESULTS[@]}"; do
    read -r s c t rps p50 p99 req err <<<"$r"
    if (( req == 0 )); then
        p50s=-; p99s=-; UNRELIABLE=1
    else
        p50s=$(awk -v u="$p50" 'BEGIN{printf "%.2f", u/1000}')
        p99s=$(awk -v u="$p99" 'BEGIN{printf "%.2f", u/1000}')
        # wrk drops requests still in flight when the run ends: with fewer
        # completions than connections the percentiles are biased low.
        if (( req < 2 * c )); then p50s="$p50s*"; p99s="$p99s*"; UNRELIABLE=1; fi
    fi
    printf '%-10s %6s %8s %12s %10s %10s %10s %8s\n' \
        "$s" "$c" "$t" "$rps" "$p50s" "$p99s" "$req" "$err"
done
if (( UNRELIABLE )); then
    echo "* / -: fewer completed requests than 2x connections in $DURATION;"
    echo "  latency percentiles unreliable (bcrypt-bound). Try DURATION=30s."
fi
echo
printf '%-32s %s\n' "RSS idle (after bootstrap):" "$(mib "$RSS_IDLE")"
printf '%-32s %s\n' "RSS after validation load:" "$(mib "$RSS_AFTER_VALIDATE")"
if [[ "${SKIP_ISSUE:-0}" != 1 ]]; then
    printf '%-32s %s\n' "RSS after issue load:" "$(mib "$RSS_AFTER_ISSUE")"
fi
printf '%-32s %s\n' "RSS 2 s after load:" "$(mib "$RSS_SETTLED")"
printf '%-32s %s\n' "peak RSS (VmHWM):" "$(mib "$HWM")"
printf '%-32s %s\n' "post-run validation:" "HTTP $code"
echo "(RSS = VmRSS from /proc/PID/status, summed over the server's process tree: $(server_tree | wc -w) process(es))"
echo "(errors = non-2xx/3xx + socket errors + timeouts)"
