"""What cannot work fails clearly: an unbootable image and a flavor no
host can hold end in ERROR with a fault (never a hung BUILD), and a host
without QEMU refuses to start, naming the package to install."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from conftest import qemu_pids, sh, wait_until


def _create(c, name: str, image: str, flavor: str) -> str:
    """`openstack server create` (no --wait): accepted, the id."""
    res = c.openstack("server", "create", "--image", image, "--flavor", flavor,
                      "--network", "net_admin", "--key-name", "k1", name)
    assert res.rc == 0, "the API should accept the request (202), then fail the build\n" \
        + res.describe()
    return res.json()["id"]


def test_an_image_that_is_not_bootable_puts_the_server_in_error_with_a_fault(cloud):
    c = cloud
    blank = c.work / "blank.qcow2"
    sh("qemu-img", "create", "-q", "-f", "qcow2", str(blank), "1G")
    c.os_ok("image", "create", "--file", str(blank), "--disk-format", "qcow2",
            "--container-format", "bare", "blank")
    sid = _create(c, "vm-blank", "blank", "m1.tiny")
    try:
        s = c.wait_server(sid, "ERROR", timeout=120)
        fault = (s.get("fault") or {}).get("message", "")
        assert re.search(r"not (a )?bootable", fault, re.I), (
            f"fault {s.get('fault')!r} does not say the image is not bootable\n"
            + c.diag(sid))
        shown = c.os_ok("server", "show", sid)
        assert "bootable" in str(shown.get("fault")), shown.get("fault")
        # The failed spawn cleaned up after itself.
        wait_until("no QEMU or instance directory for the failed server",
                   lambda: not qemu_pids(sid) and not c.instance_dir(sid).exists(),
                   timeout=20)
    finally:
        c.delete(sid)
    assert c.leftovers(sid, []) == []


def test_a_flavor_larger_than_the_host_gives_no_valid_host(cloud):
    c = cloud
    c.os_ok("flavor", "create", "--ram", "10000000", "--disk", "1", "--vcpus", "1", "huge")
    # The project's RAM quota (51200 MB) would refuse the request up front
    # (403); without it, the scheduler has to say no.
    project = c.os_ok("project", "show", "admin")["id"]
    ram = c.api("GET", f"/os-quota-sets/{project}").json()["quota_set"]["ram"]
    c.os_ok("quota", "set", "--ram", "-1", "admin", fmt_json=False)
    try:
        sid = _create(c, "vm-huge", "guest", "huge")
        try:
            s = c.wait_server(sid, "ERROR", timeout=60)
            fault = (s.get("fault") or {}).get("message", "")
            assert "No valid host was found" in fault, s.get("fault")
            assert not qemu_pids(sid) and not c.instance_dir(sid).exists()
        finally:
            c.delete(sid)
    finally:
        c.os_ok("flavor", "delete", "huge", fmt_json=False)
        c.os_ok("quota", "set", "--ram", str(ram), "admin", fmt_json=False)


def test_without_qemu_the_all_in_one_refuses_to_start_and_names_the_package(cloud):
    fs = cloud.fs
    tmp = Path(tempfile.mkdtemp(prefix="fsvq-"))
    data = tmp / "data"
    data.mkdir()
    env = dict(os.environ)
    env.update({
        "FERROSTACK__COMPUTE__DRIVER": "qemu",
        "FERROSTACK__COMPUTE__QEMU_BINARY": "/nonexistent/qemu-system-x86_64",
        "FERROSTACK__IDENTITY__BCRYPT_COST": "4",
        # Nothing to wire in that throw-away cloud.
        "FERROSTACK__NETWORK_AGENT__ENABLED": "false",
    })
    try:
        # Its own network namespace: its ports do not clash with the main cloud's.
        try:
            p = subprocess.run(
                ["unshare", "-n", "--", "bash", "-c", 'ip link set lo up && exec "$@"', "bash",
                 fs.bin, "all-in-one", "--data-dir", str(data)],
                capture_output=True, text=True, env=env, timeout=120,
                stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as e:
            out = (e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes) \
                else (e.stdout or "")
            raise AssertionError(
                "the all-in-one kept running for 120 s without QEMU:\n" + out[-3000:]) from None
        out = p.stdout + p.stderr
        assert p.returncode != 0, f"exited {p.returncode} without QEMU:\n{out[-3000:]}"
        # The package, not only the (missing) binary's own path.
        assert re.search(r"qemu-system-x86\b", out), (
            f"exited {p.returncode} but does not name the package qemu-system-x86:\n"
            + out[-3000:])
    finally:
        subprocess.run([fs.bin, "netns-cleanup", "--data-dir", str(data)],
                       capture_output=True, timeout=120)
        shutil.rmtree(tmp, ignore_errors=True)
