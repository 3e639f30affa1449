//! The Swift API end to end: a bootstrapped identity service, the object
//! API on an ephemeral port, requests as clients send them.

use reqwest::{Method, StatusCode};
use std::sync::Arc;

struct Cloud {
    tc: ferrostack_testkit::TestCloud,
    svc: Arc<ferrostack_object::ObjectService>,
    url: String,
    admin: String,
    demo: String,
    admin_account: String,
}

async fn cloud(name: &str) -> Cloud {
    let tc = ferrostack_testkit::start(&format!("object-{name}"), |c| {
        c.object.expirer_interval = 0;
    })
    .await;
    // The S3 layer finds EC2 credentials through this identity API.
    let mut cfg = tc.config.clone();
    cfg.service_auth.auth_url = format!("{}/v3", tc.identity_url);
    let svc = ferrostack_object::open(&cfg).await.expect("open");
    let router = ferrostack_object::api::router(svc.clone(), tc.validator.clone(), &tc.auth_uri());
    let url = ferrostack_testkit::serve(router).await;
    let admin = tc.token("admin", "admin").await;
    let demo = tc.token("demo", "demo").await;
    let admin_account = format!("AUTH_{}", tc.project_of(&admin).await);
    Cloud {
        tc,
        svc,
        url,
        admin,
        demo,
        admin_account,
    }
}

impl Cloud {
    fn at(&self, path: &str) -> String {
        format!("{}/v1/{}{path}", self.url, self.admin_account)
    }

    fn req(&self, method: &str, path: &str, token: Option<&str>) -> reqwest::RequestBuilder {
        let r = self.tc.http.request(
            Method::from_bytes(method.as_bytes()).unwrap(),
            self.at(path),
        );
        match token {
            Some(t) => r.header("x-auth-token", t),
            None => r,
        }
    }

    async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> reqwest::Response {
        let mut r = self.req(method, path, Some(&self.admin)).body(body);
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        r.send().await.expect("request")
    }

