#!/usr/bin/env bash
# On-demand image-service benchmark for the Ferrostack all-in-one (not a test).
#
#   cargo build --release && bench/image.sh
#
# Starts target/release/ferrostack on a fresh temp data dir and, on
# 127.0.0.1 only:
#   1. writes a SIZE_MB (default 1024) file of random data and measures
#      `cat file > /dev/null` (the local read ceiling, page cache warm);
#   2. uploads it (curl -T, PUT /v2/images/{id}/file, X-Auth-Token) and
#      downloads it (GET /v2/images/{id}/file to /dev/null), printing MB/s,
#      checking status codes, size, checksum (md5) and os_hash_value (sha512);
#   3. does the same with a BIG_MB (default 2048) file and reports how much
#      the server's resident memory grew during the upload and the download:
#      streaming must keep it under LIMIT_MIB (default 64) — exit 1 if not.
# VmRSS/VmHWM come from /proc/PID/status (summed over the server's process
# tree); the peak of each phase is VmHWM after resetting it through
# /proc/PID/clear_refs (falls back to 20 Hz VmRSS sampling).
#
# Environment:
#   FERROSTACK_BIN   server binary          (default: <repo>/target/release/ferrostack)
#   SIZE_MB          first file size, MiB   (default: 1024)
#   BIG_MB           memory test size, MiB  (default: 2048; 0 skips phase 3)
#   LIMIT_MIB        allowed RSS growth     (default: 64)
#   BENCH_DIR        where files and the data dir go (default: $TMPDIR or /tmp)
#   KEEP_DATA=1      keep the work dir and server log
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${FERROSTACK_BIN:-$REPO/target/release/ferrostack}"
SIZE_MB="${SIZE_MB:-1024}"
BIG_MB="${BIG_MB:-2048}"
LIMIT_MIB="${LIMIT_MIB:-64}"
HOST=127.0.0.1
ID_URL="http://$HOST:5000"
IMG_URL="http://$HOST:9292"
CURL=(curl -sS --noproxy '*')

die() { echo "bench/image.sh: $*" >&2; exit 1; }

[[ -x "$BIN" ]] || die "$BIN not found; build it first: cargo build --release"
for tool in curl md5sum sha512sum awk head; do
    command -v "$tool" >/dev/null || die "$tool is required"
done
for port in 5000 35357 9292; do
    if (exec 3<>"/dev/tcp/$HOST/$port") 2>/dev/null; then
        die "$HOST:$port is already in use; stop the running server first"
    fi
done

WORK="$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/tmp}}/ferrostack-bench-image.XXXXXX")"
DATA="$WORK/data"
LOG="$WORK/server.log"
mkdir -p "$DATA"
need_mb=$(( SIZE_MB * 2 + BIG_MB * 2 + 512 ))
avail_mb=$(df -Pm "$WORK" | awk 'NR==2 {print $4}')
(( avail_mb > need_mb )) || die "need ~${need_mb} MiB free in $WORK, have ${avail_mb} MiB"
SERVER_PID=""
SAMPLER_PID=""

