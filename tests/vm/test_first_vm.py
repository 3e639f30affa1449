"""The seed's first VM: booted with the stock CLI, its banner on the
console log, reached from the external host through a floating IP, with
the security group deciding what gets in."""

from __future__ import annotations

import re

from conftest import READY, banner, last_banner, pings, wait_until


def test_first_vm_boots_gets_its_address_and_key_and_is_reachable_through_a_floating_ip(
        cloud, vm1):
    c, g = cloud, vm1
    show = c.os_ok("server", "show", "vm1")
    assert show["status"] == "ACTIVE", show
    addresses = show["addresses"]
    # openstackclient prints {"net_admin": ["50.50.1.x"]} (older: "net_admin=…").
    text = addresses if isinstance(addresses, str) else str(addresses.get("net_admin"))
    fixed = re.findall(r"50\.50\.1\.\d+", text)
    assert fixed == [g.fixed_ip], f"server show addresses {addresses!r}, API {g.fixed_ip}"

    # The console log shows the guest's own view of what the cloud gave it.
    c.wait_new_banner(g.id)
    log = c.os_ok("console", "log", "show", "vm1", fmt_json=False).stdout.replace("\r", "")
    lines = last_banner(log)
    assert f"ferrostack-guest: hostname=vm1" in lines, "\n".join(banner(log))
    eth0 = [line for line in lines if line.startswith("ferrostack-guest: eth0 ")]
    assert eth0, "\n".join(banner(log))
    m = re.search(r"addr=(\d+\.\d+\.\d+\.\d+)/(\d+)", eth0[0])
    assert m and m.group(1) == g.fixed_ip and m.group(2) == "24", (
        f"guest says {eth0[0]!r}; the server's fixed address is {g.fixed_ip}")
    assert "ferrostack-guest: ssh key from metadata service" in lines, "\n".join(lines)
    assert lines[-1] == READY, "\n".join(lines)

    # A floating IP from the external network.
    fip = c.os_ok("floating", "ip", "create", "net_external")["floating_ip_address"]
    assert fip.startswith("192.168.100."), fip
    c.os_ok("server", "add", "floating", "ip", "vm1", fip, fmt_json=False)
    g.fip = fip

    # ICMP once the default group allows it.
    c.allow("icmp")
    try:
        wait_until(f"ping {fip} from the external host", lambda: pings(c.ext_ns, fip, 1),
                   timeout=30)
    except AssertionError as e:
        raise AssertionError(f"{e}\n{c.diag(g.id)}") from None

    # SSH: closed while no rule allows TCP 22, open once one does.
    closed = c.ssh(fip, "hostname")
    assert closed.returncode != 0, (
        f"SSH to {fip} worked without a rule for TCP 22: {closed.stdout!r}")
    c.allow("tcp", 22)
    assert c.wait_ssh(g, "hostname", timeout=30).strip() == "vm1"


def test_server_addresses_list_the_floating_ip(cloud, vm1):
    """As Nova's (refreshed by Neutron's network-changed event): the
    floating IP joins the server's addresses, typed `floating`."""
    c, g = cloud, vm1
    if not g.fip:
        c.add_floating_ip(g)

    def floating():
        s = c.server(g.id)
        return [a for a in (s.get("addresses") or {}).get("net_admin", [])
                if a.get("OS-EXT-IPS:type") == "floating"]
    try:
        found = wait_until(f"{g.fip} among vm1's addresses", floating, timeout=15)
    except AssertionError as e:
        raise AssertionError(f"{e}\nGET /servers/{g.id} addresses: "
                             f"{c.server(g.id).get('addresses')}") from None
    assert [a["addr"] for a in found] == [g.fip]
    assert g.fip in str(c.os_ok("server", "show", "vm1")["addresses"])
