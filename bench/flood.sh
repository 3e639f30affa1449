#!/usr/bin/env bash
# On-demand flood benchmark for the Ferrostack all-in-one (not a test).
#
#   cargo build --release && bench/flood.sh
#
# Starts the all-in-one on a fresh temp data dir (in a private network
# namespace when run as root, with the network agents on; else on the
# host's 127.0.0.1 with the agents off), then (bench/flood.py):
#   1. CLIENTS (default 50) clients send GETs round-robin to identity,
#      image, network and compute for DURATION (default 15) seconds;
#   2. IDLE (default 20000) connections are opened and held — half silent,
#      half stuck in the middle of their headers; half to identity's port,
#      the rest over the other APIs — and step 1 runs again; as root a
#      network with DHCP is created meanwhile and its DHCP port must go
#      ACTIVE (the agents still get file descriptors);
#   3. prints the server's VmRSS / VmHWM and open descriptors after each step.
# Exits non-zero if any request failed. Each listener holds at most its
# share of the open-files limit and closes its oldest idle connection when
# full, so the flood costs the server a bounded number of descriptors.
#
# Environment: FERROSTACK_BIN (default <repo>/target/release/ferrostack),
# FERROSTACK_VENV, CLIENTS, IDLE, DURATION, BENCH_DIR, KEEP_DATA=1.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
die() { echo "bench/flood.sh: $*" >&2; exit 1; }

BIN="${FERROSTACK_BIN:-$REPO/target/release/ferrostack}"
[[ "$BIN" == /* ]] || BIN="$PWD/$BIN"
[[ -x "$BIN" ]] || die "$BIN not found; build it first: cargo build --release (or set FERROSTACK_BIN)"
VENV="${FERROSTACK_VENV:-$REPO/.venv}"
[[ -x "$VENV/bin/python" ]] || "$REPO/tools/setup-venv.sh"
command -v curl >/dev/null || die "curl is required"

if [[ $EUID -eq 0 && -z "${FERROSTACK_BENCH_NETNS:-}" ]]; then
    export FERROSTACK_BENCH_NETNS=1 FERROSTACK_BIN="$BIN"
    exec unshare -n -- bash -c 'ip link set lo up && exec "$@"' bash \
        "$BASH" "${BASH_SOURCE[0]}" "$@"
fi

export CLIENTS="${CLIENTS:-50}" IDLE="${IDLE:-20000}" DURATION="${DURATION:-15}"
HOST=127.0.0.1
CURL=(curl -sS --noproxy '*')
for port in 5000 35357 8774 9292 9696; do
    if (exec 3<>"/dev/tcp/$HOST/$port") 2>/dev/null; then
        die "$HOST:$port is already in use; stop the running server first"
    fi
done

export FERROSTACK__COMMON__BIND_HOST=$HOST FERROSTACK__COMMON__PUBLIC_HOST=$HOST
export FERROSTACK__IDENTITY__BCRYPT_COST=4
export FERROSTACK__COMPUTE__DRIVER=fake
if [[ -n "${FERROSTACK_BENCH_NETNS:-}" ]]; then
    export AGENTS=1
else
    export AGENTS=0 FERROSTACK__NETWORK_AGENT__ENABLED=false
fi

# shellcheck source=scripts/lib/all-in-one.sh
source "$REPO/scripts/lib/all-in-one.sh"
aio_start flood

export SERVER_PID
"$VENV/bin/python" "$REPO/bench/flood.py"
