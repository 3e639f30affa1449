#!/usr/bin/env bash
# Boot the Ferrostack test guest under QEMU (TCG) and check what the cloud
# relies on:
#   (a) metadata service: the banner says so, the user-data script ran,
#       the hostname is the metadata's, SSH with the metadata's key works,
#       a file written in /root survives a reboot;
#   (b) config drive (ISO 9660, label config-2, on an IDE cdrom) and no
#       metadata service: the banner says "from config drive";
#   (c) QMP system_powerdown: the guest powers off cleanly, QEMU exits;
#   (d) the time from QEMU's start to the "ready" line;
#   (e) as root: the udhcpc script applies the MTU, classless static routes
#       and DNS that Neutron's DHCP sends (busybox udhcpd/udhcpc between two
#       network namespaces on this host).
#
#   tools/guest-image/test.sh [IMAGE.qcow2]
#
# Without IMAGE it builds one with build.sh.  FERROSTACK_GUEST_TESTS="a b e"
# picks the parts to run; FERROSTACK_GUEST_KEEP=1 keeps the work directory
# (serial logs, disks).
#
# All guest traffic stays in QEMU: user-mode networking with restrict=on;
# the metadata address 169.254.169.254 is inside the slirp network and
# forwarded (guestfwd) to a python http.server on 127.0.0.1; SSH comes in
# by hostfwd on 127.0.0.1.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
READY_TIMEOUT=${FERROSTACK_GUEST_READY_TIMEOUT:-180}   # s, TCG on a busy CI host
POWERDOWN_TIMEOUT=30

PASSED=0 FAILED=0
FIGURES=()
QEMU_PID=

log() { printf '%s\n' "test.sh: $*"; }
die() { printf '%s\n' "test.sh: error: $*" >&2; exit 1; }
pass() { PASSED=$((PASSED + 1)); log "PASS $*"; }
fail() { FAILED=$((FAILED + 1)); log "FAIL $*"; }
check() {   # check DESCRIPTION COMMAND...
    local what=$1
    shift
    if "$@"; then pass "$what"; else fail "$what"; fi
}
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

if ! command -v qemu-system-x86_64 >/dev/null 2>&1; then
    log "SKIP: qemu-system-x86_64 is not installed (Debian package qemu-system-x86)"
    exit 0
fi

# Host tools: command:Debian package.
ensure_tools() {
    local missing=() entry
    for entry in python3:python3 ssh:openssh-client ssh-keygen:openssh-client \
        genisoimage:genisoimage qemu-img:qemu-utils; do
        command -v "${entry%%:*}" >/dev/null 2>&1 || missing+=("${entry#*:}")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    [ "$(id -u)" -eq 0 ] || die "missing tools; install the Debian packages: ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# stop_qemu [NAME]: QMP quit (or SIGTERM) the QEMU this script started.
stop_qemu() {
    if [ -n "$QEMU_PID" ] && kill -0 "$QEMU_PID" 2>/dev/null; then
        if [ -z "${1:-}" ] || ! python3 "$WORK/qmp.py" "$WORK/$1.qmp" quit 2>/dev/null; then
            kill "$QEMU_PID" 2>/dev/null || true
        fi
        wait "$QEMU_PID" 2>/dev/null || true
    fi
    QEMU_PID=
}

cleanup() {
    stop_qemu
    [ -n "${MD_PID:-}" ] && kill "$MD_PID" 2>/dev/null
    [ -n "${NS_SRV:-}" ] && ip netns del "$NS_SRV" 2>/dev/null
    [ -n "${NS_CLI:-}" ] && ip netns del "$NS_CLI" 2>/dev/null
    [ -n "${WORK:-}" ] && [ -z "${FERROSTACK_GUEST_KEEP:-}" ] && rm -rf "$WORK"
    true
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# The helper programs: the metadata server, the guestfwd relay, QMP.
write_helpers() {
    # Serves DIR on 127.0.0.1 (a free port, written to PORTFILE) and logs
    # each request, so the test can see that the guest asked.
    cat > "$WORK/md_server.py" <<'EOF'
import functools, http.server, sys
directory, portfile = sys.argv[1], sys.argv[2]
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=directory)
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
with open(portfile, "w") as f:
    f.write(str(server.server_address[1]))
server.serve_forever()
EOF
    # slirp's guestfwd "cmd:" runs this for each guest connection to
    # 169.254.169.254:80 with the connection on stdin/stdout; it relays to
    # the server on 127.0.0.1.
    cat > "$WORK/relay.py" <<'EOF'
import os, select, socket, sys
up = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
fds = [0, up.fileno()]
while fds:
    for fd in select.select(fds, [], [])[0]:
        data = os.read(fd, 65536)
        if fd == 0:
            if data:
                up.sendall(data)
            else:
                up.shutdown(socket.SHUT_WR)
                fds.remove(0)
        else:
            if data:
                os.write(1, data)
            else:
                sys.exit(0)
EOF
    # qmp.py SOCKET COMMAND [ARGUMENTS-AS-JSON]
    cat > "$WORK/qmp.py" <<'EOF'
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
f = s.makefile("rw")
f.readline()                                  # greeting
args = json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}
for cmd, a in (("qmp_capabilities", {}), (sys.argv[2], args)):
    f.write(json.dumps({"execute": cmd, "arguments": a}) + "\n")
    f.flush()
    while True:
        line = f.readline()
        if not line:                          # QEMU closed the socket
            sys.exit(0 if cmd == "quit" else "qmp: connection closed")
        reply = json.loads(line)
        if "return" in reply or "error" in reply:
            break
    if "error" in reply:
        sys.exit("qmp: %s: %s" % (cmd, reply["error"]))
EOF
}

