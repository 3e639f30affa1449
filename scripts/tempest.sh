#!/usr/bin/env bash
# Start a fresh all-in-one, run tempest's API tests for the given services
# against it, stop it. Prints one result line per service.
#
#   scripts/tempest.sh identity [image ...]
set -uo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
# As root, run in a private network namespace: the all-in-one's network
# agents then build their bridges there, not on this machine's own stack.
if [[ -z "${FERROSTACK_PRIVATE_NETNS:-}" && $(id -u) -eq 0 ]]; then
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
