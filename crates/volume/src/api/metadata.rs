//! User metadata of volumes and snapshots: one set of handlers (show,
//! merge, replace, and one key's show, set and delete) over any resource
//! that [`HasMetadata`] describes, so both answer and refuse alike.

use super::fields::check_metadata;
use super::{check_url_project, Svc};
use crate::store::{self, snapshots::Snapshot, volumes::Volume};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ferrostack_core::auth::{AuthContext, Authenticated};
use ferrostack_core::http::Json;
use ferrostack_core::openapi::{get, ApiRouter};
use ferrostack_core::{Error, Result};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

#[derive(Deserialize, JsonSchema)]
pub struct MetadataBody {
    pub metadata: BTreeMap<String, String>,
}

#[derive(Deserialize, JsonSchema)]
pub struct MetaItemBody {
    pub meta: BTreeMap<String, String>,
}

/// The policy rules of each metadata action on one kind of resource.
pub struct Rules {
    pub get: &'static str,
    /// `POST .../metadata` (merge).
    pub merge: &'static str,
    /// `PUT .../metadata` and `PUT .../metadata/{key}`.
    pub replace: &'static str,
    pub delete: &'static str,
}

/// A resource with user metadata: how it is found for a caller under a
/// rule, named in errors, and written back.
#[async_trait::async_trait]
pub trait HasMetadata: Sized + Send + 'static {
    /// `Volume`, `Snapshot`: the word Cinder's messages use.
    const KIND: &'static str;
    const RULES: Rules;
    async fn find(svc: &Svc, ctx: &AuthContext, id: &str, rule: &str) -> Result<Self>;
    fn metadata(&mut self) -> &mut Map<String, Value>;
    async fn save(&self, svc: &Svc) -> Result<()>;
}

#[async_trait::async_trait]
impl HasMetadata for Volume {
    const KIND: &'static str = "Volume";
    const RULES: Rules = Rules {
        get: "volume:get_volume_metadata",
        merge: "volume:create_volume_metadata",
        replace: "volume:update_volume_metadata",
        delete: "volume:delete_volume_metadata",
    };
    async fn find(svc: &Svc, ctx: &AuthContext, id: &str, rule: &str) -> Result<Self> {
        let v = svc.visible_volume(ctx, id).await?;
        svc.authorize(ctx, rule, &v.project_id)?;
        Ok(v)
    }
    fn metadata(&mut self) -> &mut Map<String, Value> {
        &mut self.metadata
    }
    async fn save(&self, svc: &Svc) -> Result<()> {
        store::volumes::update(&svc.db, self).await
    }
}

#[async_trait::async_trait]
impl HasMetadata for Snapshot {
    const KIND: &'static str = "Snapshot";
    const RULES: Rules = Rules {
        get: "volume:get_snapshot_metadata",
        merge: "volume:update_snapshot_metadata",
        replace: "volume:update_snapshot_metadata",
        delete: "volume:delete_snapshot_metadata",
    };
    async fn find(svc: &Svc, ctx: &AuthContext, id: &str, rule: &str) -> Result<Self> {
        let s = svc.visible_snapshot(ctx, id).await?;
        svc.authorize(ctx, rule, &s.project_id)?;
        Ok(s)
    }
    fn metadata(&mut self) -> &mut Map<String, Value> {
        &mut self.metadata
    }
    async fn save(&self, svc: &Svc) -> Result<()> {
        store::snapshots::update(&svc.db, self).await
    }
}

/// The metadata routes under `base` (`/v3/{project_id}/volumes/{id}`).
pub fn routes<T: HasMetadata>(base: &str) -> ApiRouter<Svc> {
    ApiRouter::new()
        .route(
            &format!("{base}/metadata"),
            get(show::<T>).post(merge::<T>).put(replace::<T>),
        )
        .route(
            &format!("{base}/metadata/{{key}}"),
            get(show_item::<T>)
                .put(set_item::<T>)
                .delete(delete_item::<T>),
        )
}

async fn find<T: HasMetadata>(
    svc: &Svc,
    ctx: &AuthContext,
    project_id: &str,
    id: &str,
    rule: &str,
) -> Result<T> {
    check_url_project(ctx, project_id)?;
    T::find(svc, ctx, id, rule).await
}

