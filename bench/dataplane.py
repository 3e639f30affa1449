"""Data-plane timings (see bench/dataplane.sh). Uses the data-plane test
fixtures' cloud, with direct API calls (no CLI start-up in the timings)."""

import importlib.util
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "dataplane"))
spec = importlib.util.spec_from_file_location("dataplane", REPO / "tests/dataplane/conftest.py")
dp = importlib.util.module_from_spec(spec)
spec.loader.exec_module(dp)

RUNS = int(os.environ.get("RUNS", "10"))


def percentiles(name, values):
    values = sorted(values)
    p = lambda q: values[min(len(values) - 1, int(q * len(values)))]
    print(f"{name:<44} n={len(values):<3} p50 {p(0.5) * 1000:8.1f} ms   "
          f"p90 {p(0.9) * 1000:8.1f} ms   max {values[-1] * 1000:8.1f} ms")


def main():
    with dp.open_cloud() as c:
        token, body = c.fs.issue_token()
        h = {"X-Auth-Token": token}
        api = "http://127.0.0.1:9696/v2.0"
        net = c.os_ok("network", "create", "bench-net")
        c.os_ok("subnet", "create", "--network", "bench-net", "--subnet-range",
                "10.80.0.0/24", "bench-subnet")
        router = c.os_ok("router", "create", "bench-router")
        c.os_ok("router", "add", "subnet", "bench-router", "bench-subnet", fmt_json=False)
        c.os_ok("router", "set", "--external-gateway", "public", "bench-router", fmt_json=False)
        group = next(g["ID"] for g in c.os_ok("security", "group", "list", "--project",
                                               c.os_ok("project", "show", "admin")["id"])
                     if g["Name"] == "default")
        c.os_ok("security", "group", "rule", "create", "--protocol", "icmp", group)
        dhcp_dir = next(Path(c.fs.data_dir).glob("netagent/*/dhcp")) / net["id"]
        active, known, leased, renew, fip_nat, fip_reply = [], [], [], [], [], []
        standins = []
        for _ in range(RUNS):
            t0 = time.monotonic()
            r = requests.post(f"{api}/ports", headers=h, json={"port": {
                "network_id": net["id"], "binding:host_id": c.host,
                "device_owner": "compute:nova", "device_id": str(uuid.uuid4())}})
            assert r.status_code == 201, r.text
            port = r.json()["port"]
            s = dp.StandIn(c, port)  # plugged at once, as Nova plugs the tap
            standins.append(s)
            host_file = dhcp_dir / "host"
            while port["mac_address"] not in (host_file.read_text() if host_file.exists() else ""):
                time.sleep(0.005)
            known.append(time.monotonic() - t0)
            while requests.get(f"{api}/ports/{port['id']}", headers=h).json()["port"]["status"] != "ACTIVE":
                time.sleep(0.005)
            active.append(time.monotonic() - t0)
            if os.environ.get("SETTLE"):
                time.sleep(float(os.environ["SETTLE"]))
            s.dhcp()
            leased.append(time.monotonic() - t0)
            t1 = time.monotonic()
            s.dhcp()
            renew.append(time.monotonic() - t1)
        for s in standins:
            r = requests.post(f"{api}/floatingips", headers=h, json={"floatingip": {
                "floating_network_id": c.public_net["id"]}})
            assert r.status_code == 201, r.text
            fip = r.json()["floatingip"]
            t0 = time.monotonic()
            r = requests.put(f"{api}/floatingips/{fip['id']}", headers=h,
                             json={"floatingip": {"port_id": s.port["id"]}})
            assert r.status_code == 200, r.text
            router_ns = f"qrouter-{router['id']}"
            while f"dnat to {s.fixed_ip}" not in subprocess.run(
                    ["ip", "netns", "exec", router_ns, "nft", "list", "table", "ip", "ferrostack_nat"],
                    capture_output=True, text=True).stdout:
                time.sleep(0.005)
            fip_nat.append(time.monotonic() - t0)
            while subprocess.run(["ip", "netns", "exec", c.ext_ns, "ping", "-c1", "-W", "0.1",
                                  fip["floating_ip_address"]],
                                 capture_output=True).returncode != 0:
                if time.monotonic() - t0 > 30:
                    raise SystemExit("no reply from the floating IP in 30 s")
            fip_reply.append(time.monotonic() - t0)
        print()
        percentiles("port create -> DHCP server knows the port", known)
        percentiles("port create -> port ACTIVE", active)
        percentiles("port create -> stand-in has its address", leased)
        percentiles("a second lease (udhcpc alone)", renew)
        percentiles("floating IP associate -> router NAT in place", fip_nat)
        percentiles("floating IP associate -> first external reply", fip_reply)
        for s in standins:
            s.close()


if __name__ == "__main__":
    main()
