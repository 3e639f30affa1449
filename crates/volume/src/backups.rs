//! The backup service: backups of a volume to the directory driver
//! (`operations::backup`), their `backups` and `backup_gigabytes` quotas,
//! and restores to a new volume or over an existing `available` one.

use crate::operations::backup as op;
use crate::service::VolumeService;
use crate::store::db_err;
use crate::store::{self, backups::Backup, volumes::Volume};
use ferrostack_core::auth::AuthContext;
use ferrostack_core::{Error, Result};
use serde_json::{json, Map};
use std::sync::Arc;

/// What a backup create asks for, after the API checked its shape.
pub struct NewBackup {
    pub volume_id: String,
    pub name: Option<String>,
    pub description: Option<String>,
    pub incremental: bool,
    pub force: bool,
    /// Back up this snapshot of the volume instead of the volume.
    pub snapshot_id: Option<String>,
}

pub fn backup_not_found(id: &str) -> Error {
    Error::NotFound(format!("Backup {id} could not be found."))
}

impl VolumeService {
    pub async fn visible_backup(&self, ctx: &AuthContext, id: &str) -> Result<Backup> {
        let b = store::backups::get(&self.db, id)
            .await?
            .ok_or_else(|| backup_not_found(id))?;
        if ctx.project_id.as_deref() != Some(&b.project_id) && !self.is_admin(ctx) {
            return Err(backup_not_found(id));
        }
        Ok(b)
    }

    /// Record a backup in `creating` (the volume `backing-up`) with its
    /// operation under the project's quota lock, then run it.
    pub async fn create_backup(
        self: &Arc<Self>,
        ctx: &AuthContext,
        req: NewBackup,
    ) -> Result<Backup> {
        let v = self.visible_volume(ctx, &req.volume_id).await?;
        self.authorize(ctx, "backup:create", &v.project_id)?;
        let snapshot = self.backup_source_check(ctx, &v, &req).await?;
        let parent_id = self.incremental_parent(&v, req.incremental).await?;
        let now = store::now_str();
        let b = Backup {
            id: uuid::Uuid::new_v4().to_string(),
            project_id: v.project_id.clone(),
            user_id: ctx.user_id.clone(),
            volume_id: v.id.clone(),
            name: req.name,
            description: req.description,
            size: v.size,
            status: "creating".into(),
            fail_reason: None,
            created_at: now.clone(),
            updated_at: now,
            parent_id,
            snapshot_id: snapshot.as_ref().map(|s| s.id.clone()),
            volume_metadata: v.metadata.clone(),
        };
        let mut tx = self
            .db
            .begin_under_quota_lock("project_id", &v.project_id)
            .await?;
        let deltas = [
            ("backups".to_owned(), 1),
            ("backup_gigabytes".to_owned(), b.size),
        ];
        self.check_quotas_on(&mut tx, &v.project_id, &deltas)
            .await?;
        // A snapshot is read, not the volume: the snapshot is the one
        // `backing-up`, as in Cinder.
        let marked = match &snapshot {
            Some(s) => {
                store::snapshots::transition_on(
                    &self.db,
                    &mut tx,
                    &s.id,
                    &["available"],
                    "backing-up",
                )
                .await?
            }
            None => {
                store::volumes::transition_on(&self.db, &mut tx, &v.id, &[&v.status], "backing-up")
                    .await?
            }
        };
        if !marked {
            return Err(crate::service::invalid_volume_status());
        }
        store::backups::insert_on(&self.db, &mut tx, &b).await?;
        let op_id = uuid::Uuid::new_v4().to_string();
        let params = json!({"backup_id": b.id, "previous_status": v.status});
        store::operations::create_on(&self.db, &mut tx, &op_id, op::CREATE, &v.id, &params).await?;
        tx.commit().await.map_err(db_err)?;
        op::notify(self, "backup.create.start", &b).await;
        crate::operation::start(self, &op_id).await?;
        Ok(b)
    }

