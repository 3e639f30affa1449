# Sourced by the scripts that run an all-in-one of their own (the benches,
# the OpenAPI fuzzing):
# `aio_start NAME` makes a work dir, starts "$BIN all-in-one" in
# it (environment as the caller set it), waits until identity, image,
# network and compute answer on $HOST, and stops it on exit (the work dir
# kept with KEEP_DATA=1 or on failure). Sets WORK, DATA, LOG, SERVER_PID.
# Needs: BIN, HOST, CURL (array) and die() from the caller.

aio_stop() {
    local rc=$?
    if [[ -n "${SERVER_PID:-}" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 1 100); do
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    if [[ "${KEEP_DATA:-0}" == 1 || $rc -ne 0 ]]; then
        echo "work dir and server log kept in $WORK" >&2
    else
        rm -rf "$WORK"
    fi
}

aio_start() {
    WORK="$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/tmp}}/ferrostack-$1.XXXXXX")"
    DATA="$WORK/data"
    LOG="$WORK/server.log"
    mkdir -p "$DATA"
    SERVER_PID=""
    trap aio_stop EXIT
    trap 'exit 130' INT TERM
    echo "starting $BIN all-in-one (data: $DATA${FERROSTACK_BENCH_NETNS:+, private network namespace})"
    "$BIN" all-in-one --data-dir "$DATA" >"$LOG" 2>&1 &
    SERVER_PID=$!
    local i
    for i in $(seq 1 240); do
        if "${CURL[@]}" -f -o /dev/null "http://$HOST:5000/v3" 2>/dev/null \
            && "${CURL[@]}" -f -o /dev/null "http://$HOST:9292/" 2>/dev/null \
            && "${CURL[@]}" -f -o /dev/null "http://$HOST:9696/" 2>/dev/null \
            && "${CURL[@]}" -f -o /dev/null "http://$HOST:8774/" 2>/dev/null \
            && "${CURL[@]}" -f -o /dev/null "http://$HOST:8776/" 2>/dev/null; then
            break
        fi
        kill -0 "$SERVER_PID" 2>/dev/null || { tail -n 40 "$LOG" >&2; die "server exited during startup"; }
        sleep 0.25
        [[ $i -eq 240 ]] && { tail -n 40 "$LOG" >&2; die "server not ready after 60s"; }
    done
    echo "server ready (pid $SERVER_PID)"
}
