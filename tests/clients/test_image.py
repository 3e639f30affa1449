"""Image service (Glance v2) compatibility tests.

Drives the stock `openstack` CLI (openstacksdk), the legacy `glance` CLI
(python-glanceclient, v2) and raw HTTP against the Ferrostack all-in-one's
image API on 127.0.0.1:9292, and checks the outcomes real Glance produces
(behaviour of Glance master / 2025.x with the filesystem store, format
inspection on, no multi-store, no image cache, default policies).

Run:  pytest -v tests/clients/test_image.py
Needs qemu-img (for real qcow2 files).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from conftest import DEMO_PASSWORD, SERVICE_PASSWORD, field, run_legacy_cli, unique

SCHEMA_IMAGE = "/v2/schemas/image"
TS_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
QCOW2_VIRTUAL = 64 * 1024 * 1024
PATCH_V21 = "application/openstack-images-v2.1-json-patch"
PATCH_V20 = "application/openstack-images-v2.0-json-patch"

# Keys every Glance v2 image document has (images.py ResponseSerializer).
IMAGE_KEYS = {
    "id", "name", "status", "visibility", "protected", "os_hidden",
    "checksum", "os_hash_algo", "os_hash_value", "owner", "size",
    "virtual_size", "container_format", "disk_format", "created_at",
    "updated_at", "tags", "min_ram", "min_disk", "self", "file", "schema",
}


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------

def digests(data: bytes) -> dict:
    return {"md5": hashlib.md5(data).hexdigest(),
            "sha512": hashlib.sha512(data).hexdigest()}


def file_digests(path) -> dict:
    return digests(Path(path).read_bytes())


def img_get(row: dict, name: str):
    """A value from `openstack image show -f json`: top-level column or
    inside the flattened `properties` (OSC puts os_hash_* there)."""
    try:
        return field(row, name)
    except KeyError:
        pass
    props = row.get("properties") or {}
    if isinstance(props, str):
        try:
            props = json.loads(props)
        except ValueError:
            props = {}
    if name in props:
        return props[name]
    raise KeyError(f"{name!r} not in {sorted(row)} nor properties {sorted(props)}")


def expect_status(resp, code: int, what: str = ""):
    assert resp.status_code == code, (
        f"{what or ''} {resp.request.method} {resp.url}: expected {code}, got "
        f"{resp.status_code}: {resp.text[:500]!r}")


def list_names(rows) -> set:
    return {field(r, "Name") for r in rows}


def list_ids(rows) -> set:
    return {field(r, "ID") for r in rows}


def find_store_files(data_dir, image_id: str) -> list[Path]:
    if data_dir is None or not Path(data_dir).is_dir():
        return []
    return [p for p in Path(data_dir).rglob(f"*{image_id}*")]


# --------------------------------------------------------------------------
# fixtures
# --------------------------------------------------------------------------

@pytest.fixture(scope="session")
def image_files(tmp_path_factory):
    """A random raw file, a real empty 64 MiB qcow2 (qemu-img) and a qcow2
    with a backing file (refused by Glance's safety checks)."""
    if not shutil.which("qemu-img"):
        pytest.skip("qemu-img is required (apt-get install qemu-utils)")
    d = tmp_path_factory.mktemp("images")
    raw = d / "disk.raw"
    # 1 MiB + an odd tail, random: no image format signature
    raw.write_bytes(os.urandom(1024 * 1024 + 4097))
    qcow2 = d / "disk.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(qcow2), "64M"],
                   check=True, capture_output=True)
    base = d / "base.raw"
    base.write_bytes(b"\0" * 65536)
    backed = d / "backed.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(base),
                    "-F", "raw", str(backed)], check=True, capture_output=True)
    return {"raw": raw, "qcow2": qcow2, "backed": backed, "dir": d}


@pytest.fixture(scope="session")
def tokens(ferrostack, image_api):
    """Session tokens: admin (project admin) and demo (project demo)."""
    admin_tok, admin_body = ferrostack.issue_token()
    demo_tok, demo_body = ferrostack.issue_token("demo", DEMO_PASSWORD, "demo")
    return {
        "admin": admin_tok, "demo": demo_tok,
        "admin_project": admin_body["project"]["id"],
        "demo_project": demo_body["project"]["id"],
    }


@pytest.fixture
def cleanup(image_api, tokens):
    """Collects image ids; deletes them (unprotecting first) afterwards."""
    ids: list[str] = []
    yield ids
    for image_id in ids:
        try:
            image_api.delete(tokens["admin"], image_id, force=True)
        except Exception:  # noqa: BLE001 - best effort
            pass


@pytest.fixture(scope="session")
def glance_home(tmp_path_factory):
    # glanceclient caches /v2/schemas/* under ~/.glanceclient: use a fresh
    # HOME so a schema cached from another server is never reused.
    return str(tmp_path_factory.mktemp("glance-home"))


def glance(ferrostack, home, *args, cloud="ferrostack", stdin_path=None):
    return run_legacy_cli(ferrostack, "glance", *args, cloud=cloud, home=home,
                          stdin_path=stdin_path)


def glance_table(output: str) -> dict:
    """Parse glanceclient's `| Property | Value |` table (values wider than
    80 columns continue on lines with an empty Property cell)."""
    rows: dict = {}
    last = None
    for line in output.splitlines():
        if not line.startswith("|"):
            continue
        cells = line.split("|")
        if len(cells) != 4:
            continue
        key, value = cells[1].strip(), cells[2].strip()
        if key in ("Property", "Field"):
            continue
        if key:
            rows[key] = value
            last = key
        elif last is not None:
            rows[last] += value
    return rows


def os_create(ferrostack, *args, cloud="ferrostack"):
    """`openstack image create ... -f json` uploading --file (if given)."""
    return ferrostack.os_ok("image", "create", *args, cloud=cloud)


def os_create_empty(ferrostack, *args, cloud="ferrostack"):
    """`openstack image create` with no data. OSC uploads stdin whenever it
    is not a terminal (even /dev/null makes a 0-byte active image), so give
    it a pseudo-terminal as stdin, like an interactive shell."""
    argv = [ferrostack.cli, "--os-cloud", cloud, "image", "create", *args,
            "-f", "json"]
    master, slave = os.openpty()
    try:
        proc = subprocess.run(argv, capture_output=True, text=True,
                              env=ferrostack.cli_env(), timeout=180,
                              stdin=slave)
    finally:
        os.close(slave)
        os.close(master)
    assert proc.returncode == 0, (
        f"`openstack image create {' '.join(args)}` exited {proc.returncode}\n"
        f"{proc.stdout}\n{proc.stderr}\n{ferrostack.log_tail(10)}")
    return json.loads(proc.stdout)


# --------------------------------------------------------------------------
# discovery, schemas, document shapes
# --------------------------------------------------------------------------

def test_version_discovery(image_api):
    """GET / answers 300 and /versions 200 with Glance's versions list,
    without authentication; every version has id, status and links."""
    r = image_api.req("GET", image_api.url + "/")
    expect_status(r, 300, "version document at /")
    versions = r.json()["versions"]
    assert isinstance(versions, list) and versions, r.text
    for v in versions:
        assert {"id", "status", "links"} <= set(v), v
        assert v["status"] in ("CURRENT", "SUPPORTED", "EXPERIMENTAL",
                               "DEPRECATED"), v
    ids = {v["id"] for v in versions}
    assert "v2.0" in ids, ids
    current = [v for v in versions if v["status"] == "CURRENT"]
    assert len(current) == 1 and current[0]["id"].startswith("v2."), versions
    href = [l["href"] for l in current[0]["links"] if l.get("rel") == "self"]
    assert href and href[0].rstrip("/").endswith(":9292/v2"), current[0]
    assert not any(v["id"].startswith("v1") for v in versions), ids

    r = image_api.req("GET", image_api.url + "/versions")
    expect_status(r, 200, "GET /versions")
    assert {v["id"] for v in r.json()["versions"]} == ids


