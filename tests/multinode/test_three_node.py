"""The seed's three-node deployment (conftest.py builds it): every node
reaches the controller over the management network — RabbitMQ for RPC
and heartbeats, PostgreSQL for the controller's services, HTTP for images
— and the stock `openstack` CLI sees each host's services and agents.
Then, in the same deployment: a second compute host added with one
command, compute hosts stopped or disabled no longer chosen, and a real
guest moved between the compute hosts (cold migration, evacuation, live
migration)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time

from pathlib import Path

from conftest import (BIN, EVALUATION_INTERVAL, FIP, MGMT, NS, SAGA_LEASE_SECS, SERVICE_DOWN_TIME,
                      Node, P, in_ns)


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


def test_2_seed_section_5_and_a_real_vm_on_the_compute_host(cloud):
    """What three-node.sh made: the seed's section 5 with its addresses, and
    vm1 — a QEMU guest on the compute host, its address from the network
    node's dnsmasq over VXLAN on 10.20.20.0/24, its key from the metadata
    proxy in the network node's router namespace, reached on its floating
    IP by ping and SSH from the external host 192.168.100.1."""
    net = cloud.json("network", "show", "net_admin")
    subnet = cloud.json("subnet", "show", "subnet_admin")
    assert (subnet["cidr"], subnet["gateway_ip"]) == ("50.50.1.0/24", "50.50.1.1"), subnet
    ext = cloud.json("subnet", "show", "subnet_external")
    assert ext["allocation_pools"] == [{"start": "192.168.100.110", "end": "192.168.100.130"}]
    router = cloud.json("router", "show", "router_admin")
    gw = router["external_gateway_info"]["external_fixed_ips"][0]["ip_address"]
    assert gw == "192.168.100.110", router
    fips = sorted(f["Floating IP Address"] for f in cloud.json("floating", "ip", "list"))
    assert fips == ["192.168.100.111", "192.168.100.112"], fips

    def hosted(flag, ident):
        return sorted(col(r, "host") for r in cloud.json("network", "agent", "list", flag, ident))
    assert hosted("--network", net["id"]) == ["network"]
    assert hosted("--router", router["id"]) == ["network"]
    dhcp = cloud.json("port", "list", "--network", net["id"], "--device-owner", "network:dhcp")
    assert [cloud.json("port", "show", p["ID"])["binding_host_id"] for p in dhcp] == ["network"]

    server = cloud.json("server", "show", "vm1")
    assert server["status"] == "ACTIVE", server
    assert server["OS-EXT-SRV-ATTR:host"] == "compute", server
    port = cloud.json("port", "show", cloud.json("port", "list", "--server", server["id"])[0]["ID"])
    assert port["binding_host_id"] == "compute" and port["status"] == "ACTIVE", port
    fixed = port["fixed_ips"][0]["ip_address"]
    assert qemu_running(cloud.nodes["cmp"].dir, server["id"]), "no QEMU process for vm1"

    # DHCP: the guest says it has the fixed address; the only dnsmasq
    # serving net_admin is the network node's, whose lease file has the
    # guest's MAC; the compute host reaches it by VXLAN from 10.20.20.53.
    console = cloud.openstack("console", "log", "show", "vm1").stdout.replace("\r", "")
    assert re.search(rf"ferrostack-guest: eth0 .*addr={re.escape(fixed)}/24", console), console
    leases = list((cloud.nodes["net"].dir / "data").glob("**/dhcp/*/leases"))
    assert any(port["mac_address"] in f.read_text() for f in leases), leases
    assert not list((cloud.nodes["cmp"].dir / "data").glob("**/dhcp/*/leases"))
    vxlan = subprocess.run(in_ns("cmp", "ip", "-d", "-o", "link", "show", "type", "vxlan"),
                           capture_output=True, text=True).stdout
    assert f"local {MGMT['cmp'].replace('10.10.10', '10.20.20')}" in vxlan, vxlan

    # Metadata: the key came from the metadata service, through the proxy
    # listening on 169.254.169.254:80 in the network node's qrouter namespace.
    assert "ferrostack-guest: ssh key from metadata service" in console, console
    ss = subprocess.run(["ip", "netns", "exec", f"qrouter-{router['id']}", "ss", "-ltnpH"],
                        capture_output=True, text=True).stdout
    assert re.search(rf"169\.254\.169\.254:80 .*pid={cloud.nodes['net'].pid},", ss), ss

    # Ping and SSH from the external host on the floating IP.
    assert FIP in str(server["addresses"]), server
    r = subprocess.run(in_ns("sw", "ping", "-c", "2", "-W", "2", FIP), capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stdout
    r = subprocess.run(in_ns("sw", "ssh", "-i", str(cloud.tmp / "id_ed25519"), "-o",
                             "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                             "-o", "BatchMode=yes", "-o", "LogLevel=ERROR", f"root@{FIP}",
                             "hostname"), capture_output=True, text=True, timeout=30,
                       stdin=subprocess.DEVNULL)
    assert r.stdout.strip() == "vm1", r.stderr


def qemu_running(under: Path, server_id: str) -> bool:
    """A QEMU process of the server whose files are under the compute host's dir."""
    for d in Path("/proc").iterdir():
        try:
            argv = (d / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if argv and "qemu-system" in argv[0] and server_id in argv \
                and any(str(under) in a for a in argv):
            return True
    return False


def altered_config(cloud, host: str, field: str, value: str, to: Path) -> Path:
    """The host's node.toml with one [node] field set otherwise."""
    text = cloud.nodes[host].config.read_text()
    text, n = re.subn(rf"(?m)^{field} = .*$", f"{field} = {json.dumps(value)}", text)
    assert n == 1, f"no {field} in {host}'s node.toml"
    to.write_text(text)
    return to


def test_3_a_wrong_node_config_refuses_to_start_naming_the_field(cloud, tmp_path):
    """Each wrong file, started concurrently (an unreachable broker waits
    for it 15 s), exits non-zero naming the field in the message."""
    cases = {
        "tunnel address not on the host": (
            "cmp", ("tunnel_ip", "10.20.20.99"), "[node] tunnel_ip"),
        "bridge mapping to a missing interface": (
            "net", ("bridge_mappings", "physnet1:br-nope"), "[node] bridge_mappings"),
        "unreachable broker": (
            "cmp", ("bus_url", f"amqp://guest:guest@{MGMT['ctl']}:5999/%2f"), "[node] bus_url"),
        "unreachable database": (
            "ctl", ("database_url", f"postgresql://postgres@{MGMT['ctl']}:5999/x_{{service}}"),
            "[node] database_url"),
    }
    running = {}
    for name, (host, (field, value), _) in cases.items():
        d = tmp_path / name.replace(" ", "-")
        d.mkdir()
        cfg = altered_config(cloud, host, field, value, d / "node.toml")
        argv = in_ns(host, BIN, "--config", str(cfg), "--data-dir", str(d / "data"), "serve")
        running[name] = subprocess.Popen(argv, stdout=subprocess.PIPE,
                                         stderr=subprocess.STDOUT, text=True)
    for name, proc in running.items():
        out, _ = proc.communicate(timeout=60)
        field = cases[name][2]
        assert proc.returncode != 0, f"{name}: started anyway:\n{out}"
        assert field in out, f"{name}: the message does not name {field}:\n{out}"


def test_4_a_second_compute_host_joins_with_one_file_and_one_command(cloud):
    """`three-node.sh --add-compute compute2`: a namespace on the management
    and VM data networks, one node.toml (the compute host's, with its own
    name and addresses), one `ferrostack serve`; new servers are spread
    over both compute hosts."""
    print(cloud.script("--add-compute", "compute2"))
    config = (cloud.tmp / "compute2" / "node.toml").read_text()
    assert 'host = "compute2"' in config and 'management_ip = "10.10.10.54"' in config, config
    assert 'tunnel_ip = "10.20.20.54"' in config, config
    rows = cloud.json("compute", "service", "list", "--host", "compute2")
    assert [(col(r, "binary"), col(r, "state")) for r in rows] == [("nova-compute", "up")], rows
    assert "compute2" in [col(h, "hypervisor hostname") for h in cloud.json("hypervisor", "list")]

    def l2_alive():
        return agents_by_host(cloud).get("compute2", {}).get("neutron-linuxbridge-agent") \
            in (True, ":-)")
    wait_for("the L2 agent of compute2 alive", l2_alive, timeout=30)

    # The free-RAM weigher: vmA (1 GB) to compute2, all of whose RAM is
    # free (vm1 is on compute); vmB (512 MB) then to compute, which has
    # more left.
    cloud.openstack("flavor", "create", "--ram", "1024", "--disk", "1", "--vcpus", "1", "m1.mid")
    for name, flavor, host in (("vmA", "m1.mid", "compute2"), ("vmB", "m1.tiny", "compute")):
        sid = cloud.json("server", "create", "--image", "guest", "--flavor", flavor,
                         "--network", "net_admin", name)["id"]
        assert scheduled_host(cloud, sid) == host, name


def scheduled_host(cloud, sid: str) -> str:
    """The host the scheduler chose (read as soon as it is recorded)."""
    def host():
        rows = cloud.sql("compute", f"SELECT host FROM instances WHERE id = '{sid}'")
        return rows[0][0] if rows and rows[0][0] else None
    return wait_for(f"{sid} scheduled", host, timeout=60, interval=0.2)


def test_5_stopped_and_disabled_compute_hosts_are_not_chosen(cloud):
    """The compute node stopped: down within service_down_time, its L2
    agent dead, and the next server goes to compute2. compute2 disabled
    too: no valid host."""
    cloud.nodes["cmp"].stop()
    stopped = time.monotonic()
    seen_down = []

    def compute_down():
        asked = time.monotonic()
        rows = cloud.json("compute", "service", "list", "--host", "compute")
        if rows and all(col(r, "state") == "down" for r in rows):
            seen_down.append(asked)
            return True
        return False
    wait_for("nova-compute down", compute_down, timeout=SERVICE_DOWN_TIME * 3)
    took = seen_down[0] - stopped
    # Down within service_down_time of its last heartbeat, plus the node's
    # shutdown (timed from the start of the poll that saw it down).
    assert took <= SERVICE_DOWN_TIME + 10, took

    def l2_dead():
        hosts = agents_by_host(cloud)
        return hosts.get("compute", {}).get("neutron-linuxbridge-agent") in (False, "XXX")
    wait_for("the compute host's L2 agent not alive", l2_dead, timeout=SERVICE_DOWN_TIME * 3)

    d = cloud.json("server", "create", "--image", "guest", "--flavor", "m1.tiny",
                   "--network", "net_admin", "vmD")["id"]
    assert scheduled_host(cloud, d) == "compute2"

    cloud.openstack("compute", "service", "set", "--disable", "compute2", "nova-compute")
    server = cloud.json("server", "create", "--image", "guest", "--flavor", "m1.tiny",
                        "--network", "net_admin", "vm2")

    def settled():
        s = cloud.json("server", "show", server["id"])
        return s if s["status"] in ("ACTIVE", "ERROR") else None
    s = wait_for("vm2 to settle", settled, timeout=60)
    assert s["status"] == "ERROR", s
    assert "No valid host" in str(s.get("fault")), s
    assert s.get("OS-EXT-SRV-ATTR:host") in (None, ""), s


def qemu_processes(server_id: str) -> int:
    """QEMU processes of the server on any host of the deployment."""
    n = 0
    for d in Path("/proc").iterdir():
        try:
            argv = (d / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if argv and "qemu-system" in argv[0] and server_id in argv:
            n += 1
    return n


def booted_once(cloud, sid: str):
    """What a boot leaves when it ran once: ACTIVE, one port, one claim,
    one QEMU process, one `create` action, its saga done."""
    s = cloud.json("server", "show", sid)
    assert s["status"] == "ACTIVE", s
    ports = cloud.json("port", "list", "--server", sid)
    assert len(ports) == 1, ports
    claims = cloud.sql("compute", f"SELECT purpose FROM claims WHERE instance_id = '{sid}'")
    assert len(claims) == 1, claims
    assert qemu_processes(sid) == 1
    actions = [col(a, "action") for a in cloud.json("server", "event", "list", sid)]
    assert actions.count("create") == 1, actions
    sagas = cloud.sql("compute", f"SELECT kind, state FROM sagas WHERE instance_id = '{sid}'")
    assert all(state == "done" for _, state in sagas), sagas


def wait_active(cloud, sid: str, timeout: float = 300):
    def settled():
        s = cloud.json("server", "show", sid)
        assert s["status"] != "ERROR", s
        return s["status"] == "ACTIVE"
    wait_for(f"{sid} ACTIVE", settled, timeout=timeout, interval=2)


def test_6_two_boots_survive_a_broker_restart(cloud):
    """Both compute hosts back in service; two servers created, and the
    deployment's RabbitMQ node restarted while their boots are in flight:
    both end ACTIVE, each with one port, one claim, one guest and one
    create action (nothing lost, nothing done twice)."""
    cloud.nodes["cmp"].start(cloud.node_env)
    cloud.openstack("compute", "service", "set", "--enable", "compute2", "nova-compute")

    def both_up():
        rows = cloud.json("compute", "service", "list", "--service", "nova-compute")
        return all(col(r, "state") == "up" and col(r, "status") == "enabled" for r in rows)
    wait_for("both compute hosts up and enabled", both_up, timeout=60)
    ids = [cloud.json("server", "create", "--image", "guest", "--flavor", "m1.tiny",
                      "--network", "net_admin", name)["id"] for name in ("vmE", "vmF")]
    print(cloud.script("--broker", "restart"))
    for sid in ids:
        wait_active(cloud, sid)
    for sid in ids:
        booted_once(cloud, sid)


def test_7_a_controller_killed_mid_boot_finishes_it_once(cloud):
    """The controller runs with the failpoint `crash_after:spawn` (its saga
    stops right after the guest is spawned, as if the process died before
    recording it) and is then SIGKILLed and started again: vm1 answered
    pings throughout, and the interrupted boot ends ACTIVE once — the
    resumed saga's spawn finds the guest already running."""
    ctl = cloud.nodes["ctl"]
    ping = subprocess.Popen(in_ns("sw", "ping", "-D", "-n", "-i", "0.2", "-W", "1", FIP),
                            stdout=subprocess.PIPE, text=True)
    try:
        ctl.stop()
        ctl.start(dict(cloud.node_env, FERROSTACK__COMPUTE__FAILPOINTS="crash_after:spawn"))
        sid = cloud.json("server", "create", "--image", "guest", "--flavor", "m1.tiny",
                         "--network", "net_admin", "vmG")["id"]
        wait_for("vmG's guest spawned", lambda: qemu_processes(sid) == 1, timeout=300)
        time.sleep(2)
        assert cloud.json("server", "show", sid)["status"] == "BUILD"
        ctl.kill()
        ctl.start(cloud.node_env)
        wait_active(cloud, sid)
        booted_once(cloud, sid)
        vm1 = cloud.json("server", "show", "vm1")
        assert vm1["status"] == "ACTIVE", vm1
    finally:
        ping.send_signal(signal.SIGINT)
        out, _ = ping.communicate(timeout=10)
    stamps = [float(m.group(1)) for line in out.splitlines()
              if (m := re.match(r"\[(\d+\.\d+)\] \d+ bytes from", line))]
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    assert stamps and max(gaps, default=0) <= 3, f"ping to vm1: gaps up to {max(gaps, default=0):.1f} s"


class DirectApi:
    """A controller's own APIs, asked directly from the external host: its
    identity's token, then its compute and networking ports (the catalog
    names controller 1's, which clients use)."""

    def __init__(self, cloud, address: str):
        self.address = address
        body = json.dumps({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": "admin", "domain": {"id": "default"}, "password": "admin_pass"}}},
            "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}})
        r = subprocess.run(in_ns("sw", "curl", "-sSf", "-D", "-", "-o", "/dev/null", "-H",
                                 "Content-Type: application/json", "-d", body,
                                 f"http://{address}:5000/v3/auth/tokens"),
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        self.token = re.search(r"(?im)^x-subject-token: *(\S+)", r.stdout).group(1)

    def get(self, port: int, path: str):
        r = subprocess.run(in_ns("sw", "curl", "-sSf", "-H", f"X-Auth-Token: {self.token}",
                                 "-H", "OpenStack-API-Version: compute 2.79",
                                 f"http://{self.address}:{port}{path}"),
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, f"GET {path} on {self.address}: {r.stderr}"
        return json.loads(r.stdout)


def test_8_a_second_controller_finishes_the_boot_of_a_killed_one(cloud):
    """`three-node.sh --add-controller ctl2`; controller 1 runs with
    `crash_after:spawn`, a boot is started through it and it is SIGKILLed
    and left dead: controller 2 takes the saga over once controller 1's
    lease lapsed and ends it ACTIVE once — one port, one claim, one guest,
    one create action, its saga done and owned by controller 2 — and its
    own APIs answer so. Then controller 1 comes back and agrees."""
    print(cloud.script("--add-controller", "ctl2"))
    ctl2 = Node("ctl2", cloud.tmp)
    config = ctl2.config.read_text()
    addr = re.search(r'(?m)^external_ip = "([0-9.]+)"', config).group(1)
    assert 'host = "ctl2"' in config, config
    cloud.nodes["ctl2"] = ctl2
    # Both controllers serve the same APIs; the catalog stays controller 1's.
    api2 = DirectApi(cloud, addr)
    endpoints = cloud.json("endpoint", "list")
    assert endpoints and not any(addr in col(e, "url") for e in endpoints), endpoints
    assert api2.get(8774, "/v2.1/servers/detail")["servers"], "ctl2 lists no servers"

    ctl = cloud.nodes["ctl"]
    ctl.stop()
    ctl.start(dict(cloud.node_env, FERROSTACK__COMPUTE__FAILPOINTS="crash_after:spawn"))
    sid = cloud.json("server", "create", "--image", "guest", "--flavor", "m1.tiny",
                     "--network", "net_admin", "vmH")["id"]
    wait_for("vmH's guest spawned", lambda: qemu_processes(sid) == 1, timeout=300)
    time.sleep(2)
    assert cloud.json("server", "show", sid)["status"] == "BUILD"
    owner = cloud.sql("compute", f"SELECT owner FROM sagas WHERE instance_id = '{sid}'")
    assert owner == [["controller"]], owner
    ctl.kill()
    killed = time.monotonic()

    def active_on_2():
        s = api2.get(8774, f"/v2.1/servers/{sid}")["server"]
        assert s["status"] != "ERROR", s
        return s if s["status"] == "ACTIVE" else None
    server = wait_for("vmH ACTIVE through ctl2", active_on_2,
                      timeout=SAGA_LEASE_SECS * 3 + 120, interval=1)
    print(f"ctl2 finished vmH {time.monotonic() - killed:.1f} s after the kill")
    assert server["OS-EXT-SRV-ATTR:host"] in ("compute", "compute2"), server
    sagas = cloud.sql("compute", f"SELECT kind, state, owner FROM sagas WHERE instance_id = '{sid}'")
    assert ["create_server", "done", "ctl2"] in sagas, sagas
    assert all(state == "done" for _, state, _ in sagas), sagas
    ports = api2.get(9696, f"/v2.0/ports?device_id={sid}")["ports"]
    assert len(ports) == 1 and ports[0]["status"] == "ACTIVE", ports
    claims = cloud.sql("compute", f"SELECT purpose FROM claims WHERE instance_id = '{sid}'")
    assert len(claims) == 1, claims
    assert qemu_processes(sid) == 1
    actions = [a["action"] for a in
               api2.get(8774, f"/v2.1/servers/{sid}/os-instance-actions")["instanceActions"]]
    assert actions.count("create") == 1, actions
    assert "taking over saga" in ctl2.tail(), ctl2.tail()
    names = {s["name"]: s["status"] for s in api2.get(8774, "/v2.1/servers/detail")["servers"]}
    assert names.get("vm1") == "ACTIVE" and names["vmH"] == "ACTIVE", names

    # The periodic alarm evaluation: ctl2 holds its lease with controller 1
    # dead, and keeps it (one runner) once controller 1 is back.
    held = wait_for("ctl2 running the alarm evaluation", lambda: alarm_lease(cloud, "ctl2"),
                    timeout=EVALUATION_INTERVAL * 4)
    log2 = ctl2.log.read_text(errors="replace")
    assert re.search(r"alarm-evaluation.*periodic task runs here|periodic task runs here.*"
                     r"alarm-evaluation", log2), ctl2.tail()

    # Controller 1 back: the same answers through the catalog.
    before = len(ctl.log.read_text(errors="replace"))
    ctl.start(cloud.node_env)
    wait_active(cloud, sid, timeout=60)
    booted_once(cloud, sid)
    time.sleep(EVALUATION_INTERVAL * 3)
    assert alarm_lease(cloud, "ctl2") == held
    since = ctl.log.read_text(errors="replace")[before:]
    assert "alarm-evaluation" not in since, since[-2000:]


def alarm_lease(cloud, holder: str):
    """The alarm evaluation's lease (generation) when `holder` has it."""
    rows = cloud.sql("telemetry", "SELECT holder, generation FROM leases"
                     " WHERE name = 'periodic:alarm-evaluation'")
    assert len(rows) <= 1, rows
    return rows[0][1] if rows and rows[0][0] == holder else None


def guest_ssh(cloud, command: str, timeout: float = 30) -> subprocess.CompletedProcess:
    """A command in vm1 over SSH on its floating IP, from the external host."""
    return subprocess.run(in_ns("sw", "ssh", "-i", str(cloud.tmp / "id_ed25519"), "-o",
                                "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                                "-o", "BatchMode=yes", "-o", "ConnectTimeout=5", "-o",
                                "LogLevel=ERROR", f"root@{FIP}", command),
                          capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def wait_status(cloud, sid: str, want: str, timeout: float = 300) -> dict:
    def reached():
        s = cloud.json("server", "show", sid)
        assert s["status"] != "ERROR", s
        return s if s["status"] == want and not s.get("OS-EXT-STS:task_state") else None
    return wait_for(f"{sid} {want}", reached, timeout=timeout, interval=1)


def qemu_pids(under: Path, server_id: str) -> list[int]:
    pids = []
    for d in Path("/proc").iterdir():
        try:
            argv = (d / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if argv and "qemu-system" in argv[0] and server_id in argv \
                and any(str(under) in a for a in argv):
            pids.append(int(d.name))
    return pids


def test_9_vm1_cold_migrated_to_compute2_then_evacuated_back(cloud):
    """vm1, a real guest, moves: a file written in it over SSH; `openstack
    server migrate --host compute2` — VERIFY_RESIZE, its QEMU now under
    compute2 and none under compute, its port bound to compute2; `server
    resize confirm` — ACTIVE, the source's copy gone, reached on its
    floating IP with the file intact. Then compute2 dies (its node and
    vm1's QEMU killed): down, `openstack server evacuate` rebuilds vm1 on
    compute from its image (the file is gone, as Nova without shared
    storage), reached again; compute2 comes back and destroys its old copy
    (the migration `completed`) instead of starting it."""
    NS.setdefault("compute2", f"{P}-compute2")
    began = time.monotonic()
    sid = cloud.json("server", "show", "vm1")["id"]
    cmp_dir, cmp2_dir = cloud.nodes["cmp"].dir, cloud.tmp / "compute2"
    assert cloud.json("server", "show", sid)["OS-EXT-SRV-ATTR:host"] == "compute"
    marker = f"moved-{os.getpid()}"
    r = guest_ssh(cloud, f"echo {marker} > /root/marker && sync && cat /root/marker")
    assert r.stdout.strip() == marker, r.stderr

    cloud.openstack("--os-compute-api-version", "2.56", "server", "migrate", "--host",
                    "compute2", "vm1")
    s = wait_status(cloud, sid, "VERIFY_RESIZE")
    moved = time.monotonic()
    assert s["OS-EXT-SRV-ATTR:host"] == "compute2", s
    assert qemu_pids(cmp2_dir, sid) and not qemu_pids(cmp_dir, sid)
    port = cloud.json("port", "show", cloud.json("port", "list", "--server", sid)[0]["ID"])
    assert port["binding_host_id"] == "compute2", port
    migration = cloud.sql("compute", "SELECT migration_type, status, source_compute,"
                          f" dest_compute FROM migrations WHERE instance_uuid = '{sid}'")
    assert migration == [["migration", "finished", "compute", "compute2"]], migration
    cloud.openstack("server", "resize", "confirm", "vm1")
    wait_status(cloud, sid, "ACTIVE", timeout=60)
    assert not list((cmp_dir / "data").glob(f"**/{sid}")), "the source's copy is left"
    r = wait_for("vm1 reached over SSH on compute2",
                 lambda: (lambda r: r if r.returncode == 0 else None)(
                     guest_ssh(cloud, "cat /root/marker")), timeout=180, interval=2)
    assert r.stdout.strip() == marker, "the disk did not move"
    reached = time.monotonic()
    print(f"cold migration: VERIFY_RESIZE {moved - began:.1f} s, SSH again "
          f"{reached - began:.1f} s after the request")

    # compute2 dies with vm1 on it.
    node2 = Node("compute2", cloud.tmp)
    node2.kill()
    for pid in qemu_pids(cmp2_dir, sid):
        os.kill(pid, signal.SIGKILL)

    def down():
        rows = cloud.json("compute", "service", "list", "--host", "compute2")
        return all(col(r, "state") == "down" for r in rows)
    wait_for("compute2 down", down, timeout=SERVICE_DOWN_TIME * 4)
    evacuated = time.monotonic()
    # At 2.94: the evacuated server runs (from 2.95 it would be stopped).
    cloud.openstack("--os-compute-api-version", "2.94", "server", "evacuate", "vm1")
    s = wait_status(cloud, sid, "ACTIVE")
    assert s["OS-EXT-SRV-ATTR:host"] == "compute", s
    assert qemu_pids(cmp_dir, sid)
    r = wait_for("vm1 reached over SSH after the evacuation",
                 lambda: (lambda r: r if r.returncode == 0 else None)(
                     guest_ssh(cloud, "hostname; cat /root/marker 2>/dev/null || echo none")),
                 timeout=180, interval=2)
    assert r.stdout.split() == ["vm1", "none"], r.stdout
    print(f"evacuation: SSH again {time.monotonic() - evacuated:.1f} s after the request")
    rows = cloud.sql("compute", "SELECT status FROM migrations WHERE"
                     f" instance_uuid = '{sid}' AND migration_type = 'evacuation'")
    assert rows == [["done"]], rows

    # compute2 back: the evacuated guest is destroyed there, not started.
    node2.start(cloud.node_env)

    def cleaned():
        rows = cloud.sql("compute", "SELECT status FROM migrations WHERE"
                         f" instance_uuid = '{sid}' AND migration_type = 'evacuation'")
        return rows == [["completed"]]
    wait_for("compute2 destroying the evacuated guest", cleaned, timeout=60)
    assert not qemu_pids(cmp2_dir, sid)
    assert not list((cmp2_dir / "data").glob(f"**/{sid}")), "the evacuated copy is left"
    assert len(qemu_pids(cmp_dir, sid)) == 1
    print(f"test 9: {time.monotonic() - began:.1f} s")


def test_10_vm1_live_migrated_to_compute2_keeps_running(cloud):
    """vm1 runs on compute (test 9 evacuated it there): a file written and
    the kernel's boot id read over SSH; `openstack server migrate
    --live-migration --host compute2` (2.30; `block_migration: auto`, its
    disk copied while it runs) — ACTIVE on compute2, its QEMU gone from
    compute, its port bound to compute2; over the floating IP the same
    boot (same boot id, uptime further on) and the file still there."""
    began = time.monotonic()
    sid = cloud.json("server", "show", "vm1")["id"]
    cmp_dir, cmp2_dir = cloud.nodes["cmp"].dir, cloud.tmp / "compute2"
    assert cloud.json("server", "show", sid)["OS-EXT-SRV-ATTR:host"] == "compute"
    marker = f"live-{os.getpid()}"
    r = guest_ssh(cloud, f"echo {marker} > /root/live && sync && "
                  "cat /proc/sys/kernel/random/boot_id /proc/uptime")
    assert r.returncode == 0, r.stderr
    boot_id, uptime = r.stdout.split()[0], float(r.stdout.split()[1])

    cloud.openstack("--os-compute-api-version", "2.30", "server", "migrate",
                    "--live-migration", "--host", "compute2", "vm1")
    s = wait_status(cloud, sid, "ACTIVE", timeout=300)
    moved = time.monotonic()
    assert s["OS-EXT-SRV-ATTR:host"] == "compute2", s
    assert qemu_pids(cmp2_dir, sid) and not qemu_pids(cmp_dir, sid)
    assert not list((cmp_dir / "data").glob(f"**/{sid}")), "the source's copy is left"
    port = cloud.json("port", "show", cloud.json("port", "list", "--server", sid)[0]["ID"])
    assert port["binding_host_id"] == "compute2", port
    migration = cloud.sql("compute", "SELECT status, source_compute, dest_compute FROM"
                          f" migrations WHERE instance_uuid = '{sid}' AND"
                          " migration_type = 'live-migration'")
    assert migration == [["completed", "compute", "compute2"]], migration
    r = wait_for("vm1 reached over SSH on compute2",
                 lambda: (lambda r: r if r.returncode == 0 else None)(
                     guest_ssh(cloud, "cat /proc/sys/kernel/random/boot_id /proc/uptime "
                               "/root/live")), timeout=120, interval=1)
    after = r.stdout.split()
    assert after[0] == boot_id, f"rebooted: {boot_id} -> {after[0]}"
    assert float(after[1]) > uptime, (uptime, after[1])
    assert after[-1] == marker, "the file did not move"
    print(f"live migration: ACTIVE on compute2 {moved - began:.1f} s, SSH again "
          f"{time.monotonic() - began:.1f} s after the request")
