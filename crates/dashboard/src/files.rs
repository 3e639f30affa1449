//! The API access downloads: an `openrc` and a `clouds.yaml` for the
//! session's user and project, as Horizon's "API Access" panel gives. Neither
//! holds a secret: the openrc asks for the password when sourced, and
//! clouds.yaml leaves it to `--os-password` / `OS_PASSWORD` (or a
//! `secure.yaml`).

use crate::session::Session;
use crate::State;
use axum::extract::State as Ext;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use ferrostack_core::error::Error;

/// `GET /auth/openrc`
pub async fn openrc(Ext(state): Ext<State>, headers: HeaderMap) -> Result<Response, Error> {
    let s = state.sessions.from_headers(&headers)?;
    Ok(download(
        &format!("{}-openrc.sh", file_stem(&s)),
        "text/x-shellscript; charset=utf-8",
        openrc_text(&s, &state.settings.auth_url, &state.settings.region),
    ))
}

/// `GET /auth/clouds.yaml`
pub async fn clouds_yaml(Ext(state): Ext<State>, headers: HeaderMap) -> Result<Response, Error> {
    let s = state.sessions.from_headers(&headers)?;
    Ok(download(
        "clouds.yaml",
        "application/x-yaml; charset=utf-8",
        clouds_text(&s, &state.settings.auth_url, &state.settings.region),
    ))
}

fn download(name: &str, content_type: &'static str, body: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        body,
    )
        .into_response()
}

fn file_stem(s: &Session) -> String {
    s.identity
        .project
        .name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Single-quoted for the shell (a quote inside closes, escapes, reopens).
fn sh(v: &str) -> String {
    format!("'{}'", v.replace('\'', r"'\''"))
}

/// Double-quoted YAML scalar.
fn yq(v: &str) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

pub fn openrc_text(s: &Session, auth_url: &str, region: &str) -> String {
    let id = &s.identity;
    format!(
        "#!/usr/bin/env bash\n\
         # OpenStack credentials of {user} in project {project}, from the Ferrostack dashboard.\n\
         export OS_AUTH_URL={auth}\n\
         export OS_IDENTITY_API_VERSION=3\n\
         export OS_PROJECT_ID={pid}\n\
         export OS_PROJECT_NAME={project_q}\n\
         export OS_PROJECT_DOMAIN_ID={pdom}\n\
         export OS_USERNAME={user_q}\n\
         export OS_USER_DOMAIN_NAME={udom}\n\
         unset OS_TENANT_ID OS_TENANT_NAME\n\
         echo \"Please enter your OpenStack password for user $OS_USERNAME: \"\n\
         read -sr OS_PASSWORD_INPUT\n\
         export OS_PASSWORD=$OS_PASSWORD_INPUT\n\
         export OS_REGION_NAME={region}\n\
         export OS_INTERFACE=public\n",
        user = id.user_name.replace('\n', " "),
        project = id.project.name.replace('\n', " "),
        auth = sh(auth_url),
        pid = sh(&id.project.id),
        project_q = sh(&id.project.name),
        pdom = sh(&id.project.domain_id),
        user_q = sh(&id.user_name),
        udom = sh(&id.user_domain_name),
        region = sh(region),
    )
}

pub fn clouds_text(s: &Session, auth_url: &str, region: &str) -> String {
    let id = &s.identity;
    format!(
        "# From the Ferrostack dashboard. Add the password with --os-password,\n\
         # OS_PASSWORD or a secure.yaml beside this file.\n\
         clouds:\n  \
           ferrostack:\n    \
             auth:\n      \
               auth_url: {auth}\n      \
               username: {user}\n      \
               user_domain_name: {udom}\n      \
               project_id: {pid}\n      \
               project_name: {project}\n      \
               project_domain_id: {pdom}\n    \
             region_name: {region}\n    \
             interface: public\n    \
             identity_api_version: 3\n",
        auth = yq(auth_url),
        user = yq(&id.user_name),
        udom = yq(&id.user_domain_name),
        pid = yq(&id.project.id),
        project = yq(&id.project.name),
        pdom = yq(&id.project.domain_id),
        region = yq(region),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::{Identity, ProjectRef};
    use std::collections::HashMap;
    use std::time::Instant;

    fn session(project: &str) -> Session {
        Session {
            id: "s".into(),
            csrf: "c".into(),
            token: "secret-token".into(),
            identity: Identity {
                user_id: "u".into(),
                user_name: "alice".into(),
                user_domain_id: "default".into(),
                user_domain_name: "Default".into(),
                project: ProjectRef {
                    id: "p1".into(),
                    name: project.into(),
                    domain_id: "default".into(),
                },
                roles: vec!["member".into()],
                projects: vec![],
                method: "password".into(),
            },
            catalog: HashMap::new(),
            expires: Instant::now(),
        }
    }

    /// A project name is data in the downloaded files, never code.
    #[test]
    fn names_are_quoted_for_the_shell_and_yaml() {
        let s = session("x'; touch /tmp/owned; '\"");
        let rc = openrc_text(&s, "http://h:5000/v3", "RegionOne");
        assert!(
            rc.contains(r#"export OS_PROJECT_NAME='x'\''; touch /tmp/owned; '\''"'"#),
            "{rc}"
        );
        assert!(!rc.contains("secret-token"));
        let yaml = clouds_text(&s, "http://h:5000/v3", "RegionOne");
        assert!(
            yaml.contains(r#"project_name: "x'; touch /tmp/owned; '\"""#),
            "{yaml}"
        );
    }
}
