"""Fixtures for the end-to-end VM tests: an all-in-one running real QEMU
guests (the QEMU driver, under TCG here), the network agents wiring them,
the metadata service on 8775 and the noVNC proxy on 6080, with the seed's
networks: `net_external` (flat on physnet1, 192.168.100.0/24, its gateway
.1 held by an "external host" namespace on the bridge br-ex) and section
5's `net_admin` / `sub_admin` 50.50.1.0/24 behind `router_admin`.

The guest is the test image of tools/guest-image (built once per session
with build.sh): it prints `ferrostack-guest: …` banner lines on its serial
console, ending with `ferrostack-guest: ready`, and lets root in over SSH
with the key it got from the metadata service.

As the data-plane tests, the run must be inside a private network
namespace, as root:

    unshare -n -- bash -c 'ip link set lo up && exec pytest -q tests/vm'

Environment knobs (besides the clients' FERROSTACK_BIN, FERROSTACK_KEEP_DATA):

  FERROSTACK_GUEST_IMAGE     use this guest image (scripts/test.sh builds it outside
                             the private namespace) instead of building one
  FERROSTACK_VM_BOOT_TIMEOUT seconds for a boot to the banner (default 120)
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field as dc_field
from pathlib import Path

import pytest
import requests

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]

# The data-plane fixtures (which load the clients' ones): one copy of each.
_spec = importlib.util.spec_from_file_location(
    "ferrostack_dataplane_fixtures", HERE.parent / "dataplane" / "conftest.py")
dataplane = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(dataplane)
clients = dataplane.clients

sh = dataplane.sh
pings = dataplane.pings
wait_until = dataplane.wait_until

SECRET = "vm-suite-metadata-secret"
EXT_CIDR = "192.168.100.0/24"
EXT_GATEWAY = "192.168.100.1"
ROUTER_GATEWAY = "192.168.100.110"
ADMIN_CIDR = "50.50.1.0/24"
CONSOLE_TTL = 8
SYNC_INTERVAL = 3
BOOT_TIMEOUT = float(os.environ.get("FERROSTACK_VM_BOOT_TIMEOUT", "120"))
BUILD_SCRIPT = REPO / "tools" / "guest-image" / "build.sh"

COMPUTE = "http://127.0.0.1:8774/v2.1"
NETWORK = "http://127.0.0.1:9696/v2.0"
METADATA = "http://127.0.0.1:8775"

ANSI = re.compile(r"\x1b\[[0-9;]*m")
POLLING = re.compile(r"(GET /v2\.1/servers/[0-9a-f-]+ "
                     r"|POST /v2\.1/servers/[0-9a-f-]+/action status: 200"
                     r"|GET /v2\.0/ports status|POST /v3/auth/tokens|GET /v3 status)")

READY = "ferrostack-guest: ready"
POWER_BUTTON = "ferrostack-guest: power button pressed"

# Modules run in this order (the guests are shared: vm1 serves the first
# four); inside a module, tests run in file order.
MODULE_ORDER = ["test_first_vm", "test_console", "test_metadata", "test_lifecycle",
                "test_bad_input", "test_crash_recovery", "test_volumes"]


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "long: minutes of guest work (shelve: snapshot, offload, boot again); "
        "scripts/test.sh leaves these to the on-demand run `pytest tests/vm -m long`, "
        "and its tempest-vm step runs tempest's shelve scenario instead")


def pytest_collection_modifyitems(session, config, items):
    def key(item):
        name = item.module.__name__.rsplit(".", 1)[-1]
        return MODULE_ORDER.index(name) if name in MODULE_ORDER else len(MODULE_ORDER)
    items.sort(key=key)


# --------------------------------------------------------------------------
# Host inspection: QEMU processes, taps, files
# --------------------------------------------------------------------------

def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def qemu_processes() -> dict[int, list[str]]:
    """Every live qemu-system process: pid -> argv."""
    out = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        argv = _cmdline(int(d.name))
        if argv and "qemu-system" in os.path.basename(argv[0]):
            out[int(d.name)] = argv
    return out


def qemu_pids(server_id: str) -> list[int]:
    """The QEMU processes whose command line names the server (`-uuid <id>`)."""
    return sorted(pid for pid, argv in qemu_processes().items()
                  if any(a == "-uuid" and b == server_id for a, b in zip(argv, argv[1:])))


def pid_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def links() -> set[str]:
    return {link["ifname"] for link in json.loads(sh("ip", "-j", "link", "show").stdout)}


def tap_name(port_id: str) -> str:
    return "tap" + port_id[:11]


def ready_count(text: str) -> int:
    return sum(1 for line in text.splitlines() if line.strip().startswith(READY))


def banner(text: str) -> list[str]:
    return [line.strip() for line in text.replace("\r", "").splitlines()
            if line.strip().startswith("ferrostack-guest:")]


def last_banner(text: str) -> list[str]:
    """The banner lines of the latest boot (from its `hostname=` line on)."""
    lines = banner(text)
    starts = [i for i, line in enumerate(lines) if line.startswith("ferrostack-guest: hostname=")]
    return lines[starts[-1]:] if starts else lines


# --------------------------------------------------------------------------
# The cloud
# --------------------------------------------------------------------------

@dataclass
class Guest:
    name: str
    id: str
    fixed_ip: str
    fip: str | None = None
    port_ids: list[str] = dc_field(default_factory=list)


class Cloud:
    def __init__(self, work: Path):
        self.fs = clients.Ferrostack()
        self.work = work
        self.ext_ns = f"fsvx-{uuid.uuid4().hex[:8]}"
        self.namespaces: list[str] = []
        self.image_path: Path | None = None
        self.key_path = work / "id_ed25519"
        self.guests: dict[str, Guest] = {}
        self.rules: set[str] = set()
        self._token: tuple[str, float] | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------- paths
    @property
    def data_dir(self) -> Path:
        return Path(self.fs.data_dir)

    @property
    def instances_dir(self) -> Path:
        return self.data_dir / "compute" / "instances"

    def instance_dir(self, server_id: str) -> Path:
        return self.instances_dir / server_id

    # --------------------------------------------------------------- CLI
    def os_ok(self, *args, **kw):
        return self.fs.os_ok(*args, **kw)

    def openstack(self, *args, **kw):
        return self.fs.openstack(*args, **kw)

    # -------------------------------------------------------------- HTTP
    def token(self, refresh: bool = False) -> str:
        with self._lock:
            if refresh or self._token is None or time.monotonic() - self._token[1] > 1800:
                self._token = (self.fs.admin_token(), time.monotonic())
            return self._token[0]

    def api(self, method: str, url: str, **kw) -> requests.Response:
        """An admin request to a service API (compute paths by default)."""
        if not url.startswith("http"):
            url = COMPUTE + url
        kw.setdefault("timeout", 30)
        headers = dict(kw.pop("headers", {}) or {})
        for attempt in range(2):
            headers["X-Auth-Token"] = self.token(refresh=attempt > 0)
            r = requests.request(method, url, headers=headers, **kw)
            if r.status_code != 401:
                return r
        return r

    def server(self, server_id: str) -> dict | None:
        r = self.api("GET", f"/servers/{server_id}")
        if r.status_code == 404:
            return None
        assert r.status_code == 200, f"GET /servers/{server_id}: {r.status_code} {r.text[:300]}"
        return r.json()["server"]

    def wait_server(self, server_id: str, status: str | tuple, timeout: float = BOOT_TIMEOUT,
                    allow_error: bool = False, unexpected: tuple = (),
                    grace: float = 10.0) -> dict:
        """Poll until the server has one of the statuses and no task; an
        unexpected ERROR fails at once with its fault, and so does a status
        of `unexpected` without a task once `grace` seconds have passed (an
        action that failed and left the server as it was)."""
        wanted = (status,) if isinstance(status, str) else tuple(status)
        started = time.monotonic()
        deadline = started + timeout
        s = None
        while time.monotonic() < deadline:
            s = self.server(server_id)
            if s is None:
                raise AssertionError(f"server {server_id} disappeared while waiting for "
                                     f"{wanted}\n{self.diag(server_id)}")
            task = s.get("OS-EXT-STS:task_state")
            if s["status"] in wanted and not task:
                return s
            if s["status"] == "ERROR" and "ERROR" not in wanted and not allow_error and not task:
                raise AssertionError(
                    f"server {s['name']} went ERROR waiting for {wanted}: "
                    f"fault={s.get('fault')}\n{self.diag(server_id)}")
            if (s["status"] in unexpected and not task
                    and time.monotonic() - started > grace):
                raise AssertionError(
                    f"server {s['name']} is {s['status']} (no task) {grace:.0f}s into waiting "
                    f"for {wanted}: the action failed\n{self.diag(server_id)}")
            time.sleep(0.5)
        raise AssertionError(
            f"server {server_id} not {wanted} after {timeout}s: status={s and s['status']} "
            f"task={s and s.get('OS-EXT-STS:task_state')} fault={s and s.get('fault')}\n"
            f"{self.diag(server_id)}")

    def wait_gone(self, server_id: str, timeout: float = 90):
        wait_until(f"server {server_id} to be deleted",
                   lambda: self.server(server_id) is None, timeout=timeout, interval=0.5)

    def console_text(self, server_id: str) -> str:
        """The console log as the compute API returns it (what `openstack
        console log show` prints)."""
        r = self.api("POST", f"/servers/{server_id}/action",
                     json={"os-getConsoleOutput": {}})
        if r.status_code != 200:
            return ""
        return (r.json().get("output") or "").replace("\r", "")

    def console_file(self, server_id: str, lines: int = 40) -> str:
        p = self.instance_dir(server_id) / "console.log"
        try:
            text = p.read_text(errors="replace").replace("\r", "")
        except OSError as e:
            return f"(no console log: {e})"
        return "\n".join(text.splitlines()[-lines:])

    def wait_new_banner(self, server_id: str, before: str = "",
                        timeout: float = BOOT_TIMEOUT) -> str:
        """Wait for a `ready` line the console log did not have in `before`
        (after it, or in a log that started over, as a rebuild's does)."""
        def fresh():
            text = self.console_text(server_id)
            if text.startswith(before):
                new = text[len(before):]      # appended since
            elif len(text) < len(before):
                new = text                    # the log started over
            else:                             # only the last 100 KiB are returned
                new = text if ready_count(text) > ready_count(before) else ""
            return text if ready_count(new) >= 1 else None
        try:
            return wait_until(f"a new '{READY}' on {server_id}'s console", fresh,
                              timeout=timeout, interval=1.0)
        except AssertionError as e:
            raise AssertionError(f"{e}\n{self.diag(server_id)}") from None

    def server_ports(self, server_id: str) -> list[dict]:
        r = self.api("GET", f"{NETWORK}/ports", params={"device_id": server_id})
        assert r.status_code == 200, r.text[:300]
        return r.json()["ports"]

    # ------------------------------------------------------------ guests
    def boot(self, name: str, image: str = "guest", flavor: str = "m1.tiny",
             wait: bool = True, extra: tuple = ()) -> Guest:
        """`openstack server create … --wait NAME` and the guest's record."""
        res = self.openstack("server", "create", "--image", image, "--flavor", flavor,
                             "--network", "net_admin", "--key-name", "k1", *extra,
                             *(["--wait"] if wait else []), name)
        if res.rc != 0:
            sid = self._server_id(name)
            raise AssertionError(res.describe() + "\n" + self.diag(sid))
        s = res.json()
        if wait:
            assert s["status"] == "ACTIVE", f"{name}: {s}\n{self.diag(s['id'])}"
        return self.guest_record(name, s["id"])

    def _server_id(self, name: str) -> str | None:
        r = self.api("GET", "/servers", params={"name": f"^{name}$"})
        if r.status_code == 200 and r.json()["servers"]:
            return r.json()["servers"][0]["id"]
        return None

    def guest_record(self, name: str, server_id: str) -> Guest:
        s = self.server(server_id)
        addrs = [a["addr"] for a in (s.get("addresses") or {}).get("net_admin", [])
                 if a.get("OS-EXT-IPS:type", "fixed") == "fixed"]
        g = Guest(name=name, id=server_id, fixed_ip=addrs[0] if addrs else "",
                  port_ids=[p["id"] for p in self.server_ports(server_id)])
        self.guests[name] = g
        return g

    def delete(self, server_id: str, timeout: float = 90):
        r = self.api("DELETE", f"/servers/{server_id}")
        assert r.status_code in (204, 404), r.text[:300]
        self.wait_gone(server_id, timeout)

    def leftovers(self, server_id: str, port_ids: list[str]) -> list[str]:
        """What of a server is still on the host."""
        found = []
        pids = qemu_pids(server_id)
        if pids:
            found.append(f"QEMU processes {pids}")
        taps = links() & {tap_name(p) for p in port_ids}
        if taps:
            found.append(f"taps {sorted(taps)}")
        if self.instance_dir(server_id).exists():
            found.append(f"instance directory {self.instance_dir(server_id)} "
                         f"({sorted(os.listdir(self.instance_dir(server_id)))})")
        return found

    # ------------------------------------------------------ reachability
    def default_group(self) -> str:
        project = self.os_ok("project", "show", "admin")["id"]
        groups = self.os_ok("security", "group", "list", "--project", project)
        return next(g["ID"] for g in groups if g["Name"] == "default")

    def allow(self, protocol: str, port: int | None = None):
        """A rule in admin's default group (once per session)."""
        key = f"{protocol}/{port}"
        if key in self.rules:
            return
        args = ["security", "group", "rule", "create", "--protocol", protocol]
        if port:
            args += ["--dst-port", str(port)]
        self.os_ok(*args, self.default_group())
        self.rules.add(key)

    def add_floating_ip(self, g: Guest) -> str:
        fip = self.os_ok("floating", "ip", "create", "net_external")["floating_ip_address"]
        self.os_ok("server", "add", "floating", "ip", g.name, fip, fmt_json=False)
        g.fip = fip
        return fip

    def ssh(self, address: str, command: str, timeout: float = 30) -> subprocess.CompletedProcess:
        """SSH from the external host, as root with the session's key."""
        return subprocess.run(
            ["ip", "netns", "exec", self.ext_ns, "ssh", "-i", str(self.key_path),
             "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
             "-o", "ConnectTimeout=5", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR",
             f"root@{address}", command],
            capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)

    def wait_ssh(self, g: Guest, command: str = "hostname", timeout: float = 60) -> str:
        last = {}

        def ok():
            p = self.ssh(g.fip, command)
            last["p"] = p
            return p.stdout if p.returncode == 0 else None
        try:
            return wait_until(f"SSH to {g.name} at {g.fip}", ok, timeout=timeout, interval=1)
        except AssertionError as e:
            p = last.get("p")
            raise AssertionError(
                f"{e}\nlast ssh: rc={p and p.returncode} {p and p.stderr}\n"
                + self.diag(g.id)) from None

    def ensure_reachable(self, g: Guest) -> str:
        """A floating IP and ICMP + SSH rules (test_first_vm makes them;
        this makes a test independent of it); waits for SSH."""
        if not g.fip:
            self.add_floating_ip(g)
        self.allow("icmp")
        self.allow("tcp", 22)
        return self.wait_ssh(g)

    # ------------------------------------------------------ diagnostics
    def log_tail(self, n: int = 40) -> str:
        """The server log's last lines, without the tests' own polling
        (server shows, console output reads, port lists, tokens)."""
        if not self.fs.log_path or not self.fs.log_path.exists():
            return "(no server log)"
        lines = [ANSI.sub("", line) for line in
                 self.fs.log_path.read_text(errors="replace").splitlines()]
        lines = [line for line in lines if not POLLING.search(line)]
        return "--- server log (tail, without the tests' polling) ---\n" + "\n".join(lines[-n:])

    def diag(self, server_id: str | None = None) -> str:
        parts = [self.log_tail(40)]
        if server_id:
            parts.append(f"--- console log of {server_id} (tail) ---\n"
                         + self.console_file(server_id))
            pids = qemu_pids(server_id)
            parts.append(f"--- QEMU processes of {server_id}: {pids}")
            qlog = self.instance_dir(server_id) / "qemu.log"
            if qlog.exists():
                parts.append("--- qemu.log ---\n" + qlog.read_text(errors="replace")[-2000:])
        return "\n".join(parts)

    # -------------------------------------------------------- teardown
    def ledger_namespaces(self) -> set[str]:
        names = set()
        for f in self.data_dir.glob("netagent/*/*-namespaces.json"):
            with contextlib.suppress(ValueError, OSError):
                names.update(json.loads(f.read_text() or "[]"))
        return names

    def processes_naming(self, text: str) -> list[int]:
        out = []
        for d in Path("/proc").iterdir():
            if d.name.isdigit() and int(d.name) != os.getpid():
                if any(text in a for a in _cmdline(int(d.name))):
                    out.append(int(d.name))
        return out

    def cleanup(self):
        leftover_ns = self.ledger_namespaces()
        if self.fs.proc is not None:
            self.fs.proc.kill()
            self.fs.proc.wait()
            self.fs.stop()  # closes the log
        # Guests outlive the all-in-one: those of this cloud name its data dir.
        names = {str(self.data_dir), str(self.data_dir.resolve())}
        qemus = [pid for pid, argv in qemu_processes().items()
                 if any(n in a for a in argv for n in names)]
        if qemus:
            print(f"\nteardown: killing QEMU processes left by the tests: {qemus}")
        for pid in qemus:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(AssertionError):
            wait_until("QEMU processes to exit",
                       lambda: not any(pid_alive(p) for p in qemus), timeout=15)
        # dnsmasq and anything else of this cloud's that still runs.
        for pid in self.processes_naming(str(self.data_dir)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        subprocess.run([self.fs.bin, "netns-cleanup", "--data-dir", str(self.data_dir)],
                       capture_output=True, timeout=120)
        for ns in set(self.namespaces) | leftover_ns | {self.ext_ns}:
            sh("ip", "netns", "del", ns, check=False)
        self.fs.cleanup()  # the data dir (unless FERROSTACK_KEEP_DATA=1)
        sh("ip", "link", "del", "br-ex", check=False)


# --------------------------------------------------------------------------
# Setup
# --------------------------------------------------------------------------

def _start_image_build(out: Path) -> subprocess.Popen | None:
    """build.sh in the background (None: a ready image was given). It may
    download Debian packages, so it runs in the network namespace this one
    was split from (PID 1's) when it can."""
    argv = [str(BUILD_SCRIPT), str(out)]
    if shutil.which("nsenter") and os.path.exists("/proc/1/ns/net"):
        argv = ["nsenter", "--net=/proc/1/ns/net", "--"] + argv
    log = open(out.parent / "build.log", "wb")
    return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=str(REPO),
                            start_new_session=True)


def _kill_build(proc: subprocess.Popen):
    """The build and what it started (its own process group)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _finish_image_build(proc: subprocess.Popen, out: Path, timeout: float = 1200) -> Path:
    try:
        rc = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        _kill_build(proc)
        rc = "timeout"
    log = (out.parent / "build.log").read_text(errors="replace")
    if rc != 0 or not out.is_file():
        pytest.fail(f"tools/guest-image/build.sh {out} failed ({rc}):\n{log[-4000:]}",
                    pytrace=False)
    return out


def _setup_external_host(c: Cloud):
    """br-ex on this (private) host, the provider's gateway in its own namespace."""
    sh("ip", "link", "add", "br-ex", "type", "bridge")
    sh("ip", "link", "set", "br-ex", "up")
    sh("ip", "netns", "add", c.ext_ns)
    c.namespaces.append(c.ext_ns)
    sh("ip", "link", "add", "ext-gw", "type", "veth", "peer", "name", "eth0",
       "netns", c.ext_ns)
    sh("ip", "link", "set", "ext-gw", "master", "br-ex", "up")
    sh("ip", "-n", c.ext_ns, "addr", "add", f"{EXT_GATEWAY}/24", "dev", "eth0")
    sh("ip", "-n", c.ext_ns, "link", "set", "eth0", "up")
    sh("ip", "-n", c.ext_ns, "link", "set", "lo", "up")


CLOUD_ENV = {
    # The clients' conftest defaults the driver to fake with setdefault.
    "FERROSTACK__COMPUTE__DRIVER": "qemu",
    "NO_COLOR": "1",  # a plain server log
    "FERROSTACK__COMPUTE__SYNC_POWER_STATE_INTERVAL": str(SYNC_INTERVAL),
    "FERROSTACK__COMPUTE__SHUTDOWN_TIMEOUT": "30",
    "FERROSTACK__CONSOLE__TOKEN_TTL": str(CONSOLE_TTL),
    "FERROSTACK__NETWORK_AGENT__ENABLED": "true",
    "FERROSTACK__NETWORK_AGENT__BRIDGE_MAPPINGS": "physnet1:br-ex",
    "FERROSTACK__NETWORK_AGENT__METADATA_URL": METADATA,
    "FERROSTACK__NETWORK_AGENT__METADATA_PROXY_SHARED_SECRET": SECRET,
    "FERROSTACK__NETWORK_AGENT__REPORT_INTERVAL": "2",
    "FERROSTACK__NETWORK_AGENT__RESYNC_INTERVAL": "5",
}


def _seed(c: Cloud):
    """The external network, then the seed's section 5 with the CLI."""
    c.os_ok("network", "create", "--external", "--share", "--provider-network-type", "flat",
            "--provider-physical-network", "physnet1", "net_external")
    c.os_ok("subnet", "create", "--network", "net_external", "--no-dhcp",
            "--subnet-range", EXT_CIDR, "--gateway", EXT_GATEWAY,
            "--allocation-pool", "start=192.168.100.110,end=192.168.100.130", "sub_ext")
    c.os_ok("network", "create", "net_admin")
    c.os_ok("subnet", "create", "--network", "net_admin", "--subnet-range", ADMIN_CIDR,
            "sub_admin")
    c.os_ok("router", "create", "router_admin")
    c.os_ok("router", "add", "subnet", "router_admin", "sub_admin", fmt_json=False)
    c.os_ok("router", "set", "--external-gateway", "net_external", "router_admin",
            fmt_json=False)
    router = c.os_ok("router", "show", "router_admin")
    gw = router["external_gateway_info"]["external_fixed_ips"][0]["ip_address"]
    assert gw == ROUTER_GATEWAY, router["external_gateway_info"]


@pytest.fixture(scope="session")
def cloud():
    if os.geteuid() != 0:
        pytest.exit("the VM tests run real guests and networking: run them as root",
                    returncode=4)
    if not dataplane._private_netns():
        pytest.exit("run the VM tests inside a private network namespace: "
                    "unshare -n -- bash -c 'ip link set lo up && exec pytest -q tests/vm'",
                    returncode=4)
    given = os.environ.get("FERROSTACK_GUEST_IMAGE")
    if given and not Path(given).is_file():
        pytest.fail(f"FERROSTACK_GUEST_IMAGE={given} does not exist (build it with "
                    f"tools/guest-image/build.sh {given})", pytrace=False)
    if not given and not BUILD_SCRIPT.exists():
        pytest.skip("the test guest image cannot be built yet: "
                    "tools/guest-image/build.sh does not exist")
    # Short paths: QEMU's unix sockets live under the data dir (108 bytes max).
    work = Path(tempfile.mkdtemp(prefix="fsvm-"))
    c = Cloud(work)
    build = None
    try:
        if given:
            c.image_path = Path(given)
        else:
            c.image_path = work / "guest.qcow2"
            build = _start_image_build(c.image_path)
        sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "ferrostack-vm-test",
           "-f", str(c.key_path))
        sh("ip", "link", "set", "lo", "up")
        _setup_external_host(c)
        os.environ.update(CLOUD_ENV)
        c.fs.start()
        c.fs.prepare_clouds_yaml()
        _seed(c)
        c.os_ok("keypair", "create", "--public-key", str(c.key_path) + ".pub", "k1")
        if build is not None:
            _finish_image_build(build, c.image_path)
            build = None
        c.os_ok("image", "create", "--file", str(c.image_path), "--disk-format", "qcow2",
                "--container-format", "bare", "--public", "guest")
        yield c
    finally:
        if build is not None and build.poll() is None:
            _kill_build(build)
        c.cleanup()
        if os.environ.get("FERROSTACK_KEEP_DATA") != "1":
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"\nVM test files kept in {work}")


@pytest.fixture(scope="session")
def vm1(cloud) -> Guest:
    """The seed's first VM, shared by the first tests (and deleted by
    test_lifecycle's last test)."""
    g = cloud.guests.get("vm1")
    if g is None or cloud.server(g.id) is None:
        g = cloud.boot("vm1")
    return g
