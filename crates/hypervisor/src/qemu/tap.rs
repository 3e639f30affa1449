//! A guest's host-side network devices: one persistent tap per VIF,
//! named as Neutron's L2 agents look for it (`tap<port id[:11]>`), so it
//! stays plugged in its bridge across QEMU restarts.

use super::exec;
use crate::{DriverError, Result, VifSpec};
use std::path::Path;
use std::time::Duration;

const IP_TIMEOUT: Duration = Duration::from_secs(30);

/// The tap's own MAC: the port's with the first octet `fe`, as libvirt
/// does, so the bridge never takes the guest's address for its own.
pub(crate) fn host_mac(mac: &str) -> Result<String> {
    let octets: Vec<&str> = mac.split(':').collect();
    let valid = octets.len() == 6
        && octets
            .iter()
            .all(|o| o.len() == 2 && o.chars().all(|c| c.is_ascii_hexdigit()));
    if !valid {
        return Err(DriverError::InvalidRequest(format!(
            "Invalid MAC address '{mac}'."
        )));
    }
    Ok(std::iter::once("fe")
        .chain(octets[1..].iter().copied())
        .collect::<Vec<_>>()
        .join(":")
        .to_ascii_lowercase())
}

/// Whether the device exists in this process's network namespace. Not
/// `/sys/class/net`: sysfs shows the namespace it was mounted in, which
/// under `unshare -n` is not ours.
pub(crate) async fn exists(name: &str) -> bool {
    let Ok(c) = std::ffi::CString::new(name) else {
        return false;
    };
    // SAFETY: a valid NUL-terminated string; the call only reads it.
    unsafe { libc::if_nametoindex(c.as_ptr()) != 0 }
}

/// Create the VIF's tap unless it exists, then give it its MAC and MTU
/// and bring it up.
pub(crate) async fn ensure(ip: Option<&Path>, vif: &VifSpec) -> Result<()> {
    let name = vif.tap_name();
    let mac = host_mac(&vif.mac_address)?;
    let ip = ip.ok_or_else(|| {
        DriverError::HypervisorUnavailable(format!(
            "Cannot create {name}: ip not found: install the Debian package iproute2"
        ))
    })?;
    let fail = |what: &str, e: String| {
        DriverError::Failed(format!(
            "Could not {what} tap device {name} for port {}: {e}",
            vif.port_id
        ))
    };
    if !exists(&name).await {
        if let Err(e) = exec::run_ok(
            ip,
            ["tuntap", "add", "dev", &name, "mode", "tap"],
            IP_TIMEOUT,
        )
        .await
        {
            // Someone else made it in the meantime: fine.
            if !exists(&name).await {
                return Err(fail("create", e));
            }
        }
    }
    let mut args = vec!["link", "set", "dev", &name, "address", &mac];
    let mtu = vif.mtu.map(|m| m.to_string());
    if let Some(m) = &mtu {
        args.extend(["mtu", m.as_str()]);
    }
    args.push("up");
    exec::run_ok(ip, &args, IP_TIMEOUT)
        .await
        .map_err(|e| fail("configure", e))?;
    Ok(())
}

/// The bridge a device is plugged into, when it is (`ip -j link show`).
pub(crate) async fn master(ip: Option<&Path>, name: &str) -> Option<String> {
    let ran = exec::run_ok(ip?, ["-j", "link", "show", "dev", name], IP_TIMEOUT)
        .await
        .ok()?;
    let links: serde_json::Value = serde_json::from_str(&ran.stdout).ok()?;
    links[0]["master"].as_str().map(str::to_owned)
}

/// Delete a tap; a missing one is fine.
pub(crate) async fn delete(ip: Option<&Path>, name: &str) -> Result<()> {
    if !exists(name).await {
        return Ok(());
    }
    let Some(ip) = ip else {
        return Err(DriverError::Failed(format!(
            "Cannot delete {name}: ip not found"
        )));
    };
    match exec::run_ok(ip, ["link", "delete", "dev", name], IP_TIMEOUT).await {
        Ok(_) => Ok(()),
        Err(_) if !exists(name).await => Ok(()),
        Err(e) => Err(DriverError::Failed(format!(
            "Could not delete tap device {name}: {e}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_macs_start_with_fe() {
        assert_eq!(host_mac("fa:16:3e:0A:0b:0c").unwrap(), "fe:16:3e:0a:0b:0c");
        for bad in [
            "",
            "fa:16:3e:0a:0b",
            "fa:16:3e:0a:0b:zz",
            "fa-16-3e-0a-0b-0c",
        ] {
            assert!(host_mac(bad).is_err(), "{bad}");
        }
    }
}

#[cfg(test)]
mod exists_tests {
    #[tokio::test]
    async fn loopback_exists_in_our_namespace() {
        assert!(super::exists("lo").await);
        assert!(!super::exists("tapnosuchdev0").await);
        assert!(!super::exists("bad\0name").await);
    }
}
