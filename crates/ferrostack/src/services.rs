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

/// The HTTP applications a process serves, each with its name and port,
/// and the database pools to close once they stop.
#[derive(Default)]
struct Apps {
    apps: Vec<(&'static str, u16, axum::Router)>,
    dbs: Vec<ferrostack_db::Db>,
}

impl Apps {
    fn add(&mut self, name: &'static str, port: u16, app: axum::Router) {
        self.apps.push((name, port, app));
    }
}

/// Run `services`; `all_in_one` also bootstraps identity on first start and
/// writes the credential files.
pub async fn run(cfg: Config, services: &[Service], all_in_one: bool) -> anyhow::Result<()> {
    let bus = connect_bus(&cfg).await?;
    if !all_in_one {
        crate::preflight::databases(&cfg, services).await?;
    }
    let mut apps = Apps::default();
    let identity = if services.contains(&Service::Identity) {
        Some(start_identity(&cfg, &bus, all_in_one, &mut apps).await?)
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
    start_apis(&cfg, services, &bus, &validator_for, &mut apps).await?;
    let agents = start_agents(&cfg, services, &bus, all_in_one).await?;
    // The dashboard comes with identity (the all-in-one and the
    // controller, where the seed serves Horizon); it reaches every API
    // over HTTP through the catalog, like any client.
    if cfg.dashboard.enabled && identity.is_some() {
        let settings = ferrostack_dashboard::Settings::from_config(&cfg);
        apps.add(
            "dashboard",
            cfg.dashboard.port,
            ferrostack_dashboard::router(settings),
        );
    }
    let dbs = std::mem::take(&mut apps.dbs);
    let (mut servers, listening) = listen(&cfg, apps.apps).await?;
    print_banner(&cfg, all_in_one, identity.is_some(), &listening, &agents);
    if servers.is_empty() {
        // A node of agents only: they run until the process is told to stop.
        shutdown_signal().await;
    }
    while let Some(res) = servers.join_next().await {
        res??;
    }
    for db in dbs {
        db.pool.close().await;
    }
    println!("Ferrostack stopped.");
    Ok(())
}

/// A broker that cannot be reached stops the start here, naming the field.
async fn connect_bus(cfg: &Config) -> anyhow::Result<ferrostack_bus::SharedBus> {
    ferrostack_bus::connect(&cfg.bus.url, Duration::from_secs(15))
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "{} = {}: {e}",
                cfg.origin("bus", "url"),
                ferrostack_core::redact_url(&cfg.bus.url)
            )
        })
}

/// Identity and its two listeners; the all-in-one bootstraps it on first
/// start and writes the credential files.
async fn start_identity(
    cfg: &Config,
    bus: &ferrostack_bus::SharedBus,
    all_in_one: bool,
    apps: &mut Apps,
) -> anyhow::Result<Arc<ferrostack_identity::IdentityService>> {
    let identity = ferrostack_identity::open(cfg, bus.clone())
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
        crate::credentials::write(cfg, &cfg.common.data_dir)?;
    }
    identity.spawn_background();
    let api = ferrostack_identity::api::router(identity.clone());
    apps.add("identity", cfg.identity.public_port, api.clone());
    apps.add("identity (admin)", cfg.identity.admin_port, api);
    apps.dbs.push(identity.db.clone());
    Ok(identity)
}

/// Every API service of `services` but identity. Metering subscribes to
/// notifications first, so none the others send from their start is missed.
async fn start_apis(
    cfg: &Config,
    services: &[Service],
    bus: &ferrostack_bus::SharedBus,
    validator_for: &dyn Fn(Service) -> SharedValidator,
    apps: &mut Apps,
) -> anyhow::Result<()> {
    let auth_uri = cfg.service_auth_url();
    let auth_uri = auth_uri.as_str();
    let wanted = |s: Service| services.contains(&s);
    if wanted(Service::Telemetry) {
        let telemetry = ferrostack_telemetry::open(cfg, bus.clone())
            .await
            .map_err(anyhow::Error::msg)?;
        let validator = validator_for(Service::Telemetry);
        use ferrostack_telemetry::api::{aodh_router, ceilometer_router, gnocchi_router};
        let t = &telemetry;
        let ceilometer = ceilometer_router(t.clone(), validator.clone(), auth_uri);
        apps.add("metering", cfg.telemetry.metering_port, ceilometer);
        let gnocchi = gnocchi_router(t.clone(), validator.clone(), auth_uri);
        apps.add("metric", cfg.telemetry.metric_port, gnocchi);
        apps.add(
            "alarming",
            cfg.telemetry.alarm_port,
            aodh_router(t.clone(), validator, auth_uri),
        );
        apps.dbs.push(telemetry.db.clone());
    }
    if wanted(Service::Image) {
        let image = ferrostack_image::open(cfg, bus.clone())
            .await
            .map_err(anyhow::Error::msg)?;
        let api =
            ferrostack_image::api::router(image.clone(), validator_for(Service::Image), auth_uri);
        apps.add("image", cfg.image.port, api);
        apps.dbs.push(image.db.clone());
    }
    if wanted(Service::Object) {
        let object = ferrostack_object::open(cfg)
            .await
            .map_err(anyhow::Error::msg)?;
        let api = ferrostack_object::api::router(
            object.clone(),
            validator_for(Service::Object),
            auth_uri,
        );
        apps.add("object", cfg.object.port, api);
        apps.dbs.push(object.db.clone());
    }
    if wanted(Service::Volume) {
        let volume = ferrostack_volume::open(cfg, bus.clone())
            .await
            .map_err(anyhow::Error::msg)?;
        let api = ferrostack_volume::api::router(
            volume.clone(),
            validator_for(Service::Volume),
            auth_uri,
        );
        apps.add("volume", cfg.volume.port, api);
        apps.dbs.push(volume.db.clone());
    }
    if wanted(Service::Network) {
        let network = ferrostack_network::open(cfg, bus.clone())
            .await
            .map_err(anyhow::Error::msg)?;
        let api = ferrostack_network::api::router(
            network.clone(),
            validator_for(Service::Network),
            auth_uri,
        );
        apps.add("network", cfg.network.port, api);
        apps.dbs.push(network.db.clone());
    }
    if wanted(Service::Compute) {
        start_compute_apis(cfg, bus, validator_for(Service::Compute), auth_uri, apps).await?;
    }
    Ok(())
}

