"""The seed's three hosts on one machine: `scripts/three-node.sh` (the one
copy of the topology) builds them as network namespaces — `<p>-ctl`,
`<p>-net`, `<p>-cmp` and the switch `<p>-sw`, which is also the external
host 192.168.100.1 — starts one `ferrostack serve --config` per host over
PostgreSQL and a RabbitMQ node of its own (`--own-broker`: never the
machine's shared broker), runs the seed's section 5 and boots a real QEMU
guest (vm1) on the compute host, reached by ping and SSH from the external
host on 192.168.100.111. The tests check what it made with the stock CLI;
`--down` removes it. Needs root and the test guest image
(FERROSTACK_GUEST_IMAGE, built by tools/guest-image/build.sh).
"""

from __future__ import annotations

import json
import os
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
SCRIPT = REPO / "scripts" / "three-node.sh"
IMAGE = os.environ.get("FERROSTACK_GUEST_IMAGE", str(REPO / "target" / "guest-image" / "guest.qcow2"))
P = f"fs{os.getpid() % 100000}"
PG = os.environ.get("FERROSTACK_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432")
FIP = "192.168.100.111"
NS = {"sw": f"{P}-sw", "ctl": f"{P}-ctl", "net": f"{P}-net", "cmp": f"{P}-cmp",
      "ctl2": f"{P}-ctl2"}
MGMT = {"ctl": "10.10.10.51", "net": "10.10.10.52", "cmp": "10.10.10.53"}
TUN = {"net": "10.20.20.52", "cmp": "10.20.20.53"}
EXT = {"ctl": "192.168.100.51", "net": "192.168.100.52"}
HOSTNAME = {"ctl": "controller", "net": "network", "cmp": "compute"}
# The controller judges services and agents down after this long without
# a heartbeat (Nova's service_down_time, Neutron's agent_down_time).
SERVICE_DOWN_TIME = 15
REPORT_INTERVAL = 2
# A controller's sagas are taken over this long after it died (test_8).
SAGA_LEASE_SECS = 9
# Alarm evaluation, a periodic task run by one controller at a time (its
# lease lasts two intervals).
EVALUATION_INTERVAL = 2
# Shorter heartbeats than the defaults, appended to each host's node.toml.
EXTRA = {
    "ctl": f"[compute]\nservice_down_time = {SERVICE_DOWN_TIME}\n"
           f"saga_lease_secs = {SAGA_LEASE_SECS}\n\n"
           f"[telemetry]\nevaluation_interval = {EVALUATION_INTERVAL}\n\n"
           f"[network]\nagent_down_time = {SERVICE_DOWN_TIME}",
    "net": f"[network_agent]\nreport_interval = {REPORT_INTERVAL}\nresync_interval = 5",
    "cmp": f"report_interval = {REPORT_INTERVAL}\n\n"
           f"[network_agent]\nreport_interval = {REPORT_INTERVAL}\nresync_interval = 5",
}


def sh(*args: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
    r = subprocess.run(args, capture_output=True, text=True, **kw)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(args)}: {r.stderr.strip()}")
    return r


def in_ns(host: str, *argv: str) -> list[str]:
    return ["nsenter", f"--net=/run/netns/{NS[host]}", "--", *argv]


