"""The seed's three-node deployment (conftest.py builds it): every node
reaches the controller over the management network — RabbitMQ for RPC
and heartbeats, PostgreSQL for the controller's services, HTTP for images
— and the stock `openstack` CLI sees each host's services and agents."""

from __future__ import annotations

import os
import re
import subprocess
import time

from conftest import BIN, HOSTNAME, MGMT, NS, REPO, SERVICE_DOWN_TIME, in_ns, node_config


def wait_for(what, probe, timeout=60, interval=1.0):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


def col(row: dict, name: str):
    want = name.lower().replace("_", " ")
    for k, v in row.items():
        if k.lower().replace("_", " ") == want:
            return v
    raise KeyError(f"{name} not in {sorted(row)}")


def agents_by_host(cloud):
    out = {}
    for a in cloud.json("network", "agent", "list"):
        out.setdefault(col(a, "host"), {})[col(a, "binary")] = col(a, "alive")
    return out


def test_1_every_host_reports_its_services_and_agents(cloud):
    def compute_up():
        rows = cloud.json("compute", "service", "list")
        return [r for r in rows if col(r, "binary") == "nova-compute"
                and col(r, "host") == "compute" and col(r, "state") == "up"]
    wait_for("nova-compute up on the compute host", compute_up)

    want = {
        "network": {"neutron-linuxbridge-agent", "neutron-dhcp-agent", "neutron-l3-agent"},
        "compute": {"neutron-linuxbridge-agent"},
    }

    def agents_alive():
        hosts = agents_by_host(cloud)
        ok = all(set(hosts.get(h, {})) == b and all(
            v in (True, ":-)") for v in hosts[h].values()) for h, b in want.items())
        return hosts if ok else None
    hosts = wait_for("every agent of the network and compute hosts alive", agents_alive)
    assert "controller" not in hosts, hosts

    # `ferrostack service list` on the controller reads the same state.
    ctl = cloud.nodes["ctl"]
    want_rows = [("nova-compute", "compute"), ("neutron-dhcp-agent", "network"),
                 ("neutron-l3-agent", "network"), ("neutron-linuxbridge-agent", "network"),
                 ("neutron-linuxbridge-agent", "compute")]

    def service_list():
        r = subprocess.run(ctl.argv("service", "list"), capture_output=True, text=True,
                           timeout=60, env={**os.environ, "FERROSTACK_LOG": "error"})
        assert r.returncode == 0, r.stderr
        lines = r.stdout.splitlines()
        rows = [line.split() for line in lines[lines.index(next(
            line for line in lines if line.startswith("Binary"))) + 1:]]
        seen = {(row[0], row[1], row[4]) for row in rows if len(row) >= 5}
        return r.stdout if all((b, h, ":-)") in seen for b, h in want_rows) else None
    wait_for("`ferrostack service list` showing every host's services up", service_list)


