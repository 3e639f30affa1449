"""Shared fixtures for the client-compatibility tests.

The session fixture ``ferrostack`` either starts the all-in-one server on a
fresh temporary data directory, or — when ``FERROSTACK_URL`` is set — talks to
an already running instance.

Environment knobs:

  FERROSTACK_BIN            server binary (default: <repo>/target/debug/ferrostack)
  FERROSTACK_URL            use a running server, e.g. http://127.0.0.1:5000
  FERROSTACK_DATA_DIR       with FERROSTACK_URL: its data dir (for clouds.yaml/openrc)
  FERROSTACK_ADMIN_URL      with FERROSTACK_URL: admin endpoint (default port 35357)
  FERROSTACK_START_TIMEOUT  seconds to wait for readiness (default 90)
  FERROSTACK_KEEP_DATA      keep the temp data dir after the run when set to 1
  FERROSTACK_OPENSTACK      path to the `openstack` CLI (default: next to the
                            running python, then ${FERROSTACK_VENV:-<repo>/.venv})
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse

import pytest
import requests

REPO = Path(__file__).resolve().parents[2]

ADMIN_PASSWORD = "admin_pass"
DEMO_PASSWORD = "admin_pass"
SERVICE_PASSWORD = "service_pass"

BOOTSTRAP_PROJECTS = {"admin", "service", "demo", "invisible_to_admin"}
# The catalog lists only what this deployment serves (the seed's ec2
# entry comes with the issue that builds it);
# block storage is listed under its three types, metering as Ceilometer
# (`metering`), Gnocchi (`metric`) and Aodh (`alarming`).
BOOTSTRAP_SERVICE_TYPES = {
    "identity", "compute", "image", "network", "block-storage", "volumev3", "volume",
    "metering", "metric", "alarming", "object-store",
}
SERVICE_USERS = ["nova", "glance", "swift", "neutron", "cinder", "ceilometer"]
BOOTSTRAP_ROLES = {
    "admin", "member", "reader", "Member",
    "KeystoneAdmin", "KeystoneServiceAdmin", "ResellerAdmin",
}

HTTP_TIMEOUT = 30
CLI_TIMEOUT = 180


def unique(prefix: str = "fs-test") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def field(row: dict, name: str):
    """Case/space-insensitive column lookup for `-f json` output
    ("Project ID" == "project_id" == "project id")."""
    want = name.lower().replace("_", " ")
    for key, value in row.items():
        if key.lower().replace("_", " ") == want:
            return value
    raise KeyError(f"{name!r} not in {sorted(row)}")


def _find_openstack_cli() -> str:
    candidates = []
    if os.environ.get("FERROSTACK_OPENSTACK"):
        candidates.append(os.environ["FERROSTACK_OPENSTACK"])
    candidates.append(str(Path(sys.executable).parent / "openstack"))
    venv = os.environ.get("FERROSTACK_VENV", str(REPO / ".venv"))
    candidates.append(str(Path(venv) / "bin" / "openstack"))
    which = shutil.which("openstack")
    if which:
        candidates.append(which)
    for c in candidates:
        if c and os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    raise RuntimeError(
        "openstack CLI not found (tried: %s); run tools/setup-venv.sh or set "
        "FERROSTACK_OPENSTACK" % ", ".join(candidates))


def _port_open(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


class CliResult:
    def __init__(self, argv, proc: subprocess.CompletedProcess):
        self.argv = argv
        self.rc = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr

    @property
    def output(self) -> str:
        return f"{self.stdout}\n{self.stderr}"

    def json(self):
        try:
            return json.loads(self.stdout)
        except ValueError as e:
            raise AssertionError(
                f"`{' '.join(self.argv)}` did not print JSON: {e}\n"
                f"stdout: {self.stdout!r}\nstderr: {self.stderr!r}") from None

    def describe(self) -> str:
        return (f"`{' '.join(self.argv)}` exited {self.rc}\n"
                f"--- stdout ---\n{self.stdout}\n--- stderr ---\n{self.stderr}")


class Ferrostack:
    """Handle on the server under test plus client helpers."""

    def __init__(self):
        self.url = os.environ.get("FERROSTACK_URL", "").rstrip("/")
        self.owned = not self.url
        self.proc: subprocess.Popen | None = None
        self.log_path: Path | None = None
        self._log_fh = None
        self._tmp: str | None = None
        self.starts = 0
        if self.owned:
            self.url = "http://127.0.0.1:5000"
            self.admin_url = "http://127.0.0.1:35357"
            self.bin = os.environ.get(
                "FERROSTACK_BIN", str(REPO / "target" / "debug" / "ferrostack"))
            self._tmp = tempfile.mkdtemp(prefix="ferrostack-clients-")
            self.data_dir = Path(self._tmp) / "data"
            self.data_dir.mkdir()
            self.log_path = Path(self._tmp) / "server.log"
        else:
            self.admin_url = os.environ.get("FERROSTACK_ADMIN_URL", "").rstrip("/")
            if not self.admin_url:
                u = urlparse(self.url)
                self.admin_url = f"{u.scheme}://{u.hostname}:35357"
            dd = os.environ.get("FERROSTACK_DATA_DIR")
            self.data_dir = Path(dd) if dd else None
        self.cli = _find_openstack_cli()
        self.v3 = self.url + "/v3"
        self.v2 = self.url + "/v2.0"
        self.admin_v2 = self.admin_url + "/v2.0"
        self.clouds_yaml: Path | None = None

    # ---------------------------------------------------------------- process
    def start(self):
        assert self.owned
        if not (os.path.isfile(self.bin) and os.access(self.bin, os.X_OK)):
            pytest.exit(f"server binary {self.bin} not found; build it or set "
                        f"FERROSTACK_BIN", returncode=4)
        for port in (5000, 35357):
            if _port_open("127.0.0.1", port):
                pytest.exit(f"127.0.0.1:{port} is already in use; stop that "
                            f"server or set FERROSTACK_URL to test it",
                            returncode=4)
        env = dict(os.environ)
        env.setdefault("FERROSTACK__IDENTITY__BCRYPT_COST", "4")
        # The stock-client tests exercise the APIs, and boot dozens of
        # servers (quotas, listings): the fake hypervisor keeps that cheap.
        # tests/vm boots real QEMU guests.
        env.setdefault("FERROSTACK__COMPUTE__DRIVER", "fake")
        # Guest usage every 2 s (300 by default), for the metering tests.
        env.setdefault("FERROSTACK__TELEMETRY__POLLING_INTERVAL", "2")
        env.setdefault("RUST_BACKTRACE", "1")
        self._log_fh = open(self.log_path, "ab")
        self._log_fh.write(f"\n===== start #{self.starts + 1} =====\n".encode())
        self._log_fh.flush()
        self.proc = subprocess.Popen(
            [self.bin, "all-in-one", "--data-dir", str(self.data_dir)],
            stdout=self._log_fh, stderr=subprocess.STDOUT, env=env,
            cwd=str(REPO), start_new_session=True)
        self.starts += 1
        self.wait_ready()

    def wait_ready(self):
        timeout = float(os.environ.get("FERROSTACK_START_TIMEOUT", "90"))
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                pytest.exit(f"server exited with {self.proc.returncode} during "
                            f"startup\n{self.log_tail()}", returncode=4)
            try:
                r = requests.get(self.v3, timeout=2)
                last = f"GET /v3 -> {r.status_code}"
                if r.status_code == 200 and self._config_files_ready():
                    return
            except requests.RequestException as e:
                last = repr(e)
            time.sleep(0.25)
        pytest.exit(f"server not ready after {timeout}s (last: {last})\n"
                    f"{self.log_tail()}", returncode=4)

    def _config_files_ready(self) -> bool:
        if self.data_dir is None:
            return True
        return (self.data_dir / "clouds.yaml").is_file()

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM the server; returns its exit code (None if it had to be
        SIGKILLed)."""
        if self.proc is None:
            return None
        rc = None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                rc = self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
                rc = None
        else:
            rc = self.proc.returncode
        self.proc = None
        if self._log_fh:
            self._log_fh.close()
            self._log_fh = None
        return rc

    def log_tail(self, n: int = 60) -> str:
        if not self.log_path or not self.log_path.exists():
            return "(no server log)"
        lines = self.log_path.read_text(errors="replace").splitlines()
        return "--- server log (tail) ---\n" + "\n".join(lines[-n:])

    def cleanup(self):
        self.stop()
        if self.owned and self.data_dir is not None:
            # What the network agents built outside this process (dnsmasq,
            # namespaces) goes with the test cloud.
            subprocess.run([self.bin, "netns-cleanup", "--data-dir", str(self.data_dir)],
                           capture_output=True, timeout=120)
        if self._tmp and os.environ.get("FERROSTACK_KEEP_DATA") != "1":
            shutil.rmtree(self._tmp, ignore_errors=True)
        elif self._tmp:
            print(f"\nferrostack test data kept in {self._tmp}")

    # ----------------------------------------------------------- clouds.yaml
    def prepare_clouds_yaml(self):
        if self.data_dir is not None:
            self.clouds_yaml = self.data_dir / "clouds.yaml"
            return
        # Running against an external server without its data dir: write an
        # equivalent clouds.yaml from the documented bootstrap credentials.
        d = Path(tempfile.mkdtemp(prefix="ferrostack-clouds-"))
        self.clouds_yaml = d / "clouds.yaml"
        self.clouds_yaml.write_text(
            "clouds:\n"
            + "".join(
                f"  {name}:\n"
                f"    auth:\n"
                f"      auth_url: {self.v3}\n"
                f"      username: {user}\n"
                f"      password: {ADMIN_PASSWORD}\n"
                f"      project_name: {project}\n"
                f"      user_domain_name: Default\n"
                f"      project_domain_name: Default\n"
                f"    region_name: RegionOne\n"
                f"    identity_api_version: 3\n"
                f"    interface: public\n"
                for name, user, project in (
                    ("ferrostack", "admin", "admin"),
                    ("ferrostack-demo", "demo", "demo"))))

    # -------------------------------------------------------------- CLI
    def cli_env(self) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
        env["OS_CLIENT_CONFIG_FILE"] = str(self.clouds_yaml)
        env["PATH"] = str(Path(self.cli).parent) + os.pathsep + env.get("PATH", "")
        env.setdefault("PYTHONWARNINGS", "ignore")
        return env

    def openstack(self, *args, cloud: str | None = "ferrostack",
                  fmt_json: bool = True, extra_env: dict | None = None
                  ) -> CliResult:
        argv = [self.cli]
        if cloud:
            argv += ["--os-cloud", cloud]
        argv += list(args)
        if fmt_json:
            argv += ["-f", "json"]
        env = self.cli_env()
        if extra_env:
            env.update(extra_env)
        # stdin=DEVNULL: without a real stdin the CLI crashes in cliff
        # ('NoneType' object has no attribute 'isatty')
        proc = subprocess.run(argv, capture_output=True, text=True, env=env,
                              stdin=subprocess.DEVNULL, timeout=CLI_TIMEOUT)
        shown = [os.path.basename(argv[0])] + argv[1:]
        return CliResult(shown, proc)

    def os_ok(self, *args, **kw):
        """Run the CLI, assert success, return parsed JSON (or the result
        when fmt_json=False)."""
        res = self.openstack(*args, **kw)
        assert res.rc == 0, res.describe() + "\n" + self.log_tail(30)
        return res.json() if kw.get("fmt_json", True) else res

    def os_fail(self, *args, **kw) -> CliResult:
        res = self.openstack(*args, **kw)
        assert res.rc != 0, "expected failure but " + res.describe()
        return res

    # -------------------------------------------------------------- HTTP
    def http(self, method: str, url: str, token: str | None = None,
             subject: str | None = None, **kw) -> requests.Response:
        if not url.startswith("http"):
            url = self.url + url
        headers = dict(kw.pop("headers", {}) or {})
        if token:
            headers["X-Auth-Token"] = token
        if subject:
            headers["X-Subject-Token"] = subject
        kw.setdefault("timeout", HTTP_TIMEOUT)
        return requests.request(method, url, headers=headers, **kw)

    def password_auth_body(self, user="admin", password=ADMIN_PASSWORD,
                           project="admin", domain="Default") -> dict:
        auth = {
            "identity": {
                "methods": ["password"],
                "password": {"user": {
                    "name": user, "password": password,
                    "domain": {"name": domain}}},
            },
        }
        if project:
            auth["scope"] = {"project": {"name": project,
                                         "domain": {"name": domain}}}
        return {"auth": auth}

    def issue_token(self, user="admin", password=ADMIN_PASSWORD,
                    project="admin") -> tuple[str, dict]:
        r = self.http("POST", "/v3/auth/tokens",
                      json=self.password_auth_body(user, password, project))
        assert r.status_code == 201, (
            f"POST /v3/auth/tokens as {user}/{project}: {r.status_code} "
            f"{r.text[:500]}")
        tok = r.headers.get("X-Subject-Token")
        assert tok, f"no X-Subject-Token header in {dict(r.headers)}"
        return tok, r.json()["token"]

    def admin_token(self) -> str:
        return self.issue_token()[0]


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "restart: restarts the owned server (skipped with FERROSTACK_URL)")


