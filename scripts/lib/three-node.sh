# The seed's three hosts as network namespaces, their services and the
# seed's section 5: sourced by scripts/three-node.sh (the one copy; the
# multinode test runs that script). Needs from the caller: repo, prefix,
# dir, image; BIN before start_nodes.
# shellcheck shell=bash disable=SC2154

P="$prefix"
PG="${FERROSTACK_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432}"
OPENSTACK="${FERROSTACK_VENV:-$repo/.venv}/bin/openstack"
SERVICES=(identity image network compute volume telemetry)
HOSTS=(ctl net cmp)
declare -A MGMT=([ctl]=10.10.10.51 [net]=10.10.10.52 [cmp]=10.10.10.53)
declare -A TUN=([net]=10.20.20.52 [cmp]=10.20.20.53)
declare -A HOSTNAME_OF=([ctl]=controller [net]=network [cmp]=compute)
EXT_CTL=192.168.100.51
EXT_NET=192.168.100.52
FIPS=(192.168.100.111 192.168.100.112)

# Messages go to fd 9, the caller's stderr, even from a command whose
# output wait_for silences.
exec 9>&2
log() { printf 'three-node: [%3ds] %s\n' "$SECONDS" "$*" >&9; }
die() { log "$*"; exit 1; }
ns() { printf '%s-%s' "$P" "$1"; }
# Run a command in host $1's namespace.
on() { local h="$1"; shift; nsenter --net="/run/netns/$(ns "$h")" -- "$@"; }

# wait_for DESCRIPTION SECONDS COMMAND...: until COMMAND succeeds.
wait_for() {
    local what="$1" timeout="$2"; shift 2
    local deadline=$((SECONDS + timeout))
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || die "timed out after ${timeout}s waiting for $what"
        sleep 0.5
    done
}

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# PostgreSQL and RabbitMQ of this machine, started when installed but down.
start_servers() {
    if ! pg_isready -q -h 127.0.0.1 2>/dev/null && command -v pg_ctlcluster >/dev/null; then
        log "starting PostgreSQL"
        # shellcheck disable=SC2012
        pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
    fi
    start_rabbitmq
    wait_for "PostgreSQL on 127.0.0.1:5432" 60 pg_isready -q -h 127.0.0.1
}

# This machine's RabbitMQ on 127.0.0.1:5672, started when installed but down
# (also used alone by scripts/tempest.sh's two-host mode).
start_rabbitmq() {
    if ! port_open 127.0.0.1 5672 && command -v rabbitmq-server >/dev/null; then
        log "starting RabbitMQ"
        rabbitmq-server -detached
    fi
    wait_for "RabbitMQ on 127.0.0.1:5672" 90 port_open 127.0.0.1 5672
}

# wire HOST DEV BRIDGE [ADDR]: a veth from the host's DEV to a switch bridge.
wire() {
    local host="$1" dev="$2" br="$3" addr="${4:-}"
    ip -n "$(ns sw)" link add "$host-$dev" type veth peer name "$dev" netns "$(ns "$host")"
    ip -n "$(ns sw)" link set "$host-$dev" master "$br" up
    ip -n "$(ns "$host")" link set "$dev" up
    [[ -z $addr ]] || ip -n "$(ns "$host")" addr add "$addr/24" dev "$dev"
}

