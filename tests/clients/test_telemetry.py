"""Metering compatibility tests.

The seed's `ceilometer` CLI (python-ceilometerclient 2.9.0, Ceilometer v2
on 127.0.0.1:8777) and today's `openstack metric` (gnocchiclient 7.2,
Gnocchi v1 on 127.0.0.1:8041) against the all-in-one: what the image,
volume and network services do becomes meters; samples, statistics,
project scoping and Ceilometer's errors; archive policies, metrics and
measures, resources.

Run:  pytest -v tests/clients/test_telemetry.py
"""

from __future__ import annotations

import json
import os
import time
from datetime import datetime, timedelta, timezone

import requests

from conftest import field, run_legacy_cli, unique

CEILOMETER = "http://127.0.0.1:8777"
GNOCCHI = "http://127.0.0.1:8041"


def ceilometer(fs, *args, cloud="ferrostack"):
    return run_legacy_cli(fs, "ceilometer", *args, cloud=cloud)


def table(out: str) -> list[dict]:
    """Rows of a prettytable as dicts."""
    lines = [l for l in out.splitlines() if l.startswith("|")]
    if not lines:
        return []
    head = [h.strip() for h in lines[0].strip("|").split("|")]
    return [dict(zip(head, (c.strip() for c in l.strip("|").split("|")))) for l in lines[1:]]


def wait_for(pred, what: str, timeout: float = 30):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(0.5)
    raise AssertionError(f"{what} never happened (last: {last})")


def test_service_actions_become_meters_scoped_by_project(ferrostack, tmp_path):
    img = tmp_path / "disk.raw"
    img.write_bytes(os.urandom(65536))
    image = ferrostack.os_ok("image", "create", "--disk-format", "raw", "--container-format",
                             "bare", "--file", str(img), unique("metered"))
    image_id = field(image, "id")
    vol = ferrostack.os_ok("volume", "create", "--size", "1", unique("metered"),
                           cloud="ferrostack-demo")
    vol_id = field(vol, "id")
    net = ferrostack.os_ok("network", "create", unique("metered"), cloud="ferrostack-demo")
    net_id = field(net, "id")

    def admin_meters():
        res = ceilometer(ferrostack, "meter-list")
        assert res.rc == 0, res.describe()
        rows = table(res.stdout)
        have = {(r["Name"], r["Resource ID"]) for r in rows}
        want = {("image.size", image_id), ("volume.size", vol_id), ("network", net_id)}
        return rows if want <= have else None

    rows = wait_for(admin_meters, "image, volume and network meters")
    size = next(r for r in rows if r["Name"] == "image.size" and r["Resource ID"] == image_id)
    assert size["Type"] == "gauge" and size["Unit"] == "B"

    # demo sees its volume and network, not admin's image.
    res = ceilometer(ferrostack, "meter-list", cloud="ferrostack-demo")
    assert res.rc == 0, res.describe()
    mine = {(r["Name"], r["Resource ID"]) for r in table(res.stdout)}
    assert ("volume.size", vol_id) in mine and ("network", net_id) in mine
    assert not any(rid == image_id for _, rid in mine), mine

    samples = ceilometer(ferrostack, "sample-list", "-m", "image.size", "-q", f"resource_id={image_id}")
    assert samples.rc == 0, samples.describe()
    assert any(r["Volume"] in ("65536.0", "65536") for r in table(samples.stdout)), samples.stdout

    # The same resources in Gnocchi.
    listed = ferrostack.os_ok("metric", "resource", "list", "--type", "image")
    assert any(field(r, "id") == image_id for r in listed), listed
    demo_listed = ferrostack.os_ok("metric", "resource", "list", cloud="ferrostack-demo")
    ids = {field(r, "id") for r in demo_listed}
    assert vol_id in ids and image_id not in ids


