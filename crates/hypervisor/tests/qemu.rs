//! The QEMU driver against a real `qemu-system-x86_64` under TCG. The
//! guest is a boot sector that prints `ferrostack-test-guest` to COM1 and
//! halts (it ignores ACPI, so clean shutdowns time out after 1 s). The
//! volume tests boot the test guest image (tools/guest-image, built when
//! missing) with disks from `qemu-storage-daemon` NBD exports.
//!
//! Skipped (with a line saying so) when QEMU is not installed, unless
//! `FERROSTACK_TEST_REQUIRE_QEMU=1`, which makes that a failure.

use ferrostack_hypervisor::qemu::qmp::Qmp;
use ferrostack_hypervisor::qemu::{Accel, QemuConfig, QemuDriver};
use ferrostack_hypervisor::{
    ConsoleTarget, DiskFormat, Driver, DriverError, GuestDisks, InstanceSpec, PowerState,
    RebootKind, RescueBus, RescueDevice, RescueImage, VifSpec, VolumeAttachment, VolumeConnection,
};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

const LINE: &str = "ferrostack-test-guest";

fn qemu_present(test: &str) -> bool {
    if which("qemu-system-x86_64") && which("qemu-img") {
        return true;
    }
    if std::env::var("FERROSTACK_TEST_REQUIRE_QEMU").as_deref() == Ok("1") {
        panic!("{test}: qemu-system-x86_64 is not installed and FERROSTACK_TEST_REQUIRE_QEMU=1");
    }
    skip(test, "qemu-system-x86_64 is not installed");
    false
}

/// Said on stderr itself, not through the harness's capture, so that a
/// skip shows without `--nocapture`.
fn skip(test: &str, why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIP {test}: {why}");
}

fn which(name: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
        .unwrap_or(false)
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn unique() -> u64 {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst) as u64;
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    // A small mix so that ids of one run differ in their first digits.
    (t ^ (std::process::id() as u64) << 40 ^ n << 20).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

fn new_uuid() -> String {
    let a = unique();
    let b = unique();
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        b >> 52,
        b & 0xffff_ffff_ffff
    )
}

/// A temporary instances directory; on drop every QEMU started in it is
/// killed and the directory removed, whatever the test's outcome.
struct Sandbox {
    dir: PathBuf,
    taps: Vec<String>,
}

