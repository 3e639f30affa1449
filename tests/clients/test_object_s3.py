"""S3 access to the object store with identity EC2 credentials
(`openstack ec2 credentials create`), requests signed with AWS Signature
V4 as boto3 signs them (the signer is written out here: boto3's botocore
needs python-dateutil < 3, which the pinned venv does not have).
Buckets are containers: an object stored through Swift reads back through
S3 and the other way round.

Run:  pytest -v tests/clients/test_object_s3.py
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import subprocess
import urllib.parse

import requests

from conftest import unique

S3 = "http://127.0.0.1:8080"
REGION = "RegionOne"


def sign(method, path, access, secret, query="", body=b"", headers=None):
    """Headers of a SigV4-signed S3 request (path-style, payload hashed)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    amz_date, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    h = {"host": "127.0.0.1:8080", "x-amz-date": amz_date,
         "x-amz-content-sha256": hashlib.sha256(body).hexdigest()}
    h.update({k.lower(): v for k, v in (headers or {}).items()})
    signed = sorted(h)
    pairs = sorted(urllib.parse.parse_qsl(query, keep_blank_values=True))
    canonical_query = "&".join(
        f"{urllib.parse.quote(k, safe='-_.~')}={urllib.parse.quote(v, safe='-_.~')}" for k, v in pairs)
    canonical = "\n".join([
        method, urllib.parse.quote(path, safe="/-_.~"), canonical_query,
        "".join(f"{k}:{h[k].strip()}\n" for k in signed), ";".join(signed),
        h["x-amz-content-sha256"]])
    scope = f"{day}/{REGION}/s3/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])
    key = ("AWS4" + secret).encode()
    for part in scope.split("/"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    sig = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    h["authorization"] = (f"AWS4-HMAC-SHA256 Credential={access}/{scope}, "
                          f"SignedHeaders={';'.join(signed)}, Signature={sig}")
    del h["host"]
    return h


def s3(method, path, cred, query="", body=b"", headers=None):
    access, secret = cred
    h = sign(method, path, access, secret, query, body, headers)
    url = S3 + urllib.parse.quote(path, safe="/-_.~") + (("?" + query) if query else "")
    return requests.request(method, url, headers=h, data=body, timeout=60)


def test_s3_with_ec2_credentials_reads_what_swift_stored(ferrostack, tmp_path):
    cred_doc = ferrostack.os_ok("ec2", "credentials", "create")
    cred = (cred_doc["access"], cred_doc["secret"])
    c = unique("s3c")
    ferrostack.os_ok("container", "create", c)
    src = tmp_path / "from-swift.txt"
    src.write_bytes(b"stored through swift\n")
    ferrostack.os_ok("object", "create", c, str(src), "--name", "doc.txt")

    r = s3("GET", "/", cred)
    assert r.status_code == 200, r.text
    assert f"<Name>{c}</Name>" in r.text
    r = s3("GET", f"/{c}/doc.txt", cred)
    assert r.status_code == 200 and r.content == b"stored through swift\n"
    assert r.headers["ETag"] == '"%s"' % hashlib.md5(r.content).hexdigest()
    r = s3("GET", f"/{c}/doc.txt", cred, headers={"range": "bytes=0-5"})
    assert r.status_code == 206 and r.content == b"stored"

    # A bucket and objects through S3, read back through Swift.
    b = unique("s3b")
    assert s3("PUT", f"/{b}", cred).status_code == 200
    body = b"written through s3"
    r = s3("PUT", f"/{b}/dir/key one", cred, body=body, headers={"x-amz-meta-color": "blue"})
    assert r.status_code == 200, r.text
    assert r.headers["ETag"] == '"%s"' % hashlib.md5(body).hexdigest()
    shown = ferrostack.os_ok("object", "show", b, "dir/key one")
    assert shown["etag"] == hashlib.md5(body).hexdigest()
    r = s3("HEAD", f"/{b}/dir/key one", cred)
    assert r.headers["x-amz-meta-color"] == "blue"
    r = s3("GET", f"/{b}", cred, query="list-type=2")
    assert "<Key>dir/key one</Key>" in r.text and "<KeyCount>1</KeyCount>" in r.text
    r = s3("GET", f"/{b}", cred, query="delimiter=%2F")
    assert "<CommonPrefixes><Prefix>dir/</Prefix></CommonPrefixes>" in r.text

    # A wrong secret, a wrong Content-MD5, a missing key, a non-empty bucket.
    assert s3("GET", "/", (cred[0], "wrong")).status_code == 403
    r = s3("PUT", f"/{b}/bad", cred, body=b"x", headers={"content-md5": "AAAAAAAAAAAAAAAAAAAAAA=="})
    assert r.status_code == 400 and "<Code>BadDigest</Code>" in r.text
    r = s3("GET", f"/{b}/missing", cred)
    assert r.status_code == 404 and "<Code>NoSuchKey</Code>" in r.text
    assert s3("DELETE", f"/{b}", cred).status_code == 409
    assert s3("DELETE", f"/{b}/dir/key one", cred).status_code == 204
    assert s3("DELETE", f"/{b}", cred).status_code == 204
    assert s3("HEAD", f"/{b}", cred).status_code == 404


def test_s3_multipart_upload_becomes_one_object(ferrostack):
    cred_doc = ferrostack.os_ok("ec2", "credentials", "create")
    cred = (cred_doc["access"], cred_doc["secret"])
    b = unique("mpb")
    assert s3("PUT", f"/{b}", cred).status_code == 200
    r = s3("POST", f"/{b}/big", cred, query="uploads=")
    assert r.status_code == 200, r.text
    upload = r.text.split("<UploadId>")[1].split("</UploadId>")[0]
    parts = [bytes([65 + i]) * (5 * 1024 * 1024 + i) for i in range(2)]
    etags = []
    for n, data in enumerate(parts, 1):
        r = s3("PUT", f"/{b}/big", cred, query=f"partNumber={n}&uploadId={upload}", body=data)
        assert r.status_code == 200, r.text
        etags.append(r.headers["ETag"])
    doc = "<CompleteMultipartUpload>" + "".join(
        f"<Part><PartNumber>{n}</PartNumber><ETag>{e}</ETag></Part>"
        for n, e in enumerate(etags, 1)) + "</CompleteMultipartUpload>"
    r = s3("POST", f"/{b}/big", cred, query=f"uploadId={upload}", body=doc.encode())
    assert r.status_code == 200 and "<CompleteMultipartUploadResult" in r.text, r.text
    r = s3("GET", f"/{b}/big", cred)
    assert r.status_code == 200 and r.content == b"".join(parts)
    # Through Swift it is a static large object of the parts.
    shown = ferrostack.os_ok("object", "show", b, "big")
    assert int(shown["content-length"]) == sum(len(p) for p in parts)
    # A completed upload takes no more parts.
    r = s3("PUT", f"/{b}/big", cred, query=f"partNumber=3&uploadId={upload}", body=b"x")
    assert r.status_code == 404 and "NoSuchUpload" in r.text


AWS = "/usr/bin/aws"  # Debian's awscli (scripts/setup-host.sh), not a pip one


def aws(cred, tmp_path, *args, check=True):
    """Run Debian's AWS CLI against the S3 API with EC2 credentials."""
    config = tmp_path / "aws-config"
    config.write_text("[default]\nregion = RegionOne\ns3 =\n    addressing_style = path\n")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
           "AWS_ACCESS_KEY_ID": cred[0], "AWS_SECRET_ACCESS_KEY": cred[1],
           "AWS_CONFIG_FILE": str(config), "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
           "AWS_PAGER": "", "AWS_EC2_METADATA_DISABLED": "true"}
    p = subprocess.run([AWS, "--endpoint-url", S3, *args], env=env, capture_output=True,
                       text=True, timeout=120)
    if check:
        assert p.returncode == 0, f"aws {' '.join(args)}: {p.stdout}{p.stderr}"
    return p


