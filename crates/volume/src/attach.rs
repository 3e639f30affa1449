//! Attaching volumes, as Cinder's attachments API (3.27+) and its legacy
//! volume actions do. Volume statuses: `available → reserved → attaching →
//! in-use → detaching → available` (the legacy `os-reserve` goes straight
//! to `attaching`, as Cinder's). Every status change is a compare-and-set
//! in SQL; the export is made before the record says `attaching` and
//! removed after it says `detaching`, so [`reconcile`] at start knows from
//! the records alone which exports to keep.

use crate::export::{ExportSource, Transport};
use crate::io_limits::IoLimits;
use crate::service::{volume_not_found, VolumeService};
use crate::store::attachments::{self, AttachStatus, Attachment};
use crate::store::db_err;
use crate::store::qos::{Consumer, QosSpecs};
use crate::store::{self, volumes::Volume};
use ferrostack_core::auth::AuthContext;
use ferrostack_core::{Error, Result};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;

pub fn attachment_not_found(id: &str) -> Error {
    Error::NotFound(format!("Volume attachment {id} could not be found."))
}

fn invalid(msg: String) -> Error {
    Error::BadRequest(format!("Invalid volume: {msg}"))
}

/// What an attach asks for besides the volume.
#[derive(Default)]
pub struct AttachRequest {
    pub instance_uuid: Option<String>,
    pub host_name: Option<String>,
    pub mountpoint: Option<String>,
    pub mode: String,
}

impl VolumeService {
    /// The volume's data as its exporter opens it.
    fn source_of(&self, id: &str) -> Result<ExportSource> {
        self.backend.export_source(id).ok_or_else(|| {
            Error::BadRequest(format!(
                "Invalid volume: the {} backend cannot export volume {id}.",
                self.backend.name()
            ))
        })
    }

    /// Export `v` for `connector`: a unix socket when the connector is this
    /// host, TCP on the management address otherwise.
    pub async fn connect(&self, v: &Volume, connector: &Value, mode: &str) -> Result<Value> {
        if !connector.is_object() {
            return Err(Error::BadRequest(
                "Invalid input received: connector must be an object.".into(),
            ));
        }
        let transport = if connector["host"].as_str() == Some(self.config.common.host.as_str()) {
            Transport::Local
        } else {
            Transport::Remote
        };
        let mut source = self.source_of(&v.id)?;
        let qos = self.qos_of_volume(v).await?;
        if let Some(q) = qos.as_ref().filter(|q| q.consumer != Consumer::FrontEnd) {
            source.limits = IoLimits::from_specs(&q.specs, v.size);
        }
        let mut info = self
            .exporter
            .export(&v.id, &source, transport, mode)
            .await?;
        info["data"]["volume_id"] = json!(v.id);
        // The hypervisor's share, as Cinder hands it to Nova.
        if let Some(q) = qos.filter(|q| q.consumer != Consumer::BackEnd) {
            info["data"]["qos_specs"] = Value::Object(q.specs);
        }
        Ok(info)
    }

    /// The QoS specs of the volume's type, if it has any.
    async fn qos_of_volume(&self, v: &Volume) -> Result<Option<QosSpecs>> {
        let Some(vtype) = store::types::get(&self.db, &v.volume_type_id).await? else {
            return Ok(None);
        };
        match vtype.qos_specs_id {
            Some(id) => store::qos::get(&self.db, &id).await,
            None => Ok(None),
        }
    }

    /// An attachment the caller may see, and its volume.
    pub async fn visible_attachment(
        &self,
        ctx: &AuthContext,
        id: &str,
    ) -> Result<(Attachment, Volume)> {
        let a = attachments::get(&self.db, id)
            .await?
            .ok_or_else(|| attachment_not_found(id))?;
        if ctx.project_id.as_deref() != Some(&a.project_id) && !self.is_admin(ctx) {
            return Err(attachment_not_found(id));
        }
        let v = store::volumes::get(&self.db, &a.volume_id)
            .await?
            .ok_or_else(|| volume_not_found(&a.volume_id))?;
        Ok((a, v))
    }