class Node:
    """A host's `ferrostack serve`, as the script started it."""

    def __init__(self, host: str, tmp: Path):
        self.host = host
        self.dir = tmp / host
        self.config = self.dir / "node.toml"
        self.log = self.dir / "log"
        self.pid = int((self.dir / "pid").read_text())
        self.proc: subprocess.Popen | None = None

    def argv(self, *cmd: str) -> list[str]:
        return in_ns(self.host, BIN, "--config", str(self.config), "--data-dir",
                     str(self.dir / "data"), *cmd)

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""

    def stop(self):
        os.kill(self.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and Path(f"/proc/{self.pid}").exists():
            time.sleep(0.2)

    def kill(self):
        """`kill -9`: the process dies where it stands."""
        os.kill(self.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and Path(f"/proc/{self.pid}").exists():
            if self.proc is not None:
                self.proc.poll()  # reap our own child
            time.sleep(0.1)
        assert not Path(f"/proc/{self.pid}").exists(), f"{self.host}: still alive after SIGKILL"

    def start(self, env: dict, timeout: float = 90):
        """Start the node again as the script does, and wait until it runs."""
        runs = self.log.read_text(errors="replace").count("is running")
        with open(self.log, "a") as log:
            self.proc = subprocess.Popen(self.argv("serve"), stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, env=env,
                                         start_new_session=True)
        self.pid = self.proc.pid  # nsenter execs: the node's own pid
        (self.dir / "pid").write_text(f"{self.pid}\n")
        deadline = time.monotonic() + timeout
        while self.log.read_text(errors="replace").count("is running") <= runs:
            assert self.proc.poll() is None, f"{self.host} exited:\n{self.tail()}"
            assert time.monotonic() < deadline, f"{self.host} not running in {timeout} s"
            time.sleep(0.2)


class Cloud:
    def __init__(self, tmp: Path, nodes: dict[str, Node], env: dict):
        self.tmp = tmp
        self.nodes = nodes
        # The nodes' environment (as the script started them).
        self.node_env = env
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

    def script(self, *args: str) -> str:
        """scripts/three-node.sh on this deployment (--add-compute, --broker)."""
        r = script(self.tmp, *args, env=self.node_env)
        assert r.returncode == 0, f"three-node.sh {' '.join(args)}:\n{r.stderr}"
        return r.stderr

    def sql(self, service: str, query: str) -> list[list[str]]:
        """Rows of a query on a controller database (PostgreSQL), as text."""
        r = sh("psql", f"{PG}/{P}_{service}", "-At", "-F", "\t", "-v", "ON_ERROR_STOP=1",
               "-c", query)
        return [line.split("\t") for line in r.stdout.splitlines() if line]


def script(tmp: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(SCRIPT), "--prefix", P, "--dir", str(tmp), *args],
                          capture_output=True, text=True, env=env, timeout=600)


@pytest.fixture(scope="module")
def cloud():
    if os.geteuid() != 0:
        pytest.fail("the three-node test needs root (it makes network namespaces)")
    if not Path(IMAGE).is_file():
        pytest.fail(f"no guest image at {IMAGE}: tools/guest-image/build.sh {IMAGE}")
    # Short: QEMU's unix sockets live under it (108 bytes at most).
    tmp = Path(tempfile.mkdtemp(prefix=f"{P}-"))
    tmp.rmdir()
    env = dict(os.environ, FERROSTACK_BIN=BIN, FERROSTACK_VENV=VENV,
               FERROSTACK__IDENTITY__BCRYPT_COST="4",
               **{f"FERROSTACK_3NODE_EXTRA_{h}": text for h, text in EXTRA.items()})
    try:
        # Its own RabbitMQ node, which the tests restart (never the
        # machine's shared broker).
        r = script(tmp, "--image", IMAGE, "--own-broker", env=env)
        logs = "".join(f"\n--- {h} log ---\n" + Node(h, tmp).tail()
                       for h in ("ctl", "net", "cmp") if (tmp / h / "pid").exists())
        assert r.returncode == 0, f"three-node.sh: {r.stdout}\n{r.stderr}{logs}"
        print(r.stderr)
        yield Cloud(tmp, {h: Node(h, tmp) for h in ("ctl", "net", "cmp")}, env)
    finally:
        r = script(tmp, "--down", env=env)
        print(r.stderr)


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "long: a deployment of its own (test_ha_router.py: `scripts/three-node.sh --ha`); "
        "scripts/test.sh leaves it to the on-demand run `pytest -m long tests/multinode`")
