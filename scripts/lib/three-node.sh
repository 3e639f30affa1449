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
    if ! port_open 127.0.0.1 5672 && command -v rabbitmq-server >/dev/null; then
        log "starting RabbitMQ"
        rabbitmq-server -detached
    fi
    wait_for "PostgreSQL on 127.0.0.1:5432" 60 pg_isready -q -h 127.0.0.1
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

# forward NAME PORT: 127.0.0.1:PORT here on 10.10.10.51:PORT in the
# controller (a UNIX socket between two socats, one in each namespace).
forward() {
    local sock="$dir/$1.sock"
    socat "UNIX-LISTEN:$sock,fork" "TCP:127.0.0.1:$2" </dev/null >/dev/null 2>&1 9>&- &
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
bus_url = "amqp://guest:guest@${MGMT[ctl]}:5672/%2f?namespace=$P"
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
driver = "qemu"
virt_type = "auto"
EOF
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