def test_catalog_points_image_at_9292(ferrostack, tokens):
    r = ferrostack.http("GET", "/v3/auth/catalog", token=tokens["admin"])
    assert r.status_code == 200, r.text
    image = [s for s in r.json()["catalog"] if s["type"] == "image"]
    assert image, r.json()
    urls = {e["interface"]: e["url"] for e in image[0]["endpoints"]}
    assert urls.get("public", "").rstrip("/") == "http://127.0.0.1:9292", urls


def test_requires_token(image_api):
    r = image_api.req("GET", "/images")
    expect_status(r, 401, "no token")
    assert "WWW-Authenticate" in r.headers, dict(r.headers)
    r = image_api.req("GET", "/images", "not-a-valid-token")
    expect_status(r, 401, "bad token")


def test_schemas(image_api, tokens):
    tok = tokens["demo"]
    r = image_api.req("GET", "/schemas/image", tok)
    expect_status(r, 200)
    s = r.json()
    assert s["name"] == "image", s
    # glanceclient validates every image it PATCHes against this schema
    # (warlock); custom properties are free-form strings.
    assert s["additionalProperties"] == {"type": "string"}, s.get("additionalProperties")
    props = s["properties"]
    for key in IMAGE_KEYS | {"locations", "direct_url", "stores"}:
        assert key in props, f"schema lacks property {key!r}"
    assert set(props["visibility"]["enum"]) == {"public", "private", "shared",
                                                "community"}
    for ro in ("id", "status", "checksum", "size", "created_at", "self", "file",
               "schema"):
        if ro != "id":
            assert props[ro].get("readOnly") is True, (ro, props[ro])
    assert "qcow2" in props["disk_format"]["enum"] and None in props["disk_format"]["enum"]
    assert "bare" in props["container_format"]["enum"]
    assert props["name"].get("maxLength") == 255
    assert {l["rel"] for l in s.get("links", [])} >= {"self", "enclosure", "describedby"}

    r = image_api.req("GET", "/schemas/images", tok)
    expect_status(r, 200)
    s = r.json()
    assert s["name"] == "images"
    assert s["properties"]["images"]["items"]["name"] == "image"
    assert {"first", "next", "schema"} <= set(s["properties"])

    for name, coll in (("member", "members"),):
        r = image_api.req("GET", f"/schemas/{name}", tok)
        expect_status(r, 200)
        m = r.json()
        assert m["name"] == "member"
        assert {"member_id", "image_id", "status", "created_at", "updated_at",
                "schema"} <= set(m["properties"])
        assert set(m["properties"]["status"]["enum"]) == {"pending", "accepted",
                                                          "rejected"}
        r = image_api.req("GET", f"/schemas/{coll}", tok)
        expect_status(r, 200)
        assert r.json()["name"] == "members"


def test_image_document_shape(image_api, tokens, cleanup):
    """POST /v2/images: 201, Location, import-methods header, and exactly
    Glance's keys with Glance's defaults (no `locations` by default)."""
    name = unique("fs-shape")
    r = image_api.req("POST", "/images", tokens["admin"],
                      json={"name": name, "disk_format": "raw",
                            "container_format": "bare", "os_distro": "cirros"})
    expect_status(r, 201)
    img = r.json()
    cleanup.append(img["id"])
    assert UUID_RE.match(img["id"]), img["id"]
    assert r.headers.get("Location", "").endswith(f"/v2/images/{img['id']}"), dict(r.headers)
    methods = r.headers.get("OpenStack-image-import-methods", "")
    assert "glance-direct" in methods.split(","), dict(r.headers)
    assert r.headers.get("Content-Type", "").startswith("application/json")
    missing = IMAGE_KEYS - set(img)
    assert not missing, f"missing keys {missing} in {img}"
    extra = set(img) - IMAGE_KEYS - {"os_distro", "stores"}
    assert not extra, f"unexpected keys {extra} (Glance shows no locations/direct_url by default)"
    assert img["name"] == name
    assert img["status"] == "queued"
    assert img["visibility"] == "shared"       # Glance's default since Ocata
    assert img["protected"] is False and img["os_hidden"] is False
    assert img["min_ram"] == 0 and img["min_disk"] == 0
    for k in ("size", "virtual_size", "checksum", "os_hash_algo", "os_hash_value"):
        assert img[k] is None, (k, img[k])
    assert img["owner"] == tokens["admin_project"]
    assert img["tags"] == []
    assert img["os_distro"] == "cirros"
    assert img["self"] == f"/v2/images/{img['id']}"
    assert img["file"] == f"/v2/images/{img['id']}/file"
    assert img["schema"] == SCHEMA_IMAGE
    assert TS_RE.match(img["created_at"]) and TS_RE.match(img["updated_at"]), img

    shown = image_api.show(tokens["admin"], img["id"])
    assert shown == img

    # the document validates against the published schema, as glanceclient
    # does before every update
    jsonschema = pytest.importorskip("jsonschema")
    schema = image_api.req("GET", "/schemas/image", tokens["admin"]).json()
    jsonschema.validate(shown, schema)


def test_list_document_and_pagination(image_api, tokens, cleanup):
    for i in range(3):
        cleanup.append(image_api.create(tokens["admin"], name=unique(f"fs-page{i}"))["id"])
    r = image_api.req("GET", "/images", tokens["admin"], params={"limit": 1})
    expect_status(r, 200)
    body = r.json()
    assert set(body) >= {"images", "first", "schema"}, body
    assert body["schema"] == "/v2/schemas/images"
    assert body["first"] == "/v2/images?limit=1", body["first"]
    assert len(body["images"]) == 1
    assert "next" in body and body["next"].startswith("/v2/images?"), body
    assert "marker=" + body["images"][0]["id"] in body["next"], body["next"]
    r2 = image_api.req("GET", image_api.url + body["next"], tokens["admin"])
    expect_status(r2, 200)
    assert r2.json()["images"][0]["id"] != body["images"][0]["id"]

    # default sort: created_at desc, then id desc (Glance appends both keys;
    # timestamps have second resolution)
    ids = image_api.list_ids(tokens["admin"])
    ours = [i for i in ids if i in cleanup]
    assert sorted(ours) == sorted(cleanup), (ours, cleanup)
    docs = [image_api.show(tokens["admin"], i) for i in ours]
    keys = [(d["created_at"], d["id"]) for d in docs]
    assert keys == sorted(keys, reverse=True), keys

    r = image_api.req("GET", "/images", tokens["admin"], params={"marker": str(uuid.uuid4())})
    expect_status(r, 400, "unknown marker")
    r = image_api.req("GET", "/images", tokens["admin"], params={"sort_key": "bogus"})
    expect_status(r, 400, "bad sort key")
    r = image_api.req("GET", "/images", tokens["admin"], params={"limit": "-1"})
    expect_status(r, 400, "negative limit")


