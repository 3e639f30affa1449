//! Sessions that survive a restart of the process: each live session is
//! one file (`<sha256 of its id>.json`, mode 0600, in a 0700 directory
//! under the data directory), written when it is made or rescoped and
//! removed when it ends. The token stays on the server as before; the
//! browser still holds only the opaque id. Writes go through one thread in
//! the order they were asked for, off the async runtime.

use crate::session_record::{Identity, Session};
use serde::{Deserialize, Serialize};
use sha2::Digest;
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A session as stored: its end as wall-clock seconds.
#[derive(Serialize, Deserialize)]
struct Stored {
    id: String,
    csrf: String,
    token: String,
    identity: Identity,
    catalog: HashMap<String, String>,
    expires_unix: u64,
}

enum Op {
    Put(String, Vec<u8>),
    Remove(String),
}

/// The writer of a session directory.
pub struct Disk {
    tx: Mutex<mpsc::Sender<Op>>,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn file_of(dir: &Path, id: &str) -> PathBuf {
    let digest = sha2::Sha256::digest(id.as_bytes());
    let name: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    dir.join(format!("{name}.json"))
}

fn write_private(path: &Path, body: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(&tmp)?;
    f.write_all(body)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

impl Disk {
    /// Open (creating) `dir` and read back the sessions still live; the
    /// expired and unreadable ones are deleted.
    pub fn open(dir: PathBuf) -> std::io::Result<(Disk, Vec<Session>)> {
        std::fs::create_dir_all(&dir)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
        }
        let now = unix_now();
        let mut live = Vec::new();
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            let stored = std::fs::read(&path)
                .ok()
                .and_then(|b| serde_json::from_slice::<Stored>(&b).ok());
            match stored {
                Some(s) if s.expires_unix > now => live.push(Session {
                    id: s.id,
                    csrf: s.csrf,
                    token: s.token,
                    identity: s.identity,
                    catalog: s.catalog,
                    expires: Instant::now() + Duration::from_secs(s.expires_unix - now),
                }),
                _ => {
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
        let (tx, rx) = mpsc::channel::<Op>();
        std::thread::Builder::new()
            .name("dashboard-sessions".into())
            .spawn(move || {
                for op in rx {
                    let result = match op {
                        Op::Put(id, body) => write_private(&file_of(&dir, &id), &body),
                        Op::Remove(id) => match std::fs::remove_file(file_of(&dir, &id)) {
                            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                            other => other,
                        },
                    };
                    if let Err(e) = result {
                        tracing::warn!(error = %e, "dashboard session not written to disk");
                    }
                }
            })?;
        Ok((Disk { tx: Mutex::new(tx) }, live))
    }

    pub fn put(&self, s: &Session) {
        let left = s.expires.saturating_duration_since(Instant::now());
        let stored = Stored {
            id: s.id.clone(),
            csrf: s.csrf.clone(),
            token: s.token.clone(),
            identity: s.identity.clone(),
            catalog: s.catalog.clone(),
            expires_unix: unix_now() + left.as_secs(),
        };
        if let Ok(body) = serde_json::to_vec(&stored) {
            let _ = self.send(Op::Put(s.id.clone(), body));
        }
    }

    pub fn remove(&self, id: &str) {
        let _ = self.send(Op::Remove(id.to_owned()));
    }

    fn send(&self, op: Op) -> Result<(), mpsc::SendError<Op>> {
        self.tx.lock().expect("session disk lock").send(op)
    }
}
