//! Boot from volume: `block_device_mapping_v2` entries whose destination
//! is a volume, checked as Nova's API checks them, become mapping
//! templates the create saga makes real (`prepare_volumes`): the volume
//! made through Cinder when the source is an image, a snapshot or blank,
//! waited for until `available`, then attached (attachment create, the
//! host's connector, complete) so the spawn carries its connection
//! (`saga/boot_volumes.rs`).

use super::boot_request::{BlockDeviceMapping, ServerCreate};
use crate::service::ComputeService;
use crate::store::bdms::{self, Bdm, SourceType};
use ferrostack_core::auth::AuthContext;
use ferrostack_core::{Error, Result};
use serde_json::Value;

fn invalid(reason: &str) -> Error {
    Error::BadRequest(format!("Block Device Mapping is Invalid: {reason}"))
}

/// The volume mappings of a boot request (local ones are the image's
/// business), in request order, with Nova's checks: a source and uuid
/// that fit together, sizes where a volume is made, boot indexes 0, 1, …
pub fn volume_mappings(s: &ServerCreate) -> Result<Vec<Bdm>> {
    let mut out = Vec::new();
    let mut boot_indexes = Vec::new();
    for b in s.block_device_mapping_v2.iter().flatten() {
        let boot_index = match &b.boot_index {
            Some(i) => Some(i.int("boot_index", i64::from(i32::MIN))?),
            None => None,
        };
        if let Some(i) = boot_index.filter(|i| *i >= 0) {
            boot_indexes.push(i);
        }
        if b.destination_type.as_deref() != Some("volume") {
            continue;
        }
        out.push(mapping(b, boot_index)?);
    }
    // An `imageRef` is the boot device 0 when no mapping claims it (Nova
    // adds an image mapping for it).
    let image_ref = s.image_ref.as_ref().is_some_and(|r| !r.text().is_empty());
    if image_ref && !boot_indexes.contains(&0) {
        boot_indexes.push(0);
    }
    boot_indexes.sort_unstable();
    if boot_indexes.iter().enumerate().any(|(n, i)| *i != n as i64) {
        return Err(invalid(
            "Boot sequence for the instance and image/block device mapping combination is not valid.",
        ));
    }
    Ok(out)
}

/// One volume mapping as a row template (no instance or id yet).
fn mapping(b: &BlockDeviceMapping, boot_index: Option<i64>) -> Result<Bdm> {
    let source = match b.source_type.as_deref().unwrap_or("") {
        "volume" => SourceType::Volume,
        "image" => SourceType::Image,
        "snapshot" => SourceType::Snapshot,
        "blank" => SourceType::Blank,
        other => return Err(invalid(&format!("Invalid source_type '{other}'."))),
    };
    let uuid = b.uuid.clone().filter(|u| !u.is_empty());
    if source != SourceType::Blank && uuid.is_none() {
        return Err(invalid("Missing device UUID."));
    }
    let size = match &b.volume_size {
        Some(v) => Some(v.int("volume_size", 0)?),
        None => None,
    };
    if source != SourceType::Volume && source != SourceType::Snapshot && size.unwrap_or(0) <= 0 {
        return Err(invalid(&format!(
            "Images with destination_type 'volume' need to have a non-zero size specified (source {source:?})."
        )));
    }
    if let Some(d) = b.device_name.as_deref().filter(|d| !d.is_empty()) {
        if !bdms::valid_device(d) {
            return Err(Error::BadRequest(format!(
                "The supplied device path ({d}) is invalid."
            )));
        }
    }
    Ok(Bdm {
        volume_id: if source == SourceType::Volume {
            uuid.clone().unwrap_or_default()
        } else {
            String::new()
        },
        source_id: uuid.filter(|_| source != SourceType::Volume),
        device_name: b.device_name.clone().unwrap_or_default(),
        boot_index: boot_index.filter(|i| *i >= 0).map(|i| i as i32),
        delete_on_termination: b.delete_on_termination.as_ref().is_some_and(|d| d.truth()),
        tag: b.tag.clone(),
        source_type: source,
        volume_size: size,
        volume_type: b.volume_type.clone().filter(|t| !t.is_empty()),
        ..Default::default()
    })
}

impl ComputeService {
    /// Check the volumes a boot names exist for the caller and are free,
    /// and that one volume is not asked of several servers.
    pub(crate) async fn check_boot_volumes(
        &self,
        ctx: &AuthContext,
        mappings: &[Bdm],
        max_count: i64,
        multiattach_allowed: bool,
    ) -> Result<()> {
        let project = ctx.project_id.clone().unwrap_or_default();
        for m in mappings
            .iter()
            .filter(|m| m.source_type == SourceType::Volume)
        {
            if max_count > 1 {
                return Err(Error::BadRequest(
                    "Cannot attach one or more volumes to multiple instances".into(),
                ));
            }
            let v = self
                .volume
                .get_volume_as(&ctx.token, &project, &m.volume_id)
                .await?
                .ok_or_else(|| {
                    Error::BadRequest(format!("Volume {} could not be found.", m.volume_id))
                })?;
            super::volumes::check_multiattach(&v, multiattach_allowed)?;
            if v["status"] != "available" && !(v["multiattach"] == true && v["status"] == "in-use")
            {
                return Err(Error::BadRequest(format!(
                    "Invalid volume: volume '{}' status must be 'available'. Currently in '{}'",
                    m.volume_id,
                    v["status"].as_str().unwrap_or_default()
                )));
            }
            if m.boot_index == Some(0) && !bootable(&v) {
                return Err(Error::BadRequest(format!(
                    "Block Device {} is not bootable.",
                    m.volume_id
                )));
            }
        }
        Ok(())
    }
}

/// Cinder's `bootable` (a string in its v3 view, "true"/"false"); a
/// volume that does not say is bootable, as Nova assumes.
fn bootable(volume: &Value) -> bool {
    match &volume["bootable"] {
        Value::Bool(b) => *b,
        Value::String(s) => !matches!(
            s.to_ascii_lowercase().as_str(),
            "false" | "0" | "f" | "no" | "n" | "off"
        ),
        _ => true,
    }
}

/// The mapping templates as rows of one instance (recorded in its create
/// saga's parameters, so a rerun finds the same rows).
pub fn rows_for(instance_id: &str, templates: &[Bdm]) -> Vec<Bdm> {
    templates
        .iter()
        .map(|t| Bdm {
            id: uuid::Uuid::new_v4().to_string(),
            instance_id: instance_id.to_owned(),
            ..t.clone()
        })
        .collect()
}
