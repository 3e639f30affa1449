//! `POST /servers/{id}/action`: the body is parsed once into a typed
//! [`ServerAction`]; each action checks Nova's allowed states, sets the
//! task state with a compare-and-set, and hands anything that touches the
//! guest to a saga, so a restart never leaves a task state stuck.

use super::{conflict_state, random_password};
use crate::saga::{self, power_action::PowerAction};
use crate::service::ComputeService;
use crate::states::{TaskState, VmState};
use crate::store::{self, instances::Instance};
use ferrostack_compute_agent::protocol::{AgentReply, AgentRequest};
use ferrostack_core::auth::AuthContext;
use ferrostack_core::{Error, Result};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

/// What an action answers.
pub enum ActionResult {
    Empty(u16),
    Json(u16, Value),
    /// rebuild: the server as it is now and its admin password.
    Rebuilt(Box<Instance>, String),
    /// createImage: the new image's id (for the `Location` header).
    Image(String),
}

/// The arguments of `rebuild`.
#[derive(Clone, Debug, PartialEq)]
pub struct RebuildArgs {
    pub image_id: String,
    pub name: Option<String>,
    pub metadata: Option<BTreeMap<String, String>>,
    pub admin_pass: Option<String>,
    /// From 2.19: `Some(None)` clears it.
    pub description: Option<Option<String>>,
    /// From 2.54: `Some(None)` removes the key pair.
    pub key_name: Option<Option<String>>,
    /// From 2.57: `Some(None)` removes the user data.
    pub user_data: Option<Option<String>>,
    /// Whether `personality` was given (refused from 2.57).
    pub personality: bool,
    /// From 2.63: `Some(None)` removes them.
    pub trusted_image_certificates: Option<Option<Vec<String>>>,
    /// From 2.90: the guest's new host name.
    pub hostname: Option<String>,
    /// From 2.93: a volume-backed server may change image (its root
    /// volume re-imaged).
    pub reimage_allowed: bool,
}

/// The arguments of `createImage` and `createBackup`.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageArgs {
    pub name: String,
    pub metadata: BTreeMap<String, String>,
    /// createBackup: its type and how many of that type to keep.
    pub backup: Option<(String, i64)>,
}

/// `lock`'s arguments: the body as given, and the reason the API read
/// from it (2.73).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LockArgs {
    pub given: Option<serde_json::Value>,
    pub reason: Option<String>,
}

/// One server action, as Nova's API names them.
#[derive(Clone, Debug, PartialEq)]
pub enum ServerAction {
    /// reboot, os-stop, os-start, pause, unpause, suspend, resume.
    Power(PowerAction),
    Lock(LockArgs),
    Unlock,
    ResetState(VmState),
    ConsoleOutput {
        length: Option<u32>,
    },
    VncConsole {
        console_type: String,
    },
    Evacuate(super::evacuate::EvacuateArgs),
    TriggerCrashDump,
    /// `changePassword`: the new administrator password.
    ChangePassword(String),
    Rebuild(RebuildArgs),
    CreateImage(ImageArgs),
    Restore,
    ForceDelete,
    InjectNetworkInfo,
    ResetNetwork,
    AddFloatingIp {
        address: String,
        fixed_address: Option<String>,
    },
    RemoveFloatingIp {
        address: String,
    },
    AddSecurityGroup(String),
    RemoveSecurityGroup(String),
    Resize {
        flavor_ref: String,
    },
    ConfirmResize,
    RevertResize,
    Shelve,
    /// Admin: destroy a SHELVED server's guest and free its host.
    ShelveOffload,
    /// From 2.77 optionally into an availability zone (2.91: or none),
    /// from 2.91 to a host.
    Unshelve {
        target: super::shelve::UnshelveTarget,
        /// The body as given (its schema depends on the version).
        given: Option<serde_json::Value>,
    },
    /// Boot from a rescue image (2.87: volume-backed servers too).
    Rescue(super::rescue::RescueArgs),
    Unrescue,
    /// Cold (`migrate`) or live (`os-migrateLive`) migration, to `host`
    /// or wherever the scheduler chooses.
    Migrate {
        live: bool,
        host: Option<String>,
        /// A live migration's fields as given (for the API's version checks).
        live_fields: Option<LiveMigrateFields>,
    },
}

