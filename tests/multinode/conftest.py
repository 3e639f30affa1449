"""The seed's three hosts on one machine, out of network namespaces this
test makes: `<p>-ctl` (controller), `<p>-net` (network node), `<p>-cmp`
(compute node), wired by bridges in `<p>-sw` — the switch, which is also
the operator's and the external network's host (10.10.10.1,
192.168.100.1) — on the seed's management (10.10.10.0/24), VM data
(10.20.20.0/24) and external (192.168.100.0/24) networks with the seed's
addresses (.51, .52, .53).

PostgreSQL and RabbitMQ listen on 127.0.0.1 of this machine's namespace
only; the controller reaches them on its own management address through a
forwarder whose ends are in two namespaces (socat: a UNIX socket here, a
TCP listener on 10.10.10.51 in the controller's namespace). The other
nodes reach both over the management network, as in the seed.

Each node is `ferrostack serve --config <node>.toml`, started with
`nsenter --net` into its host's namespace. Needs root, socat, nsenter,
PostgreSQL and RabbitMQ (scripts/setup-host.sh).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = os.environ.get("FERROSTACK_BIN", str(REPO / "target" / "debug" / "ferrostack"))
VENV = os.environ.get("FERROSTACK_VENV", str(REPO / ".venv"))
OPENSTACK = os.environ.get("FERROSTACK_OPENSTACK", str(Path(VENV) / "bin" / "openstack"))
PG = os.environ.get("FERROSTACK_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432")
AMQP_PORT = 5672
PG_PORT = 5432

P = f"fs{os.getpid() % 100000}"
NS = {"sw": f"{P}-sw", "ctl": f"{P}-ctl", "net": f"{P}-net", "cmp": f"{P}-cmp"}
MGMT = {"ctl": "10.10.10.51", "net": "10.10.10.52", "cmp": "10.10.10.53"}
TUN = {"net": "10.20.20.52", "cmp": "10.20.20.53"}
EXT = {"ctl": "192.168.100.51", "net": "192.168.100.52"}
HOSTNAME = {"ctl": "controller", "net": "network", "cmp": "compute"}
# The controller judges services and agents down after this long without
# a heartbeat (Nova's service_down_time, Neutron's agent_down_time).
SERVICE_DOWN_TIME = 15
REPORT_INTERVAL = 2


def sh(*args: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
    r = subprocess.run(args, capture_output=True, text=True, **kw)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(args)}: {r.stderr.strip()}")
    return r


def in_ns(host: str, *argv: str) -> list[str]:
    return ["nsenter", f"--net=/run/netns/{NS[host]}", "--", *argv]


def psql(sql: str):
    sh("psql", f"{PG}/postgres", "-q", "-c", sql)


def databases(create: bool):
    for service in ("identity", "image", "network", "compute", "volume", "telemetry"):
        psql(f'DROP DATABASE IF EXISTS "{P}_{service}" WITH (FORCE)')
        if create:
            psql(f'CREATE DATABASE "{P}_{service}"')


def build_topology():
    for ns in NS.values():
        sh("ip", "netns", "add", ns)
        sh("ip", "-n", ns, "link", "set", "lo", "up")
    sw = NS["sw"]
    for br in ("mgmt", "data", "ext"):
        sh("ip", "-n", sw, "link", "add", br, "type", "bridge")
        sh("ip", "-n", sw, "link", "set", br, "up")
    sh("ip", "-n", sw, "addr", "add", "10.10.10.1/24", "dev", "mgmt")
    sh("ip", "-n", sw, "addr", "add", "192.168.100.1/24", "dev", "ext")
    # (host, its interface, switch bridge, address or None)
    wires = [
        ("ctl", "eth0", "mgmt", MGMT["ctl"]),
        ("ctl", "eth1", "ext", EXT["ctl"]),
        ("net", "eth0", "mgmt", MGMT["net"]),
        ("net", "eth1", "data", TUN["net"]),
        ("net", "eth2", "ext", None),
        ("cmp", "eth0", "mgmt", MGMT["cmp"]),
        ("cmp", "eth1", "data", TUN["cmp"]),
    ]
    for host, dev, br, addr in wires:
        outer = f"{host}-{dev}"
        sh("ip", "-n", sw, "link", "add", outer, "type", "veth", "peer", "name", dev,
           "netns", NS[host])
        sh("ip", "-n", sw, "link", "set", outer, "master", br, "up")
        sh("ip", "-n", NS[host], "link", "set", dev, "up")
        if addr:
            sh("ip", "-n", NS[host], "addr", "add", f"{addr}/24", "dev", dev)
    # The network node's external bridge holds eth2 and its address (the seed's br-ex).
    net = NS["net"]
    sh("ip", "-n", net, "link", "add", "br-ex", "type", "bridge")
    sh("ip", "-n", net, "link", "set", "eth2", "master", "br-ex")
    sh("ip", "-n", net, "link", "set", "br-ex", "up")
    sh("ip", "-n", net, "addr", "add", f"{EXT['net']}/24", "dev", "br-ex")
    for host in ("ctl", "net"):
        sh("ip", "-n", NS[host], "route", "add", "default", "via", "192.168.100.1")


def node_config(host: str, tmp: Path, **extra_node) -> str:
    bus = f"amqp://guest:guest@{MGMT['ctl']}:{AMQP_PORT}/%2f?namespace={P}"
    node = {
        "host": HOSTNAME[host],
        "controller": MGMT["ctl"],
        "management_ip": MGMT[host],
        "bus_url": bus,
        "service_password": "service_pass",
        "metadata_secret": f"{P}-metadata-secret",
    }
    sections = ""
    if host == "ctl":
        node.update(roles=["controller"], external_ip=EXT["ctl"],
                    database_url=f"postgresql://postgres@{MGMT['ctl']}:{PG_PORT}/{P}_{{service}}",
                    fernet_keys=str(tmp / "fernet-keys"))
        sections = (f"[compute]\nservice_down_time = {SERVICE_DOWN_TIME}\n\n"
                    f"[network]\nagent_down_time = {SERVICE_DOWN_TIME}\n")
    elif host == "net":
        node.update(roles=["network"], tunnel_ip=TUN["net"], bridge_mappings="physnet1:br-ex")
        sections = (f"[network_agent]\nreport_interval = {REPORT_INTERVAL}\n"
                    "resync_interval = 5\n")
    else:
        node.update(roles=["compute"], tunnel_ip=TUN["cmp"])
        sections = (f"[compute]\ndriver = \"fake\"\nreport_interval = {REPORT_INTERVAL}\n\n"
                    f"[network_agent]\nreport_interval = {REPORT_INTERVAL}\n"
                    "resync_interval = 5\n")
    node.update(extra_node)
    lines = ["[node]"] + [f"{k} = {json.dumps(v)}" for k, v in node.items()]
    return "\n".join(lines) + "\n\n" + sections


class Node:
    def __init__(self, host: str, tmp: Path):
        self.host = host
        self.dir = tmp / host
        self.dir.mkdir(exist_ok=True)
        self.config = self.dir / "node.toml"
        self.config.write_text(node_config(host, tmp))
        self.log = self.dir / "log"
        self.proc: subprocess.Popen | None = None

    def argv(self, *cmd: str) -> list[str]:
        return in_ns(self.host, BIN, "--config", str(self.config), "--data-dir",
                     str(self.dir / "data"), *cmd)

    def start(self):
        env = dict(os.environ, FERROSTACK__IDENTITY__BCRYPT_COST="4")
        self.proc = subprocess.Popen(self.argv("serve"), stdout=open(self.log, "ab"),
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     env=env, start_new_session=True)

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""

    def wait_running(self, timeout=90):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.host} node exited:\n{self.tail()}")
            if "is running" in self.tail():
                return
            time.sleep(0.3)
        raise AssertionError(f"{self.host} node did not start:\n{self.tail()}")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


class Cloud:
    def __init__(self, tmp: Path, nodes: dict[str, Node]):
        self.tmp = tmp
        self.nodes = nodes
        # Stand-in guests' namespaces, removed with the cloud.
        self.extra_namespaces: list[str] = []
        self.env = dict(os.environ, OS_AUTH_URL=f"http://{EXT['ctl']}:5000/v3",
                        OS_USERNAME="admin", OS_PASSWORD="admin_pass",
                        OS_PROJECT_NAME="admin", OS_USER_DOMAIN_ID="default",
                        OS_PROJECT_DOMAIN_ID="default", OS_IDENTITY_API_VERSION="3",
                        OS_REGION_NAME="RegionOne")
        for k in ("OS_CLOUD", "OS_CLIENT_CONFIG_FILE"):
            self.env.pop(k, None)

    def openstack(self, *args: str, check: bool = True):
        """The stock CLI, run from the operator's host on the external network."""
        argv = in_ns("sw", OPENSTACK, *args)
        r = subprocess.run(argv, capture_output=True, text=True, env=self.env, timeout=120)
        if check and r.returncode != 0:
            raise AssertionError(f"openstack {' '.join(args)}: {r.stderr.strip()}\n"
                                 f"controller log:\n{self.nodes['ctl'].tail()}")
        return r

    def json(self, *args: str):
        return json.loads(self.openstack(*args, "-f", "json").stdout)


