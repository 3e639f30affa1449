//! The metadata API over HTTP: the router served on 127.0.0.1:0 with an
//! in-memory source of two instances (A with two ports, user data and a
//! key; B in another project), asked as the signing proxy asks.

use ferrostack_metadata::signature::sign;
use ferrostack_metadata::{
    router, FixedIp, InstanceMetadata, MetadataSource, NetworkInterface, PublicKey,
};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

const SECRET: &str = "proxy-secret";
const A: &str = "0c6f3cf0-1d7a-4b43-9a55-5ab7c1c6c0aa";
const B: &str = "7d2e9c1b-5f1e-4d6b-8a39-2f0e4f1b90bb";
const BROKEN: &str = "ffffffff-0000-4000-8000-00000000dead";

fn instance_a() -> InstanceMetadata {
    InstanceMetadata {
        uuid: A.into(),
        name: "web 1".into(),
        hostname: "web-1".into(),
        project_id: "project-a".into(),
        availability_zone: "nova".into(),
        launch_index: 0,
        reservation_id: "r-a1b2c3d4".into(),
        instance_name: "instance-0000002a".into(),
        flavor_name: "m1.tiny".into(),
        image_id: "5a0c2d1e-9f3b-4c1a-8e7d-6b5a4c3d2e1f".into(),
        created_at: "2024-01-02T03:04:05Z".into(),
        meta: BTreeMap::from([("role".to_owned(), "web".to_owned())]),
        public_keys: vec![PublicKey {
            name: "key-a".into(),
            key_type: "ssh".into(),
            data: "ssh-ed25519 AAAAC3 a@example".into(),
        }],
        // "#!/bin/sh\necho hello\n"
        user_data_b64: Some("IyEvYmluL3NoCmVjaG8gaGVsbG8K".into()),
        interfaces: vec![
            NetworkInterface {
                port_id: "3b4f1c2d-1111-4222-8333-444455556666".into(),
                network_id: "net-private".into(),
                mac_address: "fa:16:3e:11:22:33".into(),
                mtu: Some(1450),
                vif_type: "bridge".into(),
                fixed_ips: vec![FixedIp {
                    address: "10.0.0.12".into(),
                    version: 4,
                    subnet_id: "subnet-v4".into(),
                    cidr: "10.0.0.0/24".into(),
                    gateway: Some("10.0.0.1".into()),
                    enable_dhcp: true,
                    ipv6_address_mode: None,
                    dns_nameservers: vec!["8.8.8.8".into()],
                    host_routes: vec![],
                }],
            },
            NetworkInterface {
                port_id: "9e8d7c6b-aaaa-4bbb-8ccc-dddddddddddd".into(),
                network_id: "net-v6".into(),
                mac_address: "fa:16:3e:44:55:66".into(),
                mtu: Some(1450),
                vif_type: "bridge".into(),
                fixed_ips: vec![FixedIp {
                    address: "fd00:10::f816:3eff:fe44:5566".into(),
                    version: 6,
                    subnet_id: "subnet-v6".into(),
                    cidr: "fd00:10::/64".into(),
                    gateway: Some("fd00:10::1".into()),
                    enable_dhcp: true,
                    ipv6_address_mode: Some("slaac".into()),
                    dns_nameservers: vec!["fd00:10::53".into(), "8.8.8.8".into()],
                    host_routes: vec![],
                }],
            },
        ],
        floating_ips: vec!["172.24.4.20".into()],
        security_groups: vec!["default".into()],
        vendor_data: json!({"motd": "welcome"}),
        root_device_name: None,
        admin_pass: Some("never-served".into()),
    }
}

fn instance_b() -> InstanceMetadata {
    InstanceMetadata {
        uuid: B.into(),
        name: "db".into(),
        hostname: "db-secret-host".into(),
        project_id: "project-b".into(),
        availability_zone: "zone-b".into(),
        reservation_id: "r-bbbbbbbb".into(),
        instance_name: "instance-0000002b".into(),
        flavor_name: "m1.large".into(),
        image_id: "img-b".into(),
        user_data_b64: Some("c2VjcmV0LW9mLWI=".into()), // "secret-of-b"
        public_keys: vec![PublicKey {
            name: "key-b".into(),
            key_type: "ssh".into(),
            data: "ssh-rsa BBBB b@example".into(),
        }],
        ..Default::default()
    }
}

