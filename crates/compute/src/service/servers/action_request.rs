//! The body of `POST /servers/{id}/action` as Nova's v2.1 schemas have it:
//! one key naming the action, its arguments as the value. It is serde's
//! externally tagged enum, so a wrong type or an unknown action is a 400
//! naming it and the document's schema is the `oneOf` of the action
//! bodies. Turning it into a [`ServerAction`] checks what the types cannot
//! (enumerated values, addresses, minimums), with Nova's messages.

use super::actions::{ImageArgs, LiveMigrateFields, LockArgs, RebuildArgs, ServerAction};
use super::bad;
use super::create::{checked_metadata, ref_id};
use crate::api::body::{BoolOrString, IntOrString};
use crate::saga::power_action::PowerAction;
use crate::states::VmState;
use ferrostack_core::{Error, Result};
use ferrostack_hypervisor::RebootKind;
use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer};
use std::borrow::Cow;
use std::collections::BTreeMap;

/// One server action, `{"<action>": arguments}`.
#[derive(Deserialize, JsonSchema)]
pub enum ServerActionBody {
    #[serde(rename = "reboot")]
    Reboot(RebootRequest),
    #[serde(rename = "os-stop")]
    Stop(NoArguments),
    #[serde(rename = "os-start")]
    Start(NoArguments),
    #[serde(rename = "pause")]
    Pause(NoArguments),
    #[serde(rename = "unpause")]
    Unpause(NoArguments),
    #[serde(rename = "suspend")]
    Suspend(NoArguments),
    #[serde(rename = "resume")]
    Resume(NoArguments),
    #[serde(rename = "lock")]
    Lock(LockRequest),
    #[serde(rename = "unlock")]
    Unlock(NoArguments),
    /// Admin: set the server's state (`active` or `error`).
    #[serde(rename = "os-resetState")]
    ResetState(ResetStateRequest),
    #[serde(rename = "os-getConsoleOutput")]
    ConsoleOutput(Option<ConsoleOutputRequest>),
    #[serde(rename = "os-getVNCConsole")]
    VncConsole(VncConsoleRequest),
    #[serde(rename = "rebuild")]
    Rebuild(RebuildRequest),
    /// Snapshot the server into the image service.
    #[serde(rename = "createImage")]
    CreateImage(CreateImageRequest),
    #[serde(rename = "createBackup")]
    CreateBackup(CreateBackupRequest),
    #[serde(rename = "restore")]
    Restore(NoArguments),
    #[serde(rename = "forceDelete")]
    ForceDelete(NoArguments),
    #[serde(rename = "injectNetworkInfo")]
    InjectNetworkInfo(NoArguments),
    #[serde(rename = "resetNetwork")]
    ResetNetwork(NoArguments),
    #[serde(rename = "addFloatingIp")]
    AddFloatingIp(AddFloatingIpRequest),
    #[serde(rename = "removeFloatingIp")]
    RemoveFloatingIp(RemoveFloatingIpRequest),
    #[serde(rename = "addSecurityGroup")]
    AddSecurityGroup(SecurityGroupName),
    #[serde(rename = "removeSecurityGroup")]
    RemoveSecurityGroup(SecurityGroupName),
    #[serde(rename = "resize")]
    Resize(ResizeRequest),
    #[serde(rename = "confirmResize")]
    ConfirmResize(NoArguments),
    #[serde(rename = "revertResize")]
    RevertResize(NoArguments),
    /// Cold migration, to `host` or wherever the scheduler chooses.
    #[serde(rename = "migrate")]
    Migrate(Option<MigrateRequest>),
    /// Live migration, to `host` or wherever the scheduler chooses.
    #[serde(rename = "os-migrateLive")]
    MigrateLive(LiveMigrateRequest),
    /// Rebuild on another host a server whose host is down.
    #[serde(rename = "evacuate")]
    Evacuate(EvacuateRequest),
    /// An NMI to the guest (microversion 2.17).
    #[serde(rename = "trigger_crash_dump")]
    TriggerCrashDump(NoArguments),
    /// Set the guest's administrator password (through its agent).
    #[serde(rename = "changePassword")]
    ChangePassword(ChangePasswordRequest),
    /// Snapshot the server and free its host (offloaded at once).
    #[serde(rename = "shelve")]
    Shelve(NoArguments),
    /// Admin: offload a SHELVED server.
    #[serde(rename = "shelveOffload")]
    ShelveOffload(NoArguments),
    /// `null`, or from 2.77 `{"availability_zone": "..."}`.
    #[serde(rename = "unshelve")]
    Unshelve(UnshelveRequest),
    /// Boot the server from a rescue image (`null` or its options).
    #[serde(rename = "rescue")]
    Rescue(Option<RescueRequest>),
    #[serde(rename = "unrescue")]
    Unrescue(NoArguments),
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RescueRequest {
    #[serde(default, rename = "adminPass")]
    admin_pass: Option<String>,
    #[serde(default)]
    #[schemars(extend("format" = "uuid"))]
    rescue_image_ref: Option<String>,
}

/// `unshelve`'s arguments as given: `null` before 2.77 (anything else is
/// ignored, as Nova's 2.1 schema-less action), from 2.77 `null` or an
/// object with an optional `availability_zone` (the API checks which).
pub struct UnshelveRequest(pub Option<serde_json::Value>);

impl<'de> Deserialize<'de> for UnshelveRequest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        Option::<serde_json::Value>::deserialize(d).map(UnshelveRequest)
    }
}