def test_info_import(image_api, tokens):
    r = image_api.req("GET", "/info/import", tokens["demo"])
    expect_status(r, 200)
    im = r.json()["import-methods"]
    assert im["type"] == "array" and "glance-direct" in im["value"], im
    assert "web-download" not in im["value"], im


# --------------------------------------------------------------------------
# the openstack CLI: create / upload / show / list / save / set / delete
# --------------------------------------------------------------------------

def test_openstack_create_qcow2_upload_save(ferrostack, image_api, tokens,
                                            image_files, tmp_path, cleanup):
    name = unique("fs-qcow2")
    qcow2 = image_files["qcow2"]
    dig = file_digests(qcow2)
    size = qcow2.stat().st_size
    img = os_create(ferrostack, "--file", str(qcow2), "--disk-format", "qcow2",
                    "--container-format", "bare", "--public", name)
    image_id = field(img, "id")
    cleanup.append(image_id)
    assert field(img, "status") == "active", img
    assert field(img, "visibility") == "public", img
    assert field(img, "disk_format") == "qcow2"
    assert field(img, "container_format") == "bare"
    assert field(img, "size") == size, img
    assert field(img, "checksum") == dig["md5"], img
    assert img_get(img, "os_hash_algo") == "sha512", img
    assert img_get(img, "os_hash_value") == dig["sha512"], img
    # Glance's format inspector reads the qcow2 header for the virtual size
    assert field(img, "virtual_size") == QCOW2_VIRTUAL, img

    shown = ferrostack.os_ok("image", "show", image_id)
    assert field(shown, "id") == image_id and field(shown, "name") == name
    by_name = ferrostack.os_ok("image", "show", name)
    assert field(by_name, "id") == image_id

    rows = ferrostack.os_ok("image", "list")
    assert image_id in list_ids(rows), rows
    row = [r for r in rows if field(r, "ID") == image_id][0]
    assert field(row, "Status") == "active"
    rows = ferrostack.os_ok("image", "list", "--public", "--long")
    assert image_id in list_ids(rows)

    out = tmp_path / "saved.qcow2"
    ferrostack.os_ok("image", "save", "--file", str(out), image_id, fmt_json=False)
    assert file_digests(out) == dig, "downloaded bytes differ from the upload"

    r = image_api.download(tokens["admin"], image_id)
    expect_status(r, 200)
    assert r.headers.get("Content-Type") == "application/octet-stream", dict(r.headers)
    assert r.headers.get("Content-MD5") == dig["md5"], dict(r.headers)
    assert int(r.headers.get("Content-Length", -1)) == size, dict(r.headers)
    assert digests(r.content) == dig


def test_openstack_create_raw_private(ferrostack, image_api, tokens,
                                      image_files, tmp_path, cleanup):
    raw = image_files["raw"]
    dig = file_digests(raw)
    name = unique("fs-raw")
    img = os_create(ferrostack, "--file", str(raw), "--disk-format", "raw",
                    "--container-format", "bare", "--private",
                    "--min-disk", "1", "--min-ram", "64",
                    "--property", "os_distro=cirros", "--tag", "fs-tag1", name)
    image_id = field(img, "id")
    cleanup.append(image_id)
    assert field(img, "status") == "active"
    assert field(img, "visibility") == "private"
    assert field(img, "size") == raw.stat().st_size
    assert field(img, "virtual_size") == raw.stat().st_size
    assert field(img, "checksum") == dig["md5"]
    assert field(img, "min_disk") == 1 and field(img, "min_ram") == 64
    assert "fs-tag1" in field(img, "tags")
    assert img_get(img, "os_distro") == "cirros"

    raw_doc = image_api.show(tokens["admin"], image_id)
    assert raw_doc["os_distro"] == "cirros"
    assert raw_doc["os_hash_algo"] == "sha512"
    assert raw_doc["os_hash_value"] == dig["sha512"]
    assert raw_doc["tags"] == ["fs-tag1"]

    out = tmp_path / "saved.raw"
    ferrostack.os_ok("image", "save", "--file", str(out), image_id, fmt_json=False)
    assert file_digests(out) == dig


def test_openstack_set_unset_properties(ferrostack, image_api, tokens, cleanup):
    name = unique("fs-props")
    img = os_create_empty(ferrostack, "--disk-format", "raw", "--container-format",
                          "bare", name)
    image_id = field(img, "id")
    cleanup.append(image_id)
    assert field(img, "status") == "queued"

    newname = name + "-renamed"
    ferrostack.os_ok("image", "set", "--property", "fs_key=fs value",
                     "--property", "hw_disk_bus=virtio", "--os-distro", "ubuntu",
                     "--name", newname, "--min-ram", "128", "--tag", "t-a",
                     image_id, fmt_json=False)
    doc = image_api.show(tokens["admin"], image_id)
    assert doc["name"] == newname
    assert doc["fs_key"] == "fs value" and doc["hw_disk_bus"] == "virtio"
    assert doc["os_distro"] == "ubuntu"
    assert doc["min_ram"] == 128
    assert doc["tags"] == ["t-a"]
    shown = ferrostack.os_ok("image", "show", image_id)
    assert img_get(shown, "fs_key") == "fs value"

    ferrostack.os_ok("image", "unset", "--property", "fs_key", "--tag", "t-a",
                     image_id, fmt_json=False)
    doc = image_api.show(tokens["admin"], image_id)
    assert "fs_key" not in doc, doc
    assert doc["hw_disk_bus"] == "virtio"
    assert doc["tags"] == []

    rows = ferrostack.os_ok("image", "list", "--property", "hw_disk_bus=virtio")
    assert image_id in list_ids(rows), rows
    rows = ferrostack.os_ok("image", "list", "--name", newname)
    assert list_ids(rows) == {image_id}, rows


def test_openstack_delete_removes_image_and_data(ferrostack, image_api, tokens,
                                                 image_files, cleanup):
    name = unique("fs-del")
    img = os_create(ferrostack, "--file", str(image_files["raw"]), "--disk-format",
                    "raw", "--container-format", "bare", name)
    image_id = field(img, "id")
    cleanup.append(image_id)
    files_before = find_store_files(ferrostack.data_dir, image_id)
    ferrostack.os_ok("image", "delete", image_id, fmt_json=False)
    r = image_api.req("GET", f"/images/{image_id}", tokens["admin"])
    expect_status(r, 404, "deleted image")
    assert image_id not in image_api.list_ids(tokens["admin"])
    r = image_api.req("DELETE", f"/images/{image_id}", tokens["admin"])
    expect_status(r, 404, "second delete")
    leftovers = [p for p in files_before if p.exists()]
    assert not leftovers, f"image data left in the store: {leftovers}"
    res = ferrostack.openstack("image", "show", image_id)
    assert res.rc != 0, res.describe()


def glance_account(ferrostack) -> tuple[str, str]:
    """The glance service user's token and Swift account URL (where the
    swift store keeps image data, as Glance's single-tenant store)."""
    tok, doc = ferrostack.issue_token("glance", SERVICE_PASSWORD, "service")
    return tok, f"http://127.0.0.1:8080/v1/AUTH_{doc['project']['id']}"


