"""Kill the all-in-one in the middle of an image upload, start it again:
no `active` image, no stray file, and the image can be uploaded again.

Runs its own all-in-one on separate ports so the shared server of the other
client tests is not disturbed.
"""

import json
import os
import signal
import subprocess
import tempfile
import threading
import time
import urllib.request

import pytest

PORTS = {"IDENTITY__PUBLIC_PORT": 15000, "IDENTITY__ADMIN_PORT": 15357,
         "IMAGE__PORT": 19292, "NETWORK__PORT": 19696, "COMPUTE__PORT": 18774,
         "METADATA__PORT": 18775, "CONSOLE__PORT": 16080, "VOLUME__PORT": 18776}
BIN = os.environ.get("FERROSTACK_BIN", os.path.join(
    os.path.dirname(__file__), "..", "..", "target", "debug", "ferrostack"))


def start(data_dir):
    env = dict(os.environ)
    env["FERROSTACK__IDENTITY__BCRYPT_COST"] = "4"
    env["FERROSTACK__NETWORK_AGENT__ENABLED"] = "false"  # image crash-safety only
    env["FERROSTACK__COMPUTE__DRIVER"] = "fake"
    for k, v in PORTS.items():
        env["FERROSTACK__" + k] = str(v)
    proc = subprocess.Popen([BIN, "all-in-one", "--data-dir", data_dir],
                            stdin=subprocess.DEVNULL,
                            stdout=open(os.path.join(data_dir, "log"), "a"),
                            stderr=subprocess.STDOUT, env=env)
    for _ in range(200):
        try:
            urllib.request.urlopen("http://127.0.0.1:19292/versions", timeout=1)
            return proc
        except OSError:
            if proc.poll() is not None:
                pytest.fail("all-in-one exited: " + open(os.path.join(data_dir, "log")).read()[-2000:])
            time.sleep(0.1)
    proc.kill()
    pytest.fail("all-in-one did not start")


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
    _, headers, _ = request("POST", "http://127.0.0.1:15000/v3/auth/tokens", body=body)
    return headers["X-Subject-Token"]


def test_kill_during_upload_leaves_no_active_image_and_no_file():
    data_dir = tempfile.mkdtemp(prefix="ferrostack-crash-")
    proc = start(data_dir)
    try:
        token = admin_token()
        _, _, img = request("POST", "http://127.0.0.1:19292/v2/images", token,
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
                "http://127.0.0.1:19292/v2/images/%s/file" % image_id, data=body(),
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
            _, _, doc = request("GET", "http://127.0.0.1:19292/v2/images/" + image_id, token)
            if doc["status"] == "saving":
                break
            time.sleep(0.1)
        assert doc["status"] == "saving", doc
        tmp_dir = os.path.join(data_dir, "images", ".tmp")
        assert os.listdir(tmp_dir), "the partial upload is on disk before the kill"

        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        proc = start(data_dir)
        token = admin_token()

        _, _, doc = request("GET", "http://127.0.0.1:19292/v2/images/" + image_id, token)
        assert doc["status"] == "queued", doc
        assert doc["size"] is None and doc["checksum"] is None, doc
        assert os.listdir(tmp_dir) == [], os.listdir(tmp_dir)
        assert image_id not in os.listdir(os.path.join(data_dir, "images"))

        # The same image takes a complete upload afterwards.
        status, _, _ = request("PUT", "http://127.0.0.1:19292/v2/images/%s/file" % image_id,
                               token, b"x" * 4096, {"Content-Type": "application/octet-stream"})
        assert status == 204
        _, _, doc = request("GET", "http://127.0.0.1:19292/v2/images/" + image_id, token)
        assert doc["status"] == "active" and doc["size"] == 4096, doc
    finally:
        proc.kill()
        proc.wait(10)
