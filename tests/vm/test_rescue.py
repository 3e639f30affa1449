"""Rescue with a real guest: `openstack server rescue` boots the guest
from a fresh disk made on its image (vda) with its own disk attached as
the second disk (vdb), the file written before the rescue on it and not on
the rescue disk's root; `server unrescue` boots the guest from its own
disk again, the rescue disk gone."""

from __future__ import annotations

import pytest

from conftest import qemu_pids

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
