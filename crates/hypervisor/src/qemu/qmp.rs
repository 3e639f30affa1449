//! A small async QMP client: one connection per operation (QEMU serves
//! one QMP client at a time), the greeting, `qmp_capabilities`, then
//! commands matched to their answers by `id`, asynchronous events
//! skipped, every wait bounded.

use serde_json::{json, Value};
use std::fmt;
use std::path::Path;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::UnixStream;
use tokio::time::Instant;

/// Longest line accepted from QEMU (a `query-*` answer is far smaller).
const MAX_LINE: usize = 4 << 20;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QmpError {
    /// The socket could not be reached, or the connection broke.
    Io(String),
    /// QEMU did not answer in time.
    Timeout(String),
    /// QEMU refused the command; `desc` is its own explanation.
    Command { class: String, desc: String },
    /// Something that is not QMP.
    Protocol(String),
}

impl fmt::Display for QmpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QmpError::Io(m) | QmpError::Timeout(m) | QmpError::Protocol(m) => f.write_str(m),
            QmpError::Command { desc, .. } => f.write_str(desc),
        }
    }
}

impl std::error::Error for QmpError {}

pub struct Qmp {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    next_id: u64,
    timeout: Duration,
    greeting: Value,
}

impl Qmp {
    /// Connect, read the greeting and leave capabilities negotiation
    /// mode; each step within `timeout`.
    pub async fn connect(path: &Path, timeout: Duration) -> Result<Qmp, QmpError> {
        let stream = tokio::time::timeout(timeout, UnixStream::connect(path))
            .await
            .map_err(|_| QmpError::Timeout(format!("connecting to {}", path.display())))?
            .map_err(|e| QmpError::Io(format!("connecting to {}: {e}", path.display())))?;
        let (r, w) = stream.into_split();
        let mut qmp = Qmp {
            reader: BufReader::new(r),
            writer: w,
            next_id: 1,
            timeout,
            greeting: Value::Null,
        };
        let deadline = Instant::now() + timeout;
        let greeting = qmp.read_message(deadline).await?;
        if greeting.get("QMP").is_none() {
            return Err(QmpError::Protocol(format!(
                "expected the QMP greeting, got {greeting}"
            )));
        }
        qmp.greeting = greeting;
        qmp.execute("qmp_capabilities", None).await?;
        Ok(qmp)
    }

    /// The server's greeting (`{"QMP": {"version": …}}`).
    pub fn greeting(&self) -> &Value {
        &self.greeting
    }

    /// Run `command`, returning its `return` value.
    pub async fn execute(
        &mut self,
        command: &str,
        arguments: Option<Value>,
    ) -> Result<Value, QmpError> {
        let id = self.next_id;
        self.next_id += 1;
        let mut msg = json!({ "execute": command, "id": id });
        if let Some(a) = arguments {
            msg["arguments"] = a;
        }
        let mut line = msg.to_string();
        line.push('\n');
        let deadline = Instant::now() + self.timeout;
        tokio::time::timeout_at(deadline, self.writer.write_all(line.as_bytes()))
            .await
            .map_err(|_| QmpError::Timeout(format!("sending {command}")))?
            .map_err(|e| QmpError::Io(format!("sending {command}: {e}")))?;
        loop {
            let m = self.read_message(deadline).await.map_err(|e| match e {
                QmpError::Timeout(_) => QmpError::Timeout(format!(
                    "QEMU did not answer {command} within {} s",
                    self.timeout.as_secs_f64()
                )),
                other => other,
            })?;
            if m.get("event").is_some() || m.get("id") != Some(&json!(id)) {
                continue;
            }
            if let Some(e) = m.get("error") {
                let text = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
                return Err(QmpError::Command {
                    class: text("class"),
                    desc: text("desc"),
                });
            }
            return match m.get("return") {
                Some(r) => Ok(r.clone()),
                None => Err(QmpError::Protocol(format!("unexpected answer {m}"))),
            };
        }
    }