def test_image_data_is_kept_by_the_configured_store(ferrostack, image_files, cleanup):
    """`openstack image create --file`: the data is where `[image] store`
    says — an object named by the image id in the `glance` container of the
    glance account (swift), or a file of the filesystem store — and goes
    with the image."""
    raw = image_files["raw"]
    img = os_create(ferrostack, "--file", str(raw), "--disk-format", "raw",
                    "--container-format", "bare", unique("fs-where"))
    image_id = field(img, "id")
    cleanup.append(image_id)
    if os.environ.get("FERROSTACK__IMAGE__STORE", "file") == "swift":
        tok, account = glance_account(ferrostack)
        r = ferrostack.http("GET", f"{account}/glance?format=json", tok)
        expect_status(r, 200, "the glance container")
        rows = {o["name"]: o for o in r.json()}
        assert rows[image_id]["bytes"] == raw.stat().st_size, rows
        assert rows[image_id]["hash"] == field(img, "checksum"), rows
        assert not find_store_files(ferrostack.data_dir and ferrostack.data_dir / "images",
                                    image_id), "nothing in the filesystem store"
        ferrostack.os_ok("image", "delete", image_id, fmt_json=False)
        r = ferrostack.http("HEAD", f"{account}/glance/{image_id}", tok)
        expect_status(r, 404, "the object after the image's delete")
    else:
        if ferrostack.data_dir is None:
            pytest.skip("the server's data directory is unknown (FERROSTACK_URL)")
        path = Path(ferrostack.data_dir) / "images" / image_id
        assert path.stat().st_size == raw.stat().st_size
        ferrostack.os_ok("image", "delete", image_id, fmt_json=False)
        assert not path.exists()


def test_wrong_id_is_404(ferrostack, image_api, tokens):
    bogus = str(uuid.uuid4())
    res = ferrostack.openstack("image", "show", bogus)
    assert res.rc != 0, res.describe()
    assert "No Image found" in res.output or "404" in res.output, res.describe()
    tok = tokens["admin"]
    for method, path in (("GET", f"/images/{bogus}"), ("DELETE", f"/images/{bogus}"),
                         ("GET", f"/images/{bogus}/file"),
                         ("GET", "/images/not-a-uuid"),
                         ("GET", f"/images/{bogus}/members"),
                         ("PUT", f"/images/{bogus}/tags/x"),
                         ("POST", f"/images/{bogus}/actions/deactivate"),
                         # tempest's "null id" tests: GET/DELETE /v2/images/
                         ("GET", "/images/"), ("DELETE", "/images/")):
        r = image_api.req(method, path, tok)
        expect_status(r, 404, f"{method} {path}")
    r = image_api.patch(tok, bogus, [{"op": "replace", "path": "/name", "value": "x"}])
    expect_status(r, 404, "PATCH unknown image")
    r = image_api.upload(tok, bogus, b"abc")
    expect_status(r, 404, "upload to unknown image")


# --------------------------------------------------------------------------
# visibility and policy
# --------------------------------------------------------------------------

def test_demo_cannot_see_admin_private_image(ferrostack, image_api, tokens,
                                             image_files, cleanup):
    name = unique("fs-priv")
    img = os_create(ferrostack, "--file", str(image_files["raw"]), "--disk-format",
                    "raw", "--container-format", "bare", "--private", name)
    image_id = field(img, "id")
    cleanup.append(image_id)
    rows = ferrostack.os_ok("image", "list", cloud="ferrostack-demo")
    assert image_id not in list_ids(rows)
    assert name not in list_names(rows)
    res = ferrostack.openstack("image", "show", image_id, cloud="ferrostack-demo")
    assert res.rc != 0, res.describe()
    for method, path in (("GET", f"/images/{image_id}"),
                         ("GET", f"/images/{image_id}/file"),
                         ("DELETE", f"/images/{image_id}")):
        expect_status(image_api.req(method, path, tokens["demo"]), 404,
                      "private image of another project")
    r = image_api.patch(tokens["demo"], image_id,
                        [{"op": "replace", "path": "/name", "value": "x"}])
    expect_status(r, 404, "PATCH invisible image")
    # admin sees every project's images (Glance admin list is unfiltered)
    assert image_id in image_api.list_ids(tokens["admin"])


def test_demo_sees_public_image(ferrostack, image_api, tokens, image_files,
                                tmp_path, cleanup):
    name = unique("fs-pub")
    raw = image_files["raw"]
    img = os_create(ferrostack, "--file", str(raw), "--disk-format", "raw",
                    "--container-format", "bare", "--public", name)
    image_id = field(img, "id")
    cleanup.append(image_id)
    rows = ferrostack.os_ok("image", "list", cloud="ferrostack-demo")
    assert image_id in list_ids(rows), rows
    shown = ferrostack.os_ok("image", "show", image_id, cloud="ferrostack-demo")
    assert field(shown, "owner") == tokens["admin_project"]
    out = tmp_path / "pub.raw"
    ferrostack.os_ok("image", "save", "--file", str(out), image_id,
                     cloud="ferrostack-demo", fmt_json=False)
    assert file_digests(out) == file_digests(raw)
    # but demo cannot change or delete it: visible, so 403 (not 404)
    r = image_api.patch(tokens["demo"], image_id,
                        [{"op": "replace", "path": "/name", "value": "hijack"}])
    expect_status(r, 403, "demo PATCH on admin's public image")
    expect_status(image_api.req("DELETE", f"/images/{image_id}", tokens["demo"]),
                  403, "demo DELETE on admin's public image")
    res = ferrostack.openstack("image", "delete", image_id, cloud="ferrostack-demo",
                               fmt_json=False)
    assert res.rc != 0, res.describe()
    assert image_api.show(tokens["admin"], image_id)["name"] == name


def test_demo_cannot_publicize(ferrostack, image_api, tokens, cleanup):
    res = ferrostack.openstack("image", "create", "--disk-format", "raw",
                               "--container-format", "bare", "--public",
                               unique("fs-demo-pub"), cloud="ferrostack-demo")
    assert res.rc != 0, res.describe()
    assert "403" in res.output or "orbidden" in res.output, res.describe()
    r = image_api.req("POST", "/images", tokens["demo"],
                      json={"name": unique("fs-demo-pub"), "visibility": "public"})
    expect_status(r, 403, "demo creating a public image")

    img = os_create_empty(ferrostack, "--disk-format", "raw", "--container-format",
                          "bare", "--private", unique("fs-demo-own"),
                          cloud="ferrostack-demo")
    image_id = field(img, "id")
    cleanup.append(image_id)
    assert field(img, "owner") == tokens["demo_project"]
    res = ferrostack.openstack("image", "set", "--public", image_id,
                               cloud="ferrostack-demo", fmt_json=False)
    assert res.rc != 0, res.describe()
    r = image_api.patch(tokens["demo"], image_id,
                        [{"op": "replace", "path": "/visibility", "value": "public"}])
    expect_status(r, 403, "demo publicizing its image")
    assert image_api.show(tokens["demo"], image_id)["visibility"] == "private"
    # community and shared are allowed for the owner
    ferrostack.os_ok("image", "set", "--community", image_id,
                     cloud="ferrostack-demo", fmt_json=False)
    assert image_api.show(tokens["demo"], image_id)["visibility"] == "community"
    # a non-admin cannot give its image away
    r = image_api.patch(tokens["demo"], image_id,
                        [{"op": "replace", "path": "/owner",
                          "value": tokens["admin_project"]}])
    expect_status(r, 403, "non-admin changing owner")
    # admin may publicize it
    ferrostack.os_ok("image", "set", "--public", image_id, fmt_json=False)
    assert image_api.show(tokens["demo"], image_id)["visibility"] == "public"


