"""Metering of a real guest: the compute host's pollster reads QEMU's
figures (process CPU time, QMP block statistics, the tap's counters) every
2 s (the client fixtures' `polling_interval`), and the Ceilometer API shows
the guest's `cpu` rising and `network.incoming.bytes` growing when the
external host pings it."""

from __future__ import annotations

from conftest import pings, wait_until

CEILOMETER = "http://127.0.0.1:8777"


def latest(c, meter: str, resource_prefix: str) -> float | None:
    r = c.api("GET", f"{CEILOMETER}/v2/samples?q.field=meter&q.value={meter}&limit=200")
    assert r.status_code == 200, r.text
    for s in r.json():  # newest first
        if s["resource_id"].startswith(resource_prefix):
            return s["volume"]
    return None


def test_guest_cpu_rises_and_incoming_bytes_grow_when_pinged(cloud):
    # A guest of its own: vm1 is deleted by test_lifecycle before this file runs.
    c = cloud
    g = c.guests.get("metered")
    if g is None or c.server(g.id) is None:
        g = c.boot("metered")
    first = wait_until("a cpu sample of the guest", lambda: latest(c, "cpu", g.id), timeout=60)
    later = wait_until("the guest's cpu time rising",
                       lambda: (v := latest(c, "cpu", g.id)) is not None and v > first and v,
                       timeout=60)
    assert later > first > 0

    fip = getattr(g, "fip", None)
    if not fip:
        fip = c.os_ok("floating", "ip", "create", "net_external")["floating_ip_address"]
        c.os_ok("server", "add", "floating", "ip", g.name, fip, fmt_json=False)
        g.fip = fip
    c.allow("icmp")
    wait_until(f"ping {fip}", lambda: pings(c.ext_ns, fip, 1), timeout=30)
    before = wait_until("a network.incoming.bytes sample of the guest",
                        lambda: latest(c, "network.incoming.bytes", g.id), timeout=30)
    assert pings(c.ext_ns, fip, 20)
    grown = wait_until("the guest's incoming bytes growing by 20 pings",
                       lambda: (v := latest(c, "network.incoming.bytes", g.id)) is not None
                       and v >= before + 20 * 84 and v, timeout=30)
    assert grown >= before + 20 * 84

    # The same figures through Gnocchi: the guest's cpu metric has measures.
    # `cpu` is cumulative, so (as Ceilometer files it) its archive policy is
    # `ceilometer-low-rate`, which keeps `mean` and `rate:mean` only.
    measures = f"http://127.0.0.1:8041/v1/resource/instance/{g.id}/metric/cpu/measures"
    r = c.api("GET", measures + "?aggregation=mean")
    assert r.status_code == 200 and r.json(), r.text
    r = c.api("GET", measures + "?aggregation=max")
    assert r.status_code == 404 and "max" in r.text, r.text
