#!/usr/bin/env bash
# On demand: the object service on Ceph's RADOS Gateway. Installs Debian's
# ceph-mon, ceph-osd and radosgw (Ceph 16.2) when missing, starts a
# one-monitor, one-OSD cluster (a memstore OSD: no disk, no LVM) and
# radosgw on loopback inside a private network namespace with all its data
# in a temporary directory, creates an S3 user, runs Ferrostack's object
# client tests with `[object] backend = s3` on it, and tears it all down.
#
#   scripts/object-rgw.sh                 # the object client tests
#   scripts/object-rgw.sh -k test_object_s3.py  # pytest arguments instead
#   FERROSTACK_RGW_KEEP=1 scripts/object-rgw.sh # keep the temp dir
#
# FERROSTACK_BIN names the server binary (default target/debug/ferrostack).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)

if [ -z "${FERROSTACK_RGW_NETNS:-}" ]; then
    if ! command -v radosgw >/dev/null || ! command -v ceph-osd >/dev/null \
        || ! command -v ceph-mon >/dev/null; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
            ceph-mon ceph-osd radosgw ceph-common >/dev/null
    fi
    exec unshare -n -- env FERROSTACK_RGW_NETNS=1 "$0" "$@"
fi
ip link set lo up

D=$(mktemp -d /tmp/ferrostack-rgw.XXXXXX)
mkdir -p "$D"/{run,log,mon,osd/ceph-0,rgw}
CONF=$D/ceph.conf
FSID=$(cat /proc/sys/kernel/random/uuid)
ceph_() { ceph -c "$CONF" --connect-timeout 20 "$@"; }
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    if [ "${FERROSTACK_RGW_KEEP:-}" = 1 ]; then echo "kept $D"; else rm -rf "$D"; fi
}
trap cleanup EXIT

cat >"$CONF" <<EOF
[global]
fsid = $FSID
mon host = v1:127.0.0.1:6789
auth cluster required = none
auth service required = none
auth client required = none
keyring = $D/keyring
run dir = $D/run
admin socket = $D/run/\$name.asok
pid file = $D/run/\$name.pid
log file = $D/log/\$name.log
mon data = $D/mon/\$cluster-\$id
osd data = $D/osd/\$cluster-\$id
osd objectstore = memstore
memstore device bytes = 2147483648
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
ms bind ipv4 = true
ms bind ipv6 = false
[client.rgw.gw]
rgw frontends = beast endpoint=127.0.0.1:7480
rgw data = $D/rgw
EOF

echo "== ceph: one monitor, one memstore OSD in $D"
ceph-authtool --create-keyring "$D/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
ceph-authtool "$D/keyring" --gen-key -n client.admin --cap mon 'allow *' \
    --cap osd 'allow *' --cap mgr 'allow *' >/dev/null
monmaptool --create --fsid "$FSID" --add a 127.0.0.1:6789 "$D/monmap" >/dev/null
ceph-mon -c "$CONF" --mkfs -i a --monmap "$D/monmap" --keyring "$D/keyring"
ceph-mon -c "$CONF" -i a -f & PIDS+=($!)
OSD_UUID=$(cat /proc/sys/kernel/random/uuid)
OSD_ID=$(ceph_ osd new "$OSD_UUID")
ceph-osd -c "$CONF" -i "$OSD_ID" --mkfs --osd-uuid "$OSD_UUID" 2>>"$D/log/mkfs.log"
ceph-osd -c "$CONF" -i "$OSD_ID" -f 2>>"$D/log/osd.err" & PIDS+=($!)
for _ in $(seq 60); do
    ceph_ osd stat 2>/dev/null | grep -q '1 up' && break
    sleep 1
done
ceph_ osd stat

echo "== radosgw on 127.0.0.1:7480"
radosgw -c "$CONF" -n client.rgw.gw -f & PIDS+=($!)
for _ in $(seq 90); do
    curl -fs -o /dev/null http://127.0.0.1:7480/ && break
    sleep 1
done
curl -fs http://127.0.0.1:7480/ >/dev/null || {
    echo "radosgw did not answer"; tail -30 "$D"/log/client.rgw.gw.log; exit 1; }
ACCESS=ferrostack$RANDOM
SECRET=$(cat /proc/sys/kernel/random/uuid)
radosgw-admin -c "$CONF" -n client.admin user create --uid ferrostack \
    --display-name Ferrostack --access-key "$ACCESS" --secret-key "$SECRET" >/dev/null

echo "== Ferrostack's object tests on the RADOS Gateway"
export FERROSTACK__OBJECT__BACKEND=s3
export FERROSTACK__OBJECT__S3_ENDPOINT=http://127.0.0.1:7480
export FERROSTACK__OBJECT__S3_BUCKET=ferrostack-objects
export FERROSTACK__OBJECT__S3_ACCESS_KEY=$ACCESS
export FERROSTACK__OBJECT__S3_SECRET_KEY=$SECRET
export FERROSTACK_BIN=${FERROSTACK_BIN:-$REPO/target/debug/ferrostack}
cd "$REPO"
if [ $# -eq 0 ]; then
    set -- tests/clients/test_object.py tests/clients/test_object_s3.py
fi
rc=0
.venv/bin/pytest -q "$@" || rc=$?
echo "== data in the gateway's bucket"
radosgw-admin -c "$CONF" -n client.admin bucket stats --bucket ferrostack-objects \
    | grep -E '"num_objects"|"size_actual"' || true
exit $rc
