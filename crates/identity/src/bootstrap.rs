//! `ferrostack bootstrap`: what the seed's keystone data script creates —
//! tenants, users, roles, assignments, services and endpoints — plus the
//! modern default roles. Idempotent: every object is looked up first, so a
//! second run changes nothing. The catalog lists only the services this
//! deployment serves (`SERVED`); entries an earlier version made for the
//! others (`RETIRED`) are removed.

use crate::service::IdentityService;
use crate::store::assignments::{Assignment, Kind, SYSTEM};
use crate::store::catalog::{Endpoint, Region, Service};
use crate::store::projects::Project;
use crate::store::roles::Role;
use crate::store::users::User;
use crate::store::{self, new_id, DOMAIN_ROOT, NULL_DOMAIN};
use ferrostack_core::Result;
use serde_json::json;

pub const DEFAULT_DOMAIN: &str = "default";
pub const PROJECTS: &[&str] = &["admin", "service", "demo", "invisible_to_admin"];
pub const ROLES: &[&str] = &[
    "admin",
    "member",
    "reader",
    "Member",
    "KeystoneAdmin",
    "KeystoneServiceAdmin",
    "ResellerAdmin",
    // Service-to-service calls (Nova's external events API accepts it).
    "service",
    // Project managers, as Keystone's bootstrap creates since 2024.1.
    "manager",
];
pub const SERVICE_USERS: &[&str] = &["nova", "glance", "swift", "neutron", "cinder", "ceilometer"];

/// One service the catalog lists, with the port and paths of its endpoints.
#[derive(Clone, Copy, Debug)]
pub struct CatalogEntry {
    pub service_type: &'static str,
    pub name: &'static str,
    pub port: u16,
    /// Path of the public and internal endpoints.
    pub path: &'static str,
    pub admin_path: &'static str,
}

/// The services this deployment serves (what `ferrostack all-in-one` runs
/// behind an API port), and so what the catalog lists: a client that finds
/// a service there must be able to reach it. A service that lands later
/// (block storage, metering, …) adds its entry here and leaves `RETIRED`.
pub const SERVED: &[CatalogEntry] = &[
    // The seed's /v2.0 paths: legacy clients use them as is, modern ones
    // discover v3 from the unversioned root. Identity's ports come from
    // `[identity] public_port` / `admin_port`.
    CatalogEntry {
        service_type: "identity",
        name: "keystone",
        port: 5000,
        path: "/v2.0",
        admin_path: "/v2.0",
    },
    CatalogEntry {
        service_type: "compute",
        name: "nova",
        port: 8774,
        path: "/v2.1",
        admin_path: "/v2.1",
    },
    CatalogEntry {
        service_type: "image",
        name: "glance",
        port: 9292,
        path: "",
        admin_path: "",
    },
    CatalogEntry {
        service_type: "network",
        name: "neutron",
        port: 9696,
        path: "",
        admin_path: "",
    },
    // Block storage under its service-types-authority name and the two
    // aliases clients still look for: `volumev3` (cinderclient, older
    // openstackclients) and the seed's own `volume`.
    CatalogEntry {
        service_type: "block-storage",
        name: "cinder",
        port: 8776,
        path: "/v3/$(project_id)s",
        admin_path: "/v3/$(project_id)s",
    },
    CatalogEntry {
        service_type: "volumev3",
        name: "cinderv3",
        port: 8776,
        path: "/v3/$(project_id)s",
        admin_path: "/v3/$(project_id)s",
    },
    CatalogEntry {
        service_type: "volume",
        name: "cinder",
        port: 8776,
        path: "/v3/$(project_id)s",
        admin_path: "/v3/$(project_id)s",
    },
    // The seed's Ceilometer v2 API, today's Gnocchi and Aodh (ferrostack-telemetry).
    CatalogEntry {
        service_type: "metering",
        name: "ceilometer",
        port: 8777,
        path: "",
        admin_path: "",
    },
    CatalogEntry {
        service_type: "metric",
        name: "gnocchi",
        port: 8041,
        path: "",
        admin_path: "",
    },
    // The seed's Swift (ferrostack-object): accounts are `AUTH_<project id>`.
    CatalogEntry {
        service_type: "object-store",
        name: "swift",
        port: 8080,
        path: "/v1/AUTH_%(tenant_id)s",
        admin_path: "/v1",
    },
    CatalogEntry {
        service_type: "alarming",
        name: "aodh",
        port: 8042,
        path: "",
        admin_path: "",
    },
];

/// (type, name) of services an earlier bootstrap registered although
/// nothing served them (clients found them and got connection refused).
/// Bootstrap removes them — only the ones it made itself, recognised by
/// name and description, never an operator's own — so an upgraded cloud's
/// catalog tells the truth too.
pub const RETIRED: &[(&str, &str)] = &[("ec2", "ec2")];

