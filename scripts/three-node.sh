#!/usr/bin/env bash
# The seed's three-node deployment on this machine, out of network
# namespaces (docs/multinode.md):
#
#   <p>-ctl  controller  10.10.10.51, 192.168.100.51  (PostgreSQL, RabbitMQ, every API)
#   <p>-net  network     10.10.10.52, 10.20.20.52, br-ex on 192.168.100.0/24
#   <p>-cmp  compute     10.10.10.53, 10.20.20.53     (QEMU guests)
#   <p>-sw   the switch: bridges of the management, VM data and external
#            networks, and the external host 192.168.100.1 (and 10.10.10.1)
#
# It starts PostgreSQL and RabbitMQ of this machine when they are down (the
# controller reaches them through a forwarder on 10.10.10.51), one
# `ferrostack serve --config <host>.toml` per host, runs the seed's
# section 5 (net_admin 50.50.1.0/24, router_admin, net_external with
# floating IPs .111 and .112), boots a real QEMU guest on the compute host
# from the test guest image, and pings and SSHes into it from the external
# host on its floating IP. Everything stays up until `--down`.
#
#   scripts/three-node.sh [--prefix P] [--dir DIR] [--image FILE] [--no-vm] [--ha] [--own-broker]
#   scripts/three-node.sh --add-compute NAME [--prefix P] [--dir DIR]
#   scripts/three-node.sh --add-controller NAME [--prefix P] [--dir DIR]
#   scripts/three-node.sh --broker stop|start|restart [--prefix P] [--dir DIR]
#   scripts/three-node.sh --down [--prefix P] [--dir DIR]
#
# --ha: a second network node (network2) for highly available routers.
#
# --own-broker: a RabbitMQ node of the deployment's own (127.0.0.1:5679,
# FERROSTACK_3NODE_BROKER_PORT; files under DIR/rabbitmq) instead of this
# machine's, which --broker then stops, starts or restarts.
# --add-compute NAME: one more compute host, NAME, in a running deployment
# (namespace P-NAME, the next free 10.10.10.x / 10.20.20.x from .54, its
# node.toml the compute host's with its own name and addresses).
# --add-controller NAME: one more controller, NAME, in a running deployment
# (namespace P-NAME on the management and external networks, the next free
# 10.10.10.x from .54 and 192.168.100.x with the same last octet; the same
# databases, bus, Fernet keys and image store; the catalog stays the first
# controller's). Sagas and periodic tasks of a controller that dies are
# taken over by the other through leases in the database.
#
# Then, e.g.: `source DIR/openrc; ip netns exec P-sw openstack server list`
# (P defaults to fs3n, DIR to /tmp/fs3n). Needs root, iproute2, nsenter,
# socat, psql, dnsmasq, nft, QEMU, ssh (scripts/setup-host.sh installs them).
# Environment: FERROSTACK_BIN (default: build target/release/ferrostack),
# FERROSTACK_VENV (the openstack CLI's venv, default .venv),
# FERROSTACK_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432).
set -Eeuo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

prefix=fs3n
dir=""
image="${FERROSTACK_GUEST_IMAGE:-$repo/target/guest-image/guest.qcow2}"
down=0
boot_vm=1
ha=0
own=0
add_host=""
add_ctl=""
broker_action=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --prefix) prefix="$2"; shift 2 ;;
        --dir) dir="$2"; shift 2 ;;
        --image) image="$2"; shift 2 ;;
        --no-vm) boot_vm=0; shift ;;
        --ha) ha=1; shift ;;
        --down) down=1; shift ;;
        --own-broker) own=1; shift ;;
        --add-compute) add_host="$2"; shift 2 ;;
        --add-controller) add_ctl="$2"; shift 2 ;;
        --broker) broker_action="$2"; shift 2 ;;
        -h | --help) sed -n '2,45p' "$0"; exit 0 ;;
        *) echo "three-node: unknown argument $1" >&2; exit 2 ;;
    esac
done
dir="${dir:-/tmp/$prefix}"
[[ $prefix =~ ^[a-z0-9]{1,8}$ ]] || { echo "three-node: --prefix must be 1-8 of [a-z0-9]" >&2; exit 2; }

# shellcheck source=scripts/lib/three-node.sh
source "$repo/scripts/lib/three-node.sh"
# shellcheck source=scripts/lib/three-node-ha.sh
source "$repo/scripts/lib/three-node-ha.sh"

[[ $(id -u) -eq 0 ]] || die "run as root: the hosts are network namespaces"
if [[ $down -eq 1 ]]; then
    ha_stop_node
    teardown_all
    ha_remove_namespace
    exit 0
fi
if [[ -n $broker_action ]]; then
    control_own_broker "$broker_action"
    exit 0
fi
if [[ -n $add_host ]]; then
    [[ $add_host =~ ^[a-z][a-z0-9]{0,9}$ ]] || die "--add-compute NAME: 1-10 of [a-z0-9], a letter first"
    BIN="${FERROSTACK_BIN:-$(cat "$dir/ferrostack-bin" 2>/dev/null)}"
    [[ -x $BIN ]] || die "no ferrostack binary (FERROSTACK_BIN)"
    add_compute "$add_host"
    exit 0
fi
if [[ -n $add_ctl ]]; then
    [[ $add_ctl =~ ^[a-z][a-z0-9]{0,9}$ ]] || die "--add-controller NAME: 1-10 of [a-z0-9], a letter first"
    BIN="${FERROSTACK_BIN:-$(cat "$dir/ferrostack-bin" 2>/dev/null)}"
    [[ -x $BIN ]] || die "no ferrostack binary (FERROSTACK_BIN)"
    add_controller "$add_ctl"
    exit 0
fi
[[ ! -e $dir ]] || die "$dir exists: a deployment is up (scripts/three-node.sh --down --prefix $prefix --dir $dir)"
for tool in ip nsenter socat psql dnsmasq nft ssh ssh-keygen; do
    command -v "$tool" >/dev/null || die "$tool is missing: run scripts/setup-host.sh"
done
[[ -x $OPENSTACK ]] || die "no openstack CLI at $OPENSTACK: run tools/setup-venv.sh"
if [[ -z ${FERROSTACK_BIN:-} ]]; then
    log "building target/release/ferrostack"
    (cd "$repo" && cargo build --release -p ferrostack)
    FERROSTACK_BIN="$repo/target/release/ferrostack"
fi
BIN="$FERROSTACK_BIN"
if [[ $boot_vm -eq 1 && ! -f $image ]]; then
    log "building the test guest image $image"
    "$repo/tools/guest-image/build.sh" "$image"
fi

mkdir -p "$dir"
echo "$BIN" >"$dir/ferrostack-bin"
trap 'echo "three-node: failed at line $LINENO: $BASH_COMMAND; logs in $dir/*/log (remove with --down)" >&2' ERR
start_servers
build_topology
[[ $ha -eq 0 ]] || ha_build_topology
create_databases
if [[ $own -eq 1 ]]; then
    start_own_broker
    forward amqp 5672 "$OWN_BROKER_PORT"
else
    forward amqp 5672
fi
forward pg 5432
start_nodes
[[ $ha -eq 0 ]] || ha_start_node
write_openrc
seed_section_5
if [[ $boot_vm -eq 1 ]]; then
    boot_and_reach_vm
fi
log "up: source $dir/openrc; ip netns exec $prefix-sw openstack server list"
log "remove with: scripts/three-node.sh --down --prefix $prefix --dir $dir"
