#!/usr/bin/env bash
# tempest's compute API tests against real QEMU guests (on demand; root).
#
#   scripts/tempest-vm.sh                  all of tempest.api.compute (588
#                                          tests; 15-40 min here under TCG)
#   scripts/tempest-vm.sh --ci             the representative subset below
#   scripts/tempest-vm.sh TEMPEST_REGEX    tests matching the regex
#   scripts/tempest-vm.sh --list-ci        print the subset's regexes
#
# What it does, inside its own private network namespace (`unshare -n`, as
# scripts/tempest.sh does, so nothing touches this machine's networking;
# with a mount namespace whose /sys shows that network namespace's links):
#   1. builds the test guest image with tools/guest-image/build.sh, cached
#      under ${XDG_CACHE_HOME:-~/.cache}/ferrostack/ by a hash of
#      tools/guest-image (done before entering the namespace: the build may
#      download Debian packages);
#   2. makes the external network: a bridge br-ex carrying the gateway
#      172.24.4.1/24 of tempest's `public` network (the one
#      tools/tempest/ferrotempest.py creates), mapped into the cloud with
#      FERROSTACK__NETWORK_AGENT__BRIDGE_MAPPINGS=public:br-ex, so floating
#      IPs answer from this (private) host;
#   3. starts an all-in-one with FERROSTACK__COMPUTE__DRIVER=qemu (guests
#      under TCG here), its network agents, the metadata service (8775) and
#      the noVNC proxy (6080);
#   4. runs tools/tempest/run.sh compute with the guest image uploaded as
#      image_ref and image_ref_alt, and tempest's defaults turned on where
#      Ferrostack has the feature now: vnc_console, config_drive,
#      metadata_service, snapshot, console_output, interface_attach, and
#      guest validation (run_validation: SSH as root with the key pair, to
#      a floating IP); the other options are those of the fake-driver run;
#   5. stops the all-in-one and kills its guests (QEMU daemonizes; the
#      guests of this run are the ones whose command line names its data
#      directory), removes what the network agents built and the guests'
#      disks; logs and the tempest workspace stay in the data directory.
#
# The loopback guard (tools/tempest/loopback_guard) still keeps tempest on
# 127.0.0.1, with one exception this script makes: the external network
# 172.24.4.0/24 (FERROSTACK_LOOPBACK_GUARD_ALLOW), because validation SSHes
# to guests' floating IPs. That network exists only inside the private
# namespace; every other address is still refused.
#
# Environment:
#   FERROSTACK_BIN                 the binary  [target/debug/ferrostack]
#   FERROSTACK_TEMPEST_GUEST_IMAGE use this guest image, do not build one
#   FERROSTACK_KEEP_DATA=1         keep the guests' disks and images too
#   TEMPEST_CONCURRENCY            tempest workers  [2]
#   TEMPEST_COMPUTE_BUILD_TIMEOUT, TEMPEST_VALIDATION_*_TIMEOUT and the other
#   knobs of tools/tempest/ferrotempest.py override the values below.
set -uo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

say() { printf 'tempest-vm: %s\n' "$*" >&2; }
die() { say "$*"; exit 2; }

# tempest's external network (ferrotempest's `public`) and its gateway.
EXT_CIDR=172.24.4.0/24
EXT_GATEWAY=172.24.4.1

# The --ci subset: servers created, shown and listed with validation (SSH
# with the key pair from the metadata service), the power and lifecycle
# actions with SSH checks, console output, noVNC, snapshot, delete in
# several states. About 3 minutes here (TCG, 2 cores). No test of
# tempest.api.compute at microversion 2.1 reads the metadata service or a
# config drive itself; the validated guests get their SSH key from them.
# Shelve: tempest's scenario (shelve, offload, unshelve, read back over
# SSH), a few minutes more.
CI_TESTS=(
    'tempest\.api\.compute\.servers\.test_create_server\.ServersTestJSON\.'
    'tempest\.api\.compute\.servers\.test_server_actions\.ServerActionsTestJSON\.test_(reboot_server_hard|stop_start_server|pause_unpause_server|suspend_resume_server|rebuild_server|resize_server_confirm|get_console_output)\b'
    'tempest\.api\.compute\.servers\.test_novnc\.NoVNCConsoleTestJSON\.'
    'tempest\.api\.compute\.images\.test_images_oneserver\.ImagesOneServerTestJSON\.test_create_delete_image\b'
    'tempest\.api\.compute\.servers\.test_delete_server\.DeleteServersTestJSON\.test_delete_(active_server|server_while_in_shutoff_state|server_while_in_pause_state)\b'
    'tempest\.scenario\.test_shelve_instance\.TestShelveInstance\.test_shelve_instance\b'
)