struct Memory {
    instances: HashMap<String, InstanceMetadata>,
    passwords: Mutex<HashMap<String, String>>,
}

#[async_trait::async_trait]
impl MetadataSource for Memory {
    async fn instance(&self, id: &str) -> Result<Option<InstanceMetadata>, String> {
        if id == BROKEN {
            return Err("database is down: secret detail".into());
        }
        Ok(self.instances.get(id).cloned())
    }

    async fn password(&self, id: &str) -> Result<Option<String>, String> {
        Ok(self.passwords.lock().unwrap().get(id).cloned())
    }

    async fn set_password(&self, id: &str, password: &str) -> Result<bool, String> {
        let mut all = self.passwords.lock().unwrap();
        if all.contains_key(id) {
            return Ok(false);
        }
        all.insert(id.to_owned(), password.to_owned());
        Ok(true)
    }
}

struct Server {
    base: String,
    client: reqwest::Client,
}

async fn serve() -> Server {
    let source = Arc::new(Memory {
        instances: HashMap::from([(A.to_owned(), instance_a()), (B.to_owned(), instance_b())]),
        passwords: Mutex::new(HashMap::new()),
    });
    let app = router(source, SECRET.to_owned());
    Server {
        base: ferrostack_testkit::serve(app).await,
        client: reqwest::Client::new(),
    }
}

struct Reply {
    status: u16,
    content_type: String,
    body: Vec<u8>,
}

impl Reply {
    fn text(&self) -> String {
        String::from_utf8(self.body.clone()).unwrap()
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

impl Server {
    /// A request as the proxy sends it for `instance` in `tenant`.
    fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        instance: &str,
        tenant: Option<&str>,
    ) -> reqwest::RequestBuilder {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base))
            .header("X-Instance-ID", instance)
            .header("X-Instance-ID-Signature", sign(SECRET, instance))
            .header("X-Forwarded-For", "10.0.0.12");
        if let Some(tenant) = tenant {
            req = req.header("X-Tenant-ID", tenant);
        }
        req
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Reply {
        let resp = req.send().await.unwrap();
        Reply {
            status: resp.status().as_u16(),
            content_type: resp
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default(),
            body: resp.bytes().await.unwrap().to_vec(),
        }
    }

    /// GET as A's proxy.
    async fn get_a(&self, path: &str) -> Reply {
        self.send(self.request(reqwest::Method::GET, path, A, Some("project-a")))
            .await
    }

    async fn post_password(&self, instance: &str, tenant: &str, body: String) -> Reply {
        self.send(
            self.request(
                reqwest::Method::POST,
                "/openstack/latest/password",
                instance,
                Some(tenant),
            )
            .body(body),
        )
        .await
    }
}

#[tokio::test]
async fn unsigned_and_mis_signed_requests_are_refused() {
    let s = serve().await;
    let url = format!("{}/openstack/latest/meta_data.json", s.base);
    let forbidden = |r: &Reply| {
        assert_eq!(r.status, 403);
        let text = r.text();
        assert!(text.contains("Invalid proxy request signature."), "{text}");
        assert!(!text.contains(A) && !text.contains(B), "{text}");
    };
    // No headers at all, even for the root listing.
    forbidden(&s.send(s.client.get(&url)).await);
    forbidden(&s.send(s.client.get(format!("{}/", s.base))).await);
    // The id without a signature, a signature without the id.
    forbidden(&s.send(s.client.get(&url).header("X-Instance-ID", A)).await);
    forbidden(
        &s.send(
            s.client
                .get(&url)
                .header("X-Instance-ID-Signature", sign(SECRET, A)),
        )
        .await,
    );
    // Wrong key, wrong instance, garbage.
    for signature in [
        sign("other-secret", A),
        sign(SECRET, B),
        "zz".repeat(32),
        String::new(),
    ] {
        forbidden(
            &s.send(
                s.client
                    .get(&url)
                    .header("X-Instance-ID", A)
                    .header("X-Instance-ID-Signature", signature)
                    .header("X-Tenant-ID", "project-a"),
            )
            .await,
        );
    }
    // B's id with A's signature: refused, so B's data never comes back.
    forbidden(
        &s.send(
            s.client
                .get(&url)
                .header("X-Instance-ID", B)
                .header("X-Instance-ID-Signature", sign(SECRET, A))
                .header("X-Tenant-ID", "project-b"),
        )
        .await,
    );
    // Two instance ids (one signed) are refused too.
    forbidden(
        &s.send(
            s.client
                .get(&url)
                .header("X-Instance-ID", A)
                .header("X-Instance-ID", B)
                .header("X-Instance-ID-Signature", sign(SECRET, A)),
        )
        .await,
    );
    // Refused before any method check.
    let r = s.send(s.client.delete(&url)).await;
    assert_eq!(r.status, 403);
}

