//! Making a volume reachable by a compute host. [`VolumeExporter`] is what
//! the attach flows need of an export backend (LVM + iSCSI can implement it
//! later); [`NbdExporter`] runs one `qemu-storage-daemon` per exported
//! volume, daemonized so guests keep their disks across a restart of this
//! process. Each export's files live in `<export_state_dir>/<volume_id>/`:
//! `export.json` (what was promised to the connector), `pid`, `qmp.sock`
//! and, for a local connector, `nbd.sock`.

use crate::io_limits::IoLimits;
use ferrostack_core::config::Config;
use ferrostack_core::{Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// Where a volume's data is, as the exporter opens it.
#[derive(Clone, Debug)]
pub struct ExportSource {
    pub path: PathBuf,
    /// `qcow2` or `raw`.
    pub format: String,
    /// What the daemon throttles the export to (the volume type's
    /// back-end QoS).
    pub limits: IoLimits,
}

/// How the connector reaches the export.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// The connector is this host: a unix socket.
    Local,
    /// Another host: TCP on the management address.
    Remote,
}

#[async_trait::async_trait]
pub trait VolumeExporter: Send + Sync {
    /// Cinder's `driver_volume_type` of the connections made.
    fn protocol(&self) -> &'static str;
    /// Export volume `id` and return its `connection_info`. Idempotent: an
    /// export already there with that transport and mode is returned as it
    /// is (its daemon restarted if it died).
    async fn export(
        &self,
        id: &str,
        source: &ExportSource,
        transport: Transport,
        access_mode: &str,
    ) -> Result<Value>;
    /// Stop exporting volume `id`; nothing exported is success.
    async fn unexport(&self, id: &str) -> Result<()>;
    /// Grow the exported volume to `size_bytes` through its daemon, so
    /// connected clients see the new size at once.
    async fn resize(&self, id: &str, size_bytes: u64) -> Result<()>;
    /// The volumes with export state on this host.
    async fn exported(&self) -> Result<Vec<String>>;
    /// Restart the daemon of an existing export whose daemon died (same
    /// export name, socket and port); false when there is no such export.
    async fn revive(&self, id: &str) -> Result<bool>;
}

/// What an export promised its connector, kept next to its daemon.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct ExportRecord {
    export: String,
    socket: Option<String>,
    host: Option<String>,
    port: Option<u16>,
    access_mode: String,
    path: PathBuf,
    format: String,
    /// Throttled through a `throttle` node over the disk when not empty.
    #[serde(default)]
    limits: IoLimits,
}

impl ExportRecord {
    /// The node the export serves: the throttle over the disk, or the disk.
    fn exported_node(&self) -> &'static str {
        if self.limits.is_empty() {
            "disk0"
        } else {
            "throttle0"
        }
    }

    fn connection_info(&self) -> Value {
        let mut data = json!({"export": self.export, "access_mode": self.access_mode});
        if let Some(s) = &self.socket {
            data["socket"] = json!(s);
        }
        if let (Some(h), Some(p)) = (&self.host, self.port) {
            data["host"] = json!(h);
            data["port"] = json!(p);
        }
        json!({"driver_volume_type": "nbd", "data": data})
    }

    fn transport(&self) -> Transport {
        if self.socket.is_some() {
            Transport::Local
        } else {
            Transport::Remote
        }
    }
}

pub struct NbdExporter {
    dir: PathBuf,
    my_ip: String,
    ports: (u16, u16),
    /// Port choice and start/stop of one export at a time.
    lock: tokio::sync::Mutex<()>,
}

/// `min:max` of `[volume] export_port_range`.
/// Longest unix socket path the kernel takes (`sun_path` less its NUL).
const MAX_SOCKET_PATH: usize = 107;

/// An export's sockets are `<dir>/<volume id>/{qmp,nbd}.sock`; a directory
/// too long for them would only fail at the first attach, as a 500. Refuse
/// it when the service starts instead, naming the option that sets it.
fn check_socket_room(dir: &Path) -> Result<()> {
    let text = dir.to_string_lossy();
    let rest = "/".len() + 36 + "/qmp.sock".len();
    if text.len() + rest > MAX_SOCKET_PATH {
        return Err(Error::Internal(format!(
            "[volume] export_state_dir {text} is too long for the exports' unix sockets \
             ({} bytes; at most {}): set it to a shorter directory",
            text.len(),
            MAX_SOCKET_PATH - rest
        )));
    }
    Ok(())
}

