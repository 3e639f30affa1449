"""Identity (Keystone v3 + legacy v2.0) compatibility tests.

Drives the real `openstack` CLI and python-keystoneclient against the
Ferrostack all-in-one and checks the outcomes real Keystone produces.
Run:  pytest -v tests/clients/test_identity.py
"""

from __future__ import annotations

import json
import re
import subprocess
import uuid
from urllib.parse import urlparse

import pytest

from conftest import (
    ADMIN_PASSWORD, BOOTSTRAP_PROJECTS, BOOTSTRAP_ROLES,
    BOOTSTRAP_SERVICE_TYPES, DEMO_PASSWORD, SERVICE_PASSWORD, SERVICE_USERS,
    field, unique,
)

# public port of each catalog service (guide's endpoint-create section)
SERVICE_PORTS = {"identity": 5000, "compute": 8774, "image": 9292, "network": 9696,
                 "block-storage": 8776, "volumev3": 8776, "volume": 8776,
                 "metering": 8777, "metric": 8041, "alarming": 8042,
                 "object-store": 8080}

REQ_ID_RE = re.compile(r"^req-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def error_body(resp, code: int, title: str) -> str:
    """Assert a Keystone-style error document and return its message."""
    assert resp.status_code == code, (
        f"{resp.request.method} {resp.url}: expected {code}, got "
        f"{resp.status_code}: {resp.text[:500]}")
    try:
        body = resp.json()
    except ValueError:
        raise AssertionError(
            f"{resp.request.method} {resp.url} -> {code} body is not JSON: "
            f"{resp.text[:300]!r}") from None
    assert "error" in body, f"no 'error' key in {body}"
    err = body["error"]
    assert err.get("code") == code, err
    assert err.get("title") == title, err
    assert isinstance(err.get("message"), str) and err["message"], err
    return err["message"]


def names(rows) -> list[str]:
    return [field(r, "Name") for r in rows]


# --------------------------------------------------------------------------
# discovery / generated config
# --------------------------------------------------------------------------

def test_version_discovery(ferrostack):
    r = ferrostack.http("GET", "/v3")
    assert r.status_code == 200, r.text
    v = r.json()["version"]
    assert v["id"].startswith("v3"), v
    assert v["status"] == "stable", v
    assert any(l.get("rel") == "self" for l in v["links"]), v
    assert any(m.get("type", "").startswith("application/vnd.openstack.identity-v3")
               for m in v.get("media-types", [])), v

    r = ferrostack.http("GET", "/")
    # Real keystone answers the root with 300 Multiple Choices.
    assert r.status_code == 300, r.text
    ids = [x["id"] for x in r.json()["versions"]["values"]]
    assert any(i.startswith("v3") for i in ids), ids
    # Ferrostack serves Havana's v2.0 too (modern Keystone lists only v3).
    assert any(i.startswith("v2.0") for i in ids), ids

    r = ferrostack.http("GET", "/v2.0")
    assert r.status_code == 200, r.text
    assert r.json()["version"]["id"] == "v2.0"

    r = ferrostack.http("GET", ferrostack.admin_url + "/v3")
    assert r.status_code == 200, "admin port 35357 not serving /v3: " + r.text


def test_generated_client_config(ferrostack):
    if ferrostack.data_dir is None:
        pytest.skip("no data dir (FERROSTACK_URL without FERROSTACK_DATA_DIR)")
    dd = ferrostack.data_dir
    for name in ("openrc", "openrc-demo", "clouds.yaml"):
        assert (dd / name).is_file(), f"{dd / name} missing"
    clouds = (dd / "clouds.yaml").read_text()
    assert "ferrostack:" in clouds and "ferrostack-demo:" in clouds, clouds
    openrc = (dd / "openrc").read_text()
    for var in ("OS_AUTH_URL", "OS_USERNAME", "OS_PASSWORD"):
        assert var in openrc, openrc
    assert ("OS_PROJECT_NAME" in openrc) or ("OS_TENANT_NAME" in openrc), openrc


@pytest.mark.parametrize("rcfile,project", [("openrc", "admin"),
                                            ("openrc-demo", "demo")])
def test_openrc_works_with_cli(ferrostack, rcfile, project):
    """`source openrc; openstack token issue` like the guide does."""
    if ferrostack.data_dir is None:
        pytest.skip("no data dir")
    env = ferrostack.cli_env()
    env.pop("OS_CLIENT_CONFIG_FILE", None)
    script = f'. "{ferrostack.data_dir / rcfile}" && openstack token issue -f json'
    p = subprocess.run(["bash", "-c", script], capture_output=True, text=True,
                       env=env, timeout=180)
    assert p.returncode == 0, f"{script}\n{p.stdout}\n{p.stderr}"
    tok = json.loads(p.stdout)
    r = ferrostack.http("GET", "/v3/auth/tokens", token=ferrostack.admin_token(),
                        subject=tok["id"])
    assert r.status_code == 200, r.text
    assert r.json()["token"]["project"]["name"] == project


# --------------------------------------------------------------------------
# tokens and catalog
# --------------------------------------------------------------------------

def test_token_issue(ferrostack):
    tok = ferrostack.os_ok("token", "issue")
    for k in ("id", "expires", "project_id", "user_id"):
        assert field(tok, k), tok
    r = ferrostack.http("GET", "/v3/auth/tokens", token=tok["id"],
                        subject=tok["id"])
    assert r.status_code == 200, r.text
    assert r.headers.get("X-Subject-Token") == tok["id"]
    t = r.json()["token"]
    assert t["user"]["name"] == "admin"
    assert t["user"]["id"] == tok["user_id"]
    assert t["project"]["name"] == "admin"
    assert t["project"]["id"] == tok["project_id"]
    assert "admin" in {x["name"] for x in t["roles"]}, t["roles"]
    assert "password" in t["methods"]
    assert t["expires_at"] and t["issued_at"]
    # HEAD validation (keystonemiddleware uses GET, some clients use HEAD)
    r = ferrostack.http("HEAD", "/v3/auth/tokens", token=tok["id"],
                        subject=tok["id"])
    assert r.status_code == 200, r.status_code


def test_catalog_list(ferrostack):
    rows = ferrostack.os_ok("catalog", "list")
    types = [field(r, "Type") for r in rows]
    assert set(types) == BOOTSTRAP_SERVICE_TYPES, types
    assert len(types) == len(BOOTSTRAP_SERVICE_TYPES), f"duplicates: {types}"
    project_id = ferrostack.os_ok("token", "issue")["project_id"]
    for r in rows:
        eps = field(r, "Endpoints")
        assert isinstance(eps, list), eps
        ifaces = {e["interface"] for e in eps}
        assert ifaces == {"public", "internal", "admin"}, (field(r, "Type"), eps)
        for e in eps:
            assert (e.get("region_id") or e.get("region")) == "RegionOne", e
            assert e["url"].startswith("http"), e
            assert "$(" not in e["url"] and "%(" not in e["url"], (
                f"unsubstituted template in catalog URL: {e}")
        pub = [e["url"] for e in eps if e["interface"] == "public"][0]
        port = SERVICE_PORTS[field(r, "Type")]
        if field(r, "Type") == "identity":
            port = urlparse(ferrostack.url).port
        assert urlparse(pub).port == port, (field(r, "Type"), pub)
        if "AUTH_" in pub or re.search(r"/v[0-9.]+/[0-9a-f]{32}$", pub):
            # tenant-templated URL ($(tenant_id)s) must carry *this* project
            assert pub.rstrip("/").endswith(project_id), pub


def test_catalog_show_identity(ferrostack):
    data = ferrostack.os_ok("catalog", "show", "identity")
    assert field(data, "type") == "identity", data


def test_project_list_admin(ferrostack):
    rows = ferrostack.os_ok("project", "list")
    got = names(rows)
    assert BOOTSTRAP_PROJECTS <= set(got), got
    for p in BOOTSTRAP_PROJECTS:
        assert got.count(p) == 1, f"{p} listed {got.count(p)} times: {got}"
    shown = ferrostack.os_ok("project", "show", "invisible_to_admin")
    assert field(shown, "domain_id") == "default", shown


def test_bootstrap_users_and_roles(ferrostack):
    users = names(ferrostack.os_ok("user", "list"))
    for u in ["admin", "demo"] + SERVICE_USERS:
        assert u in users, (u, users)
    roles = names(ferrostack.os_ok("role", "list"))
    assert BOOTSTRAP_ROLES <= set(roles), roles
    domains = ferrostack.os_ok("domain", "list")
    d = [x for x in domains if field(x, "ID") == "default"]
    assert d and field(d[0], "Name") == "Default", domains


@pytest.mark.parametrize("user", SERVICE_USERS)
def test_service_user_can_authenticate(ferrostack, user):
    _, tok = ferrostack.issue_token(user, SERVICE_PASSWORD, "service")
    assert "admin" in {r["name"] for r in tok["roles"]}, tok["roles"]


# --------------------------------------------------------------------------
# CRUD through the CLI
# --------------------------------------------------------------------------

def test_user_create_list_delete(ferrostack):
    name = unique("fs-user")
    created = ferrostack.os_ok("user", "create", "--domain", "default",
                               "--password", "s3cret-pw", "--email",
                               f"{name}@example.org", name)
    uid = field(created, "id")
    assert field(created, "name") == name
    assert field(created, "domain_id") == "default"
    try:
        assert name in names(ferrostack.os_ok("user", "list"))
        shown = ferrostack.os_ok("user", "show", name)
        assert field(shown, "id") == uid
        # The new user can authenticate (unscoped) with its password.
        r = ferrostack.http("POST", "/v3/auth/tokens",
                            json=ferrostack.password_auth_body(name, "s3cret-pw",
                                                               project=None))
        assert r.status_code == 201, r.text
        assert r.json()["token"]["user"]["id"] == uid
        # Duplicate name in the same domain -> 409 Conflict.
        dup = ferrostack.os_fail("user", "create", "--domain", "default",
                                 "--password", "x", name)
        assert "409" in dup.output or "onflict" in dup.output, dup.describe()
        ferrostack.os_ok("user", "set", "--description", "changed", name,
                         fmt_json=False)
        assert field(ferrostack.os_ok("user", "show", uid), "description") == "changed"
    finally:
        ferrostack.os_ok("user", "delete", uid, fmt_json=False)
    assert name not in names(ferrostack.os_ok("user", "list"))
    gone = ferrostack.os_fail("user", "show", uid)
    assert "no user" in gone.output.lower() or "404" in gone.output, gone.describe()
    r = ferrostack.http("GET", f"/v3/users/{uid}", token=ferrostack.admin_token())
    error_body(r, 404, "Not Found")


def test_role_create_list_delete_and_assign(ferrostack):
    role = unique("fs-role")
    user = unique("fs-ruser")
    created = ferrostack.os_ok("role", "create", role)
    rid = field(created, "id")
    assert field(created, "name") == role
    uid = field(ferrostack.os_ok("user", "create", "--domain", "default",
                                 "--password", "pw-12345", user), "id")
    try:
        assert role in names(ferrostack.os_ok("role", "list"))
        ferrostack.os_ok("role", "add", "--user", user, "--project", "demo",
                         role, fmt_json=False)
        rows = ferrostack.os_ok("role", "assignment", "list", "--user", uid,
                                "--names")
        assert any(field(r, "Role") == role and field(r, "Project").startswith("demo")
                   for r in rows), rows
        # The assignment grants a demo-scoped token carrying the role.
        _, tok = ferrostack.issue_token(user, "pw-12345", "demo")
        assert role in {r["name"] for r in tok["roles"]}, tok["roles"]
        ferrostack.os_ok("role", "remove", "--user", user, "--project", "demo",
                         role, fmt_json=False)
        rows = ferrostack.os_ok("role", "assignment", "list", "--user", uid)
        assert rows == [], rows
    finally:
        ferrostack.os_ok("user", "delete", uid, fmt_json=False)
        ferrostack.os_ok("role", "delete", rid, fmt_json=False)
    assert role not in names(ferrostack.os_ok("role", "list"))
    r = ferrostack.http("GET", f"/v3/roles/{rid}", token=ferrostack.admin_token())
    error_body(r, 404, "Not Found")


def test_role_assignment_list_names(ferrostack):
    rows = ferrostack.os_ok("role", "assignment", "list", "--names")
    triples = {(field(r, "Role"), field(r, "User"), field(r, "Project"))
               for r in rows}
    assert ("admin", "admin@Default", "admin@Default") in triples, triples
    assert ("admin", "nova@Default", "service@Default") in triples, triples
    # guide: admin is also admin of demo; nova is ResellerAdmin on service
    assert ("admin", "admin@Default", "demo@Default") in triples, triples
    assert ("ResellerAdmin", "nova@Default", "service@Default") in triples, triples
    assert not any(u == "admin@Default" and p.startswith("invisible_to_admin@")
                   for _, u, p in triples), triples
    demo = {(ro, p) for ro, u, p in triples if u == "demo@Default"}
    for ro in ("Member", "member"):
        for p in ("demo@Default", "invisible_to_admin@Default"):
            assert (ro, p) in demo, (ro, p, demo)


# --------------------------------------------------------------------------
# application credentials
# --------------------------------------------------------------------------

def test_application_credential_auth(ferrostack):
    name = unique("fs-appcred")
    tok = ferrostack.os_ok("token", "issue")
    ac = ferrostack.os_ok("application", "credential", "create",
                          "--description", "test", name)
    ac_id, secret = field(ac, "ID"), field(ac, "Secret")
    assert ac_id and secret, ac
    assert field(ac, "Project ID") == tok["project_id"], ac
    try:
        listed = ferrostack.os_ok("application", "credential", "list")
        assert ac_id in [field(x, "ID") for x in listed], listed

        # The CLI with auth type v3applicationcredential and no cloud entry.
        res = ferrostack.openstack(
            "--os-auth-type", "v3applicationcredential",
            "--os-auth-url", ferrostack.v3,
            "--os-identity-api-version", "3",
            "--os-region-name", "RegionOne",
            "--os-application-credential-id", ac_id,
            "--os-application-credential-secret", secret,
            "token", "issue", cloud=None)
        assert res.rc == 0, res.describe()
        t = res.json()
        assert t["project_id"] == tok["project_id"], t
        assert t["user_id"] == tok["user_id"], t

        # Raw API: method recorded in the token, app cred echoed back.
        body = {"auth": {"identity": {
            "methods": ["application_credential"],
            "application_credential": {"id": ac_id, "secret": secret}}}}
        r = ferrostack.http("POST", "/v3/auth/tokens", json=body)
        assert r.status_code == 201, r.text
        tb = r.json()["token"]
        assert tb["methods"] == ["application_credential"], tb["methods"]
        assert tb["application_credential"]["id"] == ac_id, tb
        assert tb["project"]["id"] == tok["project_id"]
        # by name + user works as well
        body_name = {"auth": {"identity": {
            "methods": ["application_credential"],
            "application_credential": {
                "name": name, "secret": secret,
                "user": {"name": "admin", "domain": {"name": "Default"}}}}}}
        r = ferrostack.http("POST", "/v3/auth/tokens", json=body_name)
        assert r.status_code == 201, r.text

        bad = {"auth": {"identity": {
            "methods": ["application_credential"],
            "application_credential": {"id": ac_id, "secret": "wrong"}}}}
        error_body(ferrostack.http("POST", "/v3/auth/tokens", json=bad),
                   401, "Unauthorized")
    finally:
        ferrostack.os_ok("application", "credential", "delete", ac_id,
                         fmt_json=False)
    # Deleted credential: real Keystone answers 404 "Could not find
    # Application Credential: <id>."; 401 is acceptable too.
    r = ferrostack.http("POST", "/v3/auth/tokens", json=body)
    assert r.status_code in (401, 404), r.text
    error_body(r, r.status_code,
               "Unauthorized" if r.status_code == 401 else "Not Found")


# --------------------------------------------------------------------------
# revocation
# --------------------------------------------------------------------------

def test_token_revoke(ferrostack, admin_token):
    victim = ferrostack.os_ok("token", "issue")["id"]
    bystander = ferrostack.admin_token()  # same user, must survive
    r = ferrostack.http("GET", "/v3/users", token=victim)
    assert r.status_code == 200, r.text

    ferrostack.os_ok("token", "revoke", victim, fmt_json=False)

    r = ferrostack.http("GET", "/v3/users", token=victim)
    error_body(r, 401, "Unauthorized")
    r = ferrostack.http("GET", "/v3/auth/tokens", token=victim, subject=victim)
    error_body(r, 401, "Unauthorized")
    # Validating a revoked subject token with a good token: real Keystone
    # answers 404 TokenNotFound.
    r = ferrostack.http("GET", "/v3/auth/tokens", token=admin_token,
                        subject=victim)
    error_body(r, 404, "Not Found")
    # Revocation is per token, not per user.
    r = ferrostack.http("GET", "/v3/auth/tokens", token=bystander,
                        subject=bystander)
    assert r.status_code == 200, r.text


def test_token_revoke_via_api_and_garbage_token(ferrostack, admin_token):
    tok, _ = ferrostack.issue_token()
    r = ferrostack.http("DELETE", "/v3/auth/tokens", token=admin_token,
                        subject=tok)
    assert r.status_code == 204, r.text
    error_body(ferrostack.http("GET", "/v3/projects", token=tok), 401,
               "Unauthorized")
    error_body(ferrostack.http("GET", "/v3/projects", token="not-a-token"),
               401, "Unauthorized")
    error_body(ferrostack.http("GET", "/v3/projects"), 401, "Unauthorized")


# --------------------------------------------------------------------------
# non-admin (demo)
# --------------------------------------------------------------------------

def test_demo_token(ferrostack):
    tok = ferrostack.os_ok("token", "issue", cloud="ferrostack-demo")
    r = ferrostack.http("GET", "/v3/auth/tokens", token=tok["id"],
                        subject=tok["id"])
    assert r.status_code == 200, r.text
    t = r.json()["token"]
    assert t["project"]["name"] == "demo"
    assert {"Member", "member"} <= {x["name"] for x in t["roles"]}, t["roles"]
    assert "admin" not in {x["name"] for x in t["roles"]}


def test_demo_user_list_forbidden(ferrostack):
    res = ferrostack.os_fail("user", "list", cloud="ferrostack-demo")
    assert "403" in res.output, res.describe()


def test_demo_user_create_forbidden(ferrostack, demo_token):
    res = ferrostack.os_fail("user", "create", "--password", "x",
                             unique("fs-nope"), cloud="ferrostack-demo")
    assert "403" in res.output, res.describe()
    r = ferrostack.http("POST", "/v3/users", token=demo_token,
                        json={"user": {"name": unique("fs-nope")}})
    error_body(r, 403, "Forbidden")


@pytest.mark.parametrize("args", [("project", "list"),
                                  ("project", "list", "--my-projects")])
def test_demo_project_list(ferrostack, args):
    rows = ferrostack.os_ok(*args, cloud="ferrostack-demo")
    assert sorted(names(rows)) == ["demo", "invisible_to_admin"], rows


def test_demo_projects_api(ferrostack, demo_token):
    # Real Keystone: listing all projects needs admin -> 403 ...
    r = ferrostack.http("GET", "/v3/projects", token=demo_token)
    error_body(r, 403, "Forbidden")
    # ... while /v3/auth/projects and /v3/users/{self}/projects work.
    r = ferrostack.http("GET", "/v3/auth/projects", token=demo_token)
    assert r.status_code == 200, r.text
    assert sorted(p["name"] for p in r.json()["projects"]) == [
        "demo", "invisible_to_admin"]
    me = ferrostack.http("GET", "/v3/auth/tokens", token=demo_token,
                         subject=demo_token).json()["token"]["user"]["id"]
    r = ferrostack.http("GET", f"/v3/users/{me}/projects", token=demo_token)
    assert r.status_code == 200, r.text
    assert sorted(p["name"] for p in r.json()["projects"]) == [
        "demo", "invisible_to_admin"]
    # Demo cannot scope to the admin project.
    r = ferrostack.http("POST", "/v3/auth/tokens",
                        json=ferrostack.password_auth_body("demo", DEMO_PASSWORD,
                                                           "admin"))
    error_body(r, 401, "Unauthorized")


def test_admin_scopes_per_guide(ferrostack):
    _, tok = ferrostack.issue_token("admin", ADMIN_PASSWORD, "demo")
    assert "admin" in {r["name"] for r in tok["roles"]}
    r = ferrostack.http("POST", "/v3/auth/tokens",
                        json=ferrostack.password_auth_body(
                            "admin", ADMIN_PASSWORD, "invisible_to_admin"))
    error_body(r, 401, "Unauthorized")


# --------------------------------------------------------------------------
# error handling
# --------------------------------------------------------------------------

def test_wrong_password(ferrostack):
    r = ferrostack.http("POST", "/v3/auth/tokens",
                        json=ferrostack.password_auth_body("admin", "wrong"))
    error_body(r, 401, "Unauthorized")
    assert not r.headers.get("X-Subject-Token")
    # Unknown user is indistinguishable from wrong password.
    r = ferrostack.http("POST", "/v3/auth/tokens",
                        json=ferrostack.password_auth_body(unique("nobody"), "x"))
    error_body(r, 401, "Unauthorized")
    res = ferrostack.openstack("--os-password", "definitely-wrong", "token",
                               "issue")
    assert res.rc != 0, res.describe()
    assert "401" in res.output, res.describe()


def test_401_has_www_authenticate(ferrostack):
    r = ferrostack.http("GET", "/v3/users")
    assert r.status_code == 401
    # Real Keystone: WWW-Authenticate: Keystone uri="http://127.0.0.1:5000/v3"
    # (an absolute URL that clients can follow)
    wa = r.headers.get("WWW-Authenticate", "")
    assert re.match(r'^Keystone uri="https?://[^"]+"$', wa), dict(r.headers)


@pytest.mark.parametrize("path,authed", [("/v3/auth/tokens", False),
                                         ("/v3/users", True),
                                         ("/v2.0/tokens", False)])
def test_malformed_json_is_400(ferrostack, path, authed):
    token = ferrostack.admin_token() if authed else None
    r = ferrostack.http("POST", path, token=token, data='{"auth": {"identity": ',
                        headers={"Content-Type": "application/json"})
    msg = error_body(r, 400, "Bad Request")
    assert msg.strip(), msg


def test_schema_invalid_body_is_400(ferrostack, admin_token):
    r = ferrostack.http("POST", "/v3/auth/tokens", json={"auth": {}})
    error_body(r, 400, "Bad Request")
    r = ferrostack.http("POST", "/v3/users", token=admin_token,
                        json={"user": {"enabled": True}})  # no name
    error_body(r, 400, "Bad Request")


def test_unknown_ids_are_404(ferrostack, admin_token):
    uid = uuid.uuid4().hex
    r = ferrostack.http("GET", f"/v3/users/{uid}", token=admin_token)
    msg = error_body(r, 404, "Not Found")
    assert uid in msg, msg  # "Could not find user: <id>."
    r = ferrostack.http("GET", f"/v3/projects/{uid}", token=admin_token)
    error_body(r, 404, "Not Found")
    r = ferrostack.http("DELETE", f"/v3/users/{uid}", token=admin_token)
    error_body(r, 404, "Not Found")
    res = ferrostack.os_fail("user", "show", uid)
    assert "no user" in res.output.lower() or "404" in res.output, res.describe()


def test_request_id_on_every_response(ferrostack, admin_token):
    fs = ferrostack
    probes = [
        ("GET", fs.url + "/", {}),
        ("GET", fs.v3, {}),
        ("GET", fs.v2, {}),
        ("GET", fs.admin_url + "/v2.0", {}),
        ("POST", fs.v3 + "/auth/tokens", {"json": fs.password_auth_body()}),
        ("POST", fs.v3 + "/auth/tokens",
         {"json": fs.password_auth_body("admin", "bad")}),
        ("POST", fs.v3 + "/auth/tokens",
         {"data": "{oops", "headers": {"Content-Type": "application/json"}}),
        ("GET", fs.v3 + "/users", {"token": admin_token}),
        ("GET", fs.v3 + "/users", {}),
        ("GET", fs.v3 + f"/users/{uuid.uuid4().hex}", {"token": admin_token}),
        ("GET", fs.v3 + "/auth/tokens", {"token": admin_token,
                                         "subject": admin_token}),
        ("GET", fs.v3 + "/no/such/route", {"token": admin_token}),
        ("POST", fs.v2 + "/tokens", {"json": {"auth": {
            "passwordCredentials": {"username": "admin",
                                    "password": ADMIN_PASSWORD},
            "tenantName": "admin"}}}),
    ]
    missing, bad = [], []
    for method, url, kw in probes:
        r = fs.http(method, url, **kw)
        rid = r.headers.get("x-openstack-request-id")
        if not rid:
            missing.append(f"{method} {url} -> {r.status_code}")
        elif not REQ_ID_RE.match(rid):
            bad.append(f"{method} {url} -> {rid!r}")
    assert not missing, "no x-openstack-request-id on: " + "; ".join(missing)
    assert not bad, "malformed request ids (want req-<uuid4>): " + "; ".join(bad)
    r1 = fs.http("GET", fs.v3)
    r2 = fs.http("GET", fs.v3)
    assert r1.headers["x-openstack-request-id"] != r2.headers["x-openstack-request-id"]


# --------------------------------------------------------------------------
# legacy v2.0 (the guide's `keystone token-get` / `tenant-list` / `user-list`)
# --------------------------------------------------------------------------

def _v2_body(user="admin", password=ADMIN_PASSWORD, tenant="admin"):
    body = {"auth": {"passwordCredentials": {"username": user,
                                             "password": password}}}
    if tenant:
        body["auth"]["tenantName"] = tenant
    return body


def test_v2_token_get(ferrostack):
    r = ferrostack.http("POST", "/v2.0/tokens", json=_v2_body())
    assert r.status_code == 200, r.text
    access = r.json()["access"]
    tok = access["token"]
    assert tok["id"] and tok["expires"], tok
    assert tok["tenant"]["name"] == "admin", tok
    tenant_id = tok["tenant"]["id"]
    assert access["user"]["name"] == "admin"
    assert "admin" in {x["name"] for x in access["user"]["roles"]}
    cat = access["serviceCatalog"]
    types = [s["type"] for s in cat]
    assert set(types) == BOOTSTRAP_SERVICE_TYPES, types
    for s in cat:
        assert s.get("name"), s
        assert s["endpoints"], s
        for e in s["endpoints"]:
            for k in ("publicURL", "internalURL", "adminURL"):
                assert e.get(k, "").startswith("http"), (s["type"], e)
            assert e["region"] == "RegionOne", e
        pub = s["endpoints"][0]["publicURL"]
        assert urlparse(pub).port == SERVICE_PORTS[s["type"]], (s["type"], pub)
        if "AUTH_" in pub or re.search(r"/v[0-9.]+/[0-9a-f]{32}$", pub):
            assert pub.rstrip("/").endswith(tenant_id), pub
    # v2 token usable on v3 (shared token backend, as in Havana)
    r = ferrostack.http("GET", "/v3/auth/tokens", token=ferrostack.admin_token(),
                        subject=tok["id"])
    assert r.status_code == 200, r.text
    # v2 admin API validation on 35357
    r = ferrostack.http("GET", f"{ferrostack.admin_v2}/tokens/{tok['id']}",
                        token=tok["id"])
    assert r.status_code == 200, r.text
    assert r.json()["access"]["token"]["id"] == tok["id"]


def test_v2_errors(ferrostack):
    r = ferrostack.http("POST", "/v2.0/tokens",
                        json=_v2_body(password="wrong"))
    error_body(r, 401, "Unauthorized")
    # admin has no role on invisible_to_admin (it does on demo, per the guide)
    r = ferrostack.http("POST", "/v2.0/tokens",
                        json=_v2_body(tenant="invisible_to_admin"))
    error_body(r, 401, "Unauthorized")
    r = ferrostack.http("POST", "/v2.0/tokens", json={"auth": {}})
    error_body(r, 400, "Bad Request")


def test_v2_unscoped_then_tenants(ferrostack):
    r = ferrostack.http("POST", "/v2.0/tokens",
                        json=_v2_body("demo", DEMO_PASSWORD, tenant=None))
    assert r.status_code == 200, r.text
    access = r.json()["access"]
    assert "tenant" not in access["token"], access["token"]
    r = ferrostack.http("GET", "/v2.0/tenants", token=access["token"]["id"])
    assert r.status_code == 200, r.text
    assert sorted(t["name"] for t in r.json()["tenants"]) == [
        "demo", "invisible_to_admin"]


def _kc_v2(ferrostack):
    import warnings
    from keystoneclient.v2_0 import client as v2client
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return v2client.Client(username="admin", password=ADMIN_PASSWORD,
                               tenant_name="admin", auth_url=ferrostack.v2,
                               timeout=30)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_keystoneclient_v2(ferrostack):
    kc = _kc_v2(ferrostack)
    # keystone token-get
    assert kc.auth_token
    assert kc.auth_ref.project_name == "admin"
    assert kc.auth_ref.user_id
    url = kc.service_catalog.url_for(service_type="compute",
                                     endpoint_type="publicURL")
    assert ":8774/" in url, url
    assert kc.service_catalog.url_for(service_type="identity",
                                      endpoint_type="adminURL")
    # keystone tenant-list / user-list (admin API via catalog adminURL)
    tenants = {t.name for t in kc.tenants.list()}
    assert BOOTSTRAP_PROJECTS <= tenants, tenants
    users = {u.name for u in kc.users.list()}
    assert {"admin", "demo", *SERVICE_USERS} <= users, users


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_keystoneclient_v2_admin_extensions(ferrostack):
    """`keystone role-list` / `service-list` (OS-KSADM admin extension)."""
    kc = _kc_v2(ferrostack)
    roles = {r.name for r in kc.roles.list()}
    assert {"admin", "Member", "KeystoneAdmin", "KeystoneServiceAdmin",
            "ResellerAdmin"} <= roles, roles
    services = {s.type for s in kc.services.list()}
    assert services == BOOTSTRAP_SERVICE_TYPES, services


# --------------------------------------------------------------------------
# restart persistence (must stay last: it restarts the shared server)
# --------------------------------------------------------------------------

@pytest.mark.restart
def test_zz_restart_persistence(ferrostack):
    fs = ferrostack
    if not fs.owned:
        pytest.skip("server not started by the tests (FERROSTACK_URL)")
    name = unique("fs-persist")
    uid = field(fs.os_ok("user", "create", "--domain", "default",
                         "--password", "persist-pw", name), "id")
    fs.os_ok("role", "add", "--user", name, "--project", "demo", "member",
             fmt_json=False)
    admin_tok, _ = fs.issue_token()
    user_tok, _ = fs.issue_token(name, "persist-pw", "demo")
    revoked, _ = fs.issue_token()
    r = fs.http("DELETE", "/v3/auth/tokens", token=admin_tok, subject=revoked)
    assert r.status_code == 204, r.text
    v2 = fs.http("POST", "/v2.0/tokens", json=_v2_body()).json()["access"]["token"]["id"]

    rc = fs.stop()
    assert rc is not None, "server did not exit within 20s of SIGTERM"
    assert rc in (0, -15, 143), f"unexpected exit code {rc} after SIGTERM"
    fs.start()

    shown = fs.os_ok("user", "show", name)
    assert field(shown, "id") == uid
    # old (non-revoked) tokens still validate
    r = fs.http("GET", "/v3/auth/tokens", token=admin_tok, subject=user_tok)
    assert r.status_code == 200, f"token issued before restart: {r.text}"
    assert r.json()["token"]["user"]["id"] == uid
    r = fs.http("GET", "/v3/auth/tokens", token=admin_tok, subject=v2)
    assert r.status_code == 200, f"v2 token issued before restart: {r.text}"
    # revoked stays revoked
    error_body(fs.http("GET", "/v3/users", token=revoked), 401, "Unauthorized")
    # password hash persisted
    fs.issue_token(name, "persist-pw", "demo")
    # bootstrap did not run twice
    got = names(fs.os_ok("project", "list"))
    for p in BOOTSTRAP_PROJECTS:
        assert got.count(p) == 1, f"{p} x{got.count(p)} after restart: {got}"
    users = names(fs.os_ok("user", "list"))
    assert users.count("admin") == 1, users
    types = [field(r, "Type") for r in fs.os_ok("catalog", "list")]
    assert sorted(types) == sorted(BOOTSTRAP_SERVICE_TYPES), types
    fs.os_ok("user", "delete", uid, fmt_json=False)
