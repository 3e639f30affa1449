"""The all-in-one half of bench/deploy.sh: from `ferrostack all-in-one`
started to its APIs answering and to the first VM ACTIVE, with the same
stock-CLI steps scripts/three-node.sh takes (the seed's section 5 with
an external network and two floating IPs, a keypair, the guest image,
ICMP and SSH allowed, `server create --wait`); then the process's RSS
once idle. Runs inside a private network namespace (bench/deploy.sh)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("clients", REPO / "tests/clients/conftest.py")
clients = importlib.util.module_from_spec(spec)
spec.loader.exec_module(clients)

IDLE = float(os.environ.get("IDLE_SECONDS", "20"))


def sh(*args: str):
    subprocess.run(args, check=True, capture_output=True, text=True)


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def seed_and_boot(fs: clients.Ferrostack, work: Path):
    """What three-node.sh does from section 5 to vm1 ACTIVE."""
    ok = fs.os_ok
    ok("network", "create", "net_admin")
    ok("subnet", "create", "--network", "net_admin", "--subnet-range", "50.50.1.0/24",
       "subnet_admin")
    ok("router", "create", "router_admin")
    ok("router", "add", "subnet", "router_admin", "subnet_admin", fmt_json=False)
    ok("network", "create", "--external", "--share", "--provider-network-type", "flat",
       "--provider-physical-network", "physnet1", "net_external")
    ok("subnet", "create", "--network", "net_external", "--subnet-range", "192.168.100.0/24",
       "--no-dhcp", "--allocation-pool", "start=192.168.100.110,end=192.168.100.130",
       "--gateway", "192.168.100.1", "subnet_external")
    ok("router", "set", "--external-gateway", "net_external", "router_admin", fmt_json=False)
    for fip in ("192.168.100.111", "192.168.100.112"):
        ok("floating", "ip", "create", "--floating-ip-address", fip, "net_external")
    sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(work / "key"))
    ok("keypair", "create", "--public-key", f"{work / 'key'}.pub", "k1")
    ok("image", "create", "--disk-format", "qcow2", "--container-format", "bare", "--public",
       "--file", os.environ["FERROSTACK_GUEST_IMAGE"], "guest")
    project = ok("project", "show", "admin")["id"]
    group = next(g["ID"] for g in ok("security", "group", "list", "--project", project)
                 if g["Name"] == "default")
    ok("security", "group", "rule", "create", "--protocol", "icmp", group)
    ok("security", "group", "rule", "create", "--protocol", "tcp", "--dst-port", "22", group)
    server = ok("server", "create", "--image", "guest", "--flavor", "m1.tiny", "--network",
                "net_admin", "--key-name", "k1", "--wait", "vm1")
    assert server["status"] == "ACTIVE", server


def main():
    sh("ip", "link", "add", "br-ex", "type", "bridge")
    sh("ip", "link", "set", "br-ex", "up")
    os.environ.update({
        "FERROSTACK__COMPUTE__DRIVER": "qemu",
        "FERROSTACK__NETWORK_AGENT__BRIDGE_MAPPINGS": "physnet1:br-ex",
    })
    fs = clients.Ferrostack()
    work = Path(tempfile.mkdtemp(prefix="ferrostack-deploy-"))
    try:
        t0 = time.monotonic()
        fs.start()
        up = time.monotonic() - t0
        fs.prepare_clouds_yaml()
        seed_and_boot(fs, work)
        active = time.monotonic() - t0
        time.sleep(IDLE)
        print(f"all-in-one: APIs answer {up:.1f} s, first VM ACTIVE {active:.1f} s after start; "
              f"RSS idle ({IDLE:.0f} s after): ferrostack all-in-one {rss_mib(fs.proc.pid):.0f} MiB")
    finally:
        data_dir = fs.data_dir
        fs.stop()
        subprocess.run(["pkill", "-9", "-f", f"qemu-system.*{data_dir}"], check=False)
        fs.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