def test_statistics_and_ceilometer_errors(ferrostack):
    rid = unique("vm")
    start = datetime.now(timezone.utc).replace(second=0, microsecond=0) - timedelta(minutes=5)
    for i in range(5):
        ts = (start + timedelta(minutes=i, seconds=10)).strftime("%Y-%m-%dT%H:%M:%S")
        res = ceilometer(ferrostack, "sample-create", "-r", rid, "-m", "cpu", "--meter-type",
                         "cumulative", "--meter-unit", "ns", "--sample-volume",
                         str((i + 1) * 1_000_000_000), "--timestamp", ts, cloud="ferrostack-demo")
        assert res.rc == 0, res.describe()
    res = ceilometer(ferrostack, "statistics", "-m", "cpu", "-p", "60", "-q", f"resource_id={rid}",
                     cloud="ferrostack-demo")
    assert res.rc == 0, res.describe()
    rows = table(res.stdout)
    assert len(rows) == 5, res.stdout
    maxima = [float(r["Max"]) for r in rows]
    assert maxima == sorted(maxima) and maxima[-1] == 5e9, rows
    assert all(r["Period"] == "60" and r["Count"] == "1" for r in rows), rows

    res = ceilometer(ferrostack, "statistics", "-m", "cpu", "-q", f"resource_id={rid}",
                     "-g", "resource_id", cloud="ferrostack-demo")
    assert res.rc == 0, res.describe()
    (row,) = table(res.stdout)
    assert row["Count"] == "5" and float(row["Sum"]) == 15e9, row

    # Unknown meter: 404 (the client words it "Samples not found"), with
    # Ceilometer's body; malformed query: 400.
    res = ceilometer(ferrostack, "statistics", "-m", "no.such.meter")
    assert res.rc != 0 and "Samples not found: no.such.meter" in res.stderr, res.describe()
    token = ferrostack.admin_token()
    r = requests.get(f"{CEILOMETER}/v2/meters/no.such.meter/statistics",
                     headers={"X-Auth-Token": token}, timeout=30)
    assert r.status_code == 404
    assert r.json()["error_message"]["faultstring"] == "Meter no.such.meter Not Found"
    r = requests.get(f"{CEILOMETER}/v2/meters/cpu?q.field=resource_id&q.op=like&q.value=x",
                     headers={"X-Auth-Token": token}, timeout=30)
    assert r.status_code == 400
    assert r.json()["error_message"]["faultstring"].startswith(
        "Invalid input for field/attribute op. Value: 'like'."), r.text
    r = requests.get(f"{CEILOMETER}/v2/samples?q.field=timestamp&q.op=gt&q.value=yesterday",
                     headers={"X-Auth-Token": token}, timeout=30)
    assert r.status_code == 400 and "invalid timestamp format" in r.text, r.text


def test_gnocchi_archive_policies_metrics_measures(ferrostack):
    policies = {field(p, "name"): p for p in ferrostack.os_ok("metric", "archive-policy", "list")}
    assert {"low", "medium", "high"} <= set(policies)
    low = ferrostack.os_ok("metric", "archive-policy", "show", "low")
    assert "granularity: 0:05:00" in str(field(low, "definition")) or \
        "0:05:00" in json.dumps(field(low, "definition")), low

    m = ferrostack.os_ok("metric", "create", "--archive-policy-name", "high", unique("temp"),
                         cloud="ferrostack-demo")
    mid = field(m, "id")
    # Three measures in one minute (its start: no minute boundary between).
    now = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    args = []
    for i, v in enumerate((10, 20, 60)):
        args += ["-m", f"{(now + timedelta(seconds=i)).isoformat()}@{v}"]
    ferrostack.os_ok("metric", "measures", "add", *args, mid, cloud="ferrostack-demo",
                     fmt_json=False)
    shown = ferrostack.os_ok("metric", "measures", "show", "--granularity", "60", mid,
                             cloud="ferrostack-demo")
    assert [float(field(r, "value")) for r in shown] == [30.0], shown
    shown = ferrostack.os_ok("metric", "measures", "show", "--aggregation", "max", mid,
                             cloud="ferrostack-demo")
    assert max(float(field(r, "value")) for r in shown) == 60.0
    # Another project's user does not see it; admin does.
    res = ferrostack.openstack("metric", "show", mid, cloud="ferrostack-demo")
    assert res.rc == 0, res.describe()
    ferrostack.os_ok("metric", "delete", mid, cloud="ferrostack-demo", fmt_json=False)
    res = ferrostack.openstack("metric", "show", mid)
    assert res.rc != 0 and "does not exist" in res.stderr, res.describe()


def test_a_booted_server_is_metered_by_notifications_and_the_pollster(ferrostack, tmp_path):
    """The fake driver's figures: instance meters from compute's
    notifications, cpu/network from the host's pollster (every 2 s here)."""
    img = tmp_path / "boot.raw"
    img.write_bytes(b"\0" * 65536)
    image = ferrostack.os_ok("image", "create", "--public", "--disk-format", "raw",
                             "--container-format", "bare", "--file", str(img), unique("boot"))
    net = unique("metered-net")
    ferrostack.os_ok("network", "create", net, cloud="ferrostack-demo")
    ferrostack.os_ok("subnet", "create", "--network", net, "--subnet-range", "10.78.0.0/24",
                     unique("metered-sub"), cloud="ferrostack-demo")
    server = ferrostack.os_ok("server", "create", "--image", field(image, "id"), "--flavor",
                              "m1.tiny", "--network", net, "--wait", unique("metered-vm"),
                              cloud="ferrostack-demo")
    vm = field(server, "id")

    def cpu_stats():
        res = ceilometer(ferrostack, "statistics", "-m", "cpu", "-p", "2", "-q",
                         f"resource_id={vm}", cloud="ferrostack-demo")
        rows = table(res.stdout) if res.rc == 0 else []
        return rows if len(rows) >= 2 else None

    rows = wait_for(cpu_stats, "two polls of the guest's cpu", timeout=60)
    maxima = [float(r["Max"]) for r in rows]
    assert maxima == sorted(maxima) and maxima[-1] > maxima[0], rows

    res = ceilometer(ferrostack, "meter-list", "-q", f"resource_id={vm}", cloud="ferrostack-demo")
    names = {r["Name"] for r in table(res.stdout)}
    assert {"instance", "vcpus", "memory", "disk.root.size", "cpu", "memory.usage"} <= names, names
    res = ceilometer(ferrostack, "meter-list", cloud="ferrostack-demo")
    incoming = [r for r in table(res.stdout)
                if r["Name"] == "network.incoming.bytes" and r["Resource ID"].startswith(vm)]
    assert incoming, res.stdout

    measures = ferrostack.os_ok("metric", "measures", "show", "--resource-id", vm, "cpu",
                                cloud="ferrostack-demo")
    assert measures and float(field(measures[-1], "value")) > 0, measures
    ferrostack.os_ok("server", "delete", "--wait", vm, cloud="ferrostack-demo", fmt_json=False)


