#!/usr/bin/env bash
# On-demand boot benchmark (not a test): real QEMU guests from the image
# tools/guest-image builds, on the seed's networks, reached over SSH on
# their floating IPs from an "external host".
#
#   cargo build --release && bench/boot.sh
#
# Prints for 1 and then CONCURRENT (default 10) concurrent boots: API call
# -> ACTIVE, -> first console line, -> guest banner, -> SSH answers on the
# floating IP; API -> ACTIVE split into control-plane, hypervisor and
# network time (from the create saga's step timings); the RSS of the
# all-in-one and of each QEMU. Targets: control-plane time <= 100 ms per
# boot, API -> ACTIVE <= QEMU start + 1 s, 10 concurrent boots with 0
# failures. For reference, OpenStack's published API -> ACTIVE is 4-13 s.
#
# Needs root; runs in a private network namespace (nothing leaves it).
# Environment: FERROSTACK_BIN (default target/release/ferrostack), CONCURRENT.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export FERROSTACK_BIN="${FERROSTACK_BIN:-$repo/target/release/ferrostack}"
[[ -x "$FERROSTACK_BIN" ]] || { echo "build it first: cargo build --release" >&2; exit 2; }
[[ $(id -u) -eq 0 ]] || { echo "bench/boot.sh needs root (guests' taps, namespaces)" >&2; exit 2; }
# The guest image is built out here: its Debian packages are downloaded
# (once, then cached), which the private namespace below could not do.
export FERROSTACK_GUEST_IMAGE="${FERROSTACK_GUEST_IMAGE:-$repo/target/guest-image/guest.qcow2}"
"$repo/tools/guest-image/build.sh" "$FERROSTACK_GUEST_IMAGE" >/dev/null
venv="${FERROSTACK_VENV:-$repo/.venv}"
[[ -x "$venv/bin/python" ]] || "$repo/tools/setup-venv.sh"
exec unshare -n -- bash -c 'ip link set lo up && exec "$@"' bash \
    "$venv/bin/python" "$repo/bench/boot.py"