# The hosts, the switch's three networks and the seed's addresses.
build_topology() {
    log "namespaces $(ns ctl), $(ns net), $(ns cmp), $(ns sw)"
    local h br
    for h in sw "${HOSTS[@]}"; do
        ip netns add "$(ns "$h")"
        ip -n "$(ns "$h")" link set lo up
    done
    for br in mgmt data ext; do
        ip -n "$(ns sw)" link add "$br" type bridge
        ip -n "$(ns sw)" link set "$br" up
    done
    ip -n "$(ns sw)" addr add 10.10.10.1/24 dev mgmt
    ip -n "$(ns sw)" addr add 192.168.100.1/24 dev ext
    wire ctl eth0 mgmt "${MGMT[ctl]}"
    wire ctl eth1 ext "$EXT_CTL"
    wire net eth0 mgmt "${MGMT[net]}"
    wire net eth1 data "${TUN[net]}"
    wire net eth2 ext
    wire cmp eth0 mgmt "${MGMT[cmp]}"
    wire cmp eth1 data "${TUN[cmp]}"
    # The network node's br-ex holds eth2 and its external address (seed §3).
    ip -n "$(ns net)" link add br-ex type bridge
    ip -n "$(ns net)" link set eth2 master br-ex
    ip -n "$(ns net)" link set br-ex up
    ip -n "$(ns net)" addr add "$EXT_NET/24" dev br-ex
    ip -n "$(ns ctl)" route add default via 192.168.100.1
    ip -n "$(ns net)" route add default via 192.168.100.1
}

psql_do() { psql "$PG/postgres" -q -v ON_ERROR_STOP=1 -c "$1" >/dev/null; }

create_databases() {
    local s
    for s in "${SERVICES[@]}"; do
        psql_do "DROP DATABASE IF EXISTS \"${P}_$s\" WITH (FORCE)"
        psql_do "CREATE DATABASE \"${P}_$s\""
    done
}

# forward NAME PORT [HERE]: 127.0.0.1:HERE (default PORT) here on
# 10.10.10.51:PORT in the controller (a UNIX socket between two socats,
# one in each namespace).
forward() {
    local sock="$dir/$1.sock"
    socat "UNIX-LISTEN:$sock,fork" "TCP:127.0.0.1:${3:-$2}" </dev/null >/dev/null 2>&1 9>&- &
    echo $! >>"$dir/pids"
    wait_for "$sock" 10 test -S "$sock"
    nsenter --net="/run/netns/$(ns ctl)" -- socat "TCP-LISTEN:$2,bind=${MGMT[ctl]},fork,reuseaddr" \
        "UNIX-CONNECT:$sock" </dev/null >/dev/null 2>&1 9>&- &
    echo $! >>"$dir/pids"
    wait_for "${MGMT[ctl]}:$2" 10 on ctl bash -c "(exec 3<>/dev/tcp/${MGMT[ctl]}/$2)"
}

# node_config HOST: the host's node.toml (docs/multinode.md), on stdout.
node_config() {
    local h="$1"
    cat <<EOF
[node]
host = "${HOSTNAME_OF[$h]}"
controller = "${MGMT[ctl]}"
management_ip = "${MGMT[$h]}"
bus_url = "$(bus_url)"
service_password = "service_pass"
metadata_secret = "$P-metadata-secret"
EOF
    case "$h" in
        ctl) cat <<EOF
roles = ["controller"]
external_ip = "$EXT_CTL"
database_url = "postgresql://postgres@${MGMT[ctl]}:5432/${P}_{service}"
fernet_keys = "$dir/fernet-keys"

[identity]
admin_password = "admin_pass"
EOF
            ;;
        net) cat <<EOF
roles = ["network"]
tunnel_ip = "${TUN[net]}"
bridge_mappings = "physnet1:br-ex"
EOF
            ;;
        cmp) cat <<EOF
roles = ["compute"]
tunnel_ip = "${TUN[cmp]}"

[compute]
EOF
            # FERROSTACK_3NODE_COMPUTE_DRIVER=fake: guests in memory
            # (scripts/tempest.sh's two-host mode).
            if [[ ${FERROSTACK_3NODE_COMPUTE_DRIVER:-qemu} == qemu ]]; then
                printf 'driver = "qemu"\nvirt_type = "auto"\n'
            else
                printf 'driver = "%s"\n' "$FERROSTACK_3NODE_COMPUTE_DRIVER"
            fi
            ;;
    esac
    # Extra lines for this host (the test's shorter heartbeats), verbatim.
    local extra="FERROSTACK_3NODE_EXTRA_$h"
    [[ -z ${!extra:-} ]] || printf '\n%s\n' "${!extra}"
}

