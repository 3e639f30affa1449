//! `ferrostack`: one binary for every role of the cloud.

mod credentials;
mod memory;
mod preflight;
mod roles;
mod service_list;
mod services;

use clap::{Parser, Subcommand};
use ferrostack_core::config::Config;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "ferrostack",
    version,
    about = "An OpenStack-compatible private cloud in one binary"
)]
struct Cli {
    /// Configuration file (TOML). Every option has a default and can be
    /// overridden as FERROSTACK__<SECTION>__<OPTION> in the environment.
    #[arg(long, global = true, env = "FERROSTACK_CONFIG")]
    config: Option<PathBuf>,
    /// Where SQLite databases, keys and credentials live (overrides common.data_dir).
    #[arg(long, global = true, env = "FERROSTACK_DATA_DIR")]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run every service in one process on this host (SQLite, in-process bus);
    /// bootstraps on first start and writes openrc files and clouds.yaml.
    AllInOne {
        /// Address to listen on and to publish in the catalog.
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
    },
    /// Run one node of a multi-node cloud: the roles `[node] roles` of the
    /// configuration names (or --role / --services), with the databases,
    /// bus and addresses of its `[node]` section (docs/multinode.md); no
    /// bootstrap. A node whose database, broker, tunnel address or bridges
    /// are wrong refuses to start, naming the option.
    Serve {
        /// A seed node role: `controller` (every API and control service),
        /// `network` (L2, DHCP, L3 and metadata agents), `compute` (compute
        /// and L2 agents). Overrides `[node] roles`.
        #[arg(long, conflicts_with = "services")]
        role: Option<String>,
        /// Comma-separated services: identity, image, network, compute,
        /// volume, telemetry, compute-agent, l2-agent, dhcp-agent, l3-agent.
        #[arg(long, value_delimiter = ',')]
        services: Vec<String>,
    },
    /// Create the seed's projects, users, roles, services and endpoints (idempotent).
    Bootstrap,
    /// Database administration.
    Db {
        #[command(subcommand)]
        command: DbCommand,
    },
    /// Fernet key repository administration.
    Fernet {
        #[command(subcommand)]
        command: FernetCommand,
    },
    /// Services and agents of the cloud.
    Service {
        #[command(subcommand)]
        command: ServiceCommand,
    },
    /// Remove what this host's network agents built — dnsmasq processes,
    /// router and DHCP namespaces, bridges, VXLAN devices, firewall tables —
    /// like `neutron-netns-cleanup --force`. Stop the agents first.
    NetnsCleanup,
    /// Print the effective configuration (with defaults) as TOML.
    ShowConfig,
}

#[derive(Subcommand)]
enum ServiceCommand {
    /// Every compute service and network agent with its host, state and
    /// last heartbeat (like `nova-manage service list`).
    List,
}

#[derive(Subcommand)]
enum DbCommand {
    /// Apply every pending migration to each service's database.
    Sync,
}

#[derive(Subcommand)]
enum FernetCommand {
    /// Create the key repository if it does not exist.
    Setup,
    /// Promote the staged key, stage a new one, drop the oldest beyond max_active_keys.
    Rotate,
}

fn load_config(cli: &Cli) -> anyhow::Result<Config> {
    let mut cfg = Config::load(cli.config.as_deref()).map_err(anyhow::Error::msg)?;
    if let Some(d) = &cli.data_dir {
        cfg.common.data_dir = d.clone();
    }
    std::fs::create_dir_all(&cfg.common.data_dir)?;
    Ok(cfg)
}

