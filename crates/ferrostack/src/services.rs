//! Running services: `all-in-one` (everything, bootstrapped, one process)
//! and `serve` (a chosen set, as one node of a multi-node cloud). Services
//! that run without identity in the same process validate tokens through
//! the identity API with their service user, as keystonemiddleware does.

use ferrostack_core::auth::SharedValidator;
use ferrostack_core::config::Config;
use ferrostack_core::service_client::{RemoteTokenValidator, ServiceClient, ServiceCredentials};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    Identity,
    Image,
    Network,
    Compute,
    Volume,
}

impl Service {
    pub const ALL: [Service; 5] = [
        Service::Identity,
        Service::Image,
        Service::Network,
        Service::Compute,
        Service::Volume,
    ];

    pub fn parse(name: &str) -> Result<Service, String> {
        match name.trim() {
            "identity" | "keystone" => Ok(Service::Identity),
            "image" | "glance" => Ok(Service::Image),
            "network" | "neutron" => Ok(Service::Network),
            "compute" | "nova" => Ok(Service::Compute),
            "volume" | "block-storage" | "cinder" => Ok(Service::Volume),
            other => Err(format!(
                "unknown service '{other}' (identity, image, network, compute, volume)"
            )),
        }
    }

    /// The services of a seed node role that exist in this build.
    pub fn for_role(role: &str) -> Result<Vec<Service>, String> {
        match role {
            "controller" => Ok(Service::ALL.to_vec()),
            other => Err(format!(
                "role '{other}' needs a bus between hosts (AMQP), which this build does not have yet; use 'controller' or --services"
            )),
        }
    }

    /// The service user that validates tokens for this service (the seed's).
    fn service_user(self) -> &'static str {
        match self {
            Service::Identity => "keystone",
            Service::Image => "glance",
            Service::Network => "neutron",
            Service::Compute => "nova",
            Service::Volume => "cinder",
        }
    }
}

fn remote_validator(cfg: &Config, service: Service) -> SharedValidator {
    let client = ServiceClient::new(ServiceCredentials::for_user(cfg, service.service_user()));
    Arc::new(RemoteTokenValidator::new(
        client,
        Duration::from_secs(cfg.service_auth.token_cache_seconds),
    ))
}