# ferrostack_on HOST ARGS...: the binary with the host's config and data dir.
ferrostack_on() {
    local h="$1"; shift
    on "$h" "$BIN" --config "$dir/$h/node.toml" --data-dir "$dir/$h/data" "$@"
}

start_node() {
    local h="$1"
    # Not through a function: $! is then the node's own pid (nsenter execs).
    nsenter --net="/run/netns/$(ns "$h")" -- "$BIN" --config "$dir/$h/node.toml" \
        --data-dir "$dir/$h/data" serve >>"$dir/$h/log" 2>&1 </dev/null 9>&- &
    echo $! >"$dir/$h/pid"
}

node_running() {
    local h="$1"
    kill -0 "$(cat "$dir/$h/pid")" 2>/dev/null || die "the $h node exited: $(tail -n 20 "$dir/$h/log")"
    grep -q "is running" "$dir/$h/log"
}

# Configs, bootstrap, then the controller and the other two hosts.
start_nodes() {
    local h
    for h in "${HOSTS[@]}"; do
        mkdir -p "$dir/$h/data"
        node_config "$h" >"$dir/$h/node.toml"
    done
    log "bootstrap (the seed's projects, users, roles and catalog)"
    ferrostack_on ctl bootstrap >"$dir/ctl/bootstrap.log" 2>&1 \
        || die "bootstrap failed: $(tail -n 20 "$dir/ctl/bootstrap.log")"
    start_node ctl
    wait_for "the controller" 90 node_running ctl
    start_node net
    start_node cmp
    wait_for "the network node" 90 node_running net
    wait_for "the compute node" 90 node_running cmp
    log "nodes running (logs: $dir/{ctl,net,cmp}/log)"
}

write_openrc() {
    cat >"$dir/openrc" <<EOF
# The admin's credentials; run the CLI on the external host:
#   ip netns exec $(ns sw) openstack ...
unset OS_CLOUD OS_CLIENT_CONFIG_FILE
export OS_AUTH_URL=http://$EXT_CTL:5000/v3
export OS_USERNAME=admin OS_PASSWORD=admin_pass OS_PROJECT_NAME=admin
export OS_USER_DOMAIN_ID=default OS_PROJECT_DOMAIN_ID=default
export OS_IDENTITY_API_VERSION=3 OS_REGION_NAME=RegionOne
EOF
    # shellcheck source=/dev/null
    source "$dir/openrc"
}

# The stock CLI on the external host (192.168.100.1).
os() { on sw "$OPENSTACK" "$@"; }

compute_up() { os compute service list --host compute -f value -c State | grep -qx up; }

# The seed's section 5, with the external network and its floating IPs.
seed_section_5() {
    log "seed section 5: net_admin, subnet_admin, router_admin, net_external, floating IPs"
    wait_for "nova-compute up on the compute host" 60 compute_up
    os network create net_admin >/dev/null
    os subnet create --network net_admin --subnet-range 50.50.1.0/24 subnet_admin >/dev/null
    os router create router_admin >/dev/null
    os router add subnet router_admin subnet_admin
    os network create --external --share --provider-network-type flat \
        --provider-physical-network physnet1 net_external >/dev/null
    os subnet create --network net_external --subnet-range 192.168.100.0/24 --no-dhcp \
        --allocation-pool start=192.168.100.110,end=192.168.100.130 \
        --gateway 192.168.100.1 subnet_external >/dev/null
    os router set --external-gateway net_external router_admin
    local fip
    for fip in "${FIPS[@]}"; do
        os floating ip create --floating-ip-address "$fip" net_external >/dev/null
    done
}

pings() { on sw ping -c 1 -W 1 "$1"; }
ssh_vm() {
    on sw ssh -i "$dir/id_ed25519" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
        -o ConnectTimeout=3 -o BatchMode=yes -o LogLevel=ERROR "root@$1" "${@:2}" </dev/null
}

