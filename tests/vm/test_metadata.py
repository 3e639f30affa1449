"""The metadata service (8775) tells each instance about itself only: a
request must carry the instance id signed with the shared secret, and
nothing a request signed for A returns mentions B."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
import requests

from conftest import METADATA, SECRET


def sign(instance_id: str, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), instance_id.encode(), hashlib.sha256).hexdigest()


def md(path: str, instance: str | None = None, signature: str | None = None,
       tenant: str | None = None, **headers) -> requests.Response:
    h = {k.replace("_", "-"): v for k, v in headers.items()}
    if instance is not None:
        h["X-Instance-ID"] = instance
    if signature is not None:
        h["X-Instance-ID-Signature"] = signature
    if tenant is not None:
        h["X-Tenant-ID"] = tenant
    return requests.get(METADATA + path, headers=h, timeout=10)


@pytest.fixture(scope="module")
def pair(cloud, vm1):
    """A = vm1, B = a second server in the same project."""
    b = cloud.boot("vm-b")
    yield vm1, b
    cloud.delete(b.id)


def crawl(instance: str, signature: str, tenant: str, limit: int = 200) -> dict[str, str]:
    """Every document and listing of both formats that a request signed
    for `instance` reaches, by following the listings."""
    seen: dict[str, str] = {}
    queue = ["/", "/openstack/", "/openstack/latest/", "/latest/", "/latest/meta-data/",
             "/2009-04-04/meta-data/", "/openstack/latest/meta_data.json",
             "/openstack/latest/network_data.json", "/openstack/latest/vendor_data.json",
             "/openstack/latest/vendor_data2.json", "/openstack/latest/user_data",
             "/openstack/latest/password", "/latest/user-data", "/latest/dynamic/"]
    while queue and len(seen) < limit:
        path = queue.pop(0)
        if path in seen:
            continue
        r = md(path, instance, signature, tenant)
        seen[path] = f"{r.status_code} {r.text}"
        if r.status_code != 200 or not path.endswith("/"):
            continue
        if "json" in r.headers.get("Content-Type", ""):
            continue
        for entry in r.text.splitlines():
            entry = entry.strip()
            if not entry:
                continue
            if "=" in entry:           # EC2 "0=keyname" lists key 0/
                entry = entry.split("=", 1)[0] + "/"
            child = path + entry
            if child not in seen:
                queue.append(child)
    return seen


def test_metadata_answers_only_for_the_signed_instance(cloud, pair):
    a, b = pair
    project = cloud.server(a.id)["tenant_id"]
    assert cloud.server(b.id)["tenant_id"] == project

    # Signed for A: A's document.
    r = md("/openstack/latest/meta_data.json", a.id, sign(a.id), project)
    assert r.status_code == 200, f"{r.status_code} {r.text[:300]}\n{cloud.log_tail(20)}"
    doc = r.json()
    assert doc["uuid"] == a.id, doc
    assert b.id not in r.text
    # Signed for B: B's (so B's data exists, and A's answers leave it out).
    r = md("/openstack/latest/meta_data.json", b.id, sign(b.id), project)
    assert r.status_code == 200 and r.json()["uuid"] == b.id, f"{r.status_code} {r.text[:300]}"

    # A's id with another signature, a signature under another secret, or none.
    refused = {
        "B's signature": md("/openstack/latest/meta_data.json", a.id, sign(b.id), project),
        "a signature under another secret":
            md("/openstack/latest/meta_data.json", a.id, sign(a.id, "not-the-secret"), project),
        "no signature": md("/openstack/latest/meta_data.json", a.id, None, project),
        "no signature, no tenant": md("/openstack/latest/meta_data.json", a.id),
        "B's signature on the EC2 tree": md("/latest/meta-data/instance-id", a.id, sign(b.id)),
    }
    for what, r in refused.items():
        assert r.status_code == 403, f"A's id with {what}: {r.status_code} {r.text[:300]}"
        assert a.id not in r.text and b.id not in r.text, f"{what}: {r.text[:300]}"

    # Signed for A but claiming another project: no document either.
    demo = cloud.os_ok("project", "show", "demo")["id"]
    r = md("/openstack/latest/meta_data.json", a.id, sign(a.id), demo)
    assert r.status_code in (403, 404), f"{r.status_code} {r.text[:300]}"
    assert a.id not in r.text and b.id not in r.text, r.text[:300]

    # Nothing a request signed for A reaches mentions B, even when it
    # claims B's address or asks for B by name.
    tree = crawl(a.id, sign(a.id), project)
    ok = [p for p, body in tree.items() if body.startswith("200 ")]
    assert "/openstack/latest/meta_data.json" in ok and "/latest/meta-data/" in ok, tree.keys()
    assert len(ok) >= 10, f"only {ok} answered"
    leaks = {p: body[:200] for p, body in tree.items() if b.id in body}
    assert not leaks, f"A-signed requests returned B's uuid: {leaks}"
    for path, extra in (
            ("/openstack/latest/meta_data.json", {"X_Forwarded_For": b.fixed_ip}),
            (f"/openstack/latest/meta_data.json?uuid={b.id}", {}),
            ("/latest/meta-data/instance-id", {"X_Forwarded_For": b.fixed_ip}),
            ("/latest/meta-data/local-ipv4", {"X_Forwarded_For": b.fixed_ip})):
        r = md(path, a.id, sign(a.id), project, **extra)
        assert b.id not in r.text, f"{path} {extra}: {r.text[:300]}"
    r = md("/openstack/latest/meta_data.json", a.id, sign(a.id), project,
           X_Forwarded_For=b.fixed_ip)
    assert r.status_code == 200 and json.loads(r.text)["uuid"] == a.id, r.text[:300]


def test_guest_reads_its_own_metadata_through_the_proxy(cloud, pair):
    a, b = pair
    cloud.ensure_reachable(a)
    p = cloud.ssh(a.fip, "wget -qO- http://169.254.169.254/openstack/latest/meta_data.json")
    assert p.returncode == 0, f"wget in the guest: rc={p.returncode} {p.stderr}\n{cloud.diag(a.id)}"
    doc = json.loads(p.stdout)
    assert doc["uuid"] == a.id, doc
    assert doc.get("name") == "vm1", doc
    assert b.id not in p.stdout


def test_config_drive_carries_the_same_instance_data(cloud, pair):
    """`--config-drive true`: the guest has an ISO 9660 volume labelled
    config-2 with its meta_data.json (its uuid, its key) and user data,
    in the OpenStack and EC2 layouts."""
    a, _ = pair
    (cloud.work / "user-data.sh").write_text("#!/bin/sh\necho config drive user data\n")
    password = "Cd-pass-7Qw2"
    g = cloud.boot("vm-cd", extra=("--config-drive", "true", "--password", password,
                                   "--user-data", str(cloud.work / "user-data.sh")))
    try:
        cloud.add_floating_ip(g)
        cloud.allow("icmp")
        cloud.allow("tcp", 22)
        cloud.wait_ssh(g)
        script = ("d=$(blkid -L config-2) && mkdir -p /mnt/cd && "
                  "(mountpoint -q /mnt/cd || mount -o ro $d /mnt/cd) && "
                  "cat /mnt/cd/openstack/latest/meta_data.json && echo && "
                  "cat /mnt/cd/openstack/latest/user_data && "
                  "ls /mnt/cd/ec2/latest/")
        p = cloud.ssh(g.fip, script)
        assert p.returncode == 0, f"reading the config drive: {p.stdout}{p.stderr}\n{cloud.diag(g.id)}"
        doc = json.loads(p.stdout.splitlines()[0])
        assert doc["uuid"] == g.id, doc
        assert doc["hostname"] == "vm-cd", doc
        assert "k1" in doc.get("public_keys", {}), doc
        assert "config drive user data" in p.stdout
        assert "meta-data.json" in p.stdout
        assert a.id not in p.stdout
        # The adminPass is on the config drive (only there, as with Nova),
        # and the guest made it root's: the consoles take it.
        assert doc.get("admin_pass") == password, doc
        # root's sha512-crypt hash, computed again in the guest from the
        # password and the hash's salt.
        check = ("h=$(grep '^root:' /etc/shadow | cut -d: -f2); s=$(echo \"$h\" | cut -d'$' -f3); "
                 f"case $h in '$6$'*) ;; *) echo no-sha512; exit 1;; esac; "
                 f"[ \"$(printf %s '{password}' | mkpasswd -m sha512 -S \"$s\")\" = \"$h\" ] && echo match")
        p = cloud.ssh(g.fip, check)
        assert p.stdout.strip() == "match", f"{p.stdout}{p.stderr}"
        assert "ferrostack-guest: root password from config drive" in cloud.console_text(g.id)
        md = cloud.ssh(g.fip, "wget -qO- http://169.254.169.254/openstack/latest/meta_data.json")
        assert md.returncode == 0 and password not in md.stdout, md.stdout
    finally:
        cloud.delete(g.id)