impl JsonSchema for UnshelveRequest {
    fn schema_name() -> Cow<'static, str> {
        "UnshelveRequest".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "`null`, or from 2.77 `{\"availability_zone\": \"...\"}` (from 2.91 the zone may be `null`, and a `host` given).",
            "type": ["object", "null"],
            "properties": {
                "availability_zone": {"type": ["string", "null"], "minLength": 1, "maxLength": 255},
                "host": {"type": "string", "minLength": 1, "maxLength": 255},
            },
            "additionalProperties": false,
        })
    }
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    #[serde(rename = "adminPass")]
    admin_pass: String,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EvacuateRequest {
    /// The destination (the scheduler chooses when absent).
    #[serde(default)]
    #[schemars(length(min = 1, max = 255))]
    host: Option<String>,
    /// Required before microversion 2.14, refused from 2.14.
    #[serde(default, rename = "onSharedStorage")]
    on_shared_storage: Option<BoolOrString>,
    #[serde(default, rename = "adminPass")]
    admin_pass: Option<String>,
    /// From 2.29: skip the scheduler's check of `host`.
    #[serde(default)]
    force: Option<BoolOrString>,
}

/// The arguments of an action that takes none: whatever is given is
/// ignored (`null` by convention), as Nova does.
pub struct NoArguments;

impl<'de> Deserialize<'de> for NoArguments {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        IgnoredAny::deserialize(d).map(|_| NoArguments)
    }
}

impl JsonSchema for NoArguments {
    fn schema_name() -> Cow<'static, str> {
        "NoArguments".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"description": "Ignored (`null` by convention)."})
    }
}

/// `lock`'s arguments as given: ignored before 2.73, from 2.73 `null` or
/// an object with an optional `locked_reason` (the API checks which).
pub struct LockRequest(pub Option<serde_json::Value>);

impl<'de> Deserialize<'de> for LockRequest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        Option::<serde_json::Value>::deserialize(d).map(LockRequest)
    }
}

impl JsonSchema for LockRequest {
    fn schema_name() -> Cow<'static, str> {
        "LockRequest".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "`null`, or from 2.73 `{\"locked_reason\": \"...\"}` (at most 255 characters).",
            "type": ["object", "null"],
            "properties": {"locked_reason": {"type": "string", "maxLength": 255}},
        })
    }
}

/// An IP address of either version, as a string.
fn ip_address(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "string",
        "anyOf": [{"format": "ipv4"}, {"format": "ipv6"}],
    })
}

/// [`ip_address`], or `null`.
fn optional_ip_address(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": ["string", "null"],
        "anyOf": [{"type": "null"}, {"format": "ipv4"}, {"format": "ipv6"}],
    })
}

#[derive(Deserialize, JsonSchema)]
pub struct RebootRequest {
    /// `HARD` or `SOFT`, in any case.
    #[serde(rename = "type")]
    #[schemars(extend("enum" = ["HARD", "Hard", "hard", "SOFT", "Soft", "soft"]))]
    kind: String,
}