def test_sharing_requires_accept(ferrostack, image_api, tokens, image_files,
                                 tmp_path, cleanup):
    raw = image_files["raw"]
    name = unique("fs-shared")
    img = os_create(ferrostack, "--file", str(raw), "--disk-format", "raw",
                    "--container-format", "bare", "--shared", name)
    image_id = field(img, "id")
    cleanup.append(image_id)
    assert field(img, "visibility") == "shared"
    demo_pid = tokens["demo_project"]

    assert image_id not in list_ids(
        ferrostack.os_ok("image", "list", cloud="ferrostack-demo"))
    expect_status(image_api.req("GET", f"/images/{image_id}", tokens["demo"]),
                  404, "shared image before membership")

    member = ferrostack.os_ok("image", "add", "project", image_id, "demo")
    assert field(member, "status") == "pending", member
    assert field(member, "member_id") == demo_pid, member
    assert field(member, "image_id") == image_id, member

    # pending: visible by id, not in the default list
    assert image_id not in list_ids(
        ferrostack.os_ok("image", "list", cloud="ferrostack-demo"))
    image_api.show(tokens["demo"], image_id)
    pending = image_api.list_ids(tokens["demo"], visibility="shared",
                                 member_status="pending")
    assert image_id in pending

    ferrostack.os_ok("image", "set", "--accept", image_id,
                     cloud="ferrostack-demo", fmt_json=False)
    rows = ferrostack.os_ok("image", "list", cloud="ferrostack-demo")
    assert image_id in list_ids(rows), rows
    out = tmp_path / "shared.raw"
    ferrostack.os_ok("image", "save", "--file", str(out), image_id,
                     cloud="ferrostack-demo", fmt_json=False)
    assert file_digests(out) == file_digests(raw)

    members = ferrostack.os_ok("image", "member", "list", image_id)
    assert len(members) == 1, members
    assert field(members[0], "Status") == "accepted"

    r = image_api.req("GET", f"/images/{image_id}/members/{demo_pid}", tokens["demo"])
    expect_status(r, 200)
    m = r.json()
    assert {"member_id", "image_id", "status", "created_at", "updated_at",
            "schema"} <= set(m), m
    assert m["schema"] == "/v2/schemas/member" and m["status"] == "accepted"
    r = image_api.req("GET", f"/images/{image_id}/members", tokens["admin"])
    expect_status(r, 200)
    assert r.json()["schema"] == "/v2/schemas/members"
    assert [x["member_id"] for x in r.json()["members"]] == [demo_pid]

    # the member cannot edit the image, only its membership
    r = image_api.patch(tokens["demo"], image_id,
                        [{"op": "replace", "path": "/name", "value": "x"}])
    expect_status(r, 403, "member PATCH")
    r = image_api.req("PUT", f"/images/{image_id}/members/{demo_pid}",
                      tokens["demo"], json={"status": "bogus"})
    expect_status(r, 400, "invalid member status")
    r = image_api.req("POST", f"/images/{image_id}/members", tokens["admin"],
                      json={"member": demo_pid})
    expect_status(r, 409, "duplicate member")

    ferrostack.os_ok("image", "remove", "project", image_id, "demo", fmt_json=False)
    assert image_id not in list_ids(
        ferrostack.os_ok("image", "list", cloud="ferrostack-demo"))
    expect_status(image_api.req("GET", f"/images/{image_id}", tokens["demo"]), 404)


def test_members_only_on_shared_images(image_api, tokens, cleanup):
    img = image_api.create(tokens["admin"], name=unique("fs-nomember"),
                           visibility="private")
    cleanup.append(img["id"])
    r = image_api.req("POST", f"/images/{img['id']}/members", tokens["admin"],
                      json={"member": tokens["demo_project"]})
    expect_status(r, 403, "member on a private image")


def test_owner_cannot_accept_for_member(image_api, tokens, cleanup):
    img = image_api.create(tokens["demo"], name=unique("fs-own-accept"),
                           visibility="shared")
    cleanup.append(img["id"])
    r = image_api.req("POST", f"/images/{img['id']}/members", tokens["demo"],
                      json={"member": tokens["admin_project"]})
    expect_status(r, 200, "add member")
    assert r.json()["status"] == "pending"
    r = image_api.req("PUT", f"/images/{img['id']}/members/{tokens['admin_project']}",
                      tokens["demo"], json={"status": "accepted"})
    expect_status(r, 403, "owner accepting on behalf of the member")


# --------------------------------------------------------------------------
# protected, deactivated, hidden
# --------------------------------------------------------------------------

def test_protected_image_delete_refused(ferrostack, image_api, tokens, cleanup):
    name = unique("fs-prot")
    img = os_create_empty(ferrostack, "--disk-format", "raw", "--container-format",
                          "bare", "--protected", name)
    image_id = field(img, "id")
    cleanup.append(image_id)
    assert field(img, "protected") is True
    res = ferrostack.openstack("image", "delete", image_id, fmt_json=False)
    assert res.rc != 0, res.describe()
    expect_status(image_api.req("DELETE", f"/images/{image_id}", tokens["admin"]),
                  403, "DELETE protected image")
    assert image_api.show(tokens["admin"], image_id)["status"] == "queued"
    ferrostack.os_ok("image", "set", "--unprotected", image_id, fmt_json=False)
    ferrostack.os_ok("image", "delete", image_id, fmt_json=False)
    expect_status(image_api.req("GET", f"/images/{image_id}", tokens["admin"]), 404)


def test_deactivate_reactivate(ferrostack, image_api, tokens, image_files,
                               tmp_path, cleanup):
    raw = image_files["raw"]
    dig = file_digests(raw)
    name = unique("fs-deact")
    img = os_create(ferrostack, "--file", str(raw), "--disk-format", "raw",
                    "--container-format", "bare", "--public", name)
    image_id = field(img, "id")
    cleanup.append(image_id)

    ferrostack.os_ok("image", "set", "--deactivate", image_id, fmt_json=False)
    assert image_api.show(tokens["admin"], image_id)["status"] == "deactivated"
    assert field(ferrostack.os_ok("image", "show", image_id, cloud="ferrostack-demo"),
                 "status") == "deactivated"
    # non-admins may not download a deactivated image; admins may
    r = image_api.download(tokens["demo"], image_id)
    expect_status(r, 403, "demo download of deactivated image")
    res = ferrostack.openstack("image", "save", "--file", str(tmp_path / "x"),
                               image_id, cloud="ferrostack-demo", fmt_json=False)
    assert res.rc != 0, res.describe()
    r = image_api.download(tokens["admin"], image_id)
    expect_status(r, 200, "admin download of deactivated image")
    assert digests(r.content) == dig
    # deactivating twice is a no-op (204)
    r = image_api.req("POST", f"/images/{image_id}/actions/deactivate", tokens["admin"])
    expect_status(r, 204, "second deactivate")

    ferrostack.os_ok("image", "set", "--activate", image_id, fmt_json=False)
    assert image_api.show(tokens["admin"], image_id)["status"] == "active"
    r = image_api.download(tokens["demo"], image_id)
    expect_status(r, 200, "demo download after reactivate")
    assert digests(r.content) == dig

    # only active images can be deactivated
    q = image_api.create(tokens["admin"], name=unique("fs-deact-q"),
                         disk_format="raw", container_format="bare")
    cleanup.append(q["id"])
    r = image_api.req("POST", f"/images/{q['id']}/actions/deactivate", tokens["admin"])
    expect_status(r, 403, "deactivate a queued image")