# A real QEMU guest on net_admin, on the compute host, reached from the
# external host on the first floating IP by ping and SSH.
boot_and_reach_vm() {
    local fip="${FIPS[0]}" group
    ssh-keygen -q -t ed25519 -N "" -C "ferrostack-three-node" -f "$dir/id_ed25519"
    os keypair create --public-key "$dir/id_ed25519.pub" k1 >/dev/null
    os image create --disk-format qcow2 --container-format bare --public \
        --file "$image" guest >/dev/null
    group=$(os security group list --project admin -f value -c ID -c Name | awk '$2 == "default" {print $1}')
    os security group rule create --protocol icmp "$group" >/dev/null
    os security group rule create --protocol tcp --dst-port 22 "$group" >/dev/null
    log "booting vm1 (QEMU on the compute host)"
    os server create --image guest --flavor m1.tiny --network net_admin --key-name k1 \
        --wait vm1 >/dev/null
    log "vm1 ACTIVE"
    os server add floating ip vm1 "$fip"
    wait_for "ping $fip from the external host" 90 pings "$fip"
    wait_for "SSH to $fip from the external host" 90 ssh_vm "$fip" true
    log "vm1 on $(os server show vm1 -f value -c OS-EXT-SRV-ATTR:host): ping and SSH on $fip: $(ssh_vm "$fip" hostname)"
}

# Pids of the processes whose command line names a path under $dir.
processes_of_dir() {
    local f pid
    for f in /proc/[0-9]*/cmdline; do
        pid="${f#/proc/}"; pid="${pid%/cmdline}"
        [[ $pid != "$$" && $pid != "$BASHPID" ]] || continue
        tr '\0' ' ' 2>/dev/null <"$f" | grep -qF "$dir/" && echo "$pid"
    done
    return 0
}

# Everything the deployment made: processes, namespaces, databases, $dir.
teardown() {
    local pid h ns_name s
    for h in "${HOSTS[@]}"; do
        if [[ -f $dir/$h/pid ]]; then kill -TERM "$(cat "$dir/$h/pid")" 2>/dev/null || true; fi
    done
    for h in "${HOSTS[@]}"; do
        pid=$(cat "$dir/$h/pid" 2>/dev/null || true)
        for _ in $(seq 1 30); do
            if [[ -z $pid ]] || ! kill -0 "$pid" 2>/dev/null; then break; fi
            sleep 0.5
        done
    done
    for pid in $(cat "$dir/pids" 2>/dev/null) $(processes_of_dir); do
        kill -KILL "$pid" 2>/dev/null || true
    done
    # Namespaces the agents made (their ledgers), then the hosts.
    for ns_name in $(find "$dir" -name '*-namespaces.json' -exec grep -ho '"[^"]*"' {} + 2>/dev/null | tr -d '"') \
        "$(ns sw)" "$(ns ctl)" "$(ns net)" "$(ns cmp)"; do
        ip netns del "$ns_name" 2>/dev/null || true
    done
    if pg_isready -q -h 127.0.0.1 2>/dev/null; then
        for s in "${SERVICES[@]}"; do
            psql_do "DROP DATABASE IF EXISTS \"${P}_$s\" WITH (FORCE)" || true
        done
    fi
    [[ ${FERROSTACK_KEEP_DATA:-0} == 1 ]] || rm -rf "$dir"
    log "removed the $P deployment"
}

# --- The deployment's own RabbitMQ node (--own-broker) ---------------------
# A broker of its own, not shared with anything else on this machine, that
# a test may restart: its node name, ports, database and logs are the
# deployment's, under $dir/rabbitmq; `--down` stops it.
OWN_BROKER_PORT="${FERROSTACK_3NODE_BROKER_PORT:-5679}"

own_broker() { [[ -d $dir/rabbitmq ]]; }

# The bus URL of every node: on the shared broker each deployment is a
# namespace (transient queues); on its own broker, a real cloud's durable
# queues and persistent casts.
bus_url() {
    if own_broker; then
        printf 'amqp://guest:guest@%s:5672/%%2f' "${MGMT[ctl]}"
    else
        printf 'amqp://guest:guest@%s:5672/%%2f?namespace=%s' "${MGMT[ctl]}" "$P"
    fi
}

