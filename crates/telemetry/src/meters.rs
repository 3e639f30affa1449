//! Notifications → samples, with Ceilometer's meter names, types and units
//! (ceilometer/data/meters.d/meters.yaml and the notification plugins):
//! what a notification means for billing, independent of the store.

use crate::store::samples::Sample;
use ferrostack_bus::Notification;
use serde_json::{json, Map, Value};

pub use crate::store::samples::MeterType;

/// A sample and what the metric store needs to file it: the Gnocchi
/// resource type and the resource's attributes.
#[derive(Clone, Debug)]
pub struct Reading {
    pub sample: Sample,
    pub resource_type: &'static str,
    pub attributes: Map<String, Value>,
}

/// Sample ids are stable per (notification, meter): the same notification
/// seen twice gives the same ids.
pub const SAMPLE_NAMESPACE: uuid::Uuid =
    uuid::Uuid::from_u128(0x6d1f_29a1_4c1e_4b8e_9f5e_2a3c_7e0d_1b42);

/// The publisher's `source` of samples made from notifications.
pub const SOURCE: &str = "openstack";

struct Builder<'a> {
    n: &'a Notification,
    ts: i64,
    resource_id: String,
    project_id: Option<String>,
    user_id: Option<String>,
    resource_type: &'static str,
    attributes: Map<String, Value>,
    metadata: Value,
    out: Vec<Reading>,
}

impl Builder<'_> {
    fn add(&mut self, name: &str, kind: MeterType, unit: &str, volume: Option<f64>) {
        let Some(volume) = volume else { return };
        let id = uuid::Uuid::new_v5(
            &SAMPLE_NAMESPACE,
            format!("{}/{name}", self.n.message_id).as_bytes(),
        );
        self.out.push(Reading {
            sample: Sample {
                id: id.to_string(),
                meter: name.to_owned(),
                kind,
                unit: unit.to_owned(),
                volume,
                user_id: self.user_id.clone(),
                project_id: self.project_id.clone(),
                resource_id: self.resource_id.clone(),
                ts: self.ts,
                recorded_at: 0,
                source: SOURCE.into(),
                metadata: self.metadata.clone(),
            },
            resource_type: self.resource_type,
            attributes: self.attributes.clone(),
        });
    }
}

fn text(v: &Value, keys: &[&str]) -> Option<String> {
    keys.iter()
        .find_map(|k| v.get(*k).and_then(|x| x.as_str()).filter(|s| !s.is_empty()))
        .map(str::to_owned)
}

fn num(v: &Value, key: &str) -> Option<f64> {
    match v.get(key)? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn attrs(pairs: &[(&str, Option<String>)]) -> Map<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                v.clone().map(Value::String).unwrap_or(Value::Null),
            )
        })
        .collect()
}