def test_hidden_images(ferrostack, image_api, tokens, cleanup):
    img = image_api.create(tokens["admin"], name=unique("fs-hidden"), os_hidden=True)
    cleanup.append(img["id"])
    assert img["os_hidden"] is True
    assert img["id"] not in image_api.list_ids(tokens["admin"])
    assert img["id"] in image_api.list_ids(tokens["admin"], os_hidden="true")
    image_api.show(tokens["admin"], img["id"])
    r = image_api.patch(tokens["admin"], img["id"],
                        [{"op": "replace", "path": "/os_hidden", "value": False}])
    expect_status(r, 200)
    assert img["id"] in image_api.list_ids(tokens["admin"])
    # openstacksdk's find also searches hidden images
    image_api.patch(tokens["admin"], img["id"],
                    [{"op": "replace", "path": "/os_hidden", "value": True}])
    shown = ferrostack.os_ok("image", "show", img["name"])
    assert field(shown, "id") == img["id"]


# --------------------------------------------------------------------------
# upload / download semantics (raw HTTP)
# --------------------------------------------------------------------------

def test_upload_format_mismatch_refused(image_api, tokens, image_files, cleanup):
    """Declared qcow2, raw data: Glance (>= 2024.2, require_image_format_match)
    answers 400 (as the issue specifies; Glance >= 30 uses 415) and puts
    the image back to `queued` with no size/checksum."""
    tok = tokens["admin"]
    img = image_api.create(tok, name=unique("fs-mismatch"), disk_format="qcow2",
                           container_format="bare")
    cleanup.append(img["id"])
    r = image_api.upload(tok, img["id"], image_files["raw"].read_bytes())
    expect_status(r, 400, "raw data declared qcow2")
    doc = image_api.show(tok, img["id"])
    assert doc["status"] == "queued", doc
    assert doc["size"] is None and doc["checksum"] is None, doc
    assert doc["os_hash_value"] is None and doc["virtual_size"] is None, doc
    # the real thing is accepted afterwards
    data = image_files["qcow2"].read_bytes()
    r = image_api.upload(tok, img["id"], data)
    expect_status(r, 204, "real qcow2")
    doc = image_api.show(tok, img["id"])
    assert doc["status"] == "active"
    assert doc["size"] == len(data) and doc["virtual_size"] == QCOW2_VIRTUAL
    assert doc["checksum"] == digests(data)["md5"]


def test_qcow2_with_backing_file_refused(image_api, tokens, image_files, cleanup):
    tok = tokens["admin"]
    img = image_api.create(tok, name=unique("fs-backing"), disk_format="qcow2",
                           container_format="bare")
    cleanup.append(img["id"])
    r = image_api.upload(tok, img["id"], image_files["backed"].read_bytes())
    expect_status(r, 400, "qcow2 with a backing file (safety check)")
    assert image_api.show(tok, img["id"])["status"] == "queued"


def test_openstack_create_mismatch_fails_and_cleans_up(ferrostack, image_api,
                                                       tokens, image_files):
    name = unique("fs-osc-mismatch")
    res = ferrostack.openstack("image", "create", "--file", str(image_files["raw"]),
                               "--disk-format", "qcow2", "--container-format",
                               "bare", name)
    assert res.rc != 0, res.describe()
    # openstacksdk deletes the image it created when the upload fails
    r = image_api.req("GET", "/images", tokens["admin"], params={"name": name})
    expect_status(r, 200)
    assert r.json()["images"] == [], r.json()


def test_upload_download_status_codes(image_api, tokens, image_files, cleanup):
    tok = tokens["admin"]
    data = image_files["raw"].read_bytes()

    img = image_api.create(tok, name=unique("fs-codes"), disk_format="raw",
                           container_format="bare")
    cleanup.append(img["id"])
    # no data yet: 204 with an empty body
    r = image_api.download(tok, img["id"])
    expect_status(r, 204, "download of a queued image")
    assert r.content == b""
    # wrong content type
    r = image_api.upload(tok, img["id"], data, content_type="application/json")
    expect_status(r, 415, "upload with Content-Type application/json")
    assert image_api.show(tok, img["id"])["status"] == "queued"
    # chunked transfer (no Content-Length), as tempest and glanceclient send
    chunks = (data[i:i + 65536] for i in range(0, len(data), 65536))
    r = image_api.upload(tok, img["id"], chunks)
    expect_status(r, 204, "chunked upload")
    assert r.content == b""
    doc = image_api.show(tok, img["id"])
    assert doc["status"] == "active" and doc["size"] == len(data)
    assert doc["checksum"] == digests(data)["md5"]
    assert doc["os_hash_algo"] == "sha512"
    assert doc["os_hash_value"] == digests(data)["sha512"]
    # a second upload is a conflict
    r = image_api.upload(tok, img["id"], data)
    expect_status(r, 409, "upload to an active image")
    # disk/container format may only change while queued
    r = image_api.patch(tok, img["id"], [{"op": "replace", "path": "/disk_format",
                                          "value": "qcow2"}])
    expect_status(r, 403, "disk_format change on an active image")

    # formats are needed before data
    bare = image_api.create(tok, name=unique("fs-noformat"))
    cleanup.append(bare["id"])
    r = image_api.upload(tok, bare["id"], data)
    expect_status(r, 400, "upload without disk_format/container_format")
    assert image_api.show(tok, bare["id"])["status"] == "queued"

    # the size header must not lie
    liar = image_api.create(tok, name=unique("fs-sizehdr"), disk_format="raw",
                            container_format="bare")
    cleanup.append(liar["id"])
    r = image_api.upload(tok, liar["id"], data,
                         headers={"x-openstack-image-size": "notanumber"})
    expect_status(r, 400, "non-numeric x-openstack-image-size")


def test_glance_direct_import(ferrostack, image_api, tokens, image_files, cleanup):
    tok = tokens["admin"]
    data = image_files["raw"].read_bytes()
    img = image_api.create(tok, name=unique("fs-import"), disk_format="raw",
                           container_format="bare")
    cleanup.append(img["id"])
    # importing before staging is a conflict
    r = image_api.req("POST", f"/images/{img['id']}/import", tok,
                      json={"method": {"name": "glance-direct"}})
    expect_status(r, 409, "glance-direct import of an unstaged image")
    r = image_api.req("PUT", f"/images/{img['id']}/stage", tok, data=data,
                      headers={"Content-Type": "application/octet-stream"})
    expect_status(r, 204, "stage")
    doc = image_api.show(tok, img["id"])
    assert doc["status"] == "uploading", doc
    assert not any(k.startswith("os_glance_stage") for k in doc), doc
    r = image_api.req("POST", f"/images/{img['id']}/import", tok,
                      json={"method": {"name": "web-download",
                                       "uri": "http://127.0.0.1:1/x"}})
    expect_status(r, 400, "disabled import method")
    # tempest sends all_stores=true even without multi-store
    r = image_api.req("POST", f"/images/{img['id']}/import", tok,
                      json={"method": {"name": "glance-direct"}, "all_stores": True})
    expect_status(r, 202, "glance-direct import")
    doc = image_api.wait_status(tok, img["id"], "active")
    assert doc["size"] == len(data)
    assert doc["checksum"] == digests(data)["md5"]
    assert doc["os_hash_value"] == digests(data)["sha512"]
    r = image_api.download(tok, img["id"])
    expect_status(r, 200)
    assert digests(r.content) == digests(data)

    # the same through the CLI: create --import stages and imports
    name = unique("fs-osc-import")
    out = os_create(ferrostack, "--import", "--file", str(image_files["raw"]),
                    "--disk-format", "raw", "--container-format", "bare", name)
    cleanup.append(field(out, "id"))
    doc = image_api.wait_status(tok, field(out, "id"), "active")
    assert doc["checksum"] == digests(data)["md5"]

    # staging does not need the formats (Glance checks them at import: 409)
    nofmt = image_api.create(tok, name=unique("fs-import-nofmt"))
    cleanup.append(nofmt["id"])
    r = image_api.req("PUT", f"/images/{nofmt['id']}/stage", tok, data=data,
                      headers={"Content-Type": "application/octet-stream"})
    expect_status(r, 204, "stage without disk/container format")
    r = image_api.req("POST", f"/images/{nofmt['id']}/import", tok,
                      json={"method": {"name": "glance-direct"}})
    expect_status(r, 409, "import without disk/container format")


