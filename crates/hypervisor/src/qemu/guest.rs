//! One guest's directory on the host and what it holds: the files QEMU
//! uses, the record needed to launch it again, and whether its QEMU runs.

use crate::{DiskFormat, DriverError, InstanceSpec, RescueImage, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `<instances_dir>/<uuid>/` and the files in it.
#[derive(Clone, Debug)]
pub(crate) struct GuestPaths {
    pub id: String,
    pub dir: PathBuf,
}

impl GuestPaths {
    pub fn new(instances_dir: &Path, id: &str) -> Result<GuestPaths> {
        validate_id(id)?;
        Ok(GuestPaths {
            id: id.to_owned(),
            dir: instances_dir.join(id),
        })
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
    /// The root disk: a qcow2 overlay on the cached base image.
    pub fn disk(&self) -> PathBuf {
        self.file("disk")
    }
    /// While rescued: the disk the guest boots from, a qcow2 overlay on
    /// the cached rescue image.
    pub fn rescue_disk(&self) -> PathBuf {
        self.file("disk.rescue")
    }
    pub fn config_drive(&self) -> PathBuf {
        self.file("disk.config")
    }
    /// The flavor's ephemeral disk (ext4, label `ephemeral0`).
    pub fn ephemeral(&self) -> PathBuf {
        self.file("disk.eph0")
    }
    /// The flavor's swap disk.
    pub fn swap(&self) -> PathBuf {
        self.file("disk.swap")
    }
    pub fn console_log(&self) -> PathBuf {
        self.file("console.log")
    }
    /// QEMU's own stderr at each launch.
    pub fn qemu_log(&self) -> PathBuf {
        self.file("qemu.log")
    }
    pub fn qmp(&self) -> PathBuf {
        self.file("qmp.sock")
    }
    pub fn vnc(&self) -> PathBuf {
        self.file("vnc.sock")
    }
    pub fn pidfile(&self) -> PathBuf {
        self.file("qemu.pid")
    }
    pub fn record(&self) -> PathBuf {
        self.file("spec.json")
    }
    pub fn memory_state(&self) -> PathBuf {
        self.file("memory.state")
    }
    pub fn memory_state_part(&self) -> PathBuf {
        self.file("memory.state.part")
    }
    pub fn disk_backup(&self) -> PathBuf {
        self.file("disk.resize-backup")
    }
    pub fn record_backup(&self) -> PathBuf {
        self.file("spec.json.resize-backup")
    }
    /// Whether the guest ran when the resize began (restarted after it).
    pub fn resize_marker(&self) -> PathBuf {
        self.file("resize.json")
    }
}

/// Ids become directory names: keep them to what a UUID is made of.
pub(crate) fn validate_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && !id.starts_with('.')
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(DriverError::InvalidRequest(format!(
            "Invalid instance id '{id}': expected a UUID."
        )))
    }
}

/// `spec.json`: what is needed to launch the guest again.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct GuestRecord {
    pub spec: InstanceSpec,
    /// The cached base image (absolute) and its format; `None` when the
    /// guest boots from a volume and has no `disk`.
    pub base: Option<PathBuf>,
    pub base_format: DiskFormat,
    /// Whether `disk.config` is attached.
    pub config_drive: bool,
    /// While rescued: the image `disk.rescue` is made on. The guest boots
    /// from `disk.rescue`, its own `disk` attached second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rescue: Option<RescueImage>,
}

impl GuestRecord {
    pub async fn load(path: &Path) -> Result<GuestRecord> {
        let text = tokio::fs::read(path)
            .await
            .map_err(|e| DriverError::failed(&format!("reading {}", path.display()), e))?;
        serde_json::from_slice(&text)
            .map_err(|e| DriverError::failed(&format!("parsing {}", path.display()), e))
    }

    pub async fn save(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_vec_pretty(self)
            .map_err(|e| DriverError::failed("encoding the guest record", e))?;
        write_atomic(path, &text).await
    }
}

/// Write `path` through a temporary file and a rename, so a crash leaves
/// the old content or the new one.
pub(crate) async fn write_atomic(path: &Path, content: &[u8]) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    tokio::fs::write(&tmp, content)
        .await
        .map_err(|e| DriverError::failed(&format!("writing {}", tmp.display()), e))?;
    tokio::fs::rename(&tmp, path)
        .await
        .map_err(|e| DriverError::failed(&format!("writing {}", path.display()), e))
}

pub(crate) async fn exists(path: &Path) -> bool {
    tokio::fs::try_exists(path).await.unwrap_or(false)
}

/// Remove a file that may not be there.
pub(crate) async fn remove_file(path: &Path) -> Result<()> {
    match tokio::fs::remove_file(path).await {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(DriverError::failed(
            &format!("removing {}", path.display()),
            e,
        )),
    }
}

