"""Fixtures for the data-plane tests: an all-in-one whose network agents
build real bridges, namespaces, dnsmasq and nftables rules, an "external"
network (a bridge `br-ex` with a host namespace holding the provider
gateway 172.24.4.1), a stand-in metadata endpoint that checks the proxy's
signature, and stand-in instances (a namespace with a veth plugged like a
VM's tap, with the port's MAC, configured by DHCP).

The whole run must be inside a private network namespace (`unshare -n`, as
scripts/test.sh does): the all-in-one's host stack is then the test's own,
and everything it creates there disappears with it. Named namespaces
(qdhcp-, qrouter-, stand-ins) are global and removed at the end.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import importlib.util
import json
import os
import signal
import subprocess
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location(
    "ferrostack_client_fixtures", HERE.parent / "clients" / "conftest.py")
clients = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(clients)

SECRET = "dataplane-test-secret"
EXT_CIDR = "172.24.4.0/24"
EXT_GATEWAY = "172.24.4.1"
DHCP_SCRIPT = str(HERE / "udhcpc-script.sh")


def sh(*args, check=True, timeout=60) -> subprocess.CompletedProcess:
    p = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(args)} exited {p.returncode}: {p.stderr.strip()}")
    return p


def in_ns(ns: str, *args, check=True, timeout=60) -> subprocess.CompletedProcess:
    return sh("ip", "netns", "exec", ns, *args, check=check, timeout=timeout)


def pings(ns: str, addr: str, count: int = 2) -> bool:
    return in_ns(ns, "ping", "-c", str(count), "-W", "1", "-i", "0.2", addr,
                 check=False).returncode == 0


def wait_until(what: str, fn, timeout: float = 30.0, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


class StandIn:
    """A stand-in instance: namespace + veth named like the port's tap."""

    def __init__(self, cloud: "Cloud", port: dict, name: str | None = None):
        self.cloud = cloud
        self.port = port
        self.ns = name or f"fsi-{uuid.uuid4().hex[:8]}"
        self.tap = "tap" + port["id"][:11]
        self.lease_file = Path(cloud.fs.data_dir).parent / f"{self.ns}.lease"
        sh("ip", "netns", "add", self.ns)
        cloud.namespaces.append(self.ns)
        sh("ip", "link", "add", self.tap, "type", "veth", "peer", "name", "eth0",
           "netns", self.ns)
        sh("ip", "-n", self.ns, "link", "set", "eth0", "address", port["mac_address"], "up")
        sh("ip", "-n", self.ns, "link", "set", "lo", "up")
        sh("ip", "link", "set", self.tap, "up")
        self.procs: list[subprocess.Popen] = []

    @property
    def fixed_ip(self) -> str:
        return self.port["fixed_ips"][0]["ip_address"]

    def dhcp(self, tries: int = 20) -> dict:
        env = dict(os.environ, FS_LEASE_FILE=str(self.lease_file))
        p = subprocess.run(
            ["ip", "netns", "exec", self.ns, "udhcpc", "-i", "eth0", "-n", "-q",
             "-t", str(tries), "-T", "1", "-O", "staticroutes", "-O", "mtu",
             "-s", DHCP_SCRIPT],
            capture_output=True, text=True, env=env, timeout=tries * 4 + 10)
        assert p.returncode == 0, (
            f"{self.ns}: no DHCP lease: {p.stdout}{p.stderr}\n"
            + self.cloud.fs.log_tail(30))
        lease = dict(line.split("=", 1) for line in
                     self.lease_file.read_text().splitlines() if "=" in line)
        return lease

    def serve_http(self, port: int):
        """A TCP service inside the instance."""
        proc = subprocess.Popen(
            ["ip", "netns", "exec", self.ns, "python3", "-m", "http.server",
             str(port), "--bind", "0.0.0.0"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs.append(proc)
        wait_until("the instance's HTTP service",
                   lambda: in_ns(self.ns, "curl", "-s", "-o", "/dev/null", "--max-time", "1",
                                 f"http://127.0.0.1:{port}/", check=False).returncode == 0)

    def close(self):
        for p in self.procs:
            p.kill()
            p.wait()
        sh("ip", "netns", "del", self.ns, check=False)


class MetadataStandIn(BaseHTTPRequestHandler):
    """Stands in for Nova's metadata API: checks the proxy's headers."""

    requests: list[dict] = []

    def do_GET(self):  # noqa: N802 (http.server's naming)
        instance = self.headers.get("X-Instance-ID", "")
        sig = self.headers.get("X-Instance-ID-Signature", "")
        want = hmac.new(SECRET.encode(), instance.encode(), hashlib.sha256).hexdigest()
        ok = bool(instance) and hmac.compare_digest(sig, want)
        record = {"path": self.path, "instance": instance, "verified": ok,
                  "tenant": self.headers.get("X-Tenant-ID"),
                  "forwarded_for": self.headers.get("X-Forwarded-For"),
                  "router": self.headers.get("X-Neutron-Router-ID"),
                  "network": self.headers.get("X-Neutron-Network-ID")}
        MetadataStandIn.requests.append(record)
        body = json.dumps({"uuid": instance, "verified": ok}).encode()
        self.send_response(200 if ok else 403)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Cloud:
    def __init__(self):
        self.fs = clients.Ferrostack()
        self.namespaces: list[str] = []
        self.ext_ns = f"fsx-{uuid.uuid4().hex[:8]}"
        self.host = None
        self.public_net = None

    def os_ok(self, *args, **kw):
        return self.fs.os_ok(*args, **kw)

    def agents_host(self) -> str:
        agents = wait_until("the L2 agent", lambda: [
            a for a in self.os_ok("network", "agent", "list")
            if clients.field(a, "agent_type") == "Linux bridge agent"])
        return clients.field(agents[0], "host")

    def bound_port(self, network: str, cloud: str = "ferrostack", **extra) -> dict:
        """A port bound to this host like Nova binds an instance's port."""
        args = ["port", "create", "--network", network, "--host", self.host,
                "--device-owner", "compute:nova", "--device", str(uuid.uuid4())]
        for k, v in extra.items():
            args += [f"--{k.replace('_', '-')}", v]
        args.append(clients.unique("dp-port"))
        # Binding is admin-only: admin creates it in the owner's project.
        return self.os_ok(*args, cloud=cloud)

    def port_status(self, port_id: str) -> str:
        return self.os_ok("port", "show", port_id)["status"]

    def standin(self, port: dict) -> StandIn:
        s = StandIn(self, port)
        wait_until(f"port {port['id']} ACTIVE",
                   lambda: self.port_status(port["id"]) == "ACTIVE")
        return s

    def ledger_namespaces(self) -> set[str]:
        names = set()
        for f in Path(self.fs.data_dir).glob("netagent/*/*-namespaces.json"):
            names.update(json.loads(f.read_text() or "[]"))
        return names

    def cleanup(self):
        leftover = self.ledger_namespaces()
        if self.fs.proc is not None:
            self.fs.proc.kill()
            self.fs.proc.wait()
            self.fs.proc = None
        # dnsmasq processes of this cloud name its data directory.
        sh("pkill", "-f", f"dnsmasq.*{self.fs.data_dir}", check=False)
        for ns in set(self.namespaces) | leftover | {self.ext_ns}:
            sh("ip", "netns", "del", ns, check=False)
        self.fs.cleanup()


def _private_netns() -> bool:
    """A fresh `unshare -n` namespace has nothing but loopback."""
    links = json.loads(sh("ip", "-j", "link", "show").stdout)
    return [link["ifname"] for link in links] == ["lo"]


@pytest.fixture(scope="session")
def cloud():
    if os.geteuid() != 0:
        pytest.exit("the data-plane tests build real networking: run them as root",
                    returncode=4)
    if not _private_netns():
        pytest.exit("run the data-plane tests inside a private network namespace: "
                    "unshare -n -- bash -c 'ip link set lo up; pytest tests/dataplane'",
                    returncode=4)
    with open_cloud() as c:
        yield c


@contextlib.contextmanager
def open_cloud():
    """The all-in-one with its external network (also used by bench/dataplane.py)."""
    sh("ip", "link", "set", "lo", "up")
    c = Cloud()
    metadata = ThreadingHTTPServer(("127.0.0.1", 0), MetadataStandIn)
    threading.Thread(target=metadata.serve_forever, daemon=True).start()
    try:
        # The external network: br-ex on this host, the provider's gateway
        # in its own namespace.
        sh("ip", "link", "add", "br-ex", "type", "bridge")
        sh("ip", "link", "set", "br-ex", "up")
        sh("ip", "netns", "add", c.ext_ns)
        sh("ip", "link", "add", "ext-gw", "type", "veth", "peer", "name", "eth0",
           "netns", c.ext_ns)
        sh("ip", "link", "set", "ext-gw", "master", "br-ex", "up")
        sh("ip", "-n", c.ext_ns, "addr", "add", f"{EXT_GATEWAY}/24", "dev", "eth0")
        sh("ip", "-n", c.ext_ns, "link", "set", "eth0", "up")
        sh("ip", "-n", c.ext_ns, "link", "set", "lo", "up")
        os.environ.update({
            "FERROSTACK__NETWORK_AGENT__BRIDGE_MAPPINGS": "public:br-ex",
            "FERROSTACK__NETWORK_AGENT__METADATA_URL":
                f"http://127.0.0.1:{metadata.server_address[1]}",
            "FERROSTACK__NETWORK_AGENT__METADATA_PROXY_SHARED_SECRET": SECRET,
            "FERROSTACK__NETWORK_AGENT__REPORT_INTERVAL": "2",
            "FERROSTACK__NETWORK_AGENT__RESYNC_INTERVAL": "5",
        })
        c.fs.start()
        c.fs.prepare_clouds_yaml()
        c.host = c.agents_host()
        c.public_net = c.os_ok(
            "network", "create", "--external", "--provider-network-type", "flat",
            "--provider-physical-network", "public", "public")
        c.os_ok("subnet", "create", "--network", "public", "--subnet-range", EXT_CIDR,
                "--gateway", EXT_GATEWAY, "--no-dhcp",
                "--allocation-pool", "start=172.24.4.100,end=172.24.4.200", "public-subnet")
        yield c
    finally:
        metadata.shutdown()
        c.cleanup()
