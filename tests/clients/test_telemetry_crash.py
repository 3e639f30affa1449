"""kill -9 of the all-in-one while samples stream in: after the restart
every sample whose POST was answered is there, none is there twice, and
the rollups agree with the raw samples (a batch is stored whole or not at
all).

Run:  pytest -v tests/clients/test_telemetry_crash.py
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone

import pytest
import requests
from own_cloud import OwnCloud

CLOUD_BASE = 22000


def token(cloud):
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "domain": {"id": "default"}, "password": "admin_pass"}}},
        "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}}
    r = requests.post(f"{cloud.url('identity')}/v3/auth/tokens", json=body, timeout=30)
    return r.headers["X-Subject-Token"]


def test_kill_while_samples_arrive_loses_no_acknowledged_sample_and_counts_none_twice():
    cloud = OwnCloud(CLOUD_BASE, prefix="ferrostack-telemetry-crash-")
    cloud.start(ready="metering")
    metering = cloud.url("metering")
    acked: list[int] = []
    stop = threading.Event()
    start_ts = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
    try:
        tok = token(cloud)

        def post_stream():
            i = 0
            while not stop.is_set():
                ts = (start_ts + timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%S")
                body = [{"counter_name": "crash.test", "counter_type": "gauge",
                         "counter_unit": "x", "counter_volume": i, "resource_id": "r1",
                         "timestamp": ts}]
                try:
                    r = requests.post(f"{metering}/v2/meters/crash.test", json=body,
                                      headers={"X-Auth-Token": tok}, timeout=5)
                except requests.RequestException:
                    return
                if r.status_code == 200:
                    acked.append(i)
                i += 1

        t = threading.Thread(target=post_stream)
        t.start()
        time.sleep(3)
        cloud.kill()
        stop.set()
        t.join(10)
        assert len(acked) > 10, acked

        cloud.start(ready="metering")
        tok = token(cloud)
        h = {"X-Auth-Token": tok}
        samples = requests.get(f"{metering}/v2/samples?q.field=meter&q.value=crash.test",
                               headers=h, timeout=30).json()
        volumes = [int(s["volume"]) for s in samples]
        assert len(volumes) == len(set(volumes)), "a sample stored twice"
        missing = set(acked) - set(volumes)
        assert not missing, f"acknowledged samples lost: {sorted(missing)[:10]}"
        since = start_ts.strftime("%Y-%m-%dT%H:%M:%S")
        stats = requests.get(
            f"{metering}/v2/meters/crash.test/statistics?q.field=timestamp&q.op=ge&q.value={since}",
            headers=h, timeout=30).json()
        assert stats[0]["count"] == len(volumes), (stats, len(volumes))
        assert stats[0]["sum"] == sum(volumes)
    finally:
        stop.set()
        cloud.remove()