/// Move a file, copying when it crosses filesystems.
pub(crate) async fn move_file(from: &Path, to: &Path) -> std::io::Result<()> {
    match tokio::fs::rename(from, to).await {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {
            tokio::fs::copy(from, to).await?;
            tokio::fs::remove_file(from).await
        }
        Err(e) => Err(e),
    }
}

/// The pid of the guest's QEMU when it runs. The pid file alone is not
/// trusted: the pid must be a live process whose command line names this
/// guest (pids are reused; a killed QEMU may linger as a zombie, which
/// has no command line).
pub(crate) async fn live_pid(paths: &GuestPaths) -> Option<i32> {
    let text = tokio::fs::read_to_string(paths.pidfile()).await.ok()?;
    let pid: i32 = text.trim().parse().ok()?;
    (pid > 1 && is_guest_process(pid, &paths.id).await).then_some(pid)
}

pub(crate) async fn is_guest_process(pid: i32, id: &str) -> bool {
    let Ok(cmdline) = tokio::fs::read(format!("/proc/{pid}/cmdline")).await else {
        return false;
    };
    if !contains(&cmdline, id.as_bytes()) {
        return false;
    }
    // A zombie (or one being reaped) does not run the guest any more.
    match tokio::fs::read_to_string(format!("/proc/{pid}/stat")).await {
        Ok(stat) => match stat.rfind(')') {
            Some(i) => !matches!(stat[i + 1..].trim_start().chars().next(), Some('Z' | 'X')),
            None => true,
        },
        Err(_) => false,
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// Wait until process `pid` no longer runs guest `id`; true when it is gone.
pub(crate) async fn wait_gone(pid: i32, id: &str, timeout: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if !is_guest_process(pid, id).await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub(crate) fn signal(pid: i32, sig: libc::c_int) {
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe {
        libc::kill(pid, sig);
    }
}

/// The last `max_bytes` of a console log, as [`crate::tail`] cuts the
/// whole text, reading only that much of the file.
pub(crate) async fn read_tail(path: &Path, max_bytes: usize) -> std::io::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    let mut file = match tokio::fs::File::open(path).await {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(String::new()),
        Err(e) => return Err(e),
    };
    let len = file.metadata().await?.len();
    let start = len.saturating_sub(max_bytes as u64);
    file.seek(std::io::SeekFrom::Start(start)).await?;
    let mut buf = Vec::with_capacity((len - start) as usize);
    file.take(max_bytes as u64).read_to_end(&mut buf).await?;
    Ok(tail_of(&buf, start > 0))
}

/// `buf` is the end of a text; `cut` says whether its beginning was cut
/// off, in which case it starts at the next whole character and line.
pub(crate) fn tail_of(buf: &[u8], cut: bool) -> String {
    if !cut {
        return String::from_utf8_lossy(buf).into_owned();
    }
    let skip = buf.iter().take_while(|b| (**b & 0xC0) == 0x80).count();
    let rest = &buf[skip..];
    match rest.iter().position(|b| *b == b'\n') {
        Some(n) if n + 1 < rest.len() => String::from_utf8_lossy(&rest[n + 1..]).into_owned(),
        _ => String::from_utf8_lossy(rest).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_path_safe() {
        assert!(validate_id("3f1c2a9e-0d7b-4c43-9a55-8e1b2f0c6d11").is_ok());
        for bad in ["", "..", "../etc", "a/b", ".hidden", "a b"] {
            assert!(
                matches!(validate_id(bad), Err(DriverError::InvalidRequest(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn tails_match_the_crate_helper() {
        let text = "abc\ndéf\nghi\n";
        for max in 0..text.len() + 2 {
            let start = text.len().saturating_sub(max);
            assert_eq!(
                tail_of(&text.as_bytes()[start..], start > 0),
                crate::tail(text, max),
                "max {max}"
            );
        }
    }

    #[tokio::test]
    async fn read_tail_reads_the_end() {
        let dir = std::env::temp_dir().join(format!("fs-tail-{}", std::process::id()));
        tokio::fs::create_dir_all(&dir).await.unwrap();
        let f = dir.join("console.log");
        tokio::fs::write(&f, "line one\nline two\nline three\n")
            .await
            .unwrap();
        assert_eq!(read_tail(&f, 12).await.unwrap(), "line three\n");
        assert_eq!(
            read_tail(&f, 1000).await.unwrap(),
            "line one\nline two\nline three\n"
        );
        assert_eq!(read_tail(&dir.join("none"), 10).await.unwrap(), "");
        tokio::fs::remove_dir_all(&dir).await.unwrap();
    }

    #[tokio::test]
    async fn own_process_is_not_a_guest_of_another_id() {
        let me = std::process::id() as i32;
        assert!(!is_guest_process(me, "not-in-my-cmdline-0000").await);
        assert!(!is_guest_process(i32::MAX, "x").await);
    }
}