/// Run `services`; `all_in_one` also bootstraps identity on first start and
/// writes the credential files.
pub async fn run(cfg: Config, services: &[Service], all_in_one: bool) -> anyhow::Result<()> {
    let data_dir = cfg.common.data_dir.clone();
    let bus = ferrostack_bus::open(&cfg.bus.url)?;
    let auth_uri = cfg.service_auth_url();
    let mut apps: Vec<(&str, u16, axum::Router)> = Vec::new();
    let mut agents = None;
    let mut compute_agent = None;
    let mut pools = Vec::new();

    let identity = if services.contains(&Service::Identity) {
        let identity = ferrostack_identity::open(&cfg, bus.clone())
            .await
            .map_err(anyhow::Error::msg)?;
        if all_in_one {
            let first_start =
                ferrostack_identity::store::users::get_by_name(&identity.db, "default", "admin")
                    .await?
                    .is_none();
            if first_start {
                tracing::info!("first start: bootstrapping identity");
                let report = ferrostack_identity::bootstrap::run(&identity).await?;
                tracing::info!(created = report.created.len(), "bootstrap done");
            } else {
                // An upgraded cloud loses the catalog entries an earlier
                // bootstrap made for services nothing here serves.
                let mut report = ferrostack_identity::bootstrap::Report::default();
                ferrostack_identity::bootstrap::retire_unserved(&identity, &mut report).await?;
            }
            crate::credentials::write(&cfg, &data_dir)?;
        }
        identity.spawn_background();
        let api = ferrostack_identity::api::router(identity.clone());
        apps.push(("identity", cfg.identity.public_port, api.clone()));
        apps.push(("identity (admin)", cfg.identity.admin_port, api));
        pools.push(identity.db.pool.clone());
        Some(identity)
    } else {
        None
    };
    // With identity in this process, services validate tokens directly.
    let validator_for = |service: Service| -> SharedValidator {
        match &identity {
            Some(i) => Arc::new(ferrostack_identity::service::LocalValidator(i.clone())),
            None => remote_validator(&cfg, service),
        }
    };
    if services.contains(&Service::Image) {
        let image = ferrostack_image::open(&cfg, bus.clone())
            .await
            .map_err(anyhow::Error::msg)?;
        apps.push((
            "image",
            cfg.image.port,
            ferrostack_image::api::router(image.clone(), validator_for(Service::Image), &auth_uri),
        ));
        pools.push(image.db.pool.clone());
    }
    if services.contains(&Service::Volume) {
        let volume = ferrostack_volume::open(&cfg, bus.clone())
            .await
            .map_err(anyhow::Error::msg)?;
        apps.push((
            "volume",
            cfg.volume.port,
            ferrostack_volume::api::router(
                volume.clone(),
                validator_for(Service::Volume),
                &auth_uri,
            ),
        ));
        pools.push(volume.db.pool.clone());
    }
    if services.contains(&Service::Network) {
        let network = ferrostack_network::open(&cfg, bus.clone())
            .await
            .map_err(anyhow::Error::msg)?;
        apps.push((
            "network",
            cfg.network.port,
            ferrostack_network::api::router(
                network.clone(),
                validator_for(Service::Network),
                &auth_uri,
            ),
        ));
        pools.push(network.db.pool.clone());
        if cfg.network_agent.enabled {
            agents = start_network_agents(&cfg, bus.clone()).await;
        }
    }

    if services.contains(&Service::Compute) {
        let compute = ferrostack_compute::open(&cfg, bus.clone())
            .await
            .map_err(anyhow::Error::msg)?;
        apps.push((
            "compute",
            cfg.compute.port,
            ferrostack_compute::api::router(
                compute.clone(),
                validator_for(Service::Compute),
                &auth_uri,
            ),
        ));
        // Nova's metadata API (guests reach it through the network
        // agents' signing proxy) and nova-novncproxy.
        apps.push((
            "metadata",
            cfg.metadata.port,
            ferrostack_compute::metadata_router(&compute),
        ));
        if cfg.console.enabled {
            apps.push((
                "console (noVNC)",
                cfg.console.port,
                ferrostack_compute::console_router(&compute),
            ));
        }
        pools.push(compute.db.pool.clone());
        // This host's hypervisor: with the API in one process (the
        // all-in-one), or a controller that also computes.
        let agent = ferrostack_compute::start_agent(&cfg, bus.clone())
            .await
            .map_err(anyhow::Error::msg)?;
        compute_agent = Some(format!(
            "host {} (driver {})",
            cfg.common.host,
            agent.driver.kind()
        ));
        std::mem::forget(agent);
    }

    let mut servers = tokio::task::JoinSet::new();
    let mut listening = Vec::new();
    let limits = cfg.common.http_limits(apps.len());
    for (name, port, app) in apps {
        let addr: SocketAddr = format!("{}:{port}", cfg.common.bind_host).parse()?;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {addr} for {name}: {e}"))?;
        listening.push(format!(
            "  {name:<18} http://{}:{port}",
            cfg.common.public_host
        ));
        servers.spawn(ferrostack_core::server::serve(
            listener,
            app,
            limits,
            shutdown_signal(),
        ));
    }
    tracing::info!(
        max_connections = limits.max_connections,
        header_read_timeout = ?limits.header_read_timeout,
        body_read_timeout = ?limits.body_read_timeout,
        "API listeners bounded"
    );

    println!(
        "Ferrostack {} is running.",
        if all_in_one { "all-in-one" } else { "node" }
    );
    for l in &listening {
        println!("{l}");
    }
    println!("  data directory     {}", data_dir.display());
    if all_in_one {
        println!("  admin credentials  source {}/openrc", data_dir.display());
        println!(
            "  demo credentials   source {}/openrc-demo",
            data_dir.display()
        );
        println!(
            "  clouds.yaml        {}/clouds.yaml (clouds: ferrostack, ferrostack-demo)",
            data_dir.display()
        );
    } else if identity.is_none() {
        println!("  tokens checked at  {auth_uri}");
    }

    if let Some(a) = &agents {
        println!("  network agents     {a}");
    }
    if let Some(a) = &compute_agent {
        println!("  compute agent      {a}");
    }

    while let Some(res) = servers.join_next().await {
        res??;
    }
    for p in pools {
        p.close().await;
    }
    println!("Ferrostack stopped.");
    Ok(())
}

/// The L2, DHCP and L3 agents of this host, beside the network service (they
/// share its bus). Without root or the tools they need, the cloud still
/// runs, with the API only; the reason is logged.
async fn start_network_agents(cfg: &Config, bus: ferrostack_bus::SharedBus) -> Option<String> {
    let settings = match ferrostack_netagent::Settings::from_config(cfg) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("network agents not started: {e}");
            return None;
        }
    };
    let summary = format!(
        "host {} ({}{}{})",
        settings.host,
        if settings.l2 { "l2 " } else { "" },
        if settings.dhcp { "dhcp " } else { "" },
        if settings.l3 { "l3+metadata" } else { "" }
    );
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        tracing::warn!("network agents not started: they need root (networking API only)");
        return None;
    }
    match ferrostack_netagent::start(settings, bus).await {
        Ok(agents) => {
            // They run for the life of the process.
            std::mem::forget(agents);
            Some(summary)
        }
        Err(e) => {
            tracing::warn!("network agents not started: {e} (networking API only)");
            None
        }
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term.recv() => {},
    }
}
