"""A server's life with real guests: every action changes what the guest
does (its console, its QEMU process, whether it answers), not only the
server's status. The tests run in file order on vm1; the last deletes it."""

from __future__ import annotations

import re

from conftest import (POWER_BUTTON, READY, banner, last_banner, links, pings, qemu_pids,
                      tap_name, wait_until)


def _active(c, g, timeout: float = 90) -> dict:
    """vm1 must be ACTIVE for the next action (a previous test may have
    left it otherwise)."""
    return c.wait_server(g.id, "ACTIVE", timeout=timeout)


def _count(text: str, marker: str) -> int:
    return sum(1 for line in text.splitlines() if line.strip().startswith(marker))


def test_soft_reboot_shuts_the_guest_down_cleanly_and_boots_it_again(cloud, vm1):
    c, g = cloud, vm1
    _active(c, g)
    before = c.console_text(g.id)
    if READY not in before:  # still booting
        before = c.wait_new_banner(g.id)
    c.os_ok("server", "reboot", "--soft", "--wait", "vm1", fmt_json=False)
    c.wait_server(g.id, "ACTIVE")
    after = c.wait_new_banner(g.id, before)
    assert _count(after, POWER_BUTTON) > _count(before, POWER_BUTTON), (
        "soft reboot did not press the guest's power button (ACPI shutdown)\n"
        + "\n".join(banner(after)) + "\n" + c.log_tail(30))
    assert "ferrostack-guest: hostname=vm1" in last_banner(after)


def test_hard_reboot_boots_the_guest_again(cloud, vm1):
    c, g = cloud, vm1
    _active(c, g)
    before = c.console_text(g.id)
    c.os_ok("server", "reboot", "--hard", "--wait", "vm1", fmt_json=False)
    c.wait_server(g.id, "ACTIVE")
    after = c.wait_new_banner(g.id, before)
    assert last_banner(after)[-1] == READY
    assert len(qemu_pids(g.id)) == 1, qemu_pids(g.id)


def test_stop_ends_the_guests_qemu_and_start_boots_it_again(cloud, vm1):
    c, g = cloud, vm1
    _active(c, g)
    assert qemu_pids(g.id), f"no QEMU process for ACTIVE vm1\n{c.diag(g.id)}"
    before = c.console_text(g.id)
    c.os_ok("server", "stop", "vm1", fmt_json=False)
    s = c.wait_server(g.id, "SHUTOFF", timeout=90, unexpected=("ACTIVE",), grace=45)
    assert s["OS-EXT-STS:power_state"] == 4, s  # SHUTDOWN
    assert qemu_pids(g.id) == [], f"vm1 is SHUTOFF but QEMU runs: {qemu_pids(g.id)}"
    c.os_ok("server", "start", "vm1", fmt_json=False)
    c.wait_server(g.id, "ACTIVE", unexpected=("SHUTOFF",))
    assert len(qemu_pids(g.id)) == 1, qemu_pids(g.id)
    c.wait_new_banner(g.id, before)


def test_pause_freezes_the_guest_and_unpause_thaws_it(cloud, vm1):
    c, g = cloud, vm1
    _active(c, g)
    c.ensure_reachable(g)
    pids = qemu_pids(g.id)
    c.os_ok("server", "pause", "vm1", fmt_json=False)
    s = c.wait_server(g.id, "PAUSED", timeout=60)
    assert s["OS-EXT-STS:power_state"] == 3, s  # PAUSED
    assert qemu_pids(g.id) == pids, "pausing replaced the QEMU process"
    assert not pings(c.ext_ns, g.fip, 2), "a PAUSED guest answers ping"
    c.os_ok("server", "unpause", "vm1", fmt_json=False)
    c.wait_server(g.id, "ACTIVE", timeout=60, unexpected=("PAUSED",))
    wait_until("the unpaused guest to answer ping", lambda: pings(c.ext_ns, g.fip, 1),
               timeout=30)


def test_suspend_saves_the_guest_and_resume_restores_it_without_a_reboot(cloud, vm1):
    c, g = cloud, vm1
    _active(c, g)
    c.ensure_reachable(g)
    before = c.console_text(g.id)
    c.os_ok("server", "suspend", "vm1", fmt_json=False)
    c.wait_server(g.id, "SUSPENDED", timeout=120)
    assert not pings(c.ext_ns, g.fip, 2), "a SUSPENDED guest answers ping"
    c.os_ok("server", "resume", "vm1", fmt_json=False)
    c.wait_server(g.id, "ACTIVE", timeout=120, unexpected=("SUSPENDED",))
    assert c.wait_ssh(g, "hostname", timeout=60).strip() == "vm1"
    wait_until("the resumed guest to answer ping", lambda: pings(c.ext_ns, g.fip, 1),
               timeout=30)
    # Resumed from memory, not booted again.
    assert _count(c.console_text(g.id), READY) == _count(before, READY), (
        "the guest booted again instead of resuming\n" + "\n".join(banner(c.console_text(g.id))))


