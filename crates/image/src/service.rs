//! The image service layer: visibility and ownership rules, metadata
//! validation and JSON-patch semantics as Glance applies them, the upload
//! and import state machines, quotas and notifications.

use crate::backend::{FileData, FilesystemStore, ImageData, Written};
use crate::store::{self, images::Image, members::Member};
use ferrostack_bus::SharedBus;
use ferrostack_core::auth::AuthContext;
use ferrostack_core::config::Config;
use ferrostack_core::policy::Policy;
use ferrostack_core::{Error, Result};
use ferrostack_db::Db;
use serde_json::{json, Map, Value};
use std::collections::HashSet;
use std::sync::Arc;

pub const DISK_FORMATS: &[&str] = &[
    "ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop",
];
pub const CONTAINER_FORMATS: &[&str] = &[
    "ami",
    "ari",
    "aki",
    "bare",
    "ovf",
    "ova",
    "docker",
    "compressed",
];
pub const VISIBILITIES: &[&str] = &["public", "private", "shared", "community"];
/// Attributes only the service sets.
pub const READ_ONLY: &[&str] = &[
    "id",
    "status",
    "checksum",
    "os_hash_algo",
    "os_hash_value",
    "size",
    "virtual_size",
    "created_at",
    "updated_at",
    "file",
    "self",
    "schema",
    "direct_url",
    "stores",
];
pub const RESERVED: &[&str] = &["deleted", "deleted_at", "location"];
pub const MAX_TAGS: usize = 128;
pub const MAX_MEMBERS: usize = 128;

pub struct ImageService {
    pub db: Db,
    /// Temporary and staged uploads (always local).
    pub store: FilesystemStore,
    /// Active images' data: the filesystem or the swift store.
    pub data: Box<dyn ImageData>,
    pub config: Config,
    pub bus: SharedBus,
    /// Glance's rules (`policy.rs`) with the operator's file over them.
    pub policy: Policy,
}

pub fn forbidden(action: &str) -> Error {
    Error::Forbidden(format!(
        "You are not authorized to complete {action} action."
    ))
}

pub fn not_found(id: &str) -> Error {
    Error::NotFound(format!("No image found with ID {id}"))
}

impl ImageService {
    pub async fn new(db: Db, config: Config, bus: SharedBus) -> Result<Arc<Self>> {
        let store = FilesystemStore::open(&config.image_store_dir()).map_err(Error::internal)?;
        let policy = crate::policy::load(&config)?;
        let data: Box<dyn ImageData> = match config.image.store.as_str() {
            "file" => Box::new(FileData::new(&config.image_store_dir())),
            "swift" => Box::new(crate::swift::SwiftStore::new(&config)),
            other => {
                return Err(Error::Internal(format!(
                    "[image] store = '{other}': use 'file' or 'swift'"
                )))
            }
        };
        let svc = Arc::new(ImageService {
            db,
            store,
            data,
            config,
            bus,
            policy,
        });
        svc.recover().await?;
        Ok(svc)
    }

    /// Make the store and the records agree after a crash: an upload that
    /// was in flight (`saving`) goes back to `queued` with its partial data
    /// removed; an import in flight goes back to `uploading` (its staged data
    /// is kept, and reserved again); files no record claims are deleted.
    pub async fn recover(&self) -> Result<()> {
        store::images::clear_upload_reservations(&self.db).await?;
        for img in store::images::list_by_status(&self.db, "saving").await? {
            tracing::warn!(image = %img.id, "upload interrupted by a restart: back to queued");
            store::images::transition(&self.db, &img.id, &["saving"], "queued").await?;
        }
        for img in store::images::list_by_status(&self.db, "importing").await? {
            tracing::warn!(image = %img.id, "import interrupted by a restart: back to uploading");
            store::images::transition(&self.db, &img.id, &["importing"], "uploading").await?;
        }
        // Staged data still counts against its owner's quota; an image whose
        // staging was cut short has none and takes data again.
        for img in store::images::list_by_status(&self.db, "uploading").await? {
            match tokio::fs::metadata(self.store.staging_path(&img.id)).await {
                Ok(staged) => {
                    let owner = img.owner.as_deref().unwrap_or("");
                    store::images::reserve_staged(&self.db, &img.id, owner, staged.len()).await?;
                }
                Err(_) => {
                    tracing::warn!(image = %img.id, "staging interrupted by a restart: back to queued");
                    store::images::transition(&self.db, &img.id, &["uploading"], "queued").await?;
                }
            }
        }
        store::tasks::fail_unfinished(&self.db).await?;
        let all = store::images::list(&self.db).await?;
        let stored: HashSet<String> = all
            .iter()
            .filter(|i| matches!(i.status.as_str(), "active" | "deactivated"))
            .map(|i| i.id.clone())
            .collect();
        let staged: HashSet<String> = all
            .iter()
            .filter(|i| i.status == "uploading")
            .map(|i| i.id.clone())
            .collect();
        let removed = self
            .store
            .recover(&stored, &staged)
            .map_err(Error::internal)?;
        for p in removed {
            tracing::warn!(path = %p.display(), "removed image data no record claims");
        }
        Ok(())
    }

