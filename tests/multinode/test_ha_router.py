"""An HA router across two network nodes (Neutron's L3 HA): its own
deployment, `scripts/three-node.sh --ha --no-vm`, adds `network2` beside
`network`; an HA router with the external gateway, a network behind it
and a stand-in instance (a namespace plugged into the compute host's
bridge as a VM's tap would be) with a floating IP. The external host
pings the floating IP every 0.2 s while the active network node's
processes (ferrostack, keepalived, dnsmasq) are killed and its namespaces
deleted; the longest gap between replies must be at most 5 s, and the
other node's agent must then be the active one.

A deployment of its own (1–2 minutes), in the gating run after the
three-node tests. Run it alone as root, one deployment at a time on a
machine:

    flock /tmp/three-node.lock env FERROSTACK_BIN=target/debug/ferrostack \\
        .venv/bin/pytest -q tests/multinode/test_ha_router.py -s
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import BIN, EXTRA, OPENSTACK, P, VENV, script


EXT = "192.168.100.51"
NODES = {"network": "net", "network2": "net2"}
STANDIN = f"{P}-vm"
STANDIN_IP = "10.66.0.10"
MAX_GAP = 5.0


def ns_of(host: str) -> str:
    return f"{P}-{host}"


def in_ns(host: str, *argv: str) -> list[str]:
    return ["nsenter", f"--net=/run/netns/{ns_of(host)}", "--", *argv]


def run(*argv: str, **kw) -> str:
    r = subprocess.run(argv, capture_output=True, text=True, timeout=120, **kw)
    assert r.returncode == 0, f"{' '.join(argv)}: {r.stderr.strip()}"
    return r.stdout


class HaCloud:
    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.env = dict(os.environ, OS_AUTH_URL=f"http://{EXT}:5000/v3",
                        OS_USERNAME="admin", OS_PASSWORD="admin_pass",
                        OS_PROJECT_NAME="admin", OS_USER_DOMAIN_ID="default",
                        OS_PROJECT_DOMAIN_ID="default", OS_IDENTITY_API_VERSION="3",
                        OS_REGION_NAME="RegionOne")
        for k in ("OS_CLOUD", "OS_CLIENT_CONFIG_FILE"):
            self.env.pop(k, None)

    def os(self, *args: str) -> str:
        return run(*in_ns("sw", OPENSTACK, *args), env=self.env)

    def json(self, *args: str):
        return json.loads(self.os(*args, "-f", "json"))

    def log(self, node: str) -> str:
        f = self.tmp / node / "log"
        return f.read_text(errors="replace")[-3000:] if f.exists() else ""


@pytest.fixture(scope="module")
def ha_cloud():
    if os.geteuid() != 0:
        pytest.fail("the HA router test needs root (it makes network namespaces)")
    tmp = Path(tempfile.mkdtemp(prefix=f"{P}-"))
    tmp.rmdir()
    extra = dict(EXTRA, net2=EXTRA["net"])
    env = dict(os.environ, FERROSTACK_BIN=BIN, FERROSTACK_VENV=VENV,
               FERROSTACK__IDENTITY__BCRYPT_COST="4",
               **{f"FERROSTACK_3NODE_EXTRA_{h}": text for h, text in extra.items()})
    try:
        r = script(tmp, "--ha", "--no-vm", env=env)
        cloud = HaCloud(tmp)
        logs = "".join(f"\n--- {h} ---\n{cloud.log(h)}" for h in ("ctl", "net", "net2"))
        assert r.returncode == 0, f"three-node.sh --ha: {r.stdout}\n{r.stderr}{logs}"
        yield cloud
    finally:
        subprocess.run(["ip", "netns", "del", STANDIN], capture_output=True)
        r = script(tmp, "--down", env=env)
        print(r.stderr)


def wait_for(what, probe, timeout=90, interval=1.0):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


def ha_states(cloud: HaCloud, router: str) -> dict[str, str]:
    """host -> ha_state of the agents hosting the router (`HA State`)."""
    rows = cloud.json("network", "agent", "list", "--router", router, "--long")
    rows = [{k.lower().replace(" ", "_"): v for k, v in r.items()} for r in rows]
    return {r["host"]: r["ha_state"] for r in rows}


def plug_standin(cloud: HaCloud, port: dict, gateway: str):
    """The port's stand-in guest on the compute host: a namespace with the
    port's MAC and address behind `tap<port>`, which the compute host's L2
    agent plugs into the network's bridge."""
    tap = "tap" + port["id"][:11]
    run("ip", "netns", "add", STANDIN)
    run("ip", "-n", ns_of("cmp"), "link", "add", tap, "type", "veth", "peer", "name", "eth0",
        "netns", STANDIN)
    run("ip", "-n", STANDIN, "link", "set", "eth0", "address", port["mac_address"], "mtu",
        "1450", "up")
    run("ip", "-n", STANDIN, "link", "set", "lo", "up")
    run("ip", "-n", STANDIN, "addr", "add", f"{STANDIN_IP}/24", "dev", "eth0")
    run("ip", "-n", STANDIN, "route", "add", "default", "via", gateway)
    run("ip", "-n", ns_of("cmp"), "link", "set", tap, "up")


