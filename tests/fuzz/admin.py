"""Print a token for the fuzzing admin, creating it on first use.

Fuzzing with the bootstrap admin would let the fuzzer take its own access
away (it renames and disables the guessable `default` domain), so the run
uses an admin of its own: a user and project in a domain of their own,
whose ids the fuzzer cannot guess, with the `admin` role on the project.
"""
import sys

import requests

BASE = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:5000/v3"
NAME, PASSWORD = "fuzz-admin", "fuzz-admin-pass"


def token(user, project):
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": user}},
                     "scope": {"project": project}}}
    r = requests.post(f"{BASE}/auth/tokens", json=body, timeout=30)
    return r.headers.get("X-Subject-Token") if r.status_code == 201 else None


def call(tok, method, path, **kw):
    r = requests.request(method, f"{BASE}{path}", headers={"X-Auth-Token": tok}, timeout=30, **kw)
    if r.status_code >= 300:
        sys.exit(f"{method} {path}: {r.status_code} {r.text[:300]}")
    return r.json() if r.content else None


def create():
    boot = token({"name": "admin", "domain": {"id": "default"}, "password": "admin_pass"},
                 {"name": "admin", "domain": {"id": "default"}})
    if not boot:
        sys.exit("the bootstrap admin has no token")
    dom = call(boot, "POST", "/domains", json={"domain": {"name": NAME}})["domain"]["id"]
    proj = call(boot, "POST", "/projects", json={"project": {"name": NAME, "domain_id": dom}})
    user = call(boot, "POST", "/users",
                json={"user": {"name": NAME, "domain_id": dom, "password": PASSWORD}})
    role = call(boot, "GET", "/roles", params={"name": "admin"})["roles"][0]["id"]
    call(boot, "PUT", f"/projects/{proj['project']['id']}/users/{user['user']['id']}/roles/{role}")


def fuzz_token():
    return token({"name": NAME, "domain": {"name": NAME}, "password": PASSWORD},
                 {"name": NAME, "domain": {"name": NAME}})


tok = fuzz_token()
if not tok:
    create()
    tok = fuzz_token()
if not tok:
    sys.exit("no token for the fuzzing admin")
print(tok)