/// The samples a notification gives (none for events metering ignores).
pub fn from_notification(n: &Notification) -> Vec<Reading> {
    let ts = crate::store::parse_time(&n.timestamp).unwrap_or_else(crate::store::now_us);
    let e = n.event_type.as_str();
    let p = &n.payload;
    if e == "telemetry.polling" {
        return polled(n, ts);
    }
    let family = e.split('.').next().unwrap_or_default();
    let (doc, rid, project, rtype): (&Value, _, _, &'static str) = match family {
        "image" => (
            p,
            text(p, &["id", "image_id"]),
            text(p, &["owner", "owner_id"]),
            "image",
        ),
        "compute" => (
            p,
            text(p, &["instance_id", "uuid"]),
            text(p, &["tenant_id", "project_id"]),
            "instance",
        ),
        "volume" => (
            p,
            text(p, &["volume_id"]),
            text(p, &["tenant_id"]),
            "volume",
        ),
        "snapshot" => (
            p,
            text(p, &["snapshot_id"]),
            text(p, &["tenant_id"]),
            "volume",
        ),
        "floatingip" | "network" | "port" | "router" | "subnet" => {
            let doc = p.get(family).unwrap_or(p);
            (
                doc,
                text(doc, &["id"]),
                text(doc, &["project_id", "tenant_id"]),
                "network",
            )
        }
        _ => return Vec::new(),
    };
    let Some(resource_id) = rid else {
        return Vec::new();
    };
    let mut b = Builder {
        n,
        ts,
        resource_id,
        project_id: project,
        user_id: text(doc, &["user_id", "receiver_user_id"]),
        resource_type: rtype,
        attributes: Map::new(),
        metadata: doc.clone(),
        out: Vec::new(),
    };
    match family {
        "image" => image(&mut b, e, doc),
        "compute" => instance(&mut b, e, doc),
        "volume" => {
            b.attributes = attrs(&[
                ("display_name", text(doc, &["display_name"])),
                ("volume_type", text(doc, &["volume_type"])),
            ]);
            b.add("volume", MeterType::Gauge, "volume", Some(1.0));
            b.add("volume.size", MeterType::Gauge, "GB", num(doc, "size"));
        }
        "snapshot" => {
            b.add("snapshot", MeterType::Gauge, "snapshot", Some(1.0));
            b.add(
                "snapshot.size",
                MeterType::Gauge,
                "GB",
                num(doc, "volume_size"),
            );
        }
        "floatingip" => b.add("ip.floating", MeterType::Gauge, "ip", Some(1.0)),
        other => {
            b.add(other, MeterType::Gauge, other, Some(1.0));
            let action = e.split('.').nth(1).unwrap_or_default();
            if matches!(action, "create" | "update" | "delete") {
                b.add(
                    &format!("{other}.{action}"),
                    MeterType::Delta,
                    other,
                    Some(1.0),
                );
            }
        }
    }
    b.out
}

fn image(b: &mut Builder, e: &str, doc: &Value) {
    b.attributes = attrs(&[
        ("name", text(doc, &["name"])),
        ("container_format", text(doc, &["container_format"])),
        ("disk_format", text(doc, &["disk_format"])),
    ]);
    if e == "image.send" {
        // Ceilometer bills the download to the receiver, the serving to
        // the image's owner.
        let owner = b.project_id.take();
        b.project_id = text(doc, &["receiver_tenant_id"]).or(owner.clone());
        b.add(
            "image.download",
            MeterType::Delta,
            "B",
            num(doc, "bytes_sent"),
        );
        b.project_id = owner;
        b.add("image.serve", MeterType::Delta, "B", num(doc, "bytes_sent"));
        return;
    }
    b.add(
        "image.size",
        MeterType::Gauge,
        "B",
        num(doc, "size").or(Some(0.0)),
    );
}

fn instance(b: &mut Builder, e: &str, doc: &Value) {
    // Only the events that describe a whole instance.
    let wanted =
        e.ends_with(".end") || e == "compute.instance.exists" || e == "compute.instance.update";
    if !e.starts_with("compute.instance.") || !wanted {
        return;
    }
    b.attributes = attrs(&[
        ("display_name", text(doc, &["display_name"])),
        (
            "flavor_id",
            text(doc, &["instance_flavor_id", "instance_type_id"]),
        ),
        ("flavor_name", text(doc, &["instance_type"])),
        ("host", text(doc, &["host"])),
        ("image_ref", text(doc, &["image_ref", "image_ref_url"])),
    ]);
    b.add("instance", MeterType::Gauge, "instance", Some(1.0));
    b.add("vcpus", MeterType::Gauge, "vcpu", num(doc, "vcpus"));
    b.add("memory", MeterType::Gauge, "MB", num(doc, "memory_mb"));
    b.add(
        "disk.root.size",
        MeterType::Gauge,
        "GB",
        num(doc, "root_gb"),
    );
    b.add(
        "disk.ephemeral.size",
        MeterType::Gauge,
        "GB",
        num(doc, "ephemeral_gb"),
    );
}

