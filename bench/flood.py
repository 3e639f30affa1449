"""The APIs under a connection flood; see bench/flood.sh, which starts the
all-in-one and sets SERVER_PID, CLIENTS, IDLE, DURATION.

1. CLIENTS threads send GETs round-robin to identity, image, network and
   compute for DURATION seconds: requests, errors, p50/p99/max latency.
2. IDLE connections are opened (half silent, half stuck half-way through
   their headers), half to identity's port and half spread over the
   others, by two holder processes; then step 1 runs again while they are
   held, and a network is created to show the agents still work.
3. The server's VmRSS / VmHWM and open descriptors after each step.
"""

import asyncio
import os
import resource
import socket
import subprocess
import sys
import threading
import time

import requests

HOST = "127.0.0.1"
URLS = [
    "http://127.0.0.1:5000/v3/projects",
    "http://127.0.0.1:9292/v2/images",
    "http://127.0.0.1:9696/v2.0/networks",
    "http://127.0.0.1:8774/v2.1/servers",
]
CLIENTS = int(os.environ.get("CLIENTS", "50"))
IDLE = int(os.environ.get("IDLE", "20000"))
DURATION = float(os.environ.get("DURATION", "15"))
SERVER_PID = os.environ.get("SERVER_PID", "")


def server_figures():
    out = {}
    try:
        with open(f"/proc/{SERVER_PID}/status") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    out[key] = "%.1f MiB" % (int(rest.split()[0]) / 1024.0)
        out["fds"] = len(os.listdir(f"/proc/{SERVER_PID}/fd"))
    except OSError:
        pass
    return out


def token():
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "domain": {"id": "default"}, "password": "admin_pass"}}},
        "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}}
    r = requests.post("http://127.0.0.1:5000/v3/auth/tokens", json=body, timeout=30)
    r.raise_for_status()
    return r.headers["X-Subject-Token"]


def load(tok, label):
    latencies, errors, lock = [], [], threading.Lock()
    stop = time.monotonic() + DURATION

    def worker(n):
        s = requests.Session()
        s.trust_env = False
        s.headers["X-Auth-Token"] = tok
        i = n
        while time.monotonic() < stop:
            url = URLS[i % len(URLS)]
            i += 1
            t = time.monotonic()
            try:
                r = s.get(url, timeout=30)
                ok = r.status_code == 200
                what = f"{r.status_code} {url}"
            except requests.RequestException as e:
                ok, what = False, f"{type(e).__name__} {url}"
            with lock:
                latencies.append(time.monotonic() - t)
                if not ok:
                    errors.append(what)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lat = sorted(latencies)
    pick = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] * 1000  # noqa: E731
    print(f"  {label}: {len(lat)} requests by {CLIENTS} clients in {DURATION:.0f} s, "
          f"{len(errors)} errors, p50 {pick(0.5):.1f} ms, p99 {pick(0.99):.1f} ms, "
          f"max {lat[-1] * 1000:.1f} ms", flush=True)
    for e in sorted(set(errors))[:5]:
        print(f"    error: {e}", flush=True)
    return len(errors)


async def hold(ports, count):
    """Open `count` connections spread over `ports`, half silent and half
    stuck in their headers; report how many the server still holds open."""
    resource.setrlimit(resource.RLIMIT_NOFILE, (resource.getrlimit(resource.RLIMIT_NOFILE)[1],) * 2)
    socks = []
    for i in range(count):
        s = socket.socket()
        s.setblocking(False)
        try:
            await asyncio.get_running_loop().sock_connect(s, (HOST, ports[i % len(ports)]))
            if i % 2:
                s.send(b"GET /v3 HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            socks.append(s)
        except OSError:
            s.close()
    print(f"READY {len(socks)}", flush=True)
    sys.stdin.readline()
    alive = 0
    for s in socks:
        try:
            alive += 1 if s.recv(1, socket.MSG_PEEK) else 0
        except BlockingIOError:
            alive += 1
        except OSError:
            pass
    print(f"ALIVE {alive}", flush=True)


def start_holder(ports, count):
    p = subprocess.Popen([sys.executable, __file__, "--hold", ",".join(map(str, ports)), str(count)],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline().split()
    return p, int(line[1]) if len(line) == 2 else 0


def agents_work(tok):
    """A network with DHCP made during the flood gets its DHCP port ACTIVE."""
    h = {"X-Auth-Token": tok}
    net = requests.post("http://127.0.0.1:9696/v2.0/networks", headers=h, timeout=30,
                        json={"network": {"name": "flood-probe"}}).json()["network"]
    requests.post("http://127.0.0.1:9696/v2.0/subnets", headers=h, timeout=30,
                  json={"subnet": {"network_id": net["id"], "cidr": "10.99.0.0/24",
                                   "ip_version": 4}}).raise_for_status()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ports = requests.get("http://127.0.0.1:9696/v2.0/ports", headers=h, timeout=30,
                             params={"network_id": net["id"],
                                     "device_owner": "network:dhcp"}).json()["ports"]
        if ports and ports[0]["status"] == "ACTIVE":
            return True
        time.sleep(0.5)
    return False


def main():
    tok = token()
    print(f"  server idle: {server_figures()}", flush=True)
    errors = load(tok, "baseline")
    print(f"  server after baseline: {server_figures()}", flush=True)
    half = IDLE // 2
    holders = [start_holder([5000], half), start_holder([9696, 8774, 9292, 35357], IDLE - half)]
    print(f"  {sum(n for _, n in holders)} idle connections opened "
          f"({half} to identity, {IDLE - half} to the others)", flush=True)
    print(f"  server flooded: {server_figures()}", flush=True)
    errors += load(tok, "while flooded")
    if os.environ.get("AGENTS") == "1":
        ok = agents_work(tok)
        print(f"  network agents while flooded: DHCP port {'ACTIVE' if ok else 'NOT ACTIVE'}",
              flush=True)
        errors += 0 if ok else 1
    for p, _ in holders:
        p.stdin.write("\n")
        p.stdin.flush()
    alive = sum(int(p.stdout.readline().split()[1]) for p, _ in holders)
    for p, _ in holders:
        p.wait()
    print(f"  idle connections still open at the end (client side; the server holds only its limit, the rest wait in the kernel backlog): {alive}", flush=True)
    print(f"  server after the flood: {server_figures()}", flush=True)
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--hold":
        asyncio.run(hold([int(p) for p in sys.argv[2].split(",")], int(sys.argv[3])))
    else:
        main()