def test_rates_derived_meters_and_aggregates(ferrostack, tmp_path):
    """Rates through the stock clients: the seed's derived meters
    (`cpu_util` in %, `*.rate` in B/s) from the pollster's cumulative
    counters, Gnocchi's `rate:mean` on the cumulative `cpu`, and
    `openstack metric aggregates` over a resource search."""
    img = tmp_path / "rate.raw"
    img.write_bytes(b"\0" * 65536)
    image = ferrostack.os_ok("image", "create", "--public", "--disk-format", "raw",
                             "--container-format", "bare", "--file", str(img), unique("rate"))
    net = unique("rate-net")
    ferrostack.os_ok("network", "create", net, cloud="ferrostack-demo")
    ferrostack.os_ok("subnet", "create", "--network", net, "--subnet-range", "10.79.0.0/24",
                     unique("rate-sub"), cloud="ferrostack-demo")
    vm = field(ferrostack.os_ok("server", "create", "--image", field(image, "id"), "--flavor",
                                "m1.tiny", "--network", net, "--wait", unique("rate-vm"),
                                cloud="ferrostack-demo"), "id")

    def util_samples():
        res = ceilometer(ferrostack, "sample-list", "-m", "cpu_util", "-q",
                         f"resource_id={vm}", cloud="ferrostack-demo")
        rows = table(res.stdout) if res.rc == 0 else []
        return rows if rows else None

    rows = wait_for(util_samples, "a cpu_util sample", timeout=60)
    assert all(r["Unit"] == "%" and r["Type"] == "gauge" for r in rows), rows
    assert all(0 < float(r["Volume"]) for r in rows), rows

    def incoming_rate():
        res = ceilometer(ferrostack, "meter-list", cloud="ferrostack-demo")
        return [r for r in table(res.stdout)
                if r["Name"] == "network.incoming.bytes.rate" and r["Resource ID"].startswith(vm)]

    rate_rows = wait_for(incoming_rate, "network.incoming.bytes.rate", timeout=30)
    assert rate_rows[0]["Unit"] == "B/s", rate_rows

    def cpu_rate():
        res = ferrostack.openstack("metric", "measures", "show", "--resource-id", vm, "cpu",
                                   "--aggregation", "rate:mean", cloud="ferrostack-demo")
        return res.json() if res.rc == 0 and res.stdout.strip() else None

    measures = wait_for(cpu_rate, "rate:mean of cpu", timeout=30)
    assert all(float(field(m, "value")) > 0 for m in measures), measures
    res = ferrostack.openstack("metric", "measures", "show", "--resource-id", vm, "cpu",
                               "--aggregation", "rate:max", cloud="ferrostack-demo",
                               fmt_json=False)
    assert res.rc != 0 and "rate:max" in res.stderr, res.describe()

    def aggregated():
        res = ferrostack.openstack(
            "metric", "aggregates", "--resource-type", "instance_network_interface",
            "(aggregate sum (metric network.incoming.bytes.rate mean))",
            f"instance_id={vm}", cloud="ferrostack-demo")
        assert res.rc == 0, res.describe()
        return res.json() or None

    rows = wait_for(aggregated, "aggregates over the guest's interfaces", timeout=30)
    assert all(r["name"] == "aggregated" and float(r["value"]) > 0 for r in rows), rows
    policy = ferrostack.os_ok("metric", "archive-policy", "show", "ceilometer-low-rate")
    assert "rate:mean" in str(field(policy, "aggregation_methods")), policy
    ferrostack.os_ok("server", "delete", "--wait", vm, cloud="ferrostack-demo", fmt_json=False)
