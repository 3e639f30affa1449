//! Where a new volume goes. A volume service has one backend, so Cinder's
//! scheduler reduces to its filters on it: the capacity filter (the
//! volumes' sizes within `[volume] capacity_gb`, thin provisioning with an
//! over-subscription ratio of 1, as the pool reports) and the capabilities
//! filter (each extra spec of the type that names a capability the pool
//! reports — `volume_backend_name`, `vendor_name`, `storage_protocol`, … —
//! must match it). A volume no backend takes goes to `error`, as Cinder's
//! scheduler leaves it, with a user message saying so.

use crate::service::VolumeService;
use crate::store::{self, volumes::Volume};
use ferrostack_core::{Error, Result};
use serde_json::{json, Map, Value};

/// The `vendor_name` a backend reports.
pub const VENDOR: &str = "Ferrostack";

/// What the backend's pool reports: `get_pools`, `capabilities/{host}`
/// and the capabilities filter all read these.
pub fn capabilities(svc: &VolumeService) -> Map<String, Value> {
    let backend = svc.backend.name();
    let caps = json!({
        "pool_name": backend,
        "volume_backend_name": backend,
        "vendor_name": VENDOR,
        "driver_version": env!("CARGO_PKG_VERSION"),
        "storage_protocol": svc.exporter.protocol(),
        "reserved_percentage": 0,
        "thin_provisioning_support": true,
        "thick_provisioning_support": false,
        "max_over_subscription_ratio": "1.0",
        "QoS_support": false,
        "multiattach": false,
    });
    caps.as_object().cloned().unwrap_or_default()
}

/// Whether a capability has the value an extra spec asks for: Cinder's
/// `<is> True`, `<in> x`, `<or> a <or> b`, numeric `>=`/`<=`/`==`, or
/// the plain value (case aside).
fn spec_matches(want: &str, have: &Value) -> bool {
    let have_s = match have {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let want = want.trim();
    if let Some(b) = want.strip_prefix("<is>") {
        return have_s.eq_ignore_ascii_case(b.trim());
    }
    if let Some(x) = want.strip_prefix("<in>") {
        return have_s.contains(x.trim());
    }
    if want.starts_with("<or>") {
        return want
            .split("<or>")
            .map(str::trim)
            .any(|w| !w.is_empty() && w.eq_ignore_ascii_case(&have_s));
    }
    for op in [">=", "<=", "=="] {
        if let Some(n) = want.strip_prefix(op) {
            let (Ok(w), Ok(h)) = (n.trim().parse::<f64>(), have_s.parse::<f64>()) else {
                return false;
            };
            return match op {
                ">=" => h >= w,
                "<=" => h <= w,
                _ => h == w,
            };
        }
    }
    want.eq_ignore_ascii_case(&have_s)
}

/// The first extra spec of `specs` on a capability the pool reports whose
/// value the pool does not have (scoped keys other than `capabilities:`
/// are for other filters and drivers).
fn unmet_spec(specs: &Map<String, Value>, caps: &Map<String, Value>) -> Option<String> {
    specs.iter().find_map(|(key, want)| {
        let name = key.strip_prefix("capabilities:").unwrap_or(key);
        let have = caps.get(name)?;
        let want = want.as_str()?;
        (!spec_matches(want, have)).then(|| format!("{name}={want}"))
    })
}

/// Refuse volume `v` when the backend cannot take it.
pub async fn place(svc: &VolumeService, v: &Volume) -> Result<()> {
    let backend = svc.backend.name();
    if let Some(t) = store::types::get(&svc.db, &v.volume_type_id).await? {
        if let Some(unmet) = unmet_spec(&t.extra_specs, &capabilities(svc)) {
            return Err(no_valid_backend(format!(
                "No backend has {unmet} (volume type {})",
                t.name
            )));
        }
    }
    let total = svc.config.volume.capacity_gb;
    if total < 0 {
        return Ok(());
    }
    let allocated: i64 = store::volumes::list(&svc.db, None)
        .await?
        .iter()
        .filter(|o| o.id != v.id && o.status != "error")
        .map(|o| o.size)
        .sum();
    if allocated + v.size > total {
        return Err(no_valid_backend(format!(
            "Insufficient free space for volume creation on host {}@{backend}#{backend} (requested / avail): {}/{}",
            svc.config.common.host,
            v.size,
            (total - allocated).max(0)
        )));
    }
    Ok(())
}

fn no_valid_backend(why: String) -> Error {
    Error::BadRequest(format!("No valid backend was found. {why}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_specs_match_capabilities_as_cinder_filters_them() {
        let caps = json!({"vendor_name": "Ferrostack", "storage_protocol": "nbd",
                          "thin_provisioning_support": true, "total_capacity_gb": 100})
        .as_object()
        .cloned()
        .unwrap();
        let specs = |v: Value| v.as_object().cloned().unwrap();
        assert_eq!(
            unmet_spec(&specs(json!({"vendor_name": "ferrostack"})), &caps),
            None
        );
        assert_eq!(
            unmet_spec(
                &specs(json!({"thin_provisioning_support": "<is> True"})),
                &caps
            ),
            None
        );
        assert_eq!(
            unmet_spec(
                &specs(json!({"capabilities:storage_protocol": "<or> iSCSI <or> nbd"})),
                &caps
            ),
            None
        );
        assert_eq!(
            unmet_spec(&specs(json!({"total_capacity_gb": ">= 50"})), &caps),
            None
        );
        // Keys the pool does not report are other filters' business.
        assert_eq!(
            unmet_spec(&specs(json!({"hw:cpu_policy": "x", "unknown": "y"})), &caps),
            None
        );
        assert_eq!(
            unmet_spec(&specs(json!({"storage_protocol": "bogus"})), &caps),
            Some("storage_protocol=bogus".into())
        );
        assert!(unmet_spec(&specs(json!({"total_capacity_gb": ">= 500"})), &caps).is_some());
    }
}