#[derive(Deserialize, JsonSchema)]
pub struct ResetStateRequest {
    #[schemars(extend("enum" = ["active", "error"]))]
    state: String,
}

#[derive(Deserialize, JsonSchema)]
pub struct ConsoleOutputRequest {
    /// The last lines to show; -1 (or absent) for all of them.
    #[serde(default)]
    length: Option<IntOrString>,
}

#[derive(Deserialize, JsonSchema)]
pub struct VncConsoleRequest {
    /// Nova's console types; only `novnc` is served.
    #[serde(rename = "type")]
    #[schemars(extend("enum" = ["novnc", "xvpvnc"]))]
    console_type: String,
}

#[derive(Deserialize, JsonSchema)]
pub struct RebuildRequest {
    /// The image's id or URL.
    #[serde(rename = "imageRef")]
    image_ref: IntOrString,
    #[serde(default)]
    #[schemars(length(min = 1, max = 255), regex(pattern = r"\S"))]
    name: Option<String>,
    /// Replaces the server's metadata when given.
    #[serde(default)]
    #[schemars(schema_with = "crate::api::body::optional_metadata")]
    metadata: Option<BTreeMap<String, String>>,
    #[serde(default, rename = "adminPass")]
    admin_pass: Option<String>,
    /// From 2.19; `null` clears it.
    #[serde(default, deserialize_with = "crate::api::body::present")]
    #[schemars(length(max = 255))]
    description: Option<Option<String>>,
    /// From 2.54: the key pair to put in the guest; `null` removes it.
    #[serde(default, deserialize_with = "crate::api::body::present")]
    #[schemars(length(min = 1, max = 255))]
    key_name: Option<Option<String>>,
    /// From 2.57: new user data (base64); `null` removes it.
    #[serde(default, deserialize_with = "crate::api::body::present")]
    #[schemars(length(max = 65535))]
    user_data: Option<Option<String>>,
    /// From 2.63: replaces the trusted certificates; `null` removes them.
    #[serde(default, deserialize_with = "crate::api::body::present")]
    #[schemars(length(min = 1, max = 50))]
    trusted_image_certificates: Option<Option<Vec<String>>>,
    /// Before 2.57 accepted and ignored (no file injection); refused from 2.57.
    #[serde(default)]
    #[schemars(with = "Option<serde_json::Value>")]
    personality: Option<serde::de::IgnoredAny>,
    /// From 2.90: the guest's new host name (an FQDN from 2.94).
    #[serde(default)]
    #[schemars(length(min = 1, max = 255))]
    hostname: Option<String>,
}

#[derive(Deserialize, JsonSchema)]
pub struct CreateImageRequest {
    #[schemars(regex(pattern = r"\S"))]
    name: String,
    /// Properties of the new image.
    #[serde(default)]
    #[schemars(schema_with = "crate::api::body::optional_metadata")]
    metadata: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize, JsonSchema)]
pub struct CreateBackupRequest {
    #[schemars(regex(pattern = r"\S"))]
    name: String,
    #[schemars(length(min = 1))]
    backup_type: String,
    /// How many backups of this type to keep (at least 0).
    rotation: IntOrString,
    #[serde(default)]
    #[schemars(schema_with = "crate::api::body::optional_metadata")]
    metadata: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize, JsonSchema)]
pub struct AddFloatingIpRequest {
    #[schemars(schema_with = "ip_address")]
    address: String,
    /// Which of the server's fixed addresses to map (its first when absent).
    #[serde(default)]
    #[schemars(schema_with = "optional_ip_address")]
    fixed_address: Option<String>,
}

#[derive(Deserialize, JsonSchema)]
pub struct RemoveFloatingIpRequest {
    #[schemars(schema_with = "ip_address")]
    address: String,
}

#[derive(Deserialize, JsonSchema)]
pub struct SecurityGroupName {
    #[schemars(length(min = 1))]
    name: String,
}

#[derive(Deserialize, JsonSchema)]
pub struct ResizeRequest {
    /// The new flavor's id or URL.
    #[serde(rename = "flavorRef")]
    flavor_ref: IntOrString,
}

