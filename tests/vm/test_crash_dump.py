"""`openstack server dump create` (trigger_crash_dump, compute 2.17) with a
real guest: the QEMU driver sends the running guest an NMI, which its
Linux kernel reports on the console; the instance action's event says
Success, and the guest keeps running."""

from __future__ import annotations

import time


def test_server_dump_create_sends_the_guest_an_nmi(cloud):
    c = cloud
    g = c.boot("crash-dump")
    try:
        c.wait_new_banner(g.id)
        before = c.console_text(g.id).count("NMI received")
        c.os_ok("--os-compute-api-version", "2.17", "server", "dump", "create", "crash-dump",
                fmt_json=False)
        deadline = time.monotonic() + 60
        text = ""
        while time.monotonic() < deadline:
            text = c.console_text(g.id)
            if text.count("NMI received") > before:
                break
            time.sleep(1)
        assert text.count("NMI received") > before, text[-2000:]
        actions = c.os_ok("server", "event", "list", g.id)
        dump = [a for a in actions if a["Action"] == "trigger_crash_dump"]
        assert dump, actions
        shown = c.os_ok("server", "event", "show", g.id, dump[0]["Request ID"])
        assert "Success" in str(shown["events"]), shown
        assert c.server(g.id)["status"] == "ACTIVE"
    finally:
        c.delete(g.id)
