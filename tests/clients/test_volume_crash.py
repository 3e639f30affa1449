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
import subprocess
import threading
import time
import urllib.request

from own_cloud import OwnCloud, service_url

CLOUD_BASE = 21000
VOLUME = service_url(CLOUD_BASE, "volume")
IDENTITY = service_url(CLOUD_BASE, "identity")
GLANCE = service_url(CLOUD_BASE, "image")
COMPUTE = service_url(CLOUD_BASE, "compute") + "/v2.1"
NETWORK = service_url(CLOUD_BASE, "network") + "/v2.0"


def own_cloud():
    return OwnCloud(CLOUD_BASE, prefix="ferrostack-volume-crash-")


def start(cloud, slow=None):
    cloud.start(ready="volume", ready_path="/v3/", path_prepend=slow)


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
    _, headers, doc = request("POST", f"{IDENTITY}/v3/auth/tokens", body=body)
    return headers["X-Subject-Token"], doc["token"]["project"]["id"]


def test_kill_during_creates_leaves_no_volume_creating_and_no_stray_file():
    cloud = own_cloud()
    data_dir = cloud.data_dir
    slow = os.path.join(data_dir, "slow-bin")
    os.makedirs(slow)
    wrapper = os.path.join(slow, "qemu-img")
    with open(wrapper, "w") as f:
        f.write('#!/bin/sh\n[ "$1" = create ] && sleep 5\nexec /usr/bin/qemu-img "$@"\n')
    os.chmod(wrapper, 0o755)
    start(cloud, slow)
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
        cloud.kill()

        start(cloud)
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
        cloud.kill()
        shutil.rmtree(data_dir, ignore_errors=True)


def slow_bin(data_dir, name, real, when=None, seconds=5):
    """A `name` first on PATH that sleeps `seconds` before running `real`
    (only when its first argument is `when`, if given), so an operation is
    in flight long enough to be cut."""
    d = os.path.join(data_dir, "slow-bin")
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, name)
    wait = f'[ "$1" = {when} ] && sleep {seconds}' if when else f"sleep {seconds}"
    with open(path, "w") as f:
        f.write(f'#!/bin/sh\n{wait}\nexec {real} "$@"\n')
    os.chmod(path, 0o755)
    return d


def wait_volume(token, project, vid, wanted, timeout=60):
    deadline = time.time() + timeout
    status = None
    while time.time() < deadline:
        _, _, doc = request("GET", f"{VOLUME}/v3/{project}/volumes/{vid}", token)
        status = doc["volume"]["status"]
        if status in wanted:
            return doc["volume"]
        time.sleep(0.2)
    raise AssertionError(f"volume {vid} is {status}, not one of {wanted}")


def upload_image(token, path):
    """A public raw image of the file at `path`, through the image API."""
    _, _, image = request("POST", f"{GLANCE}/v2/images", token, {
        "name": "crash-source", "disk_format": "raw", "container_format": "bare",
        "visibility": "public"})
    with open(path, "rb") as f:
        req = urllib.request.Request(
            f"{GLANCE}/v2/images/{image['id']}/file", data=f.read(), method="PUT",
            headers={"X-Auth-Token": token, "Content-Type": "application/octet-stream"})
        urllib.request.urlopen(req, timeout=60).read()
    return image["id"]


def test_kill_during_a_create_from_an_image_ends_available_or_error_with_nothing_leaked():
    cloud = own_cloud()
    data_dir = cloud.data_dir
    slow = slow_bin(data_dir, "qemu-img", "/usr/bin/qemu-img", "convert")
    raw = os.path.join(data_dir, "source.raw")
    with open(raw, "wb") as f:
        f.write(b"ferrostack" * 100_000)
        f.truncate(4 << 20)
    start(cloud, slow)
    try:
        token, project = token_and_project()
        image = upload_image(token, raw)
        st, _, doc = request("POST", f"{VOLUME}/v3/{project}/volumes", token,
                             {"volume": {"size": 1, "name": "from-image", "imageRef": image}})
        assert st == 202, doc
        vid = doc["volume"]["id"]
        time.sleep(2)
        _, _, doc = request("GET", f"{VOLUME}/v3/{project}/volumes/{vid}", token)
        assert doc["volume"]["status"] in ("creating", "downloading"), doc
        cloud.kill()

        start(cloud)
        token, project = token_and_project()
        v = wait_volume(token, project, vid, ("available", "error"))
        volumes_dir = os.path.join(data_dir, "volumes")
        left = sorted(os.listdir(volumes_dir))
        if v["status"] == "available":
            assert left == [f"volume-{vid}"], left
            assert v["bootable"] == "true", v
        else:
            assert left == [], left
    finally:
        cloud.kill()
        shutil.rmtree(data_dir, ignore_errors=True)


