#!/usr/bin/env bash
# Prepare this host for building and testing Ferrostack: Debian packages the
# project needs, and the database/message servers the tests talk to
# (started if they are installed but down). Idempotent; needs root for apt.
set -euo pipefail

log() { printf 'setup-host: %s\n' "$*" >&2; }

# Debian packages, by the command that proves each is there.
declare -A want=(
    [cc]=gcc
    [pkg-config]=pkg-config
    [python3]=python3
    [curl]=curl
    [ip]=iproute2
    [nft]=nftables
    [dnsmasq]=dnsmasq-base
    [dhcp_release]=dnsmasq-utils
    # HA routers: the L3 agent runs one keepalived (VRRP) per HA router.
    [keepalived]=keepalived
    [ping]=iputils-ping
    [arping]=iputils-arping
    [udhcpc]=udhcpc
    # The three-node test (tests/multinode): each node's process enters its
    # host's namespace with nsenter; socat carries the database and broker
    # (on this machine's 127.0.0.1) into the controller's namespace; psql
    # creates the controller's databases.
    [socat]=socat
    [nsenter]=util-linux
    [psql]=postgresql-client
    # Real guests: QEMU (one process per VM), config drives, the noVNC
    # client the console proxy serves, and ssh for the tests that log in.
    [qemu-system-x86_64]=qemu-system-x86
    [qemu-img]=qemu-utils
    [genisoimage]=genisoimage
    [ssh]=openssh-client
    [ssh-keygen]=openssh-client
    # The test guest image is built from Debian packages with these.
    [mkfs.ext4]=e2fsprogs
    [sfdisk]=fdisk
    [depmod]=kmod
    [xz]=xz-utils
    [cpio]=cpio
    # The dashboard's browser tests: node runs playwright-core (installed
    # by tools/setup-dashboard-tests.sh), which drives Debian's chromium.
    [chromium]=chromium
    [node]=nodejs
    [npm]=npm
)
missing=()
for cmd in "${!want[@]}"; do
    command -v "$cmd" >/dev/null 2>&1 || missing+=("${want[$cmd]}")
done
# noVNC has no command; its web client is what the console proxy serves.
[[ -f /usr/share/novnc/vnc_lite.html ]] || missing+=(novnc)
# The S3 client test runs Debian's AWS CLI by its path (a pip-installed
# `aws` elsewhere on PATH would not do).
[[ -x /usr/bin/aws ]] || missing+=(awscli)
if ((${#missing[@]})); then
    mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
fi
if ((${#missing[@]})); then
    if [[ $(id -u) -ne 0 ]]; then
        log "missing packages ${missing[*]}: run as root or install them"
        exit 1
    fi
    apt-get update -qq
    # qemu-system-x86 (Debian 12's 7.2) is broken by a newer qemu-utils
    # (a backport some hosts have): install qemu-utils of the same version
    # with it, so that apt neither refuses nor leaves qemu-img out.
    if [[ " ${missing[*]} " == *" qemu-system-x86 "* ]]; then
        qemu_version=$(apt-cache policy qemu-system-x86 | awk '/Candidate:/ {print $2}')
        mapfile -t missing < <(printf '%s\n' "${missing[@]}" | grep -vx qemu-utils)
        missing+=("qemu-utils=$qemu_version")
    fi
    log "installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends --allow-downgrades "${missing[@]}" >/dev/null
fi
# Nothing the project needs may have been removed by what was installed.
for cmd in "${!want[@]}"; do
    if ! command -v "$cmd" >/dev/null 2>&1; then
        log "installing ${want[$cmd]} again ($cmd is gone)"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${want[$cmd]}" >/dev/null
        command -v "$cmd" >/dev/null 2>&1 || { log "$cmd is still missing"; exit 1; }
    fi
done

# A Linux kernel for the compute agent's KVM probe: on some hosts a boot
# sector runs under KVM but Linux hangs, so the probe boots a real kernel
# (the newest /boot/vmlinuz-*, else this one).
probe_kernel=/var/cache/ferrostack/kvm-probe/vmlinuz
if [[ ! -r $probe_kernel ]] && ! compgen -G '/boot/vmlinuz-*' >/dev/null; then
    pkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null \
        | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
    tmp=$(mktemp -d)
    if [[ -n "$pkg" ]] && (cd "$tmp" && apt-get download -qq "$pkg" >/dev/null 2>&1) \
        && dpkg-deb --fsys-tarfile "$tmp"/*.deb | tar -x -C "$tmp" --wildcards './boot/vmlinuz-*'; then
        install -D -m 0644 "$(ls "$tmp"/boot/vmlinuz-* | head -n1)" "$probe_kernel"
        log "KVM probe kernel: $probe_kernel (from $pkg)"
    else
        log "no kernel for the KVM probe (${pkg:-linux-image-cloud-amd64} not downloadable): KVM will be trusted on a boot sector alone"
    fi
    rm -rf "$tmp"
fi

if ! command -v cargo >/dev/null 2>&1; then
    log "no Rust toolchain (cargo) on PATH: install one with rustup"
    exit 1
fi

# Servers used by the multi-database tests and multi-node deployments.
# Start each one that is installed but not answering.
if command -v pg_ctlcluster >/dev/null 2>&1 && ! pg_isready -q -h 127.0.0.1 2>/dev/null; then
    log "starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || log "PostgreSQL did not start"
fi
if [[ -x /usr/sbin/mariadbd ]] && ! mariadb-admin ping -h 127.0.0.1 --silent 2>/dev/null; then
    log "starting MariaDB"
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd || log "MariaDB did not start"
    for _ in $(seq 1 30); do mariadb-admin ping -h 127.0.0.1 --silent 2>/dev/null && break; sleep 1; done
fi
if command -v rabbitmq-server >/dev/null 2>&1 && ! (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; then
    log "starting RabbitMQ"
    rabbitmq-server -detached || log "RabbitMQ did not start"
fi
log "host ready"