fn parse_range(text: &str) -> Result<(u16, u16)> {
    let bad = || Error::Internal(format!("[volume] export_port_range {text} is not min:max"));
    let (a, b) = text.split_once(':').ok_or_else(bad)?;
    let (a, b) = (
        a.trim().parse::<u16>().map_err(|_| bad())?,
        b.trim().parse::<u16>().map_err(|_| bad())?,
    );
    if a == 0 || a > b {
        return Err(bad());
    }
    Ok((a, b))
}

/// A random export name: 256 bits, hex. Whoever knows it can open the
/// volume on the TCP listener, so it is as strong as a key.
fn secret_name() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn internal(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Internal(format!("{what}: {e}"))
}

/// qemu's option syntax doubles a comma inside a value.
fn opt(v: &str) -> String {
    v.replace(',', ",,")
}

impl NbdExporter {
    pub fn new(dir: PathBuf, my_ip: &str, port_range: &str) -> Result<NbdExporter> {
        check_socket_room(&dir)?;
        std::fs::create_dir_all(&dir).map_err(|e| internal(&dir.display().to_string(), e))?;
        Ok(NbdExporter {
            dir,
            my_ip: my_ip.to_owned(),
            ports: parse_range(port_range)?,
            lock: tokio::sync::Mutex::new(()),
        })
    }

    pub fn from_config(cfg: &Config) -> Result<NbdExporter> {
        NbdExporter::new(
            cfg.volume_export_dir(),
            &cfg.volume.my_ip,
            &cfg.volume.export_port_range,
        )
    }

    fn vol_dir(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    /// The QMP socket of volume `id`'s daemon.
    pub fn qmp_socket(&self, id: &str) -> PathBuf {
        self.vol_dir(id).join("qmp.sock")
    }

    async fn record(&self, id: &str) -> Option<ExportRecord> {
        let text = tokio::fs::read(self.vol_dir(id).join("export.json"))
            .await
            .ok()?;
        serde_json::from_slice(&text).ok()
    }

    async fn write_record(&self, id: &str, r: &ExportRecord) -> Result<()> {
        let dir = self.vol_dir(id);
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| internal("export dir", e))?;
        // The record holds the export's secret name and the directory its
        // unix socket: this service's user only.
        use std::os::unix::fs::PermissionsExt;
        tokio::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
            .await
            .map_err(|e| internal("export dir", e))?;
        let tmp = dir.join("export.json.tmp");
        let body = serde_json::to_vec(r).map_err(|e| internal("export record", e))?;
        tokio::fs::write(&tmp, body)
            .await
            .map_err(|e| internal("export record", e))?;
        tokio::fs::rename(&tmp, dir.join("export.json"))
            .await
            .map_err(|e| internal("export record", e))
    }

    /// The pid of volume `id`'s daemon when it runs (the pid file names a
    /// live `qemu-storage-daemon` serving this export's QMP socket).
    async fn running_pid(&self, id: &str) -> Option<i32> {
        let text = tokio::fs::read_to_string(self.vol_dir(id).join("pid"))
            .await
            .ok()?;
        let pid: i32 = text.trim().parse().ok()?;
        let cmdline = tokio::fs::read(format!("/proc/{pid}/cmdline")).await.ok()?;
        let cmdline = String::from_utf8_lossy(&cmdline);
        let qmp = self.qmp_socket(id);
        (cmdline.contains("qemu-storage-daemon") && cmdline.contains(&*qmp.to_string_lossy()))
            .then_some(pid)
    }

    /// A free port of the range: taken by no other export and bindable now.
    async fn free_port(&self) -> Result<u16> {
        let mut taken = Vec::new();
        for id in self.exported().await? {
            if let Some(p) = self.record(&id).await.and_then(|r| r.port) {
                taken.push(p);
            }
        }
        for port in self.ports.0..=self.ports.1 {
            if taken.contains(&port) {
                continue;
            }
            if std::net::TcpListener::bind((self.my_ip.as_str(), port)).is_ok() {
                return Ok(port);
            }
        }
        Err(Error::Unavailable(format!(
            "No free port for a volume export in {}:{}.",
            self.ports.0, self.ports.1
        )))
    }

