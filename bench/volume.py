"""Block-storage timings with real QEMU guests (see bench/volume.sh).

Run by pytest with the VM suite's fixtures (tests/vm/conftest.py): its
`cloud` fixture starts the all-in-one and the seed's networks. Figures are
printed, not asserted: they are for reading, and for before/after.
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import time
from pathlib import Path

from conftest import wait_until

ROUNDS = int(os.environ.get("ROUNDS", "5"))
VOLUME = "http://127.0.0.1:8776/v3"
DD_MIB = 256


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def _summary(name: str, samples: list[float]):
    print(f"  {name:<34} median {_ms(statistics.median(samples)):>8}   "
          f"min {_ms(min(samples)):>8}   max {_ms(max(samples)):>8}   (n={len(samples)})")


class Volumes:
    def __init__(self, c):
        self.c = c
        token_info = c.api("GET", "http://127.0.0.1:5000/v3/auth/tokens",
                           headers={"X-Subject-Token": c.token()}).json()
        self.project = token_info["token"]["project"]["id"]

    def url(self, path: str) -> str:
        return f"{VOLUME}/{self.project}{path}"

    def create(self, body: dict) -> str:
        r = self.c.api("POST", self.url("/volumes"), json={"volume": body})
        assert r.status_code == 202, r.text
        return r.json()["volume"]["id"]

    def status(self, vid: str) -> str:
        r = self.c.api("GET", self.url(f"/volumes/{vid}"))
        return r.json()["volume"]["status"] if r.status_code == 200 else "gone"

    def wait(self, vid: str, status: str, timeout: float = 300) -> float:
        start = time.monotonic()
        wait_until(f"volume {vid} {status}", lambda: self.status(vid) == status,
                   timeout=timeout, interval=0.02)
        return time.monotonic() - start

    def delete(self, vid: str):
        self.c.api("DELETE", self.url(f"/volumes/{vid}"))
        wait_until(f"volume {vid} deleted", lambda: self.status(vid) == "gone", timeout=60)


def _in_guest(c, g, serial: str) -> bool:
    p = c.ssh(g.fip, "cat /sys/block/vd*/serial 2>/dev/null; true")
    return serial in p.stdout.split()


def _disk(c, g, serial: str) -> str:
    p = c.ssh(g.fip, "for d in /sys/block/vd*; do [ \"$(cat $d/serial 2>/dev/null)\" = "
                     f"{serial} ] && basename $d; done; true")
    return p.stdout.split()[0]


def _dd_rate(text: str) -> float:
    """MB/s from coreutils dd's summary line."""
    m = re.search(r"(\d+) bytes.*?copied, ([0-9.]+) s", text)
    assert m, text
    return int(m.group(1)) / float(m.group(2)) / 1e6


def _guest_dd_rate(c, g, command: str) -> float:
    """MB/s of a dd of DD_MIB MiB in the guest, timed by the guest's own
    clock (/proc/uptime: busybox dd prints no rate)."""
    p = c.ssh(g.fip, f"a=$(cut -d' ' -f1 /proc/uptime); {command} 2>/dev/null; "
                     f"b=$(cut -d' ' -f1 /proc/uptime); echo $a $b", timeout=300)
    assert p.returncode == 0, p.stderr
    a, b = map(float, p.stdout.split()[-2:])
    return DD_MIB * 1024 * 1024 / max(b - a, 0.01) / 1e6


def bench_volume_create_attach_and_throughput(cloud):
    c = cloud
    v = Volumes(c)
    print(f"\nblock storage, {ROUNDS} rounds each (file backend, NBD exports)")

    empty, from_image = [], []
    image = c.os_ok("image", "show", "guest")["id"]
    for i in range(ROUNDS):
        t0 = time.monotonic()
        vid = v.create({"size": 1, "name": f"bench-empty-{i}"})
        v.wait(vid, "available")
        empty.append(time.monotonic() - t0)
        v.delete(vid)
        t0 = time.monotonic()
        vid = v.create({"size": 1, "name": f"bench-image-{i}", "imageRef": image})
        v.wait(vid, "available")
        from_image.append(time.monotonic() - t0)
        v.delete(vid)
    _summary("create 1 GiB -> available", empty)
    _summary("create from test image -> available", from_image)

    g = c.guests.get("bench") or c.boot("bench")
    c.ensure_reachable(g)
    vid = v.create({"size": 1, "name": "bench-attach"})
    v.wait(vid, "available")
    attach, detach = [], []
    for _ in range(ROUNDS):
        t0 = time.monotonic()
        r = c.api("POST", f"/servers/{g.id}/os-volume_attachments",
                  json={"volumeAttachment": {"volumeId": vid}}, timeout=120)
        assert r.status_code == 200, r.text
        wait_until("disk in guest", lambda: _in_guest(c, g, vid[:20]), timeout=60, interval=0.05)
        attach.append(time.monotonic() - t0)
        v.wait(vid, "in-use")
        t0 = time.monotonic()
        r = c.api("DELETE", f"/servers/{g.id}/os-volume_attachments/{vid}")
        assert r.status_code == 202, r.text
        wait_until("disk gone", lambda: not _in_guest(c, g, vid[:20]), timeout=60, interval=0.05)
        detach.append(time.monotonic() - t0)
        v.wait(vid, "available")
    _summary("attach -> disk in the guest", attach)
    _summary("detach -> disk gone from the guest", detach)

    r = c.api("POST", f"/servers/{g.id}/os-volume_attachments",
              json={"volumeAttachment": {"volumeId": vid}}, timeout=120)
    assert r.status_code == 200, r.text
    wait_until("disk in guest", lambda: _in_guest(c, g, vid[:20]), timeout=60)
    disk = _disk(c, g, vid[:20])
    guest_w = _guest_dd_rate(
        c, g, f"dd if=/dev/zero of=/dev/{disk} bs=1M count={DD_MIB} conv=fsync")
    c.ssh(g.fip, "echo 3 > /proc/sys/vm/drop_caches")
    guest_r = _guest_dd_rate(c, g, f"dd if=/dev/{disk} of=/dev/null bs=1M count={DD_MIB}")

    host_file = Path(c.data_dir) / "volumes" / "bench-host.raw"
    hw = subprocess.run(["dd", "if=/dev/zero", f"of={host_file}", "bs=1M", f"count={DD_MIB}",
                         "conv=fsync"], capture_output=True, text=True)
    subprocess.run(["sh", "-c", "echo 3 > /proc/sys/vm/drop_caches"], check=False)
    hr = subprocess.run(["dd", f"if={host_file}", "of=/dev/null", "bs=1M"],
                        capture_output=True, text=True)
    host_file.unlink(missing_ok=True)
    host_w, host_r = _dd_rate(hw.stderr), _dd_rate(hr.stderr)
    print(f"  sequential write {DD_MIB} MiB:   guest {guest_w:8.1f} MB/s   host {host_w:8.1f} MB/s"
          f"   ratio {guest_w / host_w:.2f}")
    print(f"  sequential read  {DD_MIB} MiB:   guest {guest_r:8.1f} MB/s   host {host_r:8.1f} MB/s"
          f"   ratio {guest_r / host_r:.2f}")
    c.api("DELETE", f"/servers/{g.id}/os-volume_attachments/{vid}")
    v.wait(vid, "available")
    v.delete(vid)
