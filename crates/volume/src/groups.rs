//! Generic volume groups, as Cinder's (3.11–3.20): group types and their
//! specs (admin), groups of volumes of the group's volume types, group
//! snapshots (one ordinary snapshot per member volume) and groups made
//! from a group snapshot or another group (one new volume per source).
//!
//! The members are made by the volume and snapshot operations, which are
//! durable each; a group or group snapshot being made is `settling`: its
//! status follows its members' (error if one failed, available when all
//! are) until it settles, so no extra saga is needed and a restart
//! changes nothing. An admin's reset stops the following.

use crate::service::VolumeService;
use crate::snapshots::NewSnapshot;
use crate::store::groups::{self as gstore, Group, GroupSnapshot, GroupType};
use crate::store::{self, volumes::Volume};
use crate::volumes::NewVolume;
use ferrostack_core::auth::AuthContext;
use ferrostack_core::{Error, Result};
use serde_json::{Map, Value};
use std::sync::Arc;

pub fn group_type_not_found(id: &str) -> Error {
    Error::NotFound(format!("Group type with id {id} could not be found."))
}

pub fn group_not_found(id: &str) -> Error {
    Error::NotFound(format!("Group {id} could not be found."))
}

pub fn group_snapshot_not_found(id: &str) -> Error {
    Error::NotFound(format!("GroupSnapshot {id} could not be found."))
}

fn invalid_group(why: String) -> Error {
    Error::BadRequest(format!("Invalid group: {why}"))
}

/// The statuses an admin may reset a group or group snapshot to.
pub const RESETTABLE: &[&str] = &[
    "available",
    "error",
    "creating",
    "deleting",
    "updating",
    "in-use",
];

/// What a group create asks for, after the API checked its shape.
pub struct NewGroup {
    pub name: Option<String>,
    pub description: Option<String>,
    pub group_type: String,
    pub volume_types: Vec<String>,
    pub availability_zone: Option<String>,
}

/// Where a group made from a source takes its volumes.
pub enum GroupSource {
    Snapshot(String),
    Group(String),
}

impl VolumeService {
    /// A group type by id or name.
    pub async fn find_group_type(&self, id_or_name: &str) -> Result<GroupType> {
        if let Some(t) = gstore::get_type(&self.db, id_or_name).await? {
            return Ok(t);
        }
        gstore::get_type_by_name(&self.db, id_or_name)
            .await?
            .ok_or_else(|| group_type_not_found(id_or_name))
    }

    /// A group type the caller may use: public, or any for an admin.
    pub async fn visible_group_type(&self, ctx: &AuthContext, id: &str) -> Result<GroupType> {
        let t = self.find_group_type(id).await?;
        if t.is_public || self.is_admin(ctx) {
            Ok(t)
        } else {
            Err(group_type_not_found(id))
        }
    }

    pub async fn create_group_type(&self, t: GroupType) -> Result<GroupType> {
        if gstore::get_type_by_name(&self.db, &t.name).await?.is_some() {
            return Err(Error::Conflict(format!(
                "Group Type {} already exists.",
                t.name
            )));
        }
        gstore::insert_type(&self.db, &t).await?;
        Ok(t)
    }

    pub async fn update_group_type(&self, t: &GroupType) -> Result<()> {
        if let Some(other) = gstore::get_type_by_name(&self.db, &t.name).await? {
            if other.id != t.id {
                return Err(Error::Conflict(format!(
                    "Group Type {} already exists.",
                    t.name
                )));
            }
        }
        gstore::update_type(&self.db, t).await
    }

    pub async fn delete_group_type(&self, id: &str) -> Result<()> {
        let t = self.find_group_type(id).await?;
        if gstore::type_in_use(&self.db, &t.id).await? {
            return Err(Error::BadRequest(format!(
                "Invalid input received: Group Type {id} deletion is not allowed with groups present with the type."
            )));
        }
        gstore::delete_type(&self.db, &t.id).await
    }

    /// A group the caller may see (its project's, or any for an admin),
    /// its status settled.
    pub async fn visible_group(&self, ctx: &AuthContext, id: &str) -> Result<Group> {
        let g = gstore::get_group(&self.db, id)
            .await?
            .ok_or_else(|| group_not_found(id))?;
        if ctx.project_id.as_deref() != Some(&g.project_id) && !self.is_admin(ctx) {
            return Err(group_not_found(id));
        }
        self.settle_group(g).await
    }

