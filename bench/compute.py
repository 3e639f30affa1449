"""Compute (Nova API) timings against a running all-in-one; see
bench/compute.sh, which starts the server and sets the environment:
CONCURRENT, TOTAL_SERVERS, BATCH, FILL_CONCURRENCY, FILL_WAIT, LIST_RUNS, PAGE_LIMIT,
POLL_INTERVAL,
SERVER_PID (for /proc/<pid>/status) and BIN_NAME."""

import os
import statistics
import sys
import threading
import time
from urllib.parse import urlsplit

import requests

HOST = "127.0.0.1"
IDENTITY = f"http://{HOST}:5000"
COMPUTE = f"http://{HOST}:8774"
IMAGE = f"http://{HOST}:9292"
NETWORK = f"http://{HOST}:9696"

CONCURRENT = int(os.environ.get("CONCURRENT", "100"))
TOTAL = int(os.environ.get("TOTAL_SERVERS", "10000"))
BATCH = int(os.environ.get("BATCH", "100"))
FILL_CONCURRENCY = int(os.environ.get("FILL_CONCURRENCY", "4"))
RUNS = int(os.environ.get("LIST_RUNS", "5"))
IDLE_WAIT = int(os.environ.get("IDLE_WAIT", "30"))
SETTLE_MAX = int(os.environ.get("SETTLE_MAX", "300"))
POLL = float(os.environ.get("POLL_INTERVAL", "0.02"))
FILL_WAIT = os.environ.get("FILL_WAIT", "1") == "1"
ACTIVE_TIMEOUT = 600.0
NOVA_MAX_LIMIT = 1000  # Nova's [api] max_limit: the most servers per page
PAGE_LIMIT = int(os.environ.get("PAGE_LIMIT", str(NOVA_MAX_LIMIT)))
SERVER_PID = os.environ.get("SERVER_PID", "")


def die(msg):
    print("bench/compute.sh: " + msg, file=sys.stderr, flush=True)
    # os._exit: worker threads may still be blocked in requests
    sys.stderr.flush()
    sys.stdout.flush()
    os._exit(1)


def log(msg):
    print("  " + msg, flush=True)


def pct(values, p):
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(p / 100.0 * len(s) + 0.5)) - 1))
    return s[k]


def ms(x):
    return "%.1f" % (x * 1000)


def memory():
    """VmRSS and VmHWM of the server, in MiB."""
    out = {}
    try:
        with open(f"/proc/{SERVER_PID}/status") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    out[key] = int(rest.split()[0]) / 1024.0
    except OSError:
        pass
    return out


_local = threading.local()


def session():
    """One keep-alive session per thread (requests.Session is not thread-safe)."""
    s = getattr(_local, "s", None)
    if s is None:
        s = requests.Session()
        s.trust_env = False  # 127.0.0.1 only: never a proxy
        s.headers.update({"X-Auth-Token": TOKEN, "Accept": "application/json"})
        _local.s = s
    return s


def call(method, url, want, **kw):
    r = session().request(method, url, timeout=300, **kw)
    if r.status_code != want:
        die(f"{method} {url}: HTTP {r.status_code} (expected {want}): {r.text[:400]}")
    return r


def fault_of(server_id):
    r = session().get(f"{COMPUTE}/v2.1/servers/{server_id}", timeout=60)
    s = r.json().get("server", {}) if r.ok else {}
    return f"server {server_id} is {s.get('status')}: fault {s.get('fault')}"


# ---------------------------------------------------------------- set-up

