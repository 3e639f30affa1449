//! `POST /v3/auth/tokens`: verify one authentication method, resolve the
//! scope and its roles, and issue the Fernet token. Each method is its own
//! function so that what a method may force (an expiry, a scope, a role
//! ceiling) is visible in the `Verified` it returns.

use super::{new_audit_id, now_micros, unauthorized, IdentityService, Scope};
use crate::auth_request::{AppCredMethod, Auth, PasswordMethod, TokenMethod};
use crate::store::{self, app_creds::AppCred, users::User};
use crate::token::TokenPayload;
use ferrostack_core::{Error, Result};
use std::collections::BTreeSet;

/// What a verified method establishes before the scope is resolved.
struct Verified {
    user: User,
    /// Microseconds since the epoch.
    expires: i64,
    /// This token's audit id, then the chain's root when rescoping.
    audit: Vec<String>,
    /// A scope the method imposes (rescoping without a scope, app creds).
    forced_scope: Option<Scope>,
    /// Methods of the token being rescoped, carried into the new one.
    prior_methods: Vec<String>,
    app_cred: Option<AppCred>,
}

/// The authentication methods Ferrostack implements, by Keystone's names.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Method {
    Password,
    Token,
    ApplicationCredential,
}

impl Method {
    fn parse(name: &str) -> Result<Method> {
        match name {
            "password" => Ok(Method::Password),
            "token" => Ok(Method::Token),
            "application_credential" => Ok(Method::ApplicationCredential),
            other => Err(Error::Unauthorized(format!(
                "Unsupported authentication method: {other}"
            ))),
        }
    }
}

fn required(field: &str) -> Error {
    Error::BadRequest(format!("Invalid input for field '{field}': required"))
}

impl IdentityService {
    /// Authenticate a v3 `auth` document and issue a token.
    pub async fn authenticate(&self, auth: &Auth) -> Result<(String, TokenPayload)> {
        let identity = &auth.identity;
        let first = identity.methods.first().ok_or_else(|| {
            Error::BadRequest(
                "Invalid input for field 'identity/methods': at least one method is required"
                    .into(),
            )
        })?;
        let method = Method::parse(first)?;
        let now = now_micros();
        let verified = match method {
            Method::Password => {
                let password = identity
                    .password
                    .as_ref()
                    .ok_or_else(|| required("identity/password/user"))?;
                self.verify_password_method(password, now).await?
            }
            Method::Token => {
                let token = identity
                    .token
                    .as_ref()
                    .ok_or_else(|| required("identity/token/id"))?;
                self.verify_token_method(token, auth.scope.is_none(), now)
                    .await?
            }
            Method::ApplicationCredential => {
                let ac = identity
                    .application_credential
                    .as_ref()
                    .ok_or_else(|| required("identity/application_credential"))?;
                self.verify_app_cred_method(ac, auth.scope.is_some(), now)
                    .await?
            }
        };
        let user_domain = self
            .check_user_usable(&verified.user, method == Method::Password, now)
            .await?;
        let scope = match verified.forced_scope {
            Some(ref s) => s.clone(),
            None => {
                self.requested_scope(auth.scope.as_ref(), &verified.user)
                    .await?
            }
        };
        let mut roles = self.scoped_roles(&verified.user, &scope).await?;
        if let Some(cred) = &verified.app_cred {
            self.restrict_to_app_cred(&mut roles, cred).await?;
        }
        let mut methods = identity.methods.clone();
        for m in &verified.prior_methods {
            if !methods.contains(m) {
                methods.push(m.clone());
            }
        }
        let payload = token_payload(verified, &user_domain, &scope, roles, methods, now);
        Ok((self.keys.encrypt(&payload), payload))
    }

    async fn verify_password_method(&self, method: &PasswordMethod, now: i64) -> Result<Verified> {
        let u = &method.user;
        let user = self.user_from_ref(u, "identity/password/user").await?;
        let password = u
            .password
            .as_deref()
            .ok_or_else(|| required("identity/password/user/password"))?;
        let ok = match &user.password_hash {
            Some(h) => self.verify_password(password, h).await,
            None => false,
        };
        if !ok {
            return Err(Error::Unauthorized(
                "The request you have made requires authentication.".into(),
            ));
        }
        Ok(self.fresh(user, now))
    }

    /// Rescoping: the new token ends when the old one does, and shares its
    /// audit chain.
    async fn verify_token_method(
        &self,
        method: &TokenMethod,
        unscoped_request: bool,
        now: i64,
    ) -> Result<Verified> {
        let prior = self
            .validate_payload(&method.id)
            .map_err(|_| unauthorized())?;
        if prior.c.is_some() {
            return Err(Error::Forbidden(
                "Application credential tokens cannot be rescoped.".into(),
            ));
        }
        let user = self.user(&prior.u.0).await.map_err(|_| unauthorized())?;
        let mut verified = self.fresh(user, now);
        verified.expires = prior.e;
        verified
            .audit
            .push(prior.a.last().cloned().unwrap_or_default());
        verified.prior_methods = prior.m.clone();
        if unscoped_request {
            // Re-issuing without a scope keeps the original scope.
            verified.forced_scope = Some(self.scope_of_payload(&prior).await?);
        }
        Ok(verified)
    }