def kill_node(tmp: Path, node: str):
    """SIGKILL every process of the node (its ferrostack, keepalived and
    dnsmasq: their command lines name its directory), then delete its
    namespaces. network2's live in its private mount namespace and are
    gone with its processes."""
    mark = f"{tmp}/{node}/"
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            argv = (d / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if mark in argv:
            try:
                os.kill(int(d.name), signal.SIGKILL)
            except ProcessLookupError:
                pass
    if node == "net":
        for ledger in (tmp / node / "data").glob("**/*-namespaces.json"):
            for name in json.loads(ledger.read_text()):
                subprocess.run(["ip", "netns", "del", name], capture_output=True)


def longest_gap(lines: list[str]) -> tuple[float, int]:
    """The longest time between two replies of `ping -D`, and their count."""
    stamps = [float(m.group(1)) for line in lines
              if (m := re.match(r"\[(\d+\.\d+)\] \d+ bytes from", line))]
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    return (max(gaps) if gaps else float("inf")), len(stamps)


def test_ha_router_survives_the_loss_of_its_active_network_node(ha_cloud):
    c = ha_cloud
    c.os("network", "create", "net_ha")
    c.os("subnet", "create", "--network", "net_ha", "--subnet-range", "10.66.0.0/24",
         "--no-dhcp", "subnet_ha")
    router = c.json("router", "create", "--ha", "router_ha")
    rid = router["id"]
    assert router["ha"] is True, router
    c.os("router", "add", "subnet", "router_ha", "subnet_ha")
    c.os("router", "set", "--external-gateway", "net_external", "router_ha")
    hosts = wait_for("both network nodes hosting the router",
                     lambda: (s := ha_states(c, rid)) and set(s) == set(NODES) and s)
    # Both nodes may be master for a moment while the HA network between
    # them comes up (each hears nobody); VRRP then settles on one.
    active = wait_for("exactly one active agent",
                      lambda: len(a := [h for h, s in ha_states(c, rid).items()
                                        if s == "active"]) == 1 and a)
    assert len(active) == 1, hosts
    port = c.json("port", "create", "--network", "net_ha", "--fixed-ip",
                  f"subnet=subnet_ha,ip-address={STANDIN_IP}", "--disable-port-security",
                  "--no-security-group", "--host", "compute", "--device-owner",
                  "compute:nova", "standin")
    plug_standin(c, port, "10.66.0.1")
    fip = c.json("floating", "ip", "create", "--port", port["id"], "net_external")
    address = fip["floating_ip_address"]
    wait_for(f"ping {address} from the external host",
             lambda: subprocess.run(in_ns("sw", "ping", "-c", "1", "-W", "1", address),
                                    capture_output=True).returncode == 0)

    ping = subprocess.Popen(in_ns("sw", "ping", "-D", "-n", "-i", "0.2", "-W", "1", address),
                            stdout=subprocess.PIPE, text=True)
    time.sleep(3)
    victim = active[0]
    killed_at = time.time()
    kill_node(c.tmp, NODES[victim])
    time.sleep(15)
    ping.send_signal(signal.SIGINT)
    out, _ = ping.communicate(timeout=10)
    lines = out.splitlines()
    gap, replies = longest_gap(lines)
    after = [line for line in lines if (m := re.match(r"\[(\d+\.\d+)\] \d+ bytes", line))
             and float(m.group(1)) > killed_at]
    print(f"HA failover: longest gap between replies {gap:.2f} s "
          f"({replies} replies, {len(after)} after the kill of {victim})")
    assert after, f"no reply after the kill of {victim}:\n{out[-2000:]}"
    assert gap <= MAX_GAP, f"a gap of {gap:.2f} s:\n{out[-4000:]}"

    survivor = next(h for h in NODES if h != victim)
    states = wait_for(f"{survivor} active and {victim} not in l3-agents",
                      lambda: (s := ha_states(c, rid))[survivor] == "active"
                      and s[victim] == "standby" and s)
    print(f"l3-agents after the failover: {states}")
