//! User messages (3.3+): when an asynchronous request fails where the
//! user cannot see why (no backend takes the volume), a message says so;
//! the user lists, reads and deletes them. Cinder's event ids name the
//! resource, the action and the detail (`VOLUME_VOLUME_001_003`).

use crate::service::VolumeService;
use crate::store::{self, messages::Message};
use ferrostack_core::auth::AuthContext;
use ferrostack_core::{Error, Result};

/// How long a message is kept (Cinder's `message_ttl`, 30 days).
const TTL_DAYS: i64 = 30;

/// What failed, with Cinder's action id and words.
#[derive(Clone, Copy, Debug)]
pub enum Action {
    ScheduleAllocateVolume,
}

/// Why, with Cinder's detail id and words.
#[derive(Clone, Copy, Debug)]
pub enum Detail {
    NoBackendAvailable,
}

impl Action {
    fn id_and_text(self) -> (&'static str, &'static str) {
        match self {
            Action::ScheduleAllocateVolume => ("001", "schedule allocate volume"),
        }
    }
}

impl Detail {
    fn id_and_text(self) -> (&'static str, &'static str) {
        match self {
            Detail::NoBackendAvailable => ("003", "Could not find any available weighted backend."),
        }
    }
}

pub fn message_not_found(id: &str) -> Error {
    Error::NotFound(format!("Message {id} could not be found."))
}

impl VolumeService {
    /// Record an error message about volume `volume_id` of `project_id`;
    /// a message that cannot be written is logged, never fatal.
    pub async fn record_message(
        &self,
        project_id: &str,
        volume_id: &str,
        action: Action,
        detail: Detail,
    ) {
        let (action_id, action_text) = action.id_and_text();
        let (detail_id, detail_text) = detail.id_and_text();
        let now = chrono::Utc::now();
        let m = Message {
            id: uuid::Uuid::new_v4().to_string(),
            project_id: project_id.to_owned(),
            request_id: format!("req-{}", uuid::Uuid::new_v4()),
            resource_type: "VOLUME".into(),
            resource_uuid: Some(volume_id.to_owned()),
            event_id: format!("VOLUME_VOLUME_{action_id}_{detail_id}"),
            message_level: "ERROR".into(),
            user_message: format!("{action_text}:{detail_text}"),
            created_at: ferrostack_core::time::iso_seconds(now),
            expires_at: ferrostack_core::time::iso_seconds(now + chrono::Duration::days(TTL_DAYS)),
        };
        if let Err(e) = store::messages::insert(&self.db, &m).await {
            tracing::warn!(volume = volume_id, error = %e, "user message not recorded");
        }
    }

    /// The messages `ctx` may read: its project's, or every project's
    /// for an admin asking `all_tenants`.
    pub async fn list_messages(&self, ctx: &AuthContext, all: bool) -> Result<Vec<Message>> {
        let now = store::now_str();
        store::messages::expire(&self.db, &now).await?;
        let scope = if all && self.is_admin(ctx) {
            None
        } else {
            Some(Self::project_of(ctx)?)
        };
        store::messages::list(&self.db, scope.as_deref(), &now).await
    }

    pub async fn visible_message(&self, ctx: &AuthContext, id: &str) -> Result<Message> {
        let m = store::messages::get(&self.db, id)
            .await?
            .ok_or_else(|| message_not_found(id))?;
        if ctx.project_id.as_deref() != Some(&m.project_id) && !self.is_admin(ctx) {
            return Err(message_not_found(id));
        }
        Ok(m)
    }
}
