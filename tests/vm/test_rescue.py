"""Rescue with a real guest: `openstack server rescue` boots the guest
from a fresh disk made on its image (vda) with its own disk attached as
the second disk (vdb), the file written before the rescue on it and not on
the rescue disk's root; `server unrescue` boots the guest from its own
disk again, the rescue disk gone."""

from __future__ import annotations

import pytest

from conftest import qemu_pids, qemu_processes

MARKER = "kept-across-rescue"

# Which disk holds `/` (the partition whose device number `stat` gives
# for `/`, from sysfs), whether the marker is on `/`, and the marker as the
# second disk has it (if any).
WHERE_AM_I = (
    "r=$(stat -c %d /); echo rootdev=$r; "
    "for b in vda1 vdb1; do f=/sys/class/block/$b/dev; [ -e $f ] || continue; "
    "IFS=: read ma mi < $f; [ $(( (ma << 8) | mi )) = $r ] && echo root-on-$b; done; "
    "test -e /root/rescue-marker && echo marker-on-root; "
    "if [ -e /dev/vdb1 ]; then mkdir -p /mnt/own && mount /dev/vdb1 /mnt/own && "
    "echo second-disk:$(cat /mnt/own/root/rescue-marker) && umount /mnt/own; "
    "else echo no-second-disk; fi"
)


@pytest.mark.long
def test_rescue_boots_the_rescue_disk_with_the_own_disk_second_and_unrescue_returns(cloud):
    c = cloud
    g = c.boot("rescued")
    try:
        c.ensure_reachable(g)
        written = c.wait_ssh(g, f"echo {MARKER} > /root/rescue-marker && sync && echo written",
                             timeout=60)
        assert written.strip() == "written"
        before = c.wait_ssh(g, WHERE_AM_I, timeout=60).split()
        assert "root-on-vda1" in before and "marker-on-root" in before, before
        assert "no-second-disk" in before, before

        c.os_ok("server", "rescue", "rescued", fmt_json=False)
        c.wait_server(g.id, "RESCUE", timeout=300, unexpected=("ACTIVE",), grace=120)
        assert len(qemu_pids(g.id)) == 1, qemu_pids(g.id)
        assert (c.instance_dir(g.id) / "disk.rescue").exists()
        rescued = c.wait_ssh(g, WHERE_AM_I, timeout=180).split()
        # Booted from the rescue disk: its root has no marker; the guest's
        # own disk is the second disk, the marker on it.
        assert "root-on-vda1" in rescued, rescued
        assert "marker-on-root" not in rescued, rescued
        assert f"second-disk:{MARKER}" in rescued, rescued

        c.os_ok("server", "unrescue", "rescued", fmt_json=False)
        c.wait_server(g.id, "ACTIVE", timeout=300, unexpected=("RESCUE",), grace=120)
        assert not (c.instance_dir(g.id) / "disk.rescue").exists()
        after = c.wait_ssh(g, WHERE_AM_I, timeout=180).split()
        assert "root-on-vda1" in after and "marker-on-root" in after, after
        assert "no-second-disk" in after, after

        events = c.os_ok("server", "event", "list", g.id)
        assert {"rescue", "unrescue"} <= {e["Action"] for e in events}, events
    finally:
        c.delete(g.id)


# The guest's disks as it sees them: each block device with the sysfs path
# of its device (a virtio-blk disk sits on a virtio device, a disk of a
# virtio-scsi controller under a SCSI host and target).
BLOCK_DEVICES = (
    "for b in /sys/block/vd? /sys/block/sd?; do [ -e $b ] || continue; "
    "echo ${b##*/}=$(readlink -f $b/device); done"
)


@pytest.mark.long
def test_stable_rescue_adds_the_rescue_disk_on_the_image_bus(cloud):
    """Stable device rescue: an image with `hw_rescue_device=disk` and
    `hw_rescue_bus=scsi` rescues the guest with its own virtio disk kept
    where it was (vda) and the rescue disk added on a virtio-scsi
    controller — a SCSI disk (sda) in the guest; unrescue takes it away."""
    c = cloud
    image = "guest-rescue-scsi"
    c.os_ok("image", "create", "--file", str(c.image_path), "--disk-format", "qcow2",
            "--container-format", "bare", "--property", "hw_rescue_device=disk",
            "--property", "hw_rescue_bus=scsi", image)
    g = c.boot("stable-rescued")
    try:
        c.ensure_reachable(g)
        before = dict(x.split("=", 1) for x in c.wait_ssh(g, BLOCK_DEVICES, timeout=60).split())
        assert set(before) == {"vda"}, before

        c.os_ok("--os-compute-api-version", "2.87", "server", "rescue", "--image", image,
                "stable-rescued", fmt_json=False)
        c.wait_server(g.id, "RESCUE", timeout=300, unexpected=("ACTIVE",), grace=120)
        rescued = dict(
            x.split("=", 1) for x in c.wait_ssh(g, BLOCK_DEVICES, timeout=180).split())
        # Its own disk where it was, the rescue disk a SCSI disk.
        assert set(rescued) == {"vda", "sda"}, rescued
        assert "/virtio" in rescued["vda"] and "/host" not in rescued["vda"], rescued
        assert "/host" in rescued["sda"] and "/target" in rescued["sda"], rescued
        args = " ".join(qemu_processes()[qemu_pids(g.id)[0]])
        assert "scsi-hd,bus=rescue-scsi.0" in args, args

        c.os_ok("server", "unrescue", "stable-rescued", fmt_json=False)
        c.wait_server(g.id, "ACTIVE", timeout=300, unexpected=("RESCUE",), grace=120)
        after = dict(x.split("=", 1) for x in c.wait_ssh(g, BLOCK_DEVICES, timeout=180).split())
        assert set(after) == {"vda"}, after
    finally:
        c.delete(g.id)
        c.openstack("image", "delete", image)
