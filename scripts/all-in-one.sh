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

echo
echo "Clients: source $repo/.venv/bin/activate, then source <data dir>/openrc"
echo
exec target/release/ferrostack all-in-one "$@"