    /// The volume may be backed up (`available`, or `in-use` with
    /// `force`); with a snapshot, the snapshot must be the volume's and
    /// `available`, whatever the volume's status.
    async fn backup_source_check(
        &self,
        ctx: &AuthContext,
        v: &Volume,
        req: &NewBackup,
    ) -> Result<Option<store::snapshots::Snapshot>> {
        if let Some(sid) = &req.snapshot_id {
            let s = self.visible_snapshot(ctx, sid).await?;
            if s.volume_id != v.id {
                return Err(Error::BadRequest(format!(
                    "Invalid input received: Volume {} is not the volume of snapshot {sid}.",
                    v.id
                )));
            }
            if s.status != "available" {
                return Err(Error::BadRequest(format!(
                    "Invalid snapshot: Snapshot to be backed up must be available, but the current status is \"{}\".",
                    s.status
                )));
            }
            return Ok(Some(s));
        }
        match v.status.as_str() {
            "available" => Ok(None),
            "in-use" if req.force => Ok(None),
            "in-use" => Err(Error::BadRequest(
                "Invalid volume: Backing up an in-use volume must use the force flag.".into(),
            )),
            other => Err(Error::BadRequest(format!(
                "Invalid volume: Volume to be backed up must be available or in-use, but the current status is \"{other}\"."
            ))),
        }
    }

    /// The backup an incremental one builds on: the volume's newest
    /// `available` backup (Cinder refuses an incremental without one).
    async fn incremental_parent(&self, v: &Volume, incremental: bool) -> Result<Option<String>> {
        if !incremental {
            return Ok(None);
        }
        match store::backups::latest_of_volume(&self.db, &v.id).await? {
            Some(p) => Ok(Some(p.id)),
            None => Err(Error::BadRequest(
                "Invalid backup: No backups available to do an incremental backup.".into(),
            )),
        }
    }

    /// `PUT /backups/{id}` (3.9): a new name or description.
    pub async fn update_backup(
        &self,
        ctx: &AuthContext,
        id: &str,
        name: Option<String>,
        description: Option<String>,
    ) -> Result<Backup> {
        let mut b = self.visible_backup(ctx, id).await?;
        self.authorize(ctx, "backup:update", &b.project_id)?;
        if let Some(n) = name {
            b.name = Some(n);
        }
        if let Some(d) = description {
            b.description = Some(d);
        }
        store::backups::rename(&self.db, &b).await?;
        Ok(b)
    }

    /// `os-reset_status` (admin): Cinder's two settable statuses.
    pub async fn reset_backup_status(
        &self,
        ctx: &AuthContext,
        id: &str,
        status: &str,
    ) -> Result<()> {
        let b = self.visible_backup(ctx, id).await?;
        self.authorize(
            ctx,
            "volume_extension:backup_admin_actions:reset_status",
            &b.project_id,
        )?;
        if !matches!(status, "available" | "error") {
            return Err(Error::BadRequest(format!(
                "Invalid input received: Invalid backup status {status}: must be available or error."
            )));
        }
        store::backups::transition(&self.db, id, &[b.status.as_str()], status, None).await?;
        Ok(())
    }

    pub async fn delete_backup(self: &Arc<Self>, ctx: &AuthContext, id: &str) -> Result<()> {
        let b = self.visible_backup(ctx, id).await?;
        self.authorize(ctx, "backup:delete", &b.project_id)?;
        if store::backups::has_dependents(&self.db, id).await? {
            return Err(Error::BadRequest(
                "Invalid backup: Incremental backups exist for this backup.".into(),
            ));
        }
        if !store::backups::transition(&self.db, id, &["available", "error"], "deleting", None)
            .await?
        {
            return Err(Error::BadRequest(
                "Invalid backup: Backup status must be available or error".into(),
            ));
        }
        let op_id = uuid::Uuid::new_v4().to_string();
        let mut conn = self.db.pool.acquire().await.map_err(db_err)?;
        let params = json!({"backup_id": id});
        store::operations::create_on(
            &self.db,
            &mut conn,
            &op_id,
            op::DELETE,
            &b.volume_id,
            &params,
        )
        .await?;
        drop(conn);
        op::notify_by_id(self, "backup.delete.start", id).await?;
        crate::operation::start(self, &op_id).await
    }

