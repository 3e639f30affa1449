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

use crate::roles::Service;

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
    // A broker that cannot be reached stops the start here, naming the field.
    let bus = ferrostack_bus::connect(&cfg.bus.url, std::time::Duration::from_secs(15))
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "{} = {}: {e}",
                cfg.origin("bus", "url"),
                ferrostack_core::redact_url(&cfg.bus.url)
            )
        })?;
    if !all_in_one {
        crate::preflight::databases(&cfg, services).await?;
    }
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
    // Metering subscribes to notifications before the services that
    // publish them start, so none sent from here on is missed.
    if services.contains(&Service::Telemetry) {
        let telemetry = ferrostack_telemetry::open(&cfg, bus.clone())
            .await
            .map_err(anyhow::Error::msg)?;
        let validator = validator_for(Service::Telemetry);
        apps.push((
            "metering",
            cfg.telemetry.metering_port,
            ferrostack_telemetry::api::ceilometer_router(
                telemetry.clone(),
                validator.clone(),
                &auth_uri,
            ),
        ));
        apps.push((
            "metric",
            cfg.telemetry.metric_port,
            ferrostack_telemetry::api::gnocchi_router(
                telemetry.clone(),
                validator.clone(),
                &auth_uri,
            ),
        ));
        apps.push((
            "alarming",
            cfg.telemetry.alarm_port,
            ferrostack_telemetry::api::aodh_router(telemetry.clone(), validator, &auth_uri),
        ));
        pools.push(telemetry.db.pool.clone());
    }
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
    if services.contains(&Service::Object) {
        let object = ferrostack_object::open(&cfg)
            .await
            .map_err(anyhow::Error::msg)?;
        apps.push((
            "object",
            cfg.object.port,
            ferrostack_object::api::router(
                object.clone(),
                validator_for(Service::Object),
                &auth_uri,
            ),
        ));
        pools.push(object.db.pool.clone());
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
    }

    // This host's agents, after the services they report to when those
    // run here too (the all-in-one).
    if services.iter().any(|s| s.is_network_agent()) {
        agents = if all_in_one {
            if cfg.network_agent.enabled {
                start_network_agents(&cfg, bus.clone()).await
            } else {
                None
            }
        } else {
            Some(start_node_network_agents(&cfg, services, bus.clone()).await?)
        };
    }
    if services.contains(&Service::ComputeAgent) {
        let agent = ferrostack_compute::start_agent(&cfg, bus.clone())
            .await
            .map_err(|e| anyhow::anyhow!("compute agent: {e}"))?;
        compute_agent = Some(format!(
            "host {} (driver {})",
            cfg.common.host,
            agent.driver.kind()
        ));
        std::mem::forget(agent);
    }

    // The dashboard comes with identity (the all-in-one and the
    // controller, where the seed serves Horizon); it reaches every API
    // over HTTP through the catalog, like any client.
    if cfg.dashboard.enabled && services.contains(&Service::Identity) {
        apps.push((
            "dashboard",
            cfg.dashboard.port,
            ferrostack_dashboard::router(ferrostack_dashboard::Settings::from_config(&cfg)),
        ));
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
    } else if identity.is_none() && !listening.is_empty() {
        println!("  tokens checked at  {auth_uri}");
    }

    if let Some(a) = &agents {
        println!("  network agents     {a}");
    }
    if let Some(a) = &compute_agent {
        println!("  compute agent      {a}");
    }

    if servers.is_empty() {
        // A node of agents only: they run until the process is told to stop.
        shutdown_signal().await;
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

/// The network agents a node was asked to run, after checking this host
/// has what their settings name; any failure stops the node's start.
async fn start_node_network_agents(
    cfg: &Config,
    services: &[Service],
    bus: ferrostack_bus::SharedBus,
) -> anyhow::Result<String> {
    let mut c = cfg.clone();
    c.network_agent.agents = [
        (Service::L2Agent, "l2"),
        (Service::DhcpAgent, "dhcp"),
        (Service::L3Agent, "l3"),
    ]
    .iter()
    .filter(|(s, _)| services.contains(s))
    .map(|(_, n)| *n)
    .collect::<Vec<_>>()
    .join(",");
    let settings = ferrostack_netagent::Settings::from_config(&c).map_err(anyhow::Error::msg)?;
    crate::preflight::network_host(cfg, &settings).await?;
    let summary = format!("host {} ({})", settings.host, c.network_agent.agents);
    let agents = ferrostack_netagent::start(settings, bus)
        .await
        .map_err(|e| anyhow::anyhow!("network agents: {e}"))?;
    // They run for the life of the process.
    std::mem::forget(agents);
    Ok(summary)
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term.recv() => {},
    }
}
