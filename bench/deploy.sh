#!/usr/bin/env bash
# On-demand deploy benchmark (not a test).
#
#   cargo build --release -p ferrostack && bench/deploy.sh
#
# Prints:
#   1. RPC round trip p50 / p99 over the in-process bus and over RabbitMQ
#      (crates/bus/tests/rpc_latency.rs in release: sequential calls to an
#      echo server through the real bus code; RPC_CALLS, default 2000);
#   2. the all-in-one (bench/deploy.py, in a private network namespace):
#      time from `ferrostack all-in-one` started to its APIs answering and
#      to the first VM ACTIVE, taking the same CLI steps as
#      scripts/three-node.sh; its RSS once idle;
#   3. the three-node deploy (scripts/three-node.sh, under
#      flock /tmp/three-node.lock, on this machine's PostgreSQL and
#      RabbitMQ): time from start to the nodes running and to vm1 ACTIVE;
#      each host's ferrostack RSS once idle and the control plane's sum.
#      Target: under 150 MB (MariaDB/PostgreSQL and RabbitMQ not counted).
# Each deploy boots one real QEMU guest from the test image.
#
# Needs root, QEMU and the test guest image. Environment:
#   FERROSTACK_BIN          (default: <repo>/target/release/ferrostack)
#   FERROSTACK_GUEST_IMAGE  (default: target/guest-image/guest.qcow2, built if missing)
#   FERROSTACK_VENV         (default: <repo>/.venv)
#   IDLE_SECONDS            how long each deploy idles before its RSS is read (20)
#   RPC_CALLS               round trips per transport (2000)
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export FERROSTACK_BIN="${FERROSTACK_BIN:-$repo/target/release/ferrostack}"
[[ -x $FERROSTACK_BIN ]] || { echo "build it first: cargo build --release -p ferrostack" >&2; exit 2; }
[[ $(id -u) -eq 0 ]] || { echo "bench/deploy.sh needs root (namespaces, guests' taps)" >&2; exit 2; }
export FERROSTACK_GUEST_IMAGE="${FERROSTACK_GUEST_IMAGE:-$repo/target/guest-image/guest.qcow2}"
[[ -f $FERROSTACK_GUEST_IMAGE ]] || "$repo/tools/guest-image/build.sh" "$FERROSTACK_GUEST_IMAGE" >/dev/null
export FERROSTACK_VENV="${FERROSTACK_VENV:-$repo/.venv}"
[[ -x $FERROSTACK_VENV/bin/python ]] || "$repo/tools/setup-venv.sh"
export IDLE_SECONDS="${IDLE_SECONDS:-20}"
export FERROSTACK__IDENTITY__BCRYPT_COST="${FERROSTACK__IDENTITY__BCRYPT_COST:-4}"
log() { printf 'deploy-bench: %s\n' "$*" >&2; }

rpc_latency() {
    log "RPC round trips (building crates/bus's benchmark in release)"
    (cd "$repo" && FERROSTACK_BENCH_CALLS="${RPC_CALLS:-2000}" cargo test --release -q \
        -p ferrostack-bus --test rpc_latency -- --ignored --nocapture 2>/dev/null) \
        | grep '^rpc round trip'
}

all_in_one() {
    log "all-in-one: start, the seed's section 5, vm1"
    unshare -n -- bash -c 'ip link set lo up && exec "$@"' bash \
        "$FERROSTACK_VENV/bin/python" "$repo/bench/deploy.py"
}

rss_mib() { awk '/^VmRSS:/ {printf "%.0f", $2 / 1024}' "/proc/$1/status"; }

# seconds_at LOG TEXT: the script's [  Ns] stamp on its line with TEXT.
seconds_at() { grep -F "$2" "$1" | head -n1 | sed -E 's/^three-node: \[ *([0-9]+)s\].*/\1/'; }

three_node() {
    local prefix=fsb dir=/tmp/fsbench out h total=0 rss line=""
    out=$(mktemp)
    log "three-node: waiting for /tmp/three-node.lock (one three-node deploy per machine)"
    exec 8>/tmp/three-node.lock
    flock 8
    trap '"$repo/scripts/three-node.sh" --down --prefix '"$prefix"' --dir '"$dir"' 8>&- >/dev/null 2>&1' EXIT
    log "three-node: scripts/three-node.sh (log: $out)"
    "$repo/scripts/three-node.sh" --prefix "$prefix" --dir "$dir" \
        --image "$FERROSTACK_GUEST_IMAGE" 8>&- 2>"$out"
    sleep "$IDLE_SECONDS"
    for h in ctl net cmp; do
        rss=$(rss_mib "$(cat "$dir/$h/pid")")
        total=$((total + rss))
        line+=" $h $rss MiB,"
    done
    echo "three-node: nodes running $(seconds_at "$out" "nodes running") s, first VM ACTIVE" \
        "$(seconds_at "$out" "vm1 ACTIVE") s after start; RSS idle (${IDLE_SECONDS} s after):${line}" \
        "control plane $total MiB (target < 150 MB)"
}

rpc_latency
all_in_one
three_node