fn key_not_found<T: HasMetadata>(id: &str, key: &str) -> Error {
    Error::NotFound(format!("{} {id} has no metadata with key {key}.", T::KIND))
}

/// Write the metadata; `replace` drops the keys not given.
async fn write<T: HasMetadata>(
    svc: &Svc,
    ctx: &AuthContext,
    project_id: &str,
    id: &str,
    given: &BTreeMap<String, String>,
    replace: bool,
) -> Result<Map<String, Value>> {
    let rule = if replace {
        T::RULES.replace
    } else {
        T::RULES.merge
    };
    let mut r: T = find(svc, ctx, project_id, id, rule).await?;
    let given = check_metadata(given)?;
    if replace {
        *r.metadata() = given;
    } else {
        r.metadata().extend(given);
    }
    r.save(svc).await?;
    Ok(r.metadata().clone())
}

pub async fn show<T: HasMetadata>(
    State(svc): State<Svc>,
    Path((project_id, id)): Path<(String, String)>,
    Authenticated(ctx): Authenticated,
) -> Result<Response> {
    let mut r: T = find(&svc, &ctx, &project_id, &id, T::RULES.get).await?;
    Ok(axum::Json(json!({"metadata": r.metadata()})).into_response())
}

pub async fn merge<T: HasMetadata>(
    State(svc): State<Svc>,
    Path((project_id, id)): Path<(String, String)>,
    Authenticated(ctx): Authenticated,
    Json(req): Json<MetadataBody>,
) -> Result<Response> {
    let m = write::<T>(&svc, &ctx, &project_id, &id, &req.metadata, false).await?;
    Ok(axum::Json(json!({"metadata": m})).into_response())
}

pub async fn replace<T: HasMetadata>(
    State(svc): State<Svc>,
    Path((project_id, id)): Path<(String, String)>,
    Authenticated(ctx): Authenticated,
    Json(req): Json<MetadataBody>,
) -> Result<Response> {
    let m = write::<T>(&svc, &ctx, &project_id, &id, &req.metadata, true).await?;
    Ok(axum::Json(json!({"metadata": m})).into_response())
}

pub async fn show_item<T: HasMetadata>(
    State(svc): State<Svc>,
    Path((project_id, id, key)): Path<(String, String, String)>,
    Authenticated(ctx): Authenticated,
) -> Result<Response> {
    let mut r: T = find(&svc, &ctx, &project_id, &id, T::RULES.get).await?;
    let value = r
        .metadata()
        .get(&key)
        .cloned()
        .ok_or_else(|| key_not_found::<T>(&id, &key))?;
    Ok(axum::Json(json!({"meta": {key: value}})).into_response())
}

/// `PUT .../metadata/{key}` with `{"meta": {key: value}}`: one key, the
/// one of the URL.
pub async fn set_item<T: HasMetadata>(
    State(svc): State<Svc>,
    Path((project_id, id, key)): Path<(String, String, String)>,
    Authenticated(ctx): Authenticated,
    Json(req): Json<MetaItemBody>,
) -> Result<Response> {
    if req.meta.len() != 1 {
        return Err(Error::BadRequest(
            "Request body contains too many items.".into(),
        ));
    }
    if !req.meta.contains_key(&key) {
        return Err(Error::BadRequest("Request body and URI mismatch".into()));
    }
    write::<T>(&svc, &ctx, &project_id, &id, &req.meta, false).await?;
    Ok(axum::Json(json!({"meta": req.meta})).into_response())
}

pub async fn delete_item<T: HasMetadata>(
    State(svc): State<Svc>,
    Path((project_id, id, key)): Path<(String, String, String)>,
    Authenticated(ctx): Authenticated,
) -> Result<Response> {
    let mut r: T = find(&svc, &ctx, &project_id, &id, T::RULES.delete).await?;
    if r.metadata().remove(&key).is_none() {
        return Err(key_not_found::<T>(&id, &key));
    }
    r.save(&svc).await?;
    Ok(StatusCode::OK.into_response())
}
