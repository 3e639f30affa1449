//! The services of the deployment as an admin manages them: enable and
//! disable a service, freeze and thaw a volume backend, and (for
//! replicated backends, which the file backend is not) fail one over.

use crate::service::VolumeService;
use crate::store;
use ferrostack_core::{Error, Result};

/// Whether a `cinder-volume` service row (`host@backend`) is on `host`
/// (`host`, or `host@backend` itself).
fn on_host(service_host: &str, host: &str) -> bool {
    service_host == host
        || service_host
            .strip_prefix(host)
            .is_some_and(|rest| rest.starts_with('@'))
}

impl VolumeService {
    /// Enable or disable the `binary` service of `host` (404 when there is none).
    pub async fn set_service_disabled(
        &self,
        host: &str,
        binary: &str,
        disabled: bool,
        reason: Option<&str>,
    ) -> Result<()> {
        if store::services::set_disabled(&self.db, host, binary, disabled, reason).await? {
            Ok(())
        } else {
            Err(Error::NotFound(format!(
                "Service {binary} on host {host} could not be found."
            )))
        }
    }

    /// The volume services on `host`, refused as Cinder's replication
    /// calls refuse a host with none (400).
    async fn volume_services_on(&self, host: &str) -> Result<Vec<store::services::ServiceRow>> {
        let rows: Vec<_> = store::services::list(&self.db)
            .await?
            .into_iter()
            .filter(|r| r.binary == "cinder-volume" && on_host(&r.host, host))
            .collect();
        if rows.is_empty() {
            return Err(Error::BadRequest(format!(
                "Invalid input received: No service found with host={host}."
            )));
        }
        Ok(rows)
    }

    /// Freeze (or thaw) the volume backends of `host`.
    pub async fn freeze_host(&self, host: &str, frozen: bool) -> Result<()> {
        for r in self.volume_services_on(host).await? {
            store::services::set_frozen(&self.db, &r.host, frozen).await?;
        }
        Ok(())
    }

    /// Fail a backend over to a replication target: the file backend has
    /// none, so a known host is refused the way Cinder refuses a backend
    /// whose replication is not enabled.
    pub async fn failover_host(&self, host: &str, _backend_id: Option<&str>) -> Result<()> {
        self.volume_services_on(host).await?;
        Err(Error::BadRequest(format!(
            "Invalid input received: Host {host} replication_status must be enabled to initiate failover."
        )))
    }
}