    async fn status(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> StatusCode {
        self.send(method, path, headers, Vec::new()).await.status()
    }

    async fn text(&self, path: &str) -> (StatusCode, String) {
        let r = self.send("GET", path, &[], Vec::new()).await;
        (r.status(), r.text().await.unwrap())
    }
}

fn md5_hex(b: &[u8]) -> String {
    use md5::Digest;
    md5::Md5::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

#[tokio::test]
async fn info_and_account_listing_filters() {
    let c = cloud("listing").await;
    let info: serde_json::Value =
        c.tc.http
            .get(format!("{}/info", c.url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert!(info["swift"]["max_file_size"].as_u64().unwrap() > 0);
    assert!(info["tempurl"].is_object() && info["slo"].is_object());
    // A new account answers with zero totals.
    let r = c.send("HEAD", "", &[], vec![]).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(r.headers()["x-account-container-count"], "0");
    for name in ["a", "c", "d"] {
        assert_eq!(
            c.status("PUT", &format!("/{name}"), &[]).await,
            StatusCode::CREATED
        );
    }
    // An encoded '/' is a '/': this names an object in a missing container.
    assert_eq!(c.status("PUT", "/b%2F1", &[]).await, StatusCode::NOT_FOUND);
    let (s, body) = c.text("").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body, "a\nc\nd\n", "a name with '/' is no container");
    assert_eq!(
        c.status("PUT", "/b", &[("x-container-meta-color", "blue")])
            .await,
        StatusCode::CREATED
    );
    assert_eq!(c.status("PUT", "/b", &[]).await, StatusCode::ACCEPTED);
    let (_, body) = c.text("?limit=2").await;
    assert_eq!(body, "a\nb\n");
    let (_, body) = c.text("?marker=b&end_marker=d").await;
    assert_eq!(body, "c\n");
    let (_, body) = c.text("?reverse=true&limit=2").await;
    assert_eq!(body, "d\nc\n");
    let (_, body) = c.text("?prefix=c").await;
    assert_eq!(body, "c\n");
    let json: serde_json::Value = c
        .send("GET", "?format=json", &[], vec![])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(json[0]["name"], "a");
    assert_eq!(json[0]["count"], 0);
    let (_, xml) = c.text("?format=xml").await;
    assert!(
        xml.contains("<container><name>a</name><count>0</count>"),
        "{xml}"
    );
    let r = c.send("HEAD", "/b", &[], vec![]).await;
    assert_eq!(r.headers()["x-container-meta-color"], "blue");
    // Metadata on the account; the quota only by a reseller admin.
    assert_eq!(
        c.status("POST", "", &[("x-account-meta-owner", "ops")])
            .await,
        StatusCode::NO_CONTENT
    );
    let r = c.send("HEAD", "", &[], vec![]).await;
    assert_eq!(r.headers()["x-account-meta-owner"], "ops");
    assert_eq!(r.headers()["x-account-container-count"], "4");
    assert_eq!(
        c.status("POST", "", &[("x-account-meta-quota-bytes", "10")])
            .await,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn objects_round_trip_with_ranges_conditions_copies() {
    let c = cloud("objects").await;
    assert_eq!(c.status("PUT", "/c", &[]).await, StatusCode::CREATED);
    assert_eq!(
        c.status("PUT", "/missing/o", &[]).await,
        StatusCode::NOT_FOUND
    );
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let etag = md5_hex(&data);
    let r = c
        .send(
            "PUT",
            "/c/dir/obj.bin",
            &[("etag", &etag), ("x-object-meta-kind", "test")],
            data.clone(),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(r.headers()["etag"], etag.as_str());
    // A wrong ETag: 422, and nothing stored.
    let r = c
        .send(
            "PUT",
            "/c/bad",
            &[("etag", "00000000000000000000000000000000")],
            b"hello".to_vec(),
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(c.status("HEAD", "/c/bad", &[]).await, StatusCode::NOT_FOUND);
    let r = c.send("GET", "/c/dir/obj.bin", &[], vec![]).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["x-object-meta-kind"], "test");
    assert_eq!(r.headers()["content-type"], "application/octet-stream");
    assert_eq!(r.bytes().await.unwrap().as_ref(), data.as_slice());
    let r = c.send("HEAD", "/c/dir/obj.bin", &[], vec![]).await;
    assert_eq!(r.headers()["content-length"], "100000");
    // Ranges.
    let r = c
        .send("GET", "/c/dir/obj.bin", &[("range", "bytes=10-19")], vec![])
        .await;
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(r.headers()["content-range"], "bytes 10-19/100000");
    assert_eq!(r.bytes().await.unwrap().as_ref(), &data[10..20]);
    let r = c
        .send("GET", "/c/dir/obj.bin", &[("range", "bytes=-5")], vec![])
        .await;
    assert_eq!(r.bytes().await.unwrap().as_ref(), &data[99_995..]);
    let r = c
        .send(
            "GET",
            "/c/dir/obj.bin",
            &[("range", "bytes=0-1,5-6")],
            vec![],
        )
        .await;
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("multipart/byteranges"));
    let declared: usize = r.headers()["content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let body = r.bytes().await.unwrap();
    assert_eq!(body.len(), declared);
    assert!(String::from_utf8_lossy(&body).contains("Content-Range: bytes 5-6/100000"));
    assert_eq!(
        c.status("GET", "/c/dir/obj.bin", &[("range", "bytes=200000-")])
            .await,
        StatusCode::RANGE_NOT_SATISFIABLE
    );
    // Conditions.
    assert_eq!(
        c.status("GET", "/c/dir/obj.bin", &[("if-none-match", &etag)])
            .await,
        StatusCode::NOT_MODIFIED
    );
    assert_eq!(
        c.status("GET", "/c/dir/obj.bin", &[("if-match", "\"nope\"")])
            .await,
        StatusCode::PRECONDITION_FAILED
    );
    assert_eq!(
        c.status("GET", "/c/dir/obj.bin", &[("if-match", &etag)])
            .await,
        StatusCode::OK
    );
    // Listing with a delimiter.
    assert_eq!(
        c.send("PUT", "/c/top", &[], b"x".to_vec()).await.status(),
        StatusCode::CREATED
    );
    let (_, body) = c.text("/c?delimiter=/").await;
    assert_eq!(body, "dir/\ntop\n");
    let list: serde_json::Value = c
        .send("GET", "/c?format=json&prefix=dir/", &[], vec![])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list[0]["hash"], etag.as_str());
    assert_eq!(list[0]["bytes"], 100_000);
    // Copies: COPY and X-Copy-From, metadata carried over.
    let r = c
        .send(
            "COPY",
            "/c/dir/obj.bin",
            &[("destination", "c/copy1")],
            vec![],
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = c
        .send(
            "PUT",
            "/c/copy2",
            &[
                ("x-copy-from", "/c/dir/obj.bin"),
                ("x-object-meta-kind", "copy"),
            ],
            vec![],
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = c.send("GET", "/c/copy2", &[], vec![]).await;
    assert_eq!(r.headers()["x-object-meta-kind"], "copy");
    assert_eq!(r.bytes().await.unwrap().as_ref(), data.as_slice());
    // POST replaces metadata.
    assert_eq!(
        c.status("POST", "/c/copy1", &[("x-object-meta-new", "1")])
            .await,
        StatusCode::ACCEPTED
    );
    let r = c.send("HEAD", "/c/copy1", &[], vec![]).await;
    assert_eq!(r.headers()["x-object-meta-new"], "1");
    assert!(r.headers().get("x-object-meta-kind").is_none());
    // A container with objects is not deleted.
    assert_eq!(c.status("DELETE", "/c", &[]).await, StatusCode::CONFLICT);
    let r = c.send("HEAD", "/c", &[], vec![]).await;
    assert_eq!(r.headers()["x-container-object-count"], "4");
    for o in ["dir/obj.bin", "top", "copy1", "copy2"] {
        assert_eq!(
            c.status("DELETE", &format!("/c/{o}"), &[]).await,
            StatusCode::NO_CONTENT
        );
    }
    assert_eq!(
        c.status("DELETE", "/c/top", &[]).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(c.status("DELETE", "/c", &[]).await, StatusCode::NO_CONTENT);
    // Errors are Swift's HTML.
    let r = c.send("GET", "/c", &[], vec![]).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(r.text().await.unwrap().contains("<h1>Not Found</h1>"));
    // No data file is left behind.
    let data_dir = c.tc.config.object_data_dir().join("data");
    let files = walk(&data_dir);
    assert!(files.is_empty(), "{files:?}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.path().is_dir() {
            out.extend(walk(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}

#[tokio::test]
async fn acls_and_temp_urls() {
    let c = cloud("acl").await;
    c.status("PUT", "/priv", &[]).await;
    c.send("PUT", "/priv/secret", &[], b"s3cret".to_vec()).await;
    // demo (another project) is refused; nobody at all gets 401.
    let r = c
        .req("GET", "/priv/secret", Some(&c.demo))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = c.req("GET", "/priv/secret", None).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // A read ACL for demo's project and user.
    assert_eq!(
        c.status("POST", "/priv", &[("x-container-read", "demo:demo")])
            .await,
        StatusCode::NO_CONTENT
    );
    let r = c
        .req("GET", "/priv/secret", Some(&c.demo))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.text().await.unwrap(), "s3cret");
    let r = c
        .req("PUT", "/priv/x", Some(&c.demo))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::FORBIDDEN,
        "read ACL does not grant writes"
    );
    assert_eq!(
        c.status("POST", "/priv", &[("x-container-write", "demo:*")])
            .await,
        StatusCode::NO_CONTENT
    );
    let r = c
        .req("PUT", "/priv/x", Some(&c.demo))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    // Public read: objects without a token, listings only with .rlistings.
    c.status("POST", "/priv", &[("x-container-read", ".r:*")])
        .await;
    assert_eq!(
        c.req("GET", "/priv/secret", None)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        c.req("GET", "/priv", None).send().await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    c.status("POST", "/priv", &[("x-container-read", ".r:*,.rlistings")])
        .await;
    assert_eq!(
        c.req("GET", "/priv", None).send().await.unwrap().status(),
        StatusCode::OK
    );
    c.status("POST", "/priv", &[("x-remove-container-read", "x")])
        .await;
    assert_eq!(
        c.req("GET", "/priv/secret", None)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );

    // Temp URLs.
    assert_eq!(
        c.status("POST", "", &[("x-account-meta-temp-url-key", "k3y")])
            .await,
        StatusCode::NO_CONTENT
    );
    let path = format!("/v1/{}/priv/secret", c.admin_account);
    let expires = chrono::Utc::now().timestamp() + 60;
    let sig = |key: &str, exp: i64| {
        use hmac::{Hmac, Mac};
        let mut m = Hmac::<sha1::Sha1>::new_from_slice(key.as_bytes()).unwrap();
        m.update(format!("GET\n{exp}\n{path}").as_bytes());
        m.finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    let get = |s: String, e: i64| {
        c.tc.http
            .get(format!(
                "{}{path}?temp_url_sig={s}&temp_url_expires={e}",
                c.url
            ))
            .send()
    };
    let r = get(sig("k3y", expires), expires).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment"));
    assert_eq!(r.text().await.unwrap(), "s3cret");
    assert_eq!(
        get(sig("wrong", expires), expires).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    let past = chrono::Utc::now().timestamp() - 1;
    assert_eq!(
        get(sig("k3y", past), past).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn large_objects_expiry_quotas_versions() {
    let c = cloud("large").await;
    c.status("PUT", "/c", &[]).await;
    c.status("PUT", "/segs", &[]).await;
    let parts: Vec<Vec<u8>> = (0..3).map(|i| vec![b'a' + i as u8; 1000 + i]).collect();
    let mut whole = Vec::new();
    let mut manifest = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        c.send("PUT", &format!("/segs/big/{i:04}"), &[], p.clone())
            .await;
        whole.extend_from_slice(p);
        manifest.push(serde_json::json!({"path": format!("/segs/big/{i:04}"), "etag": md5_hex(p), "size_bytes": p.len()}));
    }
    // Dynamic: everything under the prefix.
    assert_eq!(
        c.status("PUT", "/c/dlo", &[("x-object-manifest", "segs/big/")])
            .await,
        StatusCode::CREATED
    );
    let r = c.send("GET", "/c/dlo", &[], vec![]).await;
    assert_eq!(
        r.headers()["content-length"],
        whole.len().to_string().as_str()
    );
    assert_eq!(r.bytes().await.unwrap().as_ref(), whole.as_slice());
    // Static: validated manifest, concatenated GET, ranges across segments.
    let body = serde_json::to_vec(&manifest).unwrap();
    let r = c
        .send("PUT", "/c/slo?multipart-manifest=put", &[], body)
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = c.send("GET", "/c/slo", &[], vec![]).await;
    assert_eq!(r.headers()["x-static-large-object"], "True");
    assert_eq!(r.bytes().await.unwrap().as_ref(), whole.as_slice());
    let r = c
        .send("GET", "/c/slo", &[("range", "bytes=995-1005")], vec![])
        .await;
    assert_eq!(r.bytes().await.unwrap().as_ref(), &whole[995..1006]);
    let bad = serde_json::to_vec(
        &serde_json::json!([{"path": "/segs/big/0000", "etag": "x"}, {"path": "/segs/none"}]),
    )
    .unwrap();
    let r = c
        .send("PUT", "/c/bad?multipart-manifest=put", &[], bad)
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = c
        .send("DELETE", "/c/slo?multipart-manifest=delete", &[], vec![])
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        c.status("HEAD", "/segs/big/0000", &[]).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(c.status("HEAD", "/c/slo", &[]).await, StatusCode::NOT_FOUND);

    // Expiry: gone at once for readers, reaped by the expirer.
    // Far enough ahead that a loaded machine still reads it before.
    let at = (chrono::Utc::now().timestamp() + 3).to_string();
    c.send("PUT", "/c/short", &[("x-delete-at", &at)], b"bye".to_vec())
        .await;
    assert_eq!(c.status("GET", "/c/short", &[]).await, StatusCode::OK);
    assert_eq!(
        c.status("PUT", "/c/x", &[("x-delete-at", "1")]).await,
        StatusCode::BAD_REQUEST
    );
    tokio::time::sleep(std::time::Duration::from_millis(4100)).await;
    assert_eq!(
        c.status("GET", "/c/short", &[]).await,
        StatusCode::NOT_FOUND
    );
    assert!(c.svc.reap_expired().await.unwrap() >= 1);

    // Container quotas.
    c.status(
        "PUT",
        "/q",
        &[
            ("x-container-meta-quota-bytes", "10"),
            ("x-container-meta-quota-count", "2"),
        ],
    )
    .await;
    assert_eq!(
        c.send("PUT", "/q/a", &[], vec![0; 8]).await.status(),
        StatusCode::CREATED
    );
    assert_eq!(
        c.send("PUT", "/q/b", &[], vec![0; 8]).await.status(),
        StatusCode::PAYLOAD_TOO_LARGE
    );
    assert_eq!(
        c.send("PUT", "/q/c", &[], vec![0; 2]).await.status(),
        StatusCode::CREATED
    );
    assert_eq!(
        c.send("PUT", "/q/d", &[], vec![]).await.status(),
        StatusCode::PAYLOAD_TOO_LARGE
    );

    // Versions (stack mode): an overwrite keeps the old one, a delete brings it back.
    c.status("PUT", "/archive", &[]).await;
    c.status("PUT", "/v", &[("x-versions-location", "archive")])
        .await;
    c.send("PUT", "/v/doc", &[], b"one".to_vec()).await;
    c.send("PUT", "/v/doc", &[], b"two".to_vec()).await;
    assert_eq!(c.text("/v/doc").await.1, "two");
    let (_, listing) = c.text("/archive").await;
    assert!(listing.starts_with("003doc/"), "{listing}");
    assert_eq!(
        c.status("DELETE", "/v/doc", &[]).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(c.text("/v/doc").await.1, "one");
}

#[tokio::test]
async fn restart_removes_interrupted_uploads() {
    let c = cloud("recover").await;
    c.status("PUT", "/c", &[]).await;
    c.send("PUT", "/c/kept", &[], b"kept".to_vec()).await;
    // What a kill leaves: a temporary file, and data noted loose.
    let root = c.tc.config.object_data_dir();
    std::fs::write(root.join("tmp").join("deadbeef"), b"partial").unwrap();
    ferrostack_object::store::objects::add_loose(&c.svc.db, "cafef00d")
        .await
        .unwrap();
    std::fs::create_dir_all(root.join("data/ca")).unwrap();
    std::fs::write(root.join("data/ca/cafef00d"), b"orphan").unwrap();
    c.svc.recover().await.unwrap();
    assert!(!root.join("tmp/deadbeef").exists());
    assert!(!root.join("data/ca/cafef00d").exists());
    assert_eq!(c.text("/c/kept").await.1, "kept");
    assert!(ferrostack_object::store::objects::loose(&c.svc.db)
        .await
        .unwrap()
        .is_empty());
}

/// A one-file ustar archive, as `tar` writes it.
fn tar_of(name: &str, data: &[u8]) -> Vec<u8> {
    let mut h = vec![0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    h[100..108].copy_from_slice(b"0000644\0");
    h[108..116].copy_from_slice(b"0000000\0");
    h[116..124].copy_from_slice(b"0000000\0");
    h[124..136].copy_from_slice(format!("{:011o}\0", data.len()).as_bytes());
    h[136..148].copy_from_slice(b"00000000000\0");
    h[156] = b'0';
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|b| *b as u32).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    let mut out = h;
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512 + 1024, 0);
    out
}

#[tokio::test]
async fn bulk_extract_and_delete_and_form_post() {
    let c = cloud("bulk").await;
    // Extract at the account: the first path segment is the container.
    let r = c
        .send(
            "PUT",
            "?extract-archive=tar",
            &[("accept", "application/json")],
            tar_of("box/inner/file.txt", b"from tar"),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let doc: serde_json::Value = r.json().await.unwrap();
    assert_eq!(doc["Number Files Created"], 1, "{doc}");
    assert_eq!(
        c.text("/box/inner/file.txt").await,
        (StatusCode::OK, "from tar".into())
    );
    // Bulk delete: the object, then its container, one missing.
    let r = c
        .send(
            "DELETE",
            "?bulk-delete",
            &[("accept", "application/json")],
            b"box/inner/file.txt\nbox\nnope/x\n".to_vec(),
        )
        .await;
    let doc: serde_json::Value = r.json().await.unwrap();
    assert_eq!(doc["Number Deleted"], 2, "{doc}");
    assert_eq!(doc["Number Not Found"], 1, "{doc}");
    assert_eq!(c.status("HEAD", "/box", &[]).await, StatusCode::NOT_FOUND);

    // Form POST signed with the account's temp URL key, no token.
    c.status("PUT", "/forms", &[]).await;
    c.status("POST", "", &[("x-account-meta-temp-url-key", "formkey")])
        .await;
    let path = format!("/v1/{}/forms/up-", c.admin_account);
    let expires = chrono::Utc::now().timestamp() + 60;
    let form = |key: &str| {
        use hmac::{Hmac, Mac};
        let mut m = Hmac::<sha1::Sha1>::new_from_slice(key.as_bytes()).unwrap();
        m.update(format!("{path}\n\n1024\n2\n{expires}").as_bytes());
        let sig: String = m
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let mut body = String::new();
        for (k, v) in [
            ("redirect", ""),
            ("max_file_size", "1024"),
            ("max_file_count", "2"),
            ("expires", &expires.to_string()),
            ("signature", &sig),
        ] {
            body.push_str(&format!(
                "--BND\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"
            ));
        }
        body.push_str("--BND\r\nContent-Disposition: form-data; name=\"file1\"; filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\nform data\r\n--BND--\r\n");
        c.tc.http
            .post(format!("{}{path}", c.url))
            .header("content-type", "multipart/form-data; boundary=BND")
            .body(body)
            .send()
    };
    assert_eq!(
        form("wrong").await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(form("formkey").await.unwrap().status(), StatusCode::CREATED);
    let r = c.send("GET", "/forms/up-a.txt", &[], vec![]).await;
    assert_eq!(r.headers()["content-type"], "text/plain");
    assert_eq!(r.text().await.unwrap(), "form data");
}

#[tokio::test]
async fn concurrent_writes_to_one_container_all_land() {
    let c = Arc::new(cloud("concurrent").await);
    c.status("PUT", "/c", &[]).await;
    let mut tasks = Vec::new();
    for i in 0..32 {
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            let put = c
                .send("PUT", &format!("/c/o{i}"), &[], vec![b'x'; 100 + i])
                .await
                .status();
            let over = c.send("PUT", "/c/same", &[], vec![b'y'; i]).await.status();
            (put, over)
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), (StatusCode::CREATED, StatusCode::CREATED));
    }
    let r = c.send("HEAD", "/c", &[], vec![]).await;
    assert_eq!(r.headers()["x-container-object-count"], "33");
    let same = c.send("HEAD", "/c/same", &[], vec![]).await;
    let same_len: i64 = same.headers()["content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let expected: i64 = (0..32).map(|i| 100 + i).sum::<i64>() + same_len;
    assert_eq!(
        r.headers()["x-container-bytes-used"],
        expected.to_string().as_str()
    );
    // Every replaced version's data is gone: one file per object.
    assert_eq!(walk(&c.tc.config.object_data_dir().join("data")).len(), 33);
}

/// SigV4 headers for a path-style S3 request with an empty payload.
fn sigv4(method: &str, url: &str, access: &str, secret: &str) -> Vec<(String, String)> {
    use sha2::{Digest, Sha256};
    let empty: String = Sha256::digest(b"")
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect();
    sigv4_payload(method, url, access, secret, &empty)
}

/// SigV4 headers for a path-style S3 request declaring `payload` as its
/// `x-amz-content-sha256`.
fn sigv4_payload(
    method: &str,
    url: &str,
    access: &str,
    secret: &str,
    payload: &str,
) -> Vec<(String, String)> {
    use hmac::{Hmac, Mac};
    use sha2::{Digest, Sha256};
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let mac = |k: &[u8], m: &str| {
        let mut h = Hmac::<Sha256>::new_from_slice(k).unwrap();
        h.update(m.as_bytes());
        h.finalize().into_bytes().to_vec()
    };
    let u = reqwest::Url::parse(url).unwrap();
    let host = format!("{}:{}", u.host_str().unwrap(), u.port().unwrap());
    let now = chrono::Utc::now();
    let (date, day) = (
        now.format("%Y%m%dT%H%M%SZ").to_string(),
        now.format("%Y%m%d").to_string(),
    );
    let canonical = format!(
        "{method}\n{}\n\nhost:{host}\nx-amz-content-sha256:{payload}\nx-amz-date:{date}\n\nhost;x-amz-content-sha256;x-amz-date\n{payload}",
        u.path()
    );
    let scope = format!("{day}/RegionOne/s3/aws4_request");
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{date}\n{scope}\n{}",
        hex(&Sha256::digest(canonical.as_bytes()))
    );
    let mut key = format!("AWS4{secret}").into_bytes();
    for part in scope.split('/') {
        key = mac(&key, part);
    }
    let sig = hex(&mac(&key, &to_sign));
    vec![
        ("x-amz-date".into(), date),
        ("x-amz-content-sha256".into(), payload.into()),
        (
            "authorization".into(),
            format!("AWS4-HMAC-SHA256 Credential={access}/{scope}, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature={sig}"),
        ),
    ]
}

/// An EC2 credential of admin's in the admin project: (access, secret).
async fn ec2_credentials(c: &Cloud) -> (String, String) {
    let v: serde_json::Value =
        c.tc.http
            .get(format!("{}/v3/auth/tokens", c.tc.identity_url))
            .header("x-auth-token", &c.admin)
            .header("x-subject-token", &c.admin)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    let user = v["token"]["user"]["id"].as_str().unwrap().to_owned();
    let project = v["token"]["project"]["id"].as_str().unwrap().to_owned();
    let cred: serde_json::Value =
        c.tc.http
            .post(format!(
                "{}/v3/users/{user}/credentials/OS-EC2",
                c.tc.identity_url
            ))
            .header("x-auth-token", &c.admin)
            .json(&serde_json::json!({"tenant_id": project}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    (
        cred["credential"]["access"].as_str().unwrap().to_owned(),
        cred["credential"]["secret"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn s3_reads_swift_objects_with_ec2_credentials() {
    let c = cloud("s3").await;
    c.status("PUT", "/bkt", &[]).await;
    c.send("PUT", "/bkt/hello.txt", &[], b"hello s3".to_vec())
        .await;
    let (access, secret) = ec2_credentials(&c).await;
    let get = |path: &str, secret: &str| {
        let url = format!("{}{path}", c.url);
        let mut r = c.tc.http.get(&url);
        for (k, v) in sigv4("GET", &url, &access, secret) {
            r = r.header(k, v);
        }
        r.send()
    };
    let r = get("/bkt/hello.txt", &secret).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.headers()["etag"],
        format!("\"{}\"", md5_hex(b"hello s3")).as_str()
    );
    assert_eq!(r.text().await.unwrap(), "hello s3");
    let r = get("/", &secret).await.unwrap();
    assert!(r.text().await.unwrap().contains("<Name>bkt</Name>"));
    let r = get("/bkt", &secret).await.unwrap();
    assert!(r.text().await.unwrap().contains("<Key>hello.txt</Key>"));
    let r = get("/bkt/hello.txt", "wrong").await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.text().await.unwrap().contains("SignatureDoesNotMatch"));
    let r = get("/bkt/nothing", &secret).await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(r.text().await.unwrap().contains("<Code>NoSuchKey</Code>"));
}

/// A signed payload hash must match the body: a mismatch is S3's
/// `XAmzContentSHA256Mismatch` with nothing stored; `UNSIGNED-PAYLOAD` is
/// taken; aws-chunked streaming is refused as s3api refuses it.
#[tokio::test]
async fn s3_checks_the_signed_payload_hash() {
    use sha2::{Digest, Sha256};
    let c = cloud("s3-payload").await;
    c.status("PUT", "/bkt", &[]).await;
    let (access, secret) = ec2_credentials(&c).await;
    let hash = |b: &[u8]| -> String {
        Sha256::digest(b)
            .iter()
            .map(|x| format!("{x:02x}"))
            .collect()
    };
    let put = |key: &str, payload: String, body: &'static [u8]| {
        let url = format!("{}/bkt/{key}", c.url);
        let mut r = c.tc.http.put(&url).body(body);
        for (k, v) in sigv4_payload("PUT", &url, &access, &secret, &payload) {
            r = r.header(k, v);
        }
        r.send()
    };
    let r = put("good", hash(b"payload"), b"payload").await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = put("liar", hash(b"payload"), b"tampered").await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("<Code>XAmzContentSHA256Mismatch</Code>"));
    let r = put("unsigned", "UNSIGNED-PAYLOAD".into(), b"anything")
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = put("chunked", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD".into(), b"x")
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_IMPLEMENTED);
    assert!(r.text().await.unwrap().contains("aws-chunked"));
    let r = put("odd", "not-a-hash".into(), b"x").await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("<Code>InvalidArgument</Code>"));

    let listing = c.send("GET", "/bkt", &[], Vec::new()).await;
    assert_eq!(listing.text().await.unwrap(), "good\nunsigned\n");
    // Only the two stored objects have data: the mismatched body is gone.
    assert_eq!(walk(&c.tc.config.object_data_dir().join("data")).len(), 2);
}

/// The S3 backend on a stand-in S3 service (another Ferrostack object
/// service's S3 API): each object's data is one object of the bucket,
/// ranges and copies read through, a refused upload leaves nothing, and a
/// delete removes the data.
#[tokio::test]
async fn s3_backend_keeps_data_in_a_bucket_of_another_s3_service() {
    let standin = cloud("rgw-standin").await;
    let (access, secret) = ec2_credentials(&standin).await;
    let mut cfg = standin.tc.config.clone();
    cfg.service_auth.auth_url = format!("{}/v3", standin.tc.identity_url);
    cfg.object.database_url = format!(
        "sqlite://{}/object-on-s3.sqlite?mode=rwc",
        standin.tc.dir.display()
    );
    cfg.object.backend = "s3".into();
    cfg.object.s3_endpoint = standin.url.clone();
    cfg.object.s3_bucket = "rgw-data".into();
    cfg.object.s3_access_key = access;
    cfg.object.s3_secret_key = secret;
    let svc = ferrostack_object::open(&cfg).await.expect("open on s3");
    let url = ferrostack_testkit::serve(ferrostack_object::api::router(
        svc,
        standin.tc.validator.clone(),
        &standin.tc.auth_uri(),
    ))
    .await;
    let http = &standin.tc.http;
    let at = |p: &str| format!("{url}/v1/{}{p}", standin.admin_account);
    let call = |m: Method, p: &str| {
        http.request(m, at(p))
            .header("x-auth-token", &standin.admin)
    };
    let stored = || async {
        let (st, text) = standin.text("/rgw-data").await;
        assert!(st == StatusCode::OK || st == StatusCode::NO_CONTENT, "{st}");
        text.lines().map(str::to_owned).collect::<Vec<_>>()
    };

    assert_eq!(
        call(Method::PUT, "/c").send().await.unwrap().status(),
        StatusCode::CREATED
    );
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 253) as u8).collect();
    let r = call(Method::PUT, "/c/big")
        .body(data.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(r.headers()["etag"], md5_hex(&data).as_str());
    assert_eq!(stored().await.len(), 1, "one object in the bucket");

    let r = call(Method::GET, "/c/big").send().await.unwrap();
    assert_eq!(r.bytes().await.unwrap().as_ref(), &data[..]);
    let r = call(Method::GET, "/c/big")
        .header("range", "bytes=2000000-2000009")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        r.bytes().await.unwrap().as_ref(),
        &data[2_000_000..2_000_010]
    );

    let r = call(Method::PUT, "/c/copy")
        .header("x-copy-from", "c/big")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = call(Method::GET, "/c/copy").send().await.unwrap();
    assert_eq!(r.bytes().await.unwrap().as_ref(), &data[..]);
    assert_eq!(stored().await.len(), 2, "the copy is its own data");

    // A chunked body (no length) goes through the spool.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        vec![Ok(b"chun".to_vec()), Ok(b"ked".to_vec())];
    let r = call(Method::PUT, "/c/chunked")
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = call(Method::GET, "/c/chunked").send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), "chunked");
    let r = call(Method::DELETE, "/c/chunked").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);

    let r = call(Method::PUT, "/c/liar")
        .header("etag", md5_hex(b"something else"))
        .body(b"payload".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(stored().await.len(), 2, "a refused upload leaves nothing");

    for name in ["big", "copy"] {
        let r = call(Method::DELETE, &format!("/c/{name}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
    }
    assert!(stored().await.is_empty(), "deletes remove the data");
}