def forwarder(tmp: Path, name: str, port: int) -> list[subprocess.Popen]:
    """127.0.0.1:port of this namespace on 10.10.10.51:port of the controller's."""
    sock = tmp / f"{name}.sock"
    here = subprocess.Popen(["socat", f"UNIX-LISTEN:{sock},fork",
                             f"TCP:127.0.0.1:{port}"], stderr=subprocess.DEVNULL)
    for _ in range(50):
        if sock.exists():
            break
        time.sleep(0.1)
    there = subprocess.Popen(in_ns("ctl", "socat",
                                   f"TCP-LISTEN:{port},bind={MGMT['ctl']},fork,reuseaddr",
                                   f"UNIX-CONNECT:{sock}"), stderr=subprocess.DEVNULL)
    return [here, there]


def cleanup(tmp: Path, extra: list[str]):
    # Namespaces the agents made for this cloud, from their ledgers.
    made = []
    for ledger in tmp.glob("**/netagent/**/*-namespaces.json"):
        try:
            made += json.loads(ledger.read_text())
        except ValueError:
            pass
    for ns in made + extra + list(NS.values()):
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    # dnsmasq of this cloud's networks (their pid files are under tmp).
    for pid_file in tmp.glob("**/dhcp/*/pid"):
        try:
            os.kill(int(pid_file.read_text().strip()), signal.SIGTERM)
        except (ValueError, OSError):
            pass


