"""The all-in-one tried as a hostile client would try it, on every service's
create endpoints: bodies that are not what they claim, nested too deep,
too large, too slow, followed by garbage; paths that are not UTF-8; URIs and
headers too long; many connections at once. Every answer must be a 4xx in
the service's error format (Glance: text) and the service must keep
answering — never a 5xx, never a hang. These complement the unit tests of
the HTTP layer (crates/core/tests/http_hardening.rs) by going through each
real service.
"""

from __future__ import annotations

import json
import socket
import time

import pytest

IDENTITY, IMAGE, NETWORK, COMPUTE = 5000, 9292, 9696, 8774

# (port, path of a JSON create endpoint, a valid body, the error key or None
# for Glance's text bodies)
CREATES = [
    (IDENTITY, "/v3/projects", {"project": {"name": "hostile-p"}}, "error"),
    (IMAGE, "/v2/images", {"name": "hostile-i"}, None),
    (NETWORK, "/v2.0/networks", {"network": {"name": "hostile-n"}}, "NeutronError"),
    (COMPUTE, "/v2.1/os-keypairs", {"keypair": {"name": "hostile-k"}}, None),
]


def url(port: int, path: str) -> str:
    return f"http://127.0.0.1:{port}{path}"


def assert_error_body(r, status_range=(400, 499)):
    assert status_range[0] <= r.status_code <= status_range[1], (
        f"{r.request.method} {r.url}: {r.status_code} {r.text[:300]}")
    port = int(r.url.split(":")[2].split("/")[0])
    if port == IMAGE:
        assert r.headers["content-type"].startswith("text/plain"), r.headers
        assert str(r.status_code) in r.text
    else:
        assert r.headers["content-type"].startswith("application/json"), (
            r.headers, r.text[:200])
        body = r.json()
        assert isinstance(body, dict) and len(body) == 1, body
        (inner,) = body.values()
        assert inner.get("message"), body


def raw(port: int, data: bytes, wait: float = 10.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as s:
        s.sendall(data)
        out = b""
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            out += chunk
        return out


@pytest.mark.parametrize("port,path,body,key", CREATES)
def test_trailing_garbage_after_a_valid_body(ferrostack, admin_token, port, path, body, key):
    r = ferrostack.http("POST", url(port, path), admin_token,
                        data=json.dumps(body) + " xyz",
                        headers={"Content-Type": "application/json"})
    assert_error_body(r)


@pytest.mark.parametrize("port,path,body,key", CREATES)
def test_deeply_nested_json(ferrostack, admin_token, port, path, body, key):
    deep = "[" * 20_000 + "]" * 20_000
    r = ferrostack.http("POST", url(port, path), admin_token, data=deep,
                        headers={"Content-Type": "application/json"})
    assert_error_body(r)


@pytest.mark.parametrize("port,path,body,key", CREATES)
def test_wrong_types_and_non_objects(ferrostack, admin_token, port, path, body, key):
    for bad in ["null", "[]", "\"text\"", "12", "{\"a\":", "\xff\xfe"]:
        r = ferrostack.http("POST", url(port, path), admin_token, data=bad.encode("latin-1"),
                            headers={"Content-Type": "application/json"})
        assert_error_body(r)


@pytest.mark.parametrize("port", [IDENTITY, IMAGE, NETWORK, COMPUTE])
def test_a_body_announced_but_never_sent_is_refused_at_once(ferrostack, admin_token, port):
    path = {IDENTITY: "/v3/projects", IMAGE: "/v2/images", NETWORK: "/v2.0/networks",
            COMPUTE: "/v2.1/os-keypairs"}[port]
    started = time.monotonic()
    answer = raw(port, (f"POST {path} HTTP/1.1\r\nHost: x\r\nX-Auth-Token: {admin_token}\r\n"
                        "Content-Type: application/json\r\nContent-Length: 10000000000\r\n\r\n{")
                 .encode())
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    head, _, body = answer.partition(b"\r\n\r\n")
    # The rest of the body is never read: the connection cannot be reused,
    # and the server says so.
    assert b"connection: close" in head.lower(), head
    assert body.strip(), "413 without an error body"
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("port,path", [
    (IDENTITY, "/v3/projects/%FF"), (IMAGE, "/v2/images/%FF"),
    (NETWORK, "/v2.0/networks/%FF"), (COMPUTE, "/v2.1/servers/%FF"),
])
def test_a_path_that_is_not_utf8(ferrostack, admin_token, port, path):
    r = ferrostack.http("GET", url(port, path), admin_token)
    assert_error_body(r)


@pytest.mark.parametrize("port", [IDENTITY, IMAGE, NETWORK, COMPUTE])
def test_long_uris_and_headers(ferrostack, admin_token, port):
    r = ferrostack.http("GET", url(port, "/" + "a" * 20_000), admin_token)
    assert r.status_code == 414, r.status_code
    assert_error_body(r, (414, 414))
    r = ferrostack.http("GET", url(port, "/"), admin_token, headers={"X-Big": "b" * 40_000})
    assert r.status_code == 431, r.status_code
    assert_error_body(r, (431, 431))


def test_many_connections_at_once_leave_the_apis_answering(ferrostack, admin_token):
    held = []
    try:
        for i in range(2000):
            s = socket.create_connection(("127.0.0.1", IDENTITY if i % 2 else NETWORK),
                                         timeout=5)
            if i % 4 == 0:
                s.sendall(b"GET /v3 HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            held.append(s)
        for port, path in [(IDENTITY, "/v3/projects"), (NETWORK, "/v2.0/networks"),
                           (COMPUTE, "/v2.1/servers"), (IMAGE, "/v2/images")]:
            started = time.monotonic()
            r = ferrostack.http("GET", url(port, path), admin_token, timeout=10)
            assert r.status_code == 200, (port, r.status_code)
            assert time.monotonic() - started < 5
    finally:
        for s in held:
            s.close()


def test_no_request_above_left_a_server_error_in_the_log(ferrostack):
    """Runs last in this file: the all-in-one logged no 5xx for the probes."""
    if not getattr(ferrostack, "owned", False):
        pytest.skip("needs the server's log")
    log = ferrostack.log_tail(100_000)
    fives = [line for line in log.splitlines() if " status: 500" in line]
    assert not fives, fives[:5]
