"""The networking API's resources as real packets, checked from stand-in
instances and an external host with the stock `openstack` CLI.

Each test builds on the cloud fixture's external network; the tests run in
file order (the last one restarts the cloud)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from conftest import EXT_GATEWAY, MetadataStandIn, clients, in_ns, pings, sh, wait_until


@pytest.fixture(scope="module")
def topology(cloud):
    """admin's network with two stand-ins and a router to the external network."""
    c = cloud
    c.os_ok("network", "create", "dp-net")
    c.os_ok("subnet", "create", "--network", "dp-net", "--subnet-range", "10.70.1.0/24",
            "--dns-nameserver", "10.70.1.53", "dp-subnet")
    a = c.standin(c.bound_port("dp-net"))
    b = c.standin(c.bound_port("dp-net"))
    topo = {"a": a, "b": b}
    yield topo
    for s in (a, b):
        s.close()


def test_dhcp_gives_fixed_ips_and_instances_reach_each_other(cloud, topology):
    a, b = topology["a"], topology["b"]
    lease_a = a.dhcp()
    lease_b = b.dhcp()
    assert lease_a["ip"] == a.fixed_ip
    assert lease_b["ip"] == b.fixed_ip
    assert lease_a["router"] == "10.70.1.1"
    assert lease_a["dns"] == "10.70.1.53"
    assert lease_a["mtu"] == "1450"  # VXLAN: 1500 - 50
    # The default security group lets members of the group talk.
    assert pings(a.ns, b.fixed_ip), "stand-ins on one network cannot ping each other"


def test_port_changes_reconfigure_dhcp_without_a_restart(cloud, topology):
    c = cloud
    net = c.os_ok("network", "show", "dp-net")
    (dhcp_dir,) = Path(c.fs.data_dir).glob(f"netagent/*/dhcp/{net['id']}")
    pid = (dhcp_dir / "pid").read_text().strip()
    # A renewal: the same client served twice (dnsmasq 2.90 crashed at the
    # next reload after that when its host entries were all tagged).
    topology["a"].dhcp()
    port = c.bound_port("dp-net")
    wait_until("the new port in dnsmasq's hosts",
               lambda: port["mac_address"] in (dhcp_dir / "host").read_text())
    restarts = [line for line in c.fs.log_path.read_text(errors="replace").splitlines()
                if "dnsmasq restarted" in line or "dnsmasq started" in line]
    assert (dhcp_dir / "pid").read_text().strip() == pid, (
        "dnsmasq was restarted (a crash shows in dmesg):\n" + "\n".join(restarts[-5:]))
    assert Path(f"/proc/{pid}").exists()
    # Leases handed out so far are kept by the same process.
    assert topology["a"].port["mac_address"] in (dhcp_dir / "leases").read_text()
    c.os_ok("port", "delete", port["id"], fmt_json=False)
    wait_until("the port gone from dnsmasq's hosts",
               lambda: port["mac_address"] not in (dhcp_dir / "host").read_text())
    time.sleep(1)  # the reload follows the file
    assert Path(f"/proc/{pid}").exists(), "dnsmasq died at the reload after the port went"
    assert (dhcp_dir / "pid").read_text().strip() == pid


def test_admin_state_down_unplugs_the_port(cloud, topology):
    c, a, b = cloud, topology["a"], topology["b"]
    c.os_ok("port", "set", "--disable", b.port["id"], fmt_json=False)
    wait_until("port DOWN", lambda: c.port_status(b.port["id"]) == "DOWN")
    assert not pings(a.ns, b.fixed_ip, 1), "a disabled port still carries traffic"
    c.os_ok("port", "set", "--enable", b.port["id"], fmt_json=False)
    wait_until("port ACTIVE", lambda: c.port_status(b.port["id"]) == "ACTIVE")
    wait_until("traffic again", lambda: pings(a.ns, b.fixed_ip, 1), timeout=10)


def test_instance_reaches_its_gateway_through_the_router(cloud, topology):
    c, a = cloud, topology["a"]
    c.os_ok("router", "create", "dp-router")
    c.os_ok("router", "add", "subnet", "dp-router", "dp-subnet", fmt_json=False)
    router = c.os_ok("router", "show", "dp-router")
    ns = f"qrouter-{router['id']}"
    wait_until("the router namespace", lambda: ns in sh("ip", "netns", "list").stdout)
    wait_until("the gateway answering", lambda: pings(a.ns, "10.70.1.1", 1), timeout=20)


