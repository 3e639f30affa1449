"""Object storage (Swift API) with the stock clients: `openstack container`
/ `openstack object` (openstacksdk), the `swift` CLI (python-swiftclient)
and curl, against the all-in-one's object API on 127.0.0.1:8080.

Run:  pytest -v tests/clients/test_object.py
"""

from __future__ import annotations

import hashlib
import hmac
import os
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import run_legacy_cli, unique

OBJECT_PORT = 8080


def object_url(fs, token: str) -> str:
    """The object-store public endpoint of the token's catalog."""
    r = fs.http("GET", "/v3/auth/tokens", token=token, subject=token)
    assert r.status_code == 200, r.text
    for svc in r.json()["token"]["catalog"]:
        if svc["type"] == "object-store":
            for ep in svc["endpoints"]:
                if ep["interface"] == "public":
                    return ep["url"]
    raise AssertionError("no object-store in the catalog")


def write_file(path: Path, size: int) -> str:
    """A file of `size` bytes (not all alike); its MD5."""
    md5 = hashlib.md5()
    block = os.urandom(1 << 20)
    with open(path, "wb") as f:
        left, i = size, 0
        while left:
            chunk = (block[i % 251:] + block[:i % 251])[:min(left, len(block))]
            f.write(chunk)
            md5.update(chunk)
            left -= len(chunk)
            i += 1
    return md5.hexdigest()


def file_md5(path: Path) -> str:
    md5 = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            md5.update(chunk)
    return md5.hexdigest()


def test_catalog_lists_object_store_with_the_seed_url(ferrostack, admin_token):
    url = object_url(ferrostack, admin_token)
    assert url.endswith(":%d/v1/AUTH_" % OBJECT_PORT + url.rsplit("AUTH_", 1)[1])
    info = ferrostack.http("GET", f"http://127.0.0.1:{OBJECT_PORT}/info").json()
    assert "slo" in info and "tempurl" in info


def test_openstack_cli_container_and_100mb_object(ferrostack, tmp_path):
    c1 = unique("c1")
    row = ferrostack.os_ok("container", "create", c1)
    assert row[0]["container"] == c1
    src = tmp_path / "file"
    md5 = write_file(src, 100 * 1024 * 1024)
    row = ferrostack.os_ok("object", "create", c1, str(src), "--name", "file")
    assert row[0]["etag"] == md5
    listed = ferrostack.os_ok("object", "list", c1)
    assert [o["Name"] for o in listed] == ["file"]
    shown = ferrostack.os_ok("object", "show", c1, "file")
    assert int(shown["content-length"]) == 100 * 1024 * 1024
    out = tmp_path / "saved"
    ferrostack.os_ok("object", "save", c1, "file", "--file", str(out), fmt_json=False)
    assert file_md5(out) == md5
    containers = ferrostack.os_ok("container", "list")
    assert c1 in [c["Name"] for c in containers]
    ferrostack.os_ok("object", "delete", c1, "file", fmt_json=False)
    ferrostack.os_ok("container", "delete", c1, fmt_json=False)


def test_swift_cli_segmented_upload_and_whole_download(ferrostack, tmp_path):
    c = unique("seg")
    src = tmp_path / "big.bin"
    md5 = write_file(src, 5 * 1024 * 1024 + 123)
    res = run_legacy_cli(ferrostack, "swift", "upload", "--segment-size", "1048576",
                         "--object-name", "big.bin", c, str(src), timeout=300)
    assert res.rc == 0, res.describe()
    res = run_legacy_cli(ferrostack, "swift", "list", c)
    assert res.rc == 0 and res.stdout.split() == ["big.bin"], res.describe()
    res = run_legacy_cli(ferrostack, "swift", "list", c + "_segments")
    assert res.rc == 0 and len(res.stdout.split()) == 6, res.describe()
    res = run_legacy_cli(ferrostack, "swift", "stat", c, "big.bin")
    assert res.rc == 0, res.describe()
    assert "5243003" in res.stdout, res.stdout
    out = tmp_path / "whole.bin"
    res = run_legacy_cli(ferrostack, "swift", "download", c, "big.bin", "-o", str(out), timeout=300)
    assert res.rc == 0, res.describe()
    assert file_md5(out) == md5
    res = run_legacy_cli(ferrostack, "swift", "delete", c, "big.bin")
    assert res.rc == 0, res.describe()
    res = run_legacy_cli(ferrostack, "swift", "list", c + "_segments")
    assert res.stdout.split() == [], "deleting the manifest deletes its segments"