# instance_data DIR HOSTNAME UUID MARKER EXIT: meta_data.json and a
# user-data script that prints MARKER and exits EXIT.
instance_data() {
    local dir=$1/openstack/latest pub
    mkdir -p "$dir"
    pub=$(cat "$WORK/id_ed25519.pub")
    # As nova writes it: the key with a trailing newline, other fields the
    # guest must skip.
    cat > "$dir/meta_data.json" <<EOF
{"random_seed": "c2VlZA==", "uuid": "$3", "availability_zone": "nova", "keys": [{"data": "$pub\\n", "type": "ssh", "name": "testkey"}], "hostname": "$2.novalocal", "launch_index": 0, "devices": [], "meta": {"role": "test"}, "public_keys": {"testkey": "$pub\\n"}, "project_id": "6c7a8b0e9f1d4e2a", "name": "$2"}
EOF
    printf '#!/bin/sh\necho "%s from $(hostname)"\nexit %s\n' "$4" "$5" > "$dir/user_data"
}

# boot NAME DISK QEMU-ARGS...: start QEMU in the background, serial
# console to $WORK/NAME.serial, QMP on $WORK/NAME.qmp.
boot() {
    local name=$1 disk=$2
    shift 2
    rm -f "$WORK/$name.serial"
    BOOT_START=$(now)
    qemu-system-x86_64 -accel tcg -m 256 -display none -monitor none \
        -serial "file:$WORK/$name.serial" -qmp "unix:$WORK/$name.qmp,server=on,wait=off" \
        -drive "file=$disk,if=virtio" "$@" &
    QEMU_PID=$!
}

# wait_ready NAME: wait for the banner's last line; sets READY_S.
wait_ready() {
    local name=$1 deadline=$(( $(date +%s) + READY_TIMEOUT ))
    while ! grep -q '^ferrostack-guest: ready' "$WORK/$name.serial" 2>/dev/null; do
        if ! kill -0 "$QEMU_PID" 2>/dev/null; then
            log "QEMU exited before the guest was ready"
            return 1
        fi
        if [ "$(date +%s)" -ge "$deadline" ]; then
            log "no 'ready' line within ${READY_TIMEOUT}s"
            return 1
        fi
        sleep 0.1
    done
    READY_S="$(elapsed "$BOOT_START" "$(now)") s (host load average $(cut -d' ' -f1 /proc/loadavg))"
}

banner() { grep -a '^ferrostack-guest:' "$WORK/$1.serial" | tr -d '\r'; }
has_line() { tr -d '\r' < "$WORK/$1.serial" | grep -qxF -- "$2"; }
# wait_line NAME LINE SECONDS: wait until the console has LINE (or give up).
wait_line() {
    local deadline=$(( $(date +%s) + $3 ))
    until has_line "$1" "$2" || [ "$(date +%s)" -ge "$deadline" ]; do sleep 0.2; done
}
show_banner() { banner "$1" | sed 's/^/    /'; }

