"""Two nodes: `ferrostack serve --services identity` and `ferrostack serve
--services image,network` with separate data directories. The second node
validates tokens through the first one's API with its service users, as
services on other hosts of a multi-node cloud do.
"""

import json
import os
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

import pytest

BIN = os.environ.get("FERROSTACK_BIN", os.path.join(
    os.path.dirname(__file__), "..", "..", "target", "debug", "ferrostack"))
ENV = {
    "FERROSTACK__IDENTITY__BCRYPT_COST": "4",
    # The API across nodes is under test, not the data plane.
    "FERROSTACK__NETWORK_AGENT__ENABLED": "false",
    "FERROSTACK__IDENTITY__PUBLIC_PORT": "25000",
    "FERROSTACK__IDENTITY__ADMIN_PORT": "25357",
    "FERROSTACK__IMAGE__PORT": "29292",
    "FERROSTACK__NETWORK__PORT": "29696",
    # Beside the session's all-in-one, which holds the default ports.
    "FERROSTACK__DASHBOARD__PORT": "29999",
    "FERROSTACK__TELEMETRY__METERING_PORT": "28777",
    "FERROSTACK__TELEMETRY__METRIC_PORT": "28041",
    "FERROSTACK__TELEMETRY__ALARM_PORT": "28042",
    "FERROSTACK__OBJECT__PORT": "28080",
    "FERROSTACK__SERVICE_AUTH__AUTH_URL": "http://127.0.0.1:25000/v3",
}


def env():
    e = dict(os.environ)
    e.update(ENV)
    return e


def wait(url, proc, log):
    for _ in range(200):
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            if proc.poll() is not None:
                pytest.fail("node exited: " + open(log).read()[-2000:])
            time.sleep(0.1)
    pytest.fail("node did not start: " + url)


def request(method, url, token=None, body=None):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["X-Auth-Token"] = token
    req = urllib.request.Request(url, method=method, headers=headers,
                                 data=json.dumps(body).encode() if body is not None else None)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            text = r.read()
            return r.status, r.headers, json.loads(text) if text else None
    except urllib.error.HTTPError as e:
        return e.code, e.headers, None


def test_services_on_another_node_validate_tokens_through_identity():
    id_dir = tempfile.mkdtemp(prefix="ferrostack-node1-")
    svc_dir = tempfile.mkdtemp(prefix="ferrostack-node2-")
    subprocess.run([BIN, "bootstrap", "--data-dir", id_dir], env=env(), check=True,
                   stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    log1, log2 = os.path.join(id_dir, "log"), os.path.join(svc_dir, "log")
    node1 = subprocess.Popen([BIN, "serve", "--services", "identity", "--data-dir", id_dir],
                             env=env(), stdin=subprocess.DEVNULL,
                             stdout=open(log1, "w"), stderr=subprocess.STDOUT)
    node2 = subprocess.Popen([BIN, "serve", "--services", "image,network", "--data-dir", svc_dir],
                             env=env(), stdin=subprocess.DEVNULL,
                             stdout=open(log2, "w"), stderr=subprocess.STDOUT)
    try:
        wait("http://127.0.0.1:25000/v3", node1, log1)
        wait("http://127.0.0.1:29292/versions", node2, log2)
        wait("http://127.0.0.1:29696/", node2, log2)
        body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": "demo", "domain": {"id": "default"}, "password": "admin_pass"}}},
            "scope": {"project": {"name": "demo", "domain": {"id": "default"}}}}}
        status, headers, _ = request("POST", "http://127.0.0.1:25000/v3/auth/tokens", body=body)
        assert status == 201
        token = headers["X-Subject-Token"]

        status, _, img = request("POST", "http://127.0.0.1:29292/v2/images", token,
                                 {"name": "from-node2", "disk_format": "raw", "container_format": "bare"})
        assert status == 201, img
        status, _, net = request("POST", "http://127.0.0.1:29696/v2.0/networks", token,
                                 {"network": {"name": "from-node2"}})
        assert status == 201, net
        assert net["network"]["project_id"] == img["owner"]

        assert request("GET", "http://127.0.0.1:29292/v2/images", "not-a-token")[0] == 401
        status, _, _ = request("GET", "http://127.0.0.1:29696/v2.0/networks", token)
        assert status == 200
        # Node 2 asked node 1: service users authenticated, user tokens validated.
        node1_log = open(log1).read()
        assert "GET /v3/auth/tokens" in node1_log, node1_log[-2000:]
    finally:
        for p in (node1, node2):
            p.terminate()
            p.wait(10)
