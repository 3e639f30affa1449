"""Crashes: the all-in-one killed while it boots servers, and a guest's
QEMU killed under a running cloud. Guests outlive the control plane; what
a failed boot started is removed; a dead guest reads as SHUTOFF and starts
again."""

from __future__ import annotations

import os
import signal
import time

import pytest

from conftest import READY, SYNC_INTERVAL, qemu_pids, qemu_processes, wait_until

NAMES = ["vm-c1", "vm-c2", "vm-c3"]
# A resumed boot has what it needs once the cloud is back: its guest boots
# in well under this (BOOT_TIMEOUT), the rest is margin.
SETTLE_TIMEOUT = 180


@pytest.fixture(scope="module")
def crash(cloud):
    state = {"ids": {}, "ports": {}, "active": []}
    yield state
    # Best effort (the session's teardown kills whatever remains): a server
    # stuck in a saga may take minutes to go.
    for sid in state["ids"].values():
        cloud.api("DELETE", f"/servers/{sid}")
    for name, sid in state["ids"].items():
        try:
            cloud.wait_gone(sid, timeout=30)
        except AssertionError:
            s = cloud.server(sid) or {}
            print(f"\n{name} ({sid}) still exists 30s after DELETE: "
                  f"{s.get('status')}/{s.get('OS-EXT-STS:task_state')}")


def _create_at_once(c, names, image_id: str) -> dict[str, str]:
    """Three boots at the same time, straight to the compute API (the CLI
    takes seconds to start; the window to kill the cloud in is short):
    name -> id."""
    net = c.os_ok("network", "show", "net_admin")["id"]
    flavor = c.os_ok("flavor", "show", "m1.tiny")["id"]
    ids = {}
    for name in names:
        r = c.api("POST", "/servers", json={"server": {
            "name": name, "imageRef": image_id, "flavorRef": flavor, "key_name": "k1",
            "networks": [{"uuid": net}]}})
        assert r.status_code == 202, f"POST /servers {name}: {r.status_code} {r.text[:300]}"
        ids[name] = r.json()["server"]["id"]
    return ids


