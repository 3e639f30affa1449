//! The messages between the compute control plane and a host's agent.
//! Requests are one enum whose serde form is the bus's `{method, args}`
//! envelope; replies and errors are typed too, so a driver's error arrives
//! on the other side as the same [`DriverError`] — a spawn failure reaches
//! the server's `fault` with its real reason.

use ferrostack_bus::{RpcMessage, SharedBus};
use ferrostack_hypervisor::{
    ConsoleTarget, DriverError, HostResources, InstanceSpec, LiveMigrationProgress,
    LiveMigrationTarget, NbdExport, PowerState, RebootKind, RescueBus, RescueDevice, VifSpec,
    VolumeAttachment, VolumeConnection,
};
use ferrostack_metadata::InstanceMetadata;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// The bus topic the control plane serves for agents (heartbeats, power states).
pub const CONDUCTOR_TOPIC: &str = "compute-conductor";

/// The `binary` of compute services, as Nova names it.
pub const COMPUTE_BINARY: &str = "nova-compute";

/// The bus topic of one host's compute agent.
pub fn agent_topic(host: &str) -> String {
    format!("compute.{host}")
}

/// What the control plane asks of a host's agent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", content = "args", rename_all = "snake_case")]
pub enum AgentRequest {
    /// Fetch an image into the host's cache (converted once, shared by guests).
    CacheImage {
        image_id: String,
    },
    /// Build and start a guest; with `config_drive`, attach a drive made from it.
    Spawn {
        instance: InstanceSpec,
        config_drive: Option<Box<InstanceMetadata>>,
    },
    Destroy {
        instance_id: String,
    },
    Reboot {
        instance_id: String,
        kind: RebootKind,
    },
    PowerOff {
        instance_id: String,
    },
    PowerOn {
        instance_id: String,
    },
    Pause {
        instance_id: String,
    },
    Unpause {
        instance_id: String,
    },
    Suspend {
        instance_id: String,
    },
    Resume {
        instance_id: String,
    },
    /// Send the running guest a non-maskable interrupt (`trigger_crash_dump`).
    InjectNmi {
        instance_id: String,
    },
    /// Boot the guest from a disk made on image `image_id` (fetched into
    /// the cache): its own disk attached second, or, with a `device` or
    /// `bus` (the image's `hw_rescue_device` / `hw_rescue_bus`, a stable
    /// device rescue), every disk kept and the rescue disk added there.
    Rescue {
        instance_id: String,
        image_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        device: Option<RescueDevice>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        bus: Option<RescueBus>,
    },
    /// Boot a rescued guest from its own disk again.
    Unrescue {
        instance_id: String,
    },
    Resize {
        instance: InstanceSpec,
    },
    ConfirmResize {
        instance_id: String,
    },
    RevertResize {
        instance: InstanceSpec,
    },
    /// Cold migration, source: stop the guest and export its disk on this
    /// host's management address ([`AgentReply::Export`]).
    MigrateOut {
        instance_id: String,
    },
    /// Cold migration, source: stop exporting the disk (the guest stays, off).
    EndMigrateOut {
        instance_id: String,
    },
    /// Cold migration, destination: the guest made from the source's disk
    /// (`source`; none for a guest booted from a volume), started when
    /// `power_on`.
    MigrateIn {
        instance: InstanceSpec,
        config_drive: Option<Box<InstanceMetadata>>,
        source: Option<NbdExport>,
        power_on: bool,
    },
    /// Cold migration confirmed: the source's stopped copy goes.
    ConfirmMigration {
        instance_id: String,
    },
    /// Cold migration reverted: the source's copy takes its old flavor
    /// again and starts when `power_on`.
    RevertMigration {
        instance: InstanceSpec,
        power_on: bool,
    },
    /// Live migration, destination: the guest made paused, waiting for
    /// the migration stream (its image cached, its config drive made, its
    /// local disks empty copies served over NBD when `copy_disks`), as
    /// Nova's `pre_live_migration` ([`AgentReply::LiveMigrationTarget`]).
    PrepareLiveMigration {
        instance: InstanceSpec,
        config_drive: Option<Box<InstanceMetadata>>,
        copy_disks: bool,
    },
    /// Live migration, source: copy the guest to `target` while it runs;
    /// answered once it switched over.
    LiveMigrate {
        instance_id: String,
        target: LiveMigrationTarget,
    },
    /// Live migration, source: how far it has got.
    LiveMigrationProgress {
        instance_id: String,
    },
    /// Live migration, source: pause the guest so the copy converges.
    ForceCompleteLiveMigration {
        instance_id: String,
    },
    /// Live migration, source: cancel it; the guest runs on here.
    AbortLiveMigration {
        instance_id: String,
    },
    /// Live migration, destination, after the switch-over: the guest runs
    /// here (left paused when `paused`).
    FinishLiveMigration {
        instance_id: String,
        paused: bool,
    },
    /// Live migration rolled back, destination: the waiting guest goes.
    RollbackLiveMigrationAtDestination {
        instance_id: String,
    },
    /// Live migration rolled back, source: the guest runs here again
    /// (paused when `paused`).
    RollbackLiveMigration {
        instance_id: String,
        paused: bool,
    },
    GetInfo {
        instance_id: String,
    },
    ListInstances,
    /// The serial console's tail: at most `length` lines (all when absent).
    ConsoleOutput {
        instance_id: String,
        length: Option<u32>,
    },
    /// Snapshot the guest's disk and upload it into the image record `image_id`.
    Snapshot {
        instance_id: String,
        image_id: String,
    },
    /// Where the guest's VNC server is.
    VncConsole {
        instance_id: String,
    },
    /// Plug another port into the guest.
    AttachInterface {
        instance_id: String,
        vif: VifSpec,
    },
    /// Unplug a port from the guest.
    DetachInterface {
        instance_id: String,
        port_id: String,
    },
    /// Hot-plug a volume into the guest (there at its next start when off).
    AttachVolume {
        instance_id: String,
        volume: VolumeAttachment,
    },
    /// Unplug a volume from the guest and let go of its export.
    DetachVolume {
        instance_id: String,
        volume_id: String,
    },
    /// An attached volume grew: the guest is to see `new_size_bytes`.
    ExtendVolume {
        instance_id: String,
        volume_id: String,
        connection: VolumeConnection,
        new_size_bytes: u64,
    },
}

