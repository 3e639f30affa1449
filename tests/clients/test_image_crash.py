"""Kill the all-in-one in the middle of an image upload, start it again:
no `active` image, no stray file, and the image can be uploaded again.

Runs its own all-in-one on separate ports so the shared server of the other
client tests is not disturbed.
"""

import json
import os
import threading
import time
import urllib.request

from own_cloud import OwnCloud, service_url

CLOUD_BASE = 15000
GLANCE = service_url(CLOUD_BASE, "image")
IDENTITY = service_url(CLOUD_BASE, "identity")


def request(method, url, token=None, body=None, headers=None):
    h = {"Content-Type": "application/json"}
    if token:
        h["X-Auth-Token"] = token
    h.update(headers or {})
    data = json.dumps(body).encode() if isinstance(body, (dict, list)) else body
    req = urllib.request.Request(url, data=data, method=method, headers=h)
    with urllib.request.urlopen(req, timeout=30) as r:
        text = r.read()
        return r.status, r.headers, (json.loads(text) if text else None)


def admin_token():
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "domain": {"id": "default"}, "password": "admin_pass"}}},
        "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}}
    _, headers, _ = request("POST", f"{IDENTITY}/v3/auth/tokens", body=body)
    return headers["X-Subject-Token"]


def test_kill_during_upload_leaves_no_active_image_and_no_file():
    cloud = OwnCloud(CLOUD_BASE, prefix="ferrostack-image-crash-")
    data_dir = cloud.data_dir
    cloud.start(ready="image", ready_path="/versions")
    try:
        token = admin_token()
        _, _, img = request("POST", f"{GLANCE}/v2/images", token,
                            {"name": "cut", "disk_format": "raw", "container_format": "bare"})
        image_id = img["id"]

        # A client that sends 8 MiB of a declared 1 GiB and then stalls.
        sent = threading.Event()

        def slow_upload():
            def body():
                for _ in range(8):
                    yield b"\0" * (1 << 20)
                sent.set()
                time.sleep(30)
                yield b""
            req = urllib.request.Request(
                f"{GLANCE}/v2/images/{image_id}/file", data=body(),
                method="PUT", headers={"X-Auth-Token": token,
                                       "Content-Type": "application/octet-stream",
                                       "Content-Length": str(1 << 30)})
            try:
                urllib.request.urlopen(req, timeout=60)
            except OSError:
                pass

        threading.Thread(target=slow_upload, daemon=True).start()
        assert sent.wait(30)
        deadline = time.time() + 10
        while time.time() < deadline:
            _, _, doc = request("GET", f"{GLANCE}/v2/images/{image_id}", token)
            if doc["status"] == "saving":
                break
            time.sleep(0.1)
        assert doc["status"] == "saving", doc
        tmp_dir = os.path.join(data_dir, "images", ".tmp")
        assert os.listdir(tmp_dir), "the partial upload is on disk before the kill"

        cloud.kill()
        cloud.start(ready="image", ready_path="/versions")
        token = admin_token()

        _, _, doc = request("GET", f"{GLANCE}/v2/images/{image_id}", token)
        assert doc["status"] == "queued", doc
        assert doc["size"] is None and doc["checksum"] is None, doc
        assert os.listdir(tmp_dir) == [], os.listdir(tmp_dir)
        assert image_id not in os.listdir(os.path.join(data_dir, "images"))

        # The same image takes a complete upload afterwards.
        status, _, _ = request("PUT", f"{GLANCE}/v2/images/{image_id}/file",
                               token, b"x" * 4096, {"Content-Type": "application/octet-stream"})
        assert status == 204
        _, _, doc = request("GET", f"{GLANCE}/v2/images/{image_id}", token)
        assert doc["status"] == "active" and doc["size"] == 4096, doc
    finally:
        cloud.remove()