# broker_env COMMAND...: COMMAND in the environment of the own node.
broker_env() {
    local b="$dir/rabbitmq"
    env HOME="$b" RABBITMQ_NODENAME="rabbit-$P@localhost" \
        RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT="$OWN_BROKER_PORT" \
        RABBITMQ_DIST_PORT=$((OWN_BROKER_PORT + 20000)) ERL_EPMD_ADDRESS=127.0.0.1 \
        RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}" \
        RABBITMQ_CONF_ENV_FILE="$b/rabbitmq-env.conf" RABBITMQ_CONFIG_FILE="$b/rabbitmq.conf" \
        RABBITMQ_ENABLED_PLUGINS_FILE="$b/enabled_plugins" RABBITMQ_PID_FILE="$b/pid" \
        RABBITMQ_MNESIA_BASE="$b/mnesia" RABBITMQ_LOG_BASE="$b/log" "$@"
}

# Start the own node (its files on the first start) and wait for AMQP.
start_own_broker() {
    local b="$dir/rabbitmq"
    if [[ ! -f $b/rabbitmq.conf ]]; then
        mkdir -p "$b"
        : >"$b/rabbitmq-env.conf"
        echo '[].' >"$b/enabled_plugins"
        printf 'listeners.tcp.local = 127.0.0.1:%s\n' "$OWN_BROKER_PORT" >"$b/rabbitmq.conf"
    fi
    ! port_open 127.0.0.1 "$OWN_BROKER_PORT" || die "127.0.0.1:$OWN_BROKER_PORT is taken (FERROSTACK_3NODE_BROKER_PORT)"
    log "starting this deployment's RabbitMQ rabbit-$P@localhost on 127.0.0.1:$OWN_BROKER_PORT"
    broker_env /usr/lib/rabbitmq/bin/rabbitmq-server -detached </dev/null >>"$b/startup.log" 2>&1 9>&-
    wait_for "RabbitMQ rabbit-$P on 127.0.0.1:$OWN_BROKER_PORT" 90 port_open 127.0.0.1 "$OWN_BROKER_PORT"
}

# SIGTERM, which RabbitMQ takes as `rabbitmqctl stop` (without the seconds
# rabbitmqctl's own start costs).
stop_own_broker() {
    local pid
    pid=$(cat "$dir/rabbitmq/pid" 2>/dev/null) || return 0
    log "stopping this deployment's RabbitMQ rabbit-$P@localhost"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 60); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.5
    done
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$dir/rabbitmq/pid"
}

# --broker stop|start|restart, for the tests of a broker outage.
control_own_broker() {
    own_broker || die "this deployment runs on the shared broker (deploy with --own-broker)"
    case "$1" in
        stop) stop_own_broker ;;
        start) start_own_broker ;;
        restart) stop_own_broker; start_own_broker ;;
        *) die "--broker takes stop, start or restart" ;;
    esac
}

# --- Compute hosts added to a running deployment (--add-compute NAME) -----

# The first of 10.10.10.54.. / 10.20.20.54.. no host of the deployment has.
free_host_octet() {
    local o n taken
    taken=$(for n in $(ip netns list | awk -v p="$P-" 'index($1, p) == 1 {print $1}'); do
        ip -n "$n" -4 -o addr show; done)
    for o in $(seq 54 99); do
        grep -qE " 10\.(10\.10|20\.20)\.$o/" <<<"$taken" || { echo "$o"; return; }
    done
    die "no free host address left in 10.10.10.54-99"
}

compute_up_on() { os compute service list --host "$1" -f value -c State | grep -qx up; }

