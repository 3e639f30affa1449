#!/usr/bin/env bash
# On-demand networking benchmark for the Ferrostack all-in-one (not a test).
#
#   cargo build --release && bench/network.sh
#
# Starts target/release/ferrostack on a fresh temp data dir and, on
# 127.0.0.1 only, against the Neutron API (port 9696):
#   1. creates a network with a /16 subnet;
#   2. POST /v2.0/ports (IP + MAC allocation, default security group) at
#      concurrency 1 (C1_PORTS, default 500) and 16 (C16_PORTS, default
#      2000): p50 / p90 / p99 / max latency and requests per second;
#   3. fills the network up to TOTAL_PORTS (default 10000) ports through
#      the API, then times listing them: GET /v2.0/ports (everything),
#      GET /v2.0/ports?network_id=..&fields=id, first pages of 100 and
#      1,000 (?limit=N&sort_key=id) and a filter matching one port
#      (?fixed_ips=ip_address=...), LIST_RUNS times each (default 20),
#      and the server's RSS just after the lists, its peak, and idle
#      IDLE_WAIT seconds later (default 10; the server returns freed heap
#      to the system every 5 s), beside the targets (a page of 1,000 p95
#      <= 100 ms, idle RSS <= 150 MiB).
# Every request is checked (201 / 200 and the expected count); a failure
# aborts the run. Clients are Python threads with one keep-alive HTTP
# connection each; client and server share the machine's CPUs, so the
# figures are a lower bound for the server.
# Published Neutron figure for comparison: port create p50 370 ms; the
# issue's target is p50 under 5 ms.
#
# Environment:
#   FERROSTACK_BIN   server binary   (default: <repo>/target/release/ferrostack)
#   C1_PORTS C16_PORTS TOTAL_PORTS LIST_RUNS IDLE_WAIT   (see above)
#   BENCH_DIR        where the data dir goes (default: $TMPDIR or /tmp)
#   KEEP_DATA=1      keep the work dir and server log
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${FERROSTACK_BIN:-$REPO/target/release/ferrostack}"
C1_PORTS="${C1_PORTS:-500}"
C16_PORTS="${C16_PORTS:-2000}"
TOTAL_PORTS="${TOTAL_PORTS:-10000}"
LIST_RUNS="${LIST_RUNS:-20}"
IDLE_WAIT="${IDLE_WAIT:-10}"
HOST=127.0.0.1
ID_URL="http://$HOST:5000"
NET_URL="http://$HOST:9696"
CURL=(curl -sS --noproxy '*')

die() { echo "bench/network.sh: $*" >&2; exit 1; }

[[ -x "$BIN" ]] || die "$BIN not found; build it first: cargo build --release"
command -v curl >/dev/null || die "curl is required"
command -v python3 >/dev/null || die "python3 is required"
(( TOTAL_PORTS >= C1_PORTS + C16_PORTS )) || die "TOTAL_PORTS must be >= C1_PORTS + C16_PORTS"
(( TOTAL_PORTS <= 65000 )) || die "TOTAL_PORTS must fit a /16"
for port in 5000 35357 9292 9696; do
    if (exec 3<>"/dev/tcp/$HOST/$port") 2>/dev/null; then
        die "$HOST:$port is already in use; stop the running server first"
    fi
done

WORK="$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/tmp}}/ferrostack-bench-network.XXXXXX")"
DATA="$WORK/data"
LOG="$WORK/server.log"
mkdir -p "$DATA"
SERVER_PID=""

cleanup() {
    local rc=$?
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 1 100); do
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    if [[ "${KEEP_DATA:-0}" == 1 || $rc -ne 0 ]]; then
        echo "work dir and server log kept in $WORK" >&2
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "starting $BIN all-in-one (data: $DATA)"
"$BIN" all-in-one --data-dir "$DATA" >"$LOG" 2>&1 &
SERVER_PID=$!
for i in $(seq 1 240); do
    if "${CURL[@]}" -f -o /dev/null "$ID_URL/v3" 2>/dev/null \
        && "${CURL[@]}" -f -o /dev/null "$NET_URL/" 2>/dev/null; then
        break
    fi
    kill -0 "$SERVER_PID" 2>/dev/null || { tail -n 40 "$LOG" >&2; die "server exited during startup"; }
    sleep 0.25
    [[ $i -eq 240 ]] && { tail -n 40 "$LOG" >&2; die "server not ready after 60s"; }
done
echo "server ready (pid $SERVER_PID)"

