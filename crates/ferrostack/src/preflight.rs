//! Checks a node makes before it starts: each database it uses and this
//! host's addresses and bridges. A wrong configuration stops the start
//! with a message naming the option as the operator wrote it (the `[node]`
//! field when it came from there).

use crate::roles::Service;
use ferrostack_core::config::Config;
use std::time::Duration;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The database section of each API service this node runs.
fn database_of(cfg: &Config, s: Service) -> Option<(&'static str, &str)> {
    Some(match s {
        Service::Identity => ("identity", cfg.identity.database_url.as_str()),
        Service::Image => ("image", cfg.image.database_url.as_str()),
        Service::Network => ("network", cfg.network.database_url.as_str()),
        Service::Compute => ("compute", cfg.compute.database_url.as_str()),
        Service::Volume => ("volume", cfg.volume.database_url.as_str()),
        Service::Telemetry => ("telemetry", cfg.telemetry.database_url.as_str()),
        _ => return None,
    })
}

/// Connect once to each database the node's services use.
pub async fn databases(cfg: &Config, services: &[Service]) -> anyhow::Result<()> {
    for s in services {
        let Some((section, configured)) = database_of(cfg, *s) else {
            continue;
        };
        let url = cfg.database_url(section, configured);
        let attempt = tokio::time::timeout(
            CONNECT_TIMEOUT,
            ferrostack_db::Db::connect_with(&url, Some(1), CONNECT_TIMEOUT),
        )
        .await;
        let problem = match attempt {
            Ok(Ok(db)) => {
                db.pool.close().await;
                continue;
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer within {} s", CONNECT_TIMEOUT.as_secs()),
        };
        anyhow::bail!(
            "{} = {}: the {section} database is unreachable: {problem}",
            cfg.origin(section, "database_url"),
            ferrostack_core::redact_url(&url)
        );
    }
    Ok(())
}

/// The network agents' host: root, the tools, the tunnel address and the
/// mapped bridges.
pub async fn network_host(
    cfg: &Config,
    settings: &ferrostack_netagent::Settings,
) -> anyhow::Result<()> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        anyhow::bail!("the network agents need root (they build bridges and namespaces)");
    }
    ferrostack_netagent::check_tools(settings).map_err(anyhow::Error::msg)?;
    ferrostack_netagent::check_host(settings)
        .await
        .map_err(|p| anyhow::anyhow!("{}: {}", cfg.origin("network_agent", p.option), p.message))
}