def test_a_router_created_down_is_wired_once_enabled(cloud, topology):
    """tempest creates its routers with admin_state_up false and removes an
    interface only once the interface's port is ACTIVE: the port of a down
    router keeps its status (no device is wired for it), and enabling the
    router wires it."""
    c = cloud
    c.os_ok("network", "create", "dp-down-net")
    c.os_ok("subnet", "create", "--network", "dp-down-net", "--subnet-range",
            "10.70.9.0/24", "dp-down-subnet")
    c.os_ok("router", "create", "--disable", "dp-down-router")
    c.os_ok("router", "add", "subnet", "dp-down-router", "dp-down-subnet", fmt_json=False)
    router = c.os_ok("router", "show", "dp-down-router")
    (port,) = c.os_ok("port", "list", "--device-id", router["id"])
    port_id = clients.field(port, "id")
    ns = f"qrouter-{router['id']}"
    # A few agent passes (the DHCP port of the new network comes up meanwhile).
    dhcp_ports = lambda: c.os_ok("port", "list", "--network", "dp-down-net",
                                 "--device-owner", "network:dhcp")
    wait_until("the DHCP port", lambda: dhcp_ports() and all(
        clients.field(p, "status") == "ACTIVE" for p in dhcp_ports()))
    time.sleep(2)
    assert c.port_status(port_id) == "ACTIVE"
    assert ns not in sh("ip", "netns", "list").stdout, "a down router was wired"
    c.os_ok("router", "set", "--enable", "dp-down-router", fmt_json=False)
    wait_until("the router namespace", lambda: ns in sh("ip", "netns", "list").stdout)
    wait_until("the interface in the namespace", lambda: "10.70.9.1/24" in in_ns(
        ns, "ip", "-br", "addr", check=False).stdout)
    assert c.port_status(port_id) == "ACTIVE"
    c.os_ok("router", "remove", "subnet", "dp-down-router", "dp-down-subnet", fmt_json=False)
    c.os_ok("router", "delete", "dp-down-router", fmt_json=False)
    c.os_ok("network", "delete", "dp-down-net", fmt_json=False)
    wait_until("the namespace removed", lambda: ns not in sh("ip", "netns", "list").stdout)


def test_same_cidr_in_two_tenants_is_isolated(cloud, topology):
    c, a, b = cloud, topology["a"], topology["b"]
    c.os_ok("network", "create", "dp-demo-net", cloud="ferrostack-demo")
    c.os_ok("subnet", "create", "--network", "dp-demo-net", "--subnet-range", "10.70.1.0/24",
            "dp-demo-subnet", cloud="ferrostack-demo")
    net = c.os_ok("network", "show", "dp-demo-net", cloud="ferrostack-demo")
    other = c.standin(c.bound_port(net["id"]))
    try:
        lease = other.dhcp()
        assert lease["ip"] == other.fixed_ip
        # Its own network works (the DHCP server's address answers) ...
        ports = c.os_ok("port", "list", "--network", net["id"], "--device-owner",
                        "network:dhcp")
        dhcp_port = c.os_ok("port", "show", ports[0]["ID"])
        dhcp_ip = dhcp_port["fixed_ips"][0]["ip_address"]
        assert pings(other.ns, dhcp_ip, 1)
        # ... the other tenant's identical addresses are out of reach.
        for target in (a.fixed_ip, b.fixed_ip):
            if target != other.fixed_ip:
                assert not pings(other.ns, target, 1), f"reached {target} across tenants"
    finally:
        other.close()