#[tokio::test]
async fn a_signed_request_gets_its_own_instance_only() {
    let s = serve().await;
    let r = s.get_a("/openstack/latest/meta_data.json").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["uuid"], A);
    // Without X-Tenant-ID too.
    let r = s
        .send(s.request(
            reqwest::Method::GET,
            "/openstack/latest/meta_data.json",
            A,
            None,
        ))
        .await;
    assert_eq!(r.json()["uuid"], A);

    // Every path of B's, asked with A's signature, answers A's data.
    let b = instance_b();
    for path in [
        "/openstack/latest/meta_data.json",
        "/openstack/latest/user_data",
        "/openstack/latest/password",
        "/openstack/latest/vendor_data2.json",
        "/latest/meta-data/hostname",
        "/latest/meta-data/instance-id",
        "/latest/meta-data/public-keys/0/openssh-key",
        "/latest/meta-data/placement/availability-zone",
        "/latest/user-data",
    ] {
        let r = s.get_a(path).await;
        assert_eq!(r.status, 200, "{path}");
        let text = String::from_utf8_lossy(&r.body);
        for secret in [
            B,
            &b.hostname,
            "secret-of-b",
            "zone-b",
            "ssh-rsa BBBB",
            "i-0000002b",
        ] {
            assert!(!text.contains(secret), "{path} leaked {secret}: {text}");
        }
    }
    // A's admin password is for its config drive only.
    let r = s.get_a("/openstack/2012-08-10/meta_data.json").await;
    assert!(!r.text().contains("never-served"));
}

#[tokio::test]
async fn tenant_mismatch_and_unknown_instances() {
    let s = serve().await;
    // A signed for A but claiming B's project: refused as Nova does (404).
    let r = s
        .send(s.request(
            reqwest::Method::GET,
            "/openstack/latest/meta_data.json",
            A,
            Some("project-b"),
        ))
        .await;
    assert_eq!(r.status, 404);
    assert!(!r.text().contains(A));
    // Two tenant headers.
    let r = s
        .send(
            s.request(reqwest::Method::GET, "/", A, Some("project-a"))
                .header("X-Tenant-ID", "project-b"),
        )
        .await;
    assert_eq!(r.status, 403);
    // Correctly signed for an instance that does not exist.
    let ghost = "11111111-2222-4333-8444-555555555555";
    let r = s
        .send(s.request(
            reqwest::Method::GET,
            "/latest/meta-data/",
            ghost,
            Some("project-a"),
        ))
        .await;
    assert_eq!(r.status, 404);
    // A failing source: 500, generic.
    let r = s
        .send(s.request(
            reqwest::Method::GET,
            "/latest/meta-data/",
            BROKEN,
            Some("p"),
        ))
        .await;
    assert_eq!(r.status, 500);
    assert!(r.text().contains("An unknown error has occurred"));
    assert!(!r.text().contains("secret detail"));
}

