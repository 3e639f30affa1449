#!/usr/bin/env bash
# On-demand data-plane benchmark (not a test): how fast the network agents
# turn API calls into working packets.
#
#   cargo build --release && bench/dataplane.sh
#
# Runs in a private network namespace (needs root) with the all-in-one, an
# external network and stand-in instances as in tests/dataplane, and prints
# for RUNS ports (default 10):
#   - port create (API) -> port ACTIVE (the L2 agent plugged the tap),
#   - port create -> the DHCP server knows the port (dnsmasq host entry),
#   - port create -> the stand-in holds its address (udhcpc lease; udhcpc
#     retries in whole seconds, so a miss costs 1 s),
# and for as many floating IPs:
#   - floating IP associate (API) -> first ICMP reply from the external host.
# Published Neutron figures are seconds for both (port ACTIVE typically 2–5 s
# with the OVS agent's polling).
#
# Environment: FERROSTACK_BIN (default target/release/ferrostack), RUNS.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export FERROSTACK_BIN="${FERROSTACK_BIN:-$repo/target/release/ferrostack}"
[[ -x "$FERROSTACK_BIN" ]] || { echo "build it first: cargo build --release" >&2; exit 2; }
venv="${FERROSTACK_VENV:-$repo/.venv}"
[[ -x "$venv/bin/python" ]] || "$repo/tools/setup-venv.sh"
exec unshare -n -- bash -c 'ip link set lo up && exec "$@"' bash \
    "$venv/bin/python" "$repo/bench/dataplane.py"
