//! The credential files the all-in-one writes for its users: `openrc`,
//! `openrc-demo` and `clouds.yaml`.

use ferrostack_core::config::Config;
use std::path::Path;

fn openrc(auth_url: &str, user: &str, password: &str, project: &str, region: &str) -> String {
    format!(
        "# Ferrostack credentials for {user}: source this file, then use the openstack CLI.\n\
         export OS_AUTH_URL={auth_url}\n\
         export OS_IDENTITY_API_VERSION=3\n\
         export OS_USERNAME={user}\n\
         export OS_PASSWORD={password}\n\
         export OS_PROJECT_NAME={project}\n\
         export OS_TENANT_NAME={project}\n\
         export OS_USER_DOMAIN_NAME=Default\n\
         export OS_PROJECT_DOMAIN_NAME=Default\n\
         export OS_REGION_NAME={region}\n\
         export OS_INTERFACE=public\n"
    )
}

fn cloud(
    name: &str,
    auth_url: &str,
    user: &str,
    password: &str,
    project: &str,
    region: &str,
) -> String {
    format!(
        "  {name}:\n    auth:\n      auth_url: {auth_url}\n      username: {user}\n      password: {password}\n      \
         project_name: {project}\n      user_domain_name: Default\n      project_domain_name: Default\n    \
         region_name: {region}\n    identity_api_version: 3\n    interface: public\n"
    )
}

pub fn write(cfg: &Config, dir: &Path) -> std::io::Result<()> {
    let auth_url = format!("{}/v3", cfg.public_url(cfg.identity.public_port));
    let region = &cfg.common.region;
    let admin_pw = &cfg.identity.admin_password;
    let demo_pw = &cfg.identity.demo_password;
    write_private(
        &dir.join("openrc"),
        &openrc(&auth_url, "admin", admin_pw, "admin", region),
    )?;
    write_private(
        &dir.join("openrc-demo"),
        &openrc(&auth_url, "demo", demo_pw, "demo", region),
    )?;
    let clouds = format!(
        "clouds:\n{}{}",
        cloud("ferrostack", &auth_url, "admin", admin_pw, "admin", region),
        cloud(
            "ferrostack-demo",
            &auth_url,
            "demo",
            demo_pw,
            "demo",
            region
        )
    );
    write_private(&dir.join("clouds.yaml"), &clouds)
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
}