    /// A settling group's status from its volumes': `error` if one failed,
    /// `available` once all are (recorded then).
    pub async fn settle_group(&self, mut g: Group) -> Result<Group> {
        if !g.settling {
            return Ok(g);
        }
        let vols = self.group_volumes(&g.id).await?;
        let status = if vols.iter().any(|v| v.status.starts_with("error")) {
            "error"
        } else if vols.iter().all(|v| v.status == "available") {
            "available"
        } else {
            return Ok(g);
        };
        gstore::set_group_status(&self.db, &g.id, status, false).await?;
        g.status = status.into();
        g.settling = false;
        Ok(g)
    }

    /// The volumes in group `group_id`.
    pub async fn group_volumes(&self, group_id: &str) -> Result<Vec<Volume>> {
        Ok(store::volumes::list(&self.db, None)
            .await?
            .into_iter()
            .filter(|v| v.group_id.as_deref() == Some(group_id))
            .collect())
    }

    /// Refuse a volume of type `volume_type_id` in group `group_id` unless
    /// the group is the caller's, available, and lists that type.
    pub async fn check_group_takes(
        &self,
        ctx: &AuthContext,
        group_id: &str,
        volume_type_id: &str,
    ) -> Result<()> {
        let g = self.visible_group(ctx, group_id).await?;
        if !matches!(g.status.as_str(), "available" | "in-use" | "creating") {
            return Err(invalid_group(format!(
                "Group {group_id} status must be available or in-use, but current status is: {}.",
                g.status
            )));
        }
        if !g.volume_type_ids.iter().any(|t| t == volume_type_id) {
            return Err(Error::BadRequest(format!(
                "Invalid input received: Invalid volume_type provided: {volume_type_id} is not one of group {group_id}'s volume types."
            )));
        }
        Ok(())
    }

    /// Record a group (`available` at once: a generic group needs nothing
    /// of the backend), under the project's `groups` quota.
    pub async fn create_group(&self, ctx: &AuthContext, req: NewGroup) -> Result<Group> {
        let project_id = Self::project_of(ctx)?;
        self.authorize(ctx, "group:create", &project_id)?;
        let gtype = self.visible_group_type(ctx, &req.group_type).await?;
        if req.volume_types.is_empty() {
            return Err(Error::BadRequest(
                "Invalid input received: volume_types must be provided to create group.".into(),
            ));
        }
        let mut type_ids = Vec::new();
        for t in &req.volume_types {
            let vt = self.find_type(t).await?;
            self.check_type_access(ctx, &vt).await?;
            type_ids.push(vt.id);
        }
        let zone = self.config.volume.storage_availability_zone.clone();
        if let Some(az) = req.availability_zone.as_ref().filter(|az| **az != zone) {
            return Err(Error::BadRequest(format!(
                "Invalid input received: Availability zone '{az}' is invalid."
            )));
        }
        let g = Group {
            id: uuid::Uuid::new_v4().to_string(),
            project_id: project_id.clone(),
            user_id: ctx.user_id.clone(),
            name: req.name,
            description: req.description,
            group_type_id: gtype.id,
            volume_type_ids: type_ids,
            status: "available".into(),
            settling: false,
            availability_zone: zone,
            group_snapshot_id: None,
            source_group_id: None,
            created_at: store::now_str(),
        };
        self.insert_group_under_quota(&g).await?;
        Ok(g)
    }

    /// Insert `g` if the project's `groups` quota allows one more.
    async fn insert_group_under_quota(&self, g: &Group) -> Result<()> {
        let mut tx = self
            .db
            .begin_under_quota_lock("project_id", &g.project_id)
            .await?;
        self.check_quotas_on(&mut tx, &g.project_id, &[("groups".to_owned(), 1)])
            .await?;
        gstore::insert_group_on(&self.db, &mut tx, g).await?;
        tx.commit().await.map_err(store::db_err)
    }