# --------------------------------------------------------------------------
# validation rules (Glance's schema and deserializer)
# --------------------------------------------------------------------------

def test_create_validation(image_api, tokens, cleanup):
    tok = tokens["demo"]
    bad = [
        ({"name": "x", "disk_format": "wrong", "container_format": "bare"}, 400),
        ({"name": "x", "disk_format": "vhd", "container_format": "wrong"}, 400),
        ({"name": "n" * 256}, 400),
        ({"name": "x", "min_ram": -1}, 400),
        ({"name": "x", "min_disk": "abc"}, 400),
        ({"name": "x", "visibility": "everyone"}, 400),
        ({"name": "x", "protected": "yes"}, 400),
        ({"name": "x", "tags": ["t" * 256]}, 400),
        ({"name": "x", "custom": 5}, 400),           # custom values are strings
        ({"name": "x", "k" * 256: "v"}, 400),        # custom key length
        ({"name": "x", "os_glance_foo": "bar"}, 403),  # reserved namespace
        ({"name": "x", "status": "active"}, 403),      # read-only
        ({"name": "x", "checksum": "0" * 32}, 403),
        ({"name": "x", "size": 5}, 403),
        ({"name": "x", "self": "/x"}, 403),
        ({"name": "x", "locations": []}, 403),         # reserved
        ({"name": "x", "owner": str(uuid.uuid4().hex)}, 403),  # non-admin owner
        ({"name": "x", "id": "not-a-uuid"}, 400),
    ]
    for body, code in bad:
        r = image_api.req("POST", "/images", tok, json=body)
        if r.status_code == 201:
            cleanup.append(r.json()["id"])
        short = {k[:20]: (v if not isinstance(v, str) else v[:20]) for k, v in body.items()}
        expect_status(r, code, f"create {short}")

    # a client-chosen id works once; a second create with it conflicts
    wanted = str(uuid.uuid4())
    img = image_api.create(tok, id=wanted, name=unique("fs-id"))
    cleanup.append(img["id"])
    assert img["id"] == wanted
    r = image_api.req("POST", "/images", tok, json={"id": wanted, "name": "dup"})
    expect_status(r, 409, "duplicate id")

    r = image_api.req("POST", "/images", tok, data="not json",
                      headers={"Content-Type": "application/json"})
    expect_status(r, 400, "malformed JSON body")


def test_patch_validation(image_api, tokens, cleanup):
    tok = tokens["demo"]
    img = image_api.create(tok, name=unique("fs-patch"), disk_format="raw",
                           container_format="bare", fs_prop="v1")
    cleanup.append(img["id"])
    iid = img["id"]

    def op(o, path, value=None):
        d = {"op": o, "path": path}
        if o != "remove":
            d["value"] = value
        return [d]

    cases = [
        (op("replace", "/status", "active"), 403),
        (op("replace", "/id", str(uuid.uuid4())), 403),
        (op("replace", "/checksum", "0" * 32), 403),
        (op("replace", "/size", 1), 403),
        (op("replace", "/created_at", "2020-01-01T00:00:00Z"), 403),
        (op("replace", "/os_hash_value", "ab"), 403),
        (op("add", "/os_glance_foo", "bar"), 403),
        (op("add", "/deleted", "true"), 403),
        (op("remove", "/name"), 403),                  # base attrs can't be removed
        (op("remove", "/nonexistent"), 409),
        (op("replace", "/nonexistent", "x"), 409),
        (op("replace", "/disk_format", "wrong"), 400),
        (op("replace", "/visibility", "everyone"), 400),
        (op("replace", "/min_ram", -5), 400),
        (op("replace", "/name", "n" * 256), 400),
        (op("add", "/custom_int", 5), 400),
        (op("move", "/name", "x"), 400),
        (op("replace", "/name/sub", "x"), 400),
        ([{"path": "/name", "value": "x"}], 400),       # no op
        ({"op": "replace", "path": "/name", "value": "x"}, 400),  # not a list
    ]
    for body, code in cases:
        r = image_api.patch(tok, iid, body)
        expect_status(r, code, f"PATCH {body}")

    r = image_api.req("PATCH", f"/images/{iid}", tok,
                      data=json.dumps(op("replace", "/name", "x")),
                      headers={"Content-Type": "application/json"})
    expect_status(r, 415, "PATCH with application/json")
    assert "openstack-images-v2.1-json-patch" in r.headers.get("Accept-Patch", ""), \
        dict(r.headers)

    # v2.1 (draft 10): add on an existing property replaces it
    r = image_api.patch(tok, iid, op("add", "/fs_prop", "v2"))
    expect_status(r, 200, "v2.1 add on existing property")
    assert r.json()["fs_prop"] == "v2"
    assert r.headers.get("Content-Type", "").startswith("application/json")
    # v2.0 (draft 4, as tempest sends): {"<op>": "<path>", "value": ...}
    r = image_api.patch(tok, iid, [{"replace": "/name", "value": "renamed"},
                                   {"add": "/fs_new", "value": "n"}],
                        content_type=PATCH_V20)
    expect_status(r, 200, "v2.0 draft-4 patch")
    assert r.json()["name"] == "renamed" and r.json()["fs_new"] == "n"
    r = image_api.patch(tok, iid, [{"add": "/fs_new", "value": "again"}],
                        content_type=PATCH_V20)
    expect_status(r, 409, "v2.0 add on an existing property")
    # several ops apply together; remove of a custom property works
    r = image_api.patch(tok, iid, [{"op": "remove", "path": "/fs_new"},
                                   {"op": "replace", "path": "/min_disk", "value": 2},
                                   {"op": "replace", "path": "/tags", "value": ["a", "b", "a"]},
                                   {"op": "replace", "path": "/protected", "value": True}])
    expect_status(r, 200)
    doc = r.json()
    assert "fs_new" not in doc and doc["min_disk"] == 2 and doc["protected"] is True
    assert sorted(doc["tags"]) == ["a", "b"]
    assert doc["updated_at"] >= img["updated_at"]
    image_api.patch(tok, iid, op("replace", "/protected", False))