regex='^tempest\.api\.compute\.'
case "${1:-}" in
    --ci) regex="$(IFS='|'; echo "${CI_TESTS[*]}")"; shift ;;
    --list-ci) printf '%s\n' "${CI_TESTS[@]}"; exit 0 ;;
    -h|--help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) die "unknown option $1 (see --help)" ;;
    "") ;;
    *) regex="$1"; shift ;;
esac
[[ $# -eq 0 ]] || die "too many arguments (see --help)"

# ---------------------------------------------------------------- outside
if [[ -z "${FERROSTACK_PRIVATE_NETNS:-}" ]]; then
    [[ $(id -u) -eq 0 ]] || die "run as root: real guests, taps, bridges and namespaces"
    command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 missing (scripts/setup-host.sh installs it)"
    bin="${FERROSTACK_BIN:-$repo/target/debug/ferrostack}"
    [[ -x "$bin" ]] || cargo build -p ferrostack || exit 2
    tools/setup-venv.sh || die "venv setup failed"
    image="${FERROSTACK_TEMPEST_GUEST_IMAGE:-}"
    if [[ -z "$image" ]]; then
        # The cache key: everything build.sh builds the image from.
        key="$(cd tools/guest-image && find . -type f ! -name test.sh -print0 | LC_ALL=C sort -z \
            | xargs -0 sha256sum | sha256sum | cut -c1-16)"
        cache="${XDG_CACHE_HOME:-$HOME/.cache}/ferrostack"
        image="$cache/tempest-guest-$key.qcow2"
        if [[ ! -s "$image" ]]; then
            mkdir -p "$cache"
            say "building the guest image $image"
            tools/guest-image/build.sh "$image.build" >&2
            rc=$?
            # Accept what build.sh wrote only if it is a sound qcow2.
            if [[ -s "$image.build" ]] && qemu-img check -q "$image.build" 2>/dev/null; then
                [[ $rc -eq 0 ]] || say "warning: build.sh exited $rc, but wrote a sound image"
                mv "$image.build" "$image"
                # images of older tools/guest-image sources are not needed
                find "$cache" -maxdepth 1 -name 'tempest-guest-*.qcow2' ! -path "$image" -delete
            else
                rm -f "$image.build"
                die "tools/guest-image/build.sh failed ($rc)"
            fi
        fi
    fi
    [[ -s "$image" ]] || die "no guest image at $image"
    say "guest image $image"
    export FERROSTACK_TEMPEST_GUEST_IMAGE="$image" FERROSTACK_BIN="$bin"
    # A private network namespace, and a mount namespace with its own
    # sysfs, so that /sys/class/net lists this namespace's links as on a
    # real host (and as `ip netns exec` arranges); a bare `unshare -n`
    # keeps the host's view, which misled the QEMU driver's tap lookup
    # before 558fb79.
    exec env FERROSTACK_PRIVATE_NETNS=1 unshare -n -m --propagation private -- \
        bash -c 'ip link set lo up && mount -t sysfs sysfs /sys && exec "$0" "$@"' \
        "$0" ${regex:+"$regex"}
fi

# ----------------------------------------------------- in the private netns
[[ "$(ip -o link show | awk -F': ' '{print $2}' | tr '\n' ' ')" == "lo " ]] \
    || die "not in a fresh private network namespace (run without FERROSTACK_PRIVATE_NETNS)"
bin="$FERROSTACK_BIN"
image="$FERROSTACK_TEMPEST_GUEST_IMAGE"
start=$(date +%s)

ip link add br-ex type bridge && ip addr add "$EXT_GATEWAY/${EXT_CIDR#*/}" dev br-ex \
    && ip link set br-ex up || die "could not make br-ex"

data="$(mktemp -d /tmp/ferrostack-tempest-vm.XXXXXX)"
aio_pid=

# Every process whose command line names the data directory: this run's
# guests (daemonized QEMU) and dnsmasq.
pids_naming_data() {
    local d cmd
    for d in /proc/[0-9]*; do
        cmd="$( { tr '\0' ' ' < "$d/cmdline"; } 2>/dev/null)"
        [[ "$cmd" == *"$data/"* ]] && echo "${d#/proc/}"
    done
}

cleanup() {
    local pids i
    if [[ -n "$aio_pid" ]] && kill -0 "$aio_pid" 2>/dev/null; then
        kill -TERM "$aio_pid"
        for i in $(seq 1 40); do kill -0 "$aio_pid" 2>/dev/null || break; sleep 0.5; done
        kill -KILL "$aio_pid" 2>/dev/null
        wait "$aio_pid" 2>/dev/null
    fi
    pids="$(pids_naming_data)"
    if [[ -n "$pids" ]]; then
        say "stopping what the run left: $(echo $pids)"
        kill -KILL $pids 2>/dev/null
        sleep 1
    fi
    "$bin" netns-cleanup --data-dir "$data" >/dev/null 2>&1
    ip link del br-ex 2>/dev/null
    if [[ "${FERROSTACK_KEEP_DATA:-0}" != 1 ]]; then
        rm -rf "$data/compute/instances" "$data/images"
    fi
    say "logs and tempest workspace: $data"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

export FERROSTACK__COMPUTE__DRIVER=qemu
export FERROSTACK__NETWORK_AGENT__ENABLED=true
export FERROSTACK__NETWORK_AGENT__BRIDGE_MAPPINGS="public:br-ex"
"$bin" all-in-one --data-dir "$data" >"$data/all-in-one.log" 2>&1 &
aio_pid=$!
for i in $(seq 1 120); do
    curl -sf http://127.0.0.1:5000/v3 >/dev/null && break
    kill -0 $aio_pid 2>/dev/null || { say "all-in-one exited:"; tail -20 "$data/all-in-one.log" >&2; exit 2; }
    sleep 0.5
done
# The compute service and the L3 agent must be up before servers boot and
# routers get their gateway.
for i in $(seq 1 120); do
    up="$("$bin" service list --data-dir "$data" 2>/dev/null \
        | grep -cE '^(nova-compute|neutron-l3-agent|neutron-dhcp-agent|neutron-linuxbridge-agent) .*:-\)')"
    [[ "$up" -ge 4 ]] && break
    ((i < 120)) || { say "compute service or network agents not up:"; "$bin" service list --data-dir "$data" >&2; exit 2; }
    sleep 0.5
done

# The tempest.conf knobs of tools/tempest/ferrotempest.py for real guests.
export TEMPEST_COMPUTE_IMAGE_FILE="$image" TEMPEST_COMPUTE_IMAGE_FORMAT=qcow2
export TEMPEST_PUBLIC_CIDR="$EXT_CIDR" TEMPEST_PUBLIC_GATEWAY="$EXT_GATEWAY"
# m1.tiny (512 MB, 1 GB disk) holds the guest (512 MiB virtual disk);
# m1.small (2 GB, 20 GB) is the resize target.
export TEMPEST_COMPUTE_FLAVOR_REF="${TEMPEST_COMPUTE_FLAVOR_REF:-1}"
export TEMPEST_COMPUTE_FLAVOR_REF_ALT="${TEMPEST_COMPUTE_FLAVOR_REF_ALT:-2}"
# Under TCG a boot to SSH takes seconds to a minute with two guests
# booting; a stop waits up to [compute] shutdown_timeout (60 s) for a guest
# that is not yet listening to its power button.
export TEMPEST_COMPUTE_BUILD_TIMEOUT="${TEMPEST_COMPUTE_BUILD_TIMEOUT:-300}"
export TEMPEST_COMPUTE_VNC_CONSOLE=true TEMPEST_COMPUTE_CONFIG_DRIVE=true
export TEMPEST_COMPUTE_METADATA_SERVICE=true TEMPEST_COMPUTE_SNAPSHOT=true
export TEMPEST_COMPUTE_CONSOLE_OUTPUT=true TEMPEST_COMPUTE_INTERFACE_ATTACH=true
export TEMPEST_VALIDATION=true TEMPEST_VALIDATION_SSH_USER=root
export TEMPEST_VALIDATION_CONNECT_METHOD=floating TEMPEST_VALIDATION_NETWORK_FOR_SSH=private
export TEMPEST_VALIDATION_PING_TIMEOUT="${TEMPEST_VALIDATION_PING_TIMEOUT:-180}"
export TEMPEST_VALIDATION_CONNECT_TIMEOUT="${TEMPEST_VALIDATION_CONNECT_TIMEOUT:-60}"
export TEMPEST_VALIDATION_SSH_TIMEOUT="${TEMPEST_VALIDATION_SSH_TIMEOUT:-300}"
# The one network tempest may reach besides loopback (see above).
export FERROSTACK_LOOPBACK_GUARD_ALLOW="$EXT_CIDR"
export TEMPEST_REGEX="$regex"
export TEMPEST_CONCURRENCY="${TEMPEST_CONCURRENCY:-2}"

say "all-in-one up (data $data); running tempest compute, regex: $regex"
tools/tempest/run.sh compute "$data"
rc=$?
elapsed=$(( $(date +%s) - start ))
say "wall time $((elapsed / 60)) min $((elapsed % 60)) s"
exit $rc