    /// Rename, describe, and move volumes in or out (`add`/`remove`: ids).
    pub async fn update_group(
        &self,
        ctx: &AuthContext,
        id: &str,
        name: Option<Option<String>>,
        description: Option<Option<String>>,
        add: &[String],
        remove: &[String],
    ) -> Result<()> {
        let g = self.visible_group(ctx, id).await?;
        self.authorize(ctx, "group:update", &g.project_id)?;
        if !matches!(g.status.as_str(), "available" | "in-use") {
            return Err(invalid_group(format!(
                "Group {id} status must be available or in-use, but current status is: {}.",
                g.status
            )));
        }
        for vid in add {
            let v = self.visible_volume(ctx, vid).await?;
            let fits = g.volume_type_ids.contains(&v.volume_type_id)
                && matches!(v.status.as_str(), "available" | "in-use")
                && v.group_id.as_deref().is_none_or(|other| other == id);
            if !fits {
                return Err(invalid_group(format!(
                    "Cannot add volume {vid} to group {id}: it must be available or in-use, of one of the group's volume types, and in no other group."
                )));
            }
        }
        for vid in remove {
            let v = self.visible_volume(ctx, vid).await?;
            if v.group_id.as_deref() != Some(id) {
                return Err(invalid_group(format!(
                    "Cannot remove volume {vid} from group {id}: it is not in the group."
                )));
            }
        }
        for vid in add {
            gstore::set_volume_group(&self.db, vid, Some(id)).await?;
        }
        for vid in remove {
            gstore::set_volume_group(&self.db, vid, None).await?;
        }
        let name = name.unwrap_or(g.name);
        let description = description.unwrap_or(g.description);
        gstore::update_group_text(&self.db, id, name.as_deref(), description.as_deref()).await
    }

    /// Delete a group; with `delete_volumes` its volumes go too (each by
    /// its own delete operation), without it a group that has volumes is
    /// refused. A group with group snapshots is refused.
    pub async fn delete_group(
        self: &Arc<Self>,
        ctx: &AuthContext,
        id: &str,
        delete_volumes: bool,
    ) -> Result<()> {
        let g = self.visible_group(ctx, id).await?;
        self.authorize(ctx, "group:delete", &g.project_id)?;
        if !matches!(g.status.as_str(), "available" | "error" | "in-use") {
            return Err(invalid_group(format!(
                "Group status must be available or error, but current status is: {}",
                g.status
            )));
        }
        let mut dependents = 0;
        for gs in gstore::snapshots_of_group(&self.db, id).await? {
            dependents += self.settle_group_snapshot(gs).await?.is_some() as usize;
        }
        if dependents > 0 {
            return Err(invalid_group(format!(
                "Group {id} still has dependent group snapshots."
            )));
        }
        let vols = self.group_volumes(id).await?;
        if !vols.is_empty() && !delete_volumes {
            return Err(invalid_group(format!(
                "Group {id} still contains volumes. The delete-volumes flag is required to delete it."
            )));
        }
        if let Some(v) = vols
            .iter()
            .find(|v| !crate::volumes::DELETABLE.contains(&v.status.as_str()))
        {
            return Err(invalid_group(format!(
                "Volume {} in group {id} is {}; it cannot be deleted.",
                v.id, v.status
            )));
        }
        gstore::set_group_status(&self.db, id, "deleting", false).await?;
        for v in &vols {
            self.delete_volume(ctx, &v.id, true).await?;
        }
        gstore::delete_group(&self.db, id).await
    }

    pub async fn reset_group_status(
        &self,
        ctx: &AuthContext,
        id: &str,
        status: &str,
    ) -> Result<()> {
        let g = self.visible_group(ctx, id).await?;
        self.authorize(ctx, "group:reset_status", &g.project_id)?;
        check_reset(status)?;
        gstore::set_group_status(&self.db, id, status, false).await
    }

    /// A new group like the source (its type and volume types), with a new
    /// volume made from each of the source's snapshots or volumes.
    pub async fn create_group_from_source(
        self: &Arc<Self>,
        ctx: &AuthContext,
        source: GroupSource,
        name: Option<String>,
        description: Option<String>,
    ) -> Result<Group> {
        let project_id = Self::project_of(ctx)?;
        self.authorize(ctx, "group:create", &project_id)?;
        let (like, members) = self.source_members(ctx, &source).await?;
        let g = Group {
            id: uuid::Uuid::new_v4().to_string(),
            project_id,
            user_id: ctx.user_id.clone(),
            name,
            description,
            group_type_id: like.group_type_id,
            volume_type_ids: like.volume_type_ids,
            status: "creating".into(),
            // Not following its volumes until they are all recorded (an
            // empty list would read as all available).
            settling: false,
            availability_zone: like.availability_zone,
            group_snapshot_id: match &source {
                GroupSource::Snapshot(id) => Some(id.clone()),
                GroupSource::Group(_) => None,
            },
            source_group_id: match &source {
                GroupSource::Group(id) => Some(id.clone()),
                GroupSource::Snapshot(_) => None,
            },
            created_at: store::now_str(),
        };
        self.insert_group_under_quota(&g).await?;
        for (kind, member) in members {
            if let Err(e) = self.member_volume(ctx, &g.id, kind, &member).await {
                tracing::warn!(group = %g.id, error = %e, "a volume of a group from a source failed");
                gstore::set_group_status(&self.db, &g.id, "error", false).await?;
                return Err(e);
            }
        }
        gstore::set_group_status(&self.db, &g.id, "creating", true).await?;
        Ok(g)
    }

