//! Server-side sessions: the Keystone token, the user's scope and the
//! service catalog live here, keyed by a random id the browser holds in an
//! `HttpOnly`, `SameSite=Strict` cookie. Keeping the token on the server
//! means a script injected into the page cannot steal it, and logging out
//! (or the session expiring) ends it for good.

use axum::http::{header, HeaderMap, Method};
use ferrostack_core::error::Error;
use rand::RngCore;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const COOKIE: &str = "ferrostack_session";
pub const CSRF_HEADER: &str = "x-csrf-token";
/// Sessions held at most; logins beyond it drop the oldest first, so a
/// flood of logins costs memory only up to this bound.
const MAX_SESSIONS: usize = 10_000;

pub use crate::session_record::{Identity, ProjectRef, Session};

pub struct Store {
    ttl: Duration,
    sessions: Mutex<HashMap<String, Arc<Session>>>,
    /// Where sessions outlive the process (none: memory only).
    disk: Option<crate::session_disk::Disk>,
}

/// 32 random bytes as hex: session ids and CSRF tokens.
pub fn random_id() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Store {
    pub fn new(ttl: Duration) -> Store {
        Store {
            ttl,
            sessions: Mutex::new(HashMap::new()),
            disk: None,
        }
    }

    /// A store whose sessions are kept in `dir` too, so logins survive a
    /// restart; those still live there are taken back. A directory that
    /// cannot be used leaves the store in memory only (logged).
    pub fn persistent(ttl: Duration, dir: std::path::PathBuf) -> Store {
        match crate::session_disk::Disk::open(dir) {
            Ok((disk, live)) => Store {
                ttl,
                sessions: Mutex::new(
                    live.into_iter()
                        .map(|s| (s.id.clone(), Arc::new(s)))
                        .collect(),
                ),
                disk: Some(disk),
            },
            Err(e) => {
                tracing::warn!(error = %e, "dashboard sessions kept in memory only");
                Store::new(ttl)
            }
        }
    }

    fn persist(&self, s: &Session) {
        if let Some(d) = &self.disk {
            d.put(s);
        }
    }

    fn forget(&self, id: &str) {
        if let Some(d) = &self.disk {
            d.remove(id);
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Keep a new session; it ends at `token_expires` or after the TTL,
    /// whichever is sooner.
    pub fn create(
        &self,
        token: String,
        identity: Identity,
        catalog: HashMap<String, String>,
        token_expires: Duration,
    ) -> Arc<Session> {
        let session = Arc::new(Session {
            id: random_id(),
            csrf: random_id(),
            token,
            identity,
            catalog,
            expires: Instant::now() + token_expires.min(self.ttl),
        });
        let mut all = self.sessions.lock().expect("session lock");
        let now = Instant::now();
        let mut gone: Vec<String> = all
            .values()
            .filter(|s| s.expires <= now)
            .map(|s| s.id.clone())
            .collect();
        all.retain(|_, s| s.expires > now);
        if all.len() >= MAX_SESSIONS {
            if let Some(oldest) = all.values().min_by_key(|s| s.expires).map(|s| s.id.clone()) {
                all.remove(&oldest);
                gone.push(oldest);
            }
        }
        all.insert(session.id.clone(), session.clone());
        drop(all);
        for id in gone {
            self.forget(&id);
        }
        self.persist(&session);
        session
    }

    /// Replace a session's token and scope (a project switch), keeping its
    /// id and CSRF token so open tabs carry on.
    pub fn rescope(
        &self,
        old: &Session,
        token: String,
        identity: Identity,
        catalog: HashMap<String, String>,
        token_expires: Duration,
    ) -> Arc<Session> {
        let session = Arc::new(Session {
            id: old.id.clone(),
            csrf: old.csrf.clone(),
            token,
            identity,
            catalog,
            expires: old.expires.min(Instant::now() + token_expires),
        });
        self.sessions
            .lock()
            .expect("session lock")
            .insert(session.id.clone(), session.clone());
        self.persist(&session);
        session
    }

    pub fn remove(&self, id: &str) -> Option<Arc<Session>> {
        let gone = self.sessions.lock().expect("session lock").remove(id);
        self.forget(id);
        gone
    }

    /// The live session the request's cookie names: 401 without one.
    pub fn from_headers(&self, headers: &HeaderMap) -> Result<Arc<Session>, Error> {
        let id = cookie_value(headers, COOKIE)
            .ok_or_else(|| Error::Unauthorized("You are not logged in.".into()))?;
        let mut all = self.sessions.lock().expect("session lock");
        match all.get(id) {
            Some(s) if s.expires > Instant::now() => Ok(s.clone()),
            Some(_) => {
                all.remove(id);
                drop(all);
                self.forget(id);
                Err(Error::Unauthorized(
                    "Your session has expired; please log in again.".into(),
                ))
            }
            None => Err(Error::Unauthorized(
                "Your session has ended; please log in again.".into(),
            )),
        }
    }

    /// The session, and for any method that changes something, proof the
    /// request came from the dashboard's own page: the CSRF token it was
    /// given at login, echoed in `X-CSRF-Token` (a cross-site form cannot
    /// set headers, and cannot read the token).
    pub fn authorize(&self, method: &Method, headers: &HeaderMap) -> Result<Arc<Session>, Error> {
        let session = self.from_headers(headers)?;
        if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
            return Ok(session);
        }
        let sent = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
        if sent != Some(session.csrf.as_str()) {
            return Err(Error::Forbidden(
                "The request carries no valid CSRF token (X-CSRF-Token); reload the page and try again."
                    .into(),
            ));
        }
        Ok(session)
    }

    /// The `Set-Cookie` value that gives the browser `session`.
    pub fn cookie(&self, session: &Session, secure: bool) -> String {
        let max_age = session
            .expires
            .saturating_duration_since(Instant::now())
            .as_secs();
        format!(
            "{COOKIE}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{}",
            session.id,
            if secure { "; Secure" } else { "" }
        )
    }
}

/// The `Set-Cookie` value that ends the session cookie.
pub fn clear_cookie(secure: bool) -> String {
    format!(
        "{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{}",
        if secure { "; Secure" } else { "" }
    )
}

fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}
