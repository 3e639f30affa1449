//! `/auth/*`: log in, see the session, switch project, log out. Each
//! handler checks its input, calls [`crate::keystone`] and keeps the result
//! in [`crate::session`]; the browser gets the session cookie and a view of
//! the session without the token.

use crate::keystone::{Credentials, Scoped};
use crate::session::{clear_cookie, Session};
use crate::State;
use axum::extract::State as Ext;
use axum::http::{header, HeaderMap, Method};
use axum::response::{IntoResponse, Response};
use ferrostack_core::error::Error;
use ferrostack_core::http::Json;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The login form: a password (domain, user, password) or an application
/// credential (id and secret); optionally the project to start in.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    #[serde(default)]
    pub domain: String,
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub password: String,
    #[serde(default)]
    pub application_credential_id: String,
    #[serde(default)]
    pub application_credential_secret: String,
    #[serde(default)]
    pub project: String,
}

impl LoginRequest {
    fn credentials(self) -> Result<(Credentials, String), Error> {
        if !self.application_credential_id.is_empty() {
            if self.application_credential_secret.is_empty() {
                return Err(Error::BadRequest(
                    "Enter the application credential's secret.".into(),
                ));
            }
            let creds = Credentials::ApplicationCredential {
                id: self.application_credential_id,
                secret: self.application_credential_secret,
            };
            return Ok((creds, self.project));
        }
        if self.username.trim().is_empty() || self.password.is_empty() {
            return Err(Error::BadRequest(
                "Enter a user name and a password.".into(),
            ));
        }
        let domain = match self.domain.trim() {
            "" => "Default".to_owned(),
            d => d.to_owned(),
        };
        let creds = Credentials::Password {
            domain,
            user: self.username.trim().to_owned(),
            password: self.password,
        };
        Ok((creds, self.project))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SwitchRequest {
    pub project_id: String,
}

/// What the page knows of its session: never the token.
#[derive(Serialize)]
pub struct SessionView {
    #[serde(flatten)]
    pub identity: crate::session::Identity,
    pub is_admin: bool,
    pub csrf_token: String,
    /// The service types the proxy reaches (`compute`, `network`, …).
    pub services: Vec<String>,
    pub expires_in: u64,
}

impl SessionView {
    fn of(s: &Session) -> SessionView {
        let mut services: Vec<String> = s.catalog.keys().cloned().collect();
        services.sort();
        SessionView {
            identity: s.identity.clone(),
            is_admin: s.is_admin(),
            csrf_token: s.csrf.clone(),
            services,
            expires_in: s
                .expires
                .saturating_duration_since(std::time::Instant::now())
                .as_secs(),
        }
    }
}

/// A login may only come from the dashboard's own page: a JSON body (which
/// a cross-site form cannot send without a CORS preflight we never
/// answer), and, when the browser names an `Origin`, our own host.
fn same_origin_json(headers: &HeaderMap) -> Result<(), Error> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"));
    if !json {
        return Err(Error::UnsupportedMediaType(
            "A login is a JSON document (Content-Type: application/json).".into(),
        ));
    }
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        let host = headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let origin_host = origin.split_once("://").map_or(origin, |(_, h)| h);
        if origin_host != host {
            return Err(Error::Forbidden(format!(
                "A login from another site ({origin}) is refused."
            )));
        }
    }
    Ok(())
}

fn with_cookie(state: &State, session: &Arc<Session>) -> Response {
    let cookie = state.sessions.cookie(session, state.settings.secure_cookie);
    (
        [(header::SET_COOKIE, cookie)],
        axum::Json(SessionView::of(session)),
    )
        .into_response()
}

fn keep(state: &State, scoped: Scoped) -> Arc<Session> {
    state.sessions.create(
        scoped.token,
        scoped.identity,
        scoped.catalog,
        scoped.lifetime,
    )
}

/// `POST /auth/login`
pub async fn login(
    Ext(state): Ext<State>,
    headers: HeaderMap,
    Json(req): Json<LoginRequest>,
) -> Result<Response, Error> {
    same_origin_json(&headers)?;
    let (creds, project) = req.credentials()?;
    let project = (!project.trim().is_empty()).then(|| project.trim().to_owned());
    let scoped = state.keystone.login(&creds, project.as_deref()).await?;
    // A login replaces whatever session this browser had.
    if let Ok(old) = state.sessions.from_headers(&headers) {
        state.sessions.remove(&old.id);
    }
    let session = keep(&state, scoped);
    Ok(with_cookie(&state, &session))
}

/// `GET /auth/session`: 401 when not logged in (the page shows the login form).
pub async fn current(
    Ext(state): Ext<State>,
    headers: HeaderMap,
) -> Result<axum::Json<SessionView>, Error> {
    let session = state.sessions.from_headers(&headers)?;
    Ok(axum::Json(SessionView::of(&session)))
}

/// `POST /auth/project`: rescope the session to another of the user's projects.
pub async fn switch_project(
    Ext(state): Ext<State>,
    headers: HeaderMap,
    Json(req): Json<SwitchRequest>,
) -> Result<Response, Error> {
    let session = state.sessions.authorize(&Method::POST, &headers)?;
    let projects = session.identity.projects.clone();
    if !projects.iter().any(|p| p.id == req.project_id) {
        return Err(Error::Forbidden(format!(
            "You have no role on the project '{}'.",
            req.project_id
        )));
    }
    let scoped = state
        .keystone
        .rescope(&session.token, &req.project_id, projects)
        .await?;
    let session = state.sessions.rescope(
        &session,
        scoped.token,
        scoped.identity,
        scoped.catalog,
        scoped.lifetime,
    );
    Ok(with_cookie(&state, &session))
}

/// `POST /auth/logout`: revoke the token, forget the session, clear the cookie.
pub async fn logout(Ext(state): Ext<State>, headers: HeaderMap) -> Result<Response, Error> {
    let session = state.sessions.authorize(&Method::POST, &headers)?;
    state.sessions.remove(&session.id);
    state.keystone.revoke(&session.token).await;
    Ok((
        axum::http::StatusCode::NO_CONTENT,
        [(
            header::SET_COOKIE,
            clear_cookie(state.settings.secure_cookie),
        )],
    )
        .into_response())
}