def test_servers_booting_when_the_all_in_one_is_killed_end_active_or_in_error(cloud, crash):
    c = cloud
    # An image no guest has used yet: the boots fetch it into the cache too.
    image = c.os_ok("image", "create", "--file", str(c.image_path), "--disk-format", "qcow2",
                    "--container-format", "bare", "guest-crash")["id"]
    ids = _create_at_once(c, NAMES, image)
    crash["ids"] = ids

    # Kill the cloud while they build: as soon as a first guest's QEMU runs.
    deadline = time.monotonic() + 120
    statuses, pids = {}, {}
    while time.monotonic() < deadline:
        statuses = {sid: c.server(sid)["status"] for sid in ids.values()}
        for sid in ids.values():   # (the port ids, to look for taps later)
            crash["ports"].setdefault(sid, set()).update(p["id"] for p in c.server_ports(sid))
        if all(s != "BUILD" for s in statuses.values()):
            break
        pids = {sid: qemu_pids(sid) for sid in ids.values()}
        if any(pids.values()):
            break
        time.sleep(0.02)
    building = [sid for sid, s in statuses.items() if s == "BUILD"]
    assert building, f"no server was still building when the cloud was to be killed: {statuses}"
    c.fs.proc.send_signal(signal.SIGKILL)
    c.fs.proc.wait()
    c.fs.stop()
    # The guests' QEMUs as the restart finds them (one caught daemonizing
    # shows as two processes for a moment: let the parent go first).
    wait_until("QEMU processes done daemonizing",
               lambda: all(len(qemu_pids(sid)) <= 1 for sid in ids.values()), timeout=15)
    time.sleep(0.5)
    pids = {sid: qemu_pids(sid) for sid in ids.values()}
    print(f"\nkilled the all-in-one; statuses {statuses}, QEMU pids {pids}")

    c.fs.start()
    restarted = time.monotonic()
    problems: list[str] = []
    final: dict[str, dict] = {}
    for name, sid in ids.items():
        left = max(5.0, SETTLE_TIMEOUT - (time.monotonic() - restarted))
        try:
            final[sid] = c.wait_server(sid, ("ACTIVE", "ERROR"), allow_error=True, timeout=left)
        except AssertionError:
            s = c.server(sid) or {}
            booted = READY in (c.console_text(sid) + c.console_file(sid, 200))
            problems.append(
                f"{name} ({sid}) is still {s.get('status')}/{s.get('OS-EXT-STS:task_state')} "
                f"{SETTLE_TIMEOUT}s after the restart"
                + (" although its guest booted (its console says ready)" if booted else "")
                + f"; QEMU {qemu_pids(sid)}; its ports "
                + str({p["id"]: p["status"] for p in c.server_ports(sid)}))
    summary = {n: final[i]["status"] if i in final else "unsettled" for n, i in ids.items()}
    print(f"after the restart: {summary}")

    for name, sid in ids.items():
        s = final.get(sid)
        if s is None:
            continue
        if s["status"] == "ACTIVE":
            now = qemu_pids(sid)
            if len(now) != 1:
                problems.append(f"{name} is ACTIVE with QEMU processes {now}")
            elif pids[sid] and now != pids[sid]:
                problems.append(f"{name}'s QEMU was replaced across the restart: "
                                f"{pids[sid]} -> {now}")
            else:
                c.wait_new_banner(sid)
                crash["active"].append(sid)
        elif not (s.get("fault") or {}).get("message"):
            problems.append(f"{name} is ERROR without a fault: {s}")

    # Nothing runs, is plugged or is stored for a settled server that is not
    # ACTIVE/SHUTOFF; then deleting it leaves nothing either.
    live = {sid for sid, s in final.items() if s["status"] in ("ACTIVE", "SHUTOFF")}
    for name, sid in ids.items():
        if sid in live or sid not in final:
            continue
        ports = crash["ports"].get(sid, set()) | {p["id"] for p in c.server_ports(sid)}
        try:
            wait_until(f"nothing of the failed {name} on the host",
                       lambda: not c.leftovers(sid, list(ports)), timeout=30)
        except AssertionError:
            problems.append(f"{name} is {final[sid]['status']} but has "
                            f"{c.leftovers(sid, list(ports))}")
        c.delete(sid)
        left = c.leftovers(sid, list(ports))
        if c.server_ports(sid):
            left.append(f"ports {[p['id'] for p in c.server_ports(sid)]}")
        if left:
            problems.append(f"deleting the failed {name} left {left}")
    names = {str(c.data_dir), str(c.data_dir.resolve())}
    known = live | {sid for sid in ids.values() if sid not in final}
    strays = {pid: argv[argv.index("-uuid") + 1] for pid, argv in qemu_processes().items()
              if any(n in a for a in argv for n in names)
              and "-uuid" in argv and argv[argv.index("-uuid") + 1] not in known}
    if strays:
        problems.append(f"QEMU processes of no ACTIVE/SHUTOFF server: {strays}")
    assert not problems, "\n".join(problems) + "\n" + c.log_tail(40)


def test_a_guest_whose_qemu_dies_turns_shutoff_and_starts_again(cloud, crash):
    c = cloud
    if crash["active"]:
        sid = crash["active"][0]
    else:  # every crashed boot failed: use a fresh guest
        g = c.boot("vm-c4")
        crash["ids"]["vm-c4"] = g.id
        sid = g.id
        c.wait_new_banner(sid)
    c.wait_server(sid, "ACTIVE", timeout=60)
    pid = int((c.instance_dir(sid) / "qemu.pid").read_text().strip())
    assert qemu_pids(sid) == [pid], f"qemu.pid says {pid}, processes {qemu_pids(sid)}"
    before = c.console_text(sid)
    os.kill(pid, signal.SIGKILL)
    s = c.wait_server(sid, "SHUTOFF", timeout=SYNC_INTERVAL * 5 + 5)
    assert s["OS-EXT-STS:power_state"] in (4, 6), s  # SHUTDOWN (or CRASHED)
    c.os_ok("server", "start", sid, fmt_json=False)
    c.wait_server(sid, "ACTIVE", unexpected=("SHUTOFF",))
    now = qemu_pids(sid)
    assert len(now) == 1 and now != [pid], now
    c.wait_new_banner(sid, before)
