# scripts/tempest.sh's two-host mode (TEMPEST_COMPUTE_HOSTS=2): the
# all-in-one and a second compute host, each in a network namespace of its
# own, on this machine's RabbitMQ. Sourced after scripts/lib/three-node.sh,
# whose pieces it uses: the namespaces and `on`, the broker forwarder, the
# compute host's node.toml, start_node. Needs from the caller: bin, data
# (the all-in-one's data dir); `prefix` and `dir` set before sourcing the
# three-node lib.
#
#   <P>-ctl  the all-in-one (host compute1: its APIs and catalog on
#            127.0.0.1, as tempest's loopback guard wants, those compute2
#            calls forwarded from 10.10.10.51; its compute agent and network
#            agents; bus queues under ?namespace=<P>) and tempest;
#            10.10.10.51 and 10.20.20.51 (its VXLAN endpoint)
#   <P>-cmp  compute2: `ferrostack serve` with the compute role (the
#            compute agent with the fake driver and an L2 agent of its own:
#            two L2 agents in one namespace would share bridges) from
#            <dir>/cmp/node.toml; 10.10.10.53 and 10.20.20.53
#
# One veth joins them. RabbitMQ (127.0.0.1:5672 of this machine, started
# when down) is reached at 10.10.10.51:5672 in <P>-ctl through the
# three-node forwarder. The names are fixed: scripts/tempest.sh holds
# /tmp/three-node.lock for the whole run.
# shellcheck shell=bash disable=SC2154

HOSTNAME_OF[cmp]=compute2
TWO_HOST_AIO_HOST=compute1
log() { printf 'tempest two-host: [%3ds] %s\n' "$SECONDS" "$*" >&9; }

# The stock CLI as admin inside <P>-ctl (compute_up_on and friends use it).
os() {
    on ctl env OS_AUTH_URL=http://127.0.0.1:5000/v3 OS_USERNAME=admin OS_PASSWORD=admin_pass \
        OS_PROJECT_NAME=admin OS_USER_DOMAIN_ID=default OS_PROJECT_DOMAIN_ID=default \
        OS_IDENTITY_API_VERSION=3 OS_REGION_NAME=RegionOne "$OPENSTACK" "$@"
}

two_host_namespaces() {
    local h
    for h in ctl cmp; do
        # left over by a run that was killed: the names are this mode's own
        ip netns del "$(ns "$h")" 2>/dev/null || true
        ip netns add "$(ns "$h")"
        ip -n "$(ns "$h")" link set lo up
    done
    ip -n "$(ns ctl)" link add eth0 type veth peer name eth0 netns "$(ns cmp)"
    ip -n "$(ns ctl)" addr add "${MGMT[ctl]}/24" dev eth0
    ip -n "$(ns ctl)" addr add 10.20.20.51/24 dev eth0
    ip -n "$(ns cmp)" addr add "${MGMT[cmp]}/24" dev eth0
    ip -n "$(ns cmp)" addr add "${TUN[cmp]}/24" dev eth0
    ip -n "$(ns ctl)" link set eth0 up
    ip -n "$(ns cmp)" link set eth0 up
}

# The all-in-one listens on 127.0.0.1 (`all-in-one --host` is its bind and
# catalog address at once, and tempest's catalog must be loopback): the
# APIs compute2's agent calls (identity for its service token, image for
# downloads and snapshots, network, block storage, compute) are forwarded
# from 10.10.10.51 to it.
publish_apis() {
    local port
    for port in 5000 9292 9696 8776 8774; do
        nsenter --net="/run/netns/$(ns ctl)" -- socat \
            "TCP-LISTEN:$port,bind=${MGMT[ctl]},fork,reuseaddr" "TCP:127.0.0.1:$port" \
            </dev/null >/dev/null 2>&1 9>&- &
        echo $! >>"$dir/pids"
        wait_for "${MGMT[ctl]}:$port" 10 on ctl bash -c "(exec 3<>/dev/tcp/${MGMT[ctl]}/$port)"
    done
}

aio_identity_up() { on ctl curl -sf -o /dev/null http://127.0.0.1:5000/v3; }

two_host_up() {
    command -v socat >/dev/null || die "socat is missing: run scripts/setup-host.sh"
    [[ -x $OPENSTACK ]] || die "no openstack CLI at $OPENSTACK: run tools/setup-venv.sh"
    mkdir -p "$dir/cmp/data"
    start_rabbitmq
    log "namespaces $(ns ctl) (all-in-one, tempest) and $(ns cmp) (compute2)"
    two_host_namespaces
    forward amqp 5672
    nsenter --net="/run/netns/$(ns ctl)" -- env FERROSTACK__BUS__URL="$(bus_url)" \
        FERROSTACK__COMMON__HOST="$TWO_HOST_AIO_HOST" FERROSTACK__NETWORK_AGENT__LOCAL_IP=10.20.20.51 \
        "$bin" all-in-one --data-dir "$data" >"$data/all-in-one.log" 2>&1 </dev/null 9>&- &
    echo $! >"$dir/aio.pid"
    local i
    for i in $(seq 1 120); do
        aio_identity_up && break
        kill -0 "$(cat "$dir/aio.pid")" 2>/dev/null || die "all-in-one exited: $(tail -n 20 "$data/all-in-one.log")"
        ((i < 120)) || die "all-in-one not answering after 60 s (log $data/all-in-one.log)"
        sleep 0.5
    done
    publish_apis
    FERROSTACK_3NODE_COMPUTE_DRIVER=fake node_config cmp >"$dir/cmp/node.toml"
    start_node cmp
    wait_for "compute2's ferrostack serve" 90 node_running cmp
    wait_for "nova-compute up on $TWO_HOST_AIO_HOST" 90 compute_up_on "$TWO_HOST_AIO_HOST"
    wait_for "nova-compute up on compute2" 90 compute_up_on compute2
    log "up: all-in-one ($TWO_HOST_AIO_HOST, log $data/all-in-one.log) and compute2 (log $dir/cmp/log)"
}

two_host_down() {
    local f pid
    # (bash's "Killed" notices of the forwarders it reaps: noise)
    exec 2>/dev/null
    for f in "$dir/cmp/pid" "$dir/aio.pid"; do
        pid=$(cat "$f" 2>/dev/null || true)
        [[ -z $pid ]] || kill -TERM "$pid" 2>/dev/null || true
    done
    for f in "$dir/cmp/pid" "$dir/aio.pid"; do
        pid=$(cat "$f" 2>/dev/null || true)
        for _ in $(seq 1 40); do
            if [[ -z $pid ]] || ! kill -0 "$pid" 2>/dev/null; then break; fi
            sleep 0.5
        done
        [[ -z $pid ]] || kill -KILL "$pid" 2>/dev/null || true
    done
    # What the agents built (the all-in-one's qdhcp-/qrouter- namespaces).
    nsenter --net="/run/netns/$(ns ctl)" -- env FERROSTACK__COMMON__HOST="$TWO_HOST_AIO_HOST" \
        "$bin" netns-cleanup --data-dir "$data" >/dev/null 2>&1 9>&- || true
    for pid in $(cat "$dir/pids" 2>/dev/null) $(processes_of_dir); do
        kill -KILL "$pid" 2>/dev/null || true
    done
    ip netns del "$(ns cmp)" 2>/dev/null || true
    ip netns del "$(ns ctl)" 2>/dev/null || true
}
