//! What runs guests on a compute host. [`Driver`] is Nova's virt driver
//! contract — `spawn` cleans up after its own failure, `destroy` succeeds
//! on a missing guest, every call is idempotent — so the control plane's
//! sagas may repeat or undo any call. One module per backend, as
//! cloud-hypervisor keeps `hypervisor/kvm` and `hypervisor/mshv`:
//! [`qemu`] runs one `qemu-system-x86_64` per guest, [`fake`] keeps guests
//! in memory for scale tests.
//!
//! This crate knows nothing of the API, the database or the bus: the
//! compute agent (`ferrostack-compute-agent`) drives it.

pub mod error;
pub mod fake;
pub mod live;
pub mod qemu;
pub mod stats;
pub mod types;

pub use error::{DriverError, Result};
pub use live::{LiveMigrationPhase, LiveMigrationProgress, LiveMigrationTarget, MirrorTarget};
pub use types::{
    ConsoleTarget, DiskFormat, GuestDisks, HostResources, InstanceSpec, NbdExport, PowerState,
    RebootKind, RescueBus, RescueDevice, RescueImage, VifSpec, VolumeAttachment, VolumeConnection,
};

use std::path::Path;

#[async_trait::async_trait]
pub trait Driver: Send + Sync {
    /// The backend's name (`qemu`, `fake`), as `hypervisor_type` shows it.
    fn kind(&self) -> &'static str;

    /// Whether guests read their disks, so the agent must fetch and convert
    /// images (false for the fake backend, whose guests have no data).
    fn uses_disks(&self) -> bool {
        true
    }

    /// The host's figures for the scheduler and `hypervisor list`.
    async fn host_resources(&self) -> Result<HostResources>;

    /// Create and start a guest from its disks; on failure leave nothing
    /// behind. Spawning a guest that already exists is a no-op.
    async fn spawn(&self, spec: &InstanceSpec, disks: &GuestDisks) -> Result<()>;

    /// Stop and remove a guest and everything it has on the host (disk
    /// overlay, console log, taps). A missing guest is not an error.
    async fn destroy(&self, id: &str) -> Result<()>;

    /// Soft: a clean shutdown of the guest (ACPI), then start it again; a
    /// guest that does not shut down in time is rebooted hard. Hard: reset.
    async fn reboot(&self, id: &str, kind: RebootKind) -> Result<()>;

    /// Shut the guest down cleanly, then force it off after the driver's
    /// shutdown timeout. Off already is fine.
    async fn power_off(&self, id: &str) -> Result<()>;
    /// Start a guest that is off. Running already is fine.
    async fn power_on(&self, id: &str) -> Result<()>;

    async fn pause(&self, id: &str) -> Result<()>;
    async fn unpause(&self, id: &str) -> Result<()>;
    /// Save the guest's memory to disk and stop it (managed save).
    async fn suspend(&self, id: &str) -> Result<()>;
    /// Restore a suspended guest where it was.
    async fn resume(&self, id: &str) -> Result<()>;

    /// Boot the guest from a rescue disk made on `image`, with its own
    /// root disk attached as the second disk (Nova's rescue): the guest is
    /// stopped, the rescue disk made in its directory, the guest started
    /// again from it with the same NICs, console and VNC. A rescued guest
    /// stays so across reboots and agent restarts until [`Driver::unrescue`].
    /// Rescuing a rescued guest is a no-op (it is started if off); a
    /// failure leaves the guest on its own disk, running if it was.
    async fn rescue(&self, id: &str, image: &RescueImage) -> Result<()>;

    /// Stop the rescued guest, remove its rescue disk and start it from
    /// its own disk again. A guest that is not rescued is started if off.
    async fn unrescue(&self, id: &str) -> Result<()>;

    /// Inject a non-maskable interrupt into the running guest (Nova's
    /// `trigger_crash_dump`: a guest configured for it panics and dumps its
    /// memory). A guest that is not running is `InvalidState`; a backend
    /// without NMIs says `NotSupported`, as Nova's base driver does.
    async fn inject_nmi(&self, id: &str) -> Result<()> {
        Err(DriverError::NotSupported(format!(
            "{} cannot inject an NMI into guest {id}",
            self.kind()
        )))
    }

    /// The guest's power state; `InstanceNotFound` when there is no such guest.
    async fn get_info(&self, id: &str) -> Result<PowerState>;

    /// Ids of the guests this host has (running or not).
    async fn list_instances(&self) -> Result<Vec<String>>;

