"""Block storage (Cinder v3) compatibility tests.

Drives the stock `openstack` CLI and raw HTTP against the Ferrostack
all-in-one's volume API on 127.0.0.1:8776: volumes made by the file
backend, quotas, types, and the errors Cinder answers.

Run:  pytest -v tests/clients/test_volume.py
"""

from __future__ import annotations

import time

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