    pub async fn notify(&self, event: &str, img: &Image) {
        let _ = self
            .bus
            .notify("image.localhost", event, self.view(img))
            .await;
    }

    // ----- authorization and visibility -----

    /// Glance's `context.is_admin`: the `context_is_admin` rule.
    pub fn is_admin(&self, ctx: &AuthContext) -> bool {
        self.policy.check("context_is_admin", ctx, &json!({}))
    }

    /// Enforce a Glance rule, answering 403 in Glance's words.
    pub fn authorize(&self, ctx: &AuthContext, action: &str, target: &Value) -> Result<()> {
        // Glance's `default` rule allows: a misspelt action must not slip through it.
        debug_assert!(self.policy.has(action), "no image rule named {action}");
        if self.policy.check(action, ctx, target) {
            Ok(())
        } else {
            Err(forbidden(action))
        }
    }

    /// Enforce a rule about `img`, with Glance's image target.
    pub async fn authorize_image(
        &self,
        ctx: &AuthContext,
        action: &str,
        img: &Image,
    ) -> Result<()> {
        let member_id = match &ctx.project_id {
            Some(p) if img.owner.as_ref() != Some(p) => store::members::get(&self.db, &img.id, p)
                .await?
                .map(|m| m.member),
            _ => None,
        };
        self.authorize(
            ctx,
            action,
            &crate::policy::image_target(img, member_id.as_deref()),
        )
    }

    pub fn is_owner(ctx: &AuthContext, img: &Image) -> bool {
        ctx.project_id.is_some() && img.owner == ctx.project_id
    }

    /// Whether the caller may see the image at all (404 otherwise).
    pub async fn can_see(&self, ctx: &AuthContext, img: &Image) -> Result<bool> {
        if self.is_admin(ctx)
            || Self::is_owner(ctx, img)
            || matches!(img.visibility.as_str(), "public" | "community")
        {
            return Ok(true);
        }
        if img.visibility == "shared" {
            if let Some(p) = &ctx.project_id {
                return Ok(store::members::get(&self.db, &img.id, p).await?.is_some());
            }
        }
        Ok(false)
    }

    /// The image, if it exists and the caller may see it.
    pub async fn get_visible(&self, ctx: &AuthContext, id: &str) -> Result<Image> {
        let img = store::images::get(&self.db, id)
            .await?
            .ok_or_else(|| not_found(id))?;
        if !self.can_see(ctx, &img).await? {
            return Err(not_found(id));
        }
        Ok(img)
    }

    /// The image, if the caller may see it (404 otherwise) and `action`
    /// on it (403 otherwise).
    pub async fn get_authorized(&self, ctx: &AuthContext, id: &str, action: &str) -> Result<Image> {
        let img = self.get_visible(ctx, id).await?;
        self.authorize_image(ctx, action, &img).await?;
        Ok(img)
    }

    // ----- views -----

    pub fn view(&self, i: &Image) -> Value {
        let mut v = json!({
            "id": i.id,
            "name": i.name,
            "status": i.status,
            "visibility": i.visibility,
            "protected": i.protected,
            "os_hidden": i.os_hidden,
            "owner": i.owner,
            "size": i.size,
            "virtual_size": i.virtual_size,
            "checksum": i.checksum,
            "os_hash_algo": i.os_hash_algo,
            "os_hash_value": i.os_hash_value,
            "disk_format": i.disk_format,
            "container_format": i.container_format,
            "min_disk": i.min_disk,
            "min_ram": i.min_ram,
            "tags": i.tags,
            "created_at": i.created_at,
            "updated_at": i.updated_at,
            "self": format!("/v2/images/{}", i.id),
            "file": format!("/v2/images/{}/file", i.id),
            "schema": "/v2/schemas/image",
        });
        if matches!(i.status.as_str(), "active" | "deactivated") {
            v["stores"] = json!("file");
        }
        let o = v.as_object_mut().expect("object");
        for (k, val) in &i.properties {
            o.entry(k.clone()).or_insert_with(|| val.clone());
        }
        v
    }

    // ----- metadata -----