AUTH_BODY='{"auth":{"identity":{"methods":["password"],"password":{"user":{"name":"admin","domain":{"name":"Default"},"password":"admin_pass"}}},"scope":{"project":{"name":"admin","domain":{"name":"Default"}}}}}'
hdrs="$WORK/token.hdr"
code=$("${CURL[@]}" -o /dev/null -D "$hdrs" -w '%{http_code}' \
    -H 'Content-Type: application/json' -d "$AUTH_BODY" "$ID_URL/v3/auth/tokens")
[[ "$code" == 201 ]] || die "token issue returned HTTP $code"
TOKEN=$(tr -d '\r' <"$hdrs" | awk -F': ' 'tolower($1)=="x-subject-token" {print $2}')
[[ -n "$TOKEN" ]] || die "no X-Subject-Token"

export TOKEN C1_PORTS C16_PORTS TOTAL_PORTS LIST_RUNS IDLE_WAIT
export BIN_NAME="$BIN" SERVER_PID
python3 - <<'PY'
import http.client, json, os, statistics, sys, threading, time

HOST, PORT = "127.0.0.1", 9696
TOKEN = os.environ["TOKEN"]
C1 = int(os.environ["C1_PORTS"])
C16 = int(os.environ["C16_PORTS"])
TOTAL = int(os.environ["TOTAL_PORTS"])
RUNS = int(os.environ["LIST_RUNS"])
IDLE_WAIT = int(os.environ["IDLE_WAIT"])
HDRS = {"X-Auth-Token": TOKEN, "Content-Type": "application/json",
        "Accept": "application/json"}


def die(msg):
    print("bench/network.sh: " + msg, file=sys.stderr)
    sys.exit(1)


class Client:
    def __init__(self):
        self.conn = http.client.HTTPConnection(HOST, PORT, timeout=120)

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        for attempt in (1, 2):
            try:
                self.conn.request(method, path, body=data, headers=HDRS)
                resp = self.conn.getresponse()
                raw = resp.read()
                return resp.status, raw
            except (http.client.HTTPException, ConnectionError):
                if attempt == 2:
                    raise
                self.conn.close()
                self.conn = http.client.HTTPConnection(HOST, PORT, timeout=120)


def pct(values, p):
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(p / 100.0 * len(s) + 0.5)) - 1))
    return s[k]


def fmt_ms(x):
    return "%.2f" % (x * 1000)


c = Client()
st, raw = c.call("POST", "/v2.0/networks", {"network": {"name": "bench"}})
if st != 201:
    die("POST /v2.0/networks: HTTP %s %s" % (st, raw[:300]))
net_id = json.loads(raw)["network"]["id"]
st, raw = c.call("POST", "/v2.0/subnets", {"subnet": {
    "network_id": net_id, "ip_version": 4, "cidr": "10.200.0.0/16",
    "enable_dhcp": False}})
if st != 201:
    die("POST /v2.0/subnets: HTTP %s %s" % (st, raw[:300]))
# the default quota (500 ports) would stop us: lift it for this project
st, raw = c.call("GET", "/v2.0/networks/" + net_id)
project = json.loads(raw)["network"]["project_id"]
st, raw = c.call("PUT", "/v2.0/quotas/" + project,
                 {"quota": {"port": -1, "network": -1, "subnet": -1}})
if st != 200:
    die("PUT /v2.0/quotas/%s: HTTP %s %s" % (project, st, raw[:300]))

created = []
created_lock = threading.Lock()


def create_ports(n, concurrency):
    """n port creates over `concurrency` threads; returns (latencies, wall)."""
    lat = []
    errors = []
    lock = threading.Lock()
    counter = iter(range(n))

    def worker():
        cl = Client()
        mine = []
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                break
            t0 = time.perf_counter()
            st, raw = cl.call("POST", "/v2.0/ports",
                              {"port": {"network_id": net_id,
                                        "name": "bench-%d" % i}})
            dt = time.perf_counter() - t0
            if st != 201:
                errors.append("HTTP %s %s" % (st, raw[:200]))
                break
            p = json.loads(raw)["port"]
            mine.append(dt)
            with created_lock:
                created.append(p)
        with lock:
            lat.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    if errors:
        die("port create failed: " + errors[0])
    return lat, wall


results = []
for n, conc in ((C1, 1), (C16, 16)):
    lat, wall = create_ports(n, conc)
    results.append((conc, n, lat, wall))
    print("  created %d ports at concurrency %d in %.1fs" % (n, conc, wall),
          flush=True)

rest = TOTAL - len(created)
if rest > 0:
    print("  filling up to %d ports ..." % TOTAL, flush=True)
    _, wall = create_ports(rest, 16)
    print("  created %d more in %.1fs" % (rest, wall), flush=True)

