//! The identity service layer: authentication, scoping, role resolution,
//! token issue/validation/revocation and the catalog. Handlers in `api/`
//! call into this; it calls the store.

mod authenticate;

use crate::auth_request::{DomainRef, ScopeRequest, UserRef};
use crate::store::{
    self, assignments::Kind, projects::Project, revocations::RevocationEvent, users::User,
};
use crate::token::{KeyRepository, TokenPayload};
use ferrostack_bus::SharedBus;
use ferrostack_core::auth::{AccessRule, AuthContext, TokenValidator};
use ferrostack_core::config::Config;
use ferrostack_core::policy::Policy;
use ferrostack_core::time::iso_micros;
use ferrostack_core::{Error, Result};
use ferrostack_db::Db;
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, RwLock};

pub struct IdentityService {
    pub db: Db,
    pub keys: KeyRepository,
    pub config: Config,
    pub policy: Policy,
    pub bus: SharedBus,
    revocations: RwLock<Vec<RevocationEvent>>,
    /// Serialises revocation writes with the periodic reload, so a reload
    /// never drops an event written while it ran.
    revocation_lock: tokio::sync::Mutex<()>,
    catalog: RwLock<Option<Arc<Vec<CatalogService>>>>,
}

#[derive(Clone, Debug)]
pub struct CatalogService {
    pub id: String,
    pub service_type: String,
    pub name: String,
    /// (id, interface, region, url template)
    pub endpoints: Vec<(String, String, Option<String>, String)>,
}

/// The scope a token is for.
#[derive(Clone, Debug)]
pub enum Scope {
    Unscoped,
    Project(Project, Project),
    Domain(Project),
    System,
}

pub fn now_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

fn micros_to_iso(us: i64) -> String {
    iso_micros(chrono::DateTime::from_timestamp_micros(us).unwrap_or_default())
}

pub fn unauthorized() -> Error {
    Error::Unauthorized("The request you have made requires authentication.".into())
}

impl IdentityService {
    pub async fn new(db: Db, config: Config, bus: SharedBus) -> Result<Arc<Self>> {
        let keys = KeyRepository::open(&config.key_repository()).map_err(Error::Internal)?;
        let policy = crate::policy::load(&config)?;
        let svc = Arc::new(IdentityService {
            db,
            keys,
            config,
            policy,
            bus,
            revocations: RwLock::new(Vec::new()),
            revocation_lock: tokio::sync::Mutex::new(()),
            catalog: RwLock::new(None),
        });
        svc.reload_revocations().await?;
        Ok(svc)
    }