impl ServerAction {
    /// The policy rule Nova checks for this action on the server's project.
    pub fn policy(&self) -> &'static str {
        match self {
            ServerAction::Power(p) => match p {
                PowerAction::Reboot(_) => "os_compute_api:servers:reboot",
                PowerAction::Stop => "os_compute_api:servers:stop",
                PowerAction::Start => "os_compute_api:servers:start",
                PowerAction::Pause => "os_compute_api:os-pause-server:pause",
                PowerAction::Unpause => "os_compute_api:os-pause-server:unpause",
                PowerAction::Suspend => "os_compute_api:os-suspend-server:suspend",
                PowerAction::Resume => "os_compute_api:os-suspend-server:resume",
            },
            ServerAction::Lock(_) => "os_compute_api:os-lock-server:lock",
            ServerAction::Unlock => "os_compute_api:os-lock-server:unlock",
            ServerAction::ResetState(_) => "os_compute_api:os-admin-actions:reset_state",
            ServerAction::ConsoleOutput { .. } => "os_compute_api:os-console-output",
            ServerAction::VncConsole { .. } => "os_compute_api:os-remote-consoles",
            ServerAction::Evacuate(_) => "os_compute_api:os-evacuate",
            ServerAction::TriggerCrashDump => "os_compute_api:servers:trigger_crash_dump",
            ServerAction::ChangePassword(_) => "os_compute_api:os-admin-password",
            ServerAction::Rebuild(_) => "os_compute_api:servers:rebuild",
            ServerAction::CreateImage(_) => "os_compute_api:servers:create_image",
            ServerAction::Restore => "os_compute_api:os-deferred-delete:restore",
            ServerAction::ForceDelete => "os_compute_api:os-deferred-delete:force",
            ServerAction::InjectNetworkInfo => {
                "os_compute_api:os-admin-actions:inject_network_info"
            }
            ServerAction::ResetNetwork => "os_compute_api:os-admin-actions:reset_network",
            ServerAction::AddFloatingIp { .. } => "os_compute_api:os-floating-ips:add",
            ServerAction::RemoveFloatingIp { .. } => "os_compute_api:os-floating-ips:remove",
            ServerAction::AddSecurityGroup(_) => "os_compute_api:os-security-groups:add",
            ServerAction::RemoveSecurityGroup(_) => "os_compute_api:os-security-groups:remove",
            ServerAction::Resize { .. } => "os_compute_api:servers:resize",
            ServerAction::ConfirmResize => "os_compute_api:servers:confirm_resize",
            ServerAction::RevertResize => "os_compute_api:servers:revert_resize",
            ServerAction::Rescue(_) => "os_compute_api:os-rescue",
            ServerAction::Unrescue => "os_compute_api:os-unrescue",
            ServerAction::Shelve => "os_compute_api:os-shelve:shelve",
            ServerAction::ShelveOffload => "os_compute_api:os-shelve:shelve_offload",
            ServerAction::Unshelve { .. } => "os_compute_api:os-shelve:unshelve",
            ServerAction::Migrate { live: false, .. } => "os_compute_api:os-migrate-server:migrate",
            ServerAction::Migrate { live: true, .. } => {
                "os_compute_api:os-migrate-server:migrate_live"
            }
        }
    }
}