fn init_logging(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("FERROSTACK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .init();
}

fn main() -> anyhow::Result<()> {
    // Before the runtime starts its threads: each would take an arena.
    memory::tune_allocator();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let mut cfg = load_config(&cli)?;
    init_logging(&cfg.common.log);
    match cli.command {
        Command::AllInOne { host } => {
            memory::trim_heap_periodically();
            cfg.common.bind_host = host.clone();
            cfg.common.public_host = host;
            services::run(cfg, &roles::Service::ALL, true).await
        }
        Command::Serve {
            role,
            services: names,
        } => {
            let selected = match role {
                Some(r) => roles::Service::for_role(&r).map_err(anyhow::Error::msg)?,
                None if !names.is_empty() => {
                    roles::Service::select(&names, false).map_err(anyhow::Error::msg)?
                }
                None if cfg.node.roles.is_empty() => {
                    anyhow::bail!("name the node's roles: [node] roles in --config FILE, or --role / --services")
                }
                None => roles::Service::select(&cfg.node.roles, true)
                    .map_err(|e| anyhow::anyhow!("[node] roles: {e}"))?,
            };
            memory::trim_heap_periodically();
            services::run(cfg, &selected, false).await
        }
        Command::Bootstrap => {
            let bus = ferrostack_bus::open(&cfg.bus.url)?;
            let identity = ferrostack_identity::open(&cfg, bus)
                .await
                .map_err(anyhow::Error::msg)?;
            let report = ferrostack_identity::bootstrap::run(&identity).await?;
            if report.created.is_empty() && report.removed.is_empty() {
                println!("bootstrap: nothing to do, everything exists");
            }
            for c in report.created {
                println!("created {c}");
            }
            for r in report.removed {
                println!("removed {r} (not served by this deployment)");
            }
            Ok(())
        }
        Command::Db {
            command: DbCommand::Sync,
        } => {
            let services: [(&str, &str, &[ferrostack_db::Migration]); 4] = [
                (
                    "identity",
                    &cfg.identity.database_url,
                    ferrostack_identity::store::MIGRATIONS,
                ),
                (
                    "image",
                    &cfg.image.database_url,
                    ferrostack_image::store::MIGRATIONS,
                ),
                (
                    "network",
                    &cfg.network.database_url,
                    ferrostack_network::store::MIGRATIONS,
                ),
                (
                    "compute",
                    &cfg.compute.database_url,
                    ferrostack_compute::store::MIGRATIONS,
                ),
            ];
            for (name, configured, migrations) in services {
                let db = ferrostack_db::Db::connect(&cfg.database_url(name, configured)).await?;
                let v = db.migrate(migrations).await?;
                println!("{name}: schema version {v}");
            }
            Ok(())
        }
        Command::Fernet { command } => {
            let repo = ferrostack_identity::token::KeyRepository::open(&cfg.key_repository())
                .map_err(anyhow::Error::msg)?;
            if let FernetCommand::Rotate = command {
                let keys = repo
                    .rotate(cfg.identity.max_active_keys)
                    .map_err(anyhow::Error::msg)?;
                println!(
                    "rotated; keys now {keys:?} in {}",
                    cfg.key_repository().display()
                );
            } else {
                println!("key repository ready at {}", cfg.key_repository().display());
            }
            Ok(())
        }
        Command::Service {
            command: ServiceCommand::List,
        } => service_list::print(&cfg).await,
        Command::NetnsCleanup => {
            let settings =
                ferrostack_netagent::Settings::from_config(&cfg).map_err(anyhow::Error::msg)?;
            for removed in ferrostack_netagent::cleanup(&settings).await {
                println!("removed {removed}");
            }
            Ok(())
        }
        Command::ShowConfig => {
            println!("{}", toml_string(&cfg)?);
            Ok(())
        }
    }
}

fn toml_string(cfg: &Config) -> anyhow::Result<String> {
    // serde_json → a readable listing without pulling in a TOML serializer.
    let v = serde_json::to_value(cfg)?;
    let mut out = String::new();
    if let Some(sections) = v.as_object() {
        for (section, opts) in sections {
            out.push_str(&format!("[{section}]\n"));
            if let Some(o) = opts.as_object() {
                for (k, val) in o {
                    out.push_str(&format!("{k} = {val}\n"));
                }
            }
            out.push('\n');
        }
    }
    Ok(out)
}