    /// Validate one attribute value and set it on the image.
    fn set_attribute(
        &self,
        ctx: &AuthContext,
        img: &mut Image,
        key: &str,
        value: &Value,
        creating: bool,
    ) -> Result<()> {
        let bad = |why: &str| {
            Err(Error::BadRequest(format!(
                "Invalid value for '{key}': {why}"
            )))
        };
        if READ_ONLY.contains(&key) && !(creating && key == "id") {
            return Err(Error::Forbidden(format!("Attribute '{key}' is read-only.")));
        }
        if RESERVED.contains(&key) || key.starts_with("os_glance") {
            return Err(Error::Forbidden(format!("Attribute '{key}' is reserved.")));
        }
        match key {
            "id" => match value.as_str().and_then(|s| uuid::Uuid::parse_str(s).ok()) {
                Some(u) => img.id = u.hyphenated().to_string(),
                None => return bad("must be a UUID"),
            },
            "name" => match value {
                Value::Null => img.name = None,
                Value::String(s) if s.chars().count() <= 255 => img.name = Some(s.clone()),
                _ => return bad("must be a string of at most 255 characters or null"),
            },
            "visibility" => match value.as_str() {
                Some(v) if VISIBILITIES.contains(&v) => {
                    // As Glance: the rule is checked on the image as it is.
                    let target = crate::policy::image_target(img, None);
                    match v {
                        "public" => self.authorize(ctx, "publicize_image", &target)?,
                        "community" => self.authorize(ctx, "communitize_image", &target)?,
                        _ => {}
                    }
                    img.visibility = v.to_owned();
                }
                _ => return bad("must be one of public, private, shared, community"),
            },
            "protected" | "os_hidden" => match value.as_bool() {
                Some(b) if key == "protected" => img.protected = b,
                Some(b) => img.os_hidden = b,
                None => return bad("must be a boolean"),
            },
            "min_disk" | "min_ram" => match value.as_i64() {
                Some(n) if n >= 0 && n <= i32::MAX as i64 => {
                    if key == "min_disk" {
                        img.min_disk = n
                    } else {
                        img.min_ram = n
                    }
                }
                _ => return bad("must be a non-negative integer"),
            },
            "disk_format" | "container_format" => {
                let allowed = if key == "disk_format" {
                    DISK_FORMATS
                } else {
                    CONTAINER_FORMATS
                };
                let v = match value {
                    Value::Null => None,
                    Value::String(s) if allowed.contains(&s.as_str()) => Some(s.clone()),
                    _ => return bad(&format!("must be one of {}", allowed.join(", "))),
                };
                if !creating
                    && img.status != "queued"
                    && v.as_deref()
                        != (if key == "disk_format" {
                            img.disk_format.as_deref()
                        } else {
                            img.container_format.as_deref()
                        })
                {
                    return Err(Error::Forbidden(format!(
                        "Attribute '{key}' can be only replaced for a queued image."
                    )));
                }
                if key == "disk_format" {
                    img.disk_format = v
                } else {
                    img.container_format = v
                }
            }
            "tags" => {
                let tags = value.as_array().ok_or_else(|| {
                    Error::BadRequest("Invalid value for 'tags': must be a list.".into())
                })?;
                let mut out: Vec<String> = Vec::new();
                for t in tags {
                    match t.as_str() {
                        Some(s) if s.chars().count() <= 255 => {
                            if !out.iter().any(|x| x == s) {
                                out.push(s.to_owned())
                            }
                        }
                        _ => return bad("tags must be strings of at most 255 characters"),
                    }
                }
                if out.len() > MAX_TAGS {
                    return Err(Error::PayloadTooLarge(format!(
                        "Maximum number of tags ({MAX_TAGS}) exceeded."
                    )));
                }
                img.tags = out;
            }
            "owner" => {
                let v = match value {
                    Value::Null => None,
                    Value::String(s) if s.chars().count() <= 255 => Some(s.clone()),
                    _ => return bad("must be a string of at most 255 characters or null"),
                };
                if v != img.owner && !self.is_admin(ctx) && !(creating && v == ctx.project_id) {
                    return Err(Error::Forbidden(
                        "Only an administrator may set the owner of an image.".into(),
                    ));
                }
                img.owner = v;
            }
            "locations" => {
                return Err(Error::Forbidden(
                    "Image locations are not exposed by this deployment.".into(),
                ));
            }
            _ => {
                if key.is_empty() || key.chars().count() > 255 {
                    return bad("property names are 1 to 255 characters");
                }
                match value {
                    Value::String(s) if s.chars().count() <= 65535 => {
                        img.properties
                            .insert(key.to_owned(), Value::String(s.clone()));
                    }
                    _ => return bad("custom properties are strings"),
                }
            }
        }
        Ok(())
    }