impl ComputeService {
    /// Run one action on a server the caller can see.
    pub async fn server_action(
        self: &Arc<Self>,
        ctx: &AuthContext,
        id: &str,
        action: ServerAction,
    ) -> Result<ActionResult> {
        let i = self.authorized_instance(ctx, id, action.policy()).await?;
        match action {
            ServerAction::Power(p) => self.power_action(ctx, &i, p).await?,
            ServerAction::Lock(args) => self.lock(ctx, &i, Some(args.reason)).await?,
            ServerAction::Unlock => self.lock(ctx, &i, None).await?,
            ServerAction::ResetState(state) => self.reset_state(ctx, &i, state).await?,
            ServerAction::ConsoleOutput { length } => {
                let output = self.console_output(&i, length).await?;
                return Ok(ActionResult::Json(200, json!({ "output": output })));
            }
            ServerAction::VncConsole { console_type } => {
                let console = self.vnc_console(ctx, &i, &console_type).await?;
                return Ok(ActionResult::Json(200, json!({ "console": console })));
            }
            ServerAction::Rebuild(args) => return self.rebuild(ctx, &i, args).await,
            ServerAction::Evacuate(args) => return self.evacuate(ctx, &i, args).await,
            ServerAction::CreateImage(args) => return self.create_image(ctx, &i, args).await,
            // Servers are deleted at once (no reclaim interval), so none is
            // ever soft-deleted: both actions meet the wrong state.
            ServerAction::Restore => return Err(conflict_state("restore", &i)),
            ServerAction::ForceDelete => return Err(conflict_state("forceDelete", &i)),
            // Nova re-sends network info to the hypervisor; guests here
            // read theirs by DHCP and from the metadata service.
            ServerAction::TriggerCrashDump => self.trigger_crash_dump(ctx, &i).await?,
            ServerAction::ChangePassword(pass) => self.change_password(ctx, &i, &pass).await?,
            ServerAction::InjectNetworkInfo => {
                self.record_action(ctx, &i, "injectNetworkInfo").await?;
            }
            ServerAction::ResetNetwork => {
                self.record_action(ctx, &i, "resetNetwork").await?;
            }
            ServerAction::AddFloatingIp {
                address,
                fixed_address,
            } => {
                self.add_floating_ip(ctx, &i, &address, fixed_address.as_deref())
                    .await?
            }
            ServerAction::RemoveFloatingIp { address } => {
                self.remove_floating_ip(ctx, &i, &address).await?
            }
            ServerAction::AddSecurityGroup(g) => {
                self.change_security_group(ctx, &i, &g, true).await?
            }
            ServerAction::RemoveSecurityGroup(g) => {
                self.change_security_group(ctx, &i, &g, false).await?
            }
            ServerAction::Resize { flavor_ref } => self.resize(ctx, &i, &flavor_ref).await?,
            ServerAction::ConfirmResize => {
                self.confirm_resize(ctx, &i).await?;
                return Ok(ActionResult::Empty(204));
            }
            ServerAction::RevertResize => self.revert_resize(ctx, &i).await?,
            ServerAction::Rescue(args) => {
                let body = self.rescue(ctx, &i, &args).await?;
                return Ok(ActionResult::Json(200, body));
            }
            ServerAction::Unrescue => self.unrescue(ctx, &i).await?,
            ServerAction::Shelve => self.shelve(ctx, &i).await?,
            ServerAction::ShelveOffload => self.shelve_offload(ctx, &i).await?,
            ServerAction::Unshelve { target, .. } => self.unshelve(ctx, &i, target).await?,
            ServerAction::Migrate {
                live,
                host,
                live_fields,
            } => {
                let fields = live_fields.filter(|_| live);
                self.migrate(ctx, &i, host.as_deref(), fields).await?
            }
        }
        Ok(ActionResult::Empty(202))
    }

    /// Set a task state if the server is in one of `allowed` states and
    /// has no task; the compare-and-set refuses a concurrent action.
    pub(crate) async fn begin_task(
        &self,
        i: &Instance,
        action: &str,
        allowed: &[VmState],
        task: TaskState,
    ) -> Result<Instance> {
        if i.task_state.is_some() || !allowed.contains(&i.vm_state) {
            return Err(conflict_state(action, i));
        }
        store::instances::update(&self.db, &i.id, |x| {
            if x.task_state.is_some() || !allowed.contains(&x.vm_state) {
                return Err(conflict_state(action, x));
            }
            x.task_state = Some(task);
            Ok(())
        })
        .await
    }

