//! A server's states as Nova keeps them: `vm_state` (what the guest is),
//! `task_state` (what is being done to it) and the power state the
//! hypervisor reports. Stored and shown as Nova's strings and codes.

use serde::{Deserialize, Serialize};

pub use ferrostack_hypervisor::PowerState;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum VmState {
    #[serde(rename = "active")]
    Active,
    #[default]
    #[serde(rename = "building")]
    Building,
    #[serde(rename = "paused")]
    Paused,
    #[serde(rename = "suspended")]
    Suspended,
    #[serde(rename = "stopped")]
    Stopped,
    #[serde(rename = "rescued")]
    Rescued,
    #[serde(rename = "resized")]
    Resized,
    #[serde(rename = "soft-delete")]
    SoftDeleted,
    #[serde(rename = "deleted")]
    Deleted,
    #[serde(rename = "error")]
    Error,
    #[serde(rename = "shelved")]
    Shelved,
    #[serde(rename = "shelved_offloaded")]
    ShelvedOffloaded,
}

impl VmState {
    pub fn as_str(self) -> &'static str {
        match self {
            VmState::Active => "active",
            VmState::Building => "building",
            VmState::Paused => "paused",
            VmState::Suspended => "suspended",
            VmState::Stopped => "stopped",
            VmState::Rescued => "rescued",
            VmState::Resized => "resized",
            VmState::SoftDeleted => "soft-delete",
            VmState::Deleted => "deleted",
            VmState::Error => "error",
            VmState::Shelved => "shelved",
            VmState::ShelvedOffloaded => "shelved_offloaded",
        }
    }

    /// The API's `status` filter and `OS-EXT-STS:vm_state` values.
    pub fn parse(s: &str) -> Option<VmState> {
        serde_json::from_value(serde_json::Value::String(s.to_owned())).ok()
    }
}

impl std::fmt::Display for VmState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    Scheduling,
    BlockDeviceMapping,
    Networking,
    Spawning,
    ImageSnapshot,
    ImageSnapshotPending,
    ImagePendingUpload,
    ImageUploading,
    ImageBackup,
    ResizePrep,
    ResizeMigrating,
    ResizeMigrated,
    ResizeFinish,
    ResizeReverting,
    ResizeConfirming,
    /// A live migration under way.
    Migrating,
    Rebooting,
    RebootPending,
    RebootStarted,
    RebootingHard,
    RebootPendingHard,
    RebootStartedHard,
    Pausing,
    Unpausing,
    Suspending,
    Resuming,
    #[serde(rename = "powering-off")]
    PoweringOff,
    #[serde(rename = "powering-on")]
    PoweringOn,
    Rebuilding,
    RebuildBlockDeviceMapping,
    RebuildSpawning,
    Deleting,
    Shelving,
    ShelvingImagePendingUpload,
    ShelvingImageUploading,
    ShelvingOffloading,
    Unshelving,
    Rescuing,
    Unrescuing,
}

impl TaskState {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Scheduling => "scheduling",
            TaskState::BlockDeviceMapping => "block_device_mapping",
            TaskState::Networking => "networking",
            TaskState::Spawning => "spawning",
            TaskState::ImageSnapshot => "image_snapshot",
            TaskState::ImageSnapshotPending => "image_snapshot_pending",
            TaskState::ImagePendingUpload => "image_pending_upload",
            TaskState::ImageUploading => "image_uploading",
            TaskState::ImageBackup => "image_backup",
            TaskState::ResizePrep => "resize_prep",
            TaskState::ResizeMigrating => "resize_migrating",
            TaskState::ResizeMigrated => "resize_migrated",
            TaskState::ResizeFinish => "resize_finish",
            TaskState::ResizeReverting => "resize_reverting",
            TaskState::ResizeConfirming => "resize_confirming",
            TaskState::Migrating => "migrating",
            TaskState::Rebooting => "rebooting",
            TaskState::RebootPending => "reboot_pending",
            TaskState::RebootStarted => "reboot_started",
            TaskState::RebootingHard => "rebooting_hard",
            TaskState::RebootPendingHard => "reboot_pending_hard",
            TaskState::RebootStartedHard => "reboot_started_hard",
            TaskState::Pausing => "pausing",
            TaskState::Unpausing => "unpausing",
            TaskState::Suspending => "suspending",
            TaskState::Resuming => "resuming",
            TaskState::PoweringOff => "powering-off",
            TaskState::PoweringOn => "powering-on",
            TaskState::Rebuilding => "rebuilding",
            TaskState::RebuildBlockDeviceMapping => "rebuild_block_device_mapping",
            TaskState::RebuildSpawning => "rebuild_spawning",
            TaskState::Deleting => "deleting",
            TaskState::Shelving => "shelving",
            TaskState::ShelvingImagePendingUpload => "shelving_image_pending_upload",
            TaskState::ShelvingImageUploading => "shelving_image_uploading",
            TaskState::ShelvingOffloading => "shelving_offloading",
            TaskState::Unshelving => "unshelving",
            TaskState::Rescuing => "rescuing",
            TaskState::Unrescuing => "unrescuing",
        }
    }

    pub fn parse(s: &str) -> Option<TaskState> {
        serde_json::from_value(serde_json::Value::String(s.to_owned())).ok()
    }

    fn is_resize(self) -> bool {
        matches!(
            self,
            TaskState::ResizePrep
                | TaskState::ResizeMigrating
                | TaskState::ResizeMigrated
                | TaskState::ResizeFinish
        )
    }
}

