//! `os-assisted-volume-snapshots`: a remotefs Cinder driver (NFS and the
//! like: the volume is a qcow2 file the compute host opens itself) asks
//! the host to take an external snapshot of an attached volume, or to
//! merge one away. The API's checks are Nova's (the volume's mapping, its
//! instance placed and idle, not multiattach; 400 otherwise), and its
//! answers too: the host's part is asynchronous (Nova casts it). Every
//! volume here is attached over NBD from the volume service, which owns
//! the file and snapshots an in-use volume itself, so no host can snapshot
//! one from the guest's side: as Nova's libvirt driver does for a volume
//! that is not file-based, the snapshot is reported to Cinder as `error`
//! (`error_deleting` for a delete) — when Cinder knows the snapshot.

use super::conflict_state;
use crate::service::ComputeService;
use crate::store::{self, bdms::Bdm, instances::Instance};
use ferrostack_core::{Error, Result};
use std::sync::Arc;

impl ComputeService {
    /// The one mapping of `volume_id` and its instance, with Nova's
    /// refusals (all 400: the API predates its status code clean-ups).
    async fn assisted_target(&self, volume_id: &str, action: &str) -> Result<(Bdm, Instance)> {
        let mut found = store::bdms::with_volume(&self.db, volume_id).await?;
        let Some(b) = found.pop() else {
            return Err(Error::BadRequest(format!(
                "No volume Block Device Mapping with id {volume_id}."
            )));
        };
        if !found.is_empty() {
            return Err(Error::BadRequest(format!(
                "Block Device Mapping {volume_id} is a multi-attach volume and is not valid for this operation."
            )));
        }
        let i = store::instances::get(&self.db, &b.instance_id)
            .await?
            .filter(|i| !i.deleted)
            .ok_or_else(|| {
                Error::BadRequest(format!(
                    "No volume Block Device Mapping with id {volume_id}."
                ))
            })?;
        if i.host.is_none() {
            return Err(Error::BadRequest(format!("Instance {} is not ready", i.id)));
        }
        if i.task_state.is_some() {
            return Err(Error::BadRequest(
                conflict_state(action, &i).message().to_owned(),
            ));
        }
        Ok((b, i))
    }

    /// Create: checked, then the host's part (see the module) in the
    /// background; the answer names the snapshot.
    pub async fn assisted_snapshot_create(
        self: &Arc<Self>,
        volume_id: &str,
        snapshot_id: &str,
    ) -> Result<()> {
        let (_, i) = self
            .assisted_target(volume_id, "volume_snapshot_create")
            .await?;
        self.report_unsupported_snapshot(&i, volume_id, snapshot_id, "error");
        Ok(())
    }

    /// Delete (merge away) a snapshot: checked as the create.
    pub async fn assisted_snapshot_delete(
        self: &Arc<Self>,
        volume_id: &str,
        snapshot_id: &str,
    ) -> Result<()> {
        let (_, i) = self
            .assisted_target(volume_id, "volume_snapshot_delete")
            .await?;
        self.report_unsupported_snapshot(&i, volume_id, snapshot_id, "error_deleting");
        Ok(())
    }

    /// The host cannot take or merge a snapshot of an NBD-attached volume:
    /// Cinder hears `status`, as from Nova's libvirt driver when its
    /// snapshot fails (a snapshot Cinder does not know is only logged).
    fn report_unsupported_snapshot(
        self: &Arc<Self>,
        i: &Instance,
        volume_id: &str,
        snapshot_id: &str,
        status: &'static str,
    ) {
        tracing::warn!(
            instance = %i.id, volume = %volume_id, snapshot = %snapshot_id,
            "assisted volume snapshot: the volume is attached over NBD, not as a file the host can snapshot"
        );
        let (svc, snapshot) = (self.clone(), snapshot_id.to_owned());
        tokio::spawn(async move {
            if let Err(e) = svc.volume.update_snapshot_status(&snapshot, status).await {
                tracing::info!(snapshot = %snapshot, error = %e, "snapshot status not reported");
            }
        });
    }
}