/// `os-migrateLive`'s body; which fields each microversion requires or
/// refuses is checked by the API layer ([`LiveMigrateFields`] in `actions`).
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LiveMigrateRequest {
    /// A boolean; also `auto` from 2.25. Required.
    #[serde(default)]
    block_migration: Option<BoolOrString>,
    /// Required before 2.25, refused from 2.25.
    #[serde(default)]
    disk_over_commit: Option<BoolOrString>,
    /// Required, `null` for the scheduler's choice.
    #[serde(default, deserialize_with = "crate::api::body::present")]
    host: Option<Option<String>>,
    /// From 2.30: skip the scheduler's check of `host`.
    #[serde(default)]
    force: Option<BoolOrString>,
}

#[derive(Deserialize, JsonSchema)]
pub struct MigrateRequest {
    /// The destination (the scheduler chooses when absent).
    #[serde(default)]
    host: Option<String>,
}

/// A required string that must not be empty.
fn non_empty(s: String, action: &str, key: &str) -> Result<String> {
    if s.is_empty() {
        return Err(bad(action, &format!("'{key}' is a required property")));
    }
    Ok(s)
}

fn ip(s: String, key: &str) -> Result<String> {
    if s.parse::<std::net::IpAddr>().is_err() {
        return Err(bad(
            key,
            &format!("Value: {s}. '{s}' is not a valid IP address"),
        ));
    }
    Ok(s)
}

fn image_args(
    name: String,
    metadata: Option<BTreeMap<String, String>>,
    backup: Option<(String, i64)>,
) -> Result<ImageArgs> {
    if name.trim().is_empty() {
        return Err(bad("name", "'name' is a required property"));
    }
    Ok(ImageArgs {
        name,
        metadata: checked_metadata(metadata.unwrap_or_default(), "metadata")?,
        backup,
    })
}

impl TryFrom<ServerActionBody> for ServerAction {
    type Error = Error;