    /// An application credential scopes to its own project, and its token
    /// ends no later than the credential.
    async fn verify_app_cred_method(
        &self,
        ac: &AppCredMethod,
        scope_requested: bool,
        now: i64,
    ) -> Result<Verified> {
        let cred = self.find_app_cred(ac).await?;
        if !self.verify_password(&ac.secret, &cred.secret_hash).await {
            return Err(unauthorized());
        }
        let user = self.user(&cred.user_id).await.map_err(|_| unauthorized())?;
        let mut verified = self.fresh(user, now);
        if let Some(exp) = cred
            .expires_at
            .as_deref()
            .and_then(ferrostack_core::time::parse)
        {
            if exp.timestamp_micros() <= now {
                return Err(unauthorized());
            }
            verified.expires = verified.expires.min(exp.timestamp_micros());
        }
        if scope_requested {
            return Err(Error::Unauthorized(
                "Application credentials cannot request a scope.".into(),
            ));
        }
        let project = self
            .project(cred.project_id.as_deref().unwrap_or(""))
            .await
            .map_err(|_| unauthorized())?;
        let domain = self.domain(&project.domain_id).await?;
        if !project.enabled || !domain.enabled {
            return Err(unauthorized());
        }
        verified.forced_scope = Some(Scope::Project(project, domain));
        verified.app_cred = Some(cred);
        Ok(verified)
    }

    async fn find_app_cred(&self, ac: &AppCredMethod) -> Result<AppCred> {
        if let Some(id) = &ac.id {
            return store::app_creds::get(&self.db, id)
                .await?
                .ok_or_else(unauthorized);
        }
        let name = ac.name.as_deref().ok_or_else(|| {
            Error::BadRequest(
                "Invalid input for field 'identity/application_credential': 'id' or 'name' is required"
                    .into(),
            )
        })?;
        let owner = ac.user.as_ref().ok_or_else(|| {
            Error::BadRequest(
                "Invalid input for field 'identity/application_credential/user': required with 'name'"
                    .into(),
            )
        })?;
        let owner = self
            .user_from_ref(owner, "identity/application_credential/user")
            .await?;
        store::app_creds::list_for_user(&self.db, &owner.id)
            .await?
            .into_iter()
            .find(|c| c.name == name)
            .ok_or_else(unauthorized)
    }

    fn fresh(&self, user: User, now: i64) -> Verified {
        Verified {
            user,
            expires: now + self.config.identity.token_expiration * 1_000_000,
            audit: vec![new_audit_id()],
            forced_scope: None,
            prior_methods: Vec::new(),
            app_cred: None,
        }
    }

    /// A disabled user or domain, or (for the password method) an expired
    /// password, gets no token. Returns the user's domain.
    async fn check_user_usable(
        &self,
        user: &User,
        by_password: bool,
        now: i64,
    ) -> Result<store::projects::Project> {
        if !user.enabled {
            return Err(unauthorized());
        }
        let user_domain = self.domain(&user.domain_id).await?;
        if !user_domain.enabled {
            return Err(unauthorized());
        }
        let expired = user
            .password_expires_at
            .as_deref()
            .and_then(ferrostack_core::time::parse)
            .is_some_and(|exp| exp.timestamp_micros() <= now);
        if by_password && expired {
            return Err(Error::Unauthorized(
                "The password is expired and needs to be changed.".into(),
            ));
        }
        Ok(user_domain)
    }

    /// The roles the user holds on the scope; a scoped token needs one.
    async fn scoped_roles(&self, user: &User, scope: &Scope) -> Result<Vec<(String, String)>> {
        if matches!(scope, Scope::Unscoped) {
            return Ok(Vec::new());
        }
        let roles = self.effective_roles(&user.id, scope).await?;
        if roles.is_empty() {
            return Err(Error::Unauthorized(match scope {
                Scope::Project(p, _) => {
                    format!("User {} has no access to project {}", user.id, p.id)
                }
                Scope::Domain(d) => format!("User {} has no access to domain {}", user.id, d.id),
                _ => format!("User {} has no access to the system", user.id),
            }));
        }
        Ok(roles)
    }

    /// An application credential carries at most the roles it was made
    /// with (and those they imply).
    async fn restrict_to_app_cred(
        &self,
        roles: &mut Vec<(String, String)>,
        cred: &AppCred,
    ) -> Result<()> {
        let allowed: BTreeSet<String> = cred
            .roles
            .as_array()
            .map(|rs| {
                rs.iter()
                    .filter_map(|r| r["id"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        let allowed = self.expand_implied(allowed).await?;
        roles.retain(|(id, _)| allowed.contains(id));
        if roles.is_empty() {
            return Err(unauthorized());
        }
        Ok(())
    }
}

fn token_payload(
    verified: Verified,
    user_domain: &store::projects::Project,
    scope: &Scope,
    roles: Vec<(String, String)>,
    methods: Vec<String>,
    now: i64,
) -> TokenPayload {
    let Verified {
        user,
        expires,
        audit,
        app_cred,
        ..
    } = verified;
    TokenPayload {
        u: (
            user.id.clone(),
            user.name.clone(),
            user_domain.id.clone(),
            user_domain.name.clone(),
        ),
        m: methods,
        p: match scope {
            Scope::Project(p, d) => {
                Some((p.id.clone(), p.name.clone(), d.id.clone(), d.name.clone()))
            }
            _ => None,
        },
        d: match scope {
            Scope::Domain(d) => Some((d.id.clone(), d.name.clone())),
            _ => None,
        },
        s: matches!(scope, Scope::System),
        r: roles,
        i: now,
        e: expires,
        a: audit,
        ar: app_cred.as_ref().and_then(access_rules),
        c: app_cred.map(|c| c.id),
        x: user.password_expires_at,
    }
}

/// The credential's access rules as (service, path, method), if it has any.
fn access_rules(cred: &AppCred) -> Option<Vec<(String, String, String)>> {
    let rules: Vec<(String, String, String)> = cred
        .access_rules
        .as_array()?
        .iter()
        .map(|r| {
            let f = |k: &str| r[k].as_str().unwrap_or_default().to_owned();
            (f("service"), f("path"), f("method"))
        })
        .collect();
    (!rules.is_empty()).then_some(rules)
}