    /// `POST /v2/images`.
    pub async fn create(&self, ctx: &AuthContext, body: &Map<String, Value>) -> Result<Image> {
        let owner = ctx.project_id.clone().ok_or_else(|| {
            Error::Forbidden("A project-scoped token is required to create images.".into())
        })?;
        // Glance's add_image target: the caller's project and the owner
        // the new image is to have.
        let requested_owner = body.get("owner").and_then(Value::as_str).unwrap_or(&owner);
        self.authorize(
            ctx,
            "add_image",
            &json!({"project_id": owner, "owner": requested_owner}),
        )?;
        let now = store::now_str();
        let mut img = Image {
            id: uuid::Uuid::new_v4().to_string(),
            name: None,
            status: "queued".into(),
            visibility: "shared".into(),
            protected: false,
            os_hidden: false,
            owner: Some(owner.clone()),
            size: None,
            virtual_size: None,
            checksum: None,
            os_hash_algo: None,
            os_hash_value: None,
            disk_format: None,
            container_format: None,
            min_disk: 0,
            min_ram: 0,
            tags: vec![],
            properties: Map::new(),
            created_at: now.clone(),
            updated_at: now,
        };
        for (k, v) in body {
            self.set_attribute(ctx, &mut img, k, v, true)?;
        }
        if store::images::get(&self.db, &img.id).await?.is_some() {
            return Err(Error::Conflict(format!(
                "An image with identifier {} already exists",
                img.id
            )));
        }
        let quota = self.config.image.image_count_quota;
        let counted_owner = img.owner.clone().unwrap_or_else(|| owner.clone());
        if !store::images::insert_within_count_quota(&self.db, &img, &counted_owner, quota).await? {
            return Err(Error::PayloadTooLarge(format!(
                "The project may own at most {quota} images; delete one before creating another."
            )));
        }
        self.notify("image.create", &img).await;
        Ok(img)
    }

    /// Apply a JSON patch (`application/openstack-images-v2.1-json-patch`;
    /// `v2.0` differs only in refusing `add` over an existing property).
    pub async fn patch(
        &self,
        ctx: &AuthContext,
        id: &str,
        ops: &Value,
        v20: bool,
    ) -> Result<Image> {
        let mut img = self.get_authorized(ctx, id, "modify_image").await?;
        let ops = ops.as_array().ok_or_else(|| {
            Error::BadRequest("Request body must be a JSON array of operation objects.".into())
        })?;
        for op in ops {
            let o = op
                .as_object()
                .ok_or_else(|| Error::BadRequest("Operations must be JSON objects.".into()))?;
            // v2.1: {"op": "add", "path": "/x", "value": v}; v2.0: {"add": "/x", "value": v}
            let (kind, path) = if let Some(k) = o.get("op").and_then(Value::as_str) {
                (
                    k.to_owned(),
                    o.get("path")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_owned(),
                )
            } else if let Some((k, p)) = ["add", "replace", "remove"].iter().find_map(|k| {
                o.get(*k)
                    .and_then(Value::as_str)
                    .map(|p| (k.to_string(), p.to_owned()))
            }) {
                (k, p)
            } else {
                return Err(Error::BadRequest(
                    "Unable to find 'op' in JSON Schema change".into(),
                ));
            };
            let key = path
                .strip_prefix('/')
                .filter(|k| !k.is_empty())
                .ok_or_else(|| {
                    Error::BadRequest(format!("Invalid JSON pointer for this resource: '{path}'"))
                })?
                .replace("~1", "/")
                .replace("~0", "~");
            if key.contains('/') && !key.starts_with("locations") {
                return Err(Error::BadRequest(format!(
                    "Invalid JSON pointer for this resource: '{path}'"
                )));
            }
            let is_base = Self::is_base_attribute(&key);
            match kind.as_str() {
                "add" | "replace" => {
                    let value = o.get("value").ok_or_else(|| {
                        Error::BadRequest(format!("Operation '{kind}' requires a 'value'."))
                    })?;
                    if kind == "replace"
                        && !is_base
                        && !img.properties.contains_key(&key)
                        && !READ_ONLY.contains(&key.as_str())
                        && !RESERVED.contains(&key.as_str())
                        && !key.starts_with("os_glance")
                    {
                        return Err(Error::Conflict(format!("Property {key} does not exist.")));
                    }
                    if kind == "add" && v20 && (is_base || img.properties.contains_key(&key)) {
                        return Err(Error::Conflict(format!("Property {key} already present.")));
                    }
                    self.set_attribute(ctx, &mut img, &key, value, false)?;
                }
                "remove" => {
                    if READ_ONLY.contains(&key.as_str()) {
                        return Err(Error::Forbidden(format!("Attribute '{key}' is read-only.")));
                    }
                    if RESERVED.contains(&key.as_str()) || key.starts_with("os_glance") {
                        return Err(Error::Forbidden(format!("Attribute '{key}' is reserved.")));
                    }
                    if is_base {
                        return Err(Error::Forbidden(format!(
                            "Property {key} may not be removed."
                        )));
                    }
                    if img.properties.remove(&key).is_none() {
                        return Err(Error::Conflict(format!("Property {key} does not exist.")));
                    }
                }
                other => {
                    return Err(Error::BadRequest(format!(
                        "Invalid operation: `{other}`. It must be one of add, replace, remove."
                    )));
                }
            }
        }
        img.updated_at = store::now_str();
        // Metadata only: an upload or (de)activation running meanwhile keeps its state.
        store::images::update_metadata(&self.db, &img).await?;
        let img = store::images::get(&self.db, id)
            .await?
            .ok_or_else(|| not_found(id))?;
        self.notify("image.update", &img).await;
        Ok(img)
    }