    /// reboot, stop, start, pause, unpause, suspend, resume: a
    /// `power_action` saga does the work on the host.
    async fn power_action(
        self: &Arc<Self>,
        ctx: &AuthContext,
        i: &Instance,
        action: PowerAction,
    ) -> Result<()> {
        self.check_lock(ctx, i)?;
        if i.host.is_none() {
            return Err(conflict_state(action.name(), i));
        }
        self.begin_task(
            i,
            action.name(),
            action.allowed_states(),
            action.task_state(),
        )
        .await?;
        let action_id = self.record_action(ctx, i, action.name()).await?;
        saga::start(
            self,
            saga::power_action::KIND,
            &i.id,
            json!({"action": action, "action_id": action_id}),
        )
        .await?;
        Ok(())
    }

    /// `migrate` and `os-migrateLive`: Nova's checks of the request (the
    /// host's own policy rule, the lock, the server's state, a host that
    /// exists and is not the server's own), then the move: cold
    /// (`migrate_server`) or live (`service::servers::live_migrate`).
    async fn migrate(
        self: &Arc<Self>,
        ctx: &AuthContext,
        i: &Instance,
        host: Option<&str>,
        live: Option<LiveMigrateFields>,
    ) -> Result<()> {
        if host.is_some() {
            let rule = if live.is_some() {
                "migrate_live"
            } else {
                "migrate"
            };
            let rule = format!("os_compute_api:os-migrate-server:{rule}:host");
            self.authorize_project(ctx, &rule, &i.project_id)?;
        }
        self.check_lock(ctx, i)?;
        let allowed: &[VmState] = if live.is_some() {
            &[VmState::Active, VmState::Paused]
        } else {
            &[VmState::Active, VmState::Stopped]
        };
        if i.task_state.is_some() || !allowed.contains(&i.vm_state) {
            let action = if live.is_some() {
                "os-migrateLive"
            } else {
                "migrate"
            };
            return Err(conflict_state(action, i));
        }
        if let (Some(want), Some(on)) = (host, i.host.as_deref()) {
            if want == on {
                return Err(Error::BadRequest(format!(
                    "Unable to migrate instance ({}) to current host ({on}).",
                    i.id
                )));
            }
        }
        if let Some(want) = host {
            if store::hosts::get_node(&self.db, want).await?.is_none() {
                return Err(Error::BadRequest(format!(
                    "Compute host {want} could not be found."
                )));
            }
        }
        match live {
            Some(fields) => self.live_migrate(ctx, i, host, &fields).await,
            None => self.cold_migrate(ctx, i, host).await,
        }
    }

    /// Lock (with the reason given, if any) or, with `None`, unlock.
    async fn lock(
        &self,
        ctx: &AuthContext,
        i: &Instance,
        lock: Option<Option<String>>,
    ) -> Result<()> {
        let reason = lock.clone().flatten();
        let lock = lock.is_some();
        if !lock && i.locked_by.as_deref() == Some("admin") {
            self.authorize_project(
                ctx,
                "os_compute_api:os-lock-server:unlock:unlock_override",
                &i.project_id,
            )?;
        }
        let by = if ctx.project_id.as_deref() == Some(&i.project_id) {
            "owner"
        } else {
            "admin"
        };
        store::instances::update(&self.db, &i.id, |x| {
            x.locked = lock;
            x.locked_by = lock.then(|| by.to_owned());
            x.locked_reason = reason.clone();
            Ok(())
        })
        .await?;
        self.record_action(ctx, i, if lock { "lock" } else { "unlock" })
            .await?;
        Ok(())
    }

    async fn reset_state(&self, ctx: &AuthContext, i: &Instance, state: VmState) -> Result<()> {
        store::instances::update(&self.db, &i.id, |x| {
            x.vm_state = state;
            x.task_state = None;
            Ok(())
        })
        .await?;
        self.record_action(ctx, i, "resetState").await?;
        Ok(())
    }

    /// The tail of the guest's serial console (`length` lines; all when absent).
    async fn console_output(&self, i: &Instance, length: Option<u32>) -> Result<String> {
        let readable = [VmState::Active, VmState::Stopped, VmState::Paused];
        if !readable.contains(&i.vm_state) {
            return Err(conflict_state("get_console_output", i));
        }
        let host = i
            .host
            .clone()
            .ok_or_else(|| conflict_state("get_console_output", i))?;
        let reply = self
            .agent(
                &host,
                AgentRequest::ConsoleOutput {
                    instance_id: i.id.clone(),
                    length,
                },
            )
            .await?;
        match reply {
            AgentReply::ConsoleOutput(text) => Ok(text),
            other => Err(Error::Internal(format!(
                "unexpected answer to console_output: {other:?}"
            ))),
        }
    }