#[tokio::test]
async fn openstack_paths_and_listings() {
    let s = serve().await;
    let r = s.get_a("/openstack").await;
    assert_eq!(r.status, 200);
    assert!(
        r.content_type.starts_with("text/plain"),
        "{}",
        r.content_type
    );
    assert_eq!(
        r.text(),
        "2012-08-10\n2013-04-04\n2013-10-17\n2015-10-15\n2016-06-30\n2016-10-06\n\
         2017-02-22\n2018-08-27\n2020-10-14\nlatest"
    );
    assert_eq!(
        s.get_a("/openstack/").await.text(),
        s.get_a("/openstack").await.text()
    );

    let listings = [
        ("2012-08-10", "meta_data.json\nuser_data"),
        ("2013-04-04", "meta_data.json\nuser_data\npassword"),
        ("2013-10-17", "meta_data.json\nuser_data\npassword\nvendor_data.json"),
        (
            "2015-10-15",
            "meta_data.json\nuser_data\npassword\nvendor_data.json\nnetwork_data.json",
        ),
        (
            "2016-06-30",
            "meta_data.json\nuser_data\npassword\nvendor_data.json\nnetwork_data.json",
        ),
        (
            "2016-10-06",
            "meta_data.json\nuser_data\npassword\nvendor_data.json\nnetwork_data.json\nvendor_data2.json",
        ),
        (
            "latest",
            "meta_data.json\nuser_data\npassword\nvendor_data.json\nnetwork_data.json\nvendor_data2.json",
        ),
    ];
    for (version, listing) in listings {
        let r = s.get_a(&format!("/openstack/{version}")).await;
        assert_eq!(r.text(), listing, "{version}");
        let r2 = s.get_a(&format!("/openstack/{version}/")).await;
        assert_eq!(r2.text(), listing, "{version}/");
        // Every listed document is there, JSON ones as JSON.
        for name in listing.lines() {
            let r = s.get_a(&format!("/openstack/{version}/{name}")).await;
            assert_eq!(r.status, 200, "{version}/{name}");
            if name.ends_with(".json") {
                assert_eq!(r.content_type, "application/json", "{version}/{name}");
                r.json();
            } else {
                assert!(r.content_type.starts_with("text/plain"), "{version}/{name}");
            }
        }
    }

    // meta_data.json: 2012-08-10 against latest.
    let old = s.get_a("/openstack/2012-08-10/meta_data.json").await.json();
    let mut keys: Vec<&String> = old.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "availability_zone",
            "hostname",
            "keys",
            "launch_index",
            "meta",
            "name",
            "public_keys",
            "uuid"
        ]
    );
    let latest = s.get_a("/openstack/latest/meta_data.json").await.json();
    assert_eq!(latest["uuid"], A);
    assert_eq!(latest["hostname"], "web-1");
    assert_eq!(latest["name"], "web 1");
    assert_eq!(latest["launch_index"], 0);
    assert_eq!(latest["availability_zone"], "nova");
    assert_eq!(latest["project_id"], "project-a");
    assert_eq!(latest["meta"], json!({"role": "web"}));
    assert_eq!(
        latest["public_keys"],
        json!({"key-a": "ssh-ed25519 AAAAC3 a@example"})
    );
    assert_eq!(
        latest["keys"],
        json!([{"name": "key-a", "type": "ssh", "data": "ssh-ed25519 AAAAC3 a@example"}])
    );
    assert_eq!(latest["devices"], json!([]));
    assert_eq!(latest["dedicated_cpus"], json!([]));
    assert_eq!(latest["random_seed"].as_str().unwrap().len(), 684);
    assert!(latest.get("admin_pass").is_none());

    // User data decoded.
    let r = s.get_a("/openstack/latest/user_data").await;
    assert_eq!(r.body, b"#!/bin/sh\necho hello\n");

    // Vendor data.
    assert_eq!(
        s.get_a("/openstack/latest/vendor_data.json").await.json(),
        json!({"motd": "welcome"})
    );
    assert_eq!(
        s.get_a("/openstack/latest/vendor_data2.json").await.json(),
        json!({"static": {"motd": "welcome"}})
    );

    // network_data.json for the two ports.
    let net = s.get_a("/openstack/latest/network_data.json").await.json();
    assert_eq!(
        net,
        json!({
            "links": [
                {"id": "tap3b4f1c2d-11", "vif_id": "3b4f1c2d-1111-4222-8333-444455556666",
                 "type": "bridge", "mtu": null, "ethernet_mac_address": "fa:16:3e:11:22:33"},
                {"id": "tap9e8d7c6b-aa", "vif_id": "9e8d7c6b-aaaa-4bbb-8ccc-dddddddddddd",
                 "type": "bridge", "mtu": null, "ethernet_mac_address": "fa:16:3e:44:55:66"}
            ],
            "networks": [
                {"id": "network0", "type": "ipv4_dhcp", "link": "tap3b4f1c2d-11",
                 "network_id": "net-private"},
                {"id": "network1", "type": "ipv6_slaac", "link": "tap9e8d7c6b-aa",
                 "ip_address": "fd00:10::f816:3eff:fe44:5566",
                 "netmask": "ffff:ffff:ffff:ffff::",
                 "routes": [{"network": "::", "netmask": "::", "gateway": "fd00:10::1"}],
                 "network_id": "net-v6",
                 "services": [{"type": "dns", "address": "fd00:10::53"},
                              {"type": "dns", "address": "8.8.8.8"}]}
            ],
            "services": [
                {"type": "dns", "address": "8.8.8.8"},
                {"type": "dns", "address": "fd00:10::53"}
            ]
        })
    );

    // What is not there.
    for path in [
        "/openstack/2012-08-10/password",
        "/openstack/2013-04-04/vendor_data.json",
        "/openstack/2013-10-17/network_data.json",
        "/openstack/2016-06-30/vendor_data2.json",
        "/openstack/2011-01-01",
        "/openstack/2011-01-01/meta_data.json",
        "/openstack/latest/nothing.json",
        "/openstack/latest/meta_data.json/uuid",
        "/openstack/content/0000",
    ] {
        let r = s.get_a(path).await;
        assert_eq!(r.status, 404, "{path}");
        assert!(r.content_type.starts_with("text/plain"), "{path}");
    }
}