guest_ssh() {   # guest_ssh PORT COMMAND
    local port=$1
    shift
    ssh -q -i "$WORK/id_ed25519" -p "$port" -o BatchMode=yes -o ConnectTimeout=20 \
        -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null root@127.0.0.1 "$@"
}

# powerdown NAME: QMP system_powerdown; QEMU must exit within 30 s.
powerdown() {
    local name=$1 start deadline
    start=$(now)
    python3 "$WORK/qmp.py" "$WORK/$name.qmp" system_powerdown || return 1
    deadline=$(( $(date +%s) + POWERDOWN_TIMEOUT ))
    while kill -0 "$QEMU_PID" 2>/dev/null; do
        if [ "$(date +%s)" -ge "$deadline" ]; then
            log "QEMU still running ${POWERDOWN_TIMEOUT}s after system_powerdown"
            return 1
        fi
        sleep 0.1
    done
    wait "$QEMU_PID" 2>/dev/null || true
    QEMU_PID=
    POWERDOWN_S=$(elapsed "$start" "$(now)")
}

# fs_clean DISK: the root filesystem's superblock (partition at 1 MiB) is
# marked clean and its journal needs no recovery, as after an unmount.
fs_clean() {
    local rc=0
    qemu-img convert -O raw "$1" "$WORK/check.raw"
    python3 - "$WORK/check.raw" <<'EOF' || rc=1
import struct, sys
with open(sys.argv[1], "rb") as f:
    f.seek(1048576 + 1024)
    sb = f.read(1024)
magic, state = struct.unpack_from("<HH", sb, 56)
incompat = struct.unpack_from("<I", sb, 96)[0]
sys.exit(0 if magic == 0xEF53 and state & 1 and not incompat & 4 else 1)
EOF
    rm -f "$WORK/check.raw"
    return $rc
}