#[derive(Debug, Default)]
pub struct Report {
    pub created: Vec<String>,
    /// Catalog entries for services this deployment does not serve.
    pub removed: Vec<String>,
}

pub async fn run(svc: &IdentityService) -> Result<Report> {
    let mut report = Report::default();
    let db = &svc.db;
    let cfg = &svc.config;

    if store::projects::get(db, DEFAULT_DOMAIN).await?.is_none() {
        store::projects::insert(
            db,
            &Project {
                id: DEFAULT_DOMAIN.into(),
                name: "Default".into(),
                domain_id: DOMAIN_ROOT.into(),
                parent_id: None,
                description: "The default domain".into(),
                enabled: true,
                is_domain: true,
                extra: json!({}),
                tags: vec![],
            },
        )
        .await?;
        report.created.push("domain Default".into());
    }

    let mut project_ids = std::collections::HashMap::new();
    for name in PROJECTS {
        let p = match store::projects::get_by_name(db, DEFAULT_DOMAIN, name, false).await? {
            Some(p) => p,
            None => {
                let p = Project {
                    id: new_id(),
                    name: (*name).into(),
                    domain_id: DEFAULT_DOMAIN.into(),
                    parent_id: Some(DEFAULT_DOMAIN.into()),
                    description: format!("Bootstrap project {name}"),
                    enabled: true,
                    is_domain: false,
                    extra: json!({}),
                    tags: vec![],
                };
                store::projects::insert(db, &p).await?;
                report.created.push(format!("project {name}"));
                p
            }
        };
        project_ids.insert(*name, p.id);
    }

    let mut role_ids = std::collections::HashMap::new();
    let existing = store::roles::list(db).await?;
    for name in ROLES {
        let id = match existing
            .iter()
            .find(|r| r.name == *name && r.domain_id == NULL_DOMAIN)
        {
            Some(r) => r.id.clone(),
            None => {
                let r = Role {
                    id: new_id(),
                    name: (*name).into(),
                    domain_id: NULL_DOMAIN.into(),
                    description: None,
                    options: json!({}),
                    extra: json!({}),
                };
                store::roles::insert(db, &r).await?;
                report.created.push(format!("role {name}"));
                r.id
            }
        };
        role_ids.insert(*name, id);
    }
    // Keystone's default inference: admin ⇒ manager ⇒ member ⇒ reader
    // (admin ⇒ member kept from before `manager` existed). The seed's
    // `Member` is the same role to the policies (oslo matches role names
    // in any case; on MySQL Keystone could not even hold both names), so
    // it implies `reader` too: a `Member` reads its project's resources
    // under the services' reader/member defaults.
    let rules = store::roles::list_implied(db).await?;
    for (a, b) in [
        ("admin", "member"),
        ("member", "reader"),
        ("Member", "reader"),
    ] {
        let (pa, pb) = (role_ids[a].clone(), role_ids[b].clone());
        if !rules.iter().any(|(x, y)| x == &pa && y == &pb) {
            store::roles::add_implied(db, &pa, &pb).await?;
        }
    }

    let user = |name: &'static str, password: String, default_project: Option<&'static str>| {
        let project_ids = project_ids.clone();
        async move {
            match store::users::get_by_name(db, DEFAULT_DOMAIN, name).await? {
                Some(u) => Ok::<_, ferrostack_core::Error>((u.id, false)),
                None => {
                    let u = User {
                        id: new_id(),
                        name: name.into(),
                        domain_id: DEFAULT_DOMAIN.into(),
                        enabled: true,
                        default_project_id: default_project.map(|p| project_ids[p].clone()),
                        password_hash: Some(svc.hash_password(&password).await?),
                        password_expires_at: None,
                        options: json!({}),
                        extra: json!({"email": format!("{name}@domain.com")}),
                    };
                    store::users::insert(db, &u).await?;
                    Ok((u.id, true))
                }
            }
        }
    };
    let (admin_id, c) = user("admin", cfg.identity.admin_password.clone(), Some("admin")).await?;
    if c {
        report.created.push("user admin".into());
    }
    let (demo_id, c) = user("demo", cfg.identity.demo_password.clone(), Some("demo")).await?;
    if c {
        report.created.push("user demo".into());
    }
    let mut grants: Vec<(String, &str, &str)> = vec![
        (admin_id.clone(), "admin", "admin"),
        (admin_id.clone(), "admin", "demo"),
        (admin_id.clone(), "KeystoneAdmin", "admin"),
        (admin_id.clone(), "KeystoneServiceAdmin", "admin"),
        (demo_id.clone(), "Member", "demo"),
        (demo_id.clone(), "Member", "invisible_to_admin"),
        (demo_id.clone(), "member", "demo"),
        (demo_id.clone(), "member", "invisible_to_admin"),
    ];
    for name in SERVICE_USERS {
        let (id, c) = user(name, cfg.identity.service_password.clone(), Some("service")).await?;
        if c {
            report.created.push(format!("user {name}"));
        }
        grants.push((id.clone(), "admin", "service"));
        if *name == "nova" {
            grants.push((id, "ResellerAdmin", "service"));
        }
    }
    for (user_id, role, project) in grants {
        store::assignments::grant(
            db,
            &Assignment {
                kind: Kind::UserProject,
                actor_id: user_id,
                target_id: project_ids[project].clone(),
                role_id: role_ids[role].clone(),
                inherited: false,
            },
        )
        .await?;
    }
    // As `keystone-manage bootstrap`: the admin user is also system admin.
    store::assignments::grant(
        db,
        &Assignment {
            kind: Kind::UserSystem,
            actor_id: admin_id,
            target_id: SYSTEM.into(),
            role_id: role_ids["admin"].clone(),
            inherited: false,
        },
    )
    .await?;

    let region = cfg.common.region.clone();
    if store::catalog::get_region(db, &region).await?.is_none() {
        store::catalog::insert_region(
            db,
            &Region {
                id: region.clone(),
                description: String::new(),
                parent_region_id: None,
                extra: json!({}),
            },
        )
        .await?;
        report.created.push(format!("region {region}"));
    }
    register_served(svc, &region, &mut report).await?;
    retire_unserved(svc, &mut report).await?;
    svc.invalidate_catalog();
    Ok(report)
}