    fn try_from(body: ServerActionBody) -> Result<ServerAction> {
        use ServerActionBody as B;
        let power = |p| Ok(ServerAction::Power(p));
        match body {
            B::Reboot(RebootRequest { kind }) => match kind.to_ascii_uppercase().as_str() {
                "HARD" => power(PowerAction::Reboot(RebootKind::Hard)),
                "SOFT" => power(PowerAction::Reboot(RebootKind::Soft)),
                _ => Err(bad("type", &format!("Value: {kind}. '{kind}' is not one of ['HARD', 'Hard', 'hard', 'SOFT', 'Soft', 'soft']"))),
            },
            B::Stop(_) => power(PowerAction::Stop),
            B::Start(_) => power(PowerAction::Start),
            B::Pause(_) => power(PowerAction::Pause),
            B::Unpause(_) => power(PowerAction::Unpause),
            B::Suspend(_) => power(PowerAction::Suspend),
            B::Resume(_) => power(PowerAction::Resume),
            B::Lock(r) => Ok(ServerAction::Lock(LockArgs {
                given: r.0,
                reason: None,
            })),
            B::TriggerCrashDump(_) => Ok(ServerAction::TriggerCrashDump),
            B::ChangePassword(r) => Ok(ServerAction::ChangePassword(r.admin_pass)),
            B::Unlock(_) => Ok(ServerAction::Unlock),
            B::ResetState(ResetStateRequest { state }) => match state.as_str() {
                "active" => Ok(ServerAction::ResetState(VmState::Active)),
                "error" => Ok(ServerAction::ResetState(VmState::Error)),
                _ => Err(bad(
                    "state",
                    &format!("Value: {state}. '{state}' is not one of ['active', 'error']"),
                )),
            },
            B::ConsoleOutput(args) => {
                let length = match args.and_then(|a| a.length) {
                    None => None,
                    // -1 means everything, as in Nova.
                    Some(n) => u32::try_from(n.int("length", -1)?).ok(),
                };
                Ok(ServerAction::ConsoleOutput { length })
            }
            B::VncConsole(VncConsoleRequest { console_type }) => Ok(ServerAction::VncConsole {
                console_type: non_empty(console_type, "os-getVNCConsole", "type")?,
            }),
            B::Rebuild(r) => {
                if r.name
                    .as_ref()
                    .is_some_and(|n| n.trim().is_empty() || n.len() > 255)
                {
                    return Err(bad(
                        "name",
                        "Value must be a non-empty string of at most 255 characters.",
                    ));
                }
                Ok(ServerAction::Rebuild(RebuildArgs {
                    image_id: ref_id(&r.image_ref.text(), "imageRef")?,
                    name: r.name,
                    metadata: r
                        .metadata
                        .map(|m| checked_metadata(m, "metadata"))
                        .transpose()?,
                    admin_pass: r.admin_pass,
                    description: r
                        .description
                        .map(crate::api::body::checked_description)
                        .transpose()?,
                    key_name: r.key_name,
                    user_data: r
                        .user_data
                        .map(|u| super::create::user_data_of(u.as_deref()))
                        .transpose()?,
                    personality: r.personality.is_some(),
                    trusted_image_certificates: r.trusted_image_certificates,
                    hostname: r.hostname,
                    reimage_allowed: false,
                }))
            }
            B::CreateImage(c) => Ok(ServerAction::CreateImage(image_args(
                c.name, c.metadata, None,
            )?)),
            B::CreateBackup(c) => {
                let backup_type = non_empty(c.backup_type, "createBackup", "backup_type")?;
                let rotation = c.rotation.int("rotation", 0)?;
                Ok(ServerAction::CreateImage(image_args(
                    c.name,
                    c.metadata,
                    Some((backup_type, rotation)),
                )?))
            }
            B::Rescue(r) => {
                let r = r.unwrap_or(RescueRequest {
                    admin_pass: None,
                    rescue_image_ref: None,
                });
                if let Some(image) = &r.rescue_image_ref {
                    if uuid::Uuid::parse_str(image).is_err() {
                        let why = format!("Value: {image}. '{image}' is not a 'uuid'");
                        return Err(bad("rescue_image_ref", &why));
                    }
                }
                Ok(ServerAction::Rescue(super::rescue::RescueArgs {
                    admin_pass: r.admin_pass,
                    image_ref: r.rescue_image_ref,
                    volume_backed_allowed: false,
                }))
            }
            B::Unrescue(_) => Ok(ServerAction::Unrescue),
            B::Shelve(_) => Ok(ServerAction::Shelve),
            B::ShelveOffload(_) => Ok(ServerAction::ShelveOffload),
            B::Unshelve(r) => Ok(ServerAction::Unshelve {
                target: Default::default(),
                given: r.0,
            }),
            B::Restore(_) => Ok(ServerAction::Restore),
            B::ForceDelete(_) => Ok(ServerAction::ForceDelete),
            B::InjectNetworkInfo(_) => Ok(ServerAction::InjectNetworkInfo),
            B::ResetNetwork(_) => Ok(ServerAction::ResetNetwork),
            B::AddFloatingIp(a) => Ok(ServerAction::AddFloatingIp {
                address: ip(a.address, "address")?,
                fixed_address: a
                    .fixed_address
                    .map(|f| ip(f, "fixed_address"))
                    .transpose()?,
            }),
            B::RemoveFloatingIp(a) => Ok(ServerAction::RemoveFloatingIp {
                address: ip(a.address, "address")?,
            }),
            B::AddSecurityGroup(g) => Ok(ServerAction::AddSecurityGroup(non_empty(
                g.name,
                "addSecurityGroup",
                "name",
            )?)),
            B::RemoveSecurityGroup(g) => Ok(ServerAction::RemoveSecurityGroup(non_empty(
                g.name,
                "removeSecurityGroup",
                "name",
            )?)),
            B::Resize(r) => Ok(ServerAction::Resize {
                flavor_ref: ref_id(&r.flavor_ref.text(), "flavorRef")?,
            }),
            B::ConfirmResize(_) => Ok(ServerAction::ConfirmResize),
            B::RevertResize(_) => Ok(ServerAction::RevertResize),
            B::Migrate(m) => Ok(ServerAction::Migrate {
                live: false,
                live_fields: None,
                host: m.and_then(|m| m.host),
            }),
            B::MigrateLive(m) => {
                let fields = LiveMigrateFields {
                    block_migration: m.block_migration.map(|b| match b {
                        BoolOrString::Bool(b) => b.to_string(),
                        BoolOrString::Text(t) => t,
                    }),
                    disk_over_commit: m.disk_over_commit.is_some(),
                    host: m.host.is_some(),
                    force: m.force.is_some(),
                    force_value: m.force.as_ref().is_some_and(BoolOrString::truth),
                    skip_scheduler: false,
                    background_checks: false,
                };
                Ok(ServerAction::Migrate {
                    live: true,
                    host: m.host.flatten(),
                    live_fields: Some(fields),
                })
            }
            B::Evacuate(e) => Ok(ServerAction::Evacuate(super::evacuate::EvacuateArgs {
                host: e.host,
                on_shared_storage: e.on_shared_storage.as_ref().map(BoolOrString::truth),
                admin_pass: e.admin_pass,
                force: e.force.as_ref().map(BoolOrString::truth),
                stop_at_destination: false,
            })),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    /// As the API reads a body: parsed, then checked.
    fn parse(v: Value) -> Result<ServerAction> {
        let body: ServerActionBody = ferrostack_core::http::parse_json(v.to_string().as_bytes())?;
        ServerAction::try_from(body)
    }

    #[test]
    fn actions_parse_into_the_enum() {
        assert_eq!(
            parse(json!({"reboot": {"type": "hard"}})).unwrap(),
            ServerAction::Power(PowerAction::Reboot(RebootKind::Hard))
        );
        assert_eq!(
            parse(json!({"os-stop": null})).unwrap(),
            ServerAction::Power(PowerAction::Stop)
        );
        assert_eq!(
            parse(json!({"unlock": {"x": 1}})).unwrap(),
            ServerAction::Unlock,
            "arguments an action takes none of are ignored"
        );
        assert_eq!(
            parse(json!({"os-getConsoleOutput": {"length": "5"}})).unwrap(),
            ServerAction::ConsoleOutput { length: Some(5) }
        );
        assert_eq!(
            parse(json!({"os-getConsoleOutput": {"length": -1}})).unwrap(),
            ServerAction::ConsoleOutput { length: None }
        );
        assert_eq!(
            parse(json!({"os-getConsoleOutput": null})).unwrap(),
            ServerAction::ConsoleOutput { length: None }
        );
        assert_eq!(
            parse(json!({"resize": {"flavorRef": "http://nova/flavors/2"}})).unwrap(),
            ServerAction::Resize {
                flavor_ref: "2".into()
            }
        );
        assert!(parse(json!({"reboot": {"type": "gentle"}})).is_err());
        assert!(parse(json!({"os-resetState": {"state": "stopped"}})).is_err());
        assert!(parse(json!({"os-getConsoleOutput": {"length": -2}})).is_err());
        assert!(parse(json!({"addFloatingIp": {"address": "10.0.0.300"}})).is_err());
        assert!(parse(json!({"levitate": {}})).is_err());
        assert!(parse(json!({"pause": null, "unpause": null})).is_err());
        assert!(parse(json!({})).is_err());
        assert!(parse(json!("pause")).is_err());
        assert_eq!(
            parse(json!({"evacuate": {"onSharedStorage": "True", "host": "h2"}})).unwrap(),
            ServerAction::Evacuate(super::super::evacuate::EvacuateArgs {
                host: Some("h2".into()),
                on_shared_storage: Some(true),
                admin_pass: None,
                force: None,
                stop_at_destination: false,
            })
        );
        assert!(parse(json!({"evacuate": {"force": true, "fast": true}})).is_err());
        assert!(matches!(
            parse(json!({"createBackup": {"name": "b", "backup_type": "daily", "rotation": 2}})).unwrap(),
            ServerAction::CreateImage(ImageArgs { backup: Some((ref t, 2)), .. }) if t == "daily"
        ));
    }

    #[test]
    fn the_schema_is_one_of_the_action_bodies() {
        let schema = schemars::schema_for!(ServerActionBody).to_value();
        let bodies = schema["oneOf"].as_array().expect("oneOf");
        assert_eq!(bodies.len(), 36);
        let reboot = bodies
            .iter()
            .find(|b| b["required"] == json!(["reboot"]))
            .expect("reboot");
        assert_eq!(reboot["additionalProperties"], json!(false));
    }
}
