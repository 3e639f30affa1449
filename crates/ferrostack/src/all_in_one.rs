//! `ferrostack all-in-one`: every service in one process.

use ferrostack_core::config::Config;
use std::net::SocketAddr;
use tokio::net::TcpListener;

pub async fn run(cfg: Config) -> anyhow::Result<()> {
    let data_dir = cfg.common.data_dir.clone();
    let bus = ferrostack_bus::open(&cfg.bus.url)?;

    let identity = ferrostack_identity::open(&cfg, bus.clone())
        .await
        .map_err(anyhow::Error::msg)?;
    let first_start =
        ferrostack_identity::store::users::get_by_name(&identity.db, "default", "admin")
            .await?
            .is_none();
    if first_start {
        tracing::info!("first start: bootstrapping identity");
        let report = ferrostack_identity::bootstrap::run(&identity).await?;
        tracing::info!(created = report.created.len(), "bootstrap done");
    }
    identity.spawn_background();
    crate::credentials::write(&cfg, &data_dir)?;

    let image = ferrostack_image::open(&cfg, bus.clone())
        .await
        .map_err(anyhow::Error::msg)?;

    // In one process, services validate tokens with identity directly.
    let validator: ferrostack_core::auth::SharedValidator = std::sync::Arc::new(
        ferrostack_identity::service::LocalValidator(identity.clone()),
    );
    let auth_uri = format!("{}/v3", cfg.public_url(cfg.identity.public_port));
    let identity_api = ferrostack_identity::api::router(identity.clone());
    let image_api = ferrostack_image::api::router(image.clone(), validator.clone(), &auth_uri);
    let network = ferrostack_network::open(&cfg, bus.clone())
        .await
        .map_err(anyhow::Error::msg)?;
    let network_api =
        ferrostack_network::api::router(network.clone(), validator.clone(), &auth_uri);

    let mut servers = tokio::task::JoinSet::new();
    let mut listening = Vec::new();
    for (name, port, app) in [
        ("identity", cfg.identity.public_port, identity_api.clone()),
        ("identity (admin)", cfg.identity.admin_port, identity_api),
        ("image", cfg.image.port, image_api),
        ("network", cfg.network.port, network_api),
    ] {
        let addr: SocketAddr = format!("{}:{port}", cfg.common.bind_host).parse()?;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {addr} for {name}: {e}"))?;
        listening.push(format!(
            "  {name:<18} http://{}:{port}",
            cfg.common.public_host
        ));
        servers.spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown_signal())
                .await
        });
    }

    println!("Ferrostack all-in-one is running.");
    for l in &listening {
        println!("{l}");
    }
    println!("  data directory     {}", data_dir.display());
    println!("  admin credentials  source {}/openrc", data_dir.display());
    println!(
        "  demo credentials   source {}/openrc-demo",
        data_dir.display()
    );
    println!(
        "  clouds.yaml        {}/clouds.yaml (clouds: ferrostack, ferrostack-demo)",
        data_dir.display()
    );

    while let Some(res) = servers.join_next().await {
        res??;
    }
    identity.db.pool.close().await;
    image.db.pool.close().await;
    network.db.pool.close().await;
    println!("Ferrostack stopped.");
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term.recv() => {},
    }
}
