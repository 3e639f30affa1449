"""Compute service (Nova v2.1) compatibility tests.

Drives the stock `openstack` CLI (openstacksdk), the legacy `nova` CLI
(python-novaclient) and raw HTTP against the Ferrostack all-in-one's
compute API on 127.0.0.1:8774, with the compute agent's fake driver:
servers boot to ACTIVE with an address from their subnet, and the
answers (status codes, error bodies, microversion headers, v2.1 shapes)
are the ones real Nova gives.

Run:  pytest -v tests/clients/test_compute.py
Env:  FERROSTACK_COMPUTE_URL  compute API (default http://127.0.0.1:8774)
      FERROSTACK_NETWORK_URL  networking API (default http://127.0.0.1:9696)
"""

from __future__ import annotations

import ipaddress
import os
import re
import time
from urllib.parse import urlparse

import pytest
import requests

from conftest import HTTP_TIMEOUT, field, run_legacy_cli, unique

COMPUTE_PORT = 8774
NETWORK_PORT = 9696
SUBNET = "10.77.0.0/24"
UUID_RE = re.compile(
    r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
BOOT_TIMEOUT = 120

# v2.1 server detail keys (tempest's server_detail schema allows exactly these)
DETAIL_KEYS = {
    "id", "name", "status", "image", "flavor", "fault", "user_id",
    "tenant_id", "created", "updated", "progress", "metadata", "links",
    "addresses", "hostId", "OS-DCF:diskConfig", "accessIPv4", "accessIPv6",
    "key_name", "security_groups", "OS-SRV-USG:launched_at",
    "OS-SRV-USG:terminated_at", "OS-EXT-AZ:availability_zone",
    "OS-EXT-STS:task_state", "OS-EXT-STS:vm_state", "OS-EXT-STS:power_state",
    "OS-EXT-SRV-ATTR:host", "OS-EXT-SRV-ATTR:instance_name",
    "OS-EXT-SRV-ATTR:hypervisor_hostname",
    "os-extended-volumes:volumes_attached", "config_drive",
}
FLAVORS = {"1": ("m1.tiny", 512, 1, 1), "2": ("m1.small", 2048, 1, 20),
           "3": ("m1.medium", 4096, 2, 40), "4": ("m1.large", 8192, 4, 80),
           "5": ("m1.xlarge", 16384, 8, 160)}


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------

def _url(env: str, port: int, fs) -> str:
    url = os.environ.get(env, "").rstrip("/")
    if url:
        return url
    u = urlparse(fs.url)
    return f"{u.scheme}://{u.hostname}:{port}"


class ComputeApi:
    """Raw HTTP access to the compute API (Nova dialect)."""

    def __init__(self, fs):
        self.fs = fs
        self.url = _url("FERROSTACK_COMPUTE_URL", COMPUTE_PORT, fs)
        self.v21 = self.url + "/v2.1"

    def wait_ready(self, timeout: float = 60.0):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                return requests.get(self.url + "/", timeout=2)
            except requests.RequestException as e:
                last = repr(e)
            time.sleep(0.25)
        pytest.fail(f"compute API not answering at {self.url} after "
                    f"{timeout}s (last: {last})\n{self.fs.log_tail()}")

    def req(self, method, path, token=None, **kw) -> requests.Response:
        url = path if path.startswith("http") else self.v21 + path
        headers = dict(kw.pop("headers", {}) or {})
        if token:
            headers["X-Auth-Token"] = token
        kw.setdefault("timeout", HTTP_TIMEOUT)
        return requests.request(method, url, headers=headers, **kw)

    def ok(self, method, path, token, code, **kw):
        r = self.req(method, path, token, **kw)
        expect(r, code)
        return r.json() if r.content else None

    def server(self, token, server_id) -> requests.Response:
        return self.req("GET", f"/servers/{server_id}", token)

    def wait_status(self, token, server_id, status,
                    timeout: float = BOOT_TIMEOUT) -> dict | None:
        """Poll until the server has `status` ("GONE" waits for 404)."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            r = self.server(token, server_id)
            if status == "GONE" and r.status_code == 404:
                return None
            if r.status_code == 200:
                last = r.json()["server"]
                if last["status"] == status:
                    return last
                if last["status"] == "ERROR" and status != "ERROR":
                    raise AssertionError(
                        f"server {server_id} went to ERROR: {last.get('fault')}")
            time.sleep(0.5)
        raise AssertionError(
            f"server {server_id} did not reach {status} in {timeout}s: {last}")


def expect(resp, code: int, what: str = ""):
    assert resp.status_code == code, (
        f"{what} {resp.request.method} {resp.url}: expected {code}, got "
        f"{resp.status_code}: {resp.text[:600]!r}")


def nova_error(resp, code: int, key: str, what: str = "") -> str:
    """Assert Nova's error document {key: {"code": code, "message": M}}."""
    expect(resp, code, what)
    body = resp.json()
    assert key in body, f"{what}: expected a {key!r} error, got {body}"
    assert body[key]["code"] == code, body
    assert isinstance(body[key]["message"], str) and body[key]["message"]
    return body[key]["message"]


def addresses_in(server: dict, cidr: str) -> list[str]:
    net = ipaddress.ip_network(cidr)
    return [a["addr"] for addrs in server["addresses"].values() for a in addrs
            if ipaddress.ip_address(a["addr"]) in net]


def cli_addresses(value) -> str:
    """The CLI prints addresses as a dict or as 'net=1.2.3.4' text."""
    return str(value)


# --------------------------------------------------------------------------
# fixtures
# --------------------------------------------------------------------------

@pytest.fixture(scope="session")
def compute_api(ferrostack) -> ComputeApi:
    api = ComputeApi(ferrostack)
    api.wait_ready()
    # The compute agent registers itself with its first heartbeat.
    tok = ferrostack.admin_token()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        r = api.req("GET", "/os-services", tok)
        if r.status_code == 200 and any(
                s["binary"] == "nova-compute" and s["state"] == "up"
                for s in r.json()["services"]):
            return api
        time.sleep(0.5)
    pytest.fail("no nova-compute service came up\n" + ferrostack.log_tail())


@pytest.fixture(scope="module")
def boot_env(ferrostack, compute_api, image_api):
    """A public image, a shared network with a subnet, a key pair."""
    admin = ferrostack.admin_token()
    img = image_api.create(admin, name=unique("cirros"), disk_format="raw",
                           container_format="bare", visibility="public")
    r = image_api.upload(admin, img["id"], b"\0" * 65536)
    assert r.status_code == 204, r.text
    image_api.wait_status(admin, img["id"], "active")
    net_name = unique("compute-net")
    net = ferrostack.os_ok("network", "create", "--share", net_name)
    ferrostack.os_ok("subnet", "create", "--network", net_name,
                     "--subnet-range", SUBNET, unique("compute-sub"))
    key = unique("key")
    out = ferrostack.os_ok("keypair", "create", key, fmt_json=False)
    assert "PRIVATE KEY" in out.output, out.describe()
    env = {"image": img["id"], "image_name": img["name"], "net": net_name,
           "net_id": field(net, "id"), "key": key}
    yield env
    for s in compute_api.ok("GET", "/servers?all_tenants=1", admin,
                            200)["servers"]:
        compute_api.req("DELETE", f"/servers/{s['id']}", admin)
    for s in compute_api.ok("GET", "/servers?all_tenants=1", admin,
                            200)["servers"]:
        compute_api.wait_status(admin, s["id"], "GONE")
    ferrostack.openstack("keypair", "delete", key, fmt_json=False)
    ferrostack.openstack("network", "delete", net_name, fmt_json=False)


# --------------------------------------------------------------------------
# discovery, flavors, key pairs
# --------------------------------------------------------------------------

def test_version_discovery_and_microversion_headers(compute_api, admin_token):
    r = requests.get(compute_api.url + "/", timeout=HTTP_TIMEOUT)
    expect(r, 200)
    v = r.json()["versions"]
    cur = [x for x in v if x["id"] == "v2.1"][0]
    assert cur["status"] == "CURRENT"
    assert cur["min_version"] == "2.1"
    served = cur["version"]
    major, minor = (int(n) for n in served.split("."))
    assert major == 2 and minor >= 31, served
    assert cur["links"][0]["href"].rstrip("/").endswith("/v2.1")

    r = compute_api.req("GET", "/flavors", admin_token,
                        headers={"OpenStack-API-Version": "compute 2.1"})
    expect(r, 200)
    assert r.headers["OpenStack-API-Version"] == "compute 2.1"
    assert r.headers["X-OpenStack-Nova-API-Version"] == "2.1"
    r = compute_api.req("GET", "/flavors", admin_token,
                        headers={"X-OpenStack-Nova-API-Version": "latest"})
    expect(r, 200)
    assert r.headers["X-OpenStack-Nova-API-Version"] == served
    assert r.headers["OpenStack-API-Version"] == f"compute {served}"
    r = compute_api.req("GET", "/flavors", admin_token,
                        headers={"OpenStack-API-Version": "compute 9.99"})
    expect(r, 406)


def test_default_flavors(ferrostack, compute_api, admin_token):
    rows = ferrostack.os_ok("flavor", "list")
    by_id = {field(r, "ID"): r for r in rows}
    for fid, (name, ram, vcpus, disk) in FLAVORS.items():
        assert fid in by_id, f"flavor {fid} missing: {rows}"
        row = by_id[fid]
        assert field(row, "Name") == name
        assert int(field(row, "RAM")) == ram
        assert int(field(row, "VCPUs")) == vcpus
        assert int(field(row, "Disk")) == disk
    flavor = compute_api.ok("GET", "/flavors/1", admin_token, 200)["flavor"]
    assert flavor["swap"] == ""
    assert flavor["os-flavor-access:is_public"] is True
    res = run_legacy_cli(ferrostack, "nova", "flavor-list")
    assert res.rc == 0, res.describe()
    assert "m1.tiny" in res.output and "m1.xlarge" in res.output


def test_keypairs_generate_and_import(ferrostack, tmp_path):
    name = unique("kp")
    # Recent clients generate the key locally and import its public half.
    out = ferrostack.os_ok("keypair", "create", name, fmt_json=False)
    assert "PRIVATE KEY" in out.output
    shown = ferrostack.os_ok("keypair", "show", name)
    fingerprint = field(shown, "fingerprint")
    assert re.match(r"^([0-9a-f]{2}:){15}[0-9a-f]{2}$", fingerprint)
    public = ferrostack.os_ok("keypair", "show", "--public-key", name,
                              fmt_json=False).output.strip()
    assert public.startswith("ssh-")
    pub_file = tmp_path / "id.pub"
    pub_file.write_text(public + "\n")
    imported = unique("kp-imported")
    made = ferrostack.os_ok("keypair", "create", "--public-key",
                            str(pub_file), imported)
    assert field(made, "fingerprint") == fingerprint
    names = {field(r, "Name") for r in ferrostack.os_ok("keypair", "list")}
    assert {name, imported} <= names
    # novaclient negotiates 2.96, where (from 2.92) the server no longer
    # generates keys; at 2.91 nova keypair-add still has it generate one
    legacy = unique("kp-nova")
    res = run_legacy_cli(ferrostack, "nova", "keypair-add", legacy)
    assert res.rc != 0 and "'public_key' is a required property" in res.output, res.describe()
    res = run_legacy_cli(ferrostack, "nova", "--os-compute-api-version", "2.91",
                         "keypair-add", legacy)
    assert res.rc == 0, res.describe()
    assert "PRIVATE KEY" in res.output
    for k in (name, imported, legacy):
        ferrostack.os_ok("keypair", "delete", k, fmt_json=False)
    fail = ferrostack.os_fail("keypair", "show", name)
    assert "No Keypair found" in fail.output or "404" in fail.output


# --------------------------------------------------------------------------
# servers with the openstack CLI
# --------------------------------------------------------------------------

def test_server_life_cycle_with_openstack_cli(ferrostack, compute_api,
                                              boot_env, admin_token):
    name = unique("vm1")
    created = ferrostack.os_ok(
        "server", "create", "--image", boot_env["image"], "--flavor",
        "m1.tiny", "--network", boot_env["net"], "--key-name",
        boot_env["key"], "--wait", name)
    server_id = field(created, "id")
    assert UUID_RE.match(server_id)
    assert field(created, "status") == "ACTIVE"
    assert field(created, "key_name") == boot_env["key"]
    assert "10.77.0." in cli_addresses(field(created, "addresses"))

    raw = compute_api.ok("GET", f"/servers/{server_id}", admin_token,
                         200)["server"]
    assert set(raw) <= DETAIL_KEYS, set(raw) - DETAIL_KEYS
    assert raw["OS-EXT-STS:vm_state"] == "active"
    assert raw["OS-EXT-STS:power_state"] == 1
    assert raw["OS-EXT-STS:task_state"] is None
    assert raw["flavor"]["id"] == "1"
    addrs = addresses_in(raw, SUBNET)
    assert len(addrs) == 1, raw["addresses"]

    # The port on the network API belongs to the server.
    net_url = _url("FERROSTACK_NETWORK_URL", NETWORK_PORT, ferrostack)
    r = requests.get(f"{net_url}/v2.0/ports",
                     params={"device_id": server_id},
                     headers={"X-Auth-Token": admin_token},
                     timeout=HTTP_TIMEOUT)
    expect(r, 200)
    ports = r.json()["ports"]
    assert len(ports) == 1
    assert ports[0]["device_owner"].startswith("compute:")
    assert ports[0]["fixed_ips"][0]["ip_address"] == addrs[0]

    rows = ferrostack.os_ok("server", "list")
    assert server_id in {field(r, "ID") for r in rows}
    shown = ferrostack.os_ok("server", "show", name)
    assert field(shown, "id") == server_id
    assert field(shown, "status") == "ACTIVE"

    ferrostack.os_ok("server", "reboot", "--wait", name, fmt_json=False)
    compute_api.wait_status(admin_token, server_id, "ACTIVE")
    ferrostack.os_ok("server", "reboot", "--hard", "--wait", name,
                     fmt_json=False)
    compute_api.wait_status(admin_token, server_id, "ACTIVE")

    ferrostack.os_ok("server", "stop", name, fmt_json=False)
    stopped = compute_api.wait_status(admin_token, server_id, "SHUTOFF")
    assert stopped["OS-EXT-STS:power_state"] == 4
    # Stopping a stopped server is a conflict.
    r = compute_api.req("POST", f"/servers/{server_id}/action", admin_token,
                        json={"os-stop": None})
    nova_error(r, 409, "conflictingRequest")
    ferrostack.os_ok("server", "start", name, fmt_json=False)
    compute_api.wait_status(admin_token, server_id, "ACTIVE")

    ferrostack.os_ok("server", "pause", name, fmt_json=False)
    compute_api.wait_status(admin_token, server_id, "PAUSED")
    ferrostack.os_ok("server", "unpause", name, fmt_json=False)
    compute_api.wait_status(admin_token, server_id, "ACTIVE")

    log = ferrostack.os_ok("console", "log", "show", name, fmt_json=False)
    assert log.output.strip(), "empty console log"

    ferrostack.os_ok("server", "delete", "--wait", name, fmt_json=False)
    compute_api.wait_status(admin_token, server_id, "GONE")
    r = requests.get(f"{net_url}/v2.0/ports",
                     params={"device_id": server_id},
                     headers={"X-Auth-Token": admin_token},
                     timeout=HTTP_TIMEOUT)
    assert r.json()["ports"] == [], "port left behind"
    fail = ferrostack.os_fail("server", "show", server_id)
    assert "No Server found" in fail.output or "404" in fail.output


def test_latest_microversion_with_the_cli_and_openstacksdk(
        ferrostack, compute_api, boot_env, admin_token):
    """`openstack --os-compute-api-version 2.latest` and openstacksdk's
    negotiation reach the served maximum and read its views."""
    served = requests.get(compute_api.url + "/", timeout=HTTP_TIMEOUT).json()
    served = [v for v in served["versions"] if v["id"] == "v2.1"][0]["version"]
    latest = ("--os-compute-api-version", "2.latest")
    name = unique("latest")
    created = ferrostack.os_ok(
        *latest, "server", "create", "--image", boot_env["image"],
        "--flavor", "m1.tiny", "--network", boot_env["net"], "--wait", name)
    server_id = field(created, "id")
    assert field(created, "status") == "ACTIVE"
    rows = ferrostack.os_ok(*latest, "server", "list", "--long")
    assert server_id in {field(r, "ID") for r in rows}
    shown = ferrostack.os_ok(*latest, "server", "show", name)
    assert field(shown, "id") == server_id
    # The views of the served version: 2.73's locked_reason, 2.71's groups.
    r = compute_api.req("GET", f"/servers/{server_id}", admin_token,
                        headers={"OpenStack-API-Version": "compute latest"})
    expect(r, 200)
    assert r.headers["OpenStack-API-Version"] == f"compute {served}"
    raw = r.json()["server"]
    assert raw["locked_reason"] is None and raw["server_groups"] == []

    import openstack
    os.environ["OS_CLIENT_CONFIG_FILE"] = str(ferrostack.clouds_yaml)
    conn = openstack.connect(cloud="ferrostack")
    got = conn.compute.get_server(server_id)
    assert got.id == server_id and got.status == "ACTIVE"
    served_pair = tuple(int(n) for n in served.split("."))
    assert conn.compute.get_endpoint_data().max_microversion == served_pair
    made = conn.compute.create_server(
        name=unique("sdk"), image_id=boot_env["image"], flavor_id="1",
        networks=[{"uuid": boot_env["net_id"]}])
    made = conn.compute.wait_for_server(made, wait=BOOT_TIMEOUT)
    assert made.status == "ACTIVE"
    conn.compute.delete_server(made)
    ferrostack.os_ok("server", "delete", "--wait", name, fmt_json=False)

    r = compute_api.req("GET", "/flavors", admin_token,
                        headers={"OpenStack-API-Version": "compute 2.101"})
    expect(r, 406)
    assert f"maximum is {served}" in r.text
    assert "Minimum is 2.1" in r.text


def test_microversion_2_100_and_2_96_with_the_clients(
        ferrostack, compute_api, boot_env, admin_token):
    """`openstack --os-compute-api-version 2.100 server show` reads the
    newest view (2.100's scheduler hints, 2.98's image properties, 2.96's
    pinned zone, 2.90's host name); `nova --os-compute-api-version 2.96
    list` lists the server."""
    name = unique("v2100")
    created = ferrostack.os_ok(
        "--os-compute-api-version", "2.100", "server", "create",
        "--image", boot_env["image"], "--flavor", "m1.tiny",
        "--network", boot_env["net"], "--hint", "cidr=/24",
        "--hostname", "web-1", "--wait", name)
    server_id = field(created, "id")
    shown = ferrostack.os_ok("--os-compute-api-version", "2.100", "server",
                             "show", name)
    assert field(shown, "id") == server_id
    assert field(shown, "status") == "ACTIVE"
    raw = compute_api.ok("GET", f"/servers/{server_id}", admin_token, 200,
                         headers={"OpenStack-API-Version": "compute 2.100"})
    raw = raw["server"]
    assert raw["scheduler_hints"] == {"cidr": ["/24"]}, raw
    assert raw["OS-EXT-SRV-ATTR:hostname"] == "web-1"
    assert raw["pinned_availability_zone"] is None
    assert isinstance(raw["image"]["properties"], dict)
    res = run_legacy_cli(ferrostack, "nova", "--os-compute-api-version",
                         "2.96", "list")
    assert res.rc == 0, res.describe()
    assert server_id in res.output and name in res.output
    ferrostack.os_ok("server", "delete", "--wait", name, fmt_json=False)
    r = compute_api.req("GET", f"/servers/{server_id}", admin_token,
                        headers={"OpenStack-API-Version": "compute 2.101"})
    expect(r, 406)
    assert "Minimum is 2.1 and maximum is 2.100" in r.text


def test_shelve_offload_and_unshelve_with_the_cli(ferrostack, compute_api,
                                                  boot_env, admin_token):
    """`openstack server shelve` offloads at once (Nova's default
    shelved_offload_time 0): the snapshot image is in the image service and
    the server has no host; `server unshelve --availability-zone` (2.77)
    brings it back, the image goes; the instance actions list both."""
    name = unique("shelf")
    created = ferrostack.os_ok(
        "server", "create", "--image", boot_env["image"], "--flavor",
        "m1.tiny", "--network", boot_env["net"], "--wait", name)
    server_id = field(created, "id")
    zone = compute_api.ok("GET", f"/servers/{server_id}", admin_token,
                          200)["server"]["OS-EXT-AZ:availability_zone"]
    ferrostack.os_ok("server", "shelve", name, fmt_json=False)
    s = compute_api.wait_status(admin_token, server_id, "SHELVED_OFFLOADED")
    assert s["OS-EXT-SRV-ATTR:host"] is None, s
    image = ferrostack.os_ok("image", "show", f"{name}-shelved")
    assert field(image, "status") == "active"
    # Shelving a shelved server is a conflict.
    r = compute_api.req("POST", f"/servers/{server_id}/action", admin_token,
                        json={"shelve": None})
    nova_error(r, 409, "conflictingRequest")
    ferrostack.os_ok("--os-compute-api-version", "2.77", "server", "unshelve",
                     "--availability-zone", zone, name, fmt_json=False)
    s = compute_api.wait_status(admin_token, server_id, "ACTIVE")
    assert s["OS-EXT-SRV-ATTR:host"], s
    deadline = time.monotonic() + 30
    while ferrostack.openstack("image", "show", f"{name}-shelved").rc == 0:
        assert time.monotonic() < deadline, "the shelved image was kept"
        time.sleep(0.5)
    actions = {field(a, "Action") for a in
               ferrostack.os_ok("server", "event", "list", server_id)}
    assert {"create", "shelve", "unshelve"} <= actions, actions
    ferrostack.os_ok("server", "delete", "--wait", name, fmt_json=False)


def test_rescue_and_unrescue_with_the_cli(ferrostack, compute_api, boot_env,
                                          admin_token):
    """`openstack server rescue --password` answers Nova's body and the
    server becomes RESCUE; a rescued server refuses a reboot (409);
    `server unrescue` brings it back to ACTIVE; the actions list both."""
    name = unique("rescue")
    created = ferrostack.os_ok(
        "server", "create", "--image", boot_env["image"], "--flavor",
        "m1.tiny", "--network", boot_env["net"], "--wait", name)
    server_id = field(created, "id")
    r = compute_api.req("POST", f"/servers/{server_id}/action", admin_token,
                        json={"rescue": {"adminPass": "Rescue-pw1"}})
    assert r.status_code == 200, r.text
    assert r.json() == {"adminPass": "Rescue-pw1"}
    compute_api.wait_status(admin_token, server_id, "RESCUE")
    r = compute_api.req("POST", f"/servers/{server_id}/action", admin_token,
                        json={"reboot": {"type": "HARD"}})
    nova_error(r, 409, "conflictingRequest")
    ferrostack.os_ok("server", "unrescue", name, fmt_json=False)
    compute_api.wait_status(admin_token, server_id, "ACTIVE")
    ferrostack.os_ok("server", "rescue", "--image", boot_env["image"], name,
                     fmt_json=False)
    compute_api.wait_status(admin_token, server_id, "RESCUE")
    actions = [field(a, "Action") for a in
               ferrostack.os_ok("server", "event", "list", server_id)]
    assert actions.count("rescue") == 2 and "unrescue" in actions, actions
    ferrostack.os_ok("server", "delete", "--wait", name, fmt_json=False)


# --------------------------------------------------------------------------
# servers with the legacy nova CLI
# --------------------------------------------------------------------------

def test_nova_boot_list_show_delete(ferrostack, compute_api, boot_env,
                                    admin_token):
    name = unique("nova-vm")
    res = run_legacy_cli(ferrostack, "nova", "boot", "--image",
                         boot_env["image"], "--flavor", "m1.tiny", "--nic",
                         f"net-id={boot_env['net_id']}", "--poll", name,
                         timeout=BOOT_TIMEOUT + 60)
    assert res.rc == 0, res.describe()
    servers = compute_api.ok("GET", f"/servers?name=^{name}$", admin_token,
                             200)["servers"]
    assert len(servers) == 1, servers
    server_id = servers[0]["id"]
    server = compute_api.wait_status(admin_token, server_id, "ACTIVE")
    assert addresses_in(server, SUBNET)

    res = run_legacy_cli(ferrostack, "nova", "list")
    assert res.rc == 0, res.describe()
    assert name in res.output and "ACTIVE" in res.output
    res = run_legacy_cli(ferrostack, "nova", "show", server_id)
    assert res.rc == 0, res.describe()
    assert server_id in res.output and "m1.tiny" in res.output

    res = run_legacy_cli(ferrostack, "nova", "delete", server_id)
    assert res.rc == 0, res.describe()
    compute_api.wait_status(admin_token, server_id, "GONE")
    res = run_legacy_cli(ferrostack, "nova", "list")
    assert server_id not in res.output


# --------------------------------------------------------------------------
# errors, isolation, quotas
# --------------------------------------------------------------------------

def test_bad_requests_and_project_isolation(ferrostack, compute_api,
                                            boot_env, admin_token,
                                            demo_token):
    body = {"server": {"name": "x", "imageRef": boot_env["image"],
                       "flavorRef": "no-such-flavor",
                       "networks": [{"uuid": boot_env["net_id"]}]}}
    r = compute_api.req("POST", "/servers", demo_token, json=body)
    nova_error(r, 400, "badRequest", "unknown flavor")
    body["server"]["flavorRef"] = "1"
    body["server"]["imageRef"] = "00000000-0000-0000-0000-000000000000"
    r = compute_api.req("POST", "/servers", demo_token, json=body)
    nova_error(r, 400, "badRequest", "unknown image")

    name = unique("private-vm")
    created = ferrostack.os_ok(
        "server", "create", "--image", boot_env["image"], "--flavor",
        "m1.tiny", "--network", boot_env["net"], "--wait", name)
    server_id = field(created, "id")
    for method, path, kw in (
            ("GET", f"/servers/{server_id}", {}),
            ("DELETE", f"/servers/{server_id}", {}),
            ("POST", f"/servers/{server_id}/action",
             {"json": {"os-stop": None}}),
            ("GET", f"/servers/{server_id}/ips", {})):
        r = compute_api.req(method, path, demo_token, **kw)
        nova_error(r, 404, "itemNotFound", f"demo {method} {path}")
    listed = compute_api.ok("GET", "/servers", demo_token, 200)["servers"]
    assert server_id not in {s["id"] for s in listed}
    fail = ferrostack.os_fail("server", "show", server_id,
                              cloud="ferrostack-demo")
    assert "No Server found" in fail.output or "404" in fail.output
    compute_api.wait_status(admin_token, server_id, "ACTIVE")
    ferrostack.os_ok("server", "delete", "--wait", server_id, fmt_json=False)


def test_quota_refuses_the_instance_over_the_limit(ferrostack, compute_api,
                                                   boot_env, admin_token,
                                                   demo_token):
    demo_project = field(ferrostack.os_ok("project", "show", "demo"), "id")
    compute_api.ok("PUT", f"/os-quota-sets/{demo_project}", admin_token, 200,
                   json={"quota_set": {"instances": 2}})
    try:
        quota = compute_api.ok("GET", f"/os-quota-sets/{demo_project}",
                               demo_token, 200)["quota_set"]
        assert quota["instances"] == 2 and quota["id"] == demo_project
        made = []
        for _ in range(2):
            row = ferrostack.os_ok(
                "server", "create", "--image", boot_env["image"],
                "--flavor", "m1.tiny", "--network", boot_env["net"],
                unique("demo-vm"), cloud="ferrostack-demo")
            made.append(field(row, "id"))
        fail = ferrostack.os_fail(
            "server", "create", "--image", boot_env["image"], "--flavor",
            "m1.tiny", "--network", boot_env["net"], unique("demo-vm"),
            cloud="ferrostack-demo")
        assert "Quota exceeded" in fail.output, fail.describe()
        r = compute_api.req("POST", "/servers", demo_token, json={"server": {
            "name": "over", "imageRef": boot_env["image"], "flavorRef": "1",
            "networks": [{"uuid": boot_env["net_id"]}]}})
        msg = nova_error(r, 403, "forbidden", "over quota")
        assert "instances" in msg
        limits = compute_api.ok("GET", "/limits", demo_token,
                                200)["limits"]["absolute"]
        assert limits["maxTotalInstances"] == 2
        assert limits["totalInstancesUsed"] == 2
        for sid in made:
            compute_api.wait_status(demo_token, sid, "ACTIVE")
            ferrostack.os_ok("server", "delete", "--wait", sid,
                             cloud="ferrostack-demo", fmt_json=False)
    finally:
        compute_api.req("DELETE", f"/os-quota-sets/{demo_project}",
                        admin_token)


# --------------------------------------------------------------------------
# services, hypervisors, zones, usage
# --------------------------------------------------------------------------

def test_compute_services_hypervisors_and_zones(ferrostack, compute_api,
                                                admin_token, demo_token):
    rows = ferrostack.os_ok("compute", "service", "list")
    computes = [r for r in rows if field(r, "Binary") == "nova-compute"]
    assert computes, rows
    assert field(computes[0], "State") == "up"
    assert field(computes[0], "Status") == "enabled"
    host = field(computes[0], "Host")

    r = compute_api.req("GET", "/os-services", demo_token)
    nova_error(r, 403, "forbidden", "non-admin os-services")

    ferrostack.os_ok("compute", "service", "set", "--disable",
                     "--disable-reason", "maintenance", host, "nova-compute",
                     fmt_json=False)
    svc = [s for s in compute_api.ok("GET", "/os-services", admin_token,
                                     200)["services"]
           if s["host"] == host and s["binary"] == "nova-compute"][0]
    assert svc["status"] == "disabled"
    assert svc["disabled_reason"] == "maintenance"
    ferrostack.os_ok("compute", "service", "set", "--enable", host,
                     "nova-compute", fmt_json=False)

    hyps = ferrostack.os_ok("hypervisor", "list")
    assert hyps and field(hyps[0], "State") == "up"
    detail = compute_api.ok("GET", "/os-hypervisors/detail", admin_token,
                            200)["hypervisors"]
    assert detail[0]["hypervisor_type"] == "fake"
    assert isinstance(detail[0]["id"], int)
    stats = compute_api.ok("GET", "/os-hypervisors/statistics", admin_token,
                           200)["hypervisor_statistics"]
    assert stats["count"] >= 1 and stats["vcpus"] > 0

    zones = ferrostack.os_ok("availability", "zone", "list", "--compute")
    assert "nova" in {field(z, "Zone Name") for z in zones}

    # (`openstack limits show` also asks the volume API, so ask directly.)
    absolute = compute_api.ok("GET", "/limits", demo_token,
                              200)["limits"]["absolute"]
    assert {"maxTotalInstances", "maxTotalCores", "maxTotalRAMSize",
            "totalInstancesUsed"} <= set(absolute)
    ferrostack.os_ok("usage", "list")

    usage = compute_api.ok("GET", "/os-simple-tenant-usage?detailed=1",
                           admin_token, 200)
    assert "tenant_usages" in usage
