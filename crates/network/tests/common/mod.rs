//! What the network API tests share beside the testkit: the network
//! service on a given database behind testkit's identity, and its client.
// Each test file uses its own part of this module.
#![allow(dead_code)]

use ferrostack_db::Db;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;

pub struct Cloud {
    pub kit: ferrostack_testkit::TestCloud,
    /// `http://127.0.0.1:PORT` of the network API.
    pub net: String,
    pub http: reqwest::Client,
}

/// The network service (and its agents' RPC) on `db`, behind `kit`'s identity.
pub async fn serve_network(kit: ferrostack_testkit::TestCloud, db: Db) -> Cloud {
    db.migrate(ferrostack_network::store::MIGRATIONS)
        .await
        .unwrap();
    let svc = ferrostack_network::NetworkService::new(db, kit.config.clone(), kit.bus.clone())
        .await
        .unwrap();
    ferrostack_network::serve_agents(svc.clone()).await.unwrap();
    let net = ferrostack_testkit::serve(ferrostack_network::api::router(
        svc,
        kit.validator.clone(),
        &kit.auth_uri(),
    ))
    .await;
    Cloud {
        net,
        http: reqwest::Client::new(),
        kit,
    }
}

impl Cloud {
    pub async fn token(&self, user: &str, project: &str) -> String {
        self.kit.token(user, project).await
    }

    pub async fn call(
        &self,
        m: Method,
        path: &str,
        tok: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.api().call(m, path, tok, body).await
    }

    pub async fn ok(&self, m: Method, path: &str, tok: &str, body: Option<Value>) -> Value {
        self.api().ok(m, path, tok, body).await
    }

    /// The network API under `/v2.0`, through testkit's client.
    fn api(&self) -> ferrostack_testkit::Api {
        ferrostack_testkit::Api {
            base: format!("{}/v2.0", self.net),
            http: self.http.clone(),
        }
    }

    /// A network with a /24 subnet; its id.
    pub async fn network(&self, tok: &str, name: &str) -> String {
        let net = self
            .ok(
                Method::POST,
                "/networks",
                tok,
                Some(json!({"network": {"name": name}})),
            )
            .await;
        let id = net["network"]["id"].as_str().unwrap().to_owned();
        self.ok(
            Method::POST,
            "/subnets",
            tok,
            Some(json!({"subnet": {"network_id": id, "ip_version": 4, "cidr": "10.9.0.0/24"}})),
        )
        .await;
        id
    }
}

/// Neutron's error type of an answer.
pub fn error_type(v: &Value) -> &str {
    v["NeutronError"]["type"].as_str().unwrap_or("")
}

/// A SQLite network database whose pool has exactly one connection: a code
/// path that waits for a second connection while holding one fails at once
/// (2 s acquire timeout) instead of deadlocking only under load.
pub async fn one_connection_db(dir: &std::path::Path) -> Db {
    let url = format!("sqlite://{}/network-1conn.sqlite?mode=rwc", dir.display());
    Db::connect_with(&url, Some(1), Duration::from_secs(2))
        .await
        .expect("sqlite")
}