    /// The group a source is like, and what each new volume is made from
    /// (`snapshot` or `volume`, and its id).
    async fn source_members(
        &self,
        ctx: &AuthContext,
        source: &GroupSource,
    ) -> Result<(Group, Vec<(&'static str, String)>)> {
        match source {
            GroupSource::Snapshot(id) => {
                let gs = self.visible_group_snapshot(ctx, id).await?;
                if gs.status != "available" {
                    return Err(Error::BadRequest(format!(
                        "Invalid input received: Group snapshot {id} status must be available."
                    )));
                }
                let group = gstore::get_group(&self.db, &gs.group_id)
                    .await?
                    .ok_or_else(|| group_not_found(&gs.group_id))?;
                let members = gstore::members(&self.db, id).await?;
                Ok((
                    group,
                    members.into_iter().map(|s| ("snapshot", s)).collect(),
                ))
            }
            GroupSource::Group(id) => {
                let group = self.visible_group(ctx, id).await?;
                if group.status != "available" {
                    return Err(invalid_group(format!(
                        "Source group {id} status must be available."
                    )));
                }
                let vols = self.group_volumes(id).await?;
                Ok((group, vols.into_iter().map(|v| ("volume", v.id)).collect()))
            }
        }
    }

    /// One volume of a group from a source, made like any volume made
    /// from a snapshot or a volume.
    async fn member_volume(
        self: &Arc<Self>,
        ctx: &AuthContext,
        group_id: &str,
        kind: &str,
        id: &str,
    ) -> Result<Volume> {
        let source = if kind == "snapshot" {
            self.snapshot_source(ctx, id).await?
        } else {
            self.volume_source(ctx, id).await?
        };
        let size = source.min_size;
        let req = NewVolume {
            size,
            name: None,
            description: None,
            metadata: Map::new(),
            volume_type: source.volume_type_id.clone(),
            availability_zone: None,
            source: Some(source),
            group_id: Some(group_id.to_owned()),
        };
        self.create_volume(ctx, req).await
    }

    /// A group snapshot the caller may see, its status settled.
    pub async fn visible_group_snapshot(
        &self,
        ctx: &AuthContext,
        id: &str,
    ) -> Result<GroupSnapshot> {
        let s = gstore::get_snapshot(&self.db, id)
            .await?
            .ok_or_else(|| group_snapshot_not_found(id))?;
        if ctx.project_id.as_deref() != Some(&s.project_id) && !self.is_admin(ctx) {
            return Err(group_snapshot_not_found(id));
        }
        self.settle_group_snapshot(s)
            .await?
            .ok_or_else(|| group_snapshot_not_found(id))
    }

    /// A settling group snapshot's status from its member snapshots':
    /// being made, `error` if one failed and `available` when all are;
    /// being deleted, gone (`None`) once they all are.
    pub async fn settle_group_snapshot(
        &self,
        mut s: GroupSnapshot,
    ) -> Result<Option<GroupSnapshot>> {
        if !s.settling {
            return Ok(Some(s));
        }
        let mut statuses = Vec::new();
        for id in gstore::members(&self.db, &s.id).await? {
            if let Some(m) = store::snapshots::get(&self.db, &id).await? {
                statuses.push(m.status);
            } else if s.status != "deleting" {
                statuses.push("error".into());
            }
        }
        let status = if s.status == "deleting" {
            if statuses.is_empty() {
                gstore::delete_snapshot(&self.db, &s.id).await?;
                return Ok(None);
            }
            if !statuses.iter().any(|st| st == "error_deleting") {
                return Ok(Some(s));
            }
            "error_deleting"
        } else if statuses.iter().any(|st| st.starts_with("error")) {
            "error"
        } else if statuses.iter().all(|st| st == "available") {
            "available"
        } else {
            return Ok(Some(s));
        };
        gstore::set_snapshot_status(&self.db, &s.id, status, false).await?;
        s.status = status.into();
        s.settling = false;
        Ok(Some(s))
    }

    /// Snapshot every volume of a group: one snapshot each (in-use ones
    /// too, as a group snapshot must), recorded as the group snapshot's
    /// members.
    pub async fn create_group_snapshot(
        self: &Arc<Self>,
        ctx: &AuthContext,
        group_id: &str,
        name: Option<String>,
        description: Option<String>,
    ) -> Result<GroupSnapshot> {
        let g = self.visible_group(ctx, group_id).await?;
        self.authorize(ctx, "group:create_group_snapshot", &g.project_id)?;
        if !matches!(g.status.as_str(), "available" | "in-use") {
            return Err(invalid_group(format!(
                "Group {group_id} status must be available or in-use, but current status is: {}.",
                g.status
            )));
        }
        let vols = self.group_volumes(group_id).await?;
        if let Some(v) = vols
            .iter()
            .find(|v| !matches!(v.status.as_str(), "available" | "in-use"))
        {
            return Err(invalid_group(format!(
                "Volume {} is {}: every volume of the group must be available or in-use.",
                v.id, v.status
            )));
        }
        let now = store::now_str();
        let gs = GroupSnapshot {
            id: uuid::Uuid::new_v4().to_string(),
            project_id: g.project_id.clone(),
            user_id: ctx.user_id.clone(),
            group_id: g.id.clone(),
            group_type_id: g.group_type_id.clone(),
            name,
            description,
            status: "creating".into(),
            // Following its members only once they are all recorded.
            settling: false,
            created_at: now,
        };
        gstore::insert_snapshot(&self.db, &gs).await?;
        for v in &vols {
            let req = NewSnapshot {
                volume_id: v.id.clone(),
                name: Some(format!("group-snapshot-{}", gs.id)),
                description: None,
                metadata: Map::new(),
                force: true,
            };
            match self.create_snapshot(ctx, req).await {
                Ok(s) => gstore::add_member(&self.db, &gs.id, &s.id).await?,
                Err(e) => {
                    gstore::set_snapshot_status(&self.db, &gs.id, "error", false).await?;
                    return Err(e);
                }
            }
        }
        gstore::set_snapshot_status(&self.db, &gs.id, "creating", true).await?;
        Ok(gs)
    }

    /// Delete a group snapshot and its member snapshots (each by its own
    /// delete operation).
    pub async fn delete_group_snapshot(
        self: &Arc<Self>,
        ctx: &AuthContext,
        id: &str,
    ) -> Result<()> {
        let gs = self.visible_group_snapshot(ctx, id).await?;
        self.authorize(ctx, "group:delete_group_snapshot", &gs.project_id)?;
        if !matches!(gs.status.as_str(), "available" | "error") {
            return Err(Error::BadRequest(format!(
                "Invalid input received: Group snapshot status must be available or error, and no CG can be currently using it as source for its creation. (status {})",
                gs.status
            )));
        }
        gstore::set_snapshot_status(&self.db, id, "deleting", false).await?;
        for member in gstore::members(&self.db, id).await? {
            let Some(s) = store::snapshots::get(&self.db, &member).await? else {
                continue;
            };
            if s.status != "deleting" {
                self.delete_snapshot(ctx, &s.id, false).await?;
            }
        }
        // Gone once its member snapshots are (see settle_group_snapshot).
        gstore::set_snapshot_status(&self.db, id, "deleting", true).await
    }

    pub async fn reset_group_snapshot_status(
        &self,
        ctx: &AuthContext,
        id: &str,
        status: &str,
    ) -> Result<()> {
        let gs = self.visible_group_snapshot(ctx, id).await?;
        self.authorize(ctx, "group:reset_group_snapshot_status", &gs.project_id)?;
        check_reset(status)?;
        gstore::set_snapshot_status(&self.db, id, status, false).await
    }
}

fn check_reset(status: &str) -> Result<()> {
    if RESETTABLE.contains(&status) {
        Ok(())
    } else {
        Err(Error::BadRequest(format!(
            "Invalid input received: Status {status} is not one of {}.",
            RESETTABLE.join(", ")
        )))
    }
}

/// The group specs of a type, or 404 for a key it does not have.
pub fn spec_of(t: &GroupType, key: &str) -> Result<Value> {
    t.group_specs
        .get(key)
        .cloned()
        .ok_or_else(|| Error::NotFound(format!("Group Type {} has no specs with key {key}.", t.id)))
}