    /// Start the periodic revocation reload (for other controllers' events).
    pub fn spawn_background(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        let every = std::time::Duration::from_secs(self.config.identity.revocation_refresh.max(1));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(svc) = weak.upgrade() else { break };
                if let Err(e) = svc.reload_revocations().await {
                    tracing::warn!(error = %e, "revocation reload failed");
                }
                let _ = svc.keys.reload();
            }
        });
    }

    pub async fn reload_revocations(&self) -> Result<()> {
        let _guard = self.revocation_lock.lock().await;
        let horizon = now_micros() - self.config.identity.token_expiration * 1_000_000 - 60_000_000;
        store::revocations::prune(&self.db, horizon).await?;
        let events = store::revocations::list_since(&self.db, horizon).await?;
        *self.revocations.write().unwrap() = events;
        Ok(())
    }

    /// Record a revocation event: every matching token issued until now is invalid.
    pub async fn revoke(&self, mut ev: RevocationEvent) -> Result<()> {
        let _guard = self.revocation_lock.lock().await;
        let now = now_micros();
        ev.issued_before = now;
        ev.revoked_at = now;
        store::revocations::insert(&self.db, &ev).await?;
        self.revocations.write().unwrap().push(ev);
        Ok(())
    }

    pub async fn revoke_user(&self, user_id: &str) -> Result<()> {
        self.revoke(RevocationEvent {
            user_id: Some(user_id.into()),
            ..Default::default()
        })
        .await
    }

    fn is_revoked(&self, p: &TokenPayload) -> bool {
        let events = self.revocations.read().unwrap();
        events.iter().any(|ev| {
            p.i <= ev.issued_before
                && ev.audit_id.as_ref().is_none_or(|a| p.a.first() == Some(a))
                && ev.user_id.as_ref().is_none_or(|u| &p.u.0 == u)
                && ev
                    .project_id
                    .as_ref()
                    .is_none_or(|pid| p.p.as_ref().is_some_and(|pp| &pp.0 == pid))
                && ev.domain_id.as_ref().is_none_or(|d| {
                    &p.u.2 == d
                        || p.p.as_ref().is_some_and(|pp| &pp.2 == d)
                        || p.d.as_ref().is_some_and(|dd| &dd.0 == d)
                })
                && ev
                    .role_id
                    .as_ref()
                    .is_none_or(|r| p.r.iter().any(|(id, _)| id == r))
                && ev
                    .app_cred_id
                    .as_ref()
                    .is_none_or(|c| p.c.as_ref() == Some(c))
        })
    }

    /// Decrypt, check expiry and revocation. 404 for a bad subject token.
    pub fn validate_payload(&self, token: &str) -> Result<TokenPayload> {
        let p = self.keys.decrypt(token)?;
        if p.e <= now_micros() || self.is_revoked(&p) {
            return Err(Error::NotFound(
                "The token is invalid or has expired.".into(),
            ));
        }
        Ok(p)
    }

    pub fn context_of(&self, p: &TokenPayload) -> AuthContext {
        AuthContext {
            user_id: p.u.0.clone(),
            user_name: p.u.1.clone(),
            user_domain_id: p.u.2.clone(),
            user_domain_name: p.u.3.clone(),
            project_id: p.p.as_ref().map(|x| x.0.clone()),
            project_name: p.p.as_ref().map(|x| x.1.clone()),
            project_domain_id: p.p.as_ref().map(|x| x.2.clone()),
            project_domain_name: p.p.as_ref().map(|x| x.3.clone()),
            domain_id: p.d.as_ref().map(|x| x.0.clone()),
            domain_name: p.d.as_ref().map(|x| x.1.clone()),
            system_scope: p.s,
            roles: p.roles(),
            methods: p.m.clone(),
            audit_ids: p.a.clone(),
            issued_at: micros_to_iso(p.i),
            expires_at: micros_to_iso(p.e),
            application_credential_id: p.c.clone(),
            access_rules: p.ar.as_ref().map(|rules| {
                rules
                    .iter()
                    .map(|(service, path, method)| AccessRule {
                        service: service.clone(),
                        path: path.clone(),
                        method: method.clone(),
                    })
                    .collect()
            }),
            is_admin_project: false,
            token: String::new(),
        }
    }

    // ----- passwords -----

    /// Hash a password or secret (`password::hash`, off the runtime).
    pub async fn hash_password(&self, password: &str) -> Result<String> {
        let cost = self.config.identity.bcrypt_cost;
        let pw = password.to_owned();
        tokio::task::spawn_blocking(move || crate::password::hash(&pw, cost))
            .await
            .map_err(Error::internal)?
            .map_err(Error::Internal)
    }

    /// Check a password or secret against its hash (off the runtime).
    pub async fn verify_password(&self, password: &str, hash: &str) -> bool {
        let pw = password.to_owned();
        let hash = hash.to_owned();
        tokio::task::spawn_blocking(move || crate::password::verify(&pw, &hash))
            .await
            .unwrap_or(false)
    }

    // ----- lookups -----

    pub async fn domain(&self, id: &str) -> Result<Project> {
        match store::projects::get(&self.db, id).await? {
            Some(p) if p.is_domain => Ok(p),
            _ => Err(Error::not_found("domain", id)),
        }
    }

    pub async fn project(&self, id: &str) -> Result<Project> {
        match store::projects::get(&self.db, id).await? {
            Some(p) if !p.is_domain => Ok(p),
            _ => Err(Error::not_found("project", id)),
        }
    }

    pub async fn user(&self, id: &str) -> Result<User> {
        store::users::get(&self.db, id)
            .await?
            .ok_or_else(|| Error::not_found("user", id))
    }

    /// A `{"id": …}` or `{"name": …}` domain reference from an auth request.
    async fn domain_ref(&self, v: &DomainRef, field: &str) -> Result<Project> {
        if let Some(id) = &v.id {
            self.domain(id).await.map_err(|_| unauthorized())
        } else if let Some(name) = &v.name {
            store::projects::get_by_name(&self.db, "", name, true)
                .await?
                .ok_or_else(unauthorized)
        } else {
            Err(Error::BadRequest(format!(
                "Invalid input for field '{field}': a domain needs 'id' or 'name'."
            )))
        }
    }

    // ----- roles -----

    /// Expand role ids through the inference rules.
    async fn expand_implied(&self, ids: BTreeSet<String>) -> Result<BTreeSet<String>> {
        let rules = store::roles::list_implied(&self.db).await?;
        let mut out = ids.clone();
        let mut frontier: Vec<String> = ids.into_iter().collect();
        while let Some(r) = frontier.pop() {
            for (prior, implied) in &rules {
                if prior == &r && out.insert(implied.clone()) {
                    frontier.push(implied.clone());
                }
            }
        }
        Ok(out)
    }

    /// The project's ancestors, nearest first.
    pub async fn ancestors(&self, p: &Project) -> Result<Vec<Project>> {
        let mut out = Vec::new();
        let mut cur = p.parent_id.clone();
        while let Some(id) = cur {
            if id == p.domain_id || out.len() > 32 {
                break;
            }
            match store::projects::get(&self.db, &id).await? {
                Some(pp) if !pp.is_domain => {
                    cur = pp.parent_id.clone();
                    out.push(pp);
                }
                _ => break,
            }
        }
        Ok(out)
    }

    /// Role ids the user holds on a scope: direct, through groups, inherited
    /// from the domain and parent projects; without inference expansion.
    pub async fn direct_role_ids(&self, user_id: &str, scope: &Scope) -> Result<BTreeSet<String>> {
        let all = self.actor_assignments(user_id).await?;
        self.role_ids_in(&all, scope).await
    }

    /// The assignments of a user and of its groups.
    pub async fn actor_assignments(
        &self,
        user_id: &str,
    ) -> Result<Vec<store::assignments::Assignment>> {
        let mut actors = vec![user_id.to_owned()];
        actors.extend(
            store::groups::list_for_user(&self.db, user_id)
                .await?
                .into_iter()
                .map(|g| g.id),
        );
        store::assignments::list_for_actors(&self.db, &actors).await
    }

    /// The role ids `all` (one user's assignments) give on a scope.
    pub async fn role_ids_in(
        &self,
        all: &[store::assignments::Assignment],
        scope: &Scope,
    ) -> Result<BTreeSet<String>> {
        let mut ids = BTreeSet::new();
        match scope {
            Scope::Unscoped => {}
            Scope::Project(p, _) => {
                let ancestors: Vec<String> =
                    self.ancestors(p).await?.into_iter().map(|a| a.id).collect();
                for a in all {
                    let hit = match a.kind {
                        Kind::UserProject | Kind::GroupProject => {
                            (a.target_id == p.id && !a.inherited)
                                || (a.inherited && ancestors.contains(&a.target_id))
                        }
                        Kind::UserDomain | Kind::GroupDomain => {
                            a.inherited && a.target_id == p.domain_id
                        }
                        _ => false,
                    };
                    if hit {
                        ids.insert(a.role_id.clone());
                    }
                }
            }
            Scope::Domain(d) => {
                for a in all {
                    if matches!(a.kind, Kind::UserDomain | Kind::GroupDomain)
                        && a.target_id == d.id
                        && !a.inherited
                    {
                        ids.insert(a.role_id.clone());
                    }
                }
            }
            Scope::System => {
                for a in all {
                    if matches!(a.kind, Kind::UserSystem | Kind::GroupSystem) {
                        ids.insert(a.role_id.clone());
                    }
                }
            }
        }
        Ok(ids)
    }

    /// Effective roles (with implied ones) as (id, name), sorted by name.
    pub async fn effective_roles(
        &self,
        user_id: &str,
        scope: &Scope,
    ) -> Result<Vec<(String, String)>> {
        let direct = self.direct_role_ids(user_id, scope).await?;
        self.role_pairs(self.expand_implied(direct).await?).await
    }

    async fn role_pairs(&self, ids: BTreeSet<String>) -> Result<Vec<(String, String)>> {
        let roles = store::roles::list(&self.db).await?;
        let mut out: Vec<(String, String)> = roles
            .into_iter()
            .filter(|r| ids.contains(&r.id) && r.domain().is_none())
            .map(|r| (r.id, r.name))
            .collect();
        out.sort_by(|a, b| a.1.cmp(&b.1));
        Ok(out)
    }

    async fn user_from_ref(&self, u: &UserRef, field: &str) -> Result<User> {
        let user = if let Some(id) = &u.id {
            store::users::get(&self.db, id).await?
        } else if let Some(name) = &u.name {
            let dom = u.domain.as_ref().ok_or_else(|| {
                Error::BadRequest(format!(
                    "Invalid input for field '{field}/domain': a user given by name needs a domain"
                ))
            })?;
            let dom = self.domain_ref(dom, &format!("{field}/domain")).await?;
            store::users::get_by_name(&self.db, &dom.id, name).await?
        } else {
            return Err(Error::BadRequest(format!(
                "Invalid input for field '{field}': 'id' or 'name' is required"
            )));
        };
        user.ok_or_else(unauthorized)
    }

    async fn scope_of_payload(&self, p: &TokenPayload) -> Result<Scope> {
        Ok(if let Some(pp) = &p.p {
            let project = self.project(&pp.0).await.map_err(|_| unauthorized())?;
            let domain = self.domain(&project.domain_id).await?;
            Scope::Project(project, domain)
        } else if let Some(d) = &p.d {
            Scope::Domain(self.domain(&d.0).await.map_err(|_| unauthorized())?)
        } else if p.s {
            Scope::System
        } else {
            Scope::Unscoped
        })
    }

    async fn requested_scope(&self, scope: Option<&ScopeRequest>, user: &User) -> Result<Scope> {
        let Some(scope) = scope else {
            // Keystone scopes to the default project when the user may use it.
            if let Some(pid) = &user.default_project_id {
                if let Ok(p) = self.project(pid).await {
                    if p.enabled {
                        let d = self.domain(&p.domain_id).await?;
                        let s = Scope::Project(p, d);
                        if !self.direct_role_ids(&user.id, &s).await?.is_empty() {
                            return Ok(s);
                        }
                    }
                }
            }
            return Ok(Scope::Unscoped);
        };
        let scope = match scope {
            ScopeRequest::Named(name) if name == "unscoped" => return Ok(Scope::Unscoped),
            ScopeRequest::Named(other) => {
                return Err(Error::BadRequest(format!(
                    "Invalid input for field 'scope': '{other}' is not 'unscoped' or an object"
                )))
            }
            ScopeRequest::Target(t) => t,
        };
        if let Some(p) = &scope.project {
            let project = if let Some(id) = &p.id {
                store::projects::get(&self.db, id)
                    .await?
                    .filter(|p| !p.is_domain)
            } else if let Some(name) = &p.name {
                let dom = p.domain.as_ref().ok_or_else(|| {
                    Error::BadRequest("Invalid input for field 'scope/project/domain': a project given by name needs a domain".into())
                })?;
                let dom = self.domain_ref(dom, "scope/project/domain").await?;
                store::projects::get_by_name(&self.db, &dom.id, name, false).await?
            } else {
                return Err(Error::BadRequest(
                    "Invalid input for field 'scope/project': 'id' or 'name' is required".into(),
                ));
            };
            let project = project.ok_or_else(unauthorized)?;
            let domain = self.domain(&project.domain_id).await?;
            if !project.enabled || !domain.enabled {
                return Err(unauthorized());
            }
            return Ok(Scope::Project(project, domain));
        }
        if let Some(d) = &scope.domain {
            let domain = self.domain_ref(d, "scope/domain").await?;
            if !domain.enabled {
                return Err(unauthorized());
            }
            return Ok(Scope::Domain(domain));
        }
        if let Some(s) = &scope.system {
            if s.all {
                return Ok(Scope::System);
            }
            return Err(Error::BadRequest(
                "Invalid input for field 'scope/system': only {\"all\": true} is supported".into(),
            ));
        }
        if scope.trust.is_some() {
            return Err(Error::Forbidden(
                "Trusts are not supported by this deployment.".into(),
            ));
        }
        Err(Error::BadRequest(
            "Invalid input for field 'scope': expected project, domain or system".into(),
        ))
    }

    // ----- views -----

    /// The v3 token document.
    pub async fn token_body(&self, p: &TokenPayload, with_catalog: bool) -> Result<Value> {
        let mut t = json!({
            "methods": p.m,
            "user": {"id": p.u.0, "name": p.u.1, "domain": {"id": p.u.2, "name": p.u.3},
                     "password_expires_at": p.x},
            "audit_ids": p.a,
            "expires_at": micros_to_iso(p.e),
            "issued_at": micros_to_iso(p.i),
        });
        let roles: Vec<Value> =
            p.r.iter()
                .map(|(id, name)| json!({"id": id, "name": name}))
                .collect();
        if let Some(pp) = &p.p {
            t["project"] = json!({"id": pp.0, "name": pp.1, "domain": {"id": pp.2, "name": pp.3}});
            t["is_domain"] = json!(false);
            t["roles"] = json!(roles);
        } else if let Some(d) = &p.d {
            t["domain"] = json!({"id": d.0, "name": d.1});
            t["roles"] = json!(roles);
        } else if p.s {
            t["system"] = json!({"all": true});
            t["roles"] = json!(roles);
        }
        if let Some(c) = &p.c {
            let name = store::app_creds::get(&self.db, c)
                .await?
                .map(|c| (c.name, !c.unrestricted));
            let (name, restricted) = name.unwrap_or_default();
            t["application_credential"] = json!({"id": c, "name": name, "restricted": restricted});
            if let Some(rules) = &p.ar {
                t["application_credential"]["access_rules"] = Value::Array(
                    rules
                        .iter()
                        .map(|(s, path, m)| json!({"service": s, "path": path, "method": m}))
                        .collect(),
                );
            }
        }
        if with_catalog && (p.p.is_some() || p.d.is_some() || p.s) {
            t["catalog"] = self
                .catalog_json(
                    p.p.as_ref().map(|x| x.0.as_str()),
                    p.p.is_some() || p.d.is_some() || p.s,
                )
                .await?;
        }
        Ok(json!({ "token": t }))
    }

    pub fn invalidate_catalog(&self) {
        *self.catalog.write().unwrap() = None;
    }

    pub async fn catalog(&self) -> Result<Arc<Vec<CatalogService>>> {
        if let Some(c) = self.catalog.read().unwrap().clone() {
            return Ok(c);
        }
        let services = store::catalog::list_services(&self.db).await?;
        let endpoints = store::catalog::list_endpoints(&self.db).await?;
        let mut by_service: HashMap<String, Vec<_>> = HashMap::new();
        for e in endpoints.into_iter().filter(|e| e.enabled) {
            by_service.entry(e.service_id.clone()).or_default().push((
                e.id,
                e.interface,
                e.region_id,
                e.url,
            ));
        }
        let cat: Vec<CatalogService> = services
            .into_iter()
            .filter(|s| s.enabled)
            .map(|s| CatalogService {
                name: s.name().to_owned(),
                endpoints: by_service.remove(&s.id).unwrap_or_default(),
                id: s.id,
                service_type: s.service_type,
            })
            .collect();
        let cat = Arc::new(cat);
        *self.catalog.write().unwrap() = Some(cat.clone());
        Ok(cat)
    }

    /// The v3 catalog, with `$(project_id)s` / `$(tenant_id)s` filled in;
    /// endpoints whose template cannot be filled are left out.
    pub async fn catalog_json(&self, project_id: Option<&str>, scoped: bool) -> Result<Value> {
        if !scoped {
            return Ok(json!([]));
        }
        let cat = self.catalog().await?;
        Ok(Value::Array(
            cat.iter()
                .map(|s| {
                    let eps: Vec<Value> = s
                        .endpoints
                        .iter()
                        .filter_map(|(id, iface, region, url)| {
                            let url = substitute(url, project_id)?;
                            Some(json!({"id": id, "interface": iface, "region": region, "region_id": region, "url": url}))
                        })
                        .collect();
                    json!({"id": s.id, "type": s.service_type, "name": s.name, "endpoints": eps})
                })
                .collect(),
        ))
    }
}

pub fn new_audit_id() -> String {
    use base64::Engine;
    let bytes: [u8; 16] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&bytes[..16])[..22].to_owned()
}

/// Fill `$(project_id)s` and `$(tenant_id)s` (and `%(…)s`) in an endpoint URL.
pub fn substitute(url: &str, project_id: Option<&str>) -> Option<String> {
    if !url.contains("$(") && !url.contains("%(") {
        return Some(url.to_owned());
    }
    let pid = project_id?;
    let mut out = url.to_owned();
    for pat in [
        "$(project_id)s",
        "$(tenant_id)s",
        "%(project_id)s",
        "%(tenant_id)s",
    ] {
        out = out.replace(pat, pid);
    }
    (!out.contains("$(") && !out.contains("%(")).then_some(out)
}

/// The identity service validates tokens for its own API in-process.
pub struct LocalValidator(pub Arc<IdentityService>);

#[async_trait::async_trait]
impl TokenValidator for LocalValidator {
    async fn validate(&self, token: &str) -> Result<AuthContext> {
        let p = self.0.validate_payload(token).map_err(|_| unauthorized())?;
        Ok(self.0.context_of(&p))
    }
}
