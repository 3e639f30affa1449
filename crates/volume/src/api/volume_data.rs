//! The volume actions on a volume's data and type (`os-set_bootable`,
//! `os-update_readonly_flag`, `os-retype`) and `GET /volumes/summary`.

use super::listing::ListQuery;
use super::{check_url_project, Query, Svc};
use crate::store;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ferrostack_core::auth::{AuthContext, Authenticated};
use ferrostack_core::{Error, Result};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;

/// A flag as Cinder takes it: a boolean, or its text (`"true"`, `"False"`).
#[derive(Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Flag {
    Bool(bool),
    Text(String),
}

impl Flag {
    pub fn value(&self, field: &str) -> Result<bool> {
        match self {
            Flag::Bool(b) => Ok(*b),
            Flag::Text(t) => match t.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" | "y" | "t" => Ok(true),
                "false" | "0" | "no" | "off" | "n" | "f" => Ok(false),
                _ => Err(Error::BadRequest(format!(
                    "Invalid input for field/attribute {field}. Value: {t}. {t} is not of type 'boolean'"
                ))),
            },
        }
    }
}

#[derive(Deserialize, JsonSchema)]
pub struct SetBootable {
    pub bootable: Flag,
}

#[derive(Deserialize, JsonSchema)]
pub struct UpdateReadonly {
    pub readonly: Flag,
}

#[derive(Deserialize, JsonSchema)]
pub struct Retype {
    /// A volume type's name or id.
    pub new_type: String,
    /// `never` or `on-demand`: every type here shares the one backend, so
    /// no migration is ever needed.
    pub migration_policy: Option<String>,
}

pub async fn set_bootable(
    svc: &Svc,
    ctx: &AuthContext,
    id: &str,
    req: SetBootable,
) -> Result<Response> {
    let mut v = svc.visible_volume(ctx, id).await?;
    svc.authorize(ctx, "volume:update", &v.project_id)?;
    v.bootable = req.bootable.value("bootable")?;
    store::volumes::update(&svc.db, &v).await?;
    Ok(StatusCode::OK.into_response())
}

/// Cinder keeps the flag in the volume's admin metadata and shows it as
/// the `readonly` metadata key; here it is that key.
pub async fn update_readonly(
    svc: &Svc,
    ctx: &AuthContext,
    id: &str,
    req: UpdateReadonly,
) -> Result<Response> {
    let mut v = svc.visible_volume(ctx, id).await?;
    svc.authorize(ctx, "volume:update_readonly_flag", &v.project_id)?;
    let readonly = req.readonly.value("readonly")?;
    if !matches!(v.status.as_str(), "available" | "in-use") {
        return Err(Error::BadRequest(format!(
            "Invalid volume: Volume {id} status must be available or in-use, but current status is: {}.",
            v.status
        )));
    }
    let text = if readonly { "True" } else { "False" };
    v.metadata.insert("readonly".into(), json!(text));
    store::volumes::update(&svc.db, &v).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

pub async fn retype(svc: &Svc, ctx: &AuthContext, id: &str, req: Retype) -> Result<Response> {
    if let Some(p) = req.migration_policy.as_deref() {
        if !matches!(p, "never" | "on-demand") {
            return Err(Error::BadRequest(format!(
                "Invalid input received: migration_policy must be 'on-demand' or 'never', passed: {p}"
            )));
        }
    }
    svc.retype_volume(ctx, id, &req.new_type).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

/// `GET /volumes/summary` (Cinder from 3.12): count and GiB of the
/// caller's volumes (every project's with `all_tenants` for an admin).
pub async fn summary(
    State(svc): State<Svc>,
    Path(project_id): Path<String>,
    Authenticated(ctx): Authenticated,
    axum::extract::Query(q): Query,
) -> Result<Response> {
    check_url_project(&ctx, &project_id)?;
    svc.authorize(&ctx, "volume:get_all", &project_id)?;
    let scope = ListQuery::new(&q).scope(&svc, &ctx, &project_id);
    let vols = store::volumes::list(&svc.db, scope).await?;
    let total: i64 = vols.iter().map(|v| v.size).sum();
    Ok(axum::Json(json!({"volume-summary": {
        "total_size": total,
        "total_count": vols.len(),
    }}))
    .into_response())
}

#[derive(Deserialize, JsonSchema)]
pub struct UploadImage {
    pub image_name: String,
    /// `raw` when absent, as Cinder.
    pub disk_format: Option<String>,
    /// `bare` when absent.
    pub container_format: Option<String>,
    /// Needed for an `in-use` volume.
    pub force: Option<Flag>,
    /// `private` when absent (Cinder 3.1 adds it; accepted here).
    pub visibility: Option<String>,
    pub protected: Option<Flag>,
}

pub async fn upload_image(
    svc: &Svc,
    ctx: &AuthContext,
    id: &str,
    req: UploadImage,
) -> Result<Response> {
    let flag = |f: &Option<Flag>, n: &str| f.as_ref().map(|f| f.value(n)).transpose();
    let container = req.container_format.unwrap_or_else(|| "bare".into());
    if container != "bare" {
        return Err(Error::BadRequest(format!(
            "Invalid input received: Invalid container-format '{container}' is specified. Allowed container-formats are bare."
        )));
    }
    super::fields::check_text("image_name", &Some(req.image_name.clone()), 255)?;
    let up = crate::images::UploadRequest {
        image_name: req.image_name,
        disk_format: req.disk_format.unwrap_or_else(|| "raw".into()),
        container_format: container,
        visibility: req.visibility.unwrap_or_else(|| "private".into()),
        protected: flag(&req.protected, "protected")?.unwrap_or(false),
        force: flag(&req.force, "force")?.unwrap_or(false),
    };
    let body = svc.upload_to_image(ctx, id, up).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(body)).into_response())
}
