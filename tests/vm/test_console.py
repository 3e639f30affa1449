"""The noVNC console: the URL the compute API hands out, noVNC's page from
the proxy, and the WebSocket that reaches the guest's VNC server only with
a valid, unexpired token and a same-host Origin."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import requests

from conftest import CONSOLE_TTL
from rfc6455 import console_attempt

ORIGIN = "http://127.0.0.1:6080"


def _console_url(c, server: str) -> tuple[str, str, float]:
    """(url, token, a time at or after which it was issued)."""
    out = c.os_ok("console", "url", "show", "--novnc", server)
    issued = time.time()
    url = out["url"]
    u = urlsplit(url)
    assert u.port == 6080, url
    assert "path=%3Ftoken%3D" in u.query, url
    path = parse_qs(u.query)["path"][0]          # "?token=…"
    token = parse_qs(urlsplit(path).query)["token"][0]
    assert len(token) >= 16, url
    return url, token, issued


def _ws(token: str) -> str:
    return f"ws://127.0.0.1:6080/?token={token}"


def test_novnc_console_reaches_the_guest_only_with_a_valid_token_and_origin(cloud, vm1):
    c = cloud
    url, first, first_issued = _console_url(c, "vm1")

    # noVNC's page, from the proxy.
    page = requests.get(url, timeout=10)
    assert page.status_code == 200, f"GET {url}: {page.status_code}"
    assert "text/html" in page.headers.get("Content-Type", ""), page.headers
    assert "noVNC" in page.text, page.text[:300]

    # The WebSocket bridges to the guest's VNC server: its RFB greeting.
    data, how = console_attempt(_ws(first), ORIGIN)
    assert data.startswith(b"RFB 003.00"), (
        f"no RFB greeting through the proxy ({how}): {data!r}\n{c.diag(vm1.id)}")

    # A made-up token opens nothing.
    data, how = console_attempt(_ws("0" * 64), ORIGIN)
    assert data == b"", f"a made-up token got bytes ({how}): {data!r}"

    # A page from another site may not use even a fresh, valid token...
    _, fresh, _ = _console_url(c, "vm1")
    data, how = console_attempt(_ws(fresh), "http://evil.example.com")
    assert data == b"", f"a foreign Origin got the console ({how}): {data!r}"
    # ... which still works from the proxy's own page.
    data, how = console_attempt(_ws(fresh), ORIGIN)
    assert data.startswith(b"RFB 003.00"), f"fresh token refused ({how}): {data!r}"

    # The first token, once its TTL has passed, is refused.
    wait = first_issued + CONSOLE_TTL + 1.5 - time.time()
    if wait > 0:
        time.sleep(wait)
    data, how = console_attempt(_ws(first), ORIGIN)
    assert data == b"", (
        f"a token {time.time() - first_issued:.1f}s old (TTL {CONSOLE_TTL}s) still opens "
        f"the console ({how}): {data!r}")
