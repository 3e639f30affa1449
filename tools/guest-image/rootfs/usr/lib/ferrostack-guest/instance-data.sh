# Instance data for the Ferrostack test guest (sourced by /etc/init.d/rcS).
#
# Two sources, as OpenStack offers them:
#   - the metadata service, http://169.254.169.254/openstack/latest/
#     meta_data.json and user_data (EC2's /latest/meta-data/... and
#     /latest/user-data when the OpenStack paths are not served);
#   - the config drive: the filesystem labelled config-2 (ISO 9660 on an
#     IDE cdrom or a virtio disk, or VFAT), with the same files under
#     openstack/latest/.
# Either way the result is $ID_DIR/meta.flat (json.awk's PATH<TAB>VALUE
# lines) and, if there is user data, $ID_DIR/user_data.

MD_URL=${MD_URL:-http://169.254.169.254}
ID_DIR=${ID_DIR:-/run/ferrostack-guest/instance}
LIB_DIR=${LIB_DIR:-/usr/lib/ferrostack-guest}
CD_MOUNT=${CD_MOUNT:-/mnt/config}

uptime_s() { cut -d. -f1 /proc/uptime; }

# get URL FILE [TIMEOUT]: download to FILE; nothing is left behind on failure.
# (busybox 1.35's own "wget -T" crashes, hence timeout.)
get() {
    rm -f "$2.part"
    if timeout "${3:-3}" wget -q -O "$2.part" "$1" 2>/dev/null; then
        mv "$2.part" "$2"
    else
        rm -f "$2.part"
        return 1
    fi
}

# Parse a meta_data.json into meta.flat; a truncated or broken document
# counts as no document.
flatten() {
    awk -f "$LIB_DIR/json.awk" "$1" > "$ID_DIR/meta.flat.part" 2>/dev/null &&
        mv "$ID_DIR/meta.flat.part" "$ID_DIR/meta.flat"
}

# One attempt at the OpenStack paths, then at the EC2 ones.
try_metadata_service() {
    if get "$MD_URL/openstack/latest/meta_data.json" "$ID_DIR/meta_data.json" &&
        flatten "$ID_DIR/meta_data.json"; then
        # A 404 here means the instance has no user data.
        get "$MD_URL/openstack/latest/user_data" "$ID_DIR/user_data" 10 || true
        return 0
    fi
    if get "$MD_URL/latest/meta-data/hostname" "$ID_DIR/ec2-hostname"; then
        {
            printf '/hostname\t%s\n' "$(head -n1 "$ID_DIR/ec2-hostname")"
            if get "$MD_URL/latest/meta-data/instance-id" "$ID_DIR/ec2-id"; then
                printf '/ec2_instance_id\t%s\n' "$(head -n1 "$ID_DIR/ec2-id")"
            fi
            if get "$MD_URL/latest/meta-data/public-keys/0/openssh-key" "$ID_DIR/ec2-key"; then
                printf '/public_keys/0\t%s\n' "$(head -n1 "$ID_DIR/ec2-key")"
            fi
        } > "$ID_DIR/meta.flat"
        get "$MD_URL/latest/user-data" "$ID_DIR/user_data" 10 || true
        return 0
    fi
    return 1
}

# fetch_from_metadata_service WAIT [WAIT_WITH_CONFIG_DRIVE]: retry for up
# to WAIT seconds (the metadata proxy may answer only once the network is
# fully wired), or WAIT_WITH_CONFIG_DRIVE once a config drive shows up:
# its data is there already.  (The cdrom of a config drive can appear
# while we wait, its driver being loaded in the background.)
fetch_from_metadata_service() {
    mkdir -p "$ID_DIR"
    start=$(uptime_s)
    deadline=$((start + $1))
    while :; do
        try_metadata_service && return 0
        if [ -n "${2:-}" ] && [ "$deadline" -gt $((start + $2)) ] &&
            find_config_drive >/dev/null; then
            deadline=$((start + $2))
        fi
        [ "$(uptime_s)" -lt "$deadline" ] || return 1
        sleep 1
    done
}

# The config drive's device, found by filesystem label (the device name
# depends on the bus: /dev/sr0 for an IDE cdrom, /dev/vdb for virtio).
find_config_drive() {
    for label in config-2 CONFIG-2; do
        findfs "LABEL=$label" 2>/dev/null && return 0
    done
    return 1
}

fetch_from_config_drive() {
    dev=$(find_config_drive) || return 1
    mkdir -p "$ID_DIR" "$CD_MOUNT"
    mount -o ro "$dev" "$CD_MOUNT" 2>/dev/null || return 1
    ok=1
    if [ -f "$CD_MOUNT/openstack/latest/meta_data.json" ] &&
        flatten "$CD_MOUNT/openstack/latest/meta_data.json"; then
        ok=0
        cp "$CD_MOUNT/openstack/latest/meta_data.json" "$ID_DIR/meta_data.json"
        if [ -f "$CD_MOUNT/openstack/latest/user_data" ]; then
            cp "$CD_MOUNT/openstack/latest/user_data" "$ID_DIR/user_data"
        fi
    fi
    umount "$CD_MOUNT"
    return $ok
}

# config_drive_admin_pass: `admin_pass` of the config drive's
# meta_data.json, where Nova puts the adminPass it answered with (the
# metadata service never serves it); empty without one.
config_drive_admin_pass() {
    dev=$(find_config_drive) || return 0
    mkdir -p "$CD_MOUNT"
    mount -o ro "$dev" "$CD_MOUNT" 2>/dev/null || return 0
    f="$CD_MOUNT/openstack/latest/meta_data.json"
    if [ -f "$f" ]; then
        awk -f "$LIB_DIR/json.awk" "$f" 2>/dev/null |
            awk 'index($0, "/admin_pass\t") == 1 { print substr($0, 13); exit }'
    fi
    umount "$CD_MOUNT"
}

# md_value KEY: the value at /KEY in the instance data (empty if absent).
md_value() {
    [ -f "$ID_DIR/meta.flat" ] || return 0
    awk -v k="/$1" 'index($0, k "\t") == 1 { print substr($0, length(k) + 2); exit }' \
        "$ID_DIR/meta.flat"
}

# md_public_keys: every value of the public_keys object, one key per line
# (a key's trailing "\n" escape dropped, embedded ones made line breaks).
md_public_keys() {
    [ -f "$ID_DIR/meta.flat" ] || return 0
    awk 'index($0, "/public_keys/") == 1 { print substr($0, index($0, "\t") + 1) }' \
        "$ID_DIR/meta.flat" |
        sed -e 's/\\r//g' -e 's/\\n/\n/g' |
        sed -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//' -e '/^$/d'
}

# A hostname from the instance data: "hostname", else "name", cut to the
# short form (before the first dot) and to characters a hostname may have.
md_short_hostname() {
    h=$(md_value hostname)
    [ -n "$h" ] || h=$(md_value name)
    h=${h%%.*}
    echo "$h" | tr -c 'A-Za-z0-9\n-' '-' | cut -c1-63
}
