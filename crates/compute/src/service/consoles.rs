//! Graphical consoles: `os-getVNCConsole` hands out a URL on the noVNC
//! proxy carrying a random token; the token is stored only as its hash,
//! bound to the instance and its console target, and expires after
//! `[console] token_ttl` (Nova's default 10 minutes). The proxy asks
//! [`ConsoleTokens`] whether a token opens a console.

use super::servers::conflict_state;
use super::ComputeService;
use crate::states::VmState;
use crate::store::{self, console_tokens::ConsoleToken, instances::Instance};
use ferrostack_compute_agent::protocol::{AgentReply, AgentRequest};
use ferrostack_console::{ConsoleAuthorizer, ConsoleConnection};
use ferrostack_core::auth::AuthContext;
use ferrostack_core::{Error, Result};
use ferrostack_hypervisor::ConsoleTarget;
use serde_json::{json, Value};
use std::sync::Arc;

fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

/// 32 random bytes, hex: what goes into the console URL.
fn new_token() -> String {
    use rand::RngCore;
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl ComputeService {
    /// `os-getVNCConsole`: a noVNC URL for the server's console.
    pub async fn vnc_console(
        &self,
        _ctx: &AuthContext,
        i: &Instance,
        console_type: &str,
    ) -> Result<Value> {
        if console_type != "novnc" {
            return Err(Error::BadRequest(format!(
                "Unavailable console type {console_type}."
            )));
        }
        if !self.config.console.enabled {
            return Err(Error::BadRequest("Unavailable console type novnc.".into()));
        }
        let host = match (&i.host, i.vm_state) {
            (Some(h), VmState::Active | VmState::Paused | VmState::Rescued) => h.clone(),
            _ => return Err(conflict_state("get_vnc_console", i)),
        };
        let target = match self
            .agent(
                &host,
                AgentRequest::VncConsole {
                    instance_id: i.id.clone(),
                },
            )
            .await?
        {
            AgentReply::Console(t) => t,
            other => {
                return Err(Error::Internal(format!(
                    "unexpected answer to vnc_console: {other:?}"
                )))
            }
        };
        let token = new_token();
        let access_url = format!(
            "{}?path=%3Ftoken%3D{token}",
            self.config.novncproxy_base_url()
        );
        let now = now_secs();
        store::console_tokens::delete_expired(&self.db, now).await?;
        store::console_tokens::insert(
            &self.db,
            &token,
            &ConsoleToken {
                console_type: "novnc".into(),
                instance_id: i.id.clone(),
                host,
                target: serde_json::to_string(&target).map_err(Error::internal)?,
                access_url: access_url.clone(),
                expires_at: now + self.config.console.token_ttl as i64,
            },
        )
        .await?;
        Ok(json!({"type": "novnc", "url": access_url}))
    }

    /// The console a token opens: unexpired, its instance still there and
    /// still on the host the token was made for.
    pub async fn authorize_console(&self, token: &str) -> Result<Option<ConsoleConnection>> {
        if token.is_empty() || token.len() > 256 {
            return Ok(None);
        }
        let Some(t) = store::console_tokens::find(&self.db, token, now_secs()).await? else {
            return Ok(None);
        };
        let live = store::instances::get(&self.db, &t.instance_id)
            .await?
            .filter(|i| !i.deleted && i.host.as_deref() == Some(t.host.as_str()));
        if live.is_none() {
            return Ok(None);
        }
        let target: ConsoleTarget = serde_json::from_str(&t.target).map_err(Error::internal)?;
        Ok(Some(ConsoleConnection {
            instance_id: t.instance_id,
            target,
        }))
    }
}

/// The compute service as the console proxy's token authority.
pub struct ConsoleTokens(pub Arc<ComputeService>);

#[async_trait::async_trait]
impl ConsoleAuthorizer for ConsoleTokens {
    async fn authorize(&self, token: &str) -> Option<ConsoleConnection> {
        match self.0.authorize_console(token).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "console token check failed");
                None
            }
        }
    }
}