_auth = requests.Session()
_auth.trust_env = False
r = _auth.post(f"{IDENTITY}/v3/auth/tokens", json={"auth": {
    "identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "domain": {"name": "Default"}, "password": "admin_pass"}}},
    "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}},
    timeout=60)
if r.status_code != 201:
    die(f"token issue: HTTP {r.status_code} {r.text[:300]}")
TOKEN = r.headers["X-Subject-Token"]
PROJECT = r.json()["token"]["project"]["id"]

mem_idle = memory()

# quotas off for the admin project (the configuration says so too)
call("PUT", f"{COMPUTE}/v2.1/os-quota-sets/{PROJECT}", 200,
     json={"quota_set": {"instances": -1, "cores": -1, "ram": -1}})
call("PUT", f"{NETWORK}/v2.0/quotas/{PROJECT}", 200, json={"quota": {"port": -1}})

# one small public raw image
img = call("POST", f"{IMAGE}/v2/images", 201, json={
    "name": "bench-image", "disk_format": "raw", "container_format": "bare",
    "visibility": "public"}).json()
call("PUT", f"{IMAGE}/v2/images/{img['id']}/file", 204, data=os.urandom(4096),
     headers={"Content-Type": "application/octet-stream"})
if call("GET", f"{IMAGE}/v2/images/{img['id']}", 200).json()["status"] != "active":
    die("the image is not active after its upload")
IMAGE_ID = img["id"]

# one network with a /16 subnet
net = call("POST", f"{NETWORK}/v2.0/networks", 201,
           json={"network": {"name": "bench-net"}}).json()["network"]
call("POST", f"{NETWORK}/v2.0/subnets", 201, json={"subnet": {
    "network_id": net["id"], "ip_version": 4, "cidr": "10.64.0.0/16",
    "enable_dhcp": False, "name": "bench-subnet"}})
NET_ID = net["id"]

# the fake hypervisor is up and big enough
deadline = time.monotonic() + 60
while True:
    hyps = call("GET", f"{COMPUTE}/v2.1/os-hypervisors/detail", 200).json()["hypervisors"]
    up = [h for h in hyps if h.get("state") == "up" and h.get("status") == "enabled"]
    if up:
        break
    if time.monotonic() > deadline:
        die(f"no compute host up after 60 s: {hyps}")
    time.sleep(0.2)
log("hypervisor %s: %d vCPUs, %d MB, %d GB (fake driver)" % (
    up[0]["hypervisor_hostname"], up[0]["vcpus"], up[0]["memory_mb"], up[0]["local_gb"]))


def server_body(name, count=None):
    s = {"name": name, "imageRef": IMAGE_ID, "flavorRef": "1",
         "networks": [{"uuid": NET_ID}]}
    if count is not None:
        s["min_count"] = count
        s["max_count"] = count
    return {"server": s}


# ---------------------------------------------------------------- 1. concurrent boots

log(f"{CONCURRENT} concurrent creates ...")
post_lat, active_lat = [], []
lat_lock = threading.Lock()
barrier = threading.Barrier(CONCURRENT + 1)


def boot(i):
    session()  # connect outside the timing
    barrier.wait()
    t0 = time.perf_counter()
    r = session().post(f"{COMPUTE}/v2.1/servers", json=server_body(f"bench-c{i}"),
                       timeout=300)
    t_post = time.perf_counter() - t0
    if r.status_code != 202:
        die(f"POST /v2.1/servers: HTTP {r.status_code}: {r.text[:400]}")
    sid = r.json()["server"]["id"]
    while True:
        g = session().get(f"{COMPUTE}/v2.1/servers/{sid}", timeout=300)
        if g.status_code != 200:
            die(f"GET /v2.1/servers/{sid}: HTTP {g.status_code}: {g.text[:400]}")
        status = g.json()["server"]["status"]
        if status == "ACTIVE":
            break
        if status != "BUILD":
            die(f"server {sid} went {status}: fault {g.json()['server'].get('fault')}")
        if time.perf_counter() - t0 > ACTIVE_TIMEOUT:
            die(f"server {sid} not ACTIVE after {ACTIVE_TIMEOUT:.0f} s")
        time.sleep(POLL)
    t_active = time.perf_counter() - t0
    with lat_lock:
        post_lat.append(t_post)
        active_lat.append(t_active)


threads = [threading.Thread(target=boot, args=(i,)) for i in range(CONCURRENT)]
for t in threads:
    t.start()
barrier.wait()
t_batch = time.perf_counter()
for t in threads:
    t.join()
batch_wall = time.perf_counter() - t_batch
if len(active_lat) != CONCURRENT:
    die(f"only {len(active_lat)} of {CONCURRENT} servers became ACTIVE")
log(f"{CONCURRENT} servers ACTIVE in {batch_wall:.2f} s")

# ---------------------------------------------------------------- 2. fill

def count(status):
    """The ids of the servers in `status`, every page (an answer holds at
    most Nova's max_limit, 1,000)."""
    ids, url = [], f"{COMPUTE}/v2.1/servers?status={status}"
    while url:
        r = call("GET", url, 200).json()
        ids.extend(s["id"] for s in r["servers"])
        nxt = [l["href"] for l in r.get("servers_links", []) if l.get("rel") == "next"]
        url = None
        if nxt:
            u = urlsplit(nxt[0])  # stay on 127.0.0.1 whatever the link says
            url = f"{COMPUTE}{u.path}?{u.query}"
    return ids


rest = TOTAL - CONCURRENT
fill_post_wall = fill_wall = 0.0


def wait_batch(reservation):
    """Poll a batch (by reservation id) until none of it is BUILD."""
    deadline = time.perf_counter() + ACTIVE_TIMEOUT
    while True:
        r = call("GET", f"{COMPUTE}/v2.1/servers/detail?reservation_id={reservation}", 200)
        servers = r.json()["servers"]
        for sv in servers:
            if sv["status"] not in ("BUILD", "ACTIVE"):
                die(f"server {sv['id']} went {sv['status']}: fault {sv.get('fault')}")
        if servers and all(sv["status"] == "ACTIVE" for sv in servers):
            return
        if time.perf_counter() > deadline:
            die(f"batch {reservation} not ACTIVE after {ACTIVE_TIMEOUT:.0f} s")
        time.sleep(0.25)


if rest > 0:
    log(f"filling up to {TOTAL} servers ({BATCH} per request, {FILL_CONCURRENCY} "
        "requests at once, " + ("each waiting for its batch to be ACTIVE)"
                                if FILL_WAIT else "not waiting for ACTIVE)") + " ...")
    sizes = [BATCH] * (rest // BATCH) + ([rest % BATCH] if rest % BATCH else [])
    todo = iter(enumerate(sizes))
    todo_lock = threading.Lock()
    fill_lat, done = [], []

    def filler():
        while True:
            with todo_lock:
                job = next(todo, None)
            if job is None:
                return
            n, size = job
            body = server_body(f"bench-f{n}", size)
            body["server"]["return_reservation_id"] = True
            t1 = time.perf_counter()
            r = call("POST", f"{COMPUTE}/v2.1/servers", 202, json=body)
            with todo_lock:
                fill_lat.append(time.perf_counter() - t1)
            if FILL_WAIT:
                wait_batch(r.json()["reservation_id"])
            with todo_lock:
                done.append(size)
                if len(done) % 10 == 0 and len(done) < len(sizes):
                    log(f"  {len(done)}/{len(sizes)} batches "
                        + ("ACTIVE" if FILL_WAIT else "answered")
                        + f" ({time.perf_counter() - t0:.0f} s)")

    t0 = time.perf_counter()
    threads = [threading.Thread(target=filler) for _ in range(FILL_CONCURRENCY)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    fill_post_wall = time.perf_counter() - t0
    log(f"{len(sizes)} create requests answered in {fill_post_wall:.1f} s; "
        "waiting until none is BUILD ...")
    last = None
    wait_until = time.perf_counter() + ACTIVE_TIMEOUT
    while True:
        errors = count("ERROR")
        if errors:
            die(f"{len(errors)} servers in ERROR; first: " + fault_of(errors[0]))
        building = len(count("BUILD"))
        if building == 0:
            break
        if time.perf_counter() > wait_until:
            die(f"{building} servers still BUILD {ACTIVE_TIMEOUT:.0f} s after the last create")
        if building != last:
            log(f"  {building} BUILD")
            last = building
        time.sleep(0.5)
    fill_wall = time.perf_counter() - t0
    log(f"{rest} servers ACTIVE in {fill_wall:.1f} s ({rest / fill_wall:.0f} servers/s)")

active = count("ACTIVE")
if len(active) != TOTAL:
    die(f"{len(active)} servers ACTIVE, expected {TOTAL}")

# ---------------------------------------------------------------- 3. lists

def cpu_seconds():
    """The server's user + system CPU time so far."""
    with open(f"/proc/{SERVER_PID}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def settle():
    """Wait (up to SETTLE_MAX s) until the server is idle: under 5% of a
    core over 5 s, so that no background work (a periodic task, a restart's
    power-state sync of every guest) shares the CPUs with the timed lists."""
    if not SERVER_PID:
        return
    t0 = time.perf_counter()
    prev = cpu_seconds()
    busy = 0.0
    while time.perf_counter() - t0 < SETTLE_MAX:
        time.sleep(5)
        now = cpu_seconds()
        if now - prev < 0.25:
            break
        busy += now - prev
        prev = now
    log(f"server idle {time.perf_counter() - t0:.0f} s after the fill "
        f"({busy:.0f} s of CPU in background work meanwhile)")


settle()

def walk(path, limit):
    """GET the first page, or every page by the servers_links next marker."""
    url = f"{COMPUTE}{path}" + (f"?limit={limit}" if limit else "")
    servers, pages, size = [], 0, 0
    while url:
        r = call("GET", url, 200)
        body = r.json()
        servers.extend(body["servers"])
        pages += 1
        size += len(r.content)
        nxt = [l["href"] for l in body.get("servers_links", []) if l.get("rel") == "next"]
        url = None
        if nxt:
            u = urlsplit(nxt[0])  # stay on 127.0.0.1 whatever the link says
            url = f"{COMPUTE}{u.path}?{u.query}"
    return servers, pages, size


lists = []
default_page = None
for path in ("/v2.1/servers", "/v2.1/servers/detail"):
    for limit in (None, PAGE_LIMIT):
        for all_pages in (False, True):
            times = []
            # A first page is cheap: enough runs for a p95 that means something.
            for _ in range(RUNS if all_pages else max(RUNS, 20)):
                t0 = time.perf_counter()
                if all_pages:
                    servers, pages, size = walk(path, limit)
                else:
                    url = f"{COMPUTE}{path}" + (f"?limit={limit}" if limit else "")
                    r = call("GET", url, 200)
                    servers, pages, size = r.json()["servers"], 1, len(r.content)
                times.append(time.perf_counter() - t0)
                ids = {s["id"] for s in servers}
                if len(ids) != len(servers):
                    die(f"{path} limit={limit}: duplicate servers across pages")
                if all_pages or limit is None:
                    want = TOTAL if all_pages else None
                else:
                    want = min(limit, TOTAL)
                if limit is None and not all_pages:
                    default_page = len(servers)
                elif len(servers) != want:
                    die(f"{path} limit={limit} all_pages={all_pages}: "
                        f"{len(servers)} servers, expected {want}")
                if path.endswith("detail") and any(s["status"] != "ACTIVE" for s in servers):
                    die(f"{path}: a server is not ACTIVE")
            q = f"?limit={limit}" if limit else ""
            label = f"GET {path}{q} " + ("all pages" if all_pages else "first page")
            lists.append((label, times, len(servers), pages, size))

# Name filters: a regex that selects one server, and one that would
# backtrack exponentially in a backtracking matcher (linear in `regex`).
name_filters = []
for query in (f"name=^bench-c{CONCURRENT // 2}$", "name=" + ".*" * 6 + "x"):
    for path in ("/v2.1/servers", "/v2.1/servers/detail"):
        times = []
        for _ in range(max(RUNS, 20)):
            t0 = time.perf_counter()
            r = call("GET", f"{COMPUTE}{path}?{query}&limit={PAGE_LIMIT}", 200)
            times.append(time.perf_counter() - t0)
        name_filters.append((f"GET {path}?{query}", times, len(r.json()["servers"])))

mem_full = memory()
# The server returns freed heap to the system every few seconds: what it
# holds once idle is the figure the target is about.
time.sleep(IDLE_WAIT)
mem_settled = memory()

# ---------------------------------------------------------------- report

print()
print(f"Ferrostack compute benchmark  ({os.cpu_count()} CPUs shared by the "
      "Python clients and the server; fake compute driver)")
print(f"binary: {os.environ.get('BIN_NAME', '?')}")
print()
print(f"{CONCURRENT} concurrent creates (m1.tiny, one port each), 1 request each:")
print("%-34s %9s %9s %9s %9s" % ("", "p50 ms", "p90 ms", "p99 ms", "max ms"))
for label, lat in (("POST /v2.1/servers -> 202", post_lat),
                   ("POST -> status ACTIVE", active_lat)):
    print("%-34s %9s %9s %9s %9s" % (label, ms(statistics.median(lat)),
                                     ms(pct(lat, 90)), ms(pct(lat, 99)), ms(max(lat))))
print(f"failures: 0; whole batch ACTIVE in {batch_wall:.2f} s "
      f"({batch_wall / CONCURRENT * 1000:.1f} ms of wall time per server)")
if rest > 0:
    print(f"fill: {rest} more in {len(sizes)} requests of <= {BATCH} "
          f"({FILL_CONCURRENCY} at once{', each waiting for ACTIVE' if FILL_WAIT else ''}; per request p50 {ms(statistics.median(fill_lat))} ms, "
          f"max {ms(max(fill_lat))} ms): answered in {fill_post_wall:.1f} s, all ACTIVE "
          f"after {fill_wall:.1f} s ({fill_wall / rest * 1000:.1f} ms per server)")
print()
print(f"with {TOTAL} ACTIVE servers, {RUNS} runs each (API default page: "
      f"{default_page} servers; Nova's max_limit would be {NOVA_MAX_LIMIT}):")
print("%-52s %7s %6s %9s %9s %9s %10s" % ("list", "servers", "pages", "p50 ms", "p95 ms",
                                            "p99 ms", "body KiB"))
for label, times, n, pages, size in lists:
    print("%-52s %7d %6d %9s %9s %9s %10.0f" % (
        label, n, pages, ms(statistics.median(times)), ms(pct(times, 95)),
        ms(pct(times, 99)), size / 1024.0))
print()
print(f"name filters (regex, ?limit={PAGE_LIMIT}):")
for label, times, n in name_filters:
    print("%-52s %7d %6s %9s %9s %9s" % (label, n, "", ms(statistics.median(times)),
                                         ms(pct(times, 95)), ms(pct(times, 99))))
print()
print("server memory (MiB)        VmRSS    VmHWM")
for label, m in (("idle at start", mem_idle), (f"after {TOTAL} servers", mem_full),
                 (f"idle {IDLE_WAIT} s later", mem_settled)):
    print("%-24s %9.1f %8.1f" % (label, m.get("VmRSS", float("nan")),
                                 m.get("VmHWM", float("nan"))))
print()


def p95_of(label):
    return next(pct(t, 95) for lab, t, *_ in lists if lab == label)


checks = [
    (f"GET /v2.1/servers?limit={PAGE_LIMIT} first page, p95", p95_of(
        f"GET /v2.1/servers?limit={PAGE_LIMIT} first page") * 1000, 100, "ms"),
    ("GET /v2.1/servers default page, p95", p95_of("GET /v2.1/servers first page") * 1000,
     100, "ms"),
    (f"GET /v2.1/servers/detail?limit={PAGE_LIMIT} first page, p95", p95_of(
        f"GET /v2.1/servers/detail?limit={PAGE_LIMIT} first page") * 1000, 300, "ms"),
    ("name filter, worst p95", max(pct(t, 95) for _, t, _ in name_filters) * 1000, 100, "ms"),
    (f"server VmRSS idle with {TOTAL} servers", mem_settled.get("VmRSS", float("nan")), 150,
     "MiB"),
]
print(f"targets (issue 12, with {TOTAL} servers):")
for label, value, limit, unit in checks:
    verdict = "ok" if value <= limit else "MISSED"
    print("  %-58s %8.1f %-3s (target <= %d) %s" % (label, value, unit, limit, verdict))
print()
print("OpenStack, published: 4-13 s API -> ACTIVE, ~4 s to list ~5,000 servers")
sys.stdout.flush()
