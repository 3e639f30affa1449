"""Networking service (Neutron v2.0) compatibility tests.

Drives the stock `openstack` CLI (openstacksdk) and raw HTTP against the
Ferrostack all-in-one's networking API on 127.0.0.1:9696 and checks the
outcomes real Neutron produces (ML2 + L3 router service plugin, default
policies, allow_overlapping_ips = True).

The first fixture replays section 5 of the seed ("First VM") with today's
CLI; the seed's addresses are asserted: tenant subnet pool .2-.254 and
gateway .1, the router's external gateway port takes .110 (the first
address of the external pool) and the two floating IPs .111 then .112.
(Havana allocated sequentially, which is what the seed shows; modern
Neutron picks at random among the first free addresses of the pool, so
sequential first-free allocation is one of its valid outcomes.)

Run:  pytest -v tests/clients/test_network.py
Env:  FERROSTACK_NETWORK_URL  networking API (default http://127.0.0.1:9696)
"""

from __future__ import annotations

import ipaddress
import os
import re
import time
import uuid
from urllib.parse import urlparse

import pytest
import requests

from conftest import DEMO_PASSWORD, HTTP_TIMEOUT, field, unique

NETWORK_PORT = 9696
UUID_RE = re.compile(
    r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
TS_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
MAC_RE = re.compile(r"^([0-9a-f]{2}:){5}[0-9a-f]{2}$")

# Keys real Neutron (ML2/OVS + router plugin) always returns for these
# resources when the corresponding extensions are listed.  Extra keys from
# further extensions are fine; these must be present.
NETWORK_KEYS = {
    "id", "name", "tenant_id", "project_id", "admin_state_up", "status",
    "subnets", "shared", "router:external", "mtu", "port_security_enabled",
    "availability_zone_hints", "availability_zones", "description", "tags",
    "created_at", "updated_at", "revision_number",
}
PROVIDER_KEYS = {"provider:network_type", "provider:physical_network",
                 "provider:segmentation_id"}
SUBNET_KEYS = {
    "id", "name", "tenant_id", "project_id", "network_id", "ip_version",
    "cidr", "gateway_ip", "allocation_pools", "enable_dhcp",
    "dns_nameservers", "host_routes", "ipv6_ra_mode", "ipv6_address_mode",
    "subnetpool_id", "description", "tags", "created_at", "updated_at",
    "revision_number",
}
PORT_KEYS = {
    "id", "name", "tenant_id", "project_id", "network_id", "admin_state_up",
    "status", "mac_address", "fixed_ips", "device_id", "device_owner",
    "security_groups", "allowed_address_pairs", "port_security_enabled",
    "description", "tags", "created_at", "updated_at", "revision_number",
}
PORT_BINDING_KEYS = {"binding:host_id", "binding:vif_type",
                     "binding:vif_details", "binding:vnic_type",
                     "binding:profile"}
ROUTER_KEYS = {
    "id", "name", "tenant_id", "project_id", "admin_state_up", "status",
    "external_gateway_info", "routes", "description", "tags", "created_at",
    "updated_at", "revision_number",
}
FIP_KEYS = {
    "id", "tenant_id", "project_id", "floating_ip_address",
    "floating_network_id", "fixed_ip_address", "port_id", "router_id",
    "status", "description", "tags", "created_at", "updated_at",
    "revision_number",
}
SG_KEYS = {"id", "name", "tenant_id", "project_id", "description",
           "security_group_rules", "created_at", "updated_at",
           "revision_number", "tags"}
SG_RULE_KEYS = {
    "id", "tenant_id", "project_id", "security_group_id", "direction",
    "ethertype", "protocol", "port_range_min", "port_range_max",
    "remote_group_id", "remote_ip_prefix", "description", "created_at",
    "updated_at", "revision_number",
}
QUOTA_KEYS = {"network", "subnet", "port", "router", "floatingip",
              "security_group", "security_group_rule"}
# Extensions the issue asks for (Neutron aliases)
REQUIRED_EXTENSIONS = {
    "router", "external-net", "ext-gw-mode", "extraroute", "security-group",
    "quotas", "agent", "l3_agent_scheduler", "dhcp_agent_scheduler",
    "provider", "binding", "allowed-address-pairs", "port-security",
    "net-mtu", "tag", "pagination", "sorting",
}


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------

class NetworkApi:
    """Raw HTTP access to the networking API (Neutron dialect)."""

    def __init__(self, fs):
        self.fs = fs
        url = os.environ.get("FERROSTACK_NETWORK_URL", "").rstrip("/")
        if not url:
            u = urlparse(fs.url)
            url = f"{u.scheme}://{u.hostname}:{NETWORK_PORT}"
        self.url = url
        self.v2 = url + "/v2.0"

    def wait_ready(self, timeout: float = 60.0):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                return requests.get(self.url + "/", timeout=2)
            except requests.RequestException as e:
                last = repr(e)
            time.sleep(0.25)
        pytest.fail(f"networking API not answering at {self.url} after "
                    f"{timeout}s (last: {last})\n{self.fs.log_tail()}")

    def req(self, method, path, token=None, **kw) -> requests.Response:
        url = path if path.startswith("http") else self.v2 + path
        headers = dict(kw.pop("headers", {}) or {})
        if token:
            headers["X-Auth-Token"] = token
        kw.setdefault("timeout", HTTP_TIMEOUT)
        return requests.request(method, url, headers=headers, **kw)

    def ok(self, method, path, token, code, **kw) -> dict | None:
        r = self.req(method, path, token, **kw)
        expect(r, code)
        return r.json() if r.content else None

    def create(self, token, kind, **body) -> dict:
        """POST /v2.0/<path> {<kind>: body} -> 201, returns the object."""
        return self.ok("POST", f"/{url_of(kind)}", token, 201,
                       json={kind: body})[kind]

    def show(self, token, kind, id_, **params) -> dict:
        return self.ok("GET", f"/{url_of(kind)}/{id_}", token, 200,
                       params=params)[kind]

    def list(self, token, kind, **params) -> list:
        return self.ok("GET", f"/{url_of(kind)}", token, 200,
                       params=params)[kind + "s"]

    def delete(self, token, kind, id_) -> requests.Response:
        return self.req("DELETE", f"/{url_of(kind)}/{id_}", token)


def url_of(kind: str) -> str:
    """URL path of a resource collection: security_group ->
    security-groups (the JSON key stays security_groups)."""
    return kind.replace("_", "-") + "s"


def expect(resp, code: int, what: str = ""):
    assert resp.status_code == code, (
        f"{what} {resp.request.method} {resp.url}: expected {code}, got "
        f"{resp.status_code}: {resp.text[:600]!r}")


def neutron_error(resp, code: int, types, what: str = "") -> str:
    """Assert a Neutron error: status code and body
    {"NeutronError": {"type": T, "message": M, "detail": ""}} with T in
    types; returns the message."""
    expect(resp, code, what)
    try:
        err = resp.json()["NeutronError"]
    except (ValueError, KeyError, TypeError):
        raise AssertionError(
            f"{what}: {resp.status_code} body is not a NeutronError "
            f"document: {resp.text[:400]!r}") from None
    if isinstance(types, str):
        types = {types}
    assert err.get("type") in types, (
        f"{what}: NeutronError type {err.get('type')!r}, Neutron says one "
        f"of {sorted(types)}; body {err}")
    assert isinstance(err.get("message"), str) and err["message"], err
    assert "detail" in err, f"NeutronError without 'detail': {err}"
    return err["message"]


def ip_in(ip: str, cidr: str) -> bool:
    return ipaddress.ip_address(ip) in ipaddress.ip_network(cidr)


def ids(rows) -> set:
    return {field(r, "ID") for r in rows}


def names(rows) -> set:
    return {field(r, "Name") for r in rows}


# --------------------------------------------------------------------------
# fixtures
# --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def net(ferrostack) -> NetworkApi:
    api = NetworkApi(ferrostack)
    api.wait_ready()
    return api


@pytest.fixture(scope="module")
def admin_tok(ferrostack) -> str:
    return ferrostack.admin_token()


@pytest.fixture(scope="module")
def demo_tok(ferrostack) -> str:
    return ferrostack.issue_token("demo", DEMO_PASSWORD, "demo")[0]


@pytest.fixture(scope="module")
def demo_project_id(ferrostack) -> str:
    return ferrostack.issue_token("demo", DEMO_PASSWORD, "demo")[1][
        "project"]["id"]


@pytest.fixture(scope="module")
def seed(ferrostack, net, admin_tok) -> dict:
    """Section 5 of the seed with the stock CLI, as admin. Everything the
    later tests check is recorded here, in the order it happened, so the
    floating IP addresses are the first ones the external pool gives."""
    fs = ferrostack
    out = {}
    out["net_admin"] = fs.os_ok("network", "create", "net_admin")
    out["sub_admin"] = fs.os_ok(
        "subnet", "create", "--network", "net_admin",
        "--subnet-range", "50.50.1.0/24", "sub_admin")
    out["router"] = fs.os_ok("router", "create", "router_admin")
    out["agents"] = fs.os_ok("network", "agent", "list")
    fs.os_ok("router", "add", "subnet", "router_admin", "sub_admin",
             fmt_json=False)
    out["net_external"] = fs.os_ok(
        "network", "create", "--external", "--share", "net_external")
    out["sub_external"] = fs.os_ok(
        "subnet", "create", "--network", "net_external", "--no-dhcp",
        "--allocation-pool", "start=192.168.100.110,end=192.168.100.130",
        "--gateway", "192.168.100.1", "--subnet-range", "192.168.100.0/24",
        "sub_external")
    fs.os_ok("router", "set", "--external-gateway", "net_external",
             "router_admin", fmt_json=False)
    out["router_gw"] = fs.os_ok("router", "show", "router_admin")
    out["fip1"] = fs.os_ok("floating", "ip", "create", "net_external")
    out["fip2"] = fs.os_ok("floating", "ip", "create", "net_external")
    out["ext_net_id"] = field(out["net_external"], "id")
    out["net_admin_id"] = field(out["net_admin"], "id")
    out["sub_admin_id"] = field(out["sub_admin"], "id")
    out["router_id"] = field(out["router"], "id")
    return out


# --------------------------------------------------------------------------
# discovery
# --------------------------------------------------------------------------

def test_version_discovery(net, admin_tok):
    r = requests.get(net.url + "/", timeout=HTTP_TIMEOUT)
    expect(r, 200, "GET / (no token)")
    versions = r.json()["versions"]
    assert [v["id"] for v in versions] == ["v2.0"], versions
    v2 = versions[0]
    assert v2["status"] == "CURRENT", v2
    selfs = [lk["href"] for lk in v2["links"] if lk["rel"] == "self"]
    assert selfs and selfs[0].rstrip("/").endswith("/v2.0"), v2
    # tempest: GET /v2.0/ lists the resources
    res = net.ok("GET", net.v2 + "/", admin_tok, 200)["resources"]
    got = {x["name"]: x for x in res}
    for name in ("network", "subnet", "port"):
        assert name in got, f"{name} not in /v2.0/ resources {sorted(got)}"
        assert got[name]["collection"] == name + "s", got[name]
        assert got[name]["links"][0]["href"].endswith("/v2.0/" + name + "s")


def test_unauthenticated_is_401(net):
    r = net.req("GET", "/networks")
    expect(r, 401, "no token")
    r = net.req("GET", "/networks", "not-a-token")
    expect(r, 401, "bad token")


def test_extensions(net, admin_tok):
    exts = net.ok("GET", "/extensions", admin_tok, 200)["extensions"]
    by_alias = {e["alias"]: e for e in exts}
    missing = REQUIRED_EXTENSIONS - set(by_alias)
    assert not missing, f"extensions missing: {sorted(missing)}"
    for e in exts:
        assert set(e) >= {"alias", "name", "description", "updated",
                          "links"}, e
        one = net.ok("GET", f"/extensions/{e['alias']}", admin_tok, 200)
        assert one["extension"] == e, (one, e)
    r = net.req("GET", "/extensions/no-such-extension", admin_tok)
    expect(r, 404, "unknown extension")
    # the CLI asks for an extension by alias and needs the 404
    # (`router set --external-gateway` probes external-gateway-multihoming)


def test_cli_extension_list(ferrostack):
    rows = ferrostack.os_ok("extension", "list", "--network")
    aliases = {field(r, "Alias") for r in rows}
    assert REQUIRED_EXTENSIONS <= aliases, sorted(REQUIRED_EXTENSIONS - aliases)


# --------------------------------------------------------------------------
# section 5 of the seed
# --------------------------------------------------------------------------

def test_seed_tenant_network(seed, net, admin_tok):
    n = seed["net_admin"]
    assert field(n, "name") == "net_admin"
    assert field(n, "status") == "ACTIVE"
    assert field(n, "admin_state_up") is True
    assert field(n, "shared") is False
    assert field(n, "router:external") is False
    assert UUID_RE.match(field(n, "id"))
    body = net.show(admin_tok, "network", seed["net_admin_id"])
    missing = (NETWORK_KEYS | PROVIDER_KEYS) - set(body)
    assert not missing, f"network lacks {sorted(missing)}: {body}"
    # the seed used GRE; this host's kernel has no GRE, so Ferrostack's
    # default tenant type is VXLAN, with the seed's ids 1:1000
    assert body["provider:network_type"] == "vxlan", body
    assert body["provider:physical_network"] is None, body
    seg = body["provider:segmentation_id"]
    assert isinstance(seg, int) and 1 <= seg <= 1000, body
    assert body["tenant_id"] == body["project_id"], body
    assert TS_RE.match(body["created_at"]), body["created_at"]
    assert isinstance(body["mtu"], int) and body["mtu"] > 0, body
    assert body["subnets"] == [seed["sub_admin_id"]], body


def test_seed_tenant_subnet(seed, net, admin_tok):
    s = seed["sub_admin"]
    assert field(s, "cidr") == "50.50.1.0/24"
    assert field(s, "gateway_ip") == "50.50.1.1"
    assert field(s, "allocation_pools") == [
        {"start": "50.50.1.2", "end": "50.50.1.254"}], s
    assert field(s, "enable_dhcp") is True
    assert field(s, "ip_version") == 4
    body = net.show(admin_tok, "subnet", seed["sub_admin_id"])
    missing = SUBNET_KEYS - set(body)
    assert not missing, f"subnet lacks {sorted(missing)}: {body}"
    assert body["network_id"] == seed["net_admin_id"]
    assert body["dns_nameservers"] == [] and body["host_routes"] == []


def test_seed_router_interface(seed, net, admin_tok):
    ports = net.list(admin_tok, "port", device_id=seed["router_id"],
                     device_owner="network:router_interface")
    assert len(ports) == 1, ports
    p = ports[0]
    assert p["network_id"] == seed["net_admin_id"], p
    assert p["fixed_ips"] == [{"subnet_id": seed["sub_admin_id"],
                               "ip_address": "50.50.1.1"}], p
    # router ports carry no security groups
    assert p["security_groups"] == [], p


def test_seed_external_network(seed, net, admin_tok):
    n = seed["net_external"]
    assert field(n, "router:external") is True
    assert field(n, "shared") is True
    s = seed["sub_external"]
    assert field(s, "enable_dhcp") is False
    assert field(s, "gateway_ip") == "192.168.100.1"
    assert field(s, "allocation_pools") == [
        {"start": "192.168.100.110", "end": "192.168.100.130"}], s
    body = net.show(admin_tok, "network", seed["ext_net_id"])
    a = net.show(admin_tok, "network", seed["net_admin_id"])
    assert body["provider:segmentation_id"] != a["provider:segmentation_id"]


def test_seed_router_gateway(seed, net, admin_tok):
    r = net.show(admin_tok, "router", seed["router_id"])
    missing = ROUTER_KEYS - set(r)
    assert not missing, f"router lacks {sorted(missing)}: {r}"
    gw = r["external_gateway_info"]
    assert gw["network_id"] == seed["ext_net_id"], gw
    assert gw["enable_snat"] is True, gw
    ext_sub = field(seed["sub_external"], "id")
    assert gw["external_fixed_ips"] == [
        {"subnet_id": ext_sub, "ip_address": "192.168.100.110"}], gw
    gw_ports = net.list(admin_tok, "port", network_id=seed["ext_net_id"],
                        device_id=seed["router_id"])
    assert len(gw_ports) == 1, gw_ports
    assert gw_ports[0]["device_owner"] == "network:router_gateway"
    # the gateway port belongs to no project (Neutron: tenant_id "")
    assert gw_ports[0]["project_id"] == "", gw_ports[0]
    # the CLI shows the same
    cli = field(seed["router_gw"], "external_gateway_info")
    assert cli["external_fixed_ips"][0]["ip_address"] == "192.168.100.110"


def test_seed_floating_ips(seed, net, admin_tok):
    f1, f2 = seed["fip1"], seed["fip2"]
    assert field(f1, "floating_ip_address") == "192.168.100.111", f1
    assert field(f2, "floating_ip_address") == "192.168.100.112", f2
    for f in (f1, f2):
        assert field(f, "floating_network_id") == seed["ext_net_id"]
        assert field(f, "port_id") is None
        assert field(f, "fixed_ip_address") is None
        assert field(f, "router_id") is None
    body = net.show(admin_tok, "floatingip", field(f1, "id"))
    missing = FIP_KEYS - set(body)
    assert not missing, f"floatingip lacks {sorted(missing)}: {body}"
    assert body["status"] == "DOWN", body
    fports = net.list(admin_tok, "port", device_id=field(f1, "id"))
    assert [p["device_owner"] for p in fports] == ["network:floatingip"]
    assert fports[0]["fixed_ips"][0]["ip_address"] == "192.168.100.111"


def test_seed_agent_list(seed, ferrostack):
    # agents appear once the data plane exists; until then the list is a
    # (possibly empty) JSON list
    agents = seed["agents"]
    assert isinstance(agents, list), agents
    for a in agents:
        assert field(a, "Agent Type") in {
            "DHCP agent", "L3 agent", "Open vSwitch agent",
            "Metadata agent", "Linux bridge agent"}, a
        assert field(a, "Alive") in (True, False, ":-)", "XXX"), a


def test_agents_hidden_from_members(net, demo_tok):
    # tempest AgentManagementNegativeTest: 200 with an empty list
    body = net.ok("GET", "/agents", demo_tok, 200)
    assert body == {"agents": []}, body


# --------------------------------------------------------------------------
# associating a floating IP through the router
# --------------------------------------------------------------------------

def test_floating_ip_associate(seed, ferrostack, net, admin_tok):
    port = ferrostack.os_ok("port", "create", "--network", "net_admin",
                            unique("vm-port"))
    port_id = field(port, "id")
    ip = field(port, "fixed_ips")[0]["ip_address"]
    assert ip_in(ip, "50.50.1.0/24") and ip != "50.50.1.1", port
    assert field(port, "status") == "DOWN", port
    fip = field(seed["fip1"], "id")
    ferrostack.os_ok("floating", "ip", "set", "--port", port_id, fip,
                     fmt_json=False)
    body = net.show(admin_tok, "floatingip", fip)
    assert body["port_id"] == port_id, body
    assert body["fixed_ip_address"] == ip, body
    assert body["router_id"] == seed["router_id"], body
    ferrostack.os_ok("floating", "ip", "unset", "--port", fip,
                     fmt_json=False)
    body = net.show(admin_tok, "floatingip", fip)
    assert body["port_id"] is None and body["router_id"] is None, body
    expect(net.delete(admin_tok, "port", port_id), 204)


def test_floating_ip_needs_router_gateway(seed, net, admin_tok):
    """A port whose network has no router to the external network:
    404 ExternalGatewayForFloatingIPNotFound."""
    n = net.create(admin_tok, "network", name=unique("isolated"))
    s = net.create(admin_tok, "subnet", network_id=n["id"], ip_version=4,
                   cidr="10.77.0.0/24")
    p = net.create(admin_tok, "port", network_id=n["id"])
    try:
        r = net.req("POST", "/floatingips", admin_tok, json={"floatingip": {
            "floating_network_id": seed["ext_net_id"], "port_id": p["id"]}})
        neutron_error(r, 404, "ExternalGatewayForFloatingIPNotFound",
                      "floating IP for an unreachable port")
        # and a floating IP from a network that is not external: 400
        r = net.req("POST", "/floatingips", admin_tok, json={"floatingip": {
            "floating_network_id": n["id"]}})
        neutron_error(r, 400, {"BadRequest", "InvalidInput"},
                      "floating IP from an internal network")
    finally:
        net.delete(admin_tok, "port", p["id"])
        net.delete(admin_tok, "network", n["id"])
    assert s["gateway_ip"] == "10.77.0.1"


# --------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------

def test_overlapping_subnet_refused(seed, ferrostack, net, admin_tok):
    res = ferrostack.os_fail("subnet", "create", "--network", "net_admin",
                             "--subnet-range", "50.50.1.128/25",
                             unique("overlap"))
    assert "overlaps with another subnet" in res.output, res.describe()
    r = net.req("POST", "/subnets", admin_tok, json={"subnet": {
        "network_id": seed["net_admin_id"], "ip_version": 4,
        "cidr": "50.50.0.0/16"}})
    msg = neutron_error(r, 400, "InvalidInput", "overlapping subnet")
    assert msg == ("Invalid input for operation: Requested subnet with cidr:"
                   f" 50.50.0.0/16 for network: {seed['net_admin_id']} "
                   "overlaps with another subnet."), msg
    # the same CIDR on another network is fine (overlapping IPs allowed)
    n = net.create(admin_tok, "network", name=unique("overlap-ok"))
    try:
        s = net.create(admin_tok, "subnet", network_id=n["id"],
                       ip_version=4, cidr="50.50.1.0/24")
        assert s["allocation_pools"] == [{"start": "50.50.1.2",
                                          "end": "50.50.1.254"}]
    finally:
        expect(net.delete(admin_tok, "network", n["id"]), 204)


def test_pool_outside_cidr_refused(seed, ferrostack, net, admin_tok):
    n = ferrostack.os_ok("network", "create", unique("pools"))
    nid = field(n, "id")
    try:
        res = ferrostack.os_fail(
            "subnet", "create", "--network", nid,
            "--subnet-range", "10.20.30.0/24",
            "--allocation-pool", "start=10.20.30.100,end=10.20.31.10",
            unique("badpool"))
        assert "spans beyond the subnet cidr" in res.output, res.describe()
        r = net.req("POST", "/subnets", admin_tok, json={"subnet": {
            "network_id": nid, "ip_version": 4, "cidr": "10.20.30.0/24",
            "allocation_pools": [{"start": "10.20.29.1",
                                  "end": "10.20.30.20"}]}})
        msg = neutron_error(r, 400, "OutOfBoundsAllocationPool",
                            "pool outside the CIDR")
        assert "10.20.30.0/24" in msg, msg
        # the broadcast address is outside the usable range too
        r = net.req("POST", "/subnets", admin_tok, json={"subnet": {
            "network_id": nid, "ip_version": 4, "cidr": "10.20.30.0/24",
            "allocation_pools": [{"start": "10.20.30.200",
                                  "end": "10.20.30.255"}]}})
        neutron_error(r, 400, "OutOfBoundsAllocationPool", "pool with broadcast")
        # a pool containing the gateway: 409 GatewayConflictWithAllocationPools
        r = net.req("POST", "/subnets", admin_tok, json={"subnet": {
            "network_id": nid, "ip_version": 4, "cidr": "10.20.30.0/24",
            "gateway_ip": "10.20.30.5",
            "allocation_pools": [{"start": "10.20.30.2",
                                  "end": "10.20.30.20"}]}})
        neutron_error(r, 409, "GatewayConflictWithAllocationPools",
                      "pool containing the gateway")
        # a malformed CIDR: 400
        r = net.req("POST", "/subnets", admin_tok, json={"subnet": {
            "network_id": nid, "ip_version": 4, "cidr": "10.20.30.0/33"}})
        neutron_error(r, 400, {"HTTPBadRequest", "InvalidInput", "BadRequest"},
                      "bad CIDR")
        # nothing was created by the failures
        assert net.list(admin_tok, "subnet", network_id=nid) == []
    finally:
        expect(net.delete(admin_tok, "network", nid), 204)


def test_fixed_ip_in_use_conflict(seed, ferrostack, net, admin_tok):
    name = unique("fixed")
    p = ferrostack.os_ok("port", "create", "--network", "net_admin",
                         "--fixed-ip", "subnet=sub_admin,ip-address=50.50.1.50",
                         name)
    try:
        assert field(p, "fixed_ips") == [{"subnet_id": seed["sub_admin_id"],
                                          "ip_address": "50.50.1.50"}], p
        res = ferrostack.os_fail(
            "port", "create", "--network", "net_admin",
            "--fixed-ip", "subnet=sub_admin,ip-address=50.50.1.50",
            unique("fixed-dup"))
        assert "50.50.1.50" in res.output and "409" in res.output, \
            res.describe()
        r = net.req("POST", "/ports", admin_tok, json={"port": {
            "network_id": seed["net_admin_id"],
            "fixed_ips": [{"ip_address": "50.50.1.50"}]}})
        msg = neutron_error(r, 409, {"IpAddressAlreadyAllocated",
                                     "IpAddressInUse"}, "IP in use")
        assert "50.50.1.50" in msg, msg
        # the router's .1 is taken as well
        r = net.req("POST", "/ports", admin_tok, json={"port": {
            "network_id": seed["net_admin_id"],
            "fixed_ips": [{"subnet_id": seed["sub_admin_id"],
                           "ip_address": "50.50.1.1"}]}})
        neutron_error(r, 409, {"IpAddressAlreadyAllocated",
                               "IpAddressInUse"}, "gateway IP in use")
        # an address outside the subnet: 400 InvalidIpForSubnet
        r = net.req("POST", "/ports", admin_tok, json={"port": {
            "network_id": seed["net_admin_id"],
            "fixed_ips": [{"subnet_id": seed["sub_admin_id"],
                           "ip_address": "50.50.2.7"}]}})
        neutron_error(r, 400, "InvalidIpForSubnet", "IP outside subnet")
        # ... and outside every subnet of the network: InvalidIpForNetwork
        r = net.req("POST", "/ports", admin_tok, json={"port": {
            "network_id": seed["net_admin_id"],
            "fixed_ips": [{"ip_address": "50.50.2.7"}]}})
        neutron_error(r, 400, "InvalidIpForNetwork", "IP outside network")
        # filter by address (the syntax tempest and the CLI use)
        found = net.list(admin_tok, "port", fixed_ips="ip_address=50.50.1.50")
        assert [x["id"] for x in found] == [field(p, "id")], found
        rows = ferrostack.os_ok("port", "list", "--fixed-ip",
                                "ip-address=50.50.1.50")
        assert ids(rows) == {field(p, "id")}, rows
    finally:
        expect(net.delete(admin_tok, "port", field(p, "id")), 204)
    # released: the address can be taken again
    q = net.create(admin_tok, "port", network_id=seed["net_admin_id"],
                   fixed_ips=[{"ip_address": "50.50.1.50"}])
    expect(net.delete(admin_tok, "port", q["id"]), 204)


def test_exhausted_pool_conflict(ferrostack, net, admin_tok):
    n = ferrostack.os_ok("network", "create", unique("tiny"))
    nid = field(n, "id")
    try:
        s = ferrostack.os_ok(
            "subnet", "create", "--network", nid, "--no-dhcp",
            "--subnet-range", "10.66.0.0/29",
            "--allocation-pool", "start=10.66.0.2,end=10.66.0.3",
            unique("tiny-sub"))
        assert field(s, "gateway_ip") == "10.66.0.1"
        got = set()
        for _ in range(2):
            p = net.create(admin_tok, "port", network_id=nid)
            got.add(p["fixed_ips"][0]["ip_address"])
        assert got == {"10.66.0.2", "10.66.0.3"}, got
        r = net.req("POST", "/ports", admin_tok,
                    json={"port": {"network_id": nid}})
        msg = neutron_error(r, 409, "IpAddressGenerationFailure",
                            "exhausted pool")
        assert msg == f"No more IP addresses available on network {nid}.", msg
        res = ferrostack.os_fail("port", "create", "--network", nid,
                                 unique("one-too-many"))
        assert "No more IP addresses available" in res.output, res.describe()
        # an explicit address outside the pool but inside the CIDR is allowed
        p = net.create(admin_tok, "port", network_id=nid,
                       fixed_ips=[{"ip_address": "10.66.0.5"}])
        assert p["fixed_ips"][0]["ip_address"] == "10.66.0.5"
    finally:
        for p in net.list(admin_tok, "port", network_id=nid):
            net.delete(admin_tok, "port", p["id"])
        expect(net.delete(admin_tok, "network", nid), 204)


def test_exhausted_external_pool(seed, net, admin_tok):
    """Floating IPs until the external pool .110-.130 runs out: 409."""
    made = []
    try:
        for _ in range(40):
            r = net.req("POST", "/floatingips", admin_tok, json={
                "floatingip": {"floating_network_id": seed["ext_net_id"]}})
            if r.status_code != 201:
                break
            made.append(r.json()["floatingip"])
        neutron_error(r, 409, "IpAddressGenerationFailure",
                      "floating IP from an exhausted pool")
        addrs = {f["floating_ip_address"] for f in made}
        # 21 addresses: gateway port, the seed's two, and these
        assert len(addrs) == 21 - 3, sorted(addrs)
        for a in addrs:
            assert 110 <= int(a.rsplit(".", 1)[1]) <= 130, a
    finally:
        for f in made:
            net.delete(admin_tok, "floatingip", f["id"])


def test_delete_network_with_ports_conflict(seed, ferrostack, net, admin_tok):
    res = ferrostack.os_fail("network", "delete", "net_admin",
                             fmt_json=False)
    assert ("There are one or more ports still in use on the network"
            in res.output), res.describe()
    r = net.delete(admin_tok, "network", seed["net_admin_id"])
    msg = neutron_error(r, 409, "NetworkInUse", "network with ports")
    # Neutron >= 2023.2 appends ", id for these ports is: <ids>"
    assert msg.startswith(f"Unable to complete operation on network "
                          f"{seed['net_admin_id']}. There are one or more "
                          "ports still in use on the network"), msg
    # the subnet with the router interface cannot go either
    r = net.delete(admin_tok, "subnet", seed["sub_admin_id"])
    neutron_error(r, 409, "SubnetInUse", "subnet with a router interface")
    net.show(admin_tok, "network", seed["net_admin_id"])


def test_delete_external_network_with_free_floating_ip(net, admin_tok):
    """Neutron deletes unassociated floating IPs with their external
    network (tempest test_delete_external_networks_with_floating_ip)."""
    n = net.create(admin_tok, "network", name=unique("ext-tmp"),
                   **{"router:external": True})
    s = net.create(admin_tok, "subnet", network_id=n["id"], ip_version=4,
                   cidr="10.44.0.0/24", enable_dhcp=False)
    f = net.create(admin_tok, "floatingip", floating_network_id=n["id"])
    assert f["floating_ip_address"] == "10.44.0.2", f
    expect(net.delete(admin_tok, "network", n["id"]), 204,
           "external network with a free floating IP")
    r = net.req("GET", f"/floatingips/{f['id']}", admin_tok)
    neutron_error(r, 404, "FloatingIPNotFound", "floating IP of deleted net")
    r = net.req("GET", f"/subnets/{s['id']}", admin_tok)
    neutron_error(r, 404, "SubnetNotFound", "subnet of deleted net")


def test_delete_router_with_interfaces_conflict(seed, ferrostack, net,
                                                admin_tok):
    res = ferrostack.os_fail("router", "delete", "router_admin",
                             fmt_json=False)
    assert "still attached" in res.output or "still has ports" in res.output, \
        res.describe()
    r = net.delete(admin_tok, "router", seed["router_id"])
    msg = neutron_error(r, 409, "RouterInUse", "router with interfaces")
    assert seed["router_id"] in msg, msg
    # nothing was torn down: the gateway is still there
    body = net.show(admin_tok, "router", seed["router_id"])
    assert body["external_gateway_info"]["network_id"] == seed["ext_net_id"]


def test_router_interface_lifecycle(ferrostack, net, admin_tok):
    """add/remove by subnet and by port; the PUT bodies Neutron answers."""
    n = net.create(admin_tok, "network", name=unique("rif"))
    s1 = net.create(admin_tok, "subnet", network_id=n["id"], ip_version=4,
                    cidr="10.88.1.0/24")
    r = net.create(admin_tok, "router", name=unique("rif-router"))
    assert r["external_gateway_info"] is None, r
    assert r["status"] == "ACTIVE" and r["routes"] == [], r
    try:
        body = net.ok("PUT", f"/routers/{r['id']}/add_router_interface",
                      admin_tok, 200, json={"subnet_id": s1["id"]})
        assert set(body) >= {"id", "tenant_id", "project_id", "port_id",
                             "network_id", "subnet_id", "subnet_ids"}, body
        assert body["id"] == r["id"] and body["subnet_id"] == s1["id"]
        assert body["subnet_ids"] == [s1["id"]] and body["network_id"] == n["id"]
        port = net.show(admin_tok, "port", body["port_id"])
        assert port["device_owner"] == "network:router_interface", port
        assert port["device_id"] == r["id"], port
        assert port["fixed_ips"][0]["ip_address"] == "10.88.1.1", port
        # the same subnet twice: 400
        again = net.req("PUT", f"/routers/{r['id']}/add_router_interface",
                        admin_tok, json={"subnet_id": s1["id"]})
        neutron_error(again, 400, {"BadRequest", "InvalidInput"},
                      "subnet already on the router")
        # a port in use as router interface cannot be deleted directly
        d = net.delete(admin_tok, "port", body["port_id"])
        neutron_error(d, 409, "ServicePortInUse", "deleting a router port")
        gone = net.ok("PUT", f"/routers/{r['id']}/remove_router_interface",
                      admin_tok, 200, json={"subnet_id": s1["id"]})
        assert gone["port_id"] == body["port_id"], gone
        r404 = net.req("GET", f"/ports/{body['port_id']}", admin_tok)
        neutron_error(r404, 404, "PortNotFound", "removed interface port")
        # by port: the port keeps its address and becomes the interface
        p = net.create(admin_tok, "port", network_id=n["id"])
        body = net.ok("PUT", f"/routers/{r['id']}/add_router_interface",
                      admin_tok, 200, json={"port_id": p["id"]})
        assert body["port_id"] == p["id"], body
        port = net.show(admin_tok, "port", p["id"])
        assert port["device_owner"] == "network:router_interface"
        net.ok("PUT", f"/routers/{r['id']}/remove_router_interface",
               admin_tok, 200, json={"port_id": p["id"]})
        # removing what is not there: 404
        r404 = net.req("PUT", f"/routers/{r['id']}/remove_router_interface",
                       admin_tok, json={"subnet_id": s1["id"]})
        neutron_error(r404, 404, "RouterInterfaceNotFoundForSubnet",
                      "removing a missing interface")
        # a gateway on a network that is not external: 400
        g = net.req("PUT", f"/routers/{r['id']}", admin_tok, json={
            "router": {"external_gateway_info": {"network_id": n["id"]}}})
        neutron_error(g, 400, "BadRequest", "gateway on an internal network")
    finally:
        for p in net.list(admin_tok, "port", network_id=n["id"]):
            if p["device_owner"] == "network:router_interface":
                net.req("PUT", f"/routers/{r['id']}/remove_router_interface",
                        admin_tok, json={"port_id": p["id"]})
            net.delete(admin_tok, "port", p["id"])
        expect(net.delete(admin_tok, "router", r["id"]), 204)
        expect(net.delete(admin_tok, "network", n["id"]), 204)


# --------------------------------------------------------------------------
# tenant isolation and sharing
# --------------------------------------------------------------------------

def test_demo_cannot_see_admin_networks(seed, ferrostack, net, demo_tok):
    rows = ferrostack.os_ok("network", "list", cloud="ferrostack-demo")
    assert "net_admin" not in names(rows), rows
    assert "net_external" in names(rows), rows   # shared and external
    r = net.req("GET", f"/networks/{seed['net_admin_id']}", demo_tok)
    neutron_error(r, 404, "NetworkNotFound", "admin network as demo")
    r = net.req("GET", f"/subnets/{seed['sub_admin_id']}", demo_tok)
    neutron_error(r, 404, "SubnetNotFound", "admin subnet as demo")
    res = ferrostack.os_fail("network", "show", "net_admin",
                             cloud="ferrostack-demo")
    assert "net_admin" in res.output, res.describe()
    # demo sees the external network but not its provider details
    ext = net.show(demo_tok, "network", seed["ext_net_id"])
    assert ext["router:external"] is True and ext["shared"] is True
    assert not (PROVIDER_KEYS & set(ext)), ext
    # and the external subnet, because the network is shared
    subs = net.list(demo_tok, "subnet", network_id=seed["ext_net_id"])
    assert [s["cidr"] for s in subs] == ["192.168.100.0/24"], subs


def test_demo_cannot_see_admin_ports(seed, ferrostack, net, admin_tok,
                                     demo_tok):
    admin_ports = net.list(admin_tok, "port", network_id=seed["net_admin_id"])
    assert admin_ports, "admin has ports on net_admin"
    rows = ferrostack.os_ok("port", "list", cloud="ferrostack-demo")
    assert not (ids(rows) & {p["id"] for p in admin_ports}), rows
    for p in admin_ports:
        r = net.req("GET", f"/ports/{p['id']}", demo_tok)
        neutron_error(r, 404, "PortNotFound", "admin port as demo")
    # the router gateway and floating IP ports on the shared network are
    # not demo's either
    ext_ports = net.list(demo_tok, "port", network_id=seed["ext_net_id"])
    assert ext_ports == [], ext_ports
    # admin's router and floating IPs are invisible
    assert net.list(demo_tok, "router", name="router_admin") == []
    r = net.req("GET", f"/routers/{seed['router_id']}", demo_tok)
    neutron_error(r, 404, "RouterNotFound", "admin router as demo")
    r = net.req("GET", f"/floatingips/{field(seed['fip2'], 'id')}", demo_tok)
    neutron_error(r, 404, "FloatingIPNotFound", "admin floating IP as demo")
    # and cannot be changed either
    r = net.req("PUT", f"/networks/{seed['net_admin_id']}", demo_tok,
                json={"network": {"name": "stolen"}})
    neutron_error(r, 404, "NetworkNotFound", "update admin network as demo")
    r = net.req("DELETE", f"/networks/{seed['net_admin_id']}", demo_tok)
    neutron_error(r, 404, "NetworkNotFound", "delete admin network as demo")


def test_demo_uses_shared_external_network(seed, ferrostack, net, demo_tok,
                                           demo_project_id):
    fip = ferrostack.os_ok("floating", "ip", "create", "net_external",
                           cloud="ferrostack-demo")
    fid = field(fip, "id")
    try:
        assert ip_in(field(fip, "floating_ip_address"), "192.168.100.0/24")
        assert field(fip, "project_id") == demo_project_id, fip
        rows = ferrostack.os_ok("floating", "ip", "list",
                                cloud="ferrostack-demo")
        assert ids(rows) == {fid}, rows    # not admin's two
        # demo can also attach a router of its own to the external network
        rt = net.create(demo_tok, "router", name=unique("demo-router"),
                        external_gateway_info={
                            "network_id": seed["ext_net_id"]})
        gw = rt["external_gateway_info"]
        assert gw["network_id"] == seed["ext_net_id"], rt
        assert ip_in(gw["external_fixed_ips"][0]["ip_address"],
                     "192.168.100.0/24"), rt
        expect(net.delete(demo_tok, "router", rt["id"]), 204)
        # a port of its own on the shared network is allowed
        p = net.create(demo_tok, "port", network_id=seed["ext_net_id"])
        assert p["project_id"] == demo_project_id
        expect(net.delete(demo_tok, "port", p["id"]), 204)
    finally:
        ferrostack.os_ok("floating", "ip", "delete", fid,
                         cloud="ferrostack-demo", fmt_json=False)


def test_demo_cannot_set_provider_attributes(ferrostack, net, demo_tok):
    res = ferrostack.os_fail("network", "create", "--provider-network-type",
                             "flat", "--provider-physical-network", "physnet1",
                             unique("demo-flat"), cloud="ferrostack-demo")
    assert "403" in res.output or "disallowed by policy" in res.output, \
        res.describe()
    for extra in ({"provider:network_type": "vlan",
                   "provider:physical_network": "physnet1",
                   "provider:segmentation_id": 42},
                  {"provider:segmentation_id": 7},
                  {"router:external": True},
                  {"shared": True}):
        body = {"network": dict(name=unique("demo-denied"), **extra)}
        r = net.req("POST", "/networks", demo_tok, json=body)
        neutron_error(r, 403, "PolicyNotAuthorized", f"demo creates {extra}")
    # demo's own network works and shows no provider attributes to demo
    n = net.create(demo_tok, "network", name=unique("demo-net"))
    try:
        assert not (PROVIDER_KEYS & set(n)), n
        r = net.req("PUT", f"/networks/{n['id']}", demo_tok,
                    json={"network": {"provider:segmentation_id": 99}})
        assert r.status_code == 403, r.text   # own object: 403, not 404
    finally:
        expect(net.delete(demo_tok, "network", n["id"]), 204)


def test_admin_provider_network(ferrostack, net, admin_tok):
    n = ferrostack.os_ok("network", "create", "--provider-network-type",
                         "vlan", "--provider-physical-network", "physnet1",
                         "--provider-segment", "101", unique("vlan101"))
    try:
        body = net.show(admin_tok, "network", field(n, "id"))
        assert body["provider:network_type"] == "vlan", body
        assert body["provider:physical_network"] == "physnet1", body
        assert body["provider:segmentation_id"] == 101, body
        # the same VLAN twice: 409
        r = net.req("POST", "/networks", admin_tok, json={"network": {
            "provider:network_type": "vlan",
            "provider:physical_network": "physnet1",
            "provider:segmentation_id": 101}})
        neutron_error(r, 409, "VlanIdInUse", "VLAN 101 twice")
        # an unknown network type: 400
        r = net.req("POST", "/networks", admin_tok, json={"network": {
            "provider:network_type": "bogus"}})
        neutron_error(r, 400, {"InvalidInput", "HTTPBadRequest"},
                      "unknown provider:network_type")
    finally:
        expect(net.delete(admin_tok, "network", field(n, "id")), 204)


def test_segmentation_id_released(net, admin_tok):
    """Tunnel ids come from the configured range (the seed: GRE 1:1000); an
    id in use cannot be taken again (409 TunnelIdInUse) and is free again
    once its network is gone.  (Which free id a new network gets is not
    fixed: Havana took the lowest, today's Neutron a random one.)"""
    a = net.create(admin_tok, "network", name=unique("seg-a"))
    shown = net.show(admin_tok, "network", a["id"])
    seg, typ = shown["provider:segmentation_id"], shown["provider:network_type"]
    want = {"provider:network_type": typ, "provider:segmentation_id": seg}
    r = net.req("POST", "/networks", admin_tok,
                json={"network": dict(name=unique("seg-dup"), **want)})
    neutron_error(r, 409, "TunnelIdInUse", f"{typ} id {seg} twice")
    expect(net.delete(admin_tok, "network", a["id"]), 204)
    b = net.create(admin_tok, "network", name=unique("seg-b"), **want)
    try:
        got = net.show(admin_tok, "network", b["id"])
        assert got["provider:segmentation_id"] == seg, got
        assert got["provider:network_type"] == typ, got
    finally:
        expect(net.delete(admin_tok, "network", b["id"]), 204)
    # a physical network makes no sense for a tunnel type: 400
    r = net.req("POST", "/networks", admin_tok, json={"network": {
        "provider:network_type": "gre", "provider:physical_network": "physnet1"}})
    neutron_error(r, 400, "InvalidInput", "GRE with a physical network")


# --------------------------------------------------------------------------
# security groups
# --------------------------------------------------------------------------

def test_default_security_group(ferrostack, net, demo_tok, demo_project_id):
    groups = ferrostack.os_ok("security", "group", "list",
                              cloud="ferrostack-demo")
    default = [g for g in groups if field(g, "Name") == "default"]
    assert len(default) == 1, groups
    sg_id = field(default[0], "ID")
    sg = net.show(demo_tok, "security_group", sg_id)
    missing = SG_KEYS - set(sg)
    assert not missing, f"security group lacks {sorted(missing)}: {sg}"
    assert sg["project_id"] == demo_project_id
    assert sg["description"] == "Default security group", sg
    rules = sg["security_group_rules"]
    for rule in rules:
        missing = SG_RULE_KEYS - set(rule)
        assert not missing, f"rule lacks {sorted(missing)}: {rule}"
    shape = sorted((r["direction"], r["ethertype"], r["protocol"],
                    r["port_range_min"], r["port_range_max"],
                    r["remote_ip_prefix"], r["remote_group_id"])
                   for r in rules)
    assert shape == sorted([
        ("egress", "IPv4", None, None, None, None, None),
        ("egress", "IPv6", None, None, None, None, None),
        ("ingress", "IPv4", None, None, None, None, sg_id),
        ("ingress", "IPv6", None, None, None, None, sg_id),
    ]), rules
    cli_rules = ferrostack.os_ok("security", "group", "rule", "list",
                                 "default", cloud="ferrostack-demo")
    assert len(cli_rules) == 4, cli_rules
    # a second "default" is refused, and the default one cannot be renamed
    # to collide
    r = net.req("POST", "/security-groups", demo_tok,
                json={"security_group": {"name": "default"}})
    neutron_error(r, 409, "SecurityGroupDefaultAlreadyExists",
                  "second default group")
    # a new port gets the default group
    n = net.create(demo_tok, "network", name=unique("sg-net"))
    try:
        net.create(demo_tok, "subnet", network_id=n["id"], ip_version=4,
                   cidr="10.55.0.0/24")
        p = net.create(demo_tok, "port", network_id=n["id"])
        assert p["security_groups"] == [sg_id], p
        assert p["status"] == "DOWN", p
        assert MAC_RE.match(p["mac_address"]), p
        assert p["mac_address"].startswith("fa:16:3e:"), p
        missing = PORT_KEYS - set(p)
        assert not missing, f"port lacks {sorted(missing)}: {p}"
        # the default group cannot be deleted while a port uses it
        r = net.req("DELETE", f"/security-groups/{sg_id}", demo_tok)
        assert r.status_code == 409, r.text
        net.delete(demo_tok, "port", p["id"])
    finally:
        expect(net.delete(demo_tok, "network", n["id"]), 204)


def test_new_group_has_egress_rules_only(net, demo_tok):
    sg = net.create(demo_tok, "security_group", name=unique("web"),
                    description="web servers")
    try:
        shape = sorted((r["direction"], r["ethertype"], r["remote_group_id"])
                       for r in sg["security_group_rules"])
        assert shape == [("egress", "IPv4", None), ("egress", "IPv6", None)]
    finally:
        expect(net.delete(demo_tok, "security_group", sg["id"]), 204)


def test_security_group_rules(ferrostack, net, demo_tok):
    name = unique("ssh")
    sg = ferrostack.os_ok("security", "group", "create", name,
                          cloud="ferrostack-demo")
    sg_id = field(sg, "id")
    try:
        rule = ferrostack.os_ok("security", "group", "rule", "create",
                                "--protocol", "tcp", "--dst-port", "22",
                                sg_id, cloud="ferrostack-demo")
        assert field(rule, "port_range_min") == 22
        assert field(rule, "port_range_max") == 22
        assert field(rule, "protocol") == "tcp"
        assert field(rule, "direction") == "ingress"
        assert field(rule, "remote_ip_prefix") == "0.0.0.0/0"
        res = ferrostack.os_fail("security", "group", "rule", "create",
                                 "--protocol", "tcp", "--dst-port", "22",
                                 sg_id, cloud="ferrostack-demo")
        assert "Security group rule already exists" in res.output, \
            res.describe()
        dup = {"security_group_id": sg_id, "direction": "ingress",
               "ethertype": "IPv4", "protocol": "tcp",
               "port_range_min": 22, "port_range_max": 22,
               "remote_ip_prefix": "0.0.0.0/0"}
        r = net.req("POST", "/security-group-rules", demo_tok,
                    json={"security_group_rule": dup})
        msg = neutron_error(r, 409, "SecurityGroupRuleExists", "duplicate rule")
        assert field(rule, "id") in msg, msg
        # validation (tempest NegativeSecGroupTest messages)
        bad = [
            ({"protocol": "tcp", "port_range_min": 80, "port_range_max": 79},
             "port_range_min must be <= port_range_max"),
            ({"protocol": "tcp", "port_range_min": -16, "port_range_max": 80},
             "Invalid value for port -16"),
            ({"protocol": "icmp", "port_range_min": 1, "port_range_max": 256},
             "Invalid value for ICMP code"),
            ({"protocol": "bad_protocol_name"}, None),
            ({"protocol": "tcp", "ethertype": "bad_ethertype"}, None),
            ({"protocol": "tcp", "remote_ip_prefix": "192.168.1.1/33"}, None),
            ({"protocol": "tcp", "ethertype": "IPv6",
              "remote_ip_prefix": "10.0.0.0/8"}, "Conflicting value ethertype"),
            ({"protocol": "tcp", "remote_ip_prefix": "10.0.0.0/8",
              "remote_group_id": sg_id}, None),
        ]
        for extra, text in bad:
            body = {"security_group_id": sg_id, "direction": "ingress",
                    "ethertype": "IPv4"}
            body.update(extra)
            r = net.req("POST", "/security-group-rules", demo_tok,
                        json={"security_group_rule": body})
            expect(r, 400, f"rule {extra}")
            if text:
                assert text in r.json()["NeutronError"]["message"], r.text
        # remote group and group that do not exist: 404
        r = net.req("POST", "/security-group-rules", demo_tok, json={
            "security_group_rule": {"security_group_id": sg_id,
                                    "direction": "ingress",
                                    "remote_group_id": str(uuid.uuid4())}})
        neutron_error(r, 404, "SecurityGroupNotFound", "unknown remote group")
        r = net.req("POST", "/security-group-rules", demo_tok, json={
            "security_group_rule": {"security_group_id": str(uuid.uuid4()),
                                    "direction": "ingress"}})
        neutron_error(r, 404, "SecurityGroupNotFound", "unknown group")
        # integer protocol is accepted and echoed as a string
        r = net.req("POST", "/security-group-rules", demo_tok, json={
            "security_group_rule": {"security_group_id": sg_id,
                                    "direction": "ingress", "protocol": 17}})
        expect(r, 201, "protocol 17")
        assert str(r.json()["security_group_rule"]["protocol"]) == "17"
    finally:
        ferrostack.os_ok("security", "group", "delete", sg_id,
                         cloud="ferrostack-demo", fmt_json=False)
    left = net.list(demo_tok, "security_group_rule", security_group_id=sg_id)
    assert left == [], left


# --------------------------------------------------------------------------
# quotas
# --------------------------------------------------------------------------

def test_network_quota_exceeded(ferrostack, net, admin_tok, demo_tok,
                                demo_project_id):
    q = net.ok("GET", f"/quotas/{demo_project_id}", admin_tok, 200)["quota"]
    missing = QUOTA_KEYS - set(q)
    assert not missing, f"quota lacks {sorted(missing)}: {q}"
    defaults = net.ok("GET", f"/quotas/{demo_project_id}/default",
                      admin_tok, 200)["quota"]
    assert defaults["network"] == 100 and defaults["port"] == 500, defaults
    owned = len(net.list(demo_tok, "network", project_id=demo_project_id))
    ferrostack.os_ok("quota", "set", "--networks", str(owned + 1), "demo",
                     fmt_json=False)
    made = []
    try:
        shown = ferrostack.os_ok("quota", "show", "--network", "demo")
        limits = {field(r, "Resource"): field(r, "Limit") for r in shown}
        assert limits.get("networks") == owned + 1, shown
        made.append(net.create(demo_tok, "network", name=unique("q1"))["id"])
        res = ferrostack.os_fail("network", "create", unique("q2"),
                                 cloud="ferrostack-demo")
        assert "Quota exceeded for resources: ['network']" in res.output, \
            res.describe()
        r = net.req("POST", "/networks", demo_tok,
                    json={"network": {"name": unique("q3")}})
        msg = neutron_error(r, 409, "OverQuota", "network over quota")
        assert msg == "Quota exceeded for resources: ['network'].", msg
        # lowering below usage is refused (check_limit, Neutron >= 2025.1)
        r = net.req("PUT", f"/quotas/{demo_project_id}", admin_tok,
                    json={"quota": {"network": owned}})
        expect(r, 400, "quota below usage")
        # members may read their own quota but not change it
        net.ok("GET", f"/quotas/{demo_project_id}", demo_tok, 200)
        r = net.req("PUT", f"/quotas/{demo_project_id}", demo_tok,
                    json={"quota": {"network": 1000}})
        expect(r, 403, "member sets quota")
    finally:
        for nid in made:
            net.delete(demo_tok, "network", nid)
        ferrostack.os_ok("quota", "set", "--networks", "100", "demo",
                         fmt_json=False)
    r = net.create(demo_tok, "network", name=unique("q-after"))
    net.delete(demo_tok, "network", r["id"])


# --------------------------------------------------------------------------
# list semantics: fields, filters, sorting, pagination, tags
# --------------------------------------------------------------------------

def test_fields_and_filters(seed, net, admin_tok):
    body = net.ok("GET", f"/networks/{seed['net_admin_id']}", admin_tok, 200,
                  params=[("fields", "id"), ("fields", "name"),
                          ("fields", "mtu")])["network"]
    assert sorted(body) == ["id", "mtu", "name"], body
    rows = net.list(admin_tok, "network", fields=["id", "router:external"])
    assert rows and all(sorted(r) == ["id", "router:external"] for r in rows)
    ext = net.list(admin_tok, "network", **{"router:external": "True"})
    assert seed["ext_net_id"] in {n["id"] for n in ext}, ext
    assert all(n["router:external"] is True for n in ext), ext
    internal = net.list(admin_tok, "network", **{"router:external": "False"})
    assert seed["net_admin_id"] in {n["id"] for n in internal}
    assert seed["ext_net_id"] not in {n["id"] for n in internal}
    by_name = net.list(admin_tok, "network", name="net_admin")
    assert [n["id"] for n in by_name] == [seed["net_admin_id"]]
    # several values of one filter: OR
    both = net.list(admin_tok, "network",
                    id=[seed["net_admin_id"], seed["ext_net_id"]])
    assert {n["id"] for n in both} == {seed["net_admin_id"],
                                       seed["ext_net_id"]}
    subs = net.list(admin_tok, "subnet", network_id=seed["net_admin_id"],
                    fields="cidr")
    assert subs == [{"cidr": "50.50.1.0/24"}], subs
    ports = net.list(admin_tok, "port", device_owner="network:router_gateway",
                     network_id=seed["ext_net_id"])
    assert [p["device_id"] for p in ports] == [seed["router_id"]], ports


def test_sorting_and_pagination(net, admin_tok):
    tag = uuid.uuid4().hex[:8]
    made = [net.create(admin_tok, "network", name=f"page-{tag}-{i}")["id"]
            for i in range(5)]
    try:
        rows = net.list(admin_tok, "network", sort_key="name",
                        sort_dir="desc", fields=["id", "name"])
        mine = [r["name"] for r in rows if r["name"].startswith(f"page-{tag}")]
        assert mine == [f"page-{tag}-{i}" for i in (4, 3, 2, 1, 0)], mine
        # limit/marker with networks_links (rel next)
        seen = []
        params = {"limit": 2, "sort_key": "name", "sort_dir": "asc",
                  "name": [f"page-{tag}-{i}" for i in range(5)]}
        url = "/networks"
        for _ in range(10):
            body = net.ok("GET", url, admin_tok, 200, params=params)
            assert len(body["networks"]) <= 2, body
            seen += [n["name"] for n in body["networks"]]
            nxt = [lk for lk in body.get("networks_links", [])
                   if lk["rel"] == "next"]
            if not nxt:
                break
            url, params = nxt[0]["href"], None
        assert seen == [f"page-{tag}-{i}" for i in range(5)], seen
    finally:
        for nid in made:
            net.delete(admin_tok, "network", nid)


def test_tags(net, admin_tok, ferrostack):
    n = ferrostack.os_ok("network", "create", "--tag", "red", "--tag", "blue",
                         unique("tagged"))
    nid = field(n, "id")
    try:
        assert sorted(field(n, "tags")) == ["blue", "red"], n
        # PUT one tag: 201 with no body (tempest's tags client)
        expect(net.req("PUT", f"/networks/{nid}/tags/green", admin_tok), 201,
               "add tag")
        r = net.req("GET", f"/networks/{nid}/tags/green", admin_tok)
        expect(r, 204, "tag exists")
        r = net.req("GET", f"/networks/{nid}/tags/purple", admin_tok)
        expect(r, 404, "tag missing")
        tagged = net.list(admin_tok, "network", tags="red,green")
        assert [x["id"] for x in tagged] == [nid], tagged
        assert net.list(admin_tok, "network", tags="red,purple") == []
        anyof = net.list(admin_tok, "network", **{"tags-any": "purple,blue"})
        assert nid in {x["id"] for x in anyof}
        notag = net.list(admin_tok, "network", **{"not-tags": "red"})
        assert nid not in {x["id"] for x in notag}
        body = net.ok("PUT", f"/networks/{nid}/tags", admin_tok, 200,
                      json={"tags": ["x", "y"]})
        assert sorted(body["tags"]) == ["x", "y"], body
        expect(net.req("DELETE", f"/networks/{nid}/tags/x", admin_tok), 204)
        expect(net.req("DELETE", f"/networks/{nid}/tags", admin_tok), 204)
        assert net.show(admin_tok, "network", nid)["tags"] == []
    finally:
        net.delete(admin_tok, "network", nid)


def test_update_and_revision(net, admin_tok):
    n = net.create(admin_tok, "network", name=unique("rev"), description="d1")
    try:
        assert n["description"] == "d1"
        rev = n["revision_number"]
        up = net.ok("PUT", f"/networks/{n['id']}", admin_tok, 200,
                    json={"network": {"name": "renamed", "description": "d2",
                                      "admin_state_up": False}})["network"]
        assert up["name"] == "renamed" and up["description"] == "d2"
        assert up["admin_state_up"] is False
        assert up["revision_number"] > rev, (rev, up)
        # unknown attribute: 400
        r = net.req("PUT", f"/networks/{n['id']}", admin_tok,
                    json={"network": {"no_such_attribute": 1}})
        neutron_error(r, 400, "HTTPBadRequest", "unknown attribute")
        # unknown id: 404
        r = net.req("GET", f"/networks/{uuid.uuid4()}", admin_tok)
        neutron_error(r, 404, "NetworkNotFound", "unknown network")
        r = net.req("PUT", f"/ports/{uuid.uuid4()}", admin_tok,
                    json={"port": {"name": "x"}})
        neutron_error(r, 404, "PortNotFound", "unknown port")
    finally:
        expect(net.delete(admin_tok, "network", n["id"]), 204)
    r = net.delete(admin_tok, "network", n["id"])
    neutron_error(r, 404, "NetworkNotFound", "deleted twice")


def test_port_binding_and_address_pairs(seed, net, admin_tok, demo_tok):
    p = net.create(admin_tok, "port", network_id=seed["net_admin_id"],
                   allowed_address_pairs=[{"ip_address": "50.50.1.200"}],
                   **{"binding:host_id": "compute"})
    try:
        missing = (PORT_KEYS | PORT_BINDING_KEYS) - set(p)
        assert not missing, f"admin's port lacks {sorted(missing)}: {p}"
        assert p["binding:host_id"] == "compute", p
        assert p["binding:vnic_type"] == "normal", p
        assert p["allowed_address_pairs"] == [
            {"ip_address": "50.50.1.200", "mac_address": p["mac_address"]}], p
        up = net.ok("PUT", f"/ports/{p['id']}", admin_tok, 200, json={
            "port": {"port_security_enabled": False, "security_groups": [],
                     "allowed_address_pairs": []}})["port"]
        assert up["port_security_enabled"] is False and \
            up["security_groups"] == [], up
        # port security off with security groups: 409
        r = net.req("PUT", f"/ports/{p['id']}", admin_tok, json={
            "port": {"security_groups": [
                net.list(admin_tok, "security_group", name="default",
                         project_id=p["project_id"])[0]["id"]]}})
        neutron_error(r, 400, "PortSecurityAndIPRequiredForSecurityGroups",
                      "security groups on a port without port security")
    finally:
        net.delete(admin_tok, "port", p["id"])
    # a member does not see binding details of its own port
    n = net.create(demo_tok, "network", name=unique("bind"))
    try:
        q = net.create(demo_tok, "port", network_id=n["id"])
        assert "binding:host_id" not in q and "binding:profile" not in q, q
        # and cannot set them
        r = net.req("POST", "/ports", demo_tok, json={"port": {
            "network_id": n["id"], "binding:host_id": "compute"}})
        neutron_error(r, 403, "PolicyNotAuthorized", "member sets binding")
        net.delete(demo_tok, "port", q["id"])
    finally:
        net.delete(demo_tok, "network", n["id"])


def test_ipv6_subnet(net, admin_tok):
    n = net.create(admin_tok, "network", name=unique("v6"))
    try:
        s = net.create(admin_tok, "subnet", network_id=n["id"], ip_version=6,
                       cidr="2001:db8:1::/64", ipv6_ra_mode="slaac",
                       ipv6_address_mode="slaac")
        # Neutron (since 2019): default v6 gateway is the subnet-router
        # anycast address, the pool is the rest of the /64
        assert s["gateway_ip"] == "2001:db8:1::", s
        assert s["allocation_pools"] == [{
            "start": "2001:db8:1::1",
            "end": "2001:db8:1:0:ffff:ffff:ffff:ffff"}], s   # RFC 5952 / netaddr
        mac = "fa:16:3e:12:34:56"
        p = net.create(admin_tok, "port", network_id=n["id"],
                       mac_address=mac)
        # SLAAC: EUI-64 address from the MAC
        # the same address whether printed RFC 5952 style or compressed
        assert len(p["fixed_ips"]) == 1 and p["fixed_ips"][0]["subnet_id"] == s["id"], p
        assert ipaddress.ip_address(p["fixed_ips"][0]["ip_address"]) == \
            ipaddress.ip_address("2001:db8:1::f816:3eff:fe12:3456"), p
        bad = net.req("POST", "/subnets", admin_tok, json={"subnet": {
            "network_id": n["id"], "ip_version": 6, "cidr": "2001:db8:2::/64",
            "ipv6_ra_mode": "slaac",
            "ipv6_address_mode": "dhcpv6-stateful"}})
        neutron_error(bad, 400, "InvalidInput", "ra_mode != address_mode")
        net.delete(admin_tok, "port", p["id"])
    finally:
        expect(net.delete(admin_tok, "network", n["id"]), 204)