    /// `POST /attachments`: reserve the volume for an instance (`reserved`),
    /// and connect it at once when a connector is given.
    pub async fn attachment_create(
        &self,
        ctx: &AuthContext,
        volume_id: &str,
        req: AttachRequest,
        connector: Option<Value>,
    ) -> Result<Attachment> {
        let v = self.visible_volume(ctx, volume_id).await?;
        self.authorize(ctx, "volume:attachment_create", &v.project_id)?;
        let a = self
            .reserve_with(&v, req, "reserved", || {
                invalid(format!(
                    "Volume {volume_id} status must be available or downloading"
                ))
            })
            .await?;
        match connector {
            None => Ok(a),
            Some(c) => match self.connect_attachment(a.clone(), &c).await {
                Ok(a) => Ok(a),
                Err(e) => {
                    self.drop_attachment(&a).await?;
                    Err(e)
                }
            },
        }
    }

    /// Move an `available` volume to `to` and record a reserved attachment,
    /// in one transaction.
    async fn reserve_with(
        &self,
        v: &Volume,
        req: AttachRequest,
        to: &str,
        refused: impl Fn() -> Error,
    ) -> Result<Attachment> {
        let now = store::now_str();
        let a = Attachment {
            id: uuid::Uuid::new_v4().to_string(),
            volume_id: v.id.clone(),
            project_id: v.project_id.clone(),
            instance_uuid: req.instance_uuid,
            attached_host: req.host_name,
            mountpoint: req.mountpoint,
            status: AttachStatus::Reserved,
            mode: req.mode,
            connector: None,
            connection_info: None,
            attach_time: None,
            detach_time: None,
            created_at: now,
        };
        let mut tx = self.db.pool.begin().await.map_err(db_err)?;
        let moved =
            store::volumes::transition_on(&self.db, &mut tx, &v.id, &["available"], to).await?;
        let swap =
            !moved && to == "reserved" && self.held_by(&v.id, a.instance_uuid.as_deref()).await?;
        if !moved && !swap {
            return Err(refused());
        }
        attachments::insert_on(&self.db, &mut tx, &a).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(a)
    }

    /// Whether `instance` already holds an attachment of the volume: Cinder
    /// then lets it reserve another whatever the status (Nova's rebuild of
    /// a volume-backed server and its moves swap attachments this way).
    async fn held_by(&self, volume_id: &str, instance: Option<&str>) -> Result<bool> {
        let Some(instance) = instance else {
            return Ok(false);
        };
        Ok(attachments::of_volume(&self.db, volume_id)
            .await?
            .iter()
            .any(|a| a.instance_uuid.as_deref() == Some(instance)))
    }

    /// Export for `connector`, then record the attachment `attaching` with
    /// its connection and the volume `attaching`.
    async fn connect_attachment(&self, mut a: Attachment, connector: &Value) -> Result<Attachment> {
        let v = store::volumes::get(&self.db, &a.volume_id)
            .await?
            .ok_or_else(|| volume_not_found(&a.volume_id))?;
        self.notify("volume.attach.start", &v).await;
        let info = self.connect(&v, connector, &a.mode).await?;
        a.connection_info = Some(info);
        a.connector = Some(connector.clone());
        a.attached_host = connector["host"].as_str().map(str::to_owned);
        if let Some(m) = connector["mountpoint"].as_str() {
            a.mountpoint = Some(m.to_owned());
        }
        // A completed attachment without a connection (Nova's volume of a
        // shelved-offloaded server, connected at unshelve) stays attached.
        if a.status != AttachStatus::Attached {
            a.status = AttachStatus::Attaching;
        }
        attachments::update(&self.db, &a).await?;
        store::volumes::transition(&self.db, &v.id, &["reserved", "attaching"], "attaching")
            .await?;
        Ok(a)
    }

    /// `PUT /attachments/{id}` with a connector: the connection.
    pub async fn attachment_update(
        &self,
        ctx: &AuthContext,
        id: &str,
        connector: &Value,
    ) -> Result<Attachment> {
        let (a, v) = self.visible_attachment(ctx, id).await?;
        self.authorize(ctx, "volume:attachment_update", &v.project_id)?;
        let unconnected = a.status == AttachStatus::Attached && a.connection_info.is_none();
        if !matches!(a.status, AttachStatus::Reserved | AttachStatus::Attaching) && !unconnected {
            return Err(invalid(format!(
                "Attachment {id} status must be reserved or attaching to update, but it is {}.",
                a.status.as_str()
            )));
        }
        self.connect_attachment(a, connector).await
    }

