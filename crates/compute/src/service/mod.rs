//! The compute service layer: servers and their actions, flavors, key
//! pairs, quotas, services and hypervisors. The API layer calls in here;
//! long operations run as sagas (`crate::saga`), host work goes to compute
//! agents over the bus.

pub mod consoles;
pub mod flavors;
pub mod floating_ips;
pub mod keypairs;
pub mod metadata;
pub mod quotas;
pub mod servers;
pub mod x509;

use crate::clients::{ImageClient, NetworkClient, VolumeClient};
use crate::store::{self, hosts::ServiceRow, instances::Instance};
use ferrostack_bus::SharedBus;
use ferrostack_compute_agent::protocol::{call_agent, AgentError, AgentReply, AgentRequest};
use ferrostack_core::auth::AuthContext;
use ferrostack_core::config::Config;
use ferrostack_core::policy::Policy;
use ferrostack_core::service_client::{ServiceClient, ServiceCredentials};
use ferrostack_core::{Error, Result};
use ferrostack_db::Db;
use ferrostack_hypervisor::DriverError;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

tokio::task_local! {
    /// The request id of the API call being served.
    pub static REQUEST_ID: String;
}

pub use ferrostack_compute_agent::protocol::{agent_topic, CONDUCTOR_TOPIC};

/// An agent's failure as the API and a server's fault show it: the
/// driver's own message, with the status its kind calls for.
pub fn agent_error(e: AgentError) -> Error {
    match e {
        AgentError::Driver(d) => match d {
            DriverError::InstanceNotFound(m) => Error::NotFound(m),
            DriverError::InvalidState(m) => Error::Conflict(m),
            DriverError::InvalidImage(m) | DriverError::InvalidRequest(m) => Error::BadRequest(m),
            DriverError::NotSupported(m) => Error::NotImplemented(m),
            DriverError::HypervisorUnavailable(m) => Error::Unavailable(m),
            DriverError::Failed(m) => Error::Internal(m),
        },
        AgentError::Image(m) => Error::Unavailable(m),
        AgentError::BadRequest(m) => Error::Internal(m),
        AgentError::Unreachable(m) => Error::Unavailable(m),
    }
}

pub struct ComputeService {
    pub db: Db,
    pub config: Config,
    pub bus: SharedBus,
    pub network: NetworkClient,
    pub image: ImageClient,
    pub volume: VolumeClient,
    /// Saga steps made to fail (tests, `[compute] failpoints`).
    failpoints: Mutex<HashSet<String>>,
    /// Woken when an external event arrives (waiters also poll the database,
    /// for events received by another controller).
    pub events: tokio::sync::Notify,
    /// Woken when a saga ends (tests wait on it).
    pub saga_finished: tokio::sync::Notify,
    /// Nova's policy defaults with the operator's file over them.
    pub policy: Policy,
    /// Held while a server group member is placed: the next member then
    /// sees its claim (members of one request are scheduled by concurrent
    /// sagas, which otherwise each ignore the other).
    pub group_placement: tokio::sync::Mutex<()>,
}

/// A client acting as a service user of this deployment.
pub fn service_client(config: &Config, username: &str) -> Arc<ServiceClient> {
    Arc::new(ServiceClient::new(ServiceCredentials::for_user(
        config, username,
    )))
}

pub fn network_url(config: &Config) -> String {
    if config.compute.network_url.is_empty() {
        config.public_url(config.network.port)
    } else {
        config.compute.network_url.trim_end_matches('/').to_owned()
    }
}

pub fn image_url(config: &Config) -> String {
    if config.compute.image_url.is_empty() {
        config.public_url(config.image.port)
    } else {
        config.compute.image_url.trim_end_matches('/').to_owned()
    }
}

pub fn volume_url(config: &Config) -> String {
    if config.compute.volume_url.is_empty() {
        config.public_url(config.volume.port)
    } else {
        config.compute.volume_url.trim_end_matches('/').to_owned()
    }
}

impl ComputeService {
    /// The service on a migrated database; creates the default flavors.
    pub async fn new(db: Db, config: Config, bus: SharedBus) -> Result<Arc<Self>> {
        let policy = crate::policy::load(&config.compute.policy_file).map_err(Error::Internal)?;
        store::catalog::ensure_default_flavors(&db).await?;
        store::backfill_uuids(&db).await?;
        store::instances::backfill_list_columns(&db).await?;
        let client = service_client(&config, "nova");
        let failpoints = config
            .compute
            .failpoints
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        Ok(Arc::new(ComputeService {
            network: NetworkClient {
                client: client.clone(),
                base: network_url(&config),
            },
            image: ImageClient {
                client: client.clone(),
                base: image_url(&config),
            },
            volume: VolumeClient::new(client, volume_url(&config), config.service_auth_url()),
            db,
            config,
            bus,
            failpoints: Mutex::new(failpoints),
            events: tokio::sync::Notify::new(),
            saga_finished: tokio::sync::Notify::new(),
            group_placement: tokio::sync::Mutex::new(()),
            policy,
        }))
    }