impl AgentRequest {
    /// Whether the host may take long over it: the guest's clean shutdown
    /// (up to `shutdown_timeout`), an image download and conversion, a
    /// disk copy. Such calls wait up to `long_rpc_timeout`, as Nova's do.
    pub fn is_long(&self) -> bool {
        !matches!(
            self,
            AgentRequest::GetInfo { .. }
                | AgentRequest::ListInstances
                | AgentRequest::ConsoleOutput { .. }
                | AgentRequest::VncConsole { .. }
                | AgentRequest::Pause { .. }
                | AgentRequest::Unpause { .. }
                | AgentRequest::InjectNmi { .. }
                | AgentRequest::LiveMigrationProgress { .. }
                | AgentRequest::ForceCompleteLiveMigration { .. }
                | AgentRequest::AbortLiveMigration { .. }
        )
    }

    /// The method name, for logs.
    pub fn method(&self) -> &'static str {
        match self {
            AgentRequest::CacheImage { .. } => "cache_image",
            AgentRequest::Spawn { .. } => "spawn",
            AgentRequest::Destroy { .. } => "destroy",
            AgentRequest::Reboot { .. } => "reboot",
            AgentRequest::PowerOff { .. } => "power_off",
            AgentRequest::PowerOn { .. } => "power_on",
            AgentRequest::Pause { .. } => "pause",
            AgentRequest::Unpause { .. } => "unpause",
            AgentRequest::Suspend { .. } => "suspend",
            AgentRequest::Resume { .. } => "resume",
            AgentRequest::InjectNmi { .. } => "inject_nmi",
            AgentRequest::Rescue { .. } => "rescue",
            AgentRequest::Unrescue { .. } => "unrescue",
            AgentRequest::Resize { .. } => "resize",
            AgentRequest::ConfirmResize { .. } => "confirm_resize",
            AgentRequest::RevertResize { .. } => "revert_resize",
            AgentRequest::MigrateOut { .. } => "migrate_out",
            AgentRequest::EndMigrateOut { .. } => "end_migrate_out",
            AgentRequest::MigrateIn { .. } => "migrate_in",
            AgentRequest::ConfirmMigration { .. } => "confirm_migration",
            AgentRequest::RevertMigration { .. } => "revert_migration",
            AgentRequest::PrepareLiveMigration { .. } => "prepare_live_migration",
            AgentRequest::LiveMigrate { .. } => "live_migrate",
            AgentRequest::LiveMigrationProgress { .. } => "live_migration_progress",
            AgentRequest::ForceCompleteLiveMigration { .. } => "force_complete_live_migration",
            AgentRequest::AbortLiveMigration { .. } => "abort_live_migration",
            AgentRequest::FinishLiveMigration { .. } => "finish_live_migration",
            AgentRequest::RollbackLiveMigrationAtDestination { .. } => {
                "rollback_live_migration_at_destination"
            }
            AgentRequest::RollbackLiveMigration { .. } => "rollback_live_migration",
            AgentRequest::GetInfo { .. } => "get_info",
            AgentRequest::ListInstances => "list_instances",
            AgentRequest::ConsoleOutput { .. } => "console_output",
            AgentRequest::Snapshot { .. } => "snapshot",
            AgentRequest::VncConsole { .. } => "vnc_console",
            AgentRequest::AttachInterface { .. } => "attach_interface",
            AgentRequest::DetachInterface { .. } => "detach_interface",
            AgentRequest::AttachVolume { .. } => "attach_volume",
            AgentRequest::DetachVolume { .. } => "detach_volume",
            AgentRequest::ExtendVolume { .. } => "extend_volume",
        }
    }
}