def test_tags_api(image_api, tokens, cleanup):
    tok = tokens["demo"]
    img = image_api.create(tok, name=unique("fs-tags"))
    cleanup.append(img["id"])
    r = image_api.req("PUT", f"/images/{img['id']}/tags/fs-t1", tok)
    expect_status(r, 204)
    r = image_api.req("PUT", f"/images/{img['id']}/tags/fs-t1", tok)
    expect_status(r, 204, "adding an existing tag again")
    assert image_api.show(tok, img["id"])["tags"] == ["fs-t1"]
    assert img["id"] in image_api.list_ids(tok, tag="fs-t1")
    r = image_api.req("DELETE", f"/images/{img['id']}/tags/fs-t1", tok)
    expect_status(r, 204)
    r = image_api.req("DELETE", f"/images/{img['id']}/tags/fs-t1", tok)
    expect_status(r, 404, "deleting a missing tag")
    r = image_api.req("PUT", f"/images/{img['id']}/tags/" + "t" * 256, tok)
    expect_status(r, 400, "tag longer than 255")


def test_list_filters(image_api, tokens, image_files, cleanup):
    tok = tokens["demo"]
    data = image_files["raw"].read_bytes()
    a = image_api.create(tok, name=unique("fs-fa"), disk_format="raw",
                         container_format="bare", visibility="private",
                         fs_flavor="a", tags=["fs-ftag"])
    b = image_api.create(tok, name=unique("fs-fb"), disk_format="qcow2",
                         container_format="ovf", visibility="shared")
    cleanup += [a["id"], b["id"]]
    expect_status(image_api.upload(tok, a["id"], data), 204)

    def ids(**params):
        return set(image_api.list_ids(tok, **params))

    assert a["id"] in ids(name=a["name"]) and b["id"] not in ids(name=a["name"])
    assert a["id"] in ids(status="active") and b["id"] not in ids(status="active")
    assert b["id"] in ids(status="queued")
    assert a["id"] in ids(visibility="private") and b["id"] not in ids(visibility="private")
    assert b["id"] in ids(visibility="shared")     # own shared images are listed
    assert a["id"] in ids(disk_format="raw") and b["id"] not in ids(disk_format="raw")
    assert b["id"] in ids(container_format="ovf")
    assert a["id"] in ids(fs_flavor="a") and b["id"] not in ids(fs_flavor="a")
    assert ids(tag="fs-ftag") >= {a["id"]} and b["id"] not in ids(tag="fs-ftag")
    assert a["id"] in ids(size_min=len(data), size_max=len(data))
    assert a["id"] not in ids(size_min=len(data) + 1)
    assert a["id"] in ids(owner=tokens["demo_project"])
    assert a["id"] in ids(id=f"in:{a['id']},{b['id']}") and b["id"] in ids(id=f"in:{a['id']},{b['id']}")
    # sorting
    r = image_api.req("GET", "/images", tok, params={"sort": "name:asc"})
    expect_status(r, 200)
    names = [i["name"] or "" for i in r.json()["images"]]
    assert names == sorted(names), names
    r = image_api.req("GET", "/images", tok, params={"sort_key": "name", "sort_dir": "desc"})
    expect_status(r, 200)
    names = [i["name"] or "" for i in r.json()["images"]]
    assert names == sorted(names, reverse=True), names
    r = image_api.req("GET", "/images", tok, params={"visibility": "bogus"})
    expect_status(r, 400, "bad visibility filter")


# --------------------------------------------------------------------------
# the legacy glance CLI (python-glanceclient, API v2)
# --------------------------------------------------------------------------

def test_glance_cli(ferrostack, image_api, tokens, image_files, glance_home,
                    tmp_path, cleanup):
    raw = image_files["raw"]
    dig = file_digests(raw)
    name = unique("fs-glance")
    res = glance(ferrostack, glance_home, "image-create", "--name", name,
                 "--disk-format", "raw", "--container-format", "bare",
                 "--visibility", "public", "--file", str(raw))
    assert res.rc == 0, res.describe()
    t = glance_table(res.stdout)
    assert UUID_RE.match(t.get("id", "")), res.describe()
    image_id = t["id"]
    cleanup.append(image_id)
    assert t.get("status") == "active", t
    assert t.get("checksum") == dig["md5"], t
    assert t.get("os_hash_value") == dig["sha512"], t

    res = glance(ferrostack, glance_home, "image-list")
    assert res.rc == 0, res.describe()
    assert image_id in res.stdout and name in res.stdout, res.stdout
    # the demo project sees the public image too
    res = glance(ferrostack, glance_home, "image-list", cloud="ferrostack-demo")
    assert res.rc == 0 and image_id in res.stdout, res.describe()

    res = glance(ferrostack, glance_home, "image-show", image_id)
    assert res.rc == 0, res.describe()
    t = glance_table(res.stdout)
    assert t.get("name") == name and t.get("visibility") == "public", t

    out = tmp_path / "glance.raw"
    res = glance(ferrostack, glance_home, "image-download", "--file", str(out), image_id)
    assert res.rc == 0, res.describe()
    assert file_digests(out) == dig

    # glanceclient validates the image against /v2/schemas/image, then PATCHes
    res = glance(ferrostack, glance_home, "image-update", "--property", "fs_g=1",
                 "--min-ram", "32", image_id)
    assert res.rc == 0, res.describe()
    doc = image_api.show(tokens["admin"], image_id)
    assert doc["fs_g"] == "1" and doc["min_ram"] == 32
    res = glance(ferrostack, glance_home, "image-tag-update", image_id, "fs-gt")
    assert res.rc == 0, res.describe()
    assert "fs-gt" in image_api.show(tokens["admin"], image_id)["tags"]

    res = glance(ferrostack, glance_home, "image-delete", image_id)
    assert res.rc == 0, res.describe()
    expect_status(image_api.req("GET", f"/images/{image_id}", tokens["admin"]), 404)


def test_glance_cli_stdin_upload_like_the_guide(ferrostack, image_api, tokens,
                                                image_files, glance_home, cleanup):
    """The guide's `glance image-create ... < cirros.img`, in v2 syntax
    (`--is-public=true` is a v1 option; v2 spells it `--visibility public`)."""
    qcow2 = image_files["qcow2"]
    name = unique("fs-guide")
    res = glance(ferrostack, glance_home, "image-create", "--name", name,
                 "--disk-format", "qcow2", "--container-format", "bare",
                 "--visibility", "public", stdin_path=str(qcow2))
    assert res.rc == 0, res.describe()
    t = glance_table(res.stdout)
    image_id = t.get("id")
    assert image_id, res.describe()
    cleanup.append(image_id)
    doc = image_api.show(tokens["admin"], image_id)
    assert doc["status"] == "active", doc
    assert doc["checksum"] == file_digests(qcow2)["md5"]
    assert doc["virtual_size"] == QCOW2_VIRTUAL
    res = glance(ferrostack, glance_home, "image-list")
    assert res.rc == 0 and name in res.stdout, res.describe()


def test_glance_cli_download_of_queued_image(ferrostack, image_api, tokens,
                                             glance_home, tmp_path, cleanup):
    img = image_api.create(tokens["admin"], name=unique("fs-gq"),
                           disk_format="raw", container_format="bare")
    cleanup.append(img["id"])
    res = glance(ferrostack, glance_home, "image-download", "--file",
                 str(tmp_path / "q"), img["id"])
    assert res.rc != 0, res.describe()
    assert "has no data" in res.output, res.describe()