    /// Nova's `context.is_admin`: what the `context_is_admin` rule says.
    pub fn is_admin(&self, ctx: &AuthContext) -> bool {
        self.policy
            .check("context_is_admin", ctx, &crate::policy::own_target(ctx))
    }

    /// Enforce `rule` on something of the caller's own project (Nova's
    /// default target), with Nova's 403.
    pub fn authorize(&self, ctx: &AuthContext, rule: &str) -> Result<()> {
        crate::policy::authorize(&self.policy, ctx, rule, &crate::policy::own_target(ctx))
    }

    /// Enforce `rule` on a resource of `project_id`.
    pub fn authorize_project(&self, ctx: &AuthContext, rule: &str, project_id: &str) -> Result<()> {
        crate::policy::authorize(
            &self.policy,
            ctx,
            rule,
            &crate::policy::project_target(project_id),
        )
    }

    /// Whether `rule` allows the caller on its own project.
    pub fn allows(&self, ctx: &AuthContext, rule: &str) -> bool {
        self.policy
            .check(rule, ctx, &crate::policy::own_target(ctx))
    }

    /// Make a saga step fail (tests); `None` clears every failpoint.
    pub fn set_failpoint(&self, step: Option<&str>) {
        let mut f = self.failpoints.lock().unwrap();
        match step {
            Some(s) => {
                f.insert(s.to_owned());
            }
            None => f.clear(),
        }
    }

    pub fn failpoint(&self, step: &str) -> Option<Error> {
        self.failpoints
            .lock()
            .unwrap()
            .contains(step)
            .then(|| Error::Internal(format!("Injected failure at step '{step}'.")))
    }

    /// Whether the test failpoint `name` is set (`twice:<step>`, `undo_twice`).
    pub fn failpoint_on(&self, name: &str) -> bool {
        self.failpoints.lock().unwrap().contains(name)
    }

    /// Whether to stop right after `step` as if the process died there
    /// (failpoint `crash_after:<step>`, for restart tests).
    pub fn crashpoint(&self, step: &str) -> bool {
        self.failpoints
            .lock()
            .unwrap()
            .contains(&format!("crash_after:{step}"))
    }

    /// Ask the compute agent of `host` and wait for its answer (long calls
    /// up to `long_rpc_timeout`). An agent that is not listening yet (a node
    /// starting up) is waited for up to the RPC timeout.
    pub async fn agent(&self, host: &str, request: AgentRequest) -> Result<AgentReply> {
        let c = &self.config.compute;
        let listening = Duration::from_secs(c.rpc_timeout);
        let reply = if request.is_long() {
            Duration::from_secs(c.long_rpc_timeout.max(c.rpc_timeout))
        } else {
            listening
        };
        call_agent(&self.bus, host, &request, listening, reply)
            .await
            .map_err(agent_error)
    }

    /// Whether a compute service is up: heartbeat recent and not forced down.
    pub fn is_up(&self, s: &ServiceRow) -> bool {
        if s.forced_down {
            return false;
        }
        let Some(at) = s
            .updated_at
            .as_deref()
            .and_then(ferrostack_core::time::parse)
        else {
            return false;
        };
        (chrono::Utc::now() - at).num_seconds() <= self.config.compute.service_down_time
    }

    /// An instance the caller may see (as [`Self::visible_instance`]), once
    /// `rule` allows the caller on the instance's project.
    pub async fn authorized_instance(
        &self,
        ctx: &AuthContext,
        id: &str,
        rule: &str,
    ) -> Result<Instance> {
        let i = self.visible_instance(ctx, id).await?;
        self.authorize_project(ctx, rule, &i.project_id)?;
        Ok(i)
    }

    /// An instance the caller may see: admins see all, others their
    /// project's. Anything else is a 404, as Nova answers.
    pub async fn visible_instance(&self, ctx: &AuthContext, id: &str) -> Result<Instance> {
        let not_found = || Error::NotFound(format!("Instance {id} could not be found."));
        let i = store::instances::get(&self.db, id)
            .await?
            .ok_or_else(not_found)?;
        if i.deleted || (!self.is_admin(ctx) && ctx.project_id.as_deref() != Some(&i.project_id)) {
            return Err(not_found());
        }
        Ok(i)
    }
}
