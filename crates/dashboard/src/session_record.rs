//! What one login holds: who the user is, the projects they may switch
//! to, their token and catalog. Kept apart from the store and its disk
//! copy, which both use it.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::time::Instant;

/// A project the user may switch to.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ProjectRef {
    pub id: String,
    pub name: String,
    pub domain_id: String,
}

/// Who is logged in, as the scoped token says.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Identity {
    pub user_id: String,
    pub user_name: String,
    pub user_domain_id: String,
    pub user_domain_name: String,
    pub project: ProjectRef,
    pub roles: Vec<String>,
    /// Every project the user can scope to (only the credential's own for
    /// an application credential, which cannot be rescoped).
    pub projects: Vec<ProjectRef>,
    /// `password` or `application_credential`.
    pub method: String,
}

/// One browser's login.
#[derive(Clone, Debug)]
pub struct Session {
    pub id: String,
    pub csrf: String,
    pub token: String,
    pub identity: Identity,
    /// Service type → public endpoint URL (no trailing slash).
    pub catalog: HashMap<String, String>,
    pub expires: Instant,
}

impl Session {
    /// Whether the user holds the `admin` role in the current project: the
    /// UI shows admin panels then (the APIs decide anyway).
    pub fn is_admin(&self) -> bool {
        self.identity.roles.iter().any(|r| r == "admin")
    }
}