def test_snat_floating_ip_and_security_groups(cloud, topology):
    c, a = cloud, topology["a"]
    ext = c.ext_ns
    c.os_ok("router", "set", "--external-gateway", "public", "dp-router", fmt_json=False)
    router = c.os_ok("router", "show", "dp-router")
    gw_ip = router["external_gateway_info"]["external_fixed_ips"][0]["ip_address"]

    # SNAT: the external host sees the router's gateway address.
    web = subprocess.Popen(["ip", "netns", "exec", ext, "python3", "-u", "-m", "http.server",
                            "8000", "--bind", EXT_GATEWAY],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_until("the external web server",
                   lambda: in_ns(ext, "curl", "-s", "-o", "/dev/null", "--max-time", "1",
                                 f"http://{EXT_GATEWAY}:8000/", check=False).returncode == 0)
        wait_until("the instance reaching the external host",
                   lambda: in_ns(a.ns, "curl", "-s", "-o", "/dev/null", "--max-time", "2",
                                 f"http://{EXT_GATEWAY}:8000/from-instance",
                                 check=False).returncode == 0, timeout=20)
    finally:
        web.terminate()
        out = web.communicate(timeout=10)[0]
    seen = [line.split()[0] for line in out.splitlines() if "/from-instance" in line]
    assert seen and seen[0] == gw_ip, f"external host saw {seen}, router gateway is {gw_ip}"

    fip = c.os_ok("floating", "ip", "create", "public")
    address = fip["floating_ip_address"]
    c.os_ok("floating", "ip", "set", "--port", a.port["id"], address, fmt_json=False)
    # The default group drops ICMP from outside; the FIP answers ARP at least.
    wait_until("the floating IP's NAT",
               lambda: f"dnat to {a.fixed_ip}" in in_ns(
                   f"qrouter-{router['id']}", "nft", "list", "ruleset").stdout)
    assert not pings(ext, address), "ICMP passed the default security group"
    group = _default_group(c)
    c.os_ok("security", "group", "rule", "create", "--protocol", "icmp", group)
    wait_until("ICMP allowed by the new rule", lambda: pings(ext, address, 1), timeout=20)

    # TCP opens only when a rule allows it.
    a.serve_http(8080)
    url = f"http://{address}:8080/"
    assert in_ns(ext, "curl", "-s", "-o", "/dev/null", "--max-time", "2", url,
                 check=False).returncode != 0, "TCP 8080 open without a rule"
    c.os_ok("security", "group", "rule", "create", "--protocol", "tcp",
            "--dst-port", "8080", group)
    wait_until("TCP 8080 allowed", lambda: in_ns(ext, "curl", "-s", "-o", "/dev/null",
                                                  "--max-time", "2", url,
                                                  check=False).returncode == 0, timeout=20)

    c.os_ok("floating", "ip", "unset", "--port", address, fmt_json=False)
    wait_until("the floating IP to stop answering", lambda: not pings(ext, address, 1),
               timeout=20)


def _default_group(c) -> str:
    project = c.os_ok("project", "show", "admin")["id"]
    groups = c.os_ok("security", "group", "list", "--project", project)
    return next(g["ID"] for g in groups if g["Name"] == "default")


def test_metadata_is_proxied_with_a_valid_signature(cloud, topology):
    c, a = cloud, topology["a"]
    # Renewed now that the network has a router, the lease no longer routes
    # metadata through the DHCP namespace: the router's proxy answers.
    lease = a.dhcp()
    assert "169.254.169.254" not in lease["staticroutes"], lease
    MetadataStandIn.requests.clear()
    r = in_ns(a.ns, "curl", "-s", "--max-time", "5",
              "http://169.254.169.254/openstack/latest/meta_data.json", check=False)
    router = c.os_ok("router", "show", "dp-router")
    ns = f"qrouter-{router['id']}"
    assert r.returncode == 0, (
        f"curl exited {r.returncode}\n"
        + in_ns(ns, "ss", "-ltnp", check=False).stdout
        + sh("ip", "-n", ns, "addr", check=False).stdout
        + sh("ip", "-n", a.ns, "route", check=False).stdout
        + in_ns(a.ns, "curl", "-v", "--max-time", "3", "http://169.254.169.254/", check=False).stderr)
    answer = __import__("json").loads(r.stdout)
    assert answer == {"uuid": a.port["device_id"], "verified": True}
    seen = MetadataStandIn.requests[-1]
    assert seen["forwarded_for"] == a.fixed_ip
    assert seen["router"] is not None


def test_metadata_on_an_isolated_network_is_served_by_dhcp(cloud):
    c = cloud
    c.os_ok("network", "create", "dp-isolated")
    c.os_ok("subnet", "create", "--network", "dp-isolated", "--subnet-range",
            "10.70.9.0/24", "dp-isolated-subnet")
    s = c.standin(c.bound_port("dp-isolated"))
    try:
        lease = s.dhcp()
        assert "169.254.169.254/32" in lease["staticroutes"], lease
        r = in_ns(s.ns, "curl", "-s", "--max-time", "5",
                  "http://169.254.169.254/latest/meta-data/", check=False)
        assert r.returncode == 0, r.stderr
        assert __import__("json").loads(r.stdout)["verified"] is True
        assert MetadataStandIn.requests[-1]["network"] is not None
    finally:
        s.close()
        c.os_ok("port", "delete", s.port["id"], fmt_json=False)


def test_restart_after_a_crash_removes_what_was_deleted(cloud, topology):
    """Kill the cloud (agents included), delete a router and a network
    while the agents are down, start again: nothing of them remains."""
    c = cloud
    router = c.os_ok("router", "show", "dp-router")
    net = c.os_ok("network", "show", "dp-isolated")
    rns, dns = f"qrouter-{router['id']}", f"qdhcp-{net['id']}"
    bridge = "brq" + net["id"][:11]
    names = sh("ip", "netns", "list").stdout
    assert rns in names and dns in names
    fs = c.fs
    fs.proc.kill()
    fs.proc.wait()
    fs.proc = None
    import os
    os.environ["FERROSTACK__NETWORK_AGENT__ENABLED"] = "false"
    fs.start()
    c.os_ok("router", "unset", "--external-gateway", "dp-router", fmt_json=False)
    c.os_ok("router", "remove", "subnet", "dp-router", "dp-subnet", fmt_json=False)
    c.os_ok("router", "delete", "dp-router", fmt_json=False)
    c.os_ok("network", "delete", "dp-isolated", fmt_json=False)
    # Still there: nobody has cleaned up yet.
    assert rns in sh("ip", "netns", "list").stdout
    fs.stop()
    os.environ["FERROSTACK__NETWORK_AGENT__ENABLED"] = "true"
    fs.start()

    def gone():
        names = sh("ip", "netns", "list").stdout
        links = sh("ip", "link", "show").stdout
        procs = sh("ps", "-eo", "args").stdout
        return (rns not in names and dns not in names and bridge not in links
                and not any("dnsmasq" in p and net["id"] in p for p in procs.splitlines()))
    wait_until("the deleted router and network to leave the host", gone, timeout=30)
    assert rns not in c.ledger_namespaces() and dns not in c.ledger_namespaces()
    # What still exists was rebuilt, not disturbed.
    time.sleep(0.5)
    assert pings(topology["a"].ns, topology["b"].fixed_ip, 1)
