"""A cloud of a test's own, beside the session's all-in-one: its own data
directory and its own ports, started, killed and started again on the same
data (the crash tests).

Every port is `base + n`, with `base` below the kernel's ephemeral range
(32768 and up by default): an outgoing connection of any process could
otherwise hold a port the restarted cloud must listen on again.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = os.environ.get("FERROSTACK_BIN", str(REPO / "target" / "debug" / "ferrostack"))
START_TIMEOUT = float(os.environ.get("FERROSTACK_START_TIMEOUT", "120"))
EPHEMERAL_START = 32768

# The config keys of every listener, in the order their ports are numbered.
LISTENERS = [
    "IDENTITY__PUBLIC_PORT", "IDENTITY__ADMIN_PORT", "IMAGE__PORT", "NETWORK__PORT",
    "COMPUTE__PORT", "METADATA__PORT", "CONSOLE__PORT", "VOLUME__PORT",
    "TELEMETRY__METERING_PORT", "TELEMETRY__METRIC_PORT", "TELEMETRY__ALARM_PORT",
    "DASHBOARD__PORT", "OBJECT__PORT",
]
# Where `ready_path` is asked, per service.
SERVICE_KEY = {
    "identity": "IDENTITY__PUBLIC_PORT", "image": "IMAGE__PORT", "network": "NETWORK__PORT",
    "compute": "COMPUTE__PORT", "volume": "VOLUME__PORT", "metering": "TELEMETRY__METERING_PORT",
    "metric": "TELEMETRY__METRIC_PORT", "object": "OBJECT__PORT",
}


def service_url(base: int, service: str) -> str:
    """The URL of `service` in the cloud on `base`."""
    return f"http://127.0.0.1:{base + LISTENERS.index(SERVICE_KEY[service])}"


class OwnCloud:
    """An all-in-one on `base`..`base+len(LISTENERS)` with the fake compute
    driver and no network agents (what the crash tests need)."""

    def __init__(self, base: int, prefix: str = "ferrostack-own-cloud-"):
        assert base + len(LISTENERS) < EPHEMERAL_START, "ports must stay below the ephemeral range"
        self.ports = {key: base + n for n, key in enumerate(LISTENERS)}
        self.data_dir = tempfile.mkdtemp(prefix=prefix)
        self.proc: subprocess.Popen | None = None

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[SERVICE_KEY[service]]}"

    @property
    def base(self) -> int:
        return self.ports[LISTENERS[0]]

    def start(self, ready: str = "identity", ready_path: str = "/", path_prepend: str | None = None):
        """Start on this data directory and wait until `ready` answers."""
        env = dict(os.environ)
        env["FERROSTACK__IDENTITY__BCRYPT_COST"] = "4"
        env["FERROSTACK__NETWORK_AGENT__ENABLED"] = "false"
        env["FERROSTACK__COMPUTE__DRIVER"] = "fake"
        for key, port in self.ports.items():
            env["FERROSTACK__" + key] = str(port)
        if path_prepend:
            env["PATH"] = path_prepend + os.pathsep + env["PATH"]
        log = open(os.path.join(self.data_dir, "log"), "a")
        self.proc = subprocess.Popen(
            [BIN, "all-in-one", "--data-dir", self.data_dir], stdin=subprocess.DEVNULL,
            stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(self.url(ready) + ready_path, timeout=2)
                return self.proc
            except urllib.error.HTTPError:
                return self.proc  # it answers
            except OSError:
                if self.proc.poll() is not None:
                    pytest.fail("all-in-one exited:\n" + self.log_tail())
                time.sleep(0.1)
        self.kill()
        pytest.fail(f"all-in-one did not answer in {START_TIMEOUT:.0f} s:\n" + self.log_tail())

    def kill(self):
        """SIGKILL the all-in-one and everything it started."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(10)

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return open(os.path.join(self.data_dir, "log")).read()[-chars:]
        except OSError:
            return "(no log)"

    def remove(self):
        self.kill()
        shutil.rmtree(self.data_dir, ignore_errors=True)
