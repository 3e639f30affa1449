# `scripts/three-node.sh --ha`: a second network node for HA routers
# (docs/multinode.md), sourced after scripts/lib/three-node.sh:
#
#   <p>-net2  network2  10.10.10.22, 10.20.20.22, br-ex with 192.168.100.22
#
# with its own `ferrostack serve` for the network role (L2, DHCP, L3 and
# metadata agents), so that a router created `--ha` is built on both
# network nodes with keepalived between them.
# shellcheck shell=bash disable=SC2154

HA_MGMT=10.10.10.22
HA_TUN=10.20.20.22
HA_EXT=192.168.100.22

# The second network node's namespace, wired to the switch as the first.
ha_build_topology() {
    log "namespace $(ns net2) (the second network node)"
    ip netns add "$(ns net2)"
    ip -n "$(ns net2)" link set lo up
    wire net2 eth0 mgmt "$HA_MGMT"
    wire net2 eth1 data "$HA_TUN"
    wire net2 eth2 ext
    ip -n "$(ns net2)" link add br-ex type bridge
    ip -n "$(ns net2)" link set eth2 master br-ex
    ip -n "$(ns net2)" link set br-ex up
    ip -n "$(ns net2)" addr add "$HA_EXT/24" dev br-ex
    ip -n "$(ns net2)" route add default via 192.168.100.1
}

# network2's node.toml: the network node's, with its own name and addresses.
ha_node_config() {
    node_config net | sed \
        -e "s/^host = \"${HOSTNAME_OF[net]}\"/host = \"network2\"/" \
        -e "s/^management_ip = \"${MGMT[net]}\"/management_ip = \"$HA_MGMT\"/" \
        -e "s/^tunnel_ip = \"${TUN[net]}\"/tunnel_ip = \"$HA_TUN\"/"
}

# network2 runs in a mount namespace of its own with a private /run/netns:
# its agents' `qrouter-<router>` namespaces have the same names as
# network's (one machine standing for two), so each node sees only its
# own; they vanish with its processes.
ha_start_node() {
    mkdir -p "$dir/net2/data"
    ha_node_config >"$dir/net2/node.toml"
    # shellcheck disable=SC2016
    nsenter --net="/run/netns/$(ns net2)" -- unshare --mount --propagation private \
        sh -c 'mount -t tmpfs netns-net2 /run/netns && exec "$0" "$@"' \
        "$BIN" --config "$dir/net2/node.toml" --data-dir "$dir/net2/data" serve \
        >>"$dir/net2/log" 2>&1 </dev/null 9>&- &
    echo $! >"$dir/net2/pid"
    wait_for "the second network node" 90 node_running net2
    log "network2 running (log: $dir/net2/log)"
}

# Before the shared teardown: stop network2 as the others are stopped (its
# keepalived processes, named by paths under $dir, go with the rest).
ha_stop_node() {
    local pid
    pid=$(cat "$dir/net2/pid" 2>/dev/null || true)
    [[ -n $pid ]] || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 30); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.5
    done
}

# After the shared teardown (which removes the agents' namespaces).
ha_remove_namespace() {
    ip netns del "$(ns net2)" 2>/dev/null || true
}
