//! The identity API end to end, in-process. Each module holds one resource
//! or concern: its walk runs as a named test on SQLite, and
//! `every_walk_on_every_database` runs all the walks in sequence on every
//! database engine that is reachable (SQLite always; MariaDB and
//! PostgreSQL on machines that run them).

mod app_creds;
mod assignments;
mod catalog;
mod cloud;
mod discovery;
mod domain_config;
mod errors;
mod openapi;
mod passwords;
mod policy;
mod projects;
mod semantics;
mod service_tokens;
mod tokens;
mod users;
mod v2;

/// One cloud per engine, every walk on it in turn: the walks name what they
/// create apart, and `projects` runs first, as it counts the seed's projects.
#[tokio::test]
async fn every_walk_on_every_database() {
    for (i, db) in ferrostack_db::testing::test_databases("identity")
        .await
        .into_iter()
        .enumerate()
    {
        let backend = db.backend;
        let c = cloud::start(db, &format!("db{i}")).await;
        eprintln!("identity API against {backend:?}");
        projects::walk(&c).await;
        discovery::walk(&c).await;
        errors::walk(&c).await;
        tokens::walk(&c).await;
        users::walk(&c).await;
        assignments::walk(&c).await;
        passwords::walk(&c).await;
        app_creds::walk(&c).await;
        v2::walk(&c).await;
        service_tokens::walk(&c).await;
        domain_config::walk(&c).await;
    }
}