    /// `os-complete`: the host uses the volume (`in-use`, `attached`).
    pub async fn attachment_complete(&self, ctx: &AuthContext, id: &str) -> Result<()> {
        let (mut a, v) = self.visible_attachment(ctx, id).await?;
        self.authorize(ctx, "volume:attachment_complete", &v.project_id)?;
        if a.status == AttachStatus::Attached {
            return Ok(());
        }
        // Cinder completes an attachment without a connector too: Nova's
        // attach to a shelved-offloaded server relies on it (the volume is
        // `in-use`, connected when the server is unshelved).
        a.status = AttachStatus::Attached;
        a.attach_time = Some(store::now_str());
        attachments::update(&self.db, &a).await?;
        store::volumes::transition(&self.db, &v.id, &["attaching", "reserved"], "in-use").await?;
        self.notify_by_id("volume.attach.end", &v.id).await
    }

    /// `DELETE /attachments/{id}`: unexport (when nothing else uses the
    /// export), forget the attachment; the volume is `available` when no
    /// attachment is left. The volume's remaining attachments.
    pub async fn attachment_delete(&self, ctx: &AuthContext, id: &str) -> Result<Vec<Attachment>> {
        let (a, v) = self.visible_attachment(ctx, id).await?;
        self.authorize(ctx, "volume:attachment_delete", &v.project_id)?;
        self.detach_attachment(a).await?;
        attachments::of_volume(&self.db, &v.id).await
    }

    /// Detach one attachment: `detaching` recorded, export removed, record
    /// gone, volume status from what is left. Resumable at each step.
    pub async fn detach_attachment(&self, mut a: Attachment) -> Result<()> {
        self.notify_by_id("volume.detach.start", &a.volume_id)
            .await?;
        a.status = AttachStatus::Detaching;
        attachments::update(&self.db, &a).await?;
        store::volumes::transition(&self.db, &a.volume_id, &["in-use"], "detaching").await?;
        self.drop_attachment(&a).await?;
        self.notify_by_id("volume.detach.end", &a.volume_id).await
    }

    /// Remove an attachment record (and the export when no other attachment
    /// of the volume holds it), then settle the volume's status.
    async fn drop_attachment(&self, a: &Attachment) -> Result<()> {
        let others: Vec<Attachment> = attachments::of_volume(&self.db, &a.volume_id)
            .await?
            .into_iter()
            .filter(|o| o.id != a.id)
            .collect();
        if !others.iter().any(|o| o.connection_info.is_some()) {
            self.exporter.unexport(&a.volume_id).await?;
        }
        attachments::delete(&self.db, &a.id).await?;
        self.settle_status(&a.volume_id, &others).await
    }

    /// The volume's status from its attachments, after one went away.
    async fn settle_status(&self, volume_id: &str, left: &[Attachment]) -> Result<()> {
        self.settle_status_from(volume_id, left, None).await
    }

    /// [`settle_status`](Self::settle_status), also from `also` (the
    /// status an admin reset the volume to before a force detach).
    async fn settle_status_from(
        &self,
        volume_id: &str,
        left: &[Attachment],
        also: Option<&str>,
    ) -> Result<()> {
        let mut from = vec!["reserved", "attaching", "in-use", "detaching"];
        from.extend(also);
        let to = if left.iter().any(|o| o.status == AttachStatus::Attached) {
            "in-use"
        } else if left.iter().any(|o| o.status == AttachStatus::Attaching) {
            "attaching"
        } else if left.iter().any(|o| o.status == AttachStatus::Reserved) {
            "reserved"
        } else {
            "available"
        };
        store::volumes::transition(&self.db, volume_id, &from, to).await?;
        Ok(())
    }

    /// Forget every attachment of a volume and its export (an admin's
    /// `os-reset_status` to `detached`).
    pub async fn clear_attachments(&self, volume_id: &str) -> Result<()> {
        self.exporter.unexport(volume_id).await?;
        attachments::delete_of_volume(&self.db, volume_id).await
    }