/// The compute API with Nova's metadata API (guests reach it through the
/// network agents' signing proxy) and nova-novncproxy.
async fn start_compute_apis(
    cfg: &Config,
    bus: &ferrostack_bus::SharedBus,
    validator: SharedValidator,
    auth_uri: &str,
    apps: &mut Apps,
) -> anyhow::Result<()> {
    let compute = ferrostack_compute::open(cfg, bus.clone())
        .await
        .map_err(anyhow::Error::msg)?;
    let api = ferrostack_compute::api::router(compute.clone(), validator, auth_uri);
    apps.add("compute", cfg.compute.port, api);
    apps.add(
        "metadata",
        cfg.metadata.port,
        ferrostack_compute::metadata_router(&compute),
    );
    if cfg.console.enabled {
        let console = ferrostack_compute::console_router(&compute);
        apps.add("console (noVNC)", cfg.console.port, console);
    }
    apps.dbs.push(compute.db.clone());
    Ok(())
}

/// What runs beside the APIs on this host, for the banner.
#[derive(Default)]
struct Agents {
    network: Option<String>,
    compute: Option<String>,
}

/// This host's agents, after the services they report to when those run
/// here too (the all-in-one).
async fn start_agents(
    cfg: &Config,
    services: &[Service],
    bus: &ferrostack_bus::SharedBus,
    all_in_one: bool,
) -> anyhow::Result<Agents> {
    let mut agents = Agents::default();
    if services.iter().any(|s| s.is_network_agent()) {
        agents.network = if !all_in_one {
            Some(start_node_network_agents(cfg, services, bus.clone()).await?)
        } else if cfg.network_agent.enabled {
            start_network_agents(cfg, bus.clone()).await
        } else {
            None
        };
    }
    if services.contains(&Service::ComputeAgent) {
        let agent = ferrostack_compute::start_agent(cfg, bus.clone())
            .await
            .map_err(|e| anyhow::anyhow!("compute agent: {e}"))?;
        agents.compute = Some(format!(
            "host {} (driver {})",
            cfg.common.host,
            agent.driver.kind()
        ));
        // The agent's tasks run for the life of the process.
        std::mem::forget(agent);
    }
    Ok(agents)
}

/// Bind every application's port (a port taken stops the start, naming
/// it) and serve each with the configured connection limits.
async fn listen(
    cfg: &Config,
    apps: Vec<(&'static str, u16, axum::Router)>,
) -> anyhow::Result<(tokio::task::JoinSet<std::io::Result<()>>, Vec<String>)> {
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
    Ok((servers, listening))
}

/// What a person starting the process needs: where each API listens and,
/// for the all-in-one, where the credentials are.
fn print_banner(
    cfg: &Config,
    all_in_one: bool,
    has_identity: bool,
    listening: &[String],
    agents: &Agents,
) {
    let data_dir = cfg.common.data_dir.display();
    println!(
        "Ferrostack {} is running.",
        if all_in_one { "all-in-one" } else { "node" }
    );
    for l in listening {
        println!("{l}");
    }
    println!("  data directory     {data_dir}");
    if all_in_one {
        println!("  admin credentials  source {data_dir}/openrc");
        println!("  demo credentials   source {data_dir}/openrc-demo");
        println!(
            "  clouds.yaml        {data_dir}/clouds.yaml (clouds: ferrostack, ferrostack-demo)"
        );
    } else if !has_identity && !listening.is_empty() {
        println!("  tokens checked at  {}", cfg.service_auth_url());
    }
    if let Some(a) = &agents.network {
        println!("  network agents     {a}");
    }
    if let Some(a) = &agents.compute {
        println!("  compute agent      {a}");
    }
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
