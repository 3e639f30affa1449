"""Kill the all-in-one with SIGKILL while a 1 GB object is being uploaded
(chunked, so the server cannot know its size), start it again: the object
is not there (no partial object is ever visible), the listing and the
container's totals do not count it, and no temporary or data file is left
of it. Objects stored before the kill are intact.

Runs its own all-in-one (tests/clients/own_cloud.py) so the shared server of
the other client tests is not disturbed.
"""

import hashlib
import http.client
import json
import os
import urllib.request

from own_cloud import LISTENERS, OwnCloud, service_url

CLOUD_BASE = 23000
OBJECT = "127.0.0.1", CLOUD_BASE + LISTENERS.index("OBJECT__PORT")
IDENTITY = service_url(CLOUD_BASE, "identity")


def token_and_project():
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "domain": {"id": "default"}, "password": "admin_pass"}}},
        "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}}
    req = urllib.request.Request(f"{IDENTITY}/v3/auth/tokens",
                                 data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.headers["X-Subject-Token"], json.loads(r.read())["token"]["project"]["id"]


def call(method, path, token, body=b"", headers=None):
    conn = http.client.HTTPConnection(*OBJECT, timeout=60)
    conn.request(method, path, body=body, headers={"X-Auth-Token": token, **(headers or {})})
    r = conn.getresponse()
    data = r.read()
    conn.close()
    return r.status, dict(r.getheaders()), data


def files_under(d):
    out = []
    for root, _, names in os.walk(d):
        out += [os.path.join(root, n) for n in names]
    return sorted(out)


def test_kill_during_a_1gb_upload_leaves_no_partial_object_and_no_stray_file():
    cloud = OwnCloud(CLOUD_BASE, prefix="ferrostack-object-crash-")
    data_dir = cloud.data_dir
    cloud.start(ready="object", ready_path="/info")
    try:
        token, project = token_and_project()
        base = f"/v1/AUTH_{project}/c"
        assert call("PUT", base, token)[0] == 201
        kept = os.urandom(4096)
        assert call("PUT", base + "/kept", token, kept)[0] == 201
        objects_dir = os.path.join(data_dir, "objects")
        before = files_under(os.path.join(objects_dir, "data"))
        assert len(before) == 1

        # 1 GB announced, chunked; cut after 200 MB have gone through.
        conn = http.client.HTTPConnection(*OBJECT, timeout=60)
        conn.putrequest("PUT", base + "/big")
        conn.putheader("X-Auth-Token", token)
        conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        chunk = os.urandom(1 << 20)
        for _ in range(200):
            conn.send(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
        # The upload is in flight: its bytes are in a temporary file only.
        tmp = files_under(os.path.join(objects_dir, "tmp"))
        assert len(tmp) == 1 and os.path.getsize(tmp[0]) > 0, tmp
        assert call("HEAD", base + "/big", token)[0] == 404
        cloud.kill()
        conn.close()

        cloud.start(ready="object", ready_path="/info")
        token, project = token_and_project()
        assert call("HEAD", base + "/big", token)[0] == 404
        status, headers, listing = call("GET", base + "?format=json", token)
        assert status == 200
        assert [o["name"] for o in json.loads(listing)] == ["kept"]
        assert headers["x-container-object-count"] == "1"
        assert headers["x-container-bytes-used"] == "4096"
        assert files_under(os.path.join(objects_dir, "tmp")) == []
        assert files_under(os.path.join(objects_dir, "data")) == before
        status, _, body = call("GET", base + "/kept", token)
        assert status == 200 and hashlib.md5(body).digest() == hashlib.md5(kept).digest()
    finally:
        cloud.remove()
