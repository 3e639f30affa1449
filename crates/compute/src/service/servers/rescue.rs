//! rescue and unrescue with Nova's checks (lock, state, volume-backed),
//! then a `rescue_server` / `unrescue_server` saga does the work on the
//! host: the guest boots from a disk made on the rescue image — the one
//! asked for in `rescue_image_ref`, else the server's own image. A legacy
//! rescue has the server's own disk attached second; an image with
//! `hw_rescue_device` / `hw_rescue_bus` asks for a stable device rescue
//! (2.87), which keeps every disk of the server, volumes too, and adds
//! the rescue disk last on that device and bus. A volume-backed server is
//! rescued only that way and only from 2.87, with Nova's reasons
//! otherwise (every host here can: the QEMU and fake drivers place the
//! rescue disk, Nova's `COMPUTE_RESCUE_BFV`).

use super::{conflict_state, random_password};
use crate::saga;
use crate::service::ComputeService;
use crate::states::{TaskState, VmState};
use crate::store::instances::Instance;
use ferrostack_core::auth::AuthContext;
use ferrostack_core::{Error, Result};
use ferrostack_hypervisor::{RescueBus, RescueDevice};
use serde_json::{json, Value};
use std::sync::Arc;

/// `rescue`'s arguments; `volume_backed_allowed` is the version's (2.87).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RescueArgs {
    pub admin_pass: Option<String>,
    pub image_ref: Option<String>,
    pub volume_backed_allowed: bool,
}

/// The states Nova rescues from.
const RESCUABLE: [VmState; 3] = [VmState::Active, VmState::Stopped, VmState::Error];

/// The rescue image and where its disk goes (`None`, `None`: a legacy rescue).
struct RescueImageRef {
    id: String,
    device: Option<RescueDevice>,
    bus: Option<RescueBus>,
}

impl ComputeService {
    /// Start the rescue; the answer is Nova's body: the rescue password,
    /// unless `[compute] enable_instance_password` is off.
    pub(super) async fn rescue(
        self: &Arc<Self>,
        ctx: &AuthContext,
        i: &Instance,
        args: &RescueArgs,
    ) -> Result<Value> {
        self.check_lock(ctx, i)?;
        if i.task_state.is_some() || !RESCUABLE.contains(&i.vm_state) || i.host.is_none() {
            return Err(conflict_state("rescue", i));
        }
        let volume_backed = i.image_ref.is_empty();
        let image = match &args.image_ref {
            Some(id) => Some(self.rescue_image(ctx, id).await?),
            // Nova's `instance.image_meta`: the image the root volume was
            // made from (none for a blank or snapshot volume).
            None if volume_backed => match i.image_properties["id"].as_str() {
                Some(id) => Some(placement(id, &i.image_properties)?),
                None => None,
            },
            None => Some(self.own_rescue_image(i).await?),
        };
        // Nova: a volume-backed server needs 2.87 and a rescue image
        // naming both the device and the bus.
        let image = match image {
            Some(x) if !volume_backed => x,
            Some(x) if args.volume_backed_allowed && x.device.is_some() && x.bus.is_some() => x,
            _ => {
                return Err(Error::BadRequest(format!(
                    "Instance {} cannot be rescued: Cannot rescue a volume-backed instance",
                    i.id
                )))
            }
        };
        let password = args.admin_pass.clone().unwrap_or_else(random_password);
        self.begin_task(i, "rescue", &RESCUABLE, TaskState::Rescuing)
            .await?;
        let action_id = self.record_action(ctx, i, "rescue").await?;
        crate::usage_notifications::notify(self, "compute.instance.rescue.start", i).await;
        saga::start(
            self,
            saga::rescue_server::KIND,
            &i.id,
            json!({
                "action_id": action_id, "image_id": image.id, "was": i.vm_state,
                "device": image.device, "bus": image.bus,
            }),
        )
        .await?;
        Ok(if self.config.compute.enable_instance_password {
            json!({ "adminPass": password })
        } else {
            json!({})
        })
    }

    /// The rescue image the caller asked for: one they can see, active,
    /// and not a snapshot of a volume-backed server (Nova's
    /// `UnsupportedRescueImage`, a 400, otherwise).
    async fn rescue_image(&self, ctx: &AuthContext, id: &str) -> Result<RescueImageRef> {
        let unsupported =
            || Error::BadRequest(format!("Requested rescue image '{id}' is not supported"));
        let image = match self.image_as(ctx, id).await {
            Ok(v) => v,
            Err(Error::BadRequest(_)) => return Err(unsupported()),
            Err(e) => return Err(e),
        };
        if image["status"] != "active" || image.get("block_device_mapping").is_some() {
            return Err(unsupported());
        }
        placement(id, &image)
    }

    /// The server's own image as its rescue image, with its properties.
    async fn own_rescue_image(&self, i: &Instance) -> Result<RescueImageRef> {
        let image = self.image.get(&i.image_ref).await?.unwrap_or_default();
        placement(&i.image_ref, &image)
    }

    /// Start the unrescue: back to the server's own disk, ACTIVE.
    pub(super) async fn unrescue(self: &Arc<Self>, ctx: &AuthContext, i: &Instance) -> Result<()> {
        self.check_lock(ctx, i)?;
        if i.host.is_none() {
            return Err(conflict_state("unrescue", i));
        }
        self.begin_task(i, "unrescue", &[VmState::Rescued], TaskState::Unrescuing)
            .await?;
        let action_id = self.record_action(ctx, i, "unrescue").await?;
        crate::usage_notifications::notify(self, "compute.instance.unrescue.start", i).await;
        saga::start(
            self,
            saga::unrescue_server::KIND,
            &i.id,
            json!({ "action_id": action_id }),
        )
        .await?;
        Ok(())
    }
}

/// The image's `hw_rescue_device` and `hw_rescue_bus`; a value Nova's
/// image properties do not know is a 400.
fn placement(id: &str, image: &Value) -> Result<RescueImageRef> {
    fn prop<T: std::str::FromStr<Err = String>>(image: &Value, key: &str) -> Result<Option<T>> {
        match image.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_str()
                .unwrap_or_default()
                .parse()
                .map(Some)
                .map_err(|e: String| Error::BadRequest(format!("Invalid image property: {e}"))),
        }
    }
    Ok(RescueImageRef {
        id: id.to_owned(),
        device: prop(image, "hw_rescue_device")?,
        bus: prop(image, "hw_rescue_bus")?,
    })
}