    /// The guest's serial console output, at most the last `max_bytes`.
    async fn console_output(&self, id: &str, max_bytes: usize) -> Result<String>;

    /// Write a copy of the guest's root disk to `dest` as a standalone
    /// qcow2 (no backing file); the guest keeps its power state.
    async fn snapshot(&self, id: &str, dest: &Path) -> Result<()>;

    /// Give the guest the vCPUs, memory and (grown) disk of `spec`'s
    /// flavor, on this host; what is needed to revert is kept until
    /// [`Driver::confirm_resize`] or [`Driver::revert_resize`].
    async fn resize(&self, spec: &InstanceSpec) -> Result<()>;
    /// Drop what `resize` kept for a revert. Idempotent.
    async fn confirm_resize(&self, id: &str) -> Result<()>;
    /// Return the guest to `spec` (its old flavor) and its disk from before the resize.
    async fn revert_resize(&self, spec: &InstanceSpec) -> Result<()>;

    /// Cold migration, on the source host: stop the guest (cleanly, as
    /// `power_off`) and serve its root disk read-only over NBD on
    /// `address` for the destination to copy. The guest and its disk stay
    /// here, off, until [`Driver::confirm_migration`] or
    /// [`Driver::revert_migration`]. Repeating it gives the same export;
    /// `None` when the guest has no disk here (it boots from a volume).
    async fn migrate_out(&self, id: &str, address: &str) -> Result<Option<NbdExport>>;
    /// Stop serving the disk of a guest migrated out (it stays, off).
    /// Idempotent.
    async fn end_migrate_out(&self, id: &str) -> Result<()>;
    /// Cold migration, on the destination host: make the guest of `spec`
    /// with its root disk copied from `source` (an overlay on this host's
    /// cached base image of `disks`), and start it when `power_on`. A
    /// guest that exists already is left be (started when `power_on`);
    /// on failure nothing is left behind.
    async fn migrate_in(
        &self,
        spec: &InstanceSpec,
        disks: &GuestDisks,
        source: Option<&NbdExport>,
        power_on: bool,
    ) -> Result<()>;
    /// The migration is confirmed elsewhere: the guest left on this source
    /// host goes (export, disk and all). Missing is fine.
    async fn confirm_migration(&self, id: &str) -> Result<()> {
        self.end_migrate_out(id).await?;
        self.destroy(id).await
    }
    /// The migration is reverted: the guest left on this source host takes
    /// `spec` (its old flavor) and is started when `power_on`.
    async fn revert_migration(&self, spec: &InstanceSpec, power_on: bool) -> Result<()>;

    /// Live migration, on the destination (Nova's `pre_live_migration`):
    /// make the guest of `spec` with empty copies of its local disks (an
    /// overlay of the same size on this host's cached base image of
    /// `disks`, blank scratch disks) when `copy_disks`, its taps plugged,
    /// and start it paused, waiting for the migration stream on `address`,
    /// its disks served writable over NBD there for the source to mirror
    /// into. Repeating it gives the same target while the guest waits; on
    /// failure nothing is left behind.
    async fn prepare_live_migration(
        &self,
        spec: &InstanceSpec,
        disks: &GuestDisks,
        copy_disks: bool,
        address: &str,
    ) -> Result<LiveMigrationTarget> {
        let _ = (disks, copy_disks, address);
        Err(DriverError::NotSupported(format!(
            "{} cannot live-migrate instance {}",
            self.kind(),
            spec.id
        )))
    }

    /// Live migration, on the source: copy the guest's local disks into
    /// the target's exports, then its memory, while it runs; return once
    /// it has switched over (the source's copy stopped for good, not yet
    /// removed). A failure or an abort before then leaves the guest
    /// running here as it was. Asked again, it waits for the migration
    /// under way, or answers at once when it is over.
    async fn live_migrate(&self, id: &str, target: &LiveMigrationTarget) -> Result<()> {
        let _ = target;
        Err(DriverError::NotSupported(format!(
            "{} cannot live-migrate instance {id}",
            self.kind()
        )))
    }

    /// How far the live migration of guest `id` (on the source) has got.
    async fn live_migration_progress(&self, id: &str) -> Result<LiveMigrationProgress> {
        Err(DriverError::NotSupported(format!(
            "{} has no live migration of instance {id}",
            self.kind()
        )))
    }

    /// Pause the migrating guest on the source so that its memory stops
    /// changing and the migration completes (Nova's `force_complete`
    /// without post-copy); the destination resumes it.
    async fn live_migration_force_complete(&self, id: &str) -> Result<()> {
        Err(DriverError::NotSupported(format!(
            "{} has no live migration of instance {id}",
            self.kind()
        )))
    }