    /// The volume's attachments by volume id, for views.
    pub async fn attachments_by_volume(
        &self,
        ids: &[&str],
    ) -> Result<HashMap<String, Vec<Attachment>>> {
        let mut out: HashMap<String, Vec<Attachment>> = HashMap::new();
        for id in ids {
            out.insert(
                (*id).to_owned(),
                attachments::of_volume(&self.db, id).await?,
            );
        }
        Ok(out)
    }

    /// The attachment a legacy action works on: the given one, or the
    /// volume's only one.
    pub async fn pick_attachment(&self, v: &Volume, id: Option<&str>) -> Result<Attachment> {
        let all = attachments::of_volume(&self.db, &v.id).await?;
        match id {
            Some(id) => all.into_iter().find(|a| a.id == id).ok_or_else(|| {
                Error::NotFound(format!(
                    "Volume attachment could not be found with filter: attachment_id = {id}."
                ))
            }),
            None if all.len() == 1 => Ok(all.into_iter().next().expect("one")),
            None if all.is_empty() => Err(invalid(format!(
                "Volume {} has no attachment to detach.",
                v.id
            ))),
            None => Err(invalid(
                "Detach volume from instance requires attachment_id to be given when the volume has more than one attachment.".into(),
            )),
        }
    }
}

/// The legacy volume actions (`os-reserve`, `os-attach`, …), Cinder's
/// checks and words.
impl VolumeService {
    async fn legacy(&self, ctx: &AuthContext, id: &str, action: &str) -> Result<Volume> {
        let v = self.visible_volume(ctx, id).await?;
        self.authorize(ctx, action, &v.project_id)?;
        Ok(v)
    }

    pub async fn reserve(&self, ctx: &AuthContext, id: &str) -> Result<()> {
        let v = self
            .legacy(ctx, id, "volume_extension:volume_actions:reserve")
            .await?;
        let req = AttachRequest {
            mode: "rw".into(),
            ..Default::default()
        };
        let status = v.status.clone();
        self.reserve_with(&v, req, "attaching", || {
            invalid(format!(
                "Volume status must be available to reserve, but the current status is: {status}."
            ))
        })
        .await
        .map(|_| ())
    }

    pub async fn unreserve(&self, ctx: &AuthContext, id: &str) -> Result<()> {
        let v = self
            .legacy(ctx, id, "volume_extension:volume_actions:unreserve")
            .await?;
        if v.status != "attaching" {
            return Ok(());
        }
        for a in attachments::of_volume(&self.db, id).await? {
            if matches!(a.status, AttachStatus::Reserved | AttachStatus::Attaching) {
                self.drop_attachment(&a).await?;
            }
        }
        Ok(())
    }

    pub async fn begin_detaching(&self, ctx: &AuthContext, id: &str) -> Result<()> {
        let v = self
            .legacy(ctx, id, "volume_extension:volume_actions:begin_detaching")
            .await?;
        let attached = attachments::of_volume(&self.db, id)
            .await?
            .iter()
            .any(|a| a.status == AttachStatus::Attached);
        if v.status != "in-use"
            || !attached
            || !store::volumes::transition(&self.db, id, &["in-use"], "detaching").await?
        {
            return Err(invalid(
                "Unable to detach volume. Volume status must be 'in-use' and attach_status must be 'attached' to detach.".into(),
            ));
        }
        Ok(())
    }

    pub async fn roll_detaching(&self, ctx: &AuthContext, id: &str) -> Result<()> {
        self.legacy(ctx, id, "volume_extension:volume_actions:roll_detaching")
            .await?;
        store::volumes::transition(&self.db, id, &["detaching"], "in-use").await?;
        Ok(())
    }