def test_snapshot_boots_a_second_server(cloud, vm1):
    c, g = cloud, vm1
    _active(c, g)
    img = c.os_ok("server", "image", "create", "--name", "vm1-snap", "--wait", "vm1")
    shown = c.os_ok("image", "show", img["id"])
    assert shown["status"] == "active", shown
    assert shown["disk_format"] == "qcow2", shown
    c.wait_server(g.id, "ACTIVE", timeout=60)  # the snapshot left vm1 running
    vm2 = c.boot("vm2", image="vm1-snap")
    try:
        text = c.wait_new_banner(vm2.id)
        lines = last_banner(text)
        assert "ferrostack-guest: hostname=vm2" in lines, "\n".join(lines)
        assert any(re.search(rf"addr={re.escape(vm2.fixed_ip)}/24", line) for line in lines), (
            f"vm2's banner lacks its address {vm2.fixed_ip}\n" + "\n".join(lines))
    finally:
        c.delete(vm2.id)


def test_rebuild_boots_the_image_again(cloud, vm1):
    c, g = cloud, vm1
    _active(c, g)
    before = c.console_text(g.id)
    # (openstackclient prints "Complete" before the server: not JSON.)
    c.os_ok("server", "rebuild", "--image", "guest", "--wait", "vm1", fmt_json=False)
    s = c.wait_server(g.id, "ACTIVE")
    assert s["image"]["id"] == c.os_ok("image", "show", "guest")["id"], s["image"]
    text = c.wait_new_banner(g.id, before)
    lines = last_banner(text)
    assert "ferrostack-guest: hostname=vm1" in lines, "\n".join(lines)
    assert any(f"addr={g.fixed_ip}/24" in line for line in lines), "\n".join(lines)
    assert "ferrostack-guest: ssh key from metadata service" in lines, "\n".join(lines)


def _mem_total_kb(c, g) -> int:
    out = c.wait_ssh(g, "grep MemTotal /proc/meminfo", timeout=90)
    return int(re.search(r"MemTotal:\s+(\d+)", out).group(1))


def test_resize_confirm_gives_the_guest_the_new_flavor(cloud, vm1):
    c, g = cloud, vm1
    _active(c, g)
    c.ensure_reachable(g)
    small_before = _mem_total_kb(c, g)
    assert small_before < 512 * 1024, small_before
    before = c.console_text(g.id)
    c.os_ok("server", "resize", "--flavor", "m1.small", "--wait", "vm1", fmt_json=False)
    c.wait_server(g.id, "VERIFY_RESIZE", timeout=120)
    c.os_ok("server", "resize", "confirm", "vm1", fmt_json=False)
    s = c.wait_server(g.id, "ACTIVE", timeout=120)
    flavor = c.os_ok("server", "show", "vm1")["flavor"]
    assert "m1.small" in str(flavor), flavor
    assert s["flavor"]["id"] == c.os_ok("flavor", "show", "m1.small")["id"], s["flavor"]
    c.wait_new_banner(g.id, before)
    mem = _mem_total_kb(c, g)
    assert mem > 1536 * 1024, f"the guest has {mem} kB after a resize to 2048 MB"


def test_an_interface_attached_to_the_running_guest_appears_and_goes_again(cloud, vm1):
    """`server add port` hot-plugs a NIC into the running guest (the guest
    sees a new ethN with the port's MAC and its tap is plugged); `server
    remove port` unplugs it and the port's tap goes."""
    c, g = cloud, vm1
    _active(c, g)
    c.ensure_reachable(g)
    port = c.os_ok("port", "create", "--network", "net_admin", "vm1-extra")
    mac = port["mac_address"]
    c.os_ok("server", "add", "port", "vm1", port["id"], fmt_json=False)
    ifaces = c.api("GET", f"/servers/{g.id}/os-interface").json()["interfaceAttachments"]
    assert port["id"] in [i["port_id"] for i in ifaces], ifaces
    wait_until("the new NIC in the guest",
               lambda: mac in c.ssh(g.fip, "cat /sys/class/net/*/address").stdout, timeout=60)
    wait_until("the attached port ACTIVE",
               lambda: c.os_ok("port", "show", port["id"])["status"] == "ACTIVE", timeout=60)
    assert tap_name(port["id"]) in links()
    c.os_ok("server", "remove", "port", "vm1", port["id"], fmt_json=False)
    ifaces = c.api("GET", f"/servers/{g.id}/os-interface").json()["interfaceAttachments"]
    assert port["id"] not in [i["port_id"] for i in ifaces], ifaces
    assert mac not in c.ssh(g.fip, "cat /sys/class/net/*/address").stdout
    assert tap_name(port["id"]) not in links()
    c.os_ok("port", "delete", port["id"], fmt_json=False)


def test_delete_leaves_no_process_tap_directory_or_port(cloud, vm1):
    c, g = cloud, vm1
    ports = [p["id"] for p in c.server_ports(g.id)]
    assert ports, "vm1 has no ports"
    assert {tap_name(p) for p in ports} <= links(), "vm1's taps are not there before delete"
    assert c.instance_dir(g.id).is_dir()
    c.os_ok("server", "delete", "--wait", "vm1", fmt_json=False)
    assert c.server(g.id) is None

    def what_is_left():
        left = c.leftovers(g.id, ports)
        listed = c.os_ok("port", "list", "--device-id", g.id)
        if listed:
            left.append(f"ports {[p['ID'] for p in listed]}")
        return left
    try:
        wait_until("nothing of vm1 to remain", lambda: not what_is_left(), timeout=20)
    except AssertionError:
        raise AssertionError(f"after deleting vm1: {what_is_left()}\n{c.log_tail(40)}") from None
    if g.fip:
        fip = c.os_ok("floating", "ip", "show", g.fip)
        assert not fip.get("port_id"), f"the floating IP is still associated: {fip}"
    c.guests.pop("vm1", None)