    /// Start the daemon an export record describes (a child that forks
    /// away: it outlives this process).
    async fn start_daemon(&self, id: &str, r: &ExportRecord) -> Result<()> {
        let dir = self.vol_dir(id);
        for f in ["qmp.sock", "nbd.sock", "pid"] {
            let _ = tokio::fs::remove_file(dir.join(f)).await;
        }
        let server = match (&r.socket, &r.host, r.port) {
            (Some(s), _, _) => format!("addr.type=unix,addr.path={}", opt(s)),
            (None, Some(h), Some(p)) => {
                format!("addr.type=inet,addr.host={},addr.port={p}", opt(h))
            }
            _ => return Err(Error::Internal(format!("export of {id} has no address"))),
        };
        let writable = if r.access_mode == "ro" { "off" } else { "on" };
        let mut args = vec![
            "--blockdev".to_owned(),
            format!(
                "driver=file,node-name=file0,filename={}",
                opt(&r.path.to_string_lossy())
            ),
            "--blockdev".into(),
            format!("driver={},node-name=disk0,file=file0", opt(&r.format)),
        ];
        if !r.limits.is_empty() {
            args.extend([
                "--object".into(),
                r.limits.throttle_group("tg0"),
                "--blockdev".into(),
                "driver=throttle,node-name=throttle0,throttle-group=tg0,file=disk0".into(),
            ]);
        }
        args.extend([
            "--nbd-server".into(),
            server,
            "--export".into(),
            format!(
                "type=nbd,id=export0,node-name={},name={},writable={writable}",
                r.exported_node(),
                r.export
            ),
            "--chardev".into(),
            format!(
                "socket,id=qmp0,path={},server=on,wait=off",
                opt(&self.qmp_socket(id).to_string_lossy())
            ),
            "--monitor".into(),
            "chardev=qmp0".into(),
            "--pidfile".into(),
            dir.join("pid").to_string_lossy().into_owned(),
            "--daemonize".into(),
        ]);
        let out = tokio::process::Command::new("qemu-storage-daemon")
            .args(&args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .output()
            .await
            .map_err(|e| internal("cannot run qemu-storage-daemon", e))?;
        if !out.status.success() {
            return Err(Error::Internal(format!(
                "qemu-storage-daemon for volume {id} failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(())
    }

    /// Stop volume `id`'s daemon (TERM, then KILL after 5 s).
    async fn stop_daemon(&self, id: &str) {
        let Some(pid) = self.running_pid(id).await else {
            return;
        };
        // SAFETY: kill(2) with a pid read from the export's pid file and
        // checked to be its daemon; no memory is involved.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        for _ in 0..100 {
            if self.running_pid(id).await.is_none() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // SAFETY: as above.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
}

#[async_trait::async_trait]
impl VolumeExporter for NbdExporter {
    fn protocol(&self) -> &'static str {
        "nbd"
    }

    async fn export(
        &self,
        id: &str,
        source: &ExportSource,
        transport: Transport,
        access_mode: &str,
    ) -> Result<Value> {
        let _g = self.lock.lock().await;
        if let Some(r) = self.record(id).await {
            if r.transport() == transport
                && r.access_mode == access_mode
                && r.limits == source.limits
            {
                if self.running_pid(id).await.is_none() {
                    self.start_daemon(id, &r).await?;
                }
                return Ok(r.connection_info());
            }
            self.stop_daemon(id).await;
        }
        let (socket, host, port) = match transport {
            Transport::Local => (
                Some(
                    self.vol_dir(id)
                        .join("nbd.sock")
                        .to_string_lossy()
                        .into_owned(),
                ),
                None,
                None,
            ),
            Transport::Remote => (
                None,
                Some(self.my_ip.clone()),
                Some(self.free_port().await?),
            ),
        };
        let r = ExportRecord {
            export: secret_name(),
            socket,
            host,
            port,
            access_mode: access_mode.to_owned(),
            path: source.path.clone(),
            format: source.format.clone(),
            limits: source.limits.clone(),
        };
        self.write_record(id, &r).await?;
        if let Err(e) = self.start_daemon(id, &r).await {
            let _ = tokio::fs::remove_dir_all(self.vol_dir(id)).await;
            return Err(e);
        }
        Ok(r.connection_info())
    }

    async fn unexport(&self, id: &str) -> Result<()> {
        let _g = self.lock.lock().await;
        self.stop_daemon(id).await;
        match tokio::fs::remove_dir_all(self.vol_dir(id)).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(internal("cannot remove export state", e)),
        }
    }

    async fn resize(&self, id: &str, size_bytes: u64) -> Result<()> {
        let _g = self.lock.lock().await;
        let (Some(r), Some(_)) = (self.record(id).await, self.running_pid(id).await) else {
            return Err(Error::Internal(format!("volume {id} is not exported")));
        };
        resize_exported(&self.qmp_socket(id), &r, size_bytes).await
    }

    async fn exported(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let mut rd = match tokio::fs::read_dir(&self.dir).await {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(internal("export dir", e)),
        };
        while let Some(entry) = rd
            .next_entry()
            .await
            .map_err(|e| internal("export dir", e))?
        {
            out.push(entry.file_name().to_string_lossy().into_owned());
        }
        Ok(out)
    }

    async fn revive(&self, id: &str) -> Result<bool> {
        let _g = self.lock.lock().await;
        let Some(r) = self.record(id).await else {
            return Ok(false);
        };
        if self.running_pid(id).await.is_none() {
            tracing::info!(volume = %id, "restarting the storage daemon of an attached volume");
            self.start_daemon(id, &r).await?;
        }
        Ok(true)
    }
}

/// A QMP session on a daemon's monitor socket.
struct Qmp {
    lines: tokio::io::Lines<BufReader<tokio::net::unix::OwnedReadHalf>>,
    wr: tokio::net::unix::OwnedWriteHalf,
}

impl Qmp {
    async fn connect(socket: &Path) -> Result<Qmp> {
        let stream = tokio::net::UnixStream::connect(socket)
            .await
            .map_err(|e| internal("QMP connect", e))?;
        let (rd, wr) = stream.into_split();
        let mut qmp = Qmp {
            lines: BufReader::new(rd).lines(),
            wr,
        };
        qmp.answer().await?;
        qmp.execute("qmp_capabilities", Value::Null).await?;
        Ok(qmp)
    }

    /// The next reply (or greeting), skipping events.
    async fn answer(&mut self) -> Result<Value> {
        loop {
            let line = self
                .lines
                .next_line()
                .await
                .map_err(|e| internal("QMP read", e))?
                .ok_or_else(|| Error::Internal("QMP closed".into()))?;
            let v: Value = serde_json::from_str(&line).map_err(|e| internal("QMP", e))?;
            if v.get("return").is_some() || v.get("error").is_some() || v.get("QMP").is_some() {
                return Ok(v);
            }
        }
    }

    /// One command: its `return`, or its `error` as ours.
    async fn execute(&mut self, command: &str, arguments: Value) -> Result<Value> {
        let mut msg = json!({ "execute": command });
        if !arguments.is_null() {
            msg["arguments"] = arguments;
        }
        let mut text = msg.to_string();
        text.push('\n');
        self.wr
            .write_all(text.as_bytes())
            .await
            .map_err(|e| internal("QMP write", e))?;
        let v = self.answer().await?;
        match v.get("error") {
            Some(err) => Err(Error::Internal(format!("QMP {command}: {}", err["desc"]))),
            None => Ok(v["return"].clone()),
        }
    }
}

/// Grow the exported node: an NBD export forbids resizing its node, so the
/// export is withdrawn (its clients disconnect and reconnect to the same
/// name), the node grown, and the export added back — also when the grow
/// fails, so the volume stays reachable.
async fn resize_exported(socket: &Path, r: &ExportRecord, size: u64) -> Result<()> {
    let run = async {
        let mut qmp = Qmp::connect(socket).await?;
        qmp.execute("block-export-del", json!({"id": "export0", "mode": "hard"}))
            .await?;
        for _ in 0..100 {
            let exports = qmp.execute("query-block-exports", Value::Null).await?;
            if exports.as_array().is_none_or(|a| a.is_empty()) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let grown = qmp
            .execute("block_resize", json!({"node-name": "disk0", "size": size}))
            .await;
        qmp.execute(
            "block-export-add",
            json!({"type": "nbd", "id": "export0", "node-name": r.exported_node(),
                   "name": r.export, "writable": r.access_mode != "ro"}),
        )
        .await?;
        grown.map(|_| ())
    };
    tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .map_err(|_| Error::Internal("QMP did not answer in 30 s".into()))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_dir_too_long_for_the_sockets_is_refused_naming_the_option() {
        let fits = PathBuf::from(format!("/{}", "d".repeat(60)));
        assert!(check_socket_room(&fits).is_ok());
        let long = PathBuf::from(format!("/{}", "d".repeat(61)));
        let err = NbdExporter::new(long, "127.0.0.1", "10809:10810")
            .err()
            .expect("refused");
        let text = err.to_string();
        assert!(text.contains("[volume] export_state_dir"), "{text}");
        assert!(text.contains("at most 61"), "{text}");
    }
}