/// A compute host's pollster publishes `telemetry.polling` with
/// `{"samples": [{name, type, unit, volume, resource_id, project_id,
/// user_id, timestamp, resource_metadata}]}` (Ceilometer's notifier
/// publisher shape).
fn polled(n: &Notification, ts: i64) -> Vec<Reading> {
    let empty = Vec::new();
    let items = n.payload["samples"].as_array().unwrap_or(&empty);
    let mut out = Vec::new();
    for (i, s) in items.iter().enumerate() {
        let (Some(name), Some(rid), Some(volume)) = (
            text(s, &["name"]),
            text(s, &["resource_id"]),
            num(s, "volume"),
        ) else {
            continue;
        };
        let kind = s["type"]
            .as_str()
            .and_then(MeterType::parse)
            .unwrap_or(MeterType::Gauge);
        let metadata = s.get("resource_metadata").cloned().unwrap_or(json!({}));
        let rtype = if name.starts_with("disk.device.") {
            "instance_disk"
        } else if name.starts_with("network.") {
            "instance_network_interface"
        } else {
            "instance"
        };
        let mut attributes = Map::new();
        if rtype != "instance" {
            attributes.insert("instance_id".into(), metadata["instance_id"].clone());
            attributes.insert("name".into(), metadata["name"].clone());
        }
        out.push(Reading {
            sample: Sample {
                id: uuid::Uuid::new_v5(
                    &SAMPLE_NAMESPACE,
                    format!("{}/{i}", n.message_id).as_bytes(),
                )
                .to_string(),
                meter: name,
                kind,
                unit: text(s, &["unit"]).unwrap_or_default(),
                volume,
                user_id: text(s, &["user_id"]),
                project_id: text(s, &["project_id"]),
                resource_id: rid,
                ts: s["timestamp"]
                    .as_str()
                    .and_then(crate::store::parse_time)
                    .unwrap_or(ts),
                recorded_at: 0,
                source: SOURCE.into(),
                metadata,
            },
            resource_type: rtype,
            attributes,
        });
    }
    out
}

/// One notification's worth of readings, with the id that makes it
/// idempotent (`None` for samples posted through the API).
pub struct Batch {
    pub message_id: Option<String>,
    pub readings: Vec<Reading>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(event: &str, payload: Value) -> Notification {
        Notification {
            message_id: "m1".into(),
            publisher_id: "x".into(),
            event_type: event.into(),
            priority: "INFO".into(),
            timestamp: "2026-01-01 00:00:00.000000".into(),
            payload,
        }
    }

    #[test]
    fn notifications_give_ceilometers_meters() {
        let r = from_notification(&note(
            "image.upload",
            json!({"id": "i1", "owner": "p", "size": 1024}),
        ));
        assert_eq!(r.len(), 1);
        assert_eq!(
            (
                r[0].sample.meter.as_str(),
                r[0].sample.unit.as_str(),
                r[0].sample.volume
            ),
            ("image.size", "B", 1024.0)
        );
        let r = from_notification(&note(
            "compute.instance.create.end",
            json!({"instance_id": "v", "tenant_id": "p", "vcpus": 2, "memory_mb": 512, "root_gb": 1, "ephemeral_gb": 0}),
        ));
        let names: Vec<_> = r.iter().map(|x| x.sample.meter.as_str()).collect();
        assert_eq!(
            names,
            [
                "instance",
                "vcpus",
                "memory",
                "disk.root.size",
                "disk.ephemeral.size"
            ]
        );
        let r = from_notification(&note(
            "floatingip.create.end",
            json!({"floatingip": {"id": "f", "project_id": "p"}}),
        ));
        assert_eq!(r[0].sample.meter, "ip.floating");
        assert_eq!(r[0].sample.project_id.as_deref(), Some("p"));
        // The same notification gives the same sample ids.
        let again = from_notification(&note(
            "floatingip.create.end",
            json!({"floatingip": {"id": "f", "project_id": "p"}}),
        ));
        assert_eq!(r[0].sample.id, again[0].sample.id);
        assert!(from_notification(&note("identity.user.created", json!({}))).is_empty());
        let r = from_notification(&note(
            "image.send",
            json!({"image_id": "i1", "owner_id": "owner", "receiver_tenant_id": "reader", "bytes_sent": 10}),
        ));
        let by: Vec<_> = r
            .iter()
            .map(|x| (x.sample.meter.as_str(), x.sample.project_id.as_deref()))
            .collect();
        assert_eq!(
            by,
            [
                ("image.download", Some("reader")),
                ("image.serve", Some("owner"))
            ]
        );
    }
}