cleanup() {
    local rc=$?
    if [[ -n "$SAMPLER_PID" ]]; then kill "$SAMPLER_PID" 2>/dev/null || true; fi
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 1 100); do
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    if [[ "${KEEP_DATA:-0}" == 1 || ( $rc -ne 0 && $rc -ne 3 ) ]]; then
        echo "work dir and server log kept in $WORK" >&2
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------ process memory
server_tree() {
    local pids=("$SERVER_PID") i=0 p
    while (( i < ${#pids[@]} )); do
        for p in $(ps -o pid= --ppid "${pids[$i]}" 2>/dev/null); do pids+=("$p"); done
        i=$((i + 1))
    done
    echo "${pids[@]}"
}
proc_sum() {  # VmRSS | VmHWM, kB, over the process tree
    local key=$1 total=0 p v
    for p in $(server_tree); do
        v=$(awk -v k="$key:" '$1 == k {print $2}' "/proc/$p/status" 2>/dev/null || true)
        total=$((total + ${v:-0}))
    done
    echo "$total"
}
rss_kb() { proc_sum VmRSS; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'; }
delta() { awk -v k="$1" 'BEGIN { printf "%+.1f MiB", k / 1024 }'; }

CAN_RESET_HWM=0
reset_peak() {  # start a new peak-RSS window
    local p ok=1
    for p in $(server_tree); do
        { echo 5 > "/proc/$p/clear_refs"; } 2>/dev/null || ok=0
    done
    CAN_RESET_HWM=$ok
    : > "$WORK/rss.samples"
    if [[ -n "$SAMPLER_PID" ]]; then kill "$SAMPLER_PID" 2>/dev/null || true; fi
    ( while :; do rss_kb >> "$WORK/rss.samples"; sleep 0.05; done ) &
    SAMPLER_PID=$!
}
phase_peak_kb() {  # peak RSS since reset_peak
    local hwm sampled
    kill "$SAMPLER_PID" 2>/dev/null || true
    wait "$SAMPLER_PID" 2>/dev/null || true
    SAMPLER_PID=""
    sampled=$(sort -n "$WORK/rss.samples" | tail -n 1)
    sampled=${sampled:-0}
    if (( CAN_RESET_HWM )); then
        hwm=$(proc_sum VmHWM)
        (( hwm > sampled )) && sampled=$hwm
    fi
    echo "$sampled"
}

# ------------------------------------------------------------ server
echo "starting $BIN all-in-one (data: $DATA)"
"$BIN" all-in-one --data-dir "$DATA" >"$LOG" 2>&1 &
SERVER_PID=$!
for i in $(seq 1 240); do
    if "${CURL[@]}" -f -o /dev/null "$ID_URL/v3" 2>/dev/null \
        && "${CURL[@]}" -o /dev/null "$IMG_URL/versions" 2>/dev/null; then
        break
    fi
    kill -0 "$SERVER_PID" 2>/dev/null || { tail -n 40 "$LOG" >&2; die "server exited during startup"; }
    sleep 0.25
    [[ $i -eq 240 ]] && { tail -n 40 "$LOG" >&2; die "server not ready after 60s"; }
done
echo "server ready (pid $SERVER_PID)"

AUTH_BODY='{"auth":{"identity":{"methods":["password"],"password":{"user":{"name":"admin","domain":{"name":"Default"},"password":"admin_pass"}}},"scope":{"project":{"name":"admin","domain":{"name":"Default"}}}}}'
hdrs="$WORK/token.hdr"
code=$("${CURL[@]}" -o /dev/null -D "$hdrs" -w '%{http_code}' \
    -H 'Content-Type: application/json' -d "$AUTH_BODY" "$ID_URL/v3/auth/tokens")
[[ "$code" == 201 ]] || die "token issue returned HTTP $code"
TOKEN=$(tr -d '\r' <"$hdrs" | awk -F': ' 'tolower($1)=="x-subject-token" {print $2}')
[[ -n "$TOKEN" ]] || die "no X-Subject-Token"

json_field() {  # json_field KEY < json   (flat string/number fields only)
    python3 -c 'import json,sys; v=json.load(sys.stdin).get(sys.argv[1]); print("" if v is None else v)' "$1"
}

create_image() {  # name -> id
    local out code
    out=$("${CURL[@]}" -w '\n%{http_code}' -H "X-Auth-Token: $TOKEN" \
        -H 'Content-Type: application/json' \
        -d "{\"name\": \"$1\", \"disk_format\": \"raw\", \"container_format\": \"bare\"}" \
        "$IMG_URL/v2/images")
    code=${out##*$'\n'}
    [[ "$code" == 201 ]] || die "POST /v2/images returned HTTP $code: ${out%$'\n'*}"
    json_field id <<<"${out%$'\n'*}"
}
show_image() { "${CURL[@]}" -H "X-Auth-Token: $TOKEN" "$IMG_URL/v2/images/$1"; }
delete_image() {
    "${CURL[@]}" -o /dev/null -X DELETE -H "X-Auth-Token: $TOKEN" "$IMG_URL/v2/images/$1" || true
}

mbps() { awk -v b="$1" -v t="$2" 'BEGIN { if (t <= 0) print "inf"; else printf "%.1f", b / 1048576 / t }'; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

upload() {  # id file -> seconds (dies unless 204)
    local out code t
    out=$("${CURL[@]}" -o /dev/null -w '%{http_code} %{time_total}' -T "$2" \
        -H "X-Auth-Token: $TOKEN" -H 'Content-Type: application/octet-stream' \
        "$IMG_URL/v2/images/$1/file")
    read -r code t <<<"$out"
    [[ "$code" == 204 ]] || { tail -n 20 "$LOG" >&2; die "upload returned HTTP $code"; }
    echo "$t"
}
download() {  # id -> "seconds bytes content-md5"
    local out code t n md5
    out=$("${CURL[@]}" -o /dev/null -D "$WORK/dl.hdr" -w '%{http_code} %{time_total} %{size_download}' \
        -H "X-Auth-Token: $TOKEN" "$IMG_URL/v2/images/$1/file")
    read -r code t n <<<"$out"
    [[ "$code" == 200 ]] || die "download returned HTTP $code"
    md5=$(tr -d '\r' <"$WORK/dl.hdr" | awk -F': ' 'tolower($1)=="content-md5" {print $2}')
    echo "$t $n ${md5:--}"
}
verify_image() {  # id file md5 sha512
    local doc status size checksum hash
    doc=$(show_image "$1")
    status=$(json_field status <<<"$doc")
    size=$(json_field size <<<"$doc")
    checksum=$(json_field checksum <<<"$doc")
    hash=$(json_field os_hash_value <<<"$doc")
    [[ "$status" == active ]] || die "image $1 is $status after upload"
    [[ "$size" == "$(stat -c %s "$2")" ]] || die "image size $size != file size"
    [[ "$checksum" == "$3" ]] || die "checksum $checksum != md5 $3"
    [[ "$hash" == "$4" ]] || die "os_hash_value differs from sha512 of the file"
}

sleep 1
RSS_IDLE=$(rss_kb)

# ------------------------------------------------------------ phase 1+2
FILE="$WORK/random-${SIZE_MB}M.bin"
echo "writing $SIZE_MB MiB of random data ..."
head -c "$((SIZE_MB * 1048576))" /dev/urandom > "$FILE"
BYTES=$(stat -c %s "$FILE")
MD5=$(md5sum "$FILE" | awk '{print $1}')
SHA512=$(sha512sum "$FILE" | awk '{print $1}')

cat "$FILE" > /dev/null   # warm the page cache like the upload will see it
t0=$(now); cat "$FILE" > /dev/null; t1=$(now)
CAT_S=$(elapsed "$t0" "$t1")

ID1=$(create_image "bench-${SIZE_MB}M")
RSS_BEFORE=$(rss_kb)
reset_peak
UP_S=$(upload "$ID1" "$FILE")
UP_PEAK=$(phase_peak_kb)
RSS_AFTER_UP=$(rss_kb)
verify_image "$ID1" "$FILE" "$MD5" "$SHA512"
reset_peak
read -r DOWN_S DOWN_N DOWN_MD5 <<<"$(download "$ID1")"
DOWN_PEAK=$(phase_peak_kb)
RSS_AFTER_DOWN=$(rss_kb)
[[ "$DOWN_N" == "$BYTES" ]] || die "downloaded $DOWN_N bytes, expected $BYTES"
[[ "$DOWN_MD5" == "$MD5" || "$DOWN_MD5" == - ]] || die "Content-MD5 $DOWN_MD5 != $MD5"
delete_image "$ID1"

# ------------------------------------------------------------ phase 3
BIG_RESULT="skipped (BIG_MB=0)"
FAIL=0
if (( BIG_MB > 0 )); then
    rm -f "$FILE"
    BIG="$WORK/random-${BIG_MB}M.bin"
    echo "writing $BIG_MB MiB of random data ..."
    head -c "$((BIG_MB * 1048576))" /dev/urandom > "$BIG"
    BIG_BYTES=$(stat -c %s "$BIG")
    BIG_MD5=$(md5sum "$BIG" | awk '{print $1}')
    BIG_SHA=$(sha512sum "$BIG" | awk '{print $1}')
    ID2=$(create_image "bench-${BIG_MB}M")
    sleep 1
    BIG_BASE=$(rss_kb)
    reset_peak
    BIG_UP_S=$(upload "$ID2" "$BIG")
    BIG_UP_PEAK=$(phase_peak_kb)
    verify_image "$ID2" "$BIG" "$BIG_MD5" "$BIG_SHA"
    BIG_MID=$(rss_kb)
    reset_peak
    read -r BIG_DOWN_S BIG_DOWN_N _ <<<"$(download "$ID2")"
    BIG_DOWN_PEAK=$(phase_peak_kb)
    BIG_END=$(rss_kb)
    [[ "$BIG_DOWN_N" == "$BIG_BYTES" ]] || die "downloaded $BIG_DOWN_N bytes, expected $BIG_BYTES"
    delete_image "$ID2"
    GROW_UP=$(( BIG_UP_PEAK - BIG_BASE ))
    GROW_DOWN=$(( BIG_DOWN_PEAK - BIG_BASE ))
    GROW=$(( GROW_UP > GROW_DOWN ? GROW_UP : GROW_DOWN ))
    if (( GROW < LIMIT_MIB * 1024 )); then
        BIG_RESULT="PASS: peak RSS growth $(mib "$GROW") < $LIMIT_MIB MiB"
    else
        BIG_RESULT="FAIL: peak RSS growth $(mib "$GROW") >= $LIMIT_MIB MiB"
        FAIL=1
    fi
fi

# ------------------------------------------------------------ report
echo
echo "Ferrostack image benchmark  ($(nproc) CPUs shared by curl and the server; data dir on $(df -P "$WORK" | awk 'NR==2 {print $1}'))"
echo "binary: $BIN"
echo
printf '%-34s %10s %10s\n' "$SIZE_MB MiB random file" "seconds" "MB/s"
printf '%-34s %10s %10s\n' "cat file > /dev/null (warm cache)" "$CAT_S" "$(mbps "$BYTES" "$CAT_S")"
printf '%-34s %10s %10s\n' "upload   PUT  /v2/images/{id}/file" "$UP_S" "$(mbps "$BYTES" "$UP_S")"
printf '%-34s %10s %10s\n' "download GET  /v2/images/{id}/file" "$DOWN_S" "$(mbps "$BYTES" "$DOWN_S")"
echo "(MB/s = MiB per second; upload verified: status active, size, md5 checksum, sha512 os_hash_value)"
echo
printf '%-34s %s\n' "RSS idle:" "$(mib "$RSS_IDLE")"
printf '%-34s %s\n' "RSS before upload:" "$(mib "$RSS_BEFORE")"
printf '%-34s %s\n' "peak RSS during upload:" "$(mib "$UP_PEAK")"
printf '%-34s %s\n' "RSS after upload:" "$(mib "$RSS_AFTER_UP")"
printf '%-34s %s\n' "peak RSS during download:" "$(mib "$DOWN_PEAK")"
printf '%-34s %s\n' "RSS after download:" "$(mib "$RSS_AFTER_DOWN")"
if (( BIG_MB > 0 )); then
    echo
    printf '%-34s %10s %10s\n' "$BIG_MB MiB random file" "seconds" "MB/s"
    printf '%-34s %10s %10s\n' "upload" "$BIG_UP_S" "$(mbps "$BIG_BYTES" "$BIG_UP_S")"
    printf '%-34s %10s %10s\n' "download" "$BIG_DOWN_S" "$(mbps "$BIG_BYTES" "$BIG_DOWN_S")"
    printf '%-34s %s\n' "RSS before:" "$(mib "$BIG_BASE")"
    printf '%-34s %s (%s)\n' "peak RSS during upload:" "$(mib "$BIG_UP_PEAK")" "$(delta "$GROW_UP")"
    printf '%-34s %s\n' "RSS after upload:" "$(mib "$BIG_MID")"
    printf '%-34s %s (%s)\n' "peak RSS during download:" "$(mib "$BIG_DOWN_PEAK")" "$(delta "$GROW_DOWN")"
    printf '%-34s %s\n' "RSS after download:" "$(mib "$BIG_END")"
fi
echo "$BIG_RESULT"
if (( CAN_RESET_HWM )); then
    echo "(peaks: VmHWM reset via /proc/PID/clear_refs per phase, and 20 Hz VmRSS samples)"
else
    echo "(peaks: 20 Hz VmRSS samples; /proc/PID/clear_refs not writable)"
fi
(( FAIL == 0 )) || exit 3