ips = {p["fixed_ips"][0]["ip_address"] for p in created}
macs = {p["mac_address"] for p in created}
if len(ips) != len(created) or len(macs) != len(created):
    die("duplicate IP or MAC among %d ports (%d IPs, %d MACs)"
        % (len(created), len(ips), len(macs)))

probe = created[len(created) // 2]["fixed_ips"][0]["ip_address"]
lists = [
    ("GET /v2.0/ports (all)", "/v2.0/ports", TOTAL),
    ("GET /v2.0/ports?network_id=..&fields=id",
     "/v2.0/ports?network_id=%s&fields=id" % net_id, TOTAL),
    ("GET /v2.0/ports?limit=100&sort_key=id",
     "/v2.0/ports?limit=100&sort_key=id&sort_dir=asc", 100),
    ("GET /v2.0/ports?limit=1000&sort_key=id",
     "/v2.0/ports?limit=1000&sort_key=id&sort_dir=asc", 1000),
    ("GET /v2.0/ports?fixed_ips=ip_address=X",
     "/v2.0/ports?fixed_ips=ip_address%%3D%s" % probe, 1),
]
list_results = []
for label, path, want in lists:
    times, size = [], 0
    for _ in range(RUNS):
        t0 = time.perf_counter()
        st, raw = c.call("GET", path)
        dt = time.perf_counter() - t0
        if st != 200:
            die("%s: HTTP %s %s" % (path, st, raw[:200]))
        got = len(json.loads(raw)["ports"])
        # the whole-table lists may also hold ports of other owners
        if (want == TOTAL and got < want) or (want != TOTAL and got != want):
            die("%s returned %d ports, expected %d" % (path, got, want))
        times.append(dt)
        size = len(raw)
    list_results.append((label, times, size))

print()
print("Ferrostack networking benchmark  (%d CPUs shared by the Python "
      "clients and the server)" % os.cpu_count())
print("binary: %s" % os.environ["BIN_NAME"])
print()
print("%-28s %7s %9s %9s %9s %9s %10s" % (
    "POST /v2.0/ports", "ports", "p50 ms", "p90 ms", "p99 ms", "max ms",
    "ports/s"))
for conc, n, lat, wall in results:
    print("%-28s %7d %9s %9s %9s %9s %10.0f" % (
        "concurrency %d" % conc, n, fmt_ms(statistics.median(lat)),
        fmt_ms(pct(lat, 90)), fmt_ms(pct(lat, 99)), fmt_ms(max(lat)),
        n / wall))
print("(Neutron, published: p50 370 ms; target: p50 < 5 ms)")
print()
print("with %d ports on one network, %d runs each:" % (len(created), RUNS))
print("%-42s %9s %9s %9s %9s %10s" % ("list", "p50 ms", "p95 ms", "p99 ms", "max ms",
                                       "body KiB"))
for label, times, size in list_results:
    print("%-42s %9s %9s %9s %9s %10.0f" % (
        label, fmt_ms(statistics.median(times)), fmt_ms(pct(times, 95)),
        fmt_ms(pct(times, 99)), fmt_ms(max(times)), size / 1024.0))

pid = os.environ.get("SERVER_PID")


def server_memory():
    """VmRSS and VmHWM of the server, in MiB."""
    out = {}
    try:
        with open("/proc/%s/status" % pid) as f:
            for line in f:
                if line.startswith(("VmRSS", "VmHWM")):
                    out[line.split(":")[0]] = int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return out


# Right after the lists, and idle: the server returns freed heap to the
# system every few seconds, so the second figure is what it holds.
busy = server_memory()
time.sleep(IDLE_WAIT)
memory = server_memory()
print("server VmRSS just after the lists %7.1f MiB, peak (VmHWM) %7.1f MiB"
      % (busy.get("VmRSS", float("nan")), busy.get("VmHWM", float("nan"))))
print("server VmRSS idle %2d s later      %7.1f MiB" % (IDLE_WAIT, memory.get("VmRSS", float("nan"))))

page = next(t for label, t, _ in list_results if "limit=1000" in label)
print()
print("targets (issue 12, with %d ports):" % len(created))
for label, value, limit, unit in (
        ("GET /v2.0/ports?limit=1000 p95", pct(page, 95) * 1000, 100, "ms"),
        ("server VmRSS idle", memory.get("VmRSS", float("nan")), 150, "MiB")):
    print("  %-34s %8.1f %-3s (target <= %d) %s"
          % (label, value, unit, limit, "ok" if value <= limit else "MISSED"))
PY