def pid_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def boot_server(token, image):
    _, _, net = request("POST", f"{NETWORK}/networks", token, {"network": {"name": "crash-net"}})
    net_id = net["network"]["id"]
    request("POST", f"{NETWORK}/subnets", token, {"subnet": {
        "network_id": net_id, "cidr": "10.79.0.0/24", "ip_version": 4}})
    st, _, doc = request("POST", f"{COMPUTE}/servers", token, {"server": {
        "name": "crash-vm", "imageRef": image, "flavorRef": "1",
        "networks": [{"uuid": net_id}]}})
    assert st == 202, doc
    sid = doc["server"]["id"]
    deadline = time.time() + 60
    while time.time() < deadline:
        _, _, doc = request("GET", f"{COMPUTE}/servers/{sid}", token)
        if doc["server"]["status"] == "ACTIVE":
            return sid
        assert doc["server"]["status"] != "ERROR", doc
        time.sleep(0.3)
    raise AssertionError(f"server {sid} not ACTIVE: {doc['server']['status']}")


def test_kill_during_an_attach_ends_attached_and_exported_or_available_with_nothing_leaked():
    """The attach saga is cut while the volume's storage daemon starts; after
    the restart the volume is `in-use` with a live export and a mapping on
    the server, or `available` with neither — never `reserved`/`attaching`."""
    cloud = own_cloud()
    data_dir = cloud.data_dir
    slow = slow_bin(data_dir, "qemu-storage-daemon", "/usr/bin/qemu-storage-daemon")
    raw = os.path.join(data_dir, "source.raw")
    with open(raw, "wb") as f:
        f.truncate(1 << 20)
    start(cloud, slow)
    try:
        token, project = token_and_project()
        sid = boot_server(token, upload_image(token, raw))
        st, _, doc = request("POST", f"{VOLUME}/v3/{project}/volumes", token,
                             {"volume": {"size": 1, "name": "cut-attach"}})
        vid = doc["volume"]["id"]
        wait_volume(token, project, vid, ("available",))

        def attach():
            try:
                request("POST", f"{COMPUTE}/servers/{sid}/os-volume_attachments", token,
                        {"volumeAttachment": {"volumeId": vid}})
            except OSError:
                pass  # the server is killed under it
        t = threading.Thread(target=attach, daemon=True)
        t.start()
        wait_volume(token, project, vid, ("reserved", "attaching"), timeout=10)
        time.sleep(1)
        cloud.kill()
        t.join(10)

        start(cloud)
        token, project = token_and_project()
        v = wait_volume(token, project, vid, ("in-use", "available"), timeout=90)
        _, _, doc = request("GET", f"{COMPUTE}/servers/{sid}/os-volume_attachments", token)
        mapped = [a["volumeId"] for a in doc["volumeAttachments"]]
        export_dir = os.path.join(data_dir, "volume-exports", vid)
        if v["status"] == "in-use":
            assert mapped == [vid], doc
            assert [a["server_id"] for a in v["attachments"]] == [sid], v
            with open(os.path.join(export_dir, "pid")) as f:
                assert pid_alive(int(f.read().strip())), "the export's daemon is not running"
        else:
            assert mapped == [] and v["attachments"] == [], (doc, v)
            assert not os.path.exists(export_dir), os.listdir(export_dir)
    finally:
        cloud.kill()
        # The storage daemons are daemonized out of the process group.
        subprocess.run(["pkill", "-f", f"qemu-storage-daemon.*{data_dir}"], check=False)
        if os.environ.get("FERROSTACK_KEEP_DATA") == "1":
            print(f"kept {data_dir}")
        else:
            shutil.rmtree(data_dir, ignore_errors=True)