def test_2_seed_section_5_and_a_server_on_the_compute_host(cloud, tmp_path):
    os_ = cloud.openstack
    net = cloud.json("network", "create", "net_admin")
    subnet = cloud.json("subnet", "create", "--network", "net_admin",
                        "--subnet-range", "50.50.1.0/24", "subnet_admin")
    router = cloud.json("router", "create", "router_admin")
    os_("router", "add", "subnet", "router_admin", "subnet_admin")
    cloud.json("network", "create", "--external", "--share", "--provider-network-type",
               "flat", "--provider-physical-network", "physnet1", "net_external")
    cloud.json("subnet", "create", "--network", "net_external", "--subnet-range",
               "192.168.100.0/24", "--allocation-pool", "start=192.168.100.110,end=192.168.100.130",
               "--gateway", "192.168.100.1", "--no-dhcp", "subnet_external")
    os_("router", "set", "--external-gateway", "net_external", "router_admin")

    # The DHCP and router namespaces are the network node's.
    def hosted(flag, ident):
        rows = cloud.json("network", "agent", "list", flag, ident)
        return sorted(col(r, "host") for r in rows)
    assert wait_for("the DHCP agent hosting net_admin",
                    lambda: hosted("--network", net["id"])) == ["network"]
    assert wait_for("the L3 agent hosting router_admin",
                    lambda: hosted("--router", router["id"])) == ["network"]
    namespaces = lambda: subprocess.run(["ip", "netns", "list"], capture_output=True,
                                        text=True).stdout
    wait_for("qdhcp and qrouter namespaces",
             lambda: f"qdhcp-{net['id']}" in namespaces()
             and f"qrouter-{router['id']}" in namespaces())
    dhcp_ports = cloud.json("port", "list", "--network", net["id"],
                            "--device-owner", "network:dhcp", "--long")
    assert dhcp_ports, "no DHCP port"
    for p in dhcp_ports:
        port = cloud.json("port", "show", p["ID"])
        assert port["binding_host_id"] == "network", port
    # The qdhcp namespace's peer device is plugged into the network node's
    # bridge of net_admin (the L2 agent of that host wired it).
    links = subprocess.run(["ip", "-n", NS["net"], "-o", "link"], capture_output=True,
                           text=True).stdout
    assert re.search(r"tap" + dhcp_ports[0]["ID"][:11], links), links

    # An image over the controller's API; the compute host fetches it over HTTP.
    img = tmp_path / "disk.raw"
    img.write_bytes(b"\0" * (1 << 20))
    cloud.json("image", "create", "--disk-format", "raw", "--container-format", "bare",
               "--public", "--file", str(img), "cirros")
    server = cloud.json("server", "create", "--image", "cirros", "--flavor", "m1.tiny",
                        "--network", "net_admin", "vm1")
    ports = wait_for("vm1's port", lambda: cloud.json("port", "list", "--server", server["id"]))
    assert len(ports) == 1, ports
    port = cloud.json("port", "show", ports[0]["ID"])
    # The fake hypervisor makes no tap: a stand-in guest does, on the
    # compute host, named as the compute agent names a VM's tap and with
    # the port's MAC. The compute host's L2 agent plugs it into the
    # network's bridge and VXLAN; the port goes ACTIVE, the networking
    # service tells compute `network-vif-plugged`, the boot finishes.
    guest = stand_in_guest(cloud, port)
    server = wait_for("vm1 ACTIVE", lambda: (lambda s: s if s["status"] in ("ACTIVE", "ERROR")
                                             else None)(cloud.json("server", "show", "vm1")),
                      timeout=120)
    assert server["status"] == "ACTIVE", server
    assert server["OS-EXT-SRV-ATTR:host"] == "compute", server
    port = cloud.json("port", "show", port["id"])
    assert port["binding_host_id"] == "compute", port
    assert port["status"] == "ACTIVE", port
    assert any(ip["subnet_id"] == subnet["id"] for ip in port["fixed_ips"]), port

    # Its address comes from the network node's dnsmasq over the VXLAN
    # tunnel between 10.20.20.53 and 10.20.20.52; its gateway, the router
    # in the network node's qrouter namespace, answers a ping the same way.
    lease = cloud.tmp / "vm1.lease"
    r = subprocess.run(["ip", "netns", "exec", guest, "udhcpc", "-i", "eth0", "-n", "-q",
                        "-t", "20", "-T", "1", "-O", "staticroutes", "-O", "mtu", "-s",
                        str(REPO / "tests" / "dataplane" / "udhcpc-script.sh")],
                       capture_output=True, text=True, timeout=60,
                       env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "FS_LEASE_FILE": str(lease)})
    assert r.returncode == 0, r.stderr
    got = dict(line.split("=", 1) for line in lease.read_text().splitlines() if "=" in line)
    assert got["ip"] == port["fixed_ips"][0]["ip_address"], got
    r = subprocess.run(["ip", "netns", "exec", guest, "ping", "-c", "3", "-W", "2",
                        "50.50.1.1"], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def stand_in_guest(cloud, port) -> str:
    ns = f"{NS['cmp']}-vm1"
    tap = "tap" + port["id"][:11]
    subprocess.run(["ip", "netns", "add", ns], check=True)
    cloud.extra_namespaces.append(ns)
    subprocess.run(["ip", "-n", NS["cmp"], "link", "add", tap, "type", "veth", "peer",
                    "name", "eth0", "netns", ns], check=True)
    subprocess.run(["ip", "-n", ns, "link", "set", "eth0", "address", port["mac_address"],
                    "up"], check=True)
    subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
    subprocess.run(["ip", "-n", NS["cmp"], "link", "set", tap, "up"], check=True)
    return ns


def test_3_a_wrong_node_config_refuses_to_start_naming_the_field(cloud, tmp_path):
    """Each wrong file, started concurrently (an unreachable broker waits
    for it 15 s), exits non-zero naming the field in the message."""
    cases = {
        "tunnel address not on the host": (
            "cmp", {"tunnel_ip": "10.20.20.99"}, "[node] tunnel_ip"),
        "bridge mapping to a missing interface": (
            "net", {"bridge_mappings": "physnet1:br-nope"}, "[node] bridge_mappings"),
        "unreachable broker": (
            "cmp", {"bus_url": f"amqp://guest:guest@{MGMT['ctl']}:5999/%2f"}, "[node] bus_url"),
        "unreachable database": (
            "ctl", {"database_url": f"postgresql://postgres@{MGMT['ctl']}:5999/x_{{service}}"},
            "[node] database_url"),
    }
    running = {}
    for name, (host, extra, _) in cases.items():
        d = tmp_path / name.replace(" ", "-")
        d.mkdir()
        cfg = d / "node.toml"
        cfg.write_text(node_config(host, d, **extra))
        argv = in_ns(host, BIN, "--config", str(cfg), "--data-dir", str(d / "data"), "serve")
        running[name] = subprocess.Popen(argv, stdout=subprocess.PIPE,
                                         stderr=subprocess.STDOUT, text=True)
    for name, proc in running.items():
        out, _ = proc.communicate(timeout=60)
        field = cases[name][2]
        assert proc.returncode != 0, f"{name}: started anyway:\n{out}"
        assert field in out, f"{name}: the message does not name {field}:\n{out}"


def test_4_a_stopped_compute_node_is_down_and_not_scheduled(cloud):
    cloud.nodes["cmp"].stop()
    stopped = time.monotonic()

    def compute_down():
        rows = cloud.json("compute", "service", "list", "--host", "compute")
        return rows and all(col(r, "state") == "down" for r in rows)
    wait_for("nova-compute down", compute_down, timeout=SERVICE_DOWN_TIME * 3)
    took = time.monotonic() - stopped
    # Down within service_down_time of its last heartbeat (plus one poll).
    assert took <= SERVICE_DOWN_TIME + 5, took

    def l2_dead():
        hosts = agents_by_host(cloud)
        return hosts.get("compute", {}).get("neutron-linuxbridge-agent") in (False, "XXX")
    wait_for("the compute host's L2 agent not alive", l2_dead, timeout=SERVICE_DOWN_TIME * 3)

    server = cloud.json("server", "create", "--image", "cirros", "--flavor", "m1.tiny",
                        "--network", "net_admin", "vm2")

    def settled():
        s = cloud.json("server", "show", server["id"])
        return s if s["status"] in ("ACTIVE", "ERROR") else None
    s = wait_for("vm2 to settle", settled, timeout=60)
    assert s["status"] == "ERROR", s
    assert "No valid host" in str(s.get("fault")), s
    assert s.get("OS-EXT-SRV-ATTR:host") in (None, ""), s
    assert HOSTNAME["cmp"] == "compute"
