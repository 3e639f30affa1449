//! Lists read page by page from the database: every page walk gives
//! exactly the items of the unpaged list, in its order, whatever the
//! filters, the caller's visibility and the direction.

use super::{admin_network, Cloud};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::HashSet;

/// Ports of two projects interleaved on their networks, bulk-created in
/// pairs (a bulk insert can give rows the same creation time).
async fn ports_of_two_projects(c: &Cloud) -> (String, String, String, String) {
    let a = admin_network(c).await;
    let demo = c.token("demo", "demo").await;
    let demo_net = c
        .ok(
            Method::POST,
            "/networks",
            &demo,
            Some(json!({"network": {"name": "demo_net"}})),
        )
        .await["network"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    c.ok(
        Method::POST,
        "/subnets",
        &demo,
        Some(json!({"subnet": {"network_id": demo_net, "cidr": "10.9.0.0/24", "ip_version": 4}})),
    )
    .await;
    for i in 0..12 {
        let (tok, net) = if i % 3 == 0 {
            (&demo, &demo_net)
        } else {
            (&a.admin, &a.net_id)
        };
        let ports = json!({"ports": [
            {"network_id": net, "name": format!("p{i}a"), "device_id": format!("dev{}", i % 4)},
            {"network_id": net, "name": format!("p{i}b")},
        ]});
        c.ok(Method::POST, "/ports", tok, Some(ports)).await;
    }
    (a.admin, demo, a.net_id, demo_net)
}

fn ids(v: &Value, plural: &str) -> Vec<String> {
    v[plural]
        .as_array()
        .unwrap_or_else(|| panic!("no {plural} in {v}"))
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Follows `next` links from `first` (a path with its query) to the end.
async fn walk_pages(c: &Cloud, tok: &str, first: &str, plural: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut path = first.to_owned();
    for _ in 0..100 {
        let v = c.ok(Method::GET, &path, tok, None).await;
        out.extend(ids(&v, plural));
        let next = v[format!("{plural}_links")]
            .as_array()
            .and_then(|l| l.iter().find(|l| l["rel"] == "next"))
            .map(|l| l["href"].as_str().unwrap().to_owned());
        match next {
            Some(href) => path = href[href.find("/v2.0").unwrap() + 5..].to_owned(),
            None => return out,
        }
    }
    panic!("more than 100 pages from {first}");
}

pub async fn paged_lists(c: &Cloud) {
    let (admin, demo, admin_net, demo_net) = ports_of_two_projects(c).await;
    for (tok, filter) in [
        (&admin, String::new()),
        (&demo, String::new()),
        (&admin, format!("network_id={admin_net}&")),
        (&admin, format!("network_id={demo_net}&")),
        (&admin, "device_id=dev1&".to_owned()),
        (&demo, "device_id=dev0&".to_owned()),
        (&admin, "name=p4b&".to_owned()),
    ] {
        let all = ids(
            &c.ok(Method::GET, &format!("/ports?{filter}"), tok, None)
                .await,
            "ports",
        );
        assert!(!all.is_empty(), "{filter}");
        let unique: HashSet<&String> = all.iter().collect();
        assert_eq!(unique.len(), all.len(), "{filter}: an item listed twice");
        for limit in [1, 5, 7, 500] {
            let paged = walk_pages(c, tok, &format!("/ports?{filter}limit={limit}"), "ports").await;
            assert_eq!(paged, all, "{filter} limit={limit}");
        }
        let mut by_id = all.clone();
        by_id.sort();
        let paged = walk_pages(
            c,
            tok,
            &format!("/ports?{filter}limit=4&sort_key=id&sort_dir=asc"),
            "ports",
        )
        .await;
        assert_eq!(paged, by_id, "{filter} by id");
        by_id.reverse();
        let paged = walk_pages(
            c,
            tok,
            &format!("/ports?{filter}limit=4&sort_key=id&sort_dir=desc"),
            "ports",
        )
        .await;
        assert_eq!(paged, by_id, "{filter} by id, descending");
    }
    demo_sees_only_its_ports(c, &admin, &demo).await;
    previous_pages_and_markers(c, &admin).await;
    narrowed_by_address_and_project(c, &admin).await;
    rules_of_one_group(c, &demo).await;
}

async fn demo_sees_only_its_ports(c: &Cloud, admin: &str, demo: &str) {
    let theirs = walk_pages(c, demo, "/ports?limit=3", "ports").await;
    let all = c.ok(Method::GET, "/ports", admin, None).await;
    let project = c.kit.project_of(demo).await;
    let expected: Vec<String> = all["ports"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["project_id"] == project.as_str())
        .map(|p| p["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(theirs, expected);
    assert_eq!(theirs.len(), 8, "4 bulk creates of 2 ports");
}

async fn previous_pages_and_markers(c: &Cloud, admin: &str) {
    let all = ids(&c.ok(Method::GET, "/ports", admin, None).await, "ports");
    let page = c
        .ok(
            Method::GET,
            &format!("/ports?limit=3&marker={}", all[5]),
            admin,
            None,
        )
        .await;
    assert_eq!(ids(&page, "ports"), all[6..9].to_vec());
    let prev = page["ports_links"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["rel"] == "previous")
        .expect("a previous link after a marker")["href"]
        .as_str()
        .unwrap()
        .to_owned();
    let prev = c
        .ok(
            Method::GET,
            &prev[prev.find("/v2.0").unwrap() + 5..],
            admin,
            None,
        )
        .await;
    assert_eq!(
        ids(&prev, "ports"),
        all[3..6].to_vec(),
        "the 3 before the page"
    );
    let (st, v) = c
        .call(
            Method::GET,
            "/ports?limit=3&marker=no-such-port",
            admin,
            None,
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{v}");
    assert!(v.to_string().contains("Marker no-such-port"), "{v}");
    let (st, v) = c.call(Method::GET, "/ports?limit=x", admin, None).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
}

async fn narrowed_by_address_and_project(c: &Cloud, admin: &str) {
    let all = c.ok(Method::GET, "/ports", admin, None).await;
    let port = &all["ports"][4];
    let ip = port["fixed_ips"][0]["ip_address"].as_str().unwrap();
    for query in [
        format!("fixed_ips=ip_address={ip}"),
        format!("fixed_ips={ip}&limit=2"),
    ] {
        let v = c
            .ok(Method::GET, &format!("/ports?{query}"), admin, None)
            .await;
        let want: Vec<String> = all["ports"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| {
                p["fixed_ips"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|f| f["ip_address"] == ip)
            })
            .map(|p| p["id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(ids(&v, "ports"), want, "{query}");
    }
    let project = port["project_id"].as_str().unwrap();
    for key in ["project_id", "tenant_id"] {
        let v = c
            .ok(
                Method::GET,
                &format!("/ports?{key}={project}&limit=1000"),
                admin,
                None,
            )
            .await;
        let got = ids(&v, "ports");
        assert!(got.contains(&port["id"].as_str().unwrap().to_owned()));
        assert!(v["ports"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["project_id"] == project));
    }
}

async fn rules_of_one_group(c: &Cloud, demo: &str) {
    let groups = c
        .ok(Method::GET, "/security-groups?name=default", demo, None)
        .await;
    let group = &groups["security_groups"][0];
    let gid = group["id"].as_str().unwrap();
    let rules = c
        .ok(
            Method::GET,
            &format!("/security-group-rules?security_group_id={gid}&limit=2"),
            demo,
            None,
        )
        .await;
    assert_eq!(rules["security_group_rules"].as_array().unwrap().len(), 2);
    let all = walk_pages(
        c,
        demo,
        &format!("/security-group-rules?security_group_id={gid}&limit=3"),
        "security_group_rules",
    )
    .await;
    let embedded: Vec<String> = group["security_group_rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(all, embedded, "the group's rules, listed or embedded");
    assert_eq!(all.len(), 4, "the default group's four rules");
}