    /// Restore an `available` backup over volume `volume_id`, or into a new
    /// volume of the backup's size (named `name`, else
    /// `restore_backup_<id>`); the volume restored to.
    pub async fn restore_backup(
        self: &Arc<Self>,
        ctx: &AuthContext,
        id: &str,
        volume_id: Option<&str>,
        name: Option<String>,
    ) -> Result<Volume> {
        let b = self.visible_backup(ctx, id).await?;
        self.authorize(ctx, "backup:restore", &b.project_id)?;
        if b.status != "available" {
            return Err(Error::BadRequest(
                "Invalid backup: Backup status must be available".into(),
            ));
        }
        let project_id = Self::project_of(ctx)?;
        let existing = match volume_id {
            Some(vid) => Some(self.visible_volume(ctx, vid).await?),
            None => None,
        };
        let fresh = self.restore_target(ctx, &project_id, &b, name).await?;
        let mut tx = self
            .db
            .begin_under_quota_lock("project_id", &project_id)
            .await?;
        let v = match existing {
            Some(v) => {
                if v.size < b.size {
                    return Err(Error::BadRequest(format!(
                        "Invalid volume: volume size {} is too small to restore backup of size {}.",
                        v.size, b.size
                    )));
                }
                let from = ["available"];
                if !store::volumes::transition_on(
                    &self.db,
                    &mut tx,
                    &v.id,
                    &from,
                    "restoring-backup",
                )
                .await?
                {
                    return Err(Error::BadRequest(format!(
                        "Invalid volume: Volume to be restored to must be available, but the current status is \"{}\".",
                        v.status
                    )));
                }
                v
            }
            None => {
                let deltas = crate::quota::volume_deltas("__DEFAULT__", fresh.size);
                self.check_quotas_on(&mut tx, &project_id, &deltas).await?;
                store::volumes::insert_on(&self.db, &mut tx, &fresh).await?;
                fresh
            }
        };
        if !store::backups::transition_on(&self.db, &mut tx, id, &["available"], "restoring", None)
            .await?
        {
            return Err(Error::BadRequest(
                "Invalid backup: Backup status must be available".into(),
            ));
        }
        let op_id = uuid::Uuid::new_v4().to_string();
        let params = json!({"backup_id": id});
        store::operations::create_on(&self.db, &mut tx, &op_id, op::RESTORE, &v.id, &params)
            .await?;
        tx.commit().await.map_err(db_err)?;
        crate::operation::start(self, &op_id).await?;
        Ok(v)
    }

    /// The new volume a restore without `volume_id` fills.
    async fn restore_target(
        &self,
        ctx: &AuthContext,
        project_id: &str,
        b: &Backup,
        name: Option<String>,
    ) -> Result<Volume> {
        let now = store::now_str();
        Ok(Volume {
            id: uuid::Uuid::new_v4().to_string(),
            project_id: project_id.to_owned(),
            user_id: ctx.user_id.clone(),
            name: Some(name.unwrap_or_else(|| format!("restore_backup_{}", b.id))),
            description: None,
            size: b.size,
            status: "restoring-backup".into(),
            volume_type_id: self.find_type("__DEFAULT__").await?.id,
            availability_zone: self.config.volume.storage_availability_zone.clone(),
            bootable: false,
            metadata: b.volume_metadata.clone(),
            created_at: now.clone(),
            updated_at: now,
            snapshot_id: None,
            source_volid: None,
            image_metadata: Map::new(),
            group_id: None,
        })
    }
}

/// The Cinder driver whose records these are: the directory driver keeps
/// one file per backup under a directory, as Cinder's POSIX driver does.
pub const BACKUP_SERVICE: &str = "cinder.backup.drivers.posix.PosixBackupDriver";