    async fn read_message(&mut self, deadline: Instant) -> Result<Value, QmpError> {
        loop {
            let mut line = Vec::new();
            let read = tokio::time::timeout_at(
                deadline,
                (&mut self.reader)
                    .take(MAX_LINE as u64)
                    .read_until(b'\n', &mut line),
            )
            .await
            .map_err(|_| QmpError::Timeout("waiting for QEMU".into()))?
            .map_err(|e| QmpError::Io(format!("reading from QEMU: {e}")))?;
            if read == 0 {
                return Err(QmpError::Io("QEMU closed the QMP connection".into()));
            }
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let v: Value = serde_json::from_slice(&line).map_err(|e| {
                QmpError::Protocol(format!(
                    "not QMP ({e}): {}",
                    String::from_utf8_lossy(&line).trim()
                ))
            })?;
            if !v.is_object() {
                return Err(QmpError::Protocol(format!("not a QMP message: {v}")));
            }
            return Ok(v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::UnixListener;

    fn sock_path(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("fs-qmp-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("qmp.sock");
        let _ = std::fs::remove_file(&p);
        p
    }

    /// A QMP server that answers as QEMU does, with an event in the way.
    async fn fake_server(listener: UnixListener, greet: bool) {
        let (stream, _) = listener.accept().await.unwrap();
        let (r, mut w) = stream.into_split();
        let mut r = BufReader::new(r);
        if !greet {
            tokio::time::sleep(Duration::from_secs(10)).await;
            return;
        }
        w.write_all(b"{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 22, \"minor\": 2, \"major\": 7}, \"package\": \"\"}, \"capabilities\": [\"oob\"]}}\r\n")
            .await
            .unwrap();
        let mut line = String::new();
        while r.read_line(&mut line).await.unwrap() > 0 {
            let req: Value = serde_json::from_str(&line).unwrap();
            line.clear();
            let id = req["id"].clone();
            let answer = match req["execute"].as_str().unwrap() {
                "qmp_capabilities" => json!({"return": {}, "id": id}),
                "query-status" => {
                    w.write_all(b"{\"timestamp\": {\"seconds\": 1, \"microseconds\": 2}, \"event\": \"STOP\"}\r\n")
                        .await
                        .unwrap();
                    // An answer to someone else's id is skipped too.
                    w.write_all(b"{\"return\": {}, \"id\": 999}\r\n")
                        .await
                        .unwrap();
                    json!({"return": {"status": "paused", "running": false}, "id": id})
                }
                "echo" => json!({"return": req["arguments"].clone(), "id": id}),
                "hang" => continue,
                other => json!({"error": {"class": "CommandNotFound",
                    "desc": format!("The command {other} has not been found")}, "id": id}),
            };
            let mut text = answer.to_string();
            text.push_str("\r\n");
            w.write_all(text.as_bytes()).await.unwrap();
        }
    }

    #[tokio::test]
    async fn talks_qmp_and_skips_events() {
        let path = sock_path("ok");
        let listener = UnixListener::bind(&path).unwrap();
        let server = tokio::spawn(fake_server(listener, true));
        let mut q = Qmp::connect(&path, Duration::from_secs(2)).await.unwrap();
        assert_eq!(q.greeting()["QMP"]["version"]["qemu"]["major"], 7);
        let status = q.execute("query-status", None).await.unwrap();
        assert_eq!(status["status"], "paused");
        let echoed = q
            .execute("echo", Some(json!({"uri": "exec:cat"})))
            .await
            .unwrap();
        assert_eq!(echoed, json!({"uri": "exec:cat"}));
        let err = q.execute("bogus", None).await.unwrap_err();
        assert_eq!(
            err,
            QmpError::Command {
                class: "CommandNotFound".into(),
                desc: "The command bogus has not been found".into()
            }
        );
        assert_eq!(err.to_string(), "The command bogus has not been found");
        let err = Qmp {
            timeout: Duration::from_millis(200),
            ..q
        }
        .execute("hang", None)
        .await
        .unwrap_err();
        assert!(
            matches!(err, QmpError::Timeout(ref m) if m.contains("hang")),
            "{err:?}"
        );
        server.abort();
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    #[tokio::test]
    async fn silent_servers_and_missing_sockets_fail_in_time() {
        let path = sock_path("silent");
        let listener = UnixListener::bind(&path).unwrap();
        let server = tokio::spawn(fake_server(listener, false));
        let started = std::time::Instant::now();
        let err = Qmp::connect(&path, Duration::from_millis(300))
            .await
            .err()
            .unwrap();
        assert!(matches!(err, QmpError::Timeout(_)), "{err:?}");
        assert!(started.elapsed() < Duration::from_secs(3));
        server.abort();
        let missing = path.with_file_name("none.sock");
        let err = Qmp::connect(&missing, Duration::from_millis(300))
            .await
            .err()
            .unwrap();
        assert!(matches!(err, QmpError::Io(_)), "{err:?}");
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }
}
