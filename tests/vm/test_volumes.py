"""Block storage with real guests, as the seed's user does it: a Cinder
volume made with the stock CLI is hot-plugged into a running guest, which
sees a new virtio disk of the volume's size, makes a file system on it and
writes a file; the volume moves to a second guest with the file on it;
grows while attached and the guest sees the new size; a guest boots from a
volume made from the test image. Each step is checked inside the guest
over SSH (the disk's size and serial in /sys), not only in the API."""

from __future__ import annotations

import shlex

from conftest import READY, wait_until

GIB_SECTORS = (1 << 30) // 512
MOUNT = "/mnt/v"


def _volume(c, name: str) -> dict:
    return c.os_ok("volume", "show", name)


def _wait_volume(c, name: str, status: str, timeout: float = 120) -> dict:
    last = {}

    def reached():
        v = _volume(c, name)
        last["v"] = v
        if v["status"] == "error" and status != "error":
            raise AssertionError(f"volume {name} went to error: {v}\n{c.log_tail(30)}")
        return v if v["status"] == status else None
    try:
        return wait_until(f"volume {name} to be {status}", reached, timeout=timeout, interval=1)
    except AssertionError as e:
        raise AssertionError(f"{e}: last {last.get('v')}\n{c.log_tail(30)}") from None


def _guest_disk(c, g, volume_id: str) -> str | None:
    """The guest's block device whose serial is the volume's (virtio-blk
    keeps the first 20 characters), e.g. `vdb`; None when it has none."""
    serial = volume_id[:20]
    script = ("for d in /sys/block/vd*; do "
              "[ \"$(cat $d/serial 2>/dev/null)\" = %s ] && basename $d; done; true"
              % shlex.quote(serial))
    p = c.ssh(g.fip, script)
    assert p.returncode == 0, f"ssh {g.name}: {p.stderr}"
    names = p.stdout.split()
    return names[0] if names else None


def _sectors(c, g, disk: str) -> int:
    p = c.ssh(g.fip, f"cat /sys/block/{disk}/size")
    assert p.returncode == 0, p.stderr
    return int(p.stdout.strip())


def _wait_disk(c, g, volume_id: str, present: bool = True, timeout: float = 60) -> str | None:
    what = "appear in" if present else "leave"
    try:
        return wait_until(
            f"volume {volume_id}'s disk to {what} {g.name}",
            lambda: (_guest_disk(c, g, volume_id) if present
                     else _guest_disk(c, g, volume_id) is None),
            timeout=timeout, interval=1)
    except AssertionError as e:
        dmesg = c.ssh(g.fip, "dmesg | tail -n 20").stdout
        raise AssertionError(f"{e}\nguest dmesg:\n{dmesg}\n{c.diag(g.id)}") from None


def _run(c, g, command: str) -> str:
    p = c.ssh(g.fip, command, timeout=90)
    assert p.returncode == 0, f"{g.name}: {command!r} failed: {p.stdout} {p.stderr}"
    return p.stdout


def _guest(c, name: str):
    g = c.guests.get(name)
    if g is None or c.server(g.id) is None:
        g = c.boot(name)
    c.ensure_reachable(g)
    return g


def test_a_volume_attaches_to_a_running_guest_which_writes_a_file_system_on_it(cloud):
    c = cloud
    g = _guest(c, "vol1")
    v = c.os_ok("volume", "create", "--size", "1", "v1")
    _wait_volume(c, "v1", "available")

    c.os_ok("server", "add", "volume", "vol1", "v1", fmt_json=False)
    vol = _wait_volume(c, "v1", "in-use")
    att = vol["attachments"]
    assert len(att) == 1 and att[0]["server_id"] == g.id, vol
    listed = c.api("GET", f"/servers/{g.id}/os-volume_attachments").json()
    assert [a["volumeId"] for a in listed["volumeAttachments"]] == [v["id"]], listed

    disk = _wait_disk(c, g, v["id"])
    assert _sectors(c, g, disk) == GIB_SECTORS
    _run(c, g, f"mkfs.ext2 -q /dev/{disk} && mkdir -p {MOUNT} && mount /dev/{disk} {MOUNT}"
               f" && echo written-by-vol1 > {MOUNT}/hello && sync && umount {MOUNT}")

    # Below 3.66 a snapshot of an in-use volume needs force (Cinder's rule);
    # from 3.66 it needs none. (OSC sends --force only below 3.66.)
    refused = c.openstack("--os-volume-api-version", "3.65", "volume", "snapshot", "create",
                          "--volume", "v1", "s0")
    assert refused.rc != 0, "a snapshot of an in-use volume was taken without force at 3.65"
    c.os_ok("--os-volume-api-version", "3.66", "volume", "snapshot", "create",
            "--volume", "v1", "s1")
    wait_until("snapshot s1 available",
               lambda: c.os_ok("volume", "snapshot", "show", "s1")["status"] == "available",
               timeout=120)

    c.os_ok("server", "remove", "volume", "vol1", "v1", fmt_json=False)
    vol = _wait_volume(c, "v1", "available")
    assert vol["attachments"] == [], vol
    _wait_disk(c, g, v["id"], present=False)