@pytest.fixture(scope="session")
def ferrostack():
    fs = Ferrostack()
    try:
        if fs.owned:
            fs.start()
        else:
            fs.wait_ready()
        fs.prepare_clouds_yaml()
        yield fs
    finally:
        fs.cleanup()


@pytest.fixture
def admin_token(ferrostack) -> str:
    return ferrostack.admin_token()


@pytest.fixture
def demo_token(ferrostack) -> str:
    return ferrostack.issue_token("demo", DEMO_PASSWORD, "demo")[0]


# --------------------------------------------------------------------------
# Image service (Glance v2) helpers and the legacy per-service CLIs
# (glance, nova, cinder read OS_* variables, not clouds.yaml)
# --------------------------------------------------------------------------

IMAGE_PORT = 9292
CLOUD_USERS = {
    # cloud name in clouds.yaml -> (user, password, project)
    "ferrostack": ("admin", ADMIN_PASSWORD, "admin"),
    "ferrostack-demo": ("demo", DEMO_PASSWORD, "demo"),
}


def legacy_cli_env(fs: Ferrostack, cloud: str = "ferrostack",
                   home: str | None = None) -> dict:
    """OS_* environment for the legacy CLIs (`glance`, `nova`, `cinder`),
    which do not read clouds.yaml."""
    user, password, project = CLOUD_USERS[cloud]
    env = fs.cli_env()
    env.pop("OS_CLIENT_CONFIG_FILE", None)
    env.update({
        "OS_AUTH_URL": fs.v3,
        "OS_USERNAME": user,
        "OS_PASSWORD": password,
        "OS_PROJECT_NAME": project,
        "OS_USER_DOMAIN_NAME": "Default",
        "OS_PROJECT_DOMAIN_NAME": "Default",
        "OS_IDENTITY_API_VERSION": "3",
        "OS_REGION_NAME": "RegionOne",
        "OS_INTERFACE": "public",
    })
    if home:
        env["HOME"] = home
    return env