    /// `os-initialize_connection`: the export for `connector`. A pending
    /// attachment (`os-reserve`) records it, so a restart keeps it.
    pub async fn initialize_connection(
        &self,
        ctx: &AuthContext,
        id: &str,
        connector: &Value,
    ) -> Result<Value> {
        let v = self
            .legacy(
                ctx,
                id,
                "volume_extension:volume_actions:initialize_connection",
            )
            .await?;
        if !matches!(
            v.status.as_str(),
            "available" | "reserved" | "attaching" | "in-use" | "detaching"
        ) {
            return Err(invalid(format!(
                "Volume {id} status must be available, attaching or in-use to initialize a connection, but the current status is: {}.",
                v.status
            )));
        }
        let pending = attachments::of_volume(&self.db, id)
            .await?
            .into_iter()
            .find(|a| matches!(a.status, AttachStatus::Reserved | AttachStatus::Attaching));
        let mode = pending
            .as_ref()
            .map_or("rw", |a| a.mode.as_str())
            .to_owned();
        let info = self.connect(&v, connector, &mode).await?;
        if let Some(mut a) = pending {
            a.connector = Some(connector.clone());
            a.connection_info = Some(info.clone());
            a.status = AttachStatus::Attaching;
            attachments::update(&self.db, &a).await?;
        }
        Ok(info)
    }

    /// `os-terminate_connection`: the host let go of the export.
    pub async fn terminate_connection(&self, ctx: &AuthContext, id: &str) -> Result<()> {
        self.legacy(
            ctx,
            id,
            "volume_extension:volume_actions:terminate_connection",
        )
        .await?;
        self.exporter.unexport(id).await?;
        for mut a in attachments::of_volume(&self.db, id).await? {
            if a.status == AttachStatus::Attaching {
                a.status = AttachStatus::Reserved;
                a.connection_info = None;
                attachments::update(&self.db, &a).await?;
            }
        }
        Ok(())
    }

    /// `os-attach`: record the volume attached to an instance or a host.
    pub async fn attach(&self, ctx: &AuthContext, id: &str, req: AttachRequest) -> Result<()> {
        let v = self
            .legacy(ctx, id, "volume_extension:volume_actions:attach")
            .await?;
        let pending = attachments::of_volume(&self.db, id)
            .await?
            .into_iter()
            .find(|a| matches!(a.status, AttachStatus::Reserved | AttachStatus::Attaching));
        let mut a = match pending {
            Some(a) => a,
            None => {
                let status = v.status.clone();
                let shell = AttachRequest {
                    mode: req.mode.clone(),
                    ..Default::default()
                };
                self.reserve_with(&v, shell, "attaching", || {
                    invalid(format!(
                        "Volume status must be available or attaching to attach, but the current status is: {status}."
                    ))
                })
                .await?
            }
        };
        self.notify("volume.attach.start", &v).await;
        a.instance_uuid = req.instance_uuid;
        a.attached_host = req.host_name.or(a.attached_host);
        a.mountpoint = req.mountpoint;
        a.mode = req.mode;
        a.status = AttachStatus::Attached;
        a.attach_time = Some(store::now_str());
        attachments::update(&self.db, &a).await?;
        store::volumes::transition(&self.db, id, &["attaching", "reserved"], "in-use").await?;
        self.notify_by_id("volume.attach.end", id).await
    }

    /// `os-detach` / `os-force_detach` (admin, any status).
    pub async fn detach(
        &self,
        ctx: &AuthContext,
        id: &str,
        attachment_id: Option<&str>,
        force: bool,
    ) -> Result<()> {
        let action = if force {
            "volume_extension:volume_admin_actions:force_detach"
        } else {
            "volume_extension:volume_actions:detach"
        };
        let v = self.legacy(ctx, id, action).await?;
        if attachment_id.is_none()
            && v.status == "available"
            && attachments::of_volume(&self.db, id).await?.is_empty()
        {
            // Cinder's detach of a volume attached nowhere: nothing to do.
            return Ok(());
        }
        if !force && !matches!(v.status.as_str(), "in-use" | "detaching" | "attaching") {
            return Err(invalid(format!(
                "Volume {id} status must be in-use or detaching to detach, but the current status is: {}.",
                v.status
            )));
        }
        let a = self.pick_attachment(&v, attachment_id).await?;
        self.detach_attachment(a).await?;
        if force {
            // Cinder's force detach settles the volume whatever status an
            // admin left it in (`error` after a reset).
            let left = attachments::of_volume(&self.db, id).await?;
            self.settle_status_from(id, &left, Some(v.status.as_str()))
                .await?;
        }
        Ok(())
    }
}