def test_the_volume_moves_to_a_second_guest_with_its_file_grows_while_attached_and_its_snapshot_has_the_file(
        cloud):
    c = cloud
    g = _guest(c, "vol2")
    v = _volume(c, "v1")
    c.os_ok("server", "add", "volume", "vol2", "v1", fmt_json=False)
    _wait_volume(c, "v1", "in-use")
    disk = _wait_disk(c, g, v["id"])
    out = _run(c, g, f"mkdir -p {MOUNT} && mount /dev/{disk} {MOUNT} && cat {MOUNT}/hello"
                     f" && umount {MOUNT}")
    assert out.strip() == "written-by-vol1"

    # Extending an attached volume needs 3.42; the guest sees the new size.
    c.os_ok("--os-volume-api-version", "3.42", "volume", "set", "--size", "2", "v1",
            fmt_json=False)
    wait_until("v1 to be 2 GiB", lambda: _volume(c, "v1")["size"] == 2, timeout=60)
    wait_until(f"{g.name} to see 2 GiB on {disk}",
               lambda: _sectors(c, g, disk) == 2 * GIB_SECTORS, timeout=60)

    # An attached volume is neither deletable nor attachable elsewhere.
    refused = c.openstack("volume", "delete", "v1", fmt_json=False)
    assert refused.rc != 0, "an attached volume was deleted"
    g1 = c.guests["vol1"]
    refused = c.openstack("server", "add", "volume", g1.name, "v1", fmt_json=False)
    assert refused.rc != 0, "an in-use volume was attached to a second server"
    assert _volume(c, "v1")["status"] == "in-use"

    c.os_ok("server", "remove", "volume", "vol2", "v1", fmt_json=False)
    _wait_volume(c, "v1", "available")
    _wait_disk(c, g, v["id"], present=False)
    # A volume made from the snapshot of the in-use volume has the file.
    c.os_ok("volume", "create", "--snapshot", "s1", "v1copy")
    copy = _wait_volume(c, "v1copy", "available")
    c.os_ok("server", "add", "volume", "vol2", "v1copy", fmt_json=False)
    _wait_volume(c, "v1copy", "in-use")
    disk = _wait_disk(c, g, copy["id"])
    out = _run(c, g, f"mount /dev/{disk} {MOUNT} && cat {MOUNT}/hello && umount {MOUNT}")
    assert out.strip() == "written-by-vol1"
    c.os_ok("server", "remove", "volume", "vol2", "v1copy", fmt_json=False)
    _wait_volume(c, "v1copy", "available")

    # A volume with a snapshot is not deleted; without it, it is.
    assert c.openstack("volume", "delete", "v1", fmt_json=False).rc != 0
    c.os_ok("volume", "snapshot", "delete", "s1", fmt_json=False)
    wait_until("s1 to be deleted",
               lambda: c.openstack("volume", "snapshot", "show", "s1").rc != 0, timeout=60)
    for name in ("v1", "v1copy"):
        c.os_ok("volume", "delete", name, fmt_json=False)
        wait_until(f"{name} to be deleted",
                   lambda: c.openstack("volume", "show", name).rc != 0, timeout=60)


def test_a_guest_boots_from_a_volume_made_from_the_test_image(cloud):
    c = cloud
    c.os_ok("volume", "create", "--image", "guest", "--size", "1", "--bootable", "bootvol")
    vol = _wait_volume(c, "bootvol", "available", timeout=180)
    assert vol["bootable"] in ("true", True), vol
    res = c.openstack("server", "create", "--volume", "bootvol", "--flavor", "m1.tiny",
                      "--network", "net_admin", "--key-name", "k1", "--wait", "bfv1")
    assert res.rc == 0, res.describe()
    s = res.json()
    assert s["status"] == "ACTIVE", s
    assert _volume(c, "bootvol")["status"] == "in-use"
    text = c.wait_new_banner(s["id"])
    assert READY in text
    c.delete(s["id"])
    _wait_volume(c, "bootvol", "available")
    c.os_ok("volume", "delete", "bootvol", fmt_json=False)
