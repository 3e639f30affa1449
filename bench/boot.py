"""Boot timings with real QEMU guests (see bench/boot.sh).

For 1 and then N concurrent boots of the built guest image it prints, per
boot, with direct API calls (no CLI start-up in the figures):

  API call -> ACTIVE              the server's status, polled every 20 ms
  API call -> first console line  the guest's serial log has a byte
  API call -> guest banner        `ferrostack-guest: ready` in the log
  API call -> SSH answers         `ssh root@<floating IP> hostname` from an
                                  external host (the floating IP is
                                  associated as soon as the port exists)

and splits API -> ACTIVE with the create saga's step timings from the
server log (debug lines `saga step ran`): control plane (schedule,
allocate ports, the API call itself and the saga's bookkeeping),
hypervisor (image cache + spawn: QEMU started and running) and network
(waiting for the L2 agent's `network-vif-plugged`). Then the resident
memory of the all-in-one and of each QEMU.
"""

from __future__ import annotations

import concurrent.futures as cf
import importlib.util
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("clients", REPO / "tests/clients/conftest.py")
clients = importlib.util.module_from_spec(spec)
spec.loader.exec_module(clients)

CONCURRENT = int(os.environ.get("CONCURRENT", "10"))
EXT_CIDR, EXT_GW = "192.168.100.0/24", "192.168.100.1"
EXT_NS = f"fsb-{uuid.uuid4().hex[:6]}"
NOVA = "http://127.0.0.1:8774/v2.1"
NEUTRON = "http://127.0.0.1:9696/v2.0"
STEP_RE = re.compile(r'saga=create_server instance=(\S+) step="?(\w+)"? ms=([0-9.]+) ok=true')
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def sh(*args, check=True, timeout=120):
    p = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise SystemExit(f"{' '.join(args)}: {p.stderr.strip()}")
    return p


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Bench:
    def __init__(self):
        self.fs = clients.Ferrostack()
        self.work = Path(tempfile.mkdtemp(prefix="ferrostack-boot-"))
        self.key = self.work / "key"

    def setup(self):
        sh("ip", "link", "set", "lo", "up")
        sh("ip", "link", "add", "br-ex", "type", "bridge")
        sh("ip", "link", "set", "br-ex", "up")
        sh("ip", "netns", "add", EXT_NS)
        sh("ip", "link", "add", "ext-gw", "type", "veth", "peer", "name", "eth0", "netns", EXT_NS)
        sh("ip", "link", "set", "ext-gw", "master", "br-ex", "up")
        sh("ip", "-n", EXT_NS, "addr", "add", f"{EXT_GW}/24", "dev", "eth0")
        sh("ip", "-n", EXT_NS, "link", "set", "eth0", "up")
        sh("ip", "-n", EXT_NS, "link", "set", "lo", "up")
        os.environ.update({
            "FERROSTACK__COMPUTE__DRIVER": "qemu",
            "FERROSTACK__NETWORK_AGENT__BRIDGE_MAPPINGS": "physnet1:br-ex",
            "FERROSTACK_LOG": "info,ferrostack_compute::saga=debug",
        })
        self.fs.start()
        self.fs.prepare_clouds_yaml()
        ok = self.fs.os_ok
        ok("network", "create", "net_admin")
        ok("subnet", "create", "--network", "net_admin", "--subnet-range", "50.50.1.0/24",
           "sub_admin")
        ok("router", "create", "router_admin")
        ok("router", "add", "subnet", "router_admin", "sub_admin", fmt_json=False)
        ok("network", "create", "--external", "--share", "--provider-network-type", "flat",
           "--provider-physical-network", "physnet1", "net_external")
        ok("subnet", "create", "--network", "net_external", "--no-dhcp", "--subnet-range",
           EXT_CIDR, "--allocation-pool", "start=192.168.100.110,end=192.168.100.200",
           "--gateway", EXT_GW, "sub_ext")
        ok("router", "set", "--external-gateway", "net_external", "router_admin",
           fmt_json=False)
        image = Path(os.environ.get("FERROSTACK_GUEST_IMAGE", self.work / "guest.qcow2"))
        if not image.exists():
            sh(str(REPO / "tools/guest-image/build.sh"), str(image), timeout=1200)
        self.image = ok("image", "create", "--file", str(image), "--disk-format", "qcow2",
                        "--container-format", "bare", "--public", "guest")["id"]
        sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.key))
        ok("keypair", "create", "--public-key", f"{self.key}.pub", "k1")
        project = ok("project", "show", "admin")["id"]
        group = next(g["ID"] for g in ok("security", "group", "list", "--project", project)
                     if g["Name"] == "default")
        ok("security", "group", "rule", "create", "--protocol", "icmp", group)
        ok("security", "group", "rule", "create", "--protocol", "tcp", "--dst-port", "22", group)
        self.net = ok("network", "show", "net_admin")["id"]
        self.ext = ok("network", "show", "net_external")["id"]
        token, _ = self.fs.issue_token()
        self.h = {"X-Auth-Token": token}
        # Warm the image cache and QEMU's page cache: the first boot of an
        # image downloads and converts it once per host; the figures below
        # are for the boots after that.
        self.boot_batch(1, warmup=True)

    def console_log(self, sid: str) -> Path:
        return self.fs.data_dir / "compute" / "instances" / sid / "console.log"

    def one(self, name: str, t0: float, out: dict):
        r = requests.post(f"{NOVA}/servers", headers=self.h, json={"server": {
            "name": name, "imageRef": self.image, "flavorRef": "1",
            "networks": [{"uuid": self.net}], "key_name": "k1"}}, timeout=60)
        assert r.status_code == 202, r.text
        sid = r.json()["server"]["id"]
        out["id"] = sid
        out["api"] = time.monotonic() - t0
        log = self.console_log(sid)
        fip = None
        deadline = t0 + 300
        while time.monotonic() < deadline:
            now = time.monotonic() - t0
            if "active" not in out:
                s = requests.get(f"{NOVA}/servers/{sid}", headers=self.h, timeout=30).json()
                status = s["server"]["status"]
                if status == "ERROR":
                    raise AssertionError(f"{name}: ERROR {s['server'].get('fault')}")
                if status == "ACTIVE":
                    out["active"] = now
            if "first_line" not in out and log.exists() and log.stat().st_size > 0:
                out["first_line"] = now
            if "banner" not in out and log.exists() and \
                    "ferrostack-guest: ready" in log.read_text(errors="replace"):
                out["banner"] = now
            if fip is None:
                ports = requests.get(f"{NEUTRON}/ports?device_id={sid}", headers=self.h,
                                     timeout=30).json()["ports"]
                if ports:
                    fip = requests.post(f"{NEUTRON}/floatingips", headers=self.h, json={
                        "floatingip": {"floating_network_id": self.ext,
                                       "port_id": ports[0]["id"]}},
                        timeout=30).json()["floatingip"]["floating_ip_address"]
                    out["fip"] = fip
            if fip and "banner" in out and "ssh" not in out:
                p = subprocess.run(
                    ["ip", "netns", "exec", EXT_NS, "ssh", "-i", str(self.key),
                     "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                     "-o", "ConnectTimeout=2", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR",
                     f"root@{fip}", "hostname"], capture_output=True, text=True, timeout=20)
                if p.returncode == 0 and p.stdout.strip() == name:
                    out["ssh"] = time.monotonic() - t0
                else:
                    out["ssh_error"] = (p.stdout + p.stderr).strip()[-200:]
            if all(k in out for k in ("active", "first_line", "banner", "ssh")):
                out.pop("ssh_error", None)
                return
            time.sleep(0.02)
        raise AssertionError(f"{name}: not done in 300 s: {out}")

    def boot_batch(self, n: int, warmup: bool = False) -> list[dict]:
        results = [dict() for _ in range(n)]
        t0 = time.monotonic()
        with cf.ThreadPoolExecutor(n) as pool:
            futures = [pool.submit(self.one, f"b{uuid.uuid4().hex[:6]}", t0, results[i])
                       for i in range(n)]
            errors = [f.exception() for f in futures if f.exception()]
        if warmup:
            for r in results:
                self.delete(r)
            if errors:
                raise SystemExit(f"warm-up boot failed: {errors[0]}")
            return results
        self.report(n, results, errors)
        return results

    def steps(self) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {}
        text = ANSI.sub("", self.fs.log_path.read_text(errors="replace"))
        for m in STEP_RE.finditer(text):
            out.setdefault(m.group(1), {})[m.group(2)] = float(m.group(3)) / 1000
        return out

    def report(self, n: int, results: list[dict], errors: list):
        print(f"\n=== {n} concurrent boot(s): {n - len(errors)} ok, {len(errors)} failed ===")
        for e in errors:
            print(f"  failure: {e}")
        for r in results:
            if "ssh" not in r and "id" in r:
                log = self.console_log(r["id"])
                text = log.read_text(errors="replace") if log.exists() else ""
                print(f"  console of {r['id']} (tail):")
                for line in text.splitlines()[-25:]:
                    print(f"    | {line}")

        ok = [r for r in results if "ssh" in r]
        steps = self.steps()
        def row(label, values):
            values = sorted(values)
            if not values:
                return
            p = lambda q: values[min(len(values) - 1, int(q * len(values)))]
            print(f"  {label:<38} p50 {p(0.5) * 1000:8.0f} ms   max {values[-1] * 1000:8.0f} ms")
        row("API call returned", [r["api"] for r in ok])
        row("API call -> ACTIVE", [r["active"] for r in ok])
        row("API call -> first console line", [r["first_line"] for r in ok])
        row("API call -> guest banner (ready)", [r["banner"] for r in ok])
        row("API call -> SSH answers on floating IP", [r["ssh"] for r in ok])
        cp, hv, net = [], [], []
        for r in ok:
            s = steps.get(r["id"], {})
            hyper = s.get("cache_image", 0) + s.get("spawn", 0)
            wait = s.get("wait_vif_plugged", 0)
            hv.append(hyper)
            net.append(wait)
            cp.append(max(r["active"] - hyper - wait, 0))
        row("  control plane (API + saga + ports)", cp)
        row("  hypervisor (image cache + QEMU start)", hv)
        row("  network (wait for vif plugged)", net)
        print(f"  all-in-one RSS {rss_mib(self.fs.proc.pid):.1f} MiB")
        qemus = [int(p) for p in sh("pgrep", "-f", f"qemu-system.*{self.fs.data_dir}",
                                    check=False).stdout.split()]
        if qemus:
            sizes = sorted(rss_mib(p) for p in qemus)
            print(f"  QEMU RSS ({len(sizes)} guests, m1.tiny 512 MB): min {sizes[0]:.0f} MiB, "
                  f"median {statistics.median(sizes):.0f} MiB, max {sizes[-1]:.0f} MiB")
        for r in results:
            self.delete(r)

    def delete(self, r: dict):
        if "id" in r:
            requests.delete(f"{NOVA}/servers/{r['id']}", headers=self.h, timeout=30)
        deadline = time.monotonic() + 120
        while "id" in r and time.monotonic() < deadline:
            if requests.get(f"{NOVA}/servers/{r['id']}", headers=self.h,
                            timeout=30).status_code == 404:
                break
            time.sleep(0.2)
        if "fip" in r:
            for f in requests.get(f"{NEUTRON}/floatingips?floating_ip_address={r['fip']}",
                                  headers=self.h, timeout=30).json()["floatingips"]:
                requests.delete(f"{NEUTRON}/floatingips/{f['id']}", headers=self.h, timeout=30)

    def cleanup(self):
        data_dir = self.fs.data_dir
        self.fs.stop()
        sh("pkill", "-9", "-f", f"qemu-system.*{data_dir}", check=False)
        self.fs.cleanup()
        sh("pkill", "-9", "-f", f"qemu-system.*{self.fs.data_dir}", check=False)
        sh("ip", "netns", "del", EXT_NS, check=False)


def main():
    b = Bench()
    try:
        b.setup()
        b.boot_batch(1)
        b.boot_batch(CONCURRENT)
    finally:
        b.cleanup()


if __name__ == "__main__":
    main()