    fn is_base_attribute(key: &str) -> bool {
        matches!(
            key,
            "name"
                | "visibility"
                | "protected"
                | "os_hidden"
                | "min_disk"
                | "min_ram"
                | "disk_format"
                | "container_format"
                | "tags"
                | "owner"
        )
    }

    pub async fn delete(&self, ctx: &AuthContext, id: &str) -> Result<()> {
        let img = self.get_authorized(ctx, id, "delete_image").await?;
        if img.protected {
            return Err(Error::Forbidden(format!(
                "Image {id} is protected and cannot be deleted."
            )));
        }
        store::images::delete(&self.db, id).await?;
        self.store.delete(id).await.map_err(Error::internal)?;
        // As Glance: the record is gone; data the store fails to drop is
        // logged, not an error to the client.
        if let Err(e) = self.data.delete(id).await {
            tracing::warn!(image = %id, error = %e, "could not delete the image data");
        }
        self.notify("image.delete", &img).await;
        Ok(())
    }

    pub async fn set_active_state(
        &self,
        ctx: &AuthContext,
        id: &str,
        deactivate: bool,
    ) -> Result<()> {
        let action = if deactivate {
            "deactivate"
        } else {
            "reactivate"
        };
        let img = self.get_authorized(ctx, id, action).await?;
        let (from, to) = if deactivate {
            ("active", "deactivated")
        } else {
            ("deactivated", "active")
        };
        if img.status == to {
            return Ok(());
        }
        if img.status != from || !store::images::transition(&self.db, id, &[from], to).await? {
            return Err(Error::Forbidden(format!(
                "Not allowed to {action} image in status '{}'",
                img.status
            )));
        }
        let img = store::images::get(&self.db, id)
            .await?
            .ok_or_else(|| not_found(id))?;
        self.notify(
            if deactivate {
                "image.deactivate"
            } else {
                "image.reactivate"
            },
            &img,
        )
        .await;
        Ok(())
    }

    // ----- data -----

    /// How many bytes an upload to `id` may write (the size cap, and the
    /// owner's storage quota less what is stored and what other uploads in
    /// flight reserved), reserving them until [`Self::release_bytes`].
    async fn reserve_bytes(
        &self,
        id: &str,
        owner: Option<&str>,
        declared: Option<u64>,
    ) -> Result<u64> {
        store::images::reserve_upload(
            &self.db,
            id,
            owner.unwrap_or(""),
            self.config.image.user_storage_quota,
            self.config.image.image_size_cap,
            declared,
        )
        .await
    }

    async fn release_bytes(&self, id: &str) {
        if let Err(e) = store::images::release_upload(&self.db, id).await {
            tracing::error!(image = %id, error = %e, "upload reservation not released");
        }
    }