#[tokio::test]
async fn ec2_paths_and_listings() {
    let s = serve().await;
    let versions = "1.0\n2007-01-19\n2007-03-01\n2007-08-29\n2007-10-10\n2007-12-15\n\
                    2008-02-01\n2008-09-01\n2009-04-04\nlatest";
    assert_eq!(s.get_a("/").await.text(), versions);
    assert_eq!(s.get_a("/ec2/").await.text(), versions);
    assert_eq!(s.get_a("/latest").await.text(), "meta-data/\nuser-data");
    assert_eq!(s.get_a("/latest/").await.text(), "meta-data/\nuser-data");
    assert_eq!(
        s.get_a("/latest/user-data").await.body,
        b"#!/bin/sh\necho hello\n"
    );
    assert_eq!(
        s.get_a("/2009-04-04/user-data").await.body,
        b"#!/bin/sh\necho hello\n"
    );

    let listing = s.get_a("/latest/meta-data/").await;
    assert_eq!(listing.status, 200);
    assert!(listing.content_type.starts_with("text/plain"));
    assert_eq!(
        listing.text(),
        "ami-id\nami-launch-index\nami-manifest-path\nblock-device-mapping/\nhostname\n\
         instance-action\ninstance-id\ninstance-type\nlocal-hostname\nlocal-ipv4\nplacement/\n\
         public-hostname\npublic-ipv4\npublic-keys/\nreservation-id\nsecurity-groups"
    );
    assert_eq!(s.get_a("/latest/meta-data").await.text(), listing.text());
    assert_eq!(
        s.get_a("/ec2/latest/meta-data/").await.text(),
        listing.text()
    );

    let ami = s.get_a("/latest/meta-data/ami-id").await.text();
    assert!(ami.starts_with("ami-") && ami.len() == 12, "{ami}");
    assert!(ami[4..].chars().all(|c| c.is_ascii_hexdigit()));
    let leaves = [
        ("ami-launch-index", "0"),
        ("ami-manifest-path", "FIXME"),
        ("block-device-mapping/", "ami\nroot"),
        ("block-device-mapping/ami", "vda"),
        ("block-device-mapping/root", "/dev/vda"),
        ("hostname", "web-1"),
        ("instance-action", "none"),
        ("instance-id", "i-0000002a"),
        ("instance-type", "m1.tiny"),
        ("local-hostname", "web-1"),
        ("local-ipv4", "10.0.0.12"),
        ("placement/", "availability-zone"),
        ("placement/availability-zone", "nova"),
        ("public-hostname", "web-1"),
        ("public-ipv4", "172.24.4.20"),
        ("public-keys/", "0=key-a"),
        ("public-keys/0/", "openssh-key"),
        ("public-keys/0/openssh-key", "ssh-ed25519 AAAAC3 a@example"),
        ("reservation-id", "r-a1b2c3d4"),
        ("security-groups", "default"),
    ];
    for (path, want) in leaves {
        let r = s.get_a(&format!("/latest/meta-data/{path}")).await;
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.text(), want, "{path}");
    }

    // An old version has less.
    assert_eq!(
        s.get_a("/1.0/meta-data/").await.text(),
        "ami-id\nami-launch-index\nami-manifest-path\nhostname\ninstance-id\nlocal-ipv4\n\
         public-keys/\nreservation-id\nsecurity-groups"
    );
    for path in [
        "/1.0/meta-data/placement/availability-zone",
        "/2007-08-29/meta-data/block-device-mapping/",
        "/latest/meta-data/nothing",
        "/latest/meta-data/public-keys/1/",
        "/latest/meta-data/public-keys/0/_name",
        "/latest/meta-data/hostname/more",
        "/latest/nothing",
        "/2010-01-01/meta-data/",
        "/nothing",
    ] {
        assert_eq!(s.get_a(path).await.status, 404, "{path}");
    }
    // Dot segments are resolved as Nova resolves them.
    assert_eq!(
        s.get_a("/latest/meta-data/placement/../hostname")
            .await
            .text(),
        "web-1"
    );
    // HEAD answers like GET.
    let r = s
        .send(s.request(
            reqwest::Method::HEAD,
            "/latest/meta-data/hostname",
            A,
            Some("project-a"),
        ))
        .await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn passwords_are_set_once() {
    let s = serve().await;
    let path = "/openstack/latest/password";
    let r = s.get_a(path).await;
    assert_eq!((r.status, r.text()), (200, String::new()));

    // Too large: Nova's limit is 4 × 255 bytes.
    let r = s.post_password(A, "project-a", "x".repeat(1021)).await;
    assert_eq!(r.status, 400);
    assert!(r.text().contains("Request is too large."));
    let r = s.post_password(A, "project-a", "x".repeat(64 * 1024)).await;
    assert_eq!(r.status, 400);
    assert_eq!(s.get_a(path).await.text(), "");

    // What a guest posts: base64 of the password encrypted with its RSA-2048
    // key (344 bytes).
    let posted = format!("{}==", "Q".repeat(342));
    let r = s.post_password(A, "project-a", posted.clone()).await;
    assert_eq!(r.status, 200);
    let r = s.get_a(path).await;
    assert_eq!((r.status, r.text()), (200, posted.clone()));
    assert_eq!(
        s.get_a("/openstack/2013-04-04/password").await.text(),
        posted
    );

    // Set once.
    let r = s.post_password(A, "project-a", "another".into()).await;
    assert_eq!(r.status, 409);
    assert_eq!(s.get_a(path).await.text(), posted);

    // B's password is B's.
    let r = s
        .send(s.request(reqwest::Method::GET, path, B, Some("project-b")))
        .await;
    assert_eq!(r.text(), "");
    let r = s.post_password(B, "project-b", "b-pass".into()).await;
    assert_eq!(r.status, 200);
    assert_eq!(s.get_a(path).await.text(), posted);

    // Not before 2013-04-04; the wrong method elsewhere.
    let r = s
        .send(
            s.request(
                reqwest::Method::POST,
                "/openstack/2012-08-10/password",
                A,
                Some("project-a"),
            )
            .body("x"),
        )
        .await;
    assert_eq!(r.status, 404);
    for (method, path) in [
        (reqwest::Method::POST, "/openstack/latest/meta_data.json"),
        (reqwest::Method::PUT, "/openstack/latest/meta_data.json"),
        (reqwest::Method::DELETE, "/latest/meta-data/hostname"),
        (reqwest::Method::PUT, "/openstack/latest/password"),
    ] {
        let r = s
            .send(
                s.request(method.clone(), path, A, Some("project-a"))
                    .body("x"),
            )
            .await;
        assert_eq!(r.status, 405, "{method} {path}");
    }
}