    /// rebuild: the guest is built anew from another (or the same) image
    /// by a `rebuild_server` saga; a stopped server stays stopped.
    async fn rebuild(
        self: &Arc<Self>,
        ctx: &AuthContext,
        i: &Instance,
        args: RebuildArgs,
    ) -> Result<ActionResult> {
        self.check_lock(ctx, i)?;
        let allowed = [VmState::Active, VmState::Stopped, VmState::Error];
        if i.task_state.is_some() || !allowed.contains(&i.vm_state) || i.host.is_none() {
            return Err(conflict_state("rebuild", i));
        }
        let image = self.image_as(ctx, &args.image_id).await?;
        if image["status"] != "active" {
            return Err(Error::BadRequest(format!(
                "Image {} is not active.",
                args.image_id
            )));
        }
        let reimage = self.volume_backed_rebuild(i, &args)?;
        let volume_backed = i.image_ref.is_empty();
        let admin_pass = args.admin_pass.clone().unwrap_or_else(random_password);
        // 2.54: the key is the caller's key pair of that name.
        let key = match &args.key_name {
            Some(Some(name)) => {
                let k = store::catalog::get_keypair(&self.db, &ctx.user_id, name)
                    .await?
                    .ok_or_else(|| Error::BadRequest("Invalid key_name provided.".into()))?;
                Some(Some((k.name, k.public_key)))
            }
            Some(None) => Some(None),
            None => None,
        };
        let was = i.vm_state;
        let updated = store::instances::update(&self.db, &i.id, |x| {
            if x.task_state.is_some() || !allowed.contains(&x.vm_state) {
                return Err(conflict_state("rebuild", x));
            }
            x.task_state = Some(TaskState::Rebuilding);
            // A volume-backed server keeps booting from its volume; a
            // re-imaged one's image (its properties) is the new one.
            if !volume_backed {
                x.image_ref = args.image_id.clone();
            }
            if !volume_backed || reimage {
                x.image_properties = image.clone();
            }
            if let Some(n) = &args.name {
                x.name = n.clone();
            }
            if let Some(m) = &args.metadata {
                x.metadata = m.clone();
            }
            if let Some(d) = &args.description {
                x.description = d.clone();
            }
            if let Some(k) = &key {
                x.key_name = k.as_ref().map(|(n, _)| n.clone());
                x.key_data = k.as_ref().map(|(_, d)| d.clone());
            }
            if let Some(u) = &args.user_data {
                x.user_data = u.clone();
            }
            if let Some(c) = &args.trusted_image_certificates {
                x.trusted_image_certificates = c.clone();
            }
            if let Some(h) = &args.hostname {
                x.hostname = Some(h.clone());
            }
            Ok(())
        })
        .await?;
        let action_id = self.record_action(ctx, i, "rebuild").await?;
        saga::start(
            self,
            saga::rebuild_server::KIND,
            &i.id,
            json!({
                "action_id": action_id,
                "stopped": was == VmState::Stopped,
                "reimage": reimage,
                "image_id": args.image_id,
                "admin_pass": self.admin_pass_for_guest(&updated, &admin_pass),
            }),
        )
        .await?;
        Ok(ActionResult::Rebuilt(Box::new(updated), admin_pass))
    }

    /// Nova's checks of a volume-backed server's rebuild: no trusted
    /// certificates; before 2.93 only the image its root volume was made
    /// from, and the volume is kept as it is; from 2.93 the root volume is
    /// re-imaged (the answer) with any image, its own too, as Nova's
    /// compute does whenever the API asked it to `reimage_boot_volume`.
    fn volume_backed_rebuild(&self, i: &Instance, args: &RebuildArgs) -> Result<bool> {
        if !i.image_ref.is_empty() {
            return Ok(false);
        }
        if matches!(args.trusted_image_certificates, Some(Some(_))) {
            return Err(Error::BadRequest(
                "Image certificate validation is not supported for volume-backed servers.".into(),
            ));
        }
        if args.reimage_allowed {
            return Ok(true);
        }
        let original = i.image_properties.get("id").and_then(|v| v.as_str());
        if original == Some(args.image_id.as_str()) {
            return Ok(false);
        }
        Err(Error::BadRequest(format!(
            "Image {} is unacceptable: Unable to rebuild with a different image for a volume-backed server.",
            args.image_id
        )))
    }

