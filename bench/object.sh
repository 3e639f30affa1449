#!/usr/bin/env bash
# On-demand object-storage benchmark for the Ferrostack all-in-one (not a test).
#
#   cargo build --release && bench/object.sh
#
# Starts the all-in-one on a fresh temp data dir and, on 127.0.0.1 only,
# through the Swift API (curl, X-Auth-Token):
#   1. writes BIG_MB (default 1024) with `dd ... conv=fsync` to the same disk
#      (the ceiling: what the disk takes, synced, with no HTTP);
#   2. PUTs and GETs COUNT (default 20) 1 MiB objects one after another, MB/s;
#   3. PUTs and GETs one BIG_MB object (curl -T / -o /dev/null), MB/s, and
#      the server's resident memory during each (peak over start): streamed,
#      not buffered, it must stay under LIMIT_MIB (default 64) — exit 1 if not;
#   4. PUTs SMALL (default 400) 1 KiB objects at concurrency 1 and 16, PUT/s.
#
# Environment:
#   FERROSTACK_BIN  server binary   (default: <repo>/target/release/ferrostack)
#   BIG_MB, COUNT, SMALL, LIMIT_MIB as above; BENCH_DIR for the work dir;
#   KEEP_DATA=1 keeps it. Ports 5000/35357/8080 and the others of the
#   all-in-one must be free: run it in a private namespace if they are not
#   (unshare -n -- bash -c 'ip link set lo up && exec bench/object.sh').
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${FERROSTACK_BIN:-$REPO/target/release/ferrostack}"
BIG_MB="${BIG_MB:-1024}"
COUNT="${COUNT:-20}"
SMALL="${SMALL:-400}"
LIMIT_MIB="${LIMIT_MIB:-64}"
HOST=127.0.0.1
CURL=(curl -sS --noproxy '*')

die() { echo "bench/object.sh: $*" >&2; exit 1; }
[[ -x "$BIN" ]] || die "$BIN not found; build it first: cargo build --release"
for port in 5000 8080; do
    if (exec 3<>"/dev/tcp/$HOST/$port") 2>/dev/null; then
        die "$HOST:$port is already in use; stop the running server first"
    fi
done

WORK="$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/tmp}}/ferrostack-bench-object.XXXXXX")"
DATA="$WORK/data"
mkdir -p "$DATA"
SERVER_PID=""
cleanup() {
    [[ -n "$SERVER_PID" ]] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
    if [[ "${KEEP_DATA:-0}" == 1 ]]; then echo "work dir kept: $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

FERROSTACK__NETWORK_AGENT__ENABLED=false FERROSTACK__COMPUTE__DRIVER=fake \
    "$BIN" all-in-one --data-dir "$DATA" >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 300); do
    "${CURL[@]}" -f "http://$HOST:8080/info" >/dev/null 2>&1 && break
    kill -0 "$SERVER_PID" 2>/dev/null || die "server exited: $(tail -5 "$WORK/server.log")"
    sleep 0.1
done

auth='{"auth":{"identity":{"methods":["password"],"password":{"user":{"name":"admin","domain":{"id":"default"},"password":"admin_pass"}}},"scope":{"project":{"name":"admin","domain":{"id":"default"}}}}}'
TOKEN=$("${CURL[@]}" -i -H 'Content-Type: application/json' -d "$auth" "http://$HOST:5000/v3/auth/tokens" \
    | awk -F': ' 'tolower($1)=="x-subject-token"{print $2}' | tr -d '\r')
PROJECT=$("${CURL[@]}" -H "X-Auth-Token: $TOKEN" -H "X-Subject-Token: $TOKEN" "http://$HOST:5000/v3/auth/tokens" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"]["project"]["id"])')
URL="http://$HOST:8080/v1/AUTH_$PROJECT"
H=(-H "X-Auth-Token: $TOKEN")
"${CURL[@]}" -f -X PUT "${H[@]}" "$URL/bench" >/dev/null

now() { date +%s.%N; }
rate() { awk -v b="$1" -v s="$2" 'BEGIN { printf "%.1f", b / 1048576 / s }'; }
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$SERVER_PID/status"; }

# 1. dd to the same disk.
t0=$(now); dd if=/dev/urandom of="$WORK/big.bin" bs=1M count="$BIG_MB" status=none; t1=$(now)
t0=$(now); dd if="$WORK/big.bin" of="$WORK/dd.bin" bs=1M conv=fsync status=none; t1=$(now)
echo "dd (same disk, fsync)        : $(rate $((BIG_MB * 1048576)) "$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')") MB/s"
rm -f "$WORK/dd.bin"

# 2. 1 MiB objects.
head -c 1048576 "$WORK/big.bin" > "$WORK/one.bin"
t0=$(now)
for i in $(seq 1 "$COUNT"); do
    "${CURL[@]}" -f -X PUT "${H[@]}" -T "$WORK/one.bin" "$URL/bench/one-$i" -o /dev/null
done
t1=$(now)
echo "PUT 1 MiB x $COUNT             : $(rate $((COUNT * 1048576)) "$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')") MB/s"
t0=$(now)
for i in $(seq 1 "$COUNT"); do
    "${CURL[@]}" -f "${H[@]}" "$URL/bench/one-$i" -o /dev/null
done
t1=$(now)
echo "GET 1 MiB x $COUNT             : $(rate $((COUNT * 1048576)) "$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')") MB/s"

# 3. One big object, with the server's RSS sampled at 20 Hz.
sample() {
    local peak=0 r
    while kill -0 "$1" 2>/dev/null; do
        r=$(rss_kib); (( r > peak )) && peak=$r
        sleep 0.05
    done
    echo "$peak"
}
transfer() {  # $1 = put|get
    local before peak t0 t1 pid
    before=$(rss_kib)
    t0=$(now)
    if [[ $1 == put ]]; then
        "${CURL[@]}" -f -X PUT "${H[@]}" -T "$WORK/big.bin" "$URL/bench/big" -o /dev/null &
    else
        "${CURL[@]}" -f "${H[@]}" "$URL/bench/big" -o /dev/null &
    fi
    pid=$!
    peak=$(sample "$pid")
    wait "$pid"
    t1=$(now)
    local grown=$(( (peak - before) / 1024 ))
    printf "%s %d MiB                 : %s MB/s, server RSS %d -> peak %d MiB (+%d)\n" \
        "${1^^}" "$BIG_MB" "$(rate $((BIG_MB * 1048576)) "$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')")" \
        $((before / 1024)) $((peak / 1024)) "$grown"
    (( grown <= LIMIT_MIB )) || { echo "RSS grew by more than $LIMIT_MIB MiB: not streamed" >&2; exit 1; }
}
transfer put
transfer get

# 4. Small objects at concurrency 1 and 16.
head -c 1024 "$WORK/big.bin" > "$WORK/small.bin"
export URL TOKEN WORK
for conc in 1 16; do
    t0=$(now)
    seq 1 "$SMALL" | xargs -P "$conc" -I{} curl -sS --noproxy '*' -f -X PUT \
        -H "X-Auth-Token: $TOKEN" -T "$WORK/small.bin" "$URL/bench/s$conc-{}" -o /dev/null
    t1=$(now)
    printf "PUT 1 KiB x %d, concurrency %-2d: %.0f PUT/s\n" "$SMALL" "$conc" \
        "$(awk -v n="$SMALL" -v a="$t0" -v b="$t1" 'BEGIN{print n/(b-a)}')"
done