# One more compute host: its namespace wired to the management and VM data
# networks, its node.toml (the compute host's file with its own host name
# and addresses, as an operator writes it), its `ferrostack serve`.
add_compute() {
    local h="$1" o
    [[ -f $dir/cmp/node.toml ]] || die "no deployment in $dir"
    [[ ! -e $dir/$h ]] || die "$h exists in $dir"
    o=$(free_host_octet)
    log "adding compute host $h: $(ns "$h"), 10.10.10.$o, 10.20.20.$o"
    ip netns add "$(ns "$h")"
    ip -n "$(ns "$h")" link set lo up
    echo "$h" >>"$dir/added-computes"
    wire "$h" eth0 mgmt "10.10.10.$o"
    wire "$h" eth1 data "10.20.20.$o"
    mkdir -p "$dir/$h/data"
    sed -e "s/^host = .*/host = \"$h\"/" -e "s/^management_ip = .*/management_ip = \"10.10.10.$o\"/" \
        -e "s/^tunnel_ip = .*/tunnel_ip = \"10.20.20.$o\"/" "$dir/cmp/node.toml" >"$dir/$h/node.toml"
    start_node "$h"
    wait_for "the $h node" 90 node_running "$h"
    write_openrc
    wait_for "nova-compute up on $h" 60 compute_up_on "$h"
    log "$h up (config $dir/$h/node.toml, log $dir/$h/log)"
}

# --down: every node stopped (the added computes and controllers too), then the own broker,
# then the rest; the added hosts' namespaces last.
teardown_all() {
    local added f pid
    added=$(cat "$dir/added-computes" "$dir/added-controllers" 2>/dev/null || true)
    for f in "${HOSTS[@]}" $added; do
        pid=$(cat "$dir/$f/pid" 2>/dev/null || true)
        [[ -z $pid ]] || kill -TERM "$pid" 2>/dev/null || true
    done
    for f in "${HOSTS[@]}" $added; do
        pid=$(cat "$dir/$f/pid" 2>/dev/null || true)
        for _ in $(seq 1 30); do
            if [[ -z $pid ]] || ! kill -0 "$pid" 2>/dev/null; then break; fi
            sleep 0.5
        done
    done
    stop_own_broker
    teardown
    for f in $added; do
        ip netns del "$(ns "$f")" 2>/dev/null || true
    done
}

# --- Controllers added to a running deployment (--add-controller NAME) ----

# One more controller: its namespace on the management network (the next
# free 10.10.10.x from .54) and on the external network (192.168.100.x,
# the same last octet), its node.toml (the controller's file with its own
# host name and addresses; `controller` its own address, so its services
# call its own APIs), its `ferrostack serve`. It shares the databases, the
# bus, the Fernet keys (the same key directory: copy it after each
# `ferrostack fernet rotate` on real hosts) and controller 1's image store
# (a shared filesystem, NFS on real hosts); volumes are per host (it is a
# block storage host of its own). No bootstrap: the catalog stays
# controller 1's, which clients use.
add_controller() {
    local h="$1" o
    [[ -f $dir/ctl/node.toml ]] || die "no deployment in $dir"
    [[ ! -e $dir/$h ]] || die "$h exists in $dir"
    o=$(free_host_octet)
    log "adding controller $h: $(ns "$h"), 10.10.10.$o, 192.168.100.$o"
    ip netns add "$(ns "$h")"
    ip -n "$(ns "$h")" link set lo up
    echo "$h" >>"$dir/added-controllers"
    wire "$h" eth0 mgmt "10.10.10.$o"
    wire "$h" eth1 ext "192.168.100.$o"
    ip -n "$(ns "$h")" route add default via 192.168.100.1
    mkdir -p "$dir/$h/data"
    sed -e "s/^host = .*/host = \"$h\"/" -e "s/^management_ip = .*/management_ip = \"10.10.10.$o\"/" \
        -e "s/^controller = .*/controller = \"10.10.10.$o\"/" \
        -e "s/^external_ip = .*/external_ip = \"192.168.100.$o\"/" "$dir/ctl/node.toml" >"$dir/$h/node.toml"
    printf '\n[image]\nfilesystem_store_datadir = "%s"\n' "$dir/ctl/data/images" >>"$dir/$h/node.toml"
    start_node "$h"
    wait_for "the $h node" 90 node_running "$h"
    wait_for "identity on $h" 60 on sw curl -sf -o /dev/null "http://192.168.100.$o:5000/v3"
    log "$h up on 10.10.10.$o / 192.168.100.$o (config $dir/$h/node.toml, log $dir/$h/log)"
}
