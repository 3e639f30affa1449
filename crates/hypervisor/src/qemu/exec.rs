//! Running helper programs (`qemu-img`, `ip`, QEMU itself) without
//! blocking the runtime, bounded in time, with their own error text.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

pub(crate) struct Ran {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    /// What the program said went wrong: its stderr (warnings dropped
    /// when there is more), on one line, else its exit status.
    pub fn reason(&self) -> String {
        let reason = stderr_reason(&self.stderr);
        if reason.is_empty() {
            format!("exited with {}", self.status)
        } else {
            reason
        }
    }
}

/// Run `program args…`, collecting its output; kill it after `timeout`.
pub(crate) async fn run<I, S>(program: &Path, args: I, timeout: Duration) -> Result<Ran, String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let name = program_name(program);
    let child = tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("could not run {}: {e}", program.display()))?;
    match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Err(_) => Err(format!(
            "{name} did not finish within {} s",
            timeout.as_secs_f64()
        )),
        Ok(Err(e)) => Err(format!("waiting for {name}: {e}")),
        Ok(Ok(out)) => Ok(Ran {
            status: out.status,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }),
    }
}

/// Run and require success; the error is the program's own message.
pub(crate) async fn run_ok<I, S>(program: &Path, args: I, timeout: Duration) -> Result<Ran, String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let ran = run(program, args, timeout).await?;
    if ran.status.success() {
        Ok(ran)
    } else {
        Err(ran.reason())
    }
}

pub(crate) fn program_name(program: &Path) -> String {
    program
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| program.display().to_string())
}

/// The lines of a program's stderr worth showing a user: the errors, or
/// the warnings when there is nothing else; joined, at most ~1000 chars.
pub(crate) fn stderr_reason(stderr: &str) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .map(|l| strip_timestamp(l.trim()))
        .filter(|l| !l.is_empty())
        .collect();
    let errors: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| !l.contains("warning:"))
        .collect();
    let chosen = if errors.is_empty() { lines } else { errors };
    let mut text = chosen.join("; ");
    if text.len() > 1000 {
        let mut cut = 1000;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    text
}

/// QEMU's `-msg timestamp=on` prefix (`2024-05-01T10:00:00.123456Z `).
fn strip_timestamp(line: &str) -> &str {
    let b = line.as_bytes();
    let stamped =
        b.len() > 20 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-' && b[10] == b'T';
    match line.find("Z ") {
        Some(i) if stamped && i < 40 => line[i + 2..].trim_start(),
        _ => line,
    }
}

/// `name` as given when it has a slash, else the first match on `PATH`
/// (then the sbin directories, where `ip` lives).
pub(crate) fn find_program(name: &Path) -> Option<PathBuf> {
    if name.components().count() > 1 || name.is_absolute() {
        return is_executable(name).then(|| name.to_path_buf());
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_prefer_errors_over_warnings() {
        let s = "qemu-system-x86_64: warning: host doesn't support requested feature\n\
                 qemu-system-x86_64: -drive file=/x: Could not open '/x': No such file or directory\n";
        assert_eq!(
            stderr_reason(s),
            "qemu-system-x86_64: -drive file=/x: Could not open '/x': No such file or directory"
        );
        assert_eq!(
            stderr_reason("a: warning: w\n"),
            "a: warning: w",
            "warnings alone are still shown"
        );
        assert_eq!(stderr_reason("\n \n"), "");
        assert_eq!(
            stderr_reason(
                "2026-11-27T11:40:41.773181Z qemu-system-x86_64: Invalid SMP CPUs 100000\n"
            ),
            "qemu-system-x86_64: Invalid SMP CPUs 100000"
        );
    }

    #[test]
    fn finds_programs_on_path() {
        assert!(find_program(Path::new("sh")).is_some());
        assert!(find_program(Path::new("/bin/sh")).is_some());
        assert!(find_program(Path::new("no-such-program-ferrostack")).is_none());
    }

    #[tokio::test]
    async fn run_reports_stderr_and_timeouts() {
        let sh = Path::new("/bin/sh");
        let err = run_ok(sh, ["-c", "echo oops >&2; exit 3"], Duration::from_secs(5))
            .await
            .err()
            .unwrap();
        assert_eq!(err, "oops");
        let err = run(sh, ["-c", "sleep 5"], Duration::from_millis(100))
            .await
            .err()
            .unwrap();
        assert!(err.contains("did not finish"), "{err}");
    }
}