impl Sandbox {
    fn new() -> Sandbox {
        let dir = std::env::temp_dir().join(format!(
            "fsq-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Sandbox { dir, taps: vec![] }
    }

    fn instances(&self) -> PathBuf {
        self.dir.join("i")
    }

    /// The test guest's disk: a raw image whose boot sector prints LINE.
    fn boot_disk(&self) -> PathBuf {
        let path = self.dir.join("base.raw");
        std::fs::write(&path, boot_image()).unwrap();
        path
    }

    async fn driver(&self) -> QemuDriver {
        let mut c = QemuConfig::new(self.instances(), "test-host");
        c.accel = Accel::Tcg;
        c.shutdown_timeout = Duration::from_secs(1);
        QemuDriver::new(c).await.expect("QemuDriver::new")
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let marker = self.dir.to_string_lossy().into_owned();
        if let Ok(entries) = std::fs::read_dir(self.instances()) {
            for e in entries.flatten() {
                let Ok(pid) = std::fs::read_to_string(e.path().join("qemu.pid")) else {
                    continue;
                };
                let Ok(pid) = pid.trim().parse::<i32>() else {
                    continue;
                };
                let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                if String::from_utf8_lossy(&cmdline).contains(&marker) {
                    // SAFETY: kill(2) has no memory-safety preconditions.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
            }
        }
        for tap in &self.taps {
            let _ = std::process::Command::new("ip")
                .args(["link", "delete", "dev", tap])
                .stderr(std::process::Stdio::null())
                .status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// 16-bit code at 0x7c00: print the message to COM1, then halt forever.
fn boot_sector() -> Vec<u8> {
    boot_sector_saying(LINE)
}

/// [`boot_sector`] printing `line`.
fn boot_sector_saying(line: &str) -> Vec<u8> {
    let code: [u8; 22] = [
        0xFC, // cld
        0x31, 0xC0, // xor ax,ax
        0x8E, 0xD8, // mov ds,ax
        0xBE, 0x16, 0x7C, // mov si,0x7c16 (the message)
        0xBA, 0xF8, 0x03, // mov dx,0x3f8
        0xAC, // next: lodsb
        0x84, 0xC0, // test al,al
        0x74, 0x03, // jz halt
        0xEE, // out dx,al
        0xEB, 0xF8, // jmp next
        0xF4, // halt: hlt
        0xEB, 0xFD, // jmp halt
    ];
    let mut s = code.to_vec();
    s.extend_from_slice(format!("{line}\r\n\0").as_bytes());
    s.resize(510, 0);
    s.extend_from_slice(&[0x55, 0xAA]);
    s
}

fn boot_image() -> Vec<u8> {
    let mut img = boot_sector();
    img.resize(1 << 20, 0);
    img
}

const ACPI_LINE: &str = "ferrostack-acpi-guest";

/// A guest that honours the ACPI power button: it prints its line, enables
/// the power button event (PIIX4 PM at 0x600), waits for it, then powers
/// off (SLP_TYP S5 | SLP_EN in PM1a_CNT).
fn acpi_image() -> Vec<u8> {
    let code: [u8; 47] = [
        0xFB, // sti
        0xFC, // cld
        0x31, 0xC0, // xor ax,ax
        0x8E, 0xD8, // mov ds,ax
        0xBE, 0x2F, 0x7C, // mov si,0x7c2f (the message)
        0xBA, 0xF8, 0x03, // mov dx,0x3f8
        0xAC, // next: lodsb
        0x84, 0xC0, // test al,al
        0x74, 0x03, // jz done
        0xEE, // out dx,al
        0xEB, 0xF8, // jmp next
        0xBA, 0x02, 0x06, // done: mov dx,0x602 (PM1_EN)
        0xB8, 0x00, 0x01, // mov ax,0x100 (power button)
        0xEF, // out dx,ax
        0xBA, 0x00, 0x06, // mov dx,0x600 (PM1_STS)
        0xF4, // wait: hlt
        0xED, // in ax,dx
        0xA9, 0x00, 0x01, // test ax,0x100
        0x74, 0xF9, // jz wait
        0xBA, 0x04, 0x06, // mov dx,0x604 (PM1_CNT)
        0xB8, 0x00, 0x20, // mov ax,0x2000 (SLP_EN, S5)
        0xEF, // out dx,ax
        0xF4, // halt: hlt
        0xEB, 0xFD, // jmp halt
    ];
    let mut s = code.to_vec();
    s.extend_from_slice(format!("{ACPI_LINE}\r\n\0").as_bytes());
    s.resize(510, 0);
    s.extend_from_slice(&[0x55, 0xAA]);
    s.resize(1 << 20, 0);
    s
}

fn spec(id: &str, memory_mb: u64) -> InstanceSpec {
    InstanceSpec {
        id: id.into(),
        name: "test".into(),
        instance_name: format!("instance-{}", &id[..8]),
        vcpus: 1,
        memory_mb,
        root_gb: 0,
        image_id: "test-image".into(),
        ..Default::default()
    }
}

fn disks(base: &Path) -> GuestDisks {
    GuestDisks {
        base: Some(base.to_path_buf()),
        base_format: DiskFormat::Raw,
        config_drive: None,
    }
}

async fn wait_for_lines(d: &QemuDriver, id: &str, count: usize) -> String {
    wait_for(d, id, LINE, count).await
}

async fn wait_for(d: &QemuDriver, id: &str, line: &str, count: usize) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = d.console_output(id, 1 << 20).await.unwrap();
        if out.matches(line).count() >= count {
            return out;
        }
        assert!(
            Instant::now() < deadline,
            "expected {line} {count} times in the console, got {out:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn cmdline(pid: i32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .unwrap_or_default()
        .split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

fn flag_value(args: &[String], flag: &str) -> Option<String> {
    args.windows(2).find(|w| w[0] == flag).map(|w| w[1].clone())
}

fn process_alive(pid: i32) -> bool {
    // A zombie has no command line.
    !std::fs::read(format!("/proc/{pid}/cmdline"))
        .unwrap_or_default()
        .is_empty()
}

fn qemu_img_info(path: &Path) -> serde_json::Value {
    let out = std::process::Command::new("qemu-img")
        .args(["info", "-U", "--output=json"])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_power_states() {
    if !qemu_present("lifecycle_power_states") {
        return;
    }
    let sb = Sandbox::new();
    let d = sb.driver().await;
    assert_eq!(d.accel(), Accel::Tcg);
    let base = sb.boot_disk();
    let id = new_uuid();
    let s = spec(&id, 64);

    let t = Instant::now();
    d.spawn(&s, &disks(&base)).await.unwrap();
    eprintln!("spawn → running: {} ms", t.elapsed().as_millis());
    assert_eq!(d.get_info(&id).await.unwrap(), PowerState::Running);
    wait_for_lines(&d, &id, 1).await;
    assert_eq!(d.list_instances().await.unwrap(), vec![id.clone()]);

    // A second spawn is a no-op: same process.
    let pid = d.qemu_pid(&id).await.unwrap();
    d.spawn(&s, &disks(&base)).await.unwrap();
    assert_eq!(d.qemu_pid(&id).await, Some(pid));

    d.pause(&id).await.unwrap();
    assert_eq!(d.get_info(&id).await.unwrap(), PowerState::Paused);
    d.pause(&id).await.unwrap();
    d.unpause(&id).await.unwrap();
    assert_eq!(d.get_info(&id).await.unwrap(), PowerState::Running);
    d.unpause(&id).await.unwrap();

    let t = Instant::now();
    d.suspend(&id).await.unwrap();
    eprintln!("suspend: {} ms", t.elapsed().as_millis());
    assert_eq!(d.get_info(&id).await.unwrap(), PowerState::Suspended);
    assert!(d.qemu_pid(&id).await.is_none());
    assert!(!process_alive(pid));
    assert!(d.instance_dir(&id).join("memory.state").exists());
    d.suspend(&id).await.unwrap();
    assert!(matches!(
        d.pause(&id).await,
        Err(DriverError::InvalidState(_))
    ));
    let t = Instant::now();
    d.resume(&id).await.unwrap();
    eprintln!("resume: {} ms", t.elapsed().as_millis());
    assert_eq!(d.get_info(&id).await.unwrap(), PowerState::Running);
    assert!(!d.instance_dir(&id).join("memory.state").exists());
    d.resume(&id).await.unwrap();
    // Restored, not rebooted: the line is still there once.
    assert_eq!(
        d.console_output(&id, 1 << 20)
            .await
            .unwrap()
            .matches(LINE)
            .count(),
        1
    );

    d.reboot(&id, RebootKind::Hard).await.unwrap();
    assert_eq!(d.get_info(&id).await.unwrap(), PowerState::Running);
    wait_for_lines(&d, &id, 2).await;

    // The guest ignores ACPI: a soft reboot falls back to a hard one.
    let t = Instant::now();
    d.reboot(&id, RebootKind::Soft).await.unwrap();
    assert!(t.elapsed() >= Duration::from_secs(1));
    assert_eq!(d.get_info(&id).await.unwrap(), PowerState::Running);
    wait_for_lines(&d, &id, 3).await;

    let t = Instant::now();
    d.power_off(&id).await.unwrap();
    let took = t.elapsed();
    assert!(took >= Duration::from_secs(1), "forced after the timeout");
    assert!(took < Duration::from_secs(15), "{took:?}");
    assert_eq!(d.get_info(&id).await.unwrap(), PowerState::Shutdown);
    assert!(d.instance_dir(&id).exists());
    d.power_off(&id).await.unwrap();
    assert!(matches!(
        d.vnc_console(&id).await,
        Err(DriverError::InvalidState(_))
    ));
    d.power_on(&id).await.unwrap();
    assert_eq!(d.get_info(&id).await.unwrap(), PowerState::Running);
    d.power_on(&id).await.unwrap();
    wait_for_lines(&d, &id, 4).await;

    // The console's tail, cut at a line.
    let tail = d.console_output(&id, 30).await.unwrap();
    assert!(tail.len() <= 30 && !tail.is_empty(), "{tail:?}");

    let pid = d.qemu_pid(&id).await.unwrap();
    d.destroy(&id).await.unwrap();
    assert!(!d.instance_dir(&id).exists());
    assert!(!process_alive(pid));
    assert!(d.list_instances().await.unwrap().is_empty());
    d.destroy(&id).await.unwrap();
    assert!(matches!(
        d.get_info(&id).await,
        Err(DriverError::InstanceNotFound(_))
    ));
    assert!(matches!(
        d.power_on(&id).await,
        Err(DriverError::InstanceNotFound(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_and_resize() {
    if !qemu_present("snapshot_and_resize") {
        return;
    }
    let sb = Sandbox::new();
    let d = sb.driver().await;
    let base = sb.boot_disk();
    let id = new_uuid();
    let s = spec(&id, 64);
    d.spawn(&s, &disks(&base)).await.unwrap();
    wait_for_lines(&d, &id, 1).await;

    // Running: a standalone qcow2 whose first sector is the boot sector.
    let snap = sb.dir.join("snap.qcow2");
    d.snapshot(&id, &snap).await.unwrap();
    assert_eq!(d.get_info(&id).await.unwrap(), PowerState::Running);
    let info = qemu_img_info(&snap);
    assert_eq!(info["format"], "qcow2");
    assert!(info.get("backing-filename").is_none(), "{info}");
    let raw = sb.dir.join("snap.raw");
    let st = std::process::Command::new("qemu-img")
        .args(["convert", "-f", "qcow2", "-O", "raw"])
        .arg(&snap)
        .arg(&raw)
        .status()
        .unwrap();
    assert!(st.success());
    assert_eq!(std::fs::read(&raw).unwrap()[..512], boot_sector()[..]);
    // Paused stays paused.
    d.pause(&id).await.unwrap();
    d.snapshot(&id, &sb.dir.join("snap2.qcow2")).await.unwrap();
    assert_eq!(d.get_info(&id).await.unwrap(), PowerState::Paused);
    d.unpause(&id).await.unwrap();

    // Resize to more memory and a 1 GB disk.
    let pid = d.qemu_pid(&id).await.unwrap();
    assert_eq!(flag_value(&cmdline(pid), "-m").as_deref(), Some("64"));
    let mut bigger = s.clone();
    bigger.memory_mb = 96;
    bigger.vcpus = 2;
    bigger.root_gb = 1;
    let t = Instant::now();
    d.resize(&bigger).await.unwrap();
    eprintln!("resize: {} ms", t.elapsed().as_millis());
    assert_eq!(d.get_info(&id).await.unwrap(), PowerState::Running);
    let pid = d.qemu_pid(&id).await.unwrap();
    assert_eq!(flag_value(&cmdline(pid), "-m").as_deref(), Some("96"));
    assert_eq!(flag_value(&cmdline(pid), "-smp").as_deref(), Some("2"));
    let dir = d.instance_dir(&id);
    assert_eq!(qemu_img_info(&dir.join("disk"))["virtual-size"], 1u64 << 30);
    assert!(dir.join("disk.resize-backup").exists());
    assert!(dir.join("spec.json.resize-backup").exists());
    // Repeated: the backup is the one from before the first call.
    d.resize(&bigger).await.unwrap();
    assert_eq!(
        qemu_img_info(&dir.join("disk.resize-backup"))["virtual-size"],
        1u64 << 20
    );
    d.revert_resize(&s).await.unwrap();
    assert_eq!(d.get_info(&id).await.unwrap(), PowerState::Running);
    let pid = d.qemu_pid(&id).await.unwrap();
    assert_eq!(flag_value(&cmdline(pid), "-m").as_deref(), Some("64"));
    assert_eq!(qemu_img_info(&dir.join("disk"))["virtual-size"], 1u64 << 20);
    assert!(!dir.join("disk.resize-backup").exists());
    assert!(!dir.join("spec.json.resize-backup").exists());
    d.revert_resize(&s).await.unwrap();

    // Resize while off stays off; confirm drops the backup.
    d.power_off(&id).await.unwrap();
    d.resize(&bigger).await.unwrap();
    assert_eq!(d.get_info(&id).await.unwrap(), PowerState::Shutdown);
    d.confirm_resize(&id).await.unwrap();
    d.confirm_resize(&id).await.unwrap();
    assert!(!dir.join("disk.resize-backup").exists());
    // Off: snapshot straight from the disk.
    d.snapshot(&id, &sb.dir.join("snap3.qcow2")).await.unwrap();
    assert_eq!(
        qemu_img_info(&sb.dir.join("snap3.qcow2"))["virtual-size"],
        1u64 << 30
    );
    // Never shrink.
    let mut smaller = bigger.clone();
    smaller.root_gb = 2;
    d.resize(&smaller).await.unwrap();
    d.confirm_resize(&id).await.unwrap();
    smaller.root_gb = 1;
    let e = d.resize(&smaller).await.unwrap_err();
    assert!(
        matches!(e, DriverError::InvalidRequest(ref m) if m.contains("resize disk down")),
        "{e:?}"
    );
    d.destroy(&id).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guests_outlive_the_driver() {
    if !qemu_present("guests_outlive_the_driver") {
        return;
    }
    let sb = Sandbox::new();
    let base = sb.boot_disk();
    let id = new_uuid();
    let config_drive = sb.dir.join("cd.iso");
    std::fs::write(&config_drive, vec![0u8; 64 << 10]).unwrap();
    {
        let d = sb.driver().await;
        let mut g = disks(&base);
        g.config_drive = Some(config_drive.clone());
        d.spawn(&spec(&id, 64), &g).await.unwrap();
        assert!(!config_drive.exists(), "moved into the guest's directory");
        assert!(d.instance_dir(&id).join("disk.config").exists());
        let pid = d.qemu_pid(&id).await.unwrap();
        assert!(cmdline(pid).iter().any(|a| a.contains("disk.config")));
    }
    // An agent restart: a new driver over the same directory.
    let d = sb.driver().await;
    assert_eq!(d.list_instances().await.unwrap(), vec![id.clone()]);
    wait_for_lines(&d, &id, 1).await;
    assert_eq!(d.get_info(&id).await.unwrap(), PowerState::Running);
    d.pause(&id).await.unwrap();
    assert_eq!(d.get_info(&id).await.unwrap(), PowerState::Paused);
    d.unpause(&id).await.unwrap();

    // QEMU killed behind the driver's back.
    let pid = d.qemu_pid(&id).await.unwrap();
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let deadline = Instant::now() + Duration::from_secs(5);
    while d.get_info(&id).await.unwrap() != PowerState::Shutdown {
        assert!(Instant::now() < deadline, "still running after kill -9");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    d.power_on(&id).await.unwrap();
    assert_eq!(d.get_info(&id).await.unwrap(), PowerState::Running);
    assert_ne!(d.qemu_pid(&id).await, Some(pid));
    wait_for_lines(&d, &id, 2).await;

    // Real host figures.
    let h = d.host_resources().await.unwrap();
    assert_eq!(h.hypervisor_type, "QEMU");
    assert_eq!(h.hypervisor_hostname, "test-host");
    assert!(
        h.hypervisor_version >= 7_000_000,
        "{}",
        h.hypervisor_version
    );
    assert!(h.vcpus >= 1 && h.memory_mb > 0 && h.local_gb > 0);
    let cpu: serde_json::Value = serde_json::from_str(&h.cpu_info).unwrap();
    assert!(cpu["topology"]["sockets"].as_i64().unwrap() >= 1);

    d.destroy(&id).await.unwrap();
    assert!(!sb.instances().join(&id).exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_spawns_leave_nothing() {
    if !qemu_present("failed_spawns_leave_nothing") {
        return;
    }
    let sb = Sandbox::new();
    let d = sb.driver().await;
    let base = sb.boot_disk();

    let id = new_uuid();
    let e = d
        .spawn(&spec(&id, 64), &disks(&sb.dir.join("missing.raw")))
        .await
        .unwrap_err();
    assert!(matches!(e, DriverError::InvalidImage(_)), "{e:?}");
    assert!(!d.instance_dir(&id).exists());

    // A flavor disk smaller than the image.
    let big = sb.dir.join("big.qcow2");
    let st = std::process::Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2"])
        .arg(&big)
        .arg("2G")
        .status()
        .unwrap();
    assert!(st.success());
    let mut s = spec(&id, 64);
    s.root_gb = 1;
    let g = GuestDisks {
        base: Some(big),
        base_format: DiskFormat::Qcow2,
        config_drive: None,
    };
    let e = d.spawn(&s, &g).await.unwrap_err();
    assert_eq!(
        e,
        DriverError::InvalidRequest(
            "Flavor's disk is too small for requested image. Flavor disk is 1073741824 bytes, \
             image is 2147483648 bytes."
                .into()
        )
    );
    assert!(!d.instance_dir(&id).exists());

    // A QEMU that refuses to start: its own message, nothing left, the
    // config drive given back.
    let cd = sb.dir.join("cd.iso");
    std::fs::write(&cd, b"config").unwrap();
    let mut s = spec(&id, 64);
    s.vcpus = 100_000;
    let mut g = disks(&base);
    g.config_drive = Some(cd.clone());
    let e = d.spawn(&s, &g).await.unwrap_err();
    eprintln!("QEMU start failure: {e}");
    assert!(
        e.message().starts_with(&format!(
            "QEMU could not start instance-{}: qemu-system-x86_64:",
            &id[..8]
        )),
        "{e:?}"
    );
    assert!(!d.instance_dir(&id).exists());
    assert!(cd.exists());
    assert!(d.list_instances().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vnc_console_is_a_unix_socket() {
    if !qemu_present("vnc_console_is_a_unix_socket") {
        return;
    }
    let sb = Sandbox::new();
    let d = sb.driver().await;
    let id = new_uuid();
    d.spawn(&spec(&id, 32), &disks(&sb.boot_disk()))
        .await
        .unwrap();
    let ConsoleTarget::Unix { path } = d.vnc_console(&id).await.unwrap() else {
        panic!("VNC on TCP");
    };
    assert_eq!(path, d.instance_dir(&id).join("vnc.sock"));
    use tokio::io::AsyncReadExt;
    let mut s = tokio::net::UnixStream::connect(&path).await.unwrap();
    let mut greeting = [0u8; 12];
    tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut greeting))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&greeting, b"RFB 003.008\n");
    d.destroy(&id).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vif_taps_live_with_the_guest() {
    if !qemu_present("vif_taps_live_with_the_guest") {
        return;
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 || !Path::new("/dev/net/tun").exists() {
        skip(
            "vif_taps_live_with_the_guest",
            "needs root and /dev/net/tun",
        );
        return;
    }
    let mut sb = Sandbox::new();
    let d = sb.driver().await;
    let id = new_uuid();
    let port = format!("{:016x}", unique());
    let mac = format!("fa:16:3e:{}:{}:{}", &port[0..2], &port[2..4], &port[4..6]);
    let vif = VifSpec {
        port_id: port.clone(),
        network_id: "net".into(),
        mac_address: mac.clone(),
        mtu: Some(1450),
    };
    let tap = vif.tap_name();
    sb.taps.push(tap.clone());
    let mut s = spec(&id, 32);
    s.vifs.push(vif);
    d.spawn(&s, &disks(&sb.boot_disk())).await.unwrap();
    let sys = PathBuf::from("/sys/class/net").join(&tap);
    assert!(sys.exists(), "{tap} exists while the guest runs");
    assert_eq!(
        std::fs::read_to_string(sys.join("address")).unwrap().trim(),
        format!("fe{}", &mac[2..])
    );
    assert_eq!(
        std::fs::read_to_string(sys.join("mtu")).unwrap().trim(),
        "1450"
    );
    let pid = d.qemu_pid(&id).await.unwrap();
    let args = cmdline(pid);
    assert!(args.iter().any(|a| a
        == &format!("virtio-net-pci,netdev=hostnet-{tap},id=net-{tap},mac={mac},host_mtu=1450")));
    // The tap stays across a restart of QEMU.
    d.reboot(&id, RebootKind::Hard).await.unwrap();
    assert!(sys.exists());

    // A second interface, hot-plugged into the running guest.
    let port2 = format!("{:016x}", unique());
    let vif2 = VifSpec {
        port_id: port2.clone(),
        network_id: "net".into(),
        mac_address: format!(
            "fa:16:3e:{}:{}:{}",
            &port2[0..2],
            &port2[2..4],
            &port2[4..6]
        ),
        mtu: None,
    };
    let tap2 = vif2.tap_name();
    sb.taps.push(tap2.clone());
    d.attach_interface(&id, &vif2).await.unwrap();
    d.attach_interface(&id, &vif2).await.unwrap(); // again: a no-op
    assert!(PathBuf::from("/sys/class/net").join(&tap2).exists());
    let qmp_path = d.instance_dir(&id).join("qmp.sock");
    let mut q = ferrostack_hypervisor::qemu::qmp::Qmp::connect(&qmp_path, Duration::from_secs(5))
        .await
        .unwrap();
    let nic = q
        .execute(
            "qom-list",
            Some(serde_json::json!({"path": format!("/machine/peripheral/net-{tap2}")})),
        )
        .await;
    assert!(nic.is_ok(), "hot-plugged NIC: {nic:?}");
    drop(q);
    // Detached while off (this guest has no ACPI to let a NIC go): the
    // next launch has only the first NIC, and the tap is gone.
    d.power_off(&id).await.unwrap();
    d.detach_interface(&id, &port2).await.unwrap();
    d.detach_interface(&id, &port2).await.unwrap(); // again: fine
    assert!(!PathBuf::from("/sys/class/net").join(&tap2).exists());
    d.power_on(&id).await.unwrap();
    let args = cmdline(d.qemu_pid(&id).await.unwrap());
    assert!(!args.iter().any(|a| a.contains(&tap2)), "{args:?}");
    assert!(args.iter().any(|a| a.contains(&tap)));

    d.destroy(&id).await.unwrap();
    assert!(!sys.exists(), "{tap} is gone after destroy");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kvm_probe_runs_once_per_boot() {
    if !qemu_present("the_kvm_probe_runs_once_per_boot") {
        return;
    }
    let sb = Sandbox::new();
    let mut c = QemuConfig::new(sb.instances(), "h");
    c.accel = Accel::Auto;
    let t = Instant::now();
    let d = QemuDriver::new(c.clone()).await.unwrap();
    eprintln!(
        "accelerator: {} ({}) after {} ms",
        d.accel(),
        d.accel_reason(),
        t.elapsed().as_millis()
    );
    assert_ne!(d.accel(), Accel::Auto);
    if Path::new("/dev/kvm").exists() {
        assert!(sb.instances().join(".accel-probe").exists());
        let t = Instant::now();
        let again = QemuDriver::new(c).await.unwrap();
        assert_eq!(again.accel(), d.accel());
        assert!(
            again.accel_reason().contains("cached"),
            "{}",
            again.accel_reason()
        );
        assert!(t.elapsed() < Duration::from_secs(2));
    }
    // Whatever the probe said, a guest runs with it.
    let id = new_uuid();
    d.spawn(&spec(&id, 32), &disks(&sb.boot_disk()))
        .await
        .unwrap();
    wait_for_lines(&d, &id, 1).await;
    d.destroy(&id).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acpi_guests_shut_down_cleanly() {
    if !qemu_present("acpi_guests_shut_down_cleanly") {
        return;
    }
    let sb = Sandbox::new();
    let mut c = QemuConfig::new(sb.instances(), "h");
    c.accel = Accel::Tcg;
    c.shutdown_timeout = Duration::from_secs(20);
    let d = QemuDriver::new(c).await.unwrap();
    let base = sb.dir.join("acpi.raw");
    std::fs::write(&base, acpi_image()).unwrap();
    let id = new_uuid();
    d.spawn(&spec(&id, 32), &disks(&base)).await.unwrap();
    wait_for(&d, &id, ACPI_LINE, 1).await;

    // Soft reboot: ACPI power-off, then reset in the same QEMU.
    let pid = d.qemu_pid(&id).await.unwrap();
    let t = Instant::now();
    d.reboot(&id, RebootKind::Soft).await.unwrap();
    eprintln!("clean soft reboot: {} ms", t.elapsed().as_millis());
    assert!(t.elapsed() < Duration::from_secs(10));
    assert_eq!(d.qemu_pid(&id).await, Some(pid), "same process");
    assert_eq!(d.get_info(&id).await.unwrap(), PowerState::Running);
    wait_for(&d, &id, ACPI_LINE, 2).await;

    // The guest powers itself off: QEMU stays, in status shutdown.
    let sock = d.instance_dir(&id).join("qmp.sock");
    let mut q = ferrostack_hypervisor::qemu::qmp::Qmp::connect(&sock, Duration::from_secs(5))
        .await
        .unwrap();
    q.execute("system_powerdown", None).await.unwrap();
    drop(q);
    let deadline = Instant::now() + Duration::from_secs(10);
    while d.get_info(&id).await.unwrap() != PowerState::Shutdown {
        assert!(Instant::now() < deadline, "the guest did not power off");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(d.qemu_pid(&id).await, Some(pid), "-no-shutdown keeps QEMU");
    d.power_on(&id).await.unwrap();
    assert_eq!(d.get_info(&id).await.unwrap(), PowerState::Running);
    assert_ne!(d.qemu_pid(&id).await, Some(pid));
    wait_for(&d, &id, ACPI_LINE, 3).await;

    // A clean power-off does not wait for the timeout.
    let t = Instant::now();
    d.power_off(&id).await.unwrap();
    eprintln!("clean power off: {} ms", t.elapsed().as_millis());
    assert!(t.elapsed() < Duration::from_secs(10));
    assert_eq!(d.get_info(&id).await.unwrap(), PowerState::Shutdown);
    assert!(d.qemu_pid(&id).await.is_none());
    d.destroy(&id).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ide_disk_bus_boots_with_a_config_drive() {
    if !qemu_present("ide_disk_bus_boots_with_a_config_drive") {
        return;
    }
    let sb = Sandbox::new();
    let d = sb.driver().await;
    let id = new_uuid();
    let mut s = spec(&id, 32);
    s.image_properties
        .insert("hw_disk_bus".into(), "ide".into());
    let cd = sb.dir.join("cd.iso");
    std::fs::write(&cd, vec![0u8; 64 << 10]).unwrap();
    let mut g = disks(&sb.boot_disk());
    g.config_drive = Some(cd);
    d.spawn(&s, &g).await.unwrap();
    wait_for_lines(&d, &id, 1).await;
    let args = cmdline(d.qemu_pid(&id).await.unwrap());
    assert!(args
        .iter()
        .any(|a| a.starts_with("ide-hd,drive=drive-ide0-0-0")));
    d.destroy(&id).await.unwrap();
}

const RESCUE_LINE: &str = "ferrostack-rescue-disk";

/// Rescue: the guest boots the rescue disk (a qcow2 overlay on the rescue
/// image, listed before its own disk, the only one booted), stays rescued
/// across a hard reboot, a power cycle and a new driver (an agent
/// restart), then unrescue boots its own disk again and removes the
/// rescue disk. Both are idempotent; a rescue that fails leaves the guest
/// running from its own disk; destroying a rescued guest removes all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rescue_boots_the_rescue_disk_with_its_own_second() {
    if !qemu_present("rescue_boots_the_rescue_disk_with_its_own_second") {
        return;
    }
    let sb = Sandbox::new();
    let id = new_uuid();
    let rescue_image = sb.dir.join("rescue.raw");
    let mut img = boot_sector_saying(RESCUE_LINE);
    img.resize(1 << 20, 0);
    std::fs::write(&rescue_image, img).unwrap();
    let rescue = RescueImage {
        path: rescue_image.clone(),
        format: DiskFormat::Raw,
        device: None,
        bus: None,
    };
    let rescue_disk = sb.instances().join(&id).join("disk.rescue");
    {
        let d = sb.driver().await;
        d.spawn(&spec(&id, 32), &disks(&sb.boot_disk()))
            .await
            .unwrap();
        wait_for_lines(&d, &id, 1).await;

        d.rescue(&id, &rescue).await.unwrap();
        wait_for(&d, &id, RESCUE_LINE, 1).await;
        assert_eq!(d.get_info(&id).await.unwrap(), PowerState::Running);
        let pid = d.qemu_pid(&id).await.unwrap();
        let args = cmdline(pid);
        let drives: Vec<&String> = args
            .windows(2)
            .filter(|w| w[0] == "-drive")
            .map(|w| &w[1])
            .collect();
        assert!(drives[0].contains("disk.rescue"), "{drives:?}");
        assert!(drives[1].contains(&format!("{id}/disk,")), "{drives:?}");
        let info = qemu_img_info(&rescue_disk);
        assert_eq!(info["format"], "qcow2");
        assert_eq!(
            info["backing-filename"],
            rescue_image
                .canonicalize()
                .unwrap()
                .to_string_lossy()
                .as_ref()
        );
        let in_use = d.base_images_in_use().await.unwrap().unwrap();
        assert!(in_use.contains(&rescue_image.canonicalize().unwrap()));

        // Again: nothing to do.
        d.rescue(&id, &rescue).await.unwrap();
        assert_eq!(d.qemu_pid(&id).await, Some(pid));
        // Still rescued after a hard reboot.
        d.reboot(&id, RebootKind::Hard).await.unwrap();
        wait_for(&d, &id, RESCUE_LINE, 2).await;
    }
    // An agent restart: the new driver knows the guest is rescued.
    let d = sb.driver().await;
    assert_eq!(d.get_info(&id).await.unwrap(), PowerState::Running);
    d.power_off(&id).await.unwrap();
    d.power_on(&id).await.unwrap();
    let out = wait_for(&d, &id, RESCUE_LINE, 3).await;
    assert_eq!(out.matches(LINE).count(), 1, "{out}");

    d.unrescue(&id).await.unwrap();
    wait_for_lines(&d, &id, 2).await;
    assert!(!rescue_disk.exists());
    let pid = d.qemu_pid(&id).await.unwrap();
    assert!(!cmdline(pid).iter().any(|a| a.contains("disk.rescue")));
    d.unrescue(&id).await.unwrap();
    assert_eq!(d.qemu_pid(&id).await, Some(pid));

    // A rescue image that is not there: back on its own disk, running.
    let missing = RescueImage {
        path: sb.dir.join("nope.raw"),
        format: DiskFormat::Raw,
        device: None,
        bus: None,
    };
    let e = d.rescue(&id, &missing).await.unwrap_err();
    assert!(matches!(e, DriverError::InvalidImage(_)), "{e:?}");
    assert_eq!(d.get_info(&id).await.unwrap(), PowerState::Running);
    assert!(!rescue_disk.exists());
    wait_for_lines(&d, &id, 3).await;

    // Destroying a rescued guest leaves nothing.
    d.rescue(&id, &rescue).await.unwrap();
    wait_for(&d, &id, RESCUE_LINE, 4).await;
    d.destroy(&id).await.unwrap();
    assert!(!sb.instances().join(&id).exists());
}

/// The guest's block devices as QMP `query-block` lists them: drive id →
/// (its device's qdev id, removable).
async fn blocks(d: &QemuDriver, id: &str) -> Vec<(String, String, bool)> {
    let mut q = Qmp::connect(&d.instance_dir(id).join("qmp.sock"), Duration::from_secs(5))
        .await
        .unwrap();
    let list = q.execute("query-block", None).await.unwrap();
    list.as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["device"].as_str().unwrap_or_default().to_owned(),
                b["qdev"].as_str().unwrap_or_default().to_owned(),
                b["removable"].as_bool().unwrap_or(false),
            )
        })
        .collect()
}

/// Stable device rescue: the guest's own disk stays the first disk, the
/// rescue disk is added last on the image's device and bus — a virtio,
/// virtio-scsi, USB (xHCI), SATA (AHCI) and IDE disk, each booted by the
/// firmware from there (the rescue boot sector's line), an IDE cdrom —
/// and unrescue boots the own disk again. A combination the driver does
/// not place (a virtio cdrom) is refused with the guest left running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stable_rescue_places_the_rescue_disk_on_the_image_bus() {
    if !qemu_present("stable_rescue_places_the_rescue_disk_on_the_image_bus") {
        return;
    }
    let sb = Sandbox::new();
    let id = new_uuid();
    let rescue_image = sb.dir.join("rescue.raw");
    let mut img = boot_sector_saying(RESCUE_LINE);
    img.resize(1 << 20, 0);
    std::fs::write(&rescue_image, img).unwrap();
    let rescue = |device, bus| RescueImage {
        path: rescue_image.clone(),
        format: DiskFormat::Raw,
        device: Some(device),
        bus: Some(bus),
    };
    let d = sb.driver().await;
    d.spawn(&spec(&id, 32), &disks(&sb.boot_disk()))
        .await
        .unwrap();
    let mut own = 1;
    wait_for_lines(&d, &id, own).await;
    let cases = [
        (RescueBus::Virtio, "virtio-blk-pci,drive=drive-rescue"),
        (RescueBus::Scsi, "scsi-hd,bus=rescue-scsi.0"),
        (RescueBus::Usb, "usb-storage,bus=rescue-usb.0"),
        (RescueBus::Sata, "ide-hd,bus=rescue-sata.0"),
        (RescueBus::Ide, "ide-hd,drive=drive-rescue"),
    ];
    for (n, (bus, device_arg)) in cases.into_iter().enumerate() {
        d.rescue(&id, &rescue(RescueDevice::Disk, bus))
            .await
            .unwrap();
        wait_for(&d, &id, RESCUE_LINE, n + 1).await;
        let args = cmdline(d.qemu_pid(&id).await.unwrap());
        let drives: Vec<&String> = args
            .windows(2)
            .filter(|w| w[0] == "-drive")
            .map(|w| &w[1])
            .collect();
        assert!(
            drives[0].contains(&format!("{id}/disk,")),
            "{bus:?}: {drives:?}"
        );
        assert!(drives.last().unwrap().contains("disk.rescue"), "{drives:?}");
        let devices: Vec<&String> = args
            .windows(2)
            .filter(|w| w[0] == "-device")
            .map(|w| &w[1])
            .collect();
        assert!(
            devices
                .iter()
                .any(|x| x.starts_with(device_arg) && x.ends_with("bootindex=0")),
            "{bus:?}: {devices:?}"
        );
        assert!(
            devices.iter().filter(|x| x.contains("bootindex")).count() == 1,
            "only the rescue disk boots: {devices:?}"
        );
        let b = blocks(&d, &id).await;
        assert!(
            b.iter().any(|(dev, qdev, cd)| dev == "drive-rescue"
                && qdev.contains("rescue-disk")
                && !cd),
            "{bus:?}: {b:?}"
        );
        d.unrescue(&id).await.unwrap();
        own += 1;
        wait_for_lines(&d, &id, own).await;
    }

    // A cdrom on IDE: there, removable, read-only.
    d.rescue(&id, &rescue(RescueDevice::Cdrom, RescueBus::Ide))
        .await
        .unwrap();
    let b = blocks(&d, &id).await;
    assert!(
        b.iter()
            .any(|(dev, qdev, cd)| dev == "drive-rescue" && qdev.contains("rescue-disk") && *cd),
        "{b:?}"
    );
    let args = cmdline(d.qemu_pid(&id).await.unwrap());
    assert!(
        args.iter()
            .any(|a| a.starts_with("ide-cd,drive=drive-rescue")),
        "{args:?}"
    );
    d.unrescue(&id).await.unwrap();
    own += 1;
    wait_for_lines(&d, &id, own).await;

    let e = d
        .rescue(&id, &rescue(RescueDevice::Cdrom, RescueBus::Virtio))
        .await
        .unwrap_err();
    assert!(matches!(e, DriverError::NotSupported(_)), "{e:?}");
    assert_eq!(d.get_info(&id).await.unwrap(), PowerState::Running);
    d.destroy(&id).await.unwrap();
}

/// `inject_nmi` (trigger_crash_dump): the running guest's kernel gets the
/// NMI and says so on its console; a guest that is off or not there is
/// refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inject_nmi_reaches_the_guest_kernel() {
    let test = "inject_nmi_reaches_the_guest_kernel";
    if !qemu_present(test) {
        return;
    }
    let Some(image) = guest_image(test) else {
        return;
    };
    let sb = Sandbox::new();
    let d = sb.driver().await;
    let id = new_uuid();
    let g = GuestDisks {
        base: Some(image),
        base_format: DiskFormat::Qcow2,
        config_drive: None,
    };
    d.spawn(&guest_spec(&id), &g).await.unwrap();
    console_has(&d, &id, READY, 1, BOOT_SECS).await;
    d.inject_nmi(&id).await.unwrap();
    // Linux: "Uhhuh. NMI received for unknown reason ..." (KERN_EMERG, so
    // on the console even with `quiet`).
    console_has(&d, &id, "NMI received", 1, 30).await;
    assert_eq!(d.get_info(&id).await.unwrap(), PowerState::Running);

    let e = d.inject_nmi(&new_uuid()).await.unwrap_err();
    assert!(matches!(e, DriverError::InstanceNotFound(_)), "{e:?}");
    d.power_off(&id).await.unwrap();
    let e = d.inject_nmi(&id).await.unwrap_err();
    assert!(matches!(e, DriverError::InvalidState(_)), "{e:?}");
    d.destroy(&id).await.unwrap();
}

// ---- Volumes: NBD exports of a qemu-storage-daemon, in the test guest ----

/// The test guest image (tools/guest-image): `FERROSTACK_GUEST_IMAGE` when
/// set, else built (when missing or older than its sources) into
/// `target/guest-image/guest.qcow2`, as scripts/test.sh does.
fn guest_image(test: &str) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("FERROSTACK_GUEST_IMAGE").map(PathBuf::from) {
        if p.is_file() {
            return Some(p);
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let tools = root.join("tools/guest-image");
    let out = root.join("target/guest-image/guest.qcow2");
    static BUILD: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    if out.is_file() && newest_mtime(&tools) <= mtime(&out) {
        return Some(out);
    }
    let built = std::process::Command::new("bash")
        .arg(tools.join("build.sh"))
        .arg(&out)
        .stdout(std::process::Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if built {
        return Some(out);
    }
    if std::env::var("FERROSTACK_TEST_REQUIRE_QEMU").as_deref() == Ok("1") {
        panic!("{test}: the test guest image could not be built");
    }
    skip(test, "the test guest image could not be built");
    None
}

fn mtime(p: &Path) -> std::time::SystemTime {
    std::fs::metadata(p)
        .and_then(|m| m.modified())
        .unwrap_or(std::time::UNIX_EPOCH)
}

fn newest_mtime(dir: &Path) -> std::time::SystemTime {
    let mut newest = mtime(dir);
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let t = if e.path().is_dir() {
            newest_mtime(&e.path())
        } else {
            mtime(&e.path())
        };
        newest = newest.max(t);
    }
    newest
}

/// A `qemu-storage-daemon` exporting one qcow2 file over NBD on a unix
/// socket, as the volume service does, with a QMP monitor; killed on drop.
struct Export {
    child: std::process::Child,
    socket: PathBuf,
    port: Option<u16>,
    qmp: PathBuf,
    name: String,
}

impl Export {
    /// Export `file` (qcow2; its backing file, if any, is opened too).
    fn start(dir: &Path, tag: &str, file: &Path) -> Export {
        Export::start_at(dir, tag, file, None)
    }

    /// The same, on TCP `127.0.0.1:port` when `port` is given.
    fn start_at(dir: &Path, tag: &str, file: &Path, port: Option<u16>) -> Export {
        let socket = dir.join(format!("{tag}.nbd"));
        let addr = match port {
            Some(port) => format!("addr.type=inet,addr.host=127.0.0.1,addr.port={port}"),
            None => format!("addr.type=unix,addr.path={}", socket.display()),
        };
        let qmp = dir.join(format!("{tag}.qmp"));
        let name = format!("secret-{:x}", unique());
        let child = std::process::Command::new("qemu-storage-daemon")
            .arg("--blockdev")
            .arg(format!(
                "driver=file,node-name=f,filename={}",
                file.display()
            ))
            .args(["--blockdev", "driver=qcow2,node-name=v,file=f"])
            .arg("--nbd-server")
            .arg(addr)
            .arg("--export")
            .arg(format!("type=nbd,id=e,node-name=v,name={name},writable=on"))
            .arg("--chardev")
            .arg(format!(
                "socket,id=m,path={},server=on,wait=off",
                qmp.display()
            ))
            .args(["--monitor", "chardev=m"])
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("qemu-storage-daemon");
        let listening = || match port {
            Some(port) => std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(),
            None => socket.exists(),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !(listening() && qmp.exists()) {
            assert!(
                Instant::now() < deadline,
                "the storage daemon did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Export {
            child,
            socket,
            port,
            qmp,
            name,
        }
    }

    fn connection(&self) -> VolumeConnection {
        let data = match self.port {
            Some(port) => serde_json::json!({"export": self.name, "host": "127.0.0.1",
                                             "port": port, "access_mode": "rw"}),
            None => serde_json::json!({"export": self.name, "socket": self.socket,
                                       "access_mode": "rw"}),
        };
        serde_json::from_value(serde_json::json!({"driver_volume_type": "nbd", "data": data}))
            .unwrap()
    }

    async fn qmp(
        &self,
        command: &str,
        args: serde_json::Value,
    ) -> Result<serde_json::Value, String> {
        let mut q = Qmp::connect(&self.qmp, Duration::from_secs(5))
            .await
            .map_err(|e| e.to_string())?;
        q.execute(command, Some(args))
            .await
            .map_err(|e| e.to_string())
    }

    /// Grow the volume's data, as the volume service must: an NBD export
    /// does not share 'resize' on its node, so the export goes (its
    /// clients are cut off and reconnect), the node grows, and the export
    /// comes back under the same name.
    async fn grow(&self, bytes: u64) {
        self.qmp(
            "block-export-del",
            serde_json::json!({"id": "e", "mode": "hard"}),
        )
        .await
        .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while self
            .qmp("query-block-exports", serde_json::json!({}))
            .await
            .unwrap()
            .as_array()
            .is_some_and(|a| !a.is_empty())
        {
            assert!(Instant::now() < deadline, "the export did not go");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.qmp(
            "block_resize",
            serde_json::json!({"node-name": "v", "size": bytes}),
        )
        .await
        .unwrap();
        self.qmp(
            "block-export-add",
            serde_json::json!({"type": "nbd", "id": "e", "node-name": "v",
                               "name": self.name, "writable": true}),
        )
        .await
        .unwrap();
    }

    /// Whether the export can be removed, which it cannot while an NBD
    /// client is connected: true once every client went away.
    async fn removable(&self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if self
                .qmp("block-export-del", serde_json::json!({"id": "e"}))
                .await
                .is_ok()
            {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Drop for Export {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn qcow2(path: &Path, size: &str, backing: Option<&Path>) {
    let mut c = std::process::Command::new("qemu-img");
    c.args(["create", "-q", "-f", "qcow2"]);
    if let Some(b) = backing {
        c.arg("-b").arg(b).args(["-F", "qcow2"]);
    }
    assert!(c.arg(path).arg(size).status().unwrap().success());
}

fn volume(volume_id: &str, export: &Export, boot_index: Option<i32>) -> VolumeAttachment {
    VolumeAttachment {
        volume_id: volume_id.into(),
        connection: export.connection(),
        device_name: if boot_index.is_some() {
            "/dev/vda"
        } else {
            "/dev/vdb"
        }
        .into(),
        boot_index,
    }
}

/// Wait for `line` to be in the console `count` times, at most `secs`.
async fn console_has(d: &QemuDriver, id: &str, line: &str, count: usize, secs: u64) -> String {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let out = d.console_output(id, 1 << 20).await.unwrap();
        if out.matches(line).count() >= count {
            return out;
        }
        assert!(
            Instant::now() < deadline,
            "expected {line:?} {count} times in the console within {secs} s, got {out}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The guest's block node names.
async fn guest_nodes(d: &QemuDriver, id: &str) -> Vec<String> {
    let mut q = Qmp::connect(&d.instance_dir(id).join("qmp.sock"), Duration::from_secs(5))
        .await
        .unwrap();
    let nodes = q
        .execute(
            "query-named-block-nodes",
            Some(serde_json::json!({"flat": true})),
        )
        .await
        .unwrap();
    nodes
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n["node-name"].as_str().map(str::to_owned))
        .collect()
}

/// A config drive whose user data waits for a disk `vdb`, makes an ext2
/// filesystem on it (busybox mke2fs), writes a file there and says so on
/// the console: what a user does with a new volume.
fn volume_writer_config_drive(dir: &Path, id: &str) -> Option<PathBuf> {
    let root = dir.join("cd");
    let latest = root.join("openstack/latest");
    std::fs::create_dir_all(&latest).unwrap();
    std::fs::write(
        latest.join("meta_data.json"),
        serde_json::json!({"uuid": id, "hostname": "volumes", "name": "volumes"}).to_string(),
    )
    .unwrap();
    std::fs::write(
        latest.join("user_data"),
        "#!/bin/sh\n(\n  while [ ! -b /dev/vdb ]; do sleep 0.2; done\n  \
         mkfs.ext2 -q /dev/vdb && mkdir -p /mnt/v && mount /dev/vdb /mnt/v &&\n  \
         echo ferrostack-volume-data > /mnt/v/hello && umount /mnt/v && sync &&\n  \
         echo 'ferrostack-test: volume written' > /dev/console\n) \
         </dev/null >/dev/null 2>&1 &\n",
    )
    .unwrap();
    let iso = dir.join("cd.iso");
    let made = std::process::Command::new("genisoimage")
        .args(["-quiet", "-V", "config-2", "-J", "-r", "-o"])
        .arg(&iso)
        .arg(&root)
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    made.then_some(iso)
}

fn guest_spec(id: &str) -> InstanceSpec {
    let mut s = spec(id, 256);
    s.name = "volumes".into();
    s
}

const READY: &str = "ferrostack-guest: ready";
/// How long the test guest has to boot under TCG on a loaded host.
const BOOT_SECS: u64 = 180;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn volumes_attach_extend_detach() {
    let test = "volumes_attach_extend_detach";
    if !qemu_present(test) || !which("qemu-storage-daemon") {
        return;
    }
    let Some(image) = guest_image(test) else {
        return;
    };
    let sb = Sandbox::new();
    let d = sb.driver().await;
    let data = sb.dir.join("vol.qcow2");
    qcow2(&data, "1G", None);
    let export = Export::start(&sb.dir, "v", &data);
    let id = new_uuid();
    let vid = new_uuid();
    let serial = &vid[..20];
    let v = volume(&vid, &export, None);
    let Some(cd) = volume_writer_config_drive(&sb.dir, &id) else {
        skip(test, "genisoimage could not make a config drive");
        return;
    };
    let g = GuestDisks {
        base: Some(image),
        base_format: DiskFormat::Qcow2,
        config_drive: Some(cd),
    };
    d.spawn(&guest_spec(&id), &g).await.unwrap();
    console_has(&d, &id, READY, 1, BOOT_SECS).await;
    console_has(&d, &id, "user-data script exited 0", 1, 5).await;

    // An export that is not there: refused, and nothing left behind.
    let mut wrong = v.clone();
    let VolumeConnection::Nbd(e) = &mut wrong.connection;
    e.export = "no-such-export".into();
    let err = d.attach_volume(&id, &wrong).await.unwrap_err();
    assert!(
        matches!(err, DriverError::Failed(ref m) if m.contains(&vid)),
        "{err:?}"
    );
    let key: String = vid.chars().filter(|c| *c != '-').take(24).collect();
    let ours = |nodes: Vec<String>| -> Vec<String> {
        nodes.into_iter().filter(|n| n.ends_with(&key)).collect()
    };
    assert!(ours(guest_nodes(&d, &id).await).is_empty());

    // Attach: the guest sees a 1 GiB disk with the volume's serial.
    let t = Instant::now();
    d.attach_volume(&id, &v).await.unwrap();
    let call = t.elapsed();
    let added = format!("ferrostack-guest: disk add vdb size=2097152 serial={serial}");
    console_has(&d, &id, &added, 1, 60).await;
    eprintln!(
        "attach: {} ms (guest saw it after {} ms)",
        call.as_millis(),
        t.elapsed().as_millis()
    );
    d.attach_volume(&id, &v).await.unwrap(); // again: a no-op
                                             // The guest makes a filesystem on it and writes a file.
    console_has(&d, &id, "ferrostack-test: volume written", 1, 60).await;
    assert_eq!(ours(guest_nodes(&d, &id).await).len(), 2);

    // Extend: the data grows in the daemon, then the guest sees it.
    export.grow(2 << 30).await;
    let t = Instant::now();
    d.extend_volume(&id, &vid, &v.connection, 2 << 30)
        .await
        .unwrap();
    let call = t.elapsed();
    let changed = format!("ferrostack-guest: disk change vdb size=4194304 serial={serial}");
    console_has(&d, &id, &changed, 1, 60).await;
    eprintln!(
        "extend: {} ms (guest saw it after {} ms)",
        call.as_millis(),
        t.elapsed().as_millis()
    );
    assert_eq!(
        ours(guest_nodes(&d, &id).await).len(),
        2,
        "the old connection went"
    );

    // Detach: the guest lets it go, QEMU keeps no node of it.
    let t = Instant::now();
    d.detach_volume(&id, &vid).await.unwrap();
    eprintln!("detach: {} ms", t.elapsed().as_millis());
    console_has(&d, &id, "ferrostack-guest: disk remove vdb", 1, 30).await;
    assert!(ours(guest_nodes(&d, &id).await).is_empty());
    d.detach_volume(&id, &vid).await.unwrap(); // again: a no-op

    // Attached again, it stays across a power off and on (on the command line).
    d.attach_volume(&id, &v).await.unwrap();
    let bigger = format!("ferrostack-guest: disk add vdb size=4194304 serial={serial}");
    console_has(&d, &id, &bigger, 1, 60).await;
    d.power_off(&id).await.unwrap();
    // Off: extend and attach only touch the record.
    d.extend_volume(&id, &vid, &v.connection, 2 << 30)
        .await
        .unwrap();
    d.power_on(&id).await.unwrap();
    let args = cmdline(d.qemu_pid(&id).await.unwrap());
    assert!(
        args.iter().any(
            |a| a == &format!("virtio-blk-pci,drive=vol-{key},id=volume-{vid},serial={serial}")
        ),
        "{args:?}"
    );
    assert!(args.iter().any(|a| a.contains(&export.name)));
    assert_eq!(ours(guest_nodes(&d, &id).await).len(), 2);

    // Destroyed: QEMU and its NBD connection are gone.
    d.destroy(&id).await.unwrap();
    assert!(export.removable().await, "an NBD client is still connected");
    // What the guest wrote is in the volume's data (qcow2 keeps clusters
    // as they are written).
    drop(export);
    assert_eq!(qemu_img_info(&data)["virtual-size"], 2u64 << 30);
    let bytes = std::fs::read(&data).unwrap();
    let needle = b"ferrostack-volume-data";
    assert!(
        bytes.windows(needle.len()).any(|w| w == needle),
        "the file the guest wrote is not in the volume"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boot_from_volume() {
    let test = "boot_from_volume";
    if !qemu_present(test) || !which("qemu-storage-daemon") {
        return;
    }
    let Some(image) = guest_image(test) else {
        return;
    };
    let sb = Sandbox::new();
    let d = sb.driver().await;
    // The root volume: a copy-on-write volume over the image, as Cinder
    // makes a volume from an image.
    let root = sb.dir.join("root.qcow2");
    qcow2(&root, "1G", Some(&image));
    let root_export = Export::start(&sb.dir, "r", &root);
    let data = sb.dir.join("data.qcow2");
    qcow2(&data, "64M", None);
    // The data volume over TCP, as from another storage host.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let data_export = Export::start_at(&sb.dir, "d", &data, Some(port));
    let id = new_uuid();
    let (root_id, data_id) = (new_uuid(), new_uuid());
    let mut s = guest_spec(&id);
    s.image_id = String::new();
    s.volumes = vec![
        volume(&root_id, &root_export, Some(0)),
        volume(&data_id, &data_export, None),
    ];
    let g = GuestDisks {
        base: None,
        base_format: DiskFormat::Raw,
        config_drive: None,
    };
    d.spawn(&s, &g).await.unwrap();
    console_has(&d, &id, READY, 1, BOOT_SECS).await;
    let dir = d.instance_dir(&id);
    assert!(!dir.join("disk").exists(), "no image disk");
    let args = cmdline(d.qemu_pid(&id).await.unwrap());
    let root_key: String = root_id.chars().filter(|c| *c != '-').take(24).collect();
    assert!(
        args.iter().any(|a| a
            == &format!(
                "virtio-blk-pci,drive=vol-{root_key},id=volume-{root_id},serial={},bootindex=0",
                &root_id[..20]
            )),
        "{args:?}"
    );
    assert!(!args.iter().any(|a| a.contains("drive-virtio-disk0")));
    assert!(args.iter().any(|a| a.contains(&data_export.name)));
    let e = d
        .snapshot(&id, &sb.dir.join("snap.qcow2"))
        .await
        .unwrap_err();
    assert!(
        matches!(e, DriverError::NotSupported(ref m) if m.contains("boots from a volume")),
        "{e:?}"
    );
    // A resize changes the flavor only: there is no image disk to grow.
    let mut bigger = s.clone();
    bigger.memory_mb = 320;
    bigger.volumes.clear();
    d.resize(&bigger).await.unwrap();
    let args = cmdline(d.qemu_pid(&id).await.unwrap());
    assert_eq!(flag_value(&args, "-m").as_deref(), Some("320"));
    assert!(
        args.iter().any(|a| a.contains(&root_export.name)),
        "the volumes stay"
    );
    assert!(args.iter().any(|a| a.contains(&data_export.name)));
    d.confirm_resize(&id).await.unwrap();
    assert!(!dir.join("disk").exists());
    d.destroy(&id).await.unwrap();
    assert!(!dir.exists());
    assert!(
        root_export.removable().await,
        "the root volume is still connected"
    );
    assert!(
        data_export.removable().await,
        "the data volume is still connected"
    );
}

// ---- Live migration between two "hosts": two drivers on 127.0.0.1 ----

/// A config drive whose user data writes a file on the root disk and a
/// marker at the start of the volume `vdb`, then every second prints the
/// boot id, the uptime and both, read back from the disks (the page cache
/// dropped first): the same guest, still running, on its copied disks.
fn ticking_config_drive(dir: &Path, id: &str) -> Option<PathBuf> {
    let root = dir.join(format!("cd-{id}"));
    let latest = root.join("openstack/latest");
    std::fs::create_dir_all(&latest).unwrap();
    std::fs::write(
        latest.join("meta_data.json"),
        serde_json::json!({"uuid": id, "hostname": "mover", "name": "mover"}).to_string(),
    )
    .unwrap();
    std::fs::write(
        latest.join("user_data"),
        "#!/bin/sh\n(\n  echo root-marker > /live-marker && sync\n  \
         while [ ! -b /dev/vdb ]; do sleep 0.2; done\n  \
         echo vol-marker | dd of=/dev/vdb conv=fsync 2>/dev/null\n  \
         b=$(cat /proc/sys/kernel/random/boot_id)\n  \
         while true; do\n    echo 3 > /proc/sys/vm/drop_caches\n    \
         echo \"live-tick $b $(cut -d' ' -f1 /proc/uptime) $(cat /live-marker) \
         $(head -c 10 /dev/vdb)\" > /dev/console\n    sleep 1\n  done\n\
         ) </dev/null >/dev/null 2>&1 &\n",
    )
    .unwrap();
    let iso = dir.join(format!("cd-{id}.iso"));
    let made = std::process::Command::new("genisoimage")
        .args(["-quiet", "-V", "config-2", "-J", "-r", "-o"])
        .arg(&iso)
        .arg(&root)
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    made.then_some(iso)
}

/// The last `live-tick` line: (boot id, uptime, the rest).
async fn last_tick(d: &QemuDriver, id: &str) -> Option<(String, f64, String)> {
    let out = d.console_output(id, 1 << 16).await.ok()?;
    let line = out.lines().rev().find(|l| l.starts_with("live-tick "))?;
    let mut w = line.split_whitespace().skip(1);
    let boot = w.next()?.to_owned();
    let up: f64 = w.next()?.parse().ok()?;
    Some((boot, up, w.collect::<Vec<_>>().join(" ")))
}

/// A tick printed after `after` seconds of uptime.
async fn tick_after(d: &QemuDriver, id: &str, after: f64, secs: u64) -> (String, f64, String) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(t) = last_tick(d, id).await.filter(|t| t.1 > after) {
            return t;
        }
        assert!(
            Instant::now() < deadline,
            "no tick after {after} s within {secs} s: {:?}",
            d.console_output(id, 4096).await
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A running guest with a root disk on an image and a volume moves to
/// another host: the same boot, its uptime going on, its files there;
/// the source's QEMU gone. Before that, a migration that cannot reach
/// its destination fails and leaves it running where it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_migration_keeps_the_guest_running() {
    let test = "live_migration_keeps_the_guest_running";
    if !qemu_present(test) || !which("qemu-storage-daemon") {
        return;
    }
    let Some(image) = guest_image(test) else {
        return;
    };
    let (sa, sb) = (Sandbox::new(), Sandbox::new());
    let (a, b) = (sa.driver().await, sb.driver().await);
    let data = sa.dir.join("vol.qcow2");
    qcow2(&data, "64M", None);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let export = Export::start_at(&sa.dir, "v", &data, Some(port));
    let id = new_uuid();
    let mut s = guest_spec(&id);
    s.volumes = vec![volume(&new_uuid(), &export, None)];
    let Some(cd) = ticking_config_drive(&sa.dir, &id) else {
        skip(test, "genisoimage could not make a config drive");
        return;
    };
    let disks_with = |cd: Option<PathBuf>| GuestDisks {
        base: Some(image.clone()),
        base_format: DiskFormat::Qcow2,
        config_drive: cd,
    };
    a.spawn(&s, &disks_with(Some(cd))).await.unwrap();
    console_has(&a, &id, READY, 1, BOOT_SECS).await;
    let (boot, up, files) = tick_after(&a, &id, 0.0, 60).await;
    assert_eq!(files, "root-marker vol-marker", "the guest wrote its files");
    let source_pid = a.qemu_pid(&id).await.unwrap();

    // A destination that went away: the copy fails, the guest runs on.
    let cd_b = ticking_config_drive(&sb.dir, &id);
    let target = b
        .prepare_live_migration(&s, &disks_with(cd_b), true, "127.0.0.1")
        .await
        .unwrap();
    assert_eq!(target.disks.len(), 1, "{target:?}");
    assert!(target.disks[0].top_only);
    let again = b
        .prepare_live_migration(&s, &disks_with(None), true, "127.0.0.1")
        .await
        .unwrap();
    assert_eq!(again, target, "asked again, the same target");
    b.rollback_live_migration_at_destination(&id).await.unwrap();
    assert!(!b.instance_dir(&id).exists());
    let e = a.live_migrate(&id, &target).await.unwrap_err();
    assert!(matches!(e, DriverError::Failed(_)), "{e:?}");
    a.rollback_live_migration(&id, false).await.unwrap();
    assert_eq!(a.get_info(&id).await.unwrap(), PowerState::Running);
    let (boot2, up2, _) = tick_after(&a, &id, up, 30).await;
    assert_eq!(boot2, boot);

    // The real move, watched while it runs.
    let cd_b = ticking_config_drive(&sb.dir, &id);
    let target = b
        .prepare_live_migration(&s, &disks_with(cd_b), true, "127.0.0.1")
        .await
        .unwrap();
    let started = Instant::now();
    let a = std::sync::Arc::new(a);
    let watcher = {
        let (a, id) = (a.clone(), id.clone());
        tokio::spawn(async move {
            let mut seen = ferrostack_hypervisor::LiveMigrationProgress::default();
            for _ in 0..600 {
                if let Ok(p) = a.live_migration_progress(&id).await {
                    let done = p.phase == ferrostack_hypervisor::LiveMigrationPhase::Completed;
                    if p.memory_total > 0 || p.disk_total > 0 {
                        seen = p;
                    }
                    if done {
                        break;
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            seen
        })
    };
    a.live_migrate(&id, &target).await.unwrap();
    let took = started.elapsed();
    assert_eq!(a.live_migrate(&id, &target).await, Ok(()), "asked again");
    b.finish_live_migration(&id, false).await.unwrap();
    b.finish_live_migration(&id, false).await.unwrap();
    let e = b
        .rollback_live_migration_at_destination(&id)
        .await
        .unwrap_err();
    assert!(matches!(e, DriverError::InvalidState(_)), "{e:?}");
    a.destroy(&id).await.unwrap();
    assert!(!process_alive(source_pid), "the source's QEMU is gone");
    assert_eq!(b.get_info(&id).await.unwrap(), PowerState::Running);
    let (boot3, up3, files) = tick_after(&b, &id, up2, 60).await;
    assert_eq!(boot3, boot, "the same boot on the destination");
    assert!(up3 > up2);
    assert_eq!(files, "root-marker vol-marker", "files read back there");
    assert!(!b.instance_dir(&id).join("live-incoming.json").exists());
    let seen = watcher.await.unwrap();
    assert!(seen.memory_total > 0, "progress seen: {seen:?}");
    eprintln!("live migration took {took:?}; last progress {seen:?}");
    b.destroy(&id).await.unwrap();
    assert!(export.removable().await, "the volume is still connected");
}
