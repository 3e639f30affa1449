#!/usr/bin/env bash
# On-demand block-storage benchmark (not a test): the VM suite's cloud
# (real QEMU guests from the image tools/guest-image builds, the seed's
# networks, SSH over floating IPs), then:
#
#   volume create -> available     empty 1 GiB, and from the test image
#   attach -> disk in the guest    API call until the guest's /sys shows it
#   detach -> gone from the guest
#   sequential write / read MB/s   dd of 256 MiB inside the guest on the
#                                  attached volume (NBD from
#                                  qemu-storage-daemon), beside the same dd
#                                  on a file in the volume directory on the
#                                  host; the ratio is the figure to push
#                                  toward 1
#
#   cargo build && bench/volume.sh
#
# Needs root; runs in a private network namespace (nothing leaves it).
# Environment: FERROSTACK_BIN (default target/debug/ferrostack), ROUNDS (5).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export FERROSTACK_BIN="${FERROSTACK_BIN:-$repo/target/debug/ferrostack}"
[[ -x "$FERROSTACK_BIN" ]] || { echo "build it first: cargo build" >&2; exit 2; }
[[ $(id -u) -eq 0 ]] || { echo "bench/volume.sh needs root (guests' taps, namespaces)" >&2; exit 2; }
export FERROSTACK_GUEST_IMAGE="${FERROSTACK_GUEST_IMAGE:-$repo/target/guest-image/guest.qcow2}"
"$repo/tools/guest-image/build.sh" "$FERROSTACK_GUEST_IMAGE" >/dev/null
venv="${FERROSTACK_VENV:-$repo/.venv}"
[[ -x "$venv/bin/python" ]] || "$repo/tools/setup-venv.sh"
# The VM suite's fixtures (tests/vm/conftest.py, loaded as a plugin) build
# the cloud; the benchmark is a pytest module run with them, printing its
# figures.
export PYTHONPATH="$repo/tests/vm${PYTHONPATH:+:$PYTHONPATH}"
exec unshare -n -- bash -c 'ip link set lo up && exec "$@"' bash \
    "$venv/bin/pytest" -q -s -p no:cacheprovider -p conftest \
    -o python_files=volume.py -o python_functions='bench_*' "$repo/bench/volume.py"