    /// createImage / createBackup: an image record owned by the caller,
    /// filled by a `snapshot_server` saga (the data streamed from the host).
    async fn create_image(
        self: &Arc<Self>,
        ctx: &AuthContext,
        i: &Instance,
        args: ImageArgs,
    ) -> Result<ActionResult> {
        self.check_lock(ctx, i)?;
        let allowed = [
            VmState::Active,
            VmState::Stopped,
            VmState::Paused,
            VmState::Suspended,
        ];
        if i.task_state.is_some() || !allowed.contains(&i.vm_state) || i.host.is_none() {
            return Err(conflict_state("createImage", i));
        }
        let base = self.image.get(&i.image_ref).await?.unwrap_or(Value::Null);
        let mut body = Map::new();
        body.insert("name".into(), json!(args.name));
        // The host writes a qcow2 of the guest's disk, whatever the base was.
        body.insert("disk_format".into(), json!("qcow2"));
        body.insert(
            "container_format".into(),
            json!(base["container_format"].as_str().unwrap_or("bare")),
        );
        body.insert("instance_uuid".into(), json!(i.id));
        body.insert("image_type".into(), json!("snapshot"));
        body.insert("base_image_ref".into(), json!(i.image_ref));
        body.insert("user_id".into(), json!(ctx.user_id));
        for (k, v) in &base.as_object().cloned().unwrap_or_default() {
            // Nova carries the base image's hardware properties over.
            if k.starts_with("hw_")
                || k.starts_with("os_")
                    && k != "os_hash_algo"
                    && k != "os_hash_value"
                    && k != "os_hidden"
            {
                body.insert(k.clone(), v.clone());
            }
        }
        for (k, v) in &args.metadata {
            body.insert(k.clone(), json!(v));
        }
        if let Some((backup_type, _)) = &args.backup {
            body.insert("image_type".into(), json!("backup"));
            body.insert("backup_type".into(), json!(backup_type));
        }
        let image = self
            .image
            .create_as(&ctx.token, &Value::Object(body))
            .await?;
        let image_id = image["id"].as_str().unwrap_or_default().to_owned();
        let task = if args.backup.is_some() {
            TaskState::ImageBackup
        } else {
            TaskState::ImageSnapshot
        };
        if let Err(e) = self.begin_task(i, "createImage", &allowed, task).await {
            let _ = self.image.delete(&image_id).await;
            return Err(e);
        }
        let action_id = self
            .record_action(
                ctx,
                i,
                if args.backup.is_some() {
                    "createBackup"
                } else {
                    "createImage"
                },
            )
            .await?;
        saga::start(
            self,
            saga::snapshot_server::KIND,
            &i.id,
            json!({"action_id": action_id, "image_id": image_id, "backup": args.backup}),
        )
        .await?;
        Ok(ActionResult::Image(image_id))
    }
}

/// An `os-migrateLive` body as given, and what its version makes of it
/// (the API layer checks it and fills in the version's rules).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LiveMigrateFields {
    /// As given: `true`, `false` (or Nova's boolean strings) or `auto`.
    pub block_migration: Option<String>,
    pub disk_over_commit: bool,
    pub host: bool,
    /// Whether `force` was given (2.30).
    pub force: bool,
    /// `force`'s value.
    pub force_value: bool,
    /// A host asked for is taken without the scheduler's checks: before
    /// 2.30 always, from 2.30 to 2.67 with `force`.
    pub skip_scheduler: bool,
    /// From 2.34 Nova runs the pre-checks after answering: a move no host
    /// can take is a 202, then a failed migration and instance action.
    pub background_checks: bool,
}