def run_legacy_cli(fs: Ferrostack, name: str, *args, cloud: str = "ferrostack",
                   home: str | None = None, stdin_path: str | None = None,
                   timeout: int = CLI_TIMEOUT) -> CliResult:
    """Run a legacy client CLI (e.g. `glance`) from the same venv as
    `openstack`, authenticated with OS_* variables."""
    exe = str(Path(fs.cli).parent / name)
    argv = [exe] + [str(a) for a in args]
    env = legacy_cli_env(fs, cloud, home)
    stdin = open(stdin_path, "rb") if stdin_path else subprocess.DEVNULL
    try:
        proc = subprocess.run(argv, stdin=stdin, capture_output=True,
                              env=env, timeout=timeout)
    finally:
        if stdin_path:
            stdin.close()
    out = subprocess.CompletedProcess(
        argv, proc.returncode,
        proc.stdout.decode(errors="replace"),
        proc.stderr.decode(errors="replace"))
    return CliResult([name] + argv[1:], out)


class ImageApi:
    """Raw HTTP access to the image API (Glance v2 dialect)."""

    def __init__(self, fs: Ferrostack):
        self.fs = fs
        url = os.environ.get("FERROSTACK_IMAGE_URL", "").rstrip("/")
        if not url:
            u = urlparse(fs.url)
            url = f"{u.scheme}://{u.hostname}:{IMAGE_PORT}"
        self.url = url
        self.v2 = url + "/v2"

    def wait_ready(self, timeout: float = 60.0):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                r = requests.get(self.url + "/versions", timeout=2)
                return r
            except requests.RequestException as e:
                last = repr(e)
            time.sleep(0.25)
        pytest.fail(f"image API not answering at {self.url} after {timeout}s "
                    f"(last: {last})\n{self.fs.log_tail()}")

    def req(self, method: str, path: str, token: str | None = None,
            **kw) -> requests.Response:
        url = path if path.startswith("http") else self.v2 + path
        headers = dict(kw.pop("headers", {}) or {})
        if token:
            headers["X-Auth-Token"] = token
        kw.setdefault("timeout", HTTP_TIMEOUT)
        return requests.request(method, url, headers=headers, **kw)

    def create(self, token: str, **body) -> dict:
        r = self.req("POST", "/images", token, json=body)
        assert r.status_code == 201, (
            f"POST /v2/images {body}: {r.status_code} {r.text[:500]}")
        return r.json()

    def show(self, token: str, image_id: str) -> dict:
        r = self.req("GET", f"/images/{image_id}", token)
        assert r.status_code == 200, (
            f"GET /v2/images/{image_id}: {r.status_code} {r.text[:500]}")
        return r.json()

    def upload(self, token: str, image_id: str, data,
               content_type: str = "application/octet-stream",
               headers: dict | None = None) -> requests.Response:
        h = {"Content-Type": content_type}
        h.update(headers or {})
        return self.req("PUT", f"/images/{image_id}/file", token, data=data,
                        headers=h, timeout=max(HTTP_TIMEOUT, 300))

    def download(self, token: str, image_id: str) -> requests.Response:
        return self.req("GET", f"/images/{image_id}/file", token,
                        timeout=max(HTTP_TIMEOUT, 300))

    def patch(self, token: str, image_id: str, ops: list,
              content_type: str = "application/openstack-images-v2.1-json-patch"
              ) -> requests.Response:
        return self.req("PATCH", f"/images/{image_id}", token,
                        data=json.dumps(ops),
                        headers={"Content-Type": content_type})

    def delete(self, token: str, image_id: str, force: bool = False
               ) -> requests.Response:
        """DELETE the image; with force, unprotect it first."""
        if force:
            self.patch(token, image_id,
                       [{"op": "replace", "path": "/protected", "value": False}])
        return self.req("DELETE", f"/images/{image_id}", token)

    def list_ids(self, token: str, **params) -> list[str]:
        """All image ids of a (filtered) list, following `next` links."""
        ids: list[str] = []
        url = self.v2 + "/images"
        first = True
        for _ in range(1000):
            r = self.req("GET", url, token, params=params if first else None)
            assert r.status_code == 200, f"GET {url}: {r.status_code} {r.text[:300]}"
            body = r.json()
            ids += [i["id"] for i in body["images"]]
            nxt = body.get("next")
            if not nxt:
                return ids
            url = self.url + nxt if nxt.startswith("/") else nxt
            first = False
        raise AssertionError("image list pagination did not end")

    def wait_status(self, token: str, image_id: str, status: str,
                    timeout: float = 60.0) -> dict:
        deadline = time.monotonic() + timeout
        img = None
        while time.monotonic() < deadline:
            img = self.show(token, image_id)
            if img["status"] == status:
                return img
            time.sleep(0.25)
        raise AssertionError(
            f"image {image_id} did not reach {status} in {timeout}s: {img}")


@pytest.fixture(scope="session")
def image_api(ferrostack) -> ImageApi:
    api = ImageApi(ferrostack)
    api.wait_ready()
    return api
