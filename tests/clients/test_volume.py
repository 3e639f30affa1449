"""Block storage (Cinder v3) compatibility tests.

Drives the stock `openstack` CLI and raw HTTP against the Ferrostack
all-in-one's volume API on 127.0.0.1:8776: volumes made by the file
backend, quotas, types, and the errors Cinder answers.

Run:  pytest -v tests/clients/test_volume.py
"""

from __future__ import annotations

import subprocess
import time

import pytest

from conftest import field, unique


def wait_status(ferrostack, volume: str, status: str, cloud: str = "ferrostack",
                timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        res = ferrostack.openstack("volume", "show", volume, cloud=cloud)
        if status == "deleted" and res.rc != 0:
            return {}
        if res.rc == 0:
            last = res.json()
            if field(last, "status") == status:
                return last
        time.sleep(0.5)
    raise AssertionError(f"volume {volume} never became {status}: {last}")


def test_volume_create_list_show_set_delete(ferrostack):
    name = unique("vol")
    v = ferrostack.os_ok("volume", "create", "--size", "1",
                         "--property", "purpose=test", name, cloud="ferrostack-demo")
    assert field(v, "size") == 1
    assert field(v, "status") == "creating"
    vid = field(v, "id")
    shown = wait_status(ferrostack, vid, "available", cloud="ferrostack-demo")
    assert field(shown, "name") == name
    assert field(shown, "type") == "__DEFAULT__"
    assert field(shown, "properties") == {"purpose": "test"}

    listed = ferrostack.os_ok("volume", "list", cloud="ferrostack-demo")
    assert any(field(r, "id") == vid and field(r, "status") == "available" for r in listed)
    listed = ferrostack.os_ok("volume", "list", "--long", "--name", name,
                              cloud="ferrostack-demo")
    assert [field(r, "id") for r in listed] == [vid]

    new = unique("renamed")
    ferrostack.os_ok("volume", "set", "--name", new, "--description", "d", vid,
                     cloud="ferrostack-demo", fmt_json=False)
    shown = ferrostack.os_ok("volume", "show", vid, cloud="ferrostack-demo")
    assert field(shown, "name") == new and field(shown, "description") == "d"

    # Extend: `volume set --size` grows it; a smaller size is refused.
    ferrostack.os_ok("volume", "set", "--size", "2", vid,
                     cloud="ferrostack-demo", fmt_json=False)
    shown = wait_status(ferrostack, vid, "available", cloud="ferrostack-demo")
    assert field(shown, "size") == 2
    res = ferrostack.os_fail("volume", "set", "--size", "1", vid, cloud="ferrostack-demo",
                             fmt_json=False)
    assert "New size" in res.stderr or "greater" in res.stderr, res.describe()

    # Another project does not see it; the admin sees it in all projects.
    assert vid not in [field(r, "id") for r in ferrostack.os_ok("volume", "list")]
    everyone = ferrostack.os_ok("volume", "list", "--all-projects")
    assert vid in [field(r, "id") for r in everyone]

    ferrostack.os_ok("volume", "delete", vid, cloud="ferrostack-demo", fmt_json=False)
    wait_status(ferrostack, vid, "deleted", cloud="ferrostack-demo")


def test_bad_requests_are_refused(ferrostack):
    res = ferrostack.os_fail("volume", "create", "--size", "1", "--type", "no-such-type",
                             unique("vol"), cloud="ferrostack-demo")
    assert "could not be found" in res.stderr, res.describe()
    res = ferrostack.os_fail("volume", "show", "no-such-volume", cloud="ferrostack-demo")
    assert "No Volume found" in res.stderr, res.describe()


def test_quota_and_types(ferrostack):
    demo_project = field(ferrostack.os_ok("project", "show", "demo"), "id")
    ferrostack.os_ok("quota", "set", "--gigabytes", "3", demo_project, fmt_json=False)
    try:
        res = ferrostack.os_fail("volume", "create", "--size", "4", unique("big"),
                                 cloud="ferrostack-demo")
        assert "413" in res.stderr or "quota" in res.stderr.lower(), res.describe()
    finally:
        ferrostack.os_ok("quota", "set", "--gigabytes", "1000", demo_project, fmt_json=False)

    tname = unique("type")
    t = ferrostack.os_ok("volume", "type", "create", "--property", "tier=gold", tname)
    assert field(t, "name") == tname
    types = [field(r, "name") for r in ferrostack.os_ok("volume", "type", "list")]
    assert "__DEFAULT__" in types and tname in types
    ferrostack.os_fail("volume", "type", "create", unique("type"), cloud="ferrostack-demo")
    ferrostack.os_ok("volume", "type", "delete", tname, fmt_json=False)


def test_admin_reset_state_and_force_delete(ferrostack):
    vid = field(ferrostack.os_ok("volume", "create", "--size", "1", unique("vol"),
                                 cloud="ferrostack-demo"), "id")
    wait_status(ferrostack, vid, "available", cloud="ferrostack-demo")
    ferrostack.os_fail("volume", "set", "--state", "error_deleting", vid,
                       cloud="ferrostack-demo", fmt_json=False)
    ferrostack.os_ok("volume", "set", "--state", "error_deleting", vid, fmt_json=False)
    wait_status(ferrostack, vid, "error_deleting", cloud="ferrostack-demo")
    res = ferrostack.openstack("volume", "delete", vid, cloud="ferrostack-demo", fmt_json=False)
    assert res.rc != 0, res.describe()
    ferrostack.os_ok("volume", "delete", "--force", vid, fmt_json=False)
    wait_status(ferrostack, vid, "deleted", cloud="ferrostack-demo")


@pytest.fixture(scope="module")
def server(ferrostack, image_api):
    """A server of the admin project to attach volumes to (the CLI looks it up)."""
    admin = ferrostack.admin_token()
    img = image_api.create(admin, name=unique("vol-img"), disk_format="raw",
                           container_format="bare", visibility="public")
    r = image_api.upload(admin, img["id"], b"\0" * 65536)
    assert r.status_code == 204, r.text
    image_api.wait_status(admin, img["id"], "active")
    net = unique("vol-net")
    ferrostack.os_ok("network", "create", net)
    ferrostack.os_ok("subnet", "create", "--network", net, "--subnet-range",
                     "10.78.0.0/24", unique("vol-sub"))
    created = ferrostack.os_ok("server", "create", "--image", img["id"], "--flavor",
                               "m1.tiny", "--network", net, "--wait", unique("vol-vm"))
    sid = field(created, "id")
    yield sid
    ferrostack.openstack("server", "delete", "--wait", sid, fmt_json=False)
    ferrostack.openstack("network", "delete", net, fmt_json=False)


def test_volume_attachment_create_set_complete_delete(ferrostack, server):
    v = "--os-volume-api-version"
    vid = field(ferrostack.os_ok("volume", "create", "--size", "1", unique("vol")), "id")
    wait_status(ferrostack, vid, "available")

    # Below 3.27 the CLI itself refuses; at 3.44 the attachment is reserved.
    ferrostack.os_fail(v, "3.26", "volume", "attachment", "create", vid, server)
    att = ferrostack.os_ok(v, "3.44", "volume", "attachment", "create", vid, server)
    aid = field(att, "ID")
    assert field(att, "Status") == "reserved"
    assert field(att, "Instance ID") == server
    assert field(wait_status(ferrostack, vid, "reserved"), "status") == "reserved"

    # A connector: the NBD connection of the export.
    att = ferrostack.os_ok(v, "3.44", "volume", "attachment", "set", aid,
                           "--host", "compute-elsewhere", "--ip", "127.0.0.1",
                           "--platform", "x86_64", "--os-type", "linux",
                           "--mountpoint", "/dev/vdb")
    assert field(att, "Status") == "attaching"
    props = field(att, "Properties")
    assert props["driver_volume_type"] == "nbd", props
    assert len(props["data"]["export"]) >= 32, props
    wait_status(ferrostack, vid, "attaching")

    ferrostack.os_ok(v, "3.44", "volume", "attachment", "complete", aid, fmt_json=False)
    shown = wait_status(ferrostack, vid, "in-use")
    assert server in str(field(shown, "attachments")), shown
    listed = ferrostack.os_ok(v, "3.44", "volume", "attachment", "list",
                              "--volume-id", vid)
    assert [field(r, "ID") for r in listed] == [aid]
    assert field(listed[0], "Status") == "attached"
    shown = ferrostack.os_ok(v, "3.44", "volume", "attachment", "show", aid)
    assert field(shown, "Status") == "attached"

    # An attached volume is not deleted.
    res = ferrostack.openstack("volume", "delete", vid, fmt_json=False)
    assert res.rc != 0, res.describe()

    ferrostack.os_ok(v, "3.44", "volume", "attachment", "delete", aid, fmt_json=False)
    wait_status(ferrostack, vid, "available")
    ferrostack.os_ok("volume", "delete", vid, fmt_json=False)
    wait_status(ferrostack, vid, "deleted")


def test_volume_service_list_and_backend_pools(ferrostack):
    services = ferrostack.os_ok("volume", "service", "list")
    binaries = {field(s, "Binary"): s for s in services}
    assert set(binaries) == {"cinder-scheduler", "cinder-volume"}, services
    vol = binaries["cinder-volume"]
    assert "@" in field(vol, "Host")
    assert field(vol, "State") == "up" and field(vol, "Status") == "enabled"
    assert field(vol, "Zone") == "nova"
    # Admin only.
    ferrostack.os_fail("volume", "service", "list", cloud="ferrostack-demo")

    pools = ferrostack.os_ok("volume", "backend", "pool", "list")
    assert len(pools) == 1 and field(pools[0], "Name").endswith("#file"), pools
    long = ferrostack.os_ok("volume", "backend", "pool", "list", "--long")
    assert field(long[0], "Name") == field(pools[0], "Name")
    ferrostack.os_fail("volume", "backend", "pool", "list", cloud="ferrostack-demo")


def wait_resource(ferrostack, kind: list[str], rid: str, status: str,
                  cloud: str = "ferrostack-demo", timeout: float = 60) -> dict:
    """`openstack <kind> show` until its status is `status` (or gone: "deleted")."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        res = ferrostack.openstack(*kind, "show", rid, cloud=cloud)
        if status == "deleted" and res.rc != 0:
            return {}
        if res.rc == 0:
            last = res.json()
            if field(last, "status") == status:
                return last
        time.sleep(0.5)
    raise AssertionError(f"{' '.join(kind)} {rid} never became {status}: {last}")


def test_snapshots_and_volumes_from_them(ferrostack):
    vid = field(ferrostack.os_ok("volume", "create", "--size", "1", unique("vol"),
                                 cloud="ferrostack-demo"), "id")
    wait_status(ferrostack, vid, "available", cloud="ferrostack-demo")
    sname = unique("snap")
    s = ferrostack.os_ok("volume", "snapshot", "create", "--volume", vid, sname,
                         cloud="ferrostack-demo")
    sid = field(s, "id")
    wait_resource(ferrostack, ["volume", "snapshot"], sid, "available")
    listed = ferrostack.os_ok("volume", "snapshot", "list", cloud="ferrostack-demo")
    assert sid in [field(r, "id") for r in listed]

    clone = ferrostack.os_ok("volume", "create", "--snapshot", sid, unique("fromsnap"),
                             cloud="ferrostack-demo")
    shown = wait_status(ferrostack, field(clone, "id"), "available", cloud="ferrostack-demo")
    assert field(shown, "snapshot_id") == sid and field(shown, "size") == 1

    # A volume with a snapshot is not deleted without cascade.
    res = ferrostack.openstack("volume", "delete", vid, cloud="ferrostack-demo", fmt_json=False)
    assert res.rc != 0, res.describe()
    ferrostack.os_ok("volume", "snapshot", "delete", sid, cloud="ferrostack-demo", fmt_json=False)
    wait_resource(ferrostack, ["volume", "snapshot"], sid, "deleted")
    for v in (vid, field(clone, "id")):
        ferrostack.os_ok("volume", "delete", v, cloud="ferrostack-demo", fmt_json=False)
        wait_status(ferrostack, v, "deleted", cloud="ferrostack-demo")


def test_volume_from_an_image(ferrostack, tmp_path):
    disk = tmp_path / "disk.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "64M"], check=True)
    img = ferrostack.os_ok("image", "create", "--disk-format", "qcow2",
                           "--container-format", "bare", "--file", str(disk), unique("img"),
                           cloud="ferrostack-demo")
    iid = field(img, "id")
    try:
        v = ferrostack.os_ok("volume", "create", "--image", iid, "--size", "1", unique("vol"),
                             cloud="ferrostack-demo")
        shown = wait_status(ferrostack, field(v, "id"), "available", cloud="ferrostack-demo")
        assert field(shown, "bootable") in (True, "true")
        assert field(shown, "volume_image_metadata")["image_id"] == iid
        ferrostack.os_ok("volume", "delete", field(v, "id"), cloud="ferrostack-demo",
                         fmt_json=False)
        wait_status(ferrostack, field(v, "id"), "deleted", cloud="ferrostack-demo")
    finally:
        ferrostack.openstack("image", "delete", iid, cloud="ferrostack-demo", fmt_json=False)


def test_backup_create_and_restore(ferrostack):
    vid = field(ferrostack.os_ok("volume", "create", "--size", "1", unique("vol"),
                                 cloud="ferrostack-demo"), "id")
    wait_status(ferrostack, vid, "available", cloud="ferrostack-demo")
    b = ferrostack.os_ok("volume", "backup", "create", "--name", unique("bk"), vid,
                         cloud="ferrostack-demo")
    bid = field(b, "id")
    wait_resource(ferrostack, ["volume", "backup"], bid, "available")
    target = unique("restored")
    ferrostack.os_ok("volume", "backup", "restore", bid, target, cloud="ferrostack-demo")
    wait_resource(ferrostack, ["volume", "backup"], bid, "available")
    restored = wait_status(ferrostack, target, "available", cloud="ferrostack-demo")
    assert field(restored, "size") == 1
    ferrostack.os_ok("volume", "backup", "delete", bid, cloud="ferrostack-demo", fmt_json=False)
    wait_resource(ferrostack, ["volume", "backup"], bid, "deleted")
    for v in (vid, field(restored, "id")):
        ferrostack.os_ok("volume", "delete", v, cloud="ferrostack-demo", fmt_json=False)


def test_volume_transfer_between_projects(ferrostack):
    vid = field(ferrostack.os_ok("volume", "create", "--size", "1", unique("vol"),
                                 cloud="ferrostack-demo"), "id")
    wait_status(ferrostack, vid, "available", cloud="ferrostack-demo")
    t = ferrostack.os_ok("volume", "transfer", "request", "create", vid,
                         cloud="ferrostack-demo")
    tid, key = field(t, "id"), field(t, "auth_key")
    res = ferrostack.openstack("volume", "transfer", "request", "accept", "--auth-key",
                               "wrong", tid, fmt_json=False)
    assert res.rc != 0 and "auth key" in res.stderr.lower(), res.describe()
    ferrostack.os_ok("volume", "transfer", "request", "accept", "--auth-key", key, tid)
    # Now the admin project's, not demo's.
    assert ferrostack.openstack("volume", "show", vid, cloud="ferrostack-demo").rc != 0
    shown = wait_status(ferrostack, vid, "available")
    ferrostack.os_ok("volume", "delete", field(shown, "id"), fmt_json=False)


def test_qos_specs_and_type_association(ferrostack):
    name = unique("qos")
    q = ferrostack.os_ok("volume", "qos", "create", "--consumer", "front-end",
                         "--property", "read_iops_sec=2000", name)
    qid = field(q, "id")
    assert field(q, "consumer") == "front-end"
    ferrostack.os_ok("volume", "qos", "set", "--property", "write_iops_sec=500", qid,
                     fmt_json=False)
    vtype = unique("qostype")
    ferrostack.os_ok("volume", "type", "create", vtype)
    ferrostack.os_ok("volume", "qos", "associate", qid, vtype, fmt_json=False)
    shown = ferrostack.os_ok("volume", "qos", "show", qid)
    props = field(shown, "properties")
    assert props == {"read_iops_sec": "2000", "write_iops_sec": "500"}, shown
    assert vtype in str(field(shown, "associations")), shown
    # Associated specs are not deleted without --force; members may not manage them.
    ferrostack.os_fail("volume", "qos", "delete", qid)
    ferrostack.os_fail("volume", "qos", "list", cloud="ferrostack-demo")
    ferrostack.os_ok("volume", "qos", "disassociate", "--volume-type", vtype, qid,
                     fmt_json=False)
    ferrostack.os_ok("volume", "qos", "delete", qid, fmt_json=False)
    ferrostack.os_ok("volume", "type", "delete", vtype, fmt_json=False)


def test_incremental_backup(ferrostack):
    vid = field(ferrostack.os_ok("volume", "create", "--size", "1", unique("vol"),
                                 cloud="ferrostack-demo"), "id")
    wait_status(ferrostack, vid, "available", cloud="ferrostack-demo")
    # No full backup yet: an incremental one is refused.
    ferrostack.os_fail("volume", "backup", "create", "--incremental", vid,
                       cloud="ferrostack-demo")
    full = field(ferrostack.os_ok("volume", "backup", "create", vid,
                                  cloud="ferrostack-demo"), "id")
    wait_resource(ferrostack, ["volume", "backup"], full, "available")
    inc = field(ferrostack.os_ok("volume", "backup", "create", "--incremental", vid,
                                 cloud="ferrostack-demo"), "id")
    shown = wait_resource(ferrostack, ["volume", "backup"], inc, "available")
    assert field(shown, "is_incremental") is True, shown
    parent = ferrostack.os_ok("volume", "backup", "show", full, cloud="ferrostack-demo")
    assert field(parent, "has_dependent_backups") is True, parent
    ferrostack.os_fail("volume", "backup", "delete", full, cloud="ferrostack-demo")
    for b in (inc, full):
        ferrostack.os_ok("volume", "backup", "delete", b, cloud="ferrostack-demo",
                         fmt_json=False)
        wait_resource(ferrostack, ["volume", "backup"], b, "deleted")
    ferrostack.os_ok("volume", "delete", vid, cloud="ferrostack-demo", fmt_json=False)


def test_volume_service_disable_and_enable(ferrostack):
    services = ferrostack.os_ok("volume", "service", "list", "--service", "cinder-volume")
    host = field(services[0], "Host")
    ferrostack.os_ok("volume", "service", "set", "--disable", "--disable-reason",
                     "maintenance", host, "cinder-volume", fmt_json=False)
    s = ferrostack.os_ok("volume", "service", "list", "--service", "cinder-volume", "--long")
    assert field(s[0], "Status") == "disabled"
    assert field(s[0], "Disabled Reason") == "maintenance", s
    ferrostack.os_ok("volume", "service", "set", "--enable", host, "cinder-volume",
                     fmt_json=False)
    s = ferrostack.os_ok("volume", "service", "list", "--service", "cinder-volume")
    assert field(s[0], "Status") == "enabled"


def _image(ferrostack, image_api, fill: bytes) -> str:
    admin = ferrostack.admin_token()
    img = image_api.create(admin, name=unique("bfv-img"), disk_format="raw",
                           container_format="bare", visibility="public")
    r = image_api.upload(admin, img["id"], fill * 65536)
    assert r.status_code == 204, r.text
    image_api.wait_status(admin, img["id"], "active")
    return img["id"]


def _server_status(ferrostack, name: str, status: str, timeout: float = 60):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = ferrostack.os_ok("server", "show", name)
        if field(last, "status") == status:
            return last
        time.sleep(0.5)
    raise AssertionError(f"server {name} never became {status}: {last}")


def test_volume_backed_rebuild_2_93_and_offloaded_attach_2_20(ferrostack, image_api):
    """`openstack server rebuild` at compute 2.93 of a server booted from a
    volume: the volume service re-images the root volume (os-reimage, 3.68)
    and the server is ACTIVE on it again, the volume `in-use` with the new
    image's metadata. A shelved-offloaded server takes a volume at 2.20
    (`in-use` with no host) and has it after the unshelve."""
    first = _image(ferrostack, image_api, b"\1")
    second = _image(ferrostack, image_api, b"\2")
    c = ("--os-compute-api-version", "2.93")
    name = unique("bfv")
    ferrostack.os_ok(*c, "server", "create", "--image", first, "--boot-from-volume", "1",
                     "--flavor", "m1.tiny", "--nic", "none", "--wait", name)
    root = field(ferrostack.os_ok(*c, "server", "show", name), "volumes_attached")
    root = root[0]["id"] if isinstance(root, list) else str(root).split("'")[3]
    meta = field(wait_status(ferrostack, root, "in-use"), "volume_image_metadata")
    assert meta["image_id"] == first, meta

    ferrostack.os_ok(*c, "server", "rebuild", "--image", second, "--reimage-boot-volume",
                     "--wait", name,
                     fmt_json=False)
    _server_status(ferrostack, name, "ACTIVE")
    meta = field(wait_status(ferrostack, root, "in-use"), "volume_image_metadata")
    assert meta["image_id"] == second, meta

    ferrostack.os_ok(*c, "server", "delete", "--wait", name, fmt_json=False)

    # (A volume-backed server is not shelved here: an image-backed one.)
    name = unique("shelved")
    ferrostack.os_ok(*c, "server", "create", "--image", first, "--flavor", "m1.tiny",
                     "--nic", "none", "--wait", name)
    vid = field(ferrostack.os_ok("volume", "create", "--size", "1", unique("vol")), "id")
    wait_status(ferrostack, vid, "available")
    ferrostack.os_ok("server", "shelve", name, fmt_json=False)
    _server_status(ferrostack, name, "SHELVED_OFFLOADED")
    ferrostack.os_ok("--os-compute-api-version", "2.20", "server", "add", "volume",
                     name, vid, fmt_json=False)
    wait_status(ferrostack, vid, "in-use")
    ferrostack.os_ok("server", "unshelve", name, fmt_json=False)
    _server_status(ferrostack, name, "ACTIVE")
    shown = wait_status(ferrostack, vid, "in-use")
    assert "/dev/vd" in str(field(shown, "attachments")), shown
    ferrostack.os_ok(*c, "server", "delete", "--wait", name, fmt_json=False)
    ferrostack.openstack("volume", "delete", vid, fmt_json=False)


def test_volume_backed_shelve_stable_rescue_and_crash_dump(ferrostack, image_api):
    """A server booted from a volume, with the stock CLI: `server shelve`
    makes no image and offloads at once (SHELVED_OFFLOADED), `server
    unshelve` boots it from its volume again; `server rescue --image` at
    2.87 with an image naming `hw_rescue_device`/`hw_rescue_bus` (a stable
    device rescue) rescues it, without them it is refused; `server dump
    create` (2.17) is recorded with a successful event; `server rebuild
    --reimage-boot-volume` with its own image (2.93) re-images the volume."""
    first = _image(ferrostack, image_api, b"\3")
    rescue_img = _image(ferrostack, image_api, b"\4")
    images_before = {i["ID"] for i in ferrostack.os_ok("image", "list")}
    name = unique("bfv-shelve")
    ferrostack.os_ok("server", "create", "--image", first, "--boot-from-volume", "1",
                     "--flavor", "m1.tiny", "--nic", "none", "--wait", name)
    server_id = field(ferrostack.os_ok("server", "show", name), "id")

    ferrostack.os_ok("server", "shelve", name, fmt_json=False)
    _server_status(ferrostack, name, "SHELVED_OFFLOADED")
    assert {i["ID"] for i in ferrostack.os_ok("image", "list")} == images_before
    ferrostack.os_ok("server", "unshelve", name, fmt_json=False)
    _server_status(ferrostack, name, "ACTIVE")

    c87 = ("--os-compute-api-version", "2.87")
    refused = ferrostack.openstack(*c87, "server", "rescue", "--image", rescue_img, name,
                                  fmt_json=False)
    assert refused.rc != 0 and "volume-backed" in refused.stderr, refused
    ferrostack.os_ok("image", "set", "--property", "hw_rescue_device=disk",
                     "--property", "hw_rescue_bus=virtio", rescue_img, fmt_json=False)
    ferrostack.os_ok(*c87, "server", "rescue", "--image", rescue_img, name, fmt_json=False)
    _server_status(ferrostack, name, "RESCUE")
    ferrostack.os_ok(*c87, "server", "unrescue", name, fmt_json=False)
    _server_status(ferrostack, name, "ACTIVE")

    ferrostack.os_ok("--os-compute-api-version", "2.17", "server", "dump", "create", name,
                     fmt_json=False)
    ferrostack.os_ok("--os-compute-api-version", "2.93", "server", "rebuild", "--image", first,
                     "--reimage-boot-volume", "--wait", name, fmt_json=False)
    _server_status(ferrostack, name, "ACTIVE")
    actions = {field(a, "Action"): a for a in
               ferrostack.os_ok("server", "event", "list", server_id)}
    assert {"shelve", "unshelve", "rescue", "unrescue", "trigger_crash_dump",
            "rebuild"} <= set(actions), actions
    dump = ferrostack.os_ok("server", "event", "show", server_id,
                            field(actions["trigger_crash_dump"], "Request ID"))
    events = field(dump, "events")
    assert "Success" in str(events), dump
    ferrostack.os_ok("server", "delete", "--wait", name, fmt_json=False)
