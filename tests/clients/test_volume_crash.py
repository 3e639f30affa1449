"""Kill the all-in-one (and its children) with SIGKILL while volumes are
being created, start it again: every volume ends `available` with its file,
none stays `creating`, and no temporary file is left.

Runs its own all-in-one on separate ports so the shared server of the other
client tests is not disturbed. A `qemu-img` first on PATH that waits before
running the real one keeps the creates in flight long enough to be cut.
"""

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request

import pytest

PORTS = {"IDENTITY__PUBLIC_PORT": 45000, "IDENTITY__ADMIN_PORT": 45357,
         "IMAGE__PORT": 49292, "NETWORK__PORT": 49696, "COMPUTE__PORT": 48774,
         "METADATA__PORT": 48775, "CONSOLE__PORT": 46080, "VOLUME__PORT": 48776}
BIN = os.environ.get("FERROSTACK_BIN", os.path.join(
    os.path.dirname(__file__), "..", "..", "target", "debug", "ferrostack"))
VOLUME = "http://127.0.0.1:48776"


def start(data_dir, slow_qemu_img=None):
    env = dict(os.environ)
    env["FERROSTACK__IDENTITY__BCRYPT_COST"] = "4"
    env["FERROSTACK__NETWORK_AGENT__ENABLED"] = "false"  # volume crash-safety only
    env["FERROSTACK__COMPUTE__DRIVER"] = "fake"
    for k, v in PORTS.items():
        env["FERROSTACK__" + k] = str(v)
    if slow_qemu_img:
        env["PATH"] = slow_qemu_img + os.pathsep + env["PATH"]
    proc = subprocess.Popen([BIN, "all-in-one", "--data-dir", data_dir],
                            stdin=subprocess.DEVNULL,
                            stdout=open(os.path.join(data_dir, "log"), "a"),
                            stderr=subprocess.STDOUT, env=env, start_new_session=True)
    for _ in range(300):
        try:
            urllib.request.urlopen(VOLUME + "/v3/", timeout=1)
            return proc
        except OSError:
            if proc.poll() is not None:
                pytest.fail("all-in-one exited: " + open(os.path.join(data_dir, "log")).read()[-2000:])
            time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    pytest.fail("all-in-one did not start")


def request(method, url, token=None, body=None):
    h = {"Content-Type": "application/json"}
    if token:
        h["X-Auth-Token"] = token
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=h)
    with urllib.request.urlopen(req, timeout=30) as r:
        text = r.read()
        return r.status, r.headers, (json.loads(text) if text else None)


def token_and_project():
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "domain": {"id": "default"}, "password": "admin_pass"}}},
        "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}}
    _, headers, doc = request("POST", "http://127.0.0.1:45000/v3/auth/tokens", body=body)
    return headers["X-Subject-Token"], doc["token"]["project"]["id"]


def test_kill_during_creates_leaves_no_volume_creating_and_no_stray_file():
    data_dir = tempfile.mkdtemp(prefix="ferrostack-volume-crash-")
    slow = os.path.join(data_dir, "slow-bin")
    os.makedirs(slow)
    wrapper = os.path.join(slow, "qemu-img")
    with open(wrapper, "w") as f:
        f.write('#!/bin/sh\n[ "$1" = create ] && sleep 5\nexec /usr/bin/qemu-img "$@"\n')
    os.chmod(wrapper, 0o755)
    proc = start(data_dir, slow_qemu_img=slow)
    try:
        token, project = token_and_project()
        ids = []
        for i in range(3):
            st, _, doc = request("POST", f"{VOLUME}/v3/{project}/volumes", token,
                                 {"volume": {"size": 1, "name": f"cut-{i}"}})
            assert st == 202, doc
            ids.append(doc["volume"]["id"])
        time.sleep(1)
        for vid in ids:
            _, _, doc = request("GET", f"{VOLUME}/v3/{project}/volumes/{vid}", token)
            assert doc["volume"]["status"] == "creating", doc
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)

        proc = start(data_dir)
        token, project = token_and_project()
        deadline = time.time() + 30
        statuses = {}
        while time.time() < deadline:
            statuses = {}
            for vid in ids:
                _, _, doc = request("GET", f"{VOLUME}/v3/{project}/volumes/{vid}", token)
                statuses[vid] = doc["volume"]["status"]
            if all(s == "available" for s in statuses.values()):
                break
            time.sleep(0.2)
        assert all(s == "available" for s in statuses.values()), statuses
        volumes_dir = os.path.join(data_dir, "volumes")
        assert sorted(os.listdir(volumes_dir)) == sorted(f"volume-{v}" for v in ids)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(10)
        shutil.rmtree(data_dir, ignore_errors=True)