    /// `PUT /v2/images/{id}/file`: queued → saving → active (or back to queued).
    pub async fn upload<S, E>(
        &self,
        ctx: &AuthContext,
        id: &str,
        body: S,
        declared_size: Option<u64>,
    ) -> Result<Image>
    where
        S: futures::Stream<Item = std::result::Result<axum::body::Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let img = self.get_authorized(ctx, id, "upload_image").await?;
        if img.status == "queued" {
            Self::require_formats(&img)?;
        }
        if img.status != "queued"
            || !store::images::transition(&self.db, id, &["queued"], "saving").await?
        {
            return Err(Error::Conflict(format!(
                "Image status transition from {} to saving is not allowed",
                img.status
            )));
        }
        let allowance = match self
            .reserve_bytes(id, img.owner.as_deref(), declared_size)
            .await
        {
            Ok(a) => a,
            Err(e) => {
                self.requeue(id).await;
                return Err(e);
            }
        };
        let outcome = self.upload_within(id, body, declared_size, allowance).await;
        self.release_bytes(id).await;
        outcome
    }

    /// The data of an upload whose room is reserved: stored and the image
    /// activated, or the image back to `queued` with nothing kept.
    async fn upload_within<S, E>(
        &self,
        id: &str,
        body: S,
        declared_size: Option<u64>,
        allowance: u64,
    ) -> Result<Image>
    where
        S: futures::Stream<Item = std::result::Result<axum::body::Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        if declared_size.is_some_and(|s| s > allowance) {
            self.requeue(id).await;
            return Err(Error::PayloadTooLarge(format!(
                "Image exceeds the storage quota or size limit of {allowance} bytes."
            )));
        }
        let written = match self.store.write(id, body, allowance).await {
            Ok(w) => w,
            Err(e) => {
                self.requeue(id).await;
                return Err(e.into());
            }
        };
        match self
            .activate(id, &written, declared_size, &["saving"])
            .await
        {
            Ok(img) => {
                self.notify("image.upload", &img).await;
                self.notify("image.activate", &img).await;
                Ok(img)
            }
            Err(e) => {
                self.store.discard(&written).await;
                self.requeue(id).await;
                Err(e)
            }
        }
    }

    /// Glance refuses data for an image whose formats are not set yet.
    fn require_formats(img: &Image) -> Result<()> {
        if img.disk_format.is_none() || img.container_format.is_none() {
            return Err(Error::BadRequest(
                "Properties disk_format, container_format must be set prior to saving data.".into(),
            ));
        }
        Ok(())
    }

    async fn requeue(&self, id: &str) {
        if let Err(e) = store::images::transition(&self.db, id, &["saving"], "queued").await {
            tracing::error!(image = %id, error = %e, "could not return the image to queued");
        }
    }

    /// Verify a received upload, move it into place and mark the image active.
    async fn activate(
        &self,
        id: &str,
        w: &Written,
        declared_size: Option<u64>,
        from: &[&str],
    ) -> Result<Image> {
        if let Some(d) = declared_size {
            if d != w.size {
                return Err(Error::BadRequest(format!(
                    "The declared size ({d} bytes) does not match the data received ({} bytes).",
                    w.size
                )));
            }
        }
        let mut img = store::images::get(&self.db, id)
            .await?
            .ok_or_else(|| not_found(id))?;
        // As Glance: the data of `bare` containers is inspected; other
        // containers (ovf, ova, docker, …) wrap it and are taken as given.
        let virtual_size = if img.container_format.as_deref() == Some("bare") {
            crate::format::verify(img.disk_format.as_deref(), &w.head, w.size)
                .map_err(Error::BadRequest)?
        } else {
            None
        };
        if !from.contains(&img.status.as_str()) {
            return Err(Error::Conflict(format!(
                "Image {id} changed state during the upload ({}).",
                img.status
            )));
        }
        self.data.put(id, w).await?;
        img.size = Some(w.size as i64);
        img.virtual_size = virtual_size.map(|v| v as i64);
        img.checksum = Some(w.md5.clone());
        img.os_hash_algo = Some("sha512".into());
        img.os_hash_value = Some(w.sha512.clone());
        img.status = "active".into();
        img.updated_at = store::now_str();
        store::images::store_data(&self.db, &img).await?;
        Ok(img)
    }

    /// `PUT /v2/images/{id}/stage`: queued → uploading, data kept in
    /// staging. Staged bytes count against the owner's storage quota (as
    /// Glance's `image_stage_total`): they stay reserved until the import
    /// stores them or the image is deleted.
    pub async fn stage<S, E>(
        &self,
        ctx: &AuthContext,
        id: &str,
        body: S,
        declared_size: Option<u64>,
    ) -> Result<()>
    where
        S: futures::Stream<Item = std::result::Result<axum::body::Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        // Glance's stage and glance-direct import are `modify_image`.
        let img = self.get_authorized(ctx, id, "modify_image").await?;
        if img.status != "queued"
            || !store::images::transition(&self.db, id, &["queued"], "uploading").await?
        {
            return Err(Error::Conflict(format!(
                "Image status transition from {} to uploading is not allowed",
                img.status
            )));
        }
        let staged = self
            .stage_within(id, img.owner.as_deref(), body, declared_size)
            .await;
        if let Err(e) = staged {
            self.release_bytes(id).await;
            let _ = store::images::transition(&self.db, id, &["uploading"], "queued").await;
            return Err(e);
        }
        Ok(())
    }

    /// Reserve room for the staged data, write it, keep its size reserved
    /// and move it into staging; on failure nothing is left in staging (the
    /// caller releases the reservation).
    async fn stage_within<S, E>(
        &self,
        id: &str,
        owner: Option<&str>,
        body: S,
        declared_size: Option<u64>,
    ) -> Result<()>
    where
        S: futures::Stream<Item = std::result::Result<axum::body::Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let allowance = self.reserve_bytes(id, owner, declared_size).await?;
        if declared_size.is_some_and(|s| s > allowance) {
            return Err(Error::PayloadTooLarge(format!(
                "Image exceeds the storage quota or size limit of {allowance} bytes."
            )));
        }
        let written = self.store.write(id, body, allowance).await?;
        let staged = async {
            store::images::keep_reservation(&self.db, id, written.size).await?;
            self.store
                .commit(&written, &self.store.staging_path(id))
                .await
                .map_err(Error::internal)
        };
        if let Err(e) = staged.await {
            self.store.discard(&written).await;
            return Err(e);
        }
        // Deleted meanwhile: its reservation went with it, so must the data.
        if store::images::get(&self.db, id)
            .await?
            .is_none_or(|i| i.status != "uploading")
        {
            let _ = tokio::fs::remove_file(self.store.staging_path(id)).await;
            return Err(not_found(id));
        }
        Ok(())
    }

    /// `POST /v2/images/{id}/import` with `glance-direct`: the staged data
    /// becomes the image in the background (202 now, `active` when done).
    pub async fn import(
        self: &Arc<Self>,
        ctx: &AuthContext,
        id: &str,
        method: &str,
        import_req: &Value,
        request_id: &str,
    ) -> Result<()> {
        let img = self.get_authorized(ctx, id, "modify_image").await?;
        if img.disk_format.is_none() || img.container_format.is_none() {
            return Err(Error::Conflict(format!(
                "'{}' needs to be set before import",
                if img.container_format.is_none() {
                    "container_format"
                } else {
                    "disk_format"
                }
            )));
        }
        if method != "glance-direct" {
            return Err(Error::BadRequest(format!(
                "Import method {method} is not available; use glance-direct."
            )));
        }
        if img.status != "uploading"
            || !store::images::transition(&self.db, id, &["uploading"], "importing").await?
        {
            return Err(Error::Conflict(format!(
                "Image {id} has no staged data to import (status {}).",
                img.status
            )));
        }
        let now = store::now_str();
        let task = store::tasks::Task {
            id: uuid::Uuid::new_v4().to_string(),
            task_type: "api_image_import".into(),
            status: "processing".into(),
            owner: img.owner.clone(),
            image_id: Some(id.to_owned()),
            request_id: Some(request_id.to_owned()),
            user_id: Some(ctx.user_id.clone()),
            input: json!({"image_id": id, "import_req": import_req, "backend": ["file"]}),
            result: Value::Null,
            message: String::new(),
            created_at: now.clone(),
            updated_at: now,
        };
        store::tasks::insert(&self.db, &task).await?;
        let svc = self.clone();
        let id = id.to_owned();
        tokio::spawn(async move {
            // Every outcome is recorded on the task and logged: nothing
            // of the import's result is dropped.
            let (status, result, message) = match svc.finish_import(&id).await {
                Ok(()) => ("success", json!({"image_id": id}), String::new()),
                Err(e) => {
                    tracing::warn!(image = %id, error = %e, "import failed");
                    if let Err(e) =
                        store::images::transition(&svc.db, &id, &["importing"], "queued").await
                    {
                        tracing::error!(image = %id, error = %e, "image not returned to queued");
                    }
                    if let Err(e) = tokio::fs::remove_file(svc.store.staging_path(&id)).await {
                        if e.kind() != std::io::ErrorKind::NotFound {
                            tracing::warn!(image = %id, error = %e, "staged data not removed");
                        }
                    }
                    svc.release_bytes(&id).await;
                    ("failure", Value::Null, e.message().to_owned())
                }
            };
            if let Err(e) = store::tasks::finish(&svc.db, &task.id, status, &result, &message).await
            {
                tracing::error!(task = %task.id, error = %e, "import task not finished");
            }
        });
        Ok(())
    }

    async fn finish_import(&self, id: &str) -> Result<()> {
        let staged = self.store.staging_path(id);
        let file = tokio::fs::File::open(&staged)
            .await
            .map_err(Error::internal)?;
        let stream = tokio_util::io::ReaderStream::with_capacity(file, 1 << 20);
        let written = self.store.write(id, stream, u64::MAX).await?;
        match self.activate(id, &written, None, &["importing"]).await {
            Ok(img) => {
                let _ = tokio::fs::remove_file(&staged).await;
                self.notify("image.upload", &img).await;
                self.notify("image.activate", &img).await;
                Ok(())
            }
            Err(e) => {
                self.store.discard(&written).await;
                Err(e)
            }
        }
    }

    // ----- members -----

    pub fn member_view(m: &Member) -> Value {
        json!({"image_id": m.image_id, "member_id": m.member, "status": m.status,
               "created_at": m.created_at, "updated_at": m.updated_at, "schema": "/v2/schemas/member"})
    }

    pub async fn add_member(&self, ctx: &AuthContext, id: &str, member: &str) -> Result<Member> {
        let img = self.get_authorized(ctx, id, "add_member").await?;
        if img.visibility != "shared" {
            return Err(Error::Forbidden(format!(
                "Only shared images have members; image {id} is {}.",
                img.visibility
            )));
        }
        let members = store::members::list_for_image(&self.db, id).await?;
        if members.iter().any(|m| m.member == member) {
            return Err(Error::Conflict(format!(
                "Member {member} already exists for image {id}."
            )));
        }
        if members.len() >= MAX_MEMBERS {
            return Err(Error::PayloadTooLarge(format!(
                "Maximum number of image members ({MAX_MEMBERS}) exceeded."
            )));
        }
        let now = store::now_str();
        let m = Member {
            image_id: id.into(),
            member: member.into(),
            status: "pending".into(),
            created_at: now.clone(),
            updated_at: now,
        };
        store::members::insert(&self.db, &m).await?;
        let _ = self
            .bus
            .notify(
                "image.localhost",
                "image.member.create",
                Self::member_view(&m),
            )
            .await;
        Ok(m)
    }

    /// Members the caller may see: all of them for the owner, its own entry for a member.
    pub async fn list_members(&self, ctx: &AuthContext, id: &str) -> Result<Vec<Member>> {
        let img = self.get_authorized(ctx, id, "get_members").await?;
        if img.visibility != "shared" {
            return Err(Error::Forbidden(format!(
                "Only shared images have members; image {id} is {}.",
                img.visibility
            )));
        }
        let all = store::members::list_for_image(&self.db, id).await?;
        if self.is_admin(ctx) || Self::is_owner(ctx, &img) {
            return Ok(all);
        }
        Ok(all
            .into_iter()
            .filter(|m| Some(&m.member) == ctx.project_id.as_ref())
            .collect())
    }

    pub async fn get_member(&self, ctx: &AuthContext, id: &str, member: &str) -> Result<Member> {
        self.list_members(ctx, id)
            .await?
            .into_iter()
            .find(|m| m.member == member)
            .ok_or_else(|| Error::NotFound(format!("Member {member} not found for image {id}.")))
    }

    /// Only the member project itself accepts or rejects.
    pub async fn update_member(
        &self,
        ctx: &AuthContext,
        id: &str,
        member: &str,
        status: &str,
    ) -> Result<Member> {
        if !matches!(status, "pending" | "accepted" | "rejected") {
            return Err(Error::BadRequest(format!(
                "Invalid status: {status}. It must be pending, accepted or rejected."
            )));
        }
        let img = self.get_authorized(ctx, id, "modify_member").await?;
        let mut m = self.get_member(ctx, &img.id, member).await?;
        // Only the member project itself accepts or rejects, the image's
        // owner (even an admin) does not answer for it.
        if ctx.project_id.as_deref() != Some(member) {
            return Err(forbidden("modify_member"));
        }
        m.status = status.into();
        m.updated_at = store::now_str();
        store::members::update(&self.db, &m).await?;
        Ok(m)
    }

    pub async fn delete_member(&self, ctx: &AuthContext, id: &str, member: &str) -> Result<()> {
        self.get_authorized(ctx, id, "delete_member").await?;
        if !store::members::delete(&self.db, id, member).await? {
            return Err(Error::NotFound(format!(
                "Member {member} not found for image {id}."
            )));
        }
        Ok(())
    }
}

impl ImageService {
    pub fn task_view(t: &store::tasks::Task) -> Value {
        json!({
            "id": t.id, "type": t.task_type, "status": t.status, "owner": t.owner,
            "input": t.input, "result": t.result, "message": t.message,
            "image_id": t.image_id, "request_id": t.request_id, "user_id": t.user_id,
            "created_at": t.created_at, "updated_at": t.updated_at, "expires_at": Value::Null,
            "self": format!("/v2/tasks/{}", t.id), "schema": "/v2/schemas/task",
        })
    }
}