def test_aws_cli_reads_what_swift_stored_and_swift_reads_what_it_wrote(ferrostack, tmp_path):
    """`aws s3 cp` with `openstack ec2 credentials create` credentials, on
    the same objects as Swift, both ways."""
    doc = ferrostack.os_ok("ec2", "credentials", "create")
    cred = (doc["access"], doc["secret"])
    c = unique("awsc")
    ferrostack.os_ok("container", "create", c)
    src = tmp_path / "from-swift.bin"
    src.write_bytes(bytes(range(256)) * 4096)  # 1 MiB
    ferrostack.os_ok("object", "create", c, str(src), "--name", "blob.bin")

    got = tmp_path / "via-aws.bin"
    aws(cred, tmp_path, "s3", "cp", f"s3://{c}/blob.bin", str(got))
    assert got.read_bytes() == src.read_bytes()
    listed = aws(cred, tmp_path, "s3", "ls", f"s3://{c}/").stdout
    assert "blob.bin" in listed and str(src.stat().st_size) in listed, listed

    up = tmp_path / "from-aws.txt"
    up.write_bytes(b"uploaded with aws s3 cp\n")
    aws(cred, tmp_path, "s3", "cp", str(up), f"s3://{c}/dir/from-aws.txt")
    back = tmp_path / "back.txt"
    ferrostack.os_ok("object", "save", c, "dir/from-aws.txt", "--file", str(back),
                     fmt_json=False)
    assert back.read_bytes() == up.read_bytes()

    # Wrong credentials are refused; the object is untouched.
    p = aws((cred[0], "wrong-secret"), tmp_path, "s3", "cp", f"s3://{c}/blob.bin",
            str(tmp_path / "no.bin"), check=False)
    assert p.returncode != 0 and "403" in p.stderr, p.stderr
    assert not (tmp_path / "no.bin").exists()
