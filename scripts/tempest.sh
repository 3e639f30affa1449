#!/usr/bin/env bash
# Start a fresh all-in-one, run tempest's API tests for the given services
# against it, stop it. Prints one result line per service.
#
#   scripts/tempest.sh identity [image ...]
#   TEMPEST_COMPUTE_HOSTS=2 scripts/tempest.sh compute
#
# TEMPEST_COMPUTE_HOSTS=2 (root): two compute hosts instead of one — the
# all-in-one (host compute1) on this machine's RabbitMQ, and compute2, a
# `ferrostack serve` with the compute role (fake driver, its own L2 agent),
# each in a network namespace of its own (scripts/lib/tempest-two-host.sh,
# on the pieces of scripts/lib/three-node.sh); tempest.conf then says
# min_compute_nodes = 2 with cold and live (block) migration on. Fixed
# namespace names: the run holds /tmp/three-node.lock throughout.
set -uo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
hosts="${TEMPEST_COMPUTE_HOSTS:-1}"
case "$hosts" in
    1 | 2) ;;
    *) echo "tempest.sh: TEMPEST_COMPUTE_HOSTS is 1 or 2" >&2; exit 2 ;;
esac
if [[ $hosts == 2 ]]; then
    [[ $(id -u) -eq 0 ]] || { echo "tempest.sh: two compute hosts need root (network namespaces)" >&2; exit 2; }
    if [[ -z "${FERROSTACK_TEMPEST_LOCKED:-}" ]]; then
        exec env FERROSTACK_TEMPEST_LOCKED=1 flock -o /tmp/three-node.lock "$0" "$@"
    fi
# As root, run in a private network namespace: the all-in-one's network
# agents then build their bridges there, not on this machine's own stack.
elif [[ -z "${FERROSTACK_PRIVATE_NETNS:-}" && $(id -u) -eq 0 ]]; then
    exec env FERROSTACK_PRIVATE_NETNS=1 unshare -n -- bash -c 'ip link set lo up && exec "$0" "$@"' "$0" "$@"
fi
bin="${FERROSTACK_BIN:-$repo/target/debug/ferrostack}"
# The fake hypervisor driver: the compute fixtures (tools/tempest/
# ferrotempest.py) are 4 KiB raw images no real guest boots, and the rows of
# docs/compatibility.md stay comparable. scripts/tempest-vm.sh runs tempest
# compute against real QEMU guests.
export FERROSTACK__COMPUTE__DRIVER="${FERROSTACK__COMPUTE__DRIVER:-fake}"
[[ -x "$bin" ]] || cargo build -p ferrostack || exit 2
data="$(mktemp -d /tmp/ferrostack-tempest.XXXXXX)"

if [[ $hosts == 2 ]]; then
    prefix=ft2h
    dir="$data/hosts"
    BIN="$bin"
    # shellcheck source=scripts/lib/three-node.sh
    source "$repo/scripts/lib/three-node.sh"
    # shellcheck source=scripts/lib/tempest-two-host.sh
    source "$repo/scripts/lib/tempest-two-host.sh"
    trap two_host_down EXIT
    two_host_up
    for service in "$@"; do
        on ctl env TEMPEST_COMPUTE_HOSTS=2 tools/tempest/run.sh "$service" "$data"
    done
    echo "tempest workspace and logs: $data (compute2: $dir/cmp/log)"
    exit 0
fi

"$bin" all-in-one --data-dir "$data" >"$data/all-in-one.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; "$bin" netns-cleanup --data-dir "$data" >/dev/null 2>&1' EXIT
for _ in $(seq 1 60); do
    curl -sf http://127.0.0.1:5000/v3 >/dev/null && break
    kill -0 $pid 2>/dev/null || { echo "all-in-one exited:"; tail -20 "$data/all-in-one.log"; exit 2; }
    sleep 0.5
done
for service in "$@"; do
    tools/tempest/run.sh "$service" "$data"
done
echo "tempest workspace and logs: $data"