    /// Cancel the live migration of guest `id` (on the source) before it
    /// switches over; the guest runs on here. Nothing under way is fine.
    async fn live_migration_abort(&self, id: &str) -> Result<()> {
        Err(DriverError::NotSupported(format!(
            "{} has no live migration of instance {id}",
            self.kind()
        )))
    }

    /// Live migration, on the destination, after the switch-over: stop
    /// serving the disks and let the guest run (left paused when
    /// `paused`). From here the guest lives on this host. Idempotent.
    async fn finish_live_migration(&self, id: &str, paused: bool) -> Result<()> {
        let _ = paused;
        Err(DriverError::NotSupported(format!(
            "{} has no incoming guest {id}",
            self.kind()
        )))
    }

    /// A live migration rolled back, on the destination: the waiting
    /// guest goes. Missing is fine; a guest that already runs here (it
    /// switched over) is refused with `InvalidState`, never destroyed.
    async fn rollback_live_migration_at_destination(&self, id: &str) -> Result<()> {
        Err(DriverError::NotSupported(format!(
            "{} has no incoming guest {id}",
            self.kind()
        )))
    }

    /// A live migration rolled back, on the source: any copy under way
    /// cancelled and the guest running again (paused when `paused`), also
    /// after a switch-over the destination has not taken up. Idempotent.
    async fn rollback_live_migration(&self, id: &str, paused: bool) -> Result<()> {
        let _ = paused;
        Err(DriverError::NotSupported(format!(
            "{} has no live migration of instance {id}",
            self.kind()
        )))
    }

    /// Where the guest's VNC server listens (loopback or a unix socket).
    async fn vnc_console(&self, id: &str) -> Result<ConsoleTarget>;

    /// Give the guest another network interface: hot-plugged when it runs,
    /// there at its next start otherwise. One it has already is fine.
    async fn attach_interface(&self, id: &str, vif: &VifSpec) -> Result<()>;

    /// Take a network interface away (hot-unplugged when the guest runs);
    /// one the guest does not have is fine.
    async fn detach_interface(&self, id: &str, port_id: &str) -> Result<()>;

    /// Give the guest a block-storage volume: hot-plugged as a virtio disk
    /// when it runs, there at its next start otherwise. One it has already
    /// is fine.
    async fn attach_volume(&self, id: &str, volume: &VolumeAttachment) -> Result<()>;

    /// Take a volume away: unplugged (and waited for) when the guest runs,
    /// then the host lets go of the export. One the guest does not have is
    /// fine, and so is a guest that is not there (as `destroy`), so an
    /// attach's undo always completes.
    async fn detach_volume(&self, id: &str, volume_id: &str) -> Result<()>;

    /// The volume behind an attached disk grew to `new_size_bytes` (the
    /// volume service extended it, through `connection`): make the guest
    /// see the new size.
    async fn extend_volume(
        &self,
        id: &str,
        volume_id: &str,
        connection: &VolumeConnection,
        new_size_bytes: u64,
    ) -> Result<()>;

    /// The cached base images this host's guests are built on, so the
    /// image cache never removes one in use. `None`: the backend does not
    /// know, and nothing is aged out.
    async fn base_images_in_use(&self) -> Result<Option<Vec<std::path::PathBuf>>> {
        Ok(None)
    }

    /// The guest's usage figures for metering (the compute agent's
    /// pollster). Backends without them say so.
    async fn guest_stats(&self, id: &str) -> Result<stats::GuestStats> {
        Err(DriverError::NotSupported(format!(
            "{} cannot report usage of guest {id}",
            self.kind()
        )))
    }
}

/// Read the guest's whole console log, keeping only the last `max_bytes`
/// and starting at a line boundary (helper for drivers).
pub fn tail(text: &str, max_bytes: usize) -> String {
    if text.len() <= max_bytes {
        return text.to_owned();
    }
    let mut start = text.len() - max_bytes;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    let cut = &text[start..];
    match cut.find('\n') {
        Some(n) if n + 1 < cut.len() => cut[n + 1..].to_owned(),
        _ => cut.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn tail_starts_at_a_line() {
        assert_eq!(super::tail("abc\ndef\nghi\n", 100), "abc\ndef\nghi\n");
        assert_eq!(super::tail("abc\ndef\nghi\n", 6), "ghi\n");
        assert_eq!(super::tail("abcdef", 3), "def");
    }
}