@pytest.fixture(scope="module")
def cloud():
    if os.geteuid() != 0:
        pytest.fail("the three-node test needs root (it makes network namespaces)")
    for tool in ("socat", "nsenter", "psql", "ip"):
        if not shutil.which(tool):
            pytest.fail(f"{tool} is missing: run scripts/setup-host.sh")
    tmp = Path(tempfile.mkdtemp(prefix=f"ferrostack-3node-{P}-"))
    procs: list[subprocess.Popen] = []
    nodes: dict[str, Node] = {}
    extra: list[str] = []
    try:
        build_topology()
        databases(create=True)
        procs += forwarder(tmp, "amqp", AMQP_PORT)
        procs += forwarder(tmp, "pg", PG_PORT)
        nodes = {h: Node(h, tmp) for h in ("ctl", "net", "cmp")}
        env = dict(os.environ, FERROSTACK__IDENTITY__BCRYPT_COST="4")
        r = subprocess.run(nodes["ctl"].argv("bootstrap"), capture_output=True, text=True,
                           env=env, timeout=120)
        assert r.returncode == 0, f"bootstrap: {r.stdout}\n{r.stderr}"
        nodes["ctl"].start()
        nodes["ctl"].wait_running()
        for h in ("net", "cmp"):
            nodes[h].start()
        for h in ("net", "cmp"):
            nodes[h].wait_running()
        c = Cloud(tmp, nodes)
        c.extra_namespaces = extra
        yield c
    finally:
        for n in nodes.values():
            n.stop()
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(10)
        cleanup(tmp, extra)
        try:
            databases(create=False)
        except AssertionError as e:
            print(f"note: {e}")
        if os.environ.get("FERROSTACK_KEEP_DATA") != "1":
            shutil.rmtree(tmp, ignore_errors=True)