impl std::fmt::Display for TaskState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Nova's API `status` from (vm_state, task_state).
pub fn status(vm: VmState, task: Option<TaskState>) -> &'static str {
    use TaskState as T;
    match vm {
        VmState::Active => match task {
            Some(T::Rebooting | T::RebootPending | T::RebootStarted) => "REBOOT",
            Some(T::RebootingHard | T::RebootPendingHard | T::RebootStartedHard) => "HARD_REBOOT",
            Some(T::Rebuilding | T::RebuildBlockDeviceMapping | T::RebuildSpawning) => "REBUILD",
            Some(t) if t.is_resize() => "RESIZE",
            Some(T::Migrating) => "MIGRATING",
            _ => "ACTIVE",
        },
        VmState::Building => "BUILD",
        VmState::Stopped => match task {
            Some(t) if t.is_resize() => "RESIZE",
            Some(T::Rebuilding | T::RebuildBlockDeviceMapping | T::RebuildSpawning) => "REBUILD",
            _ => "SHUTOFF",
        },
        VmState::Resized => match task {
            Some(T::ResizeReverting) => "REVERT_RESIZE",
            _ => "VERIFY_RESIZE",
        },
        VmState::Paused => match task {
            Some(T::Migrating) => "MIGRATING",
            _ => "PAUSED",
        },
        VmState::Suspended => "SUSPENDED",
        VmState::Rescued => "RESCUE",
        VmState::Error => match task {
            Some(T::Rebuilding | T::RebuildBlockDeviceMapping | T::RebuildSpawning) => "REBUILD",
            _ => "ERROR",
        },
        VmState::Deleted => "DELETED",
        VmState::SoftDeleted => "SOFT_DELETED",
        VmState::Shelved => "SHELVED",
        VmState::ShelvedOffloaded => "SHELVED_OFFLOADED",
    }
}

/// The power state as the number stored and shown (serde `with`).
pub mod power_code {
    use super::PowerState;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(p: &PowerState, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(p.code())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<PowerState, D::Error> {
        Ok(PowerState::from_code(i64::deserialize(d)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_keep_novas_strings() {
        assert_eq!(
            serde_json::to_value(TaskState::PoweringOff).unwrap(),
            "powering-off"
        );
        assert_eq!(
            serde_json::to_value(VmState::SoftDeleted).unwrap(),
            "soft-delete"
        );
        assert_eq!(
            TaskState::parse("rebooting_hard"),
            Some(TaskState::RebootingHard)
        );
        assert_eq!(VmState::parse("stopped"), Some(VmState::Stopped));
        for t in [
            TaskState::ImageSnapshot,
            TaskState::PoweringOn,
            TaskState::ResizePrep,
        ] {
            assert_eq!(TaskState::parse(t.as_str()), Some(t));
        }
        assert_eq!(
            status(VmState::Active, Some(TaskState::RebootingHard)),
            "HARD_REBOOT"
        );
        assert_eq!(status(VmState::Stopped, None), "SHUTOFF");
        assert_eq!(TaskState::parse("unrescuing"), Some(TaskState::Unrescuing));
        assert_eq!(status(VmState::Active, Some(TaskState::Rescuing)), "ACTIVE");
        assert_eq!(
            status(VmState::Rescued, Some(TaskState::Unrescuing)),
            "RESCUE"
        );
        assert_eq!(status(VmState::Resized, None), "VERIFY_RESIZE");
    }
}