test_metadata_service() {
    local uuid=3b6f8c2e-5a1d-4e7f-9c0b-2d4e6f8a0c1e ssh_port md_port out
    log "(a) metadata service"
    instance_data "$WORK/md" fs-test-a "$uuid" FERROSTACK-USERDATA-MARKER-A 7
    python3 "$WORK/md_server.py" "$WORK/md" "$WORK/md.port" 2>"$WORK/md.log" &
    MD_PID=$!
    for _ in $(seq 50); do [ -s "$WORK/md.port" ] && break; sleep 0.1; done
    md_port=$(cat "$WORK/md.port")
    ssh_port=$(free_port)
    qemu-img create -q -f qcow2 -b "$IMAGE" -F qcow2 "$WORK/a.qcow2"

    # 169.254.169.254 must be inside the slirp network for guestfwd to take
    # it (slirp would otherwise try the real address), hence net=.
    local netdev="user,id=n0,restrict=on,net=169.254.169.0/24,host=169.254.169.2"
    netdev+=",dhcpstart=169.254.169.15,hostfwd=tcp:127.0.0.1:$ssh_port-:22"
    # The interpreter itself, not a wrapper (pyenv's shim costs a second
    # per connection on a busy host).
    local python
    python=$(python3 -c 'import sys; print(sys.executable)')
    netdev+=",guestfwd=tcp:169.254.169.254:80-cmd:$python $WORK/relay.py $md_port"
    boot a "$WORK/a.qcow2" -netdev "$netdev" -device virtio-net-pci,netdev=n0
    if ! wait_ready a; then
        fail "(a) guest ready"
        tail -n 40 "$WORK/a.serial" | sed 's/^/    /'
        stop_qemu
        return
    fi
    FIGURES+=("boot to ready, metadata service (first boot): $READY_S")
    show_banner a
    check "(a) banner: instance data from metadata service" has_line a "ferrostack-guest: instance data from metadata service"
    check "(a) banner: ssh key from metadata service" has_line a "ferrostack-guest: ssh key from metadata service"
    check "(a) banner: hostname from metadata" has_line a "ferrostack-guest: hostname=fs-test-a"
    check "(a) banner: uuid" has_line a "ferrostack-guest: uuid=$uuid"
    check "(a) user-data script ran" has_line a "FERROSTACK-USERDATA-MARKER-A from fs-test-a"
    check "(a) banner: user-data exit code" has_line a "ferrostack-guest: user-data script exited 7"
    check "(a) banner: eth0 has a DHCP address" \
        grep -aqE '^ferrostack-guest: eth0 mac=52:54:00:[0-9a-f:]+ addr=169\.254\.169\.15/24 mtu=1500' "$WORK/a.serial"
    check "(a) metadata server saw the guest" grep -q 'GET /openstack/latest/meta_data.json' "$WORK/md.log"

    out=$(guest_ssh "$ssh_port" hostname 2>&1) || true
    check "(a) ssh with the metadata key runs hostname -> '$out'" [ "$out" = fs-test-a ]
    # What tempest runs over SSH.
    out=$(guest_ssh "$ssh_port" 'set -eu -o pipefail; PATH=$PATH:/sbin:/usr/sbin;
        sudo -n sh -c "echo via-sudo >/root/persist"; grep -c ^processor /proc/cpuinfo;
        free -m | grep Mem >/dev/null; ip addr show eth0 | grep -q "inet ";
        lsblk -lb --nodeps | grep -q " disk"; blkid /dev/vda1 | grep -q ferrostack-root;
        ls /dev/vda >/dev/null; mount | grep -q " / "; fdisk -l /dev/vda | grep -q vda1;
        ping -c1 -W2 127.0.0.1 >/dev/null; wget --help >/dev/null 2>&1 || true;
        stat -c %a /root/.ssh /root/.ssh/authorized_keys' 2>&1 | tr '\n' ' ') || true
    check "(a) tempest-style commands over ssh (cpus, .ssh modes: $out)" [ "$out" = "1 700 600 " ]

    # Interface attach: a NIC hot-plugged into the running guest gets DHCP
    # (from its own slirp network, 10.0.2.0/24).
    python3 "$WORK/qmp.py" "$WORK/a.qmp" netdev_add '{"type": "user", "id": "n1", "restrict": true}'
    python3 "$WORK/qmp.py" "$WORK/a.qmp" device_add \
        '{"driver": "virtio-net-pci", "id": "nic1", "netdev": "n1", "mac": "52:54:00:12:34:57"}'
    out=
    for _ in $(seq 30); do
        out=$(guest_ssh "$ssh_port" "ip -4 -o addr show dev eth1 2>/dev/null | awk '{ print \$4 }'" 2>/dev/null) || true
        [ -n "$out" ] && break
        sleep 1
    done
    check "(a) a hot-plugged NIC gets DHCP (eth1 addr=$out)" [ "$out" = 10.0.2.15/24 ]

    # Volume attach: a disk hot-plugged into the running guest is told on
    # the console, takes an ext2 filesystem and a file, and goes again.
    truncate -s 64M "$WORK/vol.raw"
    python3 "$WORK/qmp.py" "$WORK/a.qmp" blockdev-add \
        "{\"driver\": \"raw\", \"node-name\": \"vol1\", \"file\": {\"driver\": \"file\", \"filename\": \"$WORK/vol.raw\"}}"
    python3 "$WORK/qmp.py" "$WORK/a.qmp" device_add \
        '{"driver": "virtio-blk-pci", "id": "disk1", "drive": "vol1", "serial": "fs-test-volume"}'
    wait_line a "ferrostack-guest: disk add vdb size=131072 serial=fs-test-volume" 30
    check "(a) a hot-plugged disk is told on the console" \
        has_line a "ferrostack-guest: disk add vdb size=131072 serial=fs-test-volume"
    out=$(guest_ssh "$ssh_port" 'set -e; mkfs.ext2 -q /dev/vdb >/dev/null; mkdir -p /mnt/v;
        mount /dev/vdb /mnt/v; echo on-the-volume > /mnt/v/f; umount /mnt/v;
        mount -o ro /dev/vdb /mnt/v; cat /mnt/v/f; umount /mnt/v' 2>&1) || true
    check "(a) mkfs.ext2, mount and a file on the hot-plugged disk ($out)" [ "$out" = on-the-volume ]
    python3 "$WORK/qmp.py" "$WORK/a.qmp" device_del '{"id": "disk1"}'
    wait_line a "ferrostack-guest: disk remove vdb" 30
    check "(a) an unplugged disk is told on the console" has_line a "ferrostack-guest: disk remove vdb"

    if powerdown a; then
        pass "(c) system_powerdown: QEMU exits within ${POWERDOWN_TIMEOUT}s"
        FIGURES+=("system_powerdown to QEMU exit: ${POWERDOWN_S} s")
        check "(c) the power button ran the guest's poweroff" \
            has_line a "ferrostack-guest: power button pressed, powering off"
        check "(c) the root filesystem was unmounted cleanly" fs_clean "$WORK/a.qcow2"
    else
        fail "(c) system_powerdown: QEMU exits within ${POWERDOWN_TIMEOUT}s"
    fi
    stop_qemu

    # The same disk again: the file written before the poweroff is there,
    # the user-data script does not run twice.
    log "(a) reboot of the same disk"
    boot a2 "$WORK/a.qcow2" -netdev "$netdev" -device virtio-net-pci,netdev=n0
    if wait_ready a2; then
        FIGURES+=("boot to ready, metadata service (second boot): $READY_S")
        out=$(guest_ssh "$ssh_port" cat /root/persist 2>&1) || true
        check "(a) /root survives a reboot" [ "$out" = via-sudo ]
        check "(a) user data runs once per instance" bash -c "! grep -aq MARKER-A '$WORK/a2.serial'"
    else
        fail "(a) second boot ready"
    fi
    stop_qemu a2
    kill "$MD_PID" 2>/dev/null || true
    MD_PID=
}

test_config_drive() {
    local uuid=9d0c1b2a-3e4f-4a5b-8c6d-7e8f9a0b1c2d ssh_port out
    log "(b) config drive, no metadata service"
    instance_data "$WORK/cd" fs-test-b "$uuid" FERROSTACK-USERDATA-MARKER-B 0
    genisoimage -quiet -o "$WORK/cd.iso" -V config-2 -J -r "$WORK/cd"
    ssh_port=$(free_port)
    qemu-img create -q -f qcow2 -b "$IMAGE" -F qcow2 "$WORK/b.qcow2"
    # restrict=on without guestfwd: nothing answers on 169.254.169.254.
    boot b "$WORK/b.qcow2" -netdev "user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:$ssh_port-:22" \
        -device virtio-net-pci,netdev=n0 \
        -drive "file=$WORK/cd.iso,if=none,id=cd0,media=cdrom,readonly=on" -device ide-cd,drive=cd0
    if ! wait_ready b; then
        fail "(b) guest ready"
        tail -n 40 "$WORK/b.serial" | sed 's/^/    /'
        stop_qemu
        return
    fi
    FIGURES+=("boot to ready, config drive (waits 5 s for the metadata service first): $READY_S")
    show_banner b
    check "(b) banner: instance data from config drive" has_line b "ferrostack-guest: instance data from config drive"
    check "(b) banner: ssh key from config drive" has_line b "ferrostack-guest: ssh key from config drive"
    check "(b) banner: hostname from config drive" has_line b "ferrostack-guest: hostname=fs-test-b"
    check "(b) user-data script ran" has_line b "FERROSTACK-USERDATA-MARKER-B from fs-test-b"
    out=$(guest_ssh "$ssh_port" hostname 2>&1) || true
    check "(b) ssh with the config drive key runs hostname -> '$out'" [ "$out" = fs-test-b ]
    if powerdown b; then
        FIGURES+=("system_powerdown to QEMU exit (config drive guest): ${POWERDOWN_S} s")
        pass "(c) system_powerdown (config drive guest)"
    else
        fail "(c) system_powerdown (config drive guest)"
    fi
    stop_qemu
}

# (e) The udhcpc script with busybox's udhcpc, udhcpd and ip, on the build
# host between two network namespaces: the MTU option, classless static
# routes (which win over the router option) and DNS are applied.
test_dhcp_options() {
    log "(e) DHCP options (MTU, classless static routes) in network namespaces"
    if [ "$(id -u)" -ne 0 ] || ! command -v ip >/dev/null 2>&1; then
        log "SKIP (e): network namespaces need root and ip (iproute2)"
        return
    fi
    local cache=${FERROSTACK_GUEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ferrostack/guest-debs}
    local deb bin=$WORK/bb/bin
    deb=$(ls "$cache"/busybox-static_*.deb 2>/dev/null | sort -V | tail -n1)
    if [ -z "$deb" ]; then
        log "SKIP (e): no busybox-static .deb in $cache (build.sh puts it there)"
        return
    fi
    dpkg-deb -x "$deb" "$WORK/bb"
    for applet in ip udhcpc udhcpd; do ln -sf busybox "$bin/$applet"; done

    NS_SRV=fsg$$s NS_CLI=fsg$$c
    ip netns add "$NS_SRV"
    ip netns add "$NS_CLI"
    ip link add "fsg$$a" netns "$NS_SRV" type veth peer name "fsg$$b" netns "$NS_CLI"
    ip -n "$NS_SRV" addr add 10.99.0.1/24 dev "fsg$$a"
    ip -n "$NS_SRV" link set "fsg$$a" up
    ip -n "$NS_CLI" link set lo up
    cat > "$WORK/udhcpd.conf" <<EOF
interface fsg$$a
start 10.99.0.10
end 10.99.0.20
max_leases 10
lease_file $WORK/udhcpd.leases
option subnet 255.255.255.0
option router 10.99.0.254
option dns 10.99.0.53
option domain openstacklocal
option mtu 1450
option staticroutes 169.254.169.254/32 10.99.0.2, 0.0.0.0/0 10.99.0.1
EOF
    touch "$WORK/udhcpd.leases"
    ip netns exec "$NS_SRV" "$bin/udhcpd" -f "$WORK/udhcpd.conf" >"$WORK/udhcpd.log" 2>&1 &
    local srv=$! routes
    sleep 0.5
    mkdir -p "$WORK/dhcp-run"
    FSG_PATH_PREFIX=$bin FSG_RUN=$WORK/dhcp-run FSG_RESOLV_CONF=$WORK/resolv.conf \
        ip netns exec "$NS_CLI" "$bin/udhcpc" -q -f -t 5 -T 1 -i "fsg$$b" \
        -s "$HERE/rootfs/etc/udhcpc/default.script" -O staticroutes -O mtu >"$WORK/udhcpc.log" 2>&1 ||
        log "udhcpc: $(tail -n 3 "$WORK/udhcpc.log")"
    kill "$srv" 2>/dev/null || true
    routes=$(ip -n "$NS_CLI" route)
    check "(e) MTU option applied" bash -c "ip -n $NS_CLI link show fsg$$b 2>/dev/null | grep -q 'mtu 1450 '"
    check "(e) address applied" bash -c "ip -n $NS_CLI -4 addr show fsg$$b 2>/dev/null | grep -q 'inet 10\.99\.0\.'"
    check "(e) classless route to 169.254.169.254" grep -q '^169.254.169.254 via 10.99.0.2 ' <<<"$routes"
    check "(e) default route from option 121, not the router option" grep -q '^default via 10.99.0.1 ' <<<"$routes"
    check "(e) DNS" grep -qx 'nameserver 10.99.0.53' "$WORK/resolv.conf"
    ip netns del "$NS_SRV"
    ip netns del "$NS_CLI"
    NS_SRV="" NS_CLI=""
}

main() {
    ensure_tools
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/ferrostack-guest-test.XXXXXX")
    case $WORK in *,*) die "the work directory's path must not contain a comma (QEMU options)" ;; esac
    trap cleanup EXIT
    if [ $# -ge 1 ]; then
        IMAGE=$(readlink -f "$1")
    else
        IMAGE=$WORK/guest.qcow2
        local t0
        t0=$(now)
        "$HERE/build.sh" "$IMAGE"
        FIGURES+=("build: $(elapsed "$t0" "$(now)") s")
    fi
    FIGURES+=("image: $(stat -c %s "$IMAGE") bytes, $(qemu-img info "$IMAGE" | awk -F': ' '/^virtual size/ { print $2 }')")
    ssh-keygen -q -t ed25519 -N '' -C ferrostack-guest-test -f "$WORK/id_ed25519"
    write_helpers

    local t
    for t in ${FERROSTACK_GUEST_TESTS:-a b e}; do
        case $t in
            a) test_metadata_service ;;         # with (c) and (d)
            b) test_config_drive ;;
            e) test_dhcp_options ;;
            *) die "unknown test '$t' in FERROSTACK_GUEST_TESTS (a, b, e)" ;;
        esac
    done

    log "figures:"
    printf '    %s\n' "${FIGURES[@]}"
    echo "$PASSED passed, $FAILED failed"
    [ "$FAILED" -eq 0 ]
}

main "$@"