def curl(url: str) -> tuple[int, bytes]:
    proc = subprocess.run(["curl", "-s", "-o", "-", "-w", "\n%{http_code}", url],
                          capture_output=True, timeout=60)
    body, _, code = proc.stdout.rpartition(b"\n")
    return int(code), body


def test_temp_url_without_token_until_it_expires(ferrostack, admin_token):
    base = object_url(ferrostack, admin_token)
    c = unique("tmp")
    h = {"X-Auth-Token": admin_token}
    import requests
    assert requests.put(f"{base}/{c}", headers=h).status_code == 201
    assert requests.put(f"{base}/{c}/note.txt", headers=h, data=b"hello temp").status_code == 201
    key = "s3cr3t-" + unique("k")
    assert requests.post(base, headers={**h, "X-Account-Meta-Temp-URL-Key": key}).status_code == 204
    path = "/v1/" + base.split("/v1/", 1)[1] + f"/{c}/note.txt"
    expires = int(time.time()) + 4
    sig = hmac.new(key.encode(), f"GET\n{expires}\n{path}".encode(), hashlib.sha256).hexdigest()
    url = f"http://127.0.0.1:{OBJECT_PORT}{path}?temp_url_sig={sig}&temp_url_expires={expires}"
    assert curl(url) == (200, b"hello temp")
    bad = url.replace(sig, sig[:-4] + ("0000" if not sig.endswith("0000") else "1111"))
    assert curl(bad)[0] == 401
    # The same URL through the swift CLI's own signer.
    res = run_legacy_cli(ferrostack, "swift", "tempurl", "GET", "60", path, key)
    assert res.rc == 0, res.describe()
    assert curl(f"http://127.0.0.1:{OBJECT_PORT}{res.stdout.strip()}")[0] == 200
    time.sleep(max(0.0, expires - time.time()) + 1.2)
    assert curl(url)[0] == 401


def test_demo_needs_a_read_acl(ferrostack, admin_token, demo_token):
    import requests
    base = object_url(ferrostack, admin_token)
    c = unique("acl")
    h = {"X-Auth-Token": admin_token}
    assert requests.put(f"{base}/{c}", headers=h).status_code == 201
    assert requests.put(f"{base}/{c}/doc", headers=h, data=b"private").status_code == 201
    demo = {"X-Auth-Token": demo_token}
    assert requests.get(f"{base}/{c}/doc", headers=demo).status_code == 403
    assert requests.get(f"{base}/{c}/doc").status_code == 401
    res = run_legacy_cli(ferrostack, "swift", "post", "-r", "demo:demo", c)
    assert res.rc == 0, res.describe()
    r = requests.get(f"{base}/{c}/doc", headers=demo)
    assert r.status_code == 200 and r.content == b"private"
    assert requests.put(f"{base}/{c}/x", headers=demo, data=b"x").status_code == 403


def test_wrong_etag_is_422_and_stores_nothing(ferrostack, admin_token):
    import requests
    base = object_url(ferrostack, admin_token)
    c = unique("etag")
    h = {"X-Auth-Token": admin_token}
    requests.put(f"{base}/{c}", headers=h)
    r = requests.put(f"{base}/{c}/o", headers={**h, "ETag": hashlib.md5(b"other").hexdigest()},
                     data=b"data")
    assert r.status_code == 422
    assert requests.head(f"{base}/{c}/o", headers=h).status_code == 404
    r = requests.get(f"{base}/{c}?format=json", headers=h)
    assert r.status_code == 200 and r.json() == []