/// What an agent answers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum AgentReply {
    Done,
    PowerState(PowerState),
    Instances(Vec<String>),
    ConsoleOutput(String),
    Console(ConsoleTarget),
    /// Where a migrating guest's disk is served (none: it has no disk here).
    Export(Option<NbdExport>),
    /// Where a live-migrating guest is awaited.
    LiveMigrationTarget(LiveMigrationTarget),
    LiveMigrationProgress(LiveMigrationProgress),
}

/// Why an agent request failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "source", content = "error", rename_all = "snake_case")]
pub enum AgentError {
    /// The hypervisor driver refused or failed.
    #[error("{0}")]
    Driver(DriverError),
    /// The image could not be fetched from the image service or stored.
    #[error("{0}")]
    Image(String),
    /// The request could not be understood (a newer control plane?).
    #[error("{0}")]
    BadRequest(String),
    /// The agent could not be reached or did not answer in time.
    #[error("{0}")]
    Unreachable(String),
}

impl From<DriverError> for AgentError {
    fn from(e: DriverError) -> Self {
        AgentError::Driver(e)
    }
}

/// The agent's answer as it travels: `{"Ok": reply}` or `{"Err": error}`.
pub type AgentResult = Result<AgentReply, AgentError>;

/// What an agent tells the control plane.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", content = "args", rename_all = "snake_case")]
pub enum ConductorRequest {
    /// A heartbeat with the host's figures.
    ReportState(ServiceReport),
    /// Every guest's power state, so the control plane corrects its records.
    SyncPowerStates {
        host: String,
        states: BTreeMap<String, PowerState>,
    },
}

/// One heartbeat of a compute service.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServiceReport {
    pub host: String,
    pub binary: String,
    pub topic: String,
    pub zone: String,
    /// The management address of the host (`host_ip` of the hypervisor).
    pub host_ip: String,
    pub resources: HostResources,
    pub running_vms: i64,
}

/// Put a typed message into the bus's envelope.
pub fn envelope<T: Serialize>(message: &T) -> RpcMessage {
    let v = serde_json::to_value(message).expect("protocol messages serialize");
    RpcMessage {
        method: v["method"].as_str().unwrap_or_default().to_owned(),
        args: v.get("args").cloned().unwrap_or(serde_json::Value::Null),
    }
}

/// Read a typed message out of the bus's envelope.
pub fn open_envelope<T: serde::de::DeserializeOwned>(m: &RpcMessage) -> Result<T, String> {
    let mut v = serde_json::json!({ "method": m.method });
    if !m.args.is_null() {
        v["args"] = m.args.clone();
    }
    serde_json::from_value(v).map_err(|e| format!("bad '{}' message: {e}", m.method))
}

/// Ask a host's agent and wait for its typed answer, at most `reply`. An
/// agent that is not listening yet (a node starting) is waited for up to
/// `listening`.
pub async fn call_agent(
    bus: &SharedBus,
    host: &str,
    request: &AgentRequest,
    listening: Duration,
    reply: Duration,
) -> AgentResult {
    let topic = agent_topic(host);
    let deadline = tokio::time::Instant::now() + listening;
    loop {
        match bus.call(&topic, envelope(request), reply).await {
            Ok(v) => {
                return serde_json::from_value::<AgentResult>(v).unwrap_or_else(|e| {
                    Err(AgentError::BadRequest(format!(
                        "unreadable answer from {topic}: {e}"
                    )))
                })
            }
            Err(ferrostack_bus::BusError::NoConsumer(_))
                if tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(e) => {
                return Err(AgentError::Unreachable(format!(
                    "compute host {host} did not answer {}: {e}",
                    request.method()
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_travel_in_the_bus_envelope() {
        let r = AgentRequest::Reboot {
            instance_id: "i1".into(),
            kind: RebootKind::Soft,
        };
        let m = envelope(&r);
        assert_eq!(m.method, "reboot");
        assert_eq!(m.args["kind"], "SOFT");
        assert_eq!(open_envelope::<AgentRequest>(&m).unwrap(), r);
        let m = envelope(&AgentRequest::ListInstances);
        assert_eq!(m.method, "list_instances");
        assert_eq!(
            open_envelope::<AgentRequest>(&m).unwrap(),
            AgentRequest::ListInstances
        );
        let r = AgentRequest::Rescue {
            instance_id: "i1".into(),
            image_id: "img".into(),
            device: None,
            bus: Some(RescueBus::Usb),
        };
        let m = envelope(&r);
        assert_eq!(m.method, "rescue");
        assert_eq!(m.args["image_id"], "img");
        assert_eq!(m.args["bus"], "usb");
        assert!(m.args.get("device").is_none());
        assert!(r.is_long());
        assert_eq!(open_envelope::<AgentRequest>(&m).unwrap(), r);
        assert!(open_envelope::<AgentRequest>(&RpcMessage {
            method: "format_disk".into(),
            args: serde_json::Value::Null
        })
        .is_err());
    }

    #[test]
    fn driver_errors_cross_intact() {
        let r: AgentResult = Err(AgentError::Driver(DriverError::InvalidImage(
            "Image x is not bootable".into(),
        )));
        let v = serde_json::to_value(&r).unwrap();
        let back: AgentResult = serde_json::from_value(v).unwrap();
        assert_eq!(back, r);
    }
}
