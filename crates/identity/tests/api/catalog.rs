//! The service catalog bootstrap keeps.

use crate::cloud::*;
use serde_json::json;

/// The catalog lists only services this deployment serves; entries an
/// earlier bootstrap made for the others are removed by the next one.
#[tokio::test]
async fn catalog_lists_only_served_services() {
    use ferrostack_identity::store::catalog::{self, Endpoint, Service};
    let c = sqlite_cloud("catalog", |_| {}).await;
    let types = |services: &[Service]| -> Vec<String> {
        let mut t: Vec<String> = services.iter().map(|s| s.service_type.clone()).collect();
        t.sort();
        t
    };
    let unserved = ["ec2"];
    let served = [
        "alarming",
        "block-storage",
        "compute",
        "identity",
        "image",
        "metering",
        "metric",
        "network",
        "object-store",
        "volume",
        "volumev3",
    ];
    let listed = types(&catalog::list_services(&c.svc.db).await.unwrap());
    assert_eq!(listed, served);

    // An old bootstrap's entries (as it wrote them), and an operator's own
    // object store, which is not bootstrap's to remove.
    for (stype, name) in [("ec2", "ec2")] {
        let s = Service {
            id: ferrostack_identity::store::new_id(),
            service_type: stype.into(),
            enabled: true,
            extra: json!({"name": name, "description": format!("OpenStack {stype} service")}),
        };
        catalog::insert_service(&c.svc.db, &s).await.unwrap();
        catalog::insert_endpoint(
            &c.svc.db,
            &Endpoint {
                id: ferrostack_identity::store::new_id(),
                service_id: s.id.clone(),
                interface: "public".into(),
                url: "http://127.0.0.1:8776/v3/$(project_id)s".into(),
                region_id: Some("RegionOne".into()),
                enabled: true,
                extra: json!({}),
            },
        )
        .await
        .unwrap();
    }
    let operators = Service {
        id: ferrostack_identity::store::new_id(),
        service_type: "object-store".into(),
        enabled: true,
        extra: json!({"name": "swift", "description": "the storage cluster in rack 4"}),
    };
    catalog::insert_service(&c.svc.db, &operators)
        .await
        .unwrap();
    c.svc.invalidate_catalog();

    for run in 0..2 {
        let report = ferrostack_identity::bootstrap::run(&c.svc).await.unwrap();
        assert!(report.created.is_empty(), "{:?}", report.created);
        assert_eq!(
            report.removed.len(),
            if run == 0 { 1 } else { 0 },
            "{:?}",
            report.removed
        );
    }
    let services = catalog::list_services(&c.svc.db).await.unwrap();
    let listed = types(&services);
    let mut expected = served.to_vec();
    expected.push("object-store");
    expected.sort();
    assert_eq!(listed, expected);
    assert!(services.iter().any(|s| s.id == operators.id));
    let endpoints = catalog::list_endpoints(&c.svc.db).await.unwrap();
    assert!(endpoints
        .iter()
        .all(|e| services.iter().any(|s| s.id == e.service_id)));

    // What a token's catalog shows.
    let (_, _, body) = c.token("admin", "admin_pass", Some("admin")).await;
    let in_token: Vec<&str> = body["token"]["catalog"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["type"].as_str().unwrap())
        .collect();
    for t in unserved {
        assert!(!in_token.contains(&t), "{t} in {in_token:?}");
    }
    assert!(in_token.contains(&"image") && in_token.contains(&"network"));
    for t in ["block-storage", "volumev3", "volume"] {
        assert!(in_token.contains(&t), "{t} in {in_token:?}");
    }
}
