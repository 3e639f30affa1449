//! Cinder's QoS spec keys as the limits QEMU's throttle groups enforce.
//! An export's daemon applies the specs whose consumer is `back-end` or
//! `both`; the hypervisor is handed the `front-end` and `both` ones in
//! the connection info, as Cinder does.

use ferrostack_core::{Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Cinder's key → QEMU's `throttle-group` property.
const FIXED: &[(&str, &str)] = &[
    ("total_iops_sec", "x-iops-total"),
    ("read_iops_sec", "x-iops-read"),
    ("write_iops_sec", "x-iops-write"),
    ("total_bytes_sec", "x-bps-total"),
    ("read_bytes_sec", "x-bps-read"),
    ("write_bytes_sec", "x-bps-write"),
    ("total_iops_sec_max", "x-iops-total-max"),
    ("read_iops_sec_max", "x-iops-read-max"),
    ("write_iops_sec_max", "x-iops-write-max"),
    ("total_bytes_sec_max", "x-bps-total-max"),
    ("read_bytes_sec_max", "x-bps-read-max"),
    ("write_bytes_sec_max", "x-bps-write-max"),
    ("size_iops_sec", "x-iops-size"),
];

/// Cinder's per-GiB keys (scaled by the volume's size, never below their
/// `_min`) → the fixed key they stand for.
const PER_GB: &[(&str, &str)] = &[
    ("total_iops_sec_per_gb", "total_iops_sec"),
    ("read_iops_sec_per_gb", "read_iops_sec"),
    ("write_iops_sec_per_gb", "write_iops_sec"),
    ("total_bytes_sec_per_gb", "total_bytes_sec"),
    ("read_bytes_sec_per_gb", "read_bytes_sec"),
    ("write_bytes_sec_per_gb", "write_bytes_sec"),
];

/// The limits of one export: QEMU property → value (empty: unthrottled).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IoLimits(pub BTreeMap<String, u64>);

impl IoLimits {
    /// The limits `specs` set for a volume of `size_gb` GiB. A fixed key
    /// wins over its per-GiB form; keys QEMU has no throttle for are not
    /// limits (Cinder lets specs carry any key).
    pub fn from_specs(specs: &Map<String, Value>, size_gb: i64) -> IoLimits {
        let number = |k: &str| {
            specs
                .get(k)
                .and_then(Value::as_str)?
                .trim()
                .parse::<u64>()
                .ok()
        };
        let mut limits = BTreeMap::new();
        for (per_gb, fixed) in PER_GB {
            if let Some(rate) = number(per_gb) {
                let floor = number(&format!("{per_gb}_min")).unwrap_or(0);
                let scaled = rate.saturating_mul(size_gb.max(1) as u64).max(floor);
                let prop = FIXED.iter().find(|(k, _)| k == fixed).map(|(_, p)| *p);
                if let Some(prop) = prop {
                    limits.insert(prop.to_owned(), scaled);
                }
            }
        }
        for (key, prop) in FIXED {
            if let Some(v) = number(key) {
                limits.insert((*prop).to_owned(), v);
            }
        }
        limits.retain(|_, v| *v > 0);
        IoLimits(limits)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `--object throttle-group,…` of these limits, with group `id`.
    pub fn throttle_group(&self, id: &str) -> String {
        let mut s = format!("throttle-group,id={id}");
        for (prop, v) in &self.0 {
            s.push_str(&format!(",{prop}={v}"));
        }
        s
    }
}

/// Every key a throttle reads must hold a whole number: a spec QEMU cannot
/// apply is refused when it is set, not when a volume is attached.
pub fn check_limit_values(specs: &Map<String, Value>) -> Result<()> {
    let limit_keys = FIXED.iter().map(|(k, _)| (*k).to_owned()).chain(
        PER_GB
            .iter()
            .flat_map(|(k, _)| [(*k).to_owned(), format!("{k}_min")]),
    );
    for key in limit_keys {
        if let Some(v) = specs.get(&key) {
            let ok = v.as_str().is_some_and(|s| s.trim().parse::<u64>().is_ok());
            if !ok {
                return Err(Error::BadRequest(format!(
                    "Invalid input received: QoS spec {key} must be a non-negative integer (got {v})."
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn specs(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn fixed_keys_map_to_throttle_properties() {
        let l = IoLimits::from_specs(
            &specs(json!({"read_bytes_sec": "1048576", "total_iops_sec": "100", "other": "x"})),
            10,
        );
        assert_eq!(
            l.throttle_group("tg0"),
            "throttle-group,id=tg0,x-bps-read=1048576,x-iops-total=100"
        );
    }

    #[test]
    fn per_gb_keys_scale_with_size_and_keep_their_floor() {
        let s = specs(json!({"read_iops_sec_per_gb": "10", "read_iops_sec_per_gb_min": "50"}));
        assert_eq!(IoLimits::from_specs(&s, 2).0["x-iops-read"], 50);
        assert_eq!(IoLimits::from_specs(&s, 20).0["x-iops-read"], 200);
        let both = specs(json!({"read_iops_sec_per_gb": "10", "read_iops_sec": "7"}));
        assert_eq!(IoLimits::from_specs(&both, 20).0["x-iops-read"], 7);
    }

    #[test]
    fn zero_or_absent_means_unthrottled() {
        assert!(IoLimits::from_specs(&specs(json!({"read_bytes_sec": "0"})), 1).is_empty());
        assert!(IoLimits::from_specs(&Map::new(), 1).is_empty());
    }

    #[test]
    fn non_numeric_limits_are_refused() {
        assert!(check_limit_values(&specs(json!({"read_bytes_sec": "fast"}))).is_err());
        assert!(check_limit_values(&specs(json!({"read_bytes_sec": "-1"}))).is_err());
        assert!(
            check_limit_values(&specs(json!({"read_bytes_sec": "5", "vendor:x": "y"}))).is_ok()
        );
    }
}