/// Whether `name` is a backup file name this driver makes (`backup-<uuid>`):
/// an imported record names only such a file in the backup directory.
fn is_backup_file_name(name: &str) -> bool {
    name.strip_prefix("backup-")
        .is_some_and(|id| uuid::Uuid::parse_str(id).is_ok())
}

impl VolumeService {
    /// `export_record` (admin): the backup's record, enough to import it
    /// again after the database lost it (Cinder's base64 JSON `backup_url`).
    pub async fn export_backup_record(&self, ctx: &AuthContext, id: &str) -> Result<String> {
        use base64::Engine;
        let b = self.visible_backup(ctx, id).await?;
        self.authorize(ctx, "backup:export-import", &b.project_id)?;
        if b.status != "available" {
            return Err(Error::BadRequest(
                "Invalid backup: Backup status must be available and not restoring.".into(),
            ));
        }
        let record = json!({
            "id": b.id,
            "volume_id": b.volume_id,
            "display_name": b.name,
            "display_description": b.description,
            "size": b.size,
            "parent_id": b.parent_id,
            "snapshot_id": b.snapshot_id,
            "volume_metadata": b.volume_metadata,
            "created_at": b.created_at,
            "service_metadata": op::path(self, &b.id)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned()),
        });
        Ok(base64::engine::general_purpose::STANDARD.encode(record.to_string()))
    }

    /// `import_record` (admin): a backup record from [`export_backup_record`]
    /// becomes a backup of the caller's project whose file is a hard link
    /// to the exported one's (either can then be deleted alone).
    pub async fn import_backup_record(
        &self,
        ctx: &AuthContext,
        service: &str,
        url: &str,
    ) -> Result<Backup> {
        use base64::Engine;
        let project_id = Self::project_of(ctx)?;
        self.authorize(ctx, "backup:export-import", &project_id)?;
        let bad = |why: &str| Error::BadRequest(format!("Invalid input received: {why}"));
        if service != BACKUP_SERVICE {
            return Err(Error::BadRequest(format!(
                "Service {service} could not be found."
            )));
        }
        let raw = base64::engine::general_purpose::STANDARD
            .decode(url.trim())
            .map_err(|_| bad("Can't parse backup record."))?;
        let r: serde_json::Value =
            serde_json::from_slice(&raw).map_err(|_| bad("Can't parse backup record."))?;
        let text = |k: &str| r[k].as_str().map(str::to_owned);
        let id = text("id").filter(|i| uuid::Uuid::parse_str(i).is_ok());
        let file = text("service_metadata").filter(|f| is_backup_file_name(f));
        let (Some(id), Some(file), Some(volume_id), Some(size)) =
            (id, file, text("volume_id"), r["size"].as_i64())
        else {
            return Err(bad(
                "Backup record is missing id, volume_id, size or its file.",
            ));
        };
        if store::backups::get(&self.db, &id).await?.is_some() {
            return Err(bad("Backup already exists in database."));
        }
        let dir = op::backups_dir(self);
        let dest = op::path(self, &id);
        tokio::fs::hard_link(dir.join(&file), &dest)
            .await
            .map_err(|e| bad(&format!("the backup's file {file} cannot be used: {e}")))?;
        let now = store::now_str();
        let b = Backup {
            id,
            project_id,
            user_id: ctx.user_id.clone(),
            volume_id,
            name: text("display_name"),
            description: text("display_description"),
            size,
            status: "available".into(),
            fail_reason: None,
            created_at: text("created_at").unwrap_or_else(|| now.clone()),
            updated_at: now,
            parent_id: text("parent_id"),
            snapshot_id: text("snapshot_id"),
            volume_metadata: r["volume_metadata"]
                .as_object()
                .cloned()
                .unwrap_or_default(),
        };
        let mut conn = self.db.pool.acquire().await.map_err(db_err)?;
        if let Err(e) = store::backups::insert_on(&self.db, &mut conn, &b).await {
            let _ = tokio::fs::remove_file(&dest).await;
            return Err(e);
        }
        Ok(b)
    }
}