/// Register each `SERVED` service that has no entry of its type yet, with a
/// public, internal and admin endpoint in `region`.
async fn register_served(svc: &IdentityService, region: &str, report: &mut Report) -> Result<()> {
    let db = &svc.db;
    let cfg = &svc.config;
    let services = store::catalog::list_services(db).await?;
    let host = &cfg.common.public_host;
    for entry in SERVED {
        let stype = entry.service_type;
        if services.iter().any(|s| s.service_type == stype) {
            continue;
        }
        let s = Service {
            id: new_id(),
            service_type: stype.into(),
            enabled: true,
            extra: json!({"name": entry.name, "description": bootstrap_description(stype)}),
        };
        store::catalog::insert_service(db, &s).await?;
        for iface in ["public", "internal", "admin"] {
            let (port, path) = match (stype, iface) {
                ("identity", "admin") => (cfg.identity.admin_port, entry.admin_path),
                ("identity", _) => (cfg.identity.public_port, entry.path),
                ("object-store", "admin") => (cfg.object.port, entry.admin_path),
                ("object-store", _) => (cfg.object.port, entry.path),
                (_, "admin") => (entry.port, entry.admin_path),
                _ => (entry.port, entry.path),
            };
            store::catalog::insert_endpoint(
                db,
                &Endpoint {
                    id: new_id(),
                    service_id: s.id.clone(),
                    interface: iface.into(),
                    url: format!("http://{host}:{port}{path}"),
                    region_id: Some(region.to_owned()),
                    enabled: true,
                    extra: json!({}),
                },
            )
            .await?;
        }
        report
            .created
            .push(format!("service {stype} with endpoints"));
    }
    Ok(())
}

/// The description bootstrap gives the services it registers.
fn bootstrap_description(service_type: &str) -> String {
    format!("OpenStack {service_type} service")
}

/// Remove the `RETIRED` services (and their endpoints) an earlier bootstrap
/// registered. Idempotent; runs in every bootstrap and at every all-in-one
/// start, so upgrading is enough. Returns what it removed in `report`.
pub async fn retire_unserved(svc: &IdentityService, report: &mut Report) -> Result<()> {
    let mut removed = false;
    for s in store::catalog::list_services(&svc.db).await? {
        let made_by_bootstrap = RETIRED.iter().any(|(stype, name)| {
            s.service_type == *stype
                && s.extra["name"] == *name
                && s.extra["description"] == bootstrap_description(stype).as_str()
        });
        if made_by_bootstrap {
            store::catalog::delete_service(&svc.db, &s.id).await?;
            tracing::info!(service = %s.service_type, "removed an unserved service from the catalog");
            report
                .removed
                .push(format!("service {} with endpoints", s.service_type));
            removed = true;
        }
    }
    if removed {
        svc.invalidate_catalog();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_is_served_or_retired_never_both() {
        for entry in SERVED {
            assert!(
                !RETIRED.iter().any(|(t, _)| *t == entry.service_type),
                "{} is both served and retired",
                entry.service_type
            );
        }
    }
}
