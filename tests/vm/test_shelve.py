"""Shelve with a real guest: its disk is snapshotted into the image
service, its QEMU ends and its host is freed (SHELVED_OFFLOADED); unshelve
boots it again from that image, with its port, address and floating IP,
and the file written before the shelve is still on its disk."""

from __future__ import annotations

import pytest

from conftest import qemu_pids, wait_until


@pytest.mark.long
def test_shelve_offloads_the_guest_and_unshelve_boots_it_again_from_its_snapshot(cloud):
    c = cloud
    g = c.boot("shelf")
    try:
        c.ensure_reachable(g)
        assert c.wait_ssh(g, "echo kept-across-shelve > /root/marker && sync && echo written",
                          timeout=60).strip() == "written"

        c.os_ok("server", "shelve", "shelf", fmt_json=False)
        s = c.wait_server(g.id, "SHELVED_OFFLOADED", timeout=300, unexpected=("ACTIVE",),
                          grace=120)
        assert s["OS-EXT-SRV-ATTR:host"] is None, s
        assert qemu_pids(g.id) == [], f"offloaded but QEMU runs: {qemu_pids(g.id)}"
        img = c.os_ok("image", "show", "shelf-shelved")
        assert img["status"] == "active" and img["disk_format"] == "qcow2", img
        events = c.os_ok("server", "event", "list", g.id)
        assert {"shelve"} <= {e["Action"] for e in events}, events

        c.os_ok("server", "unshelve", "shelf", fmt_json=False)
        s = c.wait_server(g.id, "ACTIVE", timeout=300, unexpected=("SHELVED_OFFLOADED",),
                          grace=120)
        assert s["OS-EXT-SRV-ATTR:host"], s
        assert len(qemu_pids(g.id)) == 1, qemu_pids(g.id)
        out = c.wait_ssh(g, "cat /root/marker", timeout=180)
        assert out.strip() == "kept-across-shelve", out
        wait_until("the shelved image to be deleted",
                   lambda: c.openstack("image", "show", "shelf-shelved").rc != 0, timeout=60)
    finally:
        c.delete(g.id)