/// Extend while attached (3.42).
impl VolumeService {
    /// Record the new size (`extending`) with its operation under the quota
    /// lock, then grow the data through the storage daemon.
    pub async fn extend_attached(
        self: &Arc<Self>,
        ctx: &AuthContext,
        id: &str,
        new_size: i64,
    ) -> Result<()> {
        let v = self.visible_volume(ctx, id).await?;
        self.authorize(ctx, "volume:extend_attached_volume", &v.project_id)?;
        if new_size <= v.size {
            return Err(Error::BadRequest(format!(
                "Invalid input received: New size for extend must be greater than current size. (current: {}, extended: {new_size}).",
                v.size
            )));
        }
        self.check_volume_size(&v.project_id, new_size).await?;
        let type_name = self
            .type_names()
            .await?
            .remove(&v.volume_type_id)
            .unwrap_or_default();
        let mut tx = self
            .db
            .begin_under_quota_lock("project_id", &v.project_id)
            .await?;
        let added = new_size - v.size;
        let deltas = [
            ("gigabytes".to_owned(), added),
            (format!("gigabytes_{type_name}"), added),
        ];
        self.check_quotas_on(&mut tx, &v.project_id, &deltas)
            .await?;
        if !store::volumes::resize_on(&self.db, &mut tx, id, new_size, "in-use", "extending")
            .await?
        {
            return Err(invalid(format!(
                "Volume {id} status must be available or in-use to extend, but current status is: {}.",
                v.status
            )));
        }
        let op_id = uuid::Uuid::new_v4().to_string();
        let params = json!({"old_size": v.size, "new_size": new_size});
        store::operations::create_on(
            &self.db,
            &mut tx,
            &op_id,
            crate::operations::extend::EXTEND_ATTACHED,
            id,
            &params,
        )
        .await?;
        tx.commit().await.map_err(db_err)?;
        self.notify_by_id("volume.resize.start", id).await?;
        crate::operation::start(self, &op_id).await
    }
}

/// At start: finish detaches a restart interrupted, keep (and revive) the
/// exports of attachments still attaching or attached, and remove every
/// other export's daemon and files.
pub async fn reconcile(svc: &Arc<VolumeService>) -> Result<()> {
    let all = attachments::list(&svc.db, None).await?;
    for a in all.iter().filter(|a| a.status == AttachStatus::Detaching) {
        tracing::info!(attachment = %a.id, "finishing an interrupted detach");
        svc.drop_attachment(a).await?;
    }
    let keep: Vec<&str> = all
        .iter()
        .filter(|a| {
            matches!(a.status, AttachStatus::Attaching | AttachStatus::Attached)
                && a.connection_info.is_some()
        })
        .map(|a| a.volume_id.as_str())
        .collect();
    for id in svc.exporter.exported().await? {
        if keep.contains(&id.as_str()) {
            if let Err(e) = svc.exporter.revive(&id).await {
                tracing::error!(volume = %id, error = %e, "cannot restart an attached volume's export");
            }
        } else {
            tracing::info!(volume = %id, "removing a stale volume export");
            svc.exporter.unexport(&id).await?;
        }
    }
    Ok(())
}

/// The binaries `os-services` lists, on this host.
pub fn service_rows(svc: &VolumeService) -> [(String, &'static str); 2] {
    let host = &svc.config.common.host;
    [
        (host.clone(), "cinder-scheduler"),
        (format!("{host}@{}", svc.backend.name()), "cinder-volume"),
    ]
}

/// One heartbeat of this host's scheduler and volume services.
pub async fn heartbeat(svc: &VolumeService) -> Result<()> {
    let zone = &svc.config.volume.storage_availability_zone;
    for (host, binary) in service_rows(svc) {
        store::services::heartbeat(&svc.db, &host, binary, zone).await?;
    }
    Ok(())
}

/// Beat every `report_interval` seconds for as long as the service runs.
pub fn spawn_heartbeat(svc: &Arc<VolumeService>) {
    let svc = svc.clone();
    tokio::spawn(async move {
        let every = std::time::Duration::from_secs(svc.config.volume.report_interval.max(1));
        loop {
            if let Err(e) = heartbeat(&svc).await {
                tracing::warn!(error = %e, "volume service heartbeat not recorded");
            }
            tokio::time::sleep(every).await;
        }
    });
}
