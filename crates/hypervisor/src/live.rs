//! What crosses the driver boundary in a live migration: where the
//! destination waits for the guest, and how far a migration has got.

use serde::{Deserialize, Serialize};

/// Where a live-migrating guest goes: the destination's paused, incoming
/// QEMU takes the migration stream on `host:port` and serves the disks
/// the source mirrors into over NBD on `host:nbd_port` (no NBD server
/// when no disk is copied: a guest on volumes only).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveMigrationTarget {
    /// The destination's management address.
    pub host: String,
    /// The migration stream's port.
    pub port: u16,
    #[serde(default)]
    pub nbd_port: Option<u16>,
    /// The local disks to copy, each into its export.
    #[serde(default)]
    pub disks: Vec<MirrorTarget>,
}

/// One local disk of the guest and the destination's export of its copy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MirrorTarget {
    /// The drive's id, the same in both QEMUs (`drive-virtio-disk0`, …).
    pub drive: String,
    /// The NBD export name (random: the only secret on the network).
    pub export: String,
    /// Copy only the top layer: the destination's disk is an overlay on
    /// the same base image. Otherwise everything is copied.
    pub top_only: bool,
}

/// A live migration's phase on the source.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LiveMigrationPhase {
    /// Copying the disks (before the memory).
    #[default]
    CopyingDisks,
    /// Copying the memory.
    CopyingMemory,
    /// The guest switched over: the source's copy is stopped for good.
    Completed,
    /// Nothing under way (never started, failed or cancelled).
    None,
}

/// How far a live migration has got, as QEMU reports it (bytes).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveMigrationProgress {
    pub phase: LiveMigrationPhase,
    pub memory_total: u64,
    pub memory_processed: u64,
    pub memory_remaining: u64,
    pub disk_total: u64,
    pub disk_processed: u64,
    pub disk_remaining: u64,
}
