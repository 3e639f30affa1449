#!/usr/bin/env bash
# Set up this host and run the Ferrostack all-in-one in the foreground.
#
#   scripts/all-in-one.sh [--data-dir DIR] [--host ADDR]
#
# Builds the release binary, installs the stock OpenStack clients into .venv
# (so `openstack` is at hand), then starts every service on 127.0.0.1.
# Credentials land in DIR/openrc, DIR/openrc-demo and DIR/clouds.yaml.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

scripts/setup-host.sh
cargo build --release -p ferrostack
tools/setup-venv.sh || echo "warning: the client venv could not be set up; the cloud runs anyway" >&2

# The seed's external network (flat, physnet1, 192.168.100.0/24 with the
# gateway .1) lands on a bridge `br-ex` on this host carrying that gateway
# address, so floating IPs are reachable from here. It has no uplink: nothing
# leaves the machine. FERROSTACK_BR_EX=0 leaves br-ex to the operator.
if [[ $(id -u) -eq 0 && "${FERROSTACK_BR_EX:-1}" != 0 ]]; then
    gw="${FERROSTACK_BR_EX_ADDRESS:-192.168.100.1/24}"
    ip link show br-ex >/dev/null 2>&1 || ip link add br-ex type bridge
    ip addr replace "$gw" dev br-ex
    ip link set br-ex up
    export FERROSTACK__NETWORK_AGENT__BRIDGE_MAPPINGS="${FERROSTACK__NETWORK_AGENT__BRIDGE_MAPPINGS:-physnet1:br-ex}"
    echo "external bridge br-ex with $gw (physnet1)"
fi

echo
echo "Clients: source $repo/.venv/bin/activate, then source <data dir>/openrc"
echo
exec target/release/ferrostack all-in-one "$@"
