//! One configuration file for every service and role. Every option has a
//! default; any option can be overridden from the environment as
//! `FERROSTACK__<SECTION>__<OPTION>` (e.g. `FERROSTACK__IDENTITY__BCRYPT_COST=4`).

pub use crate::node::NodeConfig;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub const ENV_PREFIX: &str = "FERROSTACK__";

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// One node of a multi-node cloud, stated once (see [`NodeConfig`]);
    /// what it implies is filled into the sections below when loaded.
    pub node: NodeConfig,
    pub common: CommonConfig,
    pub bus: BusConfig,
    pub identity: IdentityConfig,
    pub image: ImageConfig,
    pub network: NetworkConfig,
    pub network_agent: NetworkAgentConfig,
    pub compute: ComputeConfig,
    pub volume: VolumeConfig,
    pub telemetry: TelemetryConfig,
    pub object: ObjectConfig,
    pub metadata: MetadataConfig,
    pub console: ConsoleConfig,
    pub dashboard: DashboardConfig,
    pub service_auth: ServiceAuthConfig,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CommonConfig {
    /// Address the APIs listen on.
    pub bind_host: String,
    /// Host name or address put into catalog URLs and discovery links.
    pub public_host: String,
    /// Where SQLite files, keys and images live.
    pub data_dir: PathBuf,
    /// Log filter in tracing's `EnvFilter` syntax.
    pub log: String,
    /// The region of this deployment's endpoints.
    pub region: String,
    /// This host's name as agents and services report it (Neutron/Nova `host`).
    pub host: String,
    /// Seconds a client has to send a request's headers, and that a
    /// kept-alive connection may stay idle between requests.
    pub http_header_read_timeout: u64,
    /// Seconds a request body may stop arriving before the request is
    /// answered 408 and the connection closed.
    pub http_body_read_timeout: u64,
    /// Connections one API port holds at most (0 = an equal share of the
    /// process's open-files limit), never more than that share; at the limit
    /// the oldest idle one is closed. Each costs a descriptor and ~16 KiB.
    pub http_max_connections: usize,
}

impl Default for CommonConfig {
    fn default() -> Self {
        CommonConfig {
            bind_host: "127.0.0.1".into(),
            public_host: "127.0.0.1".into(),
            data_dir: default_data_dir(),
            log: "info".into(),
            region: "RegionOne".into(),
            host: std::fs::read_to_string("/etc/hostname")
                .map(|h| h.trim().to_owned())
                .ok()
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "localhost".into()),
            http_header_read_timeout: 30,
            http_body_read_timeout: 60,
            http_max_connections: 1024,
        }
    }
}

impl CommonConfig {
    /// The bounds of each of `listeners` API ports of this process.
    pub fn http_limits(&self, listeners: usize) -> crate::server::Limits {
        crate::server::Limits {
            header_read_timeout: std::time::Duration::from_secs(
                self.http_header_read_timeout.max(1),
            ),
            body_read_timeout: std::time::Duration::from_secs(self.http_body_read_timeout.max(1)),
            max_connections: crate::server::connection_budget(listeners, self.http_max_connections),
        }
    }
}

/// `$XDG_DATA_HOME/ferrostack`, else `~/.local/share/ferrostack`.
pub fn default_data_dir() -> PathBuf {
    if let Some(x) = std::env::var_os("XDG_DATA_HOME") {
        return PathBuf::from(x).join("ferrostack");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/var/lib".into());
    home.join(".local/share/ferrostack")
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BusConfig {
    /// `memory://` (in-process, all-in-one) or `amqp://user:pass@host:5672/vhost`.
    pub url: String,
    /// Default timeout of an RPC call, in seconds.
    pub rpc_timeout: u64,
}

impl Default for BusConfig {
    fn default() -> Self {
        BusConfig {
            url: "memory://".into(),
            rpc_timeout: 60,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IdentityConfig {
    /// Empty means `sqlite://<data_dir>/identity.sqlite`.
    pub database_url: String,
    pub public_port: u16,
    /// The seed's legacy admin port; the same API answers there.
    pub admin_port: u16,
    /// Token lifetime in seconds (Keystone's `[token] expiration`).
    pub token_expiration: i64,
    /// bcrypt cost; Keystone's default is 12.
    pub bcrypt_cost: u32,
    /// Empty means `<data_dir>/fernet-keys`.
    pub key_repository: String,
    /// Keys kept by `ferrostack fernet rotate` (Keystone's `max_active_keys`).
    pub max_active_keys: usize,
    /// Bodies above this many bytes get 413 (Keystone's `max_request_body_size`).
    pub max_request_body_size: usize,
    /// Password of `admin` created by bootstrap (the seed's ADMIN_PASSWORD).
    pub admin_password: String,
    /// Password of `demo` created by bootstrap (the seed uses ADMIN_PASSWORD).
    pub demo_password: String,
    /// Password of the service users (the seed's SERVICE_PASSWORD).
    pub service_password: String,
    /// How often revocation events are reloaded from the database, in
    /// seconds, so that other controllers see revocations too.
    pub revocation_refresh: u64,
    /// Upper bound on entries returned by a list call (0 = no limit).
    pub list_limit: usize,
    /// An operator's oslo.policy file (`policy.yaml`) whose rules replace
    /// the defaults of the same name; empty means the defaults only.
    pub policy_file: String,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        IdentityConfig {
            database_url: String::new(),
            public_port: 5000,
            admin_port: 35357,
            token_expiration: 3600,
            bcrypt_cost: 12,
            key_repository: String::new(),
            max_active_keys: 3,
            max_request_body_size: 114_688,
            admin_password: "admin_pass".into(),
            demo_password: "admin_pass".into(),
            service_password: "service_pass".into(),
            revocation_refresh: 5,
            list_limit: 0,
            policy_file: String::new(),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ImageConfig {
    /// Empty means `sqlite://<data_dir>/image.sqlite`.
    pub database_url: String,
    pub port: u16,
    /// Empty means `<data_dir>/images`: the filesystem store.
    pub filesystem_store_datadir: String,
    /// Bytes a project may store in images (Glance's `user_storage_quota`); 0 = unlimited.
    pub user_storage_quota: u64,
    /// Images a project may own; 0 = unlimited.
    pub image_count_quota: u64,
    /// Largest image accepted, in bytes (Glance's `image_size_cap`, 1 TiB).
    pub image_size_cap: u64,
    /// Default and maximum page sizes of image lists.
    pub limit_param_default: usize,
    pub api_limit_max: usize,
    /// JSON request bodies above this many bytes get 413.
    pub max_request_body_size: usize,
    /// An operator's oslo.policy file (`policy.yaml`) whose rules replace
    /// the defaults of the same name; empty means the defaults only.
    pub policy_file: String,
    /// Where active images' data lives, as Glance's `default_store`:
    /// `file` (the filesystem store) or `swift` (the object service).
    pub store: String,
    /// The container of the swift store (Glance's `swift_store_container`).
    pub swift_store_container: String,
    /// The storage URL of the swift store's account (Glance's
    /// `swift_store_endpoint`); empty means `http://<public_host>:<object.port>/v1/AUTH_<project>`
    /// with the project of the image service's own service token.
    pub swift_store_endpoint: String,
}

impl Default for ImageConfig {
    fn default() -> Self {
        ImageConfig {
            database_url: String::new(),
            port: 9292,
            filesystem_store_datadir: String::new(),
            user_storage_quota: 0,
            image_count_quota: 0,
            image_size_cap: 1 << 40,
            limit_param_default: 25,
            api_limit_max: 1000,
            max_request_body_size: 65_536,
            policy_file: String::new(),
            store: "file".into(),
            swift_store_container: "glance".into(),
            swift_store_endpoint: String::new(),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VolumeConfig {
    /// Empty means `sqlite://<data_dir>/volume.sqlite`.
    pub database_url: String,
    pub port: u16,
    /// Where the file backend keeps one file per volume; empty means
    /// `<data_dir>/volumes`.
    pub volumes_dir: String,
    /// The file backend's format: `qcow2` (sparse, grows as written) or `raw`.
    pub volume_format: String,
    /// The availability zone volumes are created in (Cinder's
    /// `storage_availability_zone`).
    pub storage_availability_zone: String,
    /// Default quotas of a project (Cinder's `quota_volumes`, …); -1 = unlimited.
    pub quota_volumes: i64,
    pub quota_gigabytes: i64,
    pub quota_snapshots: i64,
    /// Cinder's `quota_backups` and `quota_backup_gigabytes`.
    pub quota_backups: i64,
    pub quota_backup_gigabytes: i64,
    /// The largest volume a project may create, in GiB (the default of
    /// the `per_volume_gigabytes` quota; -1 = no limit).
    pub per_volume_size_limit: i64,
    /// Where the directory backup driver keeps backups; empty means
    /// `<data_dir>/backups`.
    pub backup_dir: String,
    /// Largest page of a list (Cinder's `osapi_max_limit`).
    pub osapi_max_limit: usize,
    /// JSON request bodies above this many bytes get 413.
    pub max_request_body_size: usize,
    /// An operator's oslo.policy file over Cinder's defaults; empty: none.
    pub policy_file: String,
    /// The address NBD exports listen on for connectors of other hosts
    /// (the volume host's management address; Cinder's `target_ip_address`).
    pub my_ip: String,
    /// `min:max`: the TCP ports NBD exports for other hosts take.
    pub export_port_range: String,
    /// Where each export's storage daemon keeps its pid file, QMP and NBD
    /// sockets; empty means `<data_dir>/volume-exports`.
    pub export_state_dir: String,
    /// The backend pool's capacity as the scheduler reports it.
    pub capacity_gb: i64,
    /// Seconds between the volume service's heartbeats; a service silent
    /// for `service_down_time` is `down` (Cinder's options).
    pub report_interval: u64,
    pub service_down_time: u64,
    /// Compute's API for `volume-extended` events; empty means
    /// `http://<public_host>:<compute.port>/v2.1`.
    pub nova_url: String,
}

impl Default for VolumeConfig {
    fn default() -> Self {
        VolumeConfig {
            database_url: String::new(),
            port: 8776,
            volumes_dir: String::new(),
            volume_format: "qcow2".into(),
            storage_availability_zone: "nova".into(),
            quota_volumes: 10,
            quota_gigabytes: 1000,
            quota_snapshots: 10,
            quota_backups: 10,
            quota_backup_gigabytes: 1000,
            per_volume_size_limit: -1,
            backup_dir: String::new(),
            osapi_max_limit: 1000,
            max_request_body_size: 114_688,
            policy_file: String::new(),
            my_ip: "127.0.0.1".into(),
            export_port_range: "10809:10908".into(),
            export_state_dir: String::new(),
            capacity_gb: 1000,
            report_interval: 10,
            service_down_time: 60,
            nova_url: String::new(),
        }
    }
}

/// `[telemetry]`: metering (Ceilometer v2 API), the metric store (Gnocchi
/// v1 API) and the compute hosts' pollster.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetryConfig {
    /// Empty means `sqlite://<data_dir>/telemetry.sqlite`.
    pub database_url: String,
    /// The Ceilometer v2 API (catalog type `metering`).
    pub metering_port: u16,
    /// The Gnocchi v1 API (catalog type `metric`).
    pub metric_port: u16,
    /// The Aodh v2 API (catalog type `alarming`).
    pub alarm_port: u16,
    /// Seconds between two evaluations of the alarms (Aodh's
    /// `evaluation_interval`).
    pub evaluation_interval: u64,
    /// Seconds between two polls of a compute host's guests (Ceilometer's
    /// `polling_interval`).
    pub polling_interval: u64,
    /// Days raw samples are kept for the sample API; rollups follow their
    /// archive policy's timespan.
    pub sample_retention_days: u64,
    /// The archive policy of metrics the collector creates when no rule
    /// matches their name.
    pub default_archive_policy: String,
    /// JSON request bodies above this many bytes get 413.
    pub max_request_body_size: usize,
    /// An operator's oslo.policy file over the defaults; empty: none.
    pub policy_file: String,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        TelemetryConfig {
            database_url: String::new(),
            metering_port: 8777,
            metric_port: 8041,
            alarm_port: 8042,
            evaluation_interval: 60,
            polling_interval: 300,
            sample_retention_days: 30,
            default_archive_policy: "medium".into(),
            max_request_body_size: 4 * 1024 * 1024,
            policy_file: String::new(),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetworkConfig {
    /// Empty means `sqlite://<data_dir>/network.sqlite`.
    pub database_url: String,
    pub port: u16,
    /// Type of the networks projects create (`vxlan` here; the seed used `gre`).
    pub tenant_network_type: String,
    /// Segmentation id ranges per type, `min:max` (the seed's tunnel ids 1:1000).
    pub vni_ranges: String,
    pub gre_tunnel_id_ranges: String,
    /// `physnet:min:max` for VLAN provider networks.
    pub network_vlan_ranges: String,
    /// Physical networks usable by flat provider networks (`*` = any).
    pub flat_networks: String,
    /// MAC addresses are allocated under this prefix (Neutron's `base_mac`).
    pub base_mac: String,
    /// MTU of the physical network; tunnel networks get less (VXLAN: -50).
    pub global_physnet_mtu: i64,
    /// Seconds without a heartbeat after which an agent is not alive.
    pub agent_down_time: i64,
    /// Routers are HA (VRRP between L3 agents) unless created `ha: false`.
    pub l3_ha: bool,
    /// How many L3 agents an HA router is scheduled to (Neutron's option).
    pub max_l3_agents_per_router: usize,
    /// Default per-project quotas (-1 = unlimited).
    pub quota_network: i64,
    pub quota_subnet: i64,
    pub quota_port: i64,
    pub quota_router: i64,
    pub quota_floatingip: i64,
    pub quota_security_group: i64,
    pub quota_security_group_rule: i64,
    pub max_request_body_size: usize,
    /// Send `network-vif-plugged`/`-unplugged` to compute (Neutron's option).
    pub notify_nova_on_port_status_changes: bool,
    /// Empty means `http://<public_host>:<compute.port>/v2.1`.
    pub nova_url: String,
    /// An operator's oslo.policy file (`policy.yaml`) whose rules replace
    /// the defaults of the same name; empty means the defaults only.
    pub policy_file: String,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            database_url: String::new(),
            port: 9696,
            tenant_network_type: "vxlan".into(),
            vni_ranges: "1:1000".into(),
            gre_tunnel_id_ranges: "1:1000".into(),
            network_vlan_ranges: "physnet1:1000:2999".into(),
            flat_networks: "*".into(),
            base_mac: "fa:16:3e:00:00:00".into(),
            global_physnet_mtu: 1500,
            agent_down_time: 75,
            l3_ha: false,
            max_l3_agents_per_router: 3,
            quota_network: 100,
            quota_subnet: 100,
            quota_port: 500,
            quota_router: 10,
            quota_floatingip: 50,
            quota_security_group: 10,
            quota_security_group_rule: 100,
            max_request_body_size: 1_048_576,
            notify_nova_on_port_status_changes: true,
            nova_url: String::new(),
            policy_file: String::new(),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ComputeConfig {
    /// Empty means `sqlite://<data_dir>/compute.sqlite`.
    pub database_url: String,
    pub port: u16,
    /// The hypervisor driver of the compute agent: `qemu` (one QEMU per
    /// guest) or `fake` (guests in memory, for scale tests).
    pub driver: String,
    /// Where guests' disks, console logs and sockets live (Nova's
    /// `instances_path`); empty means `<data_dir>/compute/instances`.
    pub instances_path: String,
    /// The image cache's directory under `instances_path`.
    pub image_cache_subdirectory_name: String,
    /// Seconds between image cache passes; 0 turns them off.
    pub image_cache_manager_interval: u64,
    /// A cached image no guest uses is removed once unused this long.
    pub remove_unused_original_minimum_age_seconds: u64,
    /// QEMU's accelerator: `auto` (KVM when a probe guest runs, else TCG),
    /// `kvm`, or `qemu` (TCG), as Nova's `[libvirt] virt_type`.
    pub virt_type: String,
    pub qemu_binary: String,
    /// A Linux kernel the KVM probe boots to see Linux run under KVM
    /// (`virt_type = auto`); empty: the newest `/boot/vmlinuz-*`, else
    /// `/var/cache/ferrostack/kvm-probe/vmlinuz` (scripts/setup-host.sh).
    pub kvm_probe_kernel: String,
    pub qemu_img: String,
    /// Seconds a guest gets to shut down cleanly (stop, soft reboot,
    /// resize) before it is forced off.
    pub shutdown_timeout: u64,
    /// Attach a config drive to every guest, not only when asked.
    pub force_config_drive: bool,
    /// Empty means `http://<public_host>:<network.port>` (the networking API).
    pub network_url: String,
    /// Empty means `http://<public_host>:<image.port>` (the image API).
    pub image_url: String,
    /// Empty means `http://<public_host>:<volume.port>` (the block storage
    /// API, without `/v3`).
    pub volume_url: String,
    /// The zone new compute services join and servers default to.
    pub default_availability_zone: String,
    /// Overcommit ratios of the scheduler (Nova's defaults).
    pub cpu_allocation_ratio: f64,
    pub ram_allocation_ratio: f64,
    pub disk_allocation_ratio: f64,
    /// Host memory and disk kept back from guests.
    pub reserved_host_memory_mb: i64,
    pub reserved_host_disk_mb: i64,
    /// Seconds to wait for `network-vif-plugged` after spawning; 0 = do not wait.
    pub vif_plugging_timeout: u64,
    /// Whether a missing `network-vif-plugged` fails the boot.
    pub vif_plugging_is_fatal: bool,
    /// Whether a resize may keep the server on its host (Nova's
    /// `allow_resize_to_same_host`; Nova defaults to false, its all-in-one
    /// devstack sets true, as this does so a single host resizes): the
    /// source host is then one more candidate of the scheduler. A cold
    /// migration always goes to another host.
    pub allow_resize_to_same_host: bool,
    /// With the fake driver, do not wait for `network-vif-plugged` (no L2 agent wires fake guests).
    pub fake_skip_vif_wait: bool,
    /// Resources the fake hypervisor reports.
    pub fake_vcpus: i64,
    pub fake_memory_mb: i64,
    pub fake_local_gb: i64,
    /// Seconds between compute agent heartbeats (Nova's `report_interval`).
    pub report_interval: u64,
    /// Seconds without a heartbeat after which a compute service is down.
    pub service_down_time: i64,
    /// Seconds between power-state syncs of the compute agent.
    pub sync_power_state_interval: u64,
    /// Timeout of RPC calls to compute agents, in seconds.
    pub rpc_timeout: u64,
    /// Timeout of agent calls that may take long (a guest's clean shutdown,
    /// an image conversion, a snapshot), as Nova's `long_rpc_timeout`.
    pub long_rpc_timeout: u64,
    /// Default per-project quotas (-1 = unlimited).
    pub quota_instances: i64,
    pub quota_cores: i64,
    pub quota_ram: i64,
    pub quota_key_pairs: i64,
    pub quota_metadata_items: i64,
    pub quota_injected_files: i64,
    pub quota_injected_file_content_bytes: i64,
    pub quota_injected_file_path_length: i64,
    pub quota_server_groups: i64,
    pub quota_server_group_members: i64,
    /// Whether create and rebuild answer with an `adminPass` (Nova's
    /// `[api] enable_instance_password`, on by default as in Nova); a server
    /// with a config drive finds it there (`admin_pass`), as with Nova.
    pub enable_instance_password: bool,
    /// Seconds a controller's liveness lease lasts (renewed every third of
    /// it): after that, another controller on the same database takes over
    /// the sagas it left unfinished.
    pub saga_lease_secs: u64,
    /// The most items a list answers with (Nova's `[api] max_limit`): a
    /// larger or absent `limit` gets this many and a `next` link.
    pub max_limit: usize,
    /// Comma-separated saga steps made to fail, for failure testing (`schedule`, `allocate_ports`, …).
    pub failpoints: String,
    pub max_request_body_size: usize,
    /// An operator's oslo.policy file (`policy.yaml`) whose rules replace
    /// the defaults of the same name; empty means the defaults only.
    pub policy_file: String,
}

impl Default for ComputeConfig {
    fn default() -> Self {
        ComputeConfig {
            database_url: String::new(),
            port: 8774,
            driver: "qemu".into(),
            instances_path: String::new(),
            image_cache_subdirectory_name: "_base".into(),
            image_cache_manager_interval: 2400,
            remove_unused_original_minimum_age_seconds: 86_400,
            virt_type: "auto".into(),
            qemu_binary: "qemu-system-x86_64".into(),
            kvm_probe_kernel: String::new(),
            qemu_img: "qemu-img".into(),
            shutdown_timeout: 60,
            force_config_drive: false,
            network_url: String::new(),
            image_url: String::new(),
            volume_url: String::new(),
            default_availability_zone: "nova".into(),
            cpu_allocation_ratio: 16.0,
            ram_allocation_ratio: 1.5,
            disk_allocation_ratio: 1.0,
            reserved_host_memory_mb: 512,
            reserved_host_disk_mb: 0,
            vif_plugging_timeout: 300,
            vif_plugging_is_fatal: true,
            allow_resize_to_same_host: true,
            fake_skip_vif_wait: true,
            fake_vcpus: 64,
            fake_memory_mb: 131_072,
            fake_local_gb: 2000,
            report_interval: 10,
            service_down_time: 60,
            sync_power_state_interval: 60,
            rpc_timeout: 60,
            long_rpc_timeout: 1800,
            quota_instances: 10,
            quota_cores: 20,
            quota_ram: 51_200,
            quota_key_pairs: 100,
            quota_metadata_items: 128,
            quota_injected_files: 5,
            quota_injected_file_content_bytes: 10_240,
            quota_injected_file_path_length: 255,
            quota_server_groups: 10,
            quota_server_group_members: 10,
            enable_instance_password: true,
            saga_lease_secs: 30,
            max_limit: 1000,
            failpoints: String::new(),
            max_request_body_size: 114_688,
            policy_file: String::new(),
        }
    }
}

/// The metadata service guests reach through the network agents' proxy
/// (Nova's metadata API).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetadataConfig {
    pub port: u16,
    /// A JSON file whose object guests get as `vendor_data.json`; empty = `{}`.
    pub vendordata_jsonfile_path: String,
}

impl Default for MetadataConfig {
    fn default() -> Self {
        MetadataConfig {
            port: 8775,
            vendordata_jsonfile_path: String::new(),
        }
    }
}

/// The graphical console: tokens the compute API hands out and the noVNC
/// proxy that honours them (Nova's `[vnc]` and `[console]`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsoleConfig {
    /// Whether guests get a VNC console at all.
    pub enabled: bool,
    /// The proxy's port (nova-novncproxy).
    pub port: u16,
    /// The page console URLs point at; empty means
    /// `http://<public_host>:<port>/vnc_lite.html`.
    pub novncproxy_base_url: String,
    /// Seconds a console token stays valid.
    pub token_ttl: u64,
    /// Comma-separated extra hosts accepted in a WebSocket `Origin`.
    pub allowed_origins: String,
    /// Where noVNC's files are (Debian's `novnc` package).
    pub web: String,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        ConsoleConfig {
            enabled: true,
            port: 6080,
            novncproxy_base_url: String::new(),
            token_ttl: 600,
            allowed_origins: String::new(),
            web: "/usr/share/novnc".into(),
        }
    }
}

/// The web dashboard (the seed's Horizon): a single-page app and the
/// same-origin proxy it reaches the APIs through.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DashboardConfig {
    /// Whether the all-in-one and the controller serve it.
    pub enabled: bool,
    /// Its port (Skyline's default).
    pub port: u16,
    /// Seconds a browser session lives at most (the token's own expiry
    /// ends it sooner).
    pub session_ttl: u64,
    /// Mark the session cookie `Secure` (set it when a TLS proxy fronts
    /// the dashboard; a plain-HTTP browser would drop the cookie).
    pub secure_cookie: bool,
}

impl Default for DashboardConfig {
    fn default() -> Self {
        DashboardConfig {
            enabled: true,
            port: 9999,
            session_ttl: 3600,
            secure_cookie: false,
        }
    }
}

/// The network agents of a host (L2, DHCP, L3, metadata proxy): what turns
/// the networking API's resources into bridges, namespaces and rules.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetworkAgentConfig {
    /// Run the agents in `all-in-one` (needs root, `ip`, `nft`, `dnsmasq`).
    pub enabled: bool,
    /// Which agents run on this host: `l2`, `dhcp`, `l3` (with its metadata proxy).
    pub agents: String,
    /// The host name the agents report and match `binding:host_id` against
    /// (Neutron's `host`); empty means `common.host`.
    pub host: String,
    /// A named network namespace standing for this host's own network stack
    /// (tests run several "hosts" on one machine); empty means the agent's own.
    pub host_netns: String,
    /// This host's tunnel endpoint address (the seed's 10.20.20.x); empty
    /// means VXLAN devices without a local address (single host).
    pub local_ip: String,
    /// `physnet:interface,…`: interfaces put into a flat/VLAN network's bridge.
    pub physical_interface_mappings: String,
    /// `physnet:bridge,…`: existing bridges used as a flat network's bridge (`br-ex`).
    pub bridge_mappings: String,
    /// Seconds between heartbeats.
    pub report_interval: u64,
    /// Seconds between full resyncs (changes also trigger one at once).
    pub resync_interval: u64,
    /// Where the metadata proxy sends instances' requests (Nova's metadata API).
    pub metadata_url: String,
    /// Signs the instance id on proxied metadata requests (shared with compute).
    pub metadata_proxy_shared_secret: String,
    pub dnsmasq: String,
    pub dhcp_lease_seconds: u64,
    /// Empty means `<data_dir>/netagent/<host>`.
    pub state_dir: String,
}

impl Default for NetworkAgentConfig {
    fn default() -> Self {
        NetworkAgentConfig {
            enabled: true,
            agents: "l2,dhcp,l3".into(),
            host: String::new(),
            host_netns: String::new(),
            local_ip: String::new(),
            physical_interface_mappings: String::new(),
            bridge_mappings: String::new(),
            report_interval: 10,
            resync_interval: 30,
            metadata_url: "http://127.0.0.1:8775".into(),
            metadata_proxy_shared_secret: "metadata_secret".into(),
            dnsmasq: "dnsmasq".into(),
            dhcp_lease_seconds: 86_400,
            state_dir: String::new(),
        }
    }
}

/// How a service that does not run identity in its own process validates
/// tokens: as its service user (`glance`, `neutron`, …) against this URL.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServiceAuthConfig {
    /// Empty means `http://<public_host>:<identity.public_port>/v3`.
    pub auth_url: String,
    /// Empty means `identity.service_password` (the seed's `service_pass`).
    pub password: String,
    pub project_name: String,
    pub user_domain_id: String,
    pub project_domain_id: String,
    /// Seconds a validated token is trusted before asking identity again.
    pub token_cache_seconds: u64,
}

impl Default for ServiceAuthConfig {
    fn default() -> Self {
        ServiceAuthConfig {
            auth_url: String::new(),
            password: String::new(),
            project_name: "service".into(),
            user_domain_id: "default".into(),
            project_domain_id: "default".into(),
            token_cache_seconds: 60,
        }
    }
}

/// `[object]`: the Swift-compatible object store (ferrostack-object).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ObjectConfig {
    /// Empty means `sqlite://<data_dir>/object.sqlite`.
    pub database_url: String,
    pub port: u16,
    /// Empty means `<data_dir>/objects`: the filesystem backend's root.
    pub data_dir: String,
    /// Largest single object (Swift's `max_file_size`, 5 GiB + 2).
    pub max_file_size: u64,
    /// Most names one listing returns (Swift's `container_listing_limit`).
    pub listing_limit: usize,
    /// Seconds between passes of the expirer (objects past `X-Delete-At`).
    pub expirer_interval: u64,
    /// Roles that make a user the owner of their project's account
    /// (keystoneauth's `operator_roles`, comma-separated).
    pub operator_roles: String,
    /// The role that may act on every account (keystoneauth's `reseller_admin_role`).
    pub reseller_admin_role: String,
    /// An operator's `policy.yaml` whose rules replace the defaults.
    pub policy_file: String,
    /// Where object data lives: `filesystem` (under `data_dir`) or `s3`
    /// (an S3 service such as Ceph's RADOS Gateway, `s3_*` below).
    pub backend: String,
    /// The S3 backend's endpoint, e.g. `http://127.0.0.1:7480`.
    pub s3_endpoint: String,
    /// The bucket that holds every object's data.
    pub s3_bucket: String,
    pub s3_access_key: String,
    pub s3_secret_key: String,
    /// The region requests are signed for.
    pub s3_region: String,
}

impl Default for ObjectConfig {
    fn default() -> Self {
        ObjectConfig {
            database_url: String::new(),
            port: 8080,
            data_dir: String::new(),
            max_file_size: 5 * 1024 * 1024 * 1024 + 2,
            listing_limit: 10_000,
            expirer_interval: 10,
            operator_roles: "admin,member".into(),
            reseller_admin_role: "ResellerAdmin".into(),
            policy_file: String::new(),
            backend: "filesystem".into(),
            s3_endpoint: String::new(),
            s3_bucket: "ferrostack-objects".into(),
            s3_access_key: String::new(),
            s3_secret_key: String::new(),
            s3_region: "us-east-1".into(),
        }
    }
}

impl Config {
    /// The identity URL services authenticate against.
    pub fn service_auth_url(&self) -> String {
        if self.service_auth.auth_url.is_empty() {
            format!("{}/v3", self.public_url(self.identity.public_port))
        } else {
            self.service_auth.auth_url.clone()
        }
    }

    /// Read `path` (when given), fill in what its `[node]` section implies,
    /// then apply environment overrides.
    pub fn load(path: Option<&Path>) -> Result<Config, String> {
        let doc = match path {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .map_err(|e| format!("cannot read config {}: {e}", p.display()))?;
                text.parse::<toml::Table>()
                    .map_err(|e| format!("config {}: {e}", p.display()))?
            }
            None => toml::Table::new(),
        };
        Self::from_doc(doc, std::env::vars())
    }

    /// [`Config::load`] of a parsed file and an environment.
    pub fn from_doc(
        mut doc: toml::Table,
        vars: impl Iterator<Item = (String, String)>,
    ) -> Result<Config, String> {
        let mut env = toml::Table::new();
        apply_env(&mut env, vars);
        let derived = crate::node::expand(&mut doc, &env)?;
        merge(&mut doc, env);
        let mut cfg: Config = toml::Value::Table(doc)
            .try_into()
            .map_err(|e: toml::de::Error| format!("invalid configuration: {}", e.message()))?;
        cfg.node.derived = derived;
        Ok(cfg)
    }

    /// How the operator names an option: the `[node]` field it was derived
    /// from when it was, else `[section] key`.
    pub fn origin(&self, section: &str, key: &str) -> String {
        let name = format!("{section}.{key}");
        match self.node.derived.get(&name) {
            Some(from) => format!("[node] {from}"),
            None => format!("[{section}] {key}"),
        }
    }

    /// The database URL of a service: the configured one, else a SQLite file.
    pub fn database_url(&self, service: &str, configured: &str) -> String {
        if configured.is_empty() {
            format!(
                "sqlite://{}?mode=rwc",
                self.common
                    .data_dir
                    .join(format!("{service}.sqlite"))
                    .display()
            )
        } else {
            configured.to_owned()
        }
    }

    pub fn key_repository(&self) -> PathBuf {
        if self.identity.key_repository.is_empty() {
            self.common.data_dir.join("fernet-keys")
        } else {
            PathBuf::from(&self.identity.key_repository)
        }
    }

    pub fn image_store_dir(&self) -> PathBuf {
        if self.image.filesystem_store_datadir.is_empty() {
            self.common.data_dir.join("images")
        } else {
            PathBuf::from(&self.image.filesystem_store_datadir)
        }
    }

    /// Where the object store's filesystem backend keeps its files.
    pub fn object_data_dir(&self) -> PathBuf {
        if self.object.data_dir.is_empty() {
            self.common.data_dir.join("objects")
        } else {
            PathBuf::from(&self.object.data_dir)
        }
    }

    /// Where the volume file backend keeps its files.
    pub fn volumes_dir(&self) -> PathBuf {
        if self.volume.volumes_dir.is_empty() {
            self.common.data_dir.join("volumes")
        } else {
            PathBuf::from(&self.volume.volumes_dir)
        }
    }

    /// Where the volume service's NBD exports keep their daemons' files.
    pub fn volume_export_dir(&self) -> PathBuf {
        if self.volume.export_state_dir.is_empty() {
            self.common.data_dir.join("volume-exports")
        } else {
            PathBuf::from(&self.volume.export_state_dir)
        }
    }

    pub fn public_url(&self, port: u16) -> String {
        format!("http://{}:{port}", self.common.public_host)
    }

    /// Where the compute agent keeps its guests and image cache.
    pub fn compute_instances_path(&self) -> PathBuf {
        if self.compute.instances_path.is_empty() {
            self.common.data_dir.join("compute").join("instances")
        } else {
            PathBuf::from(&self.compute.instances_path)
        }
    }

    /// The noVNC page console URLs point at.
    pub fn novncproxy_base_url(&self) -> String {
        if self.console.novncproxy_base_url.is_empty() {
            format!("{}/vnc_lite.html", self.public_url(self.console.port))
        } else {
            self.console.novncproxy_base_url.clone()
        }
    }
}

/// Environment overrides (a table of sections) over the file's values.
fn merge(doc: &mut toml::Table, env: toml::Table) {
    for (section, values) in env {
        let toml::Value::Table(values) = values else {
            continue;
        };
        let table = doc
            .entry(section)
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if let toml::Value::Table(t) = table {
            t.extend(values);
        }
    }
}

fn apply_env(doc: &mut toml::Table, vars: impl Iterator<Item = (String, String)>) {
    for (k, v) in vars {
        let Some(rest) = k.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        let Some((section, key)) = rest.split_once("__") else {
            continue;
        };
        let section = section.to_ascii_lowercase();
        let key = key.to_ascii_lowercase();
        let value = match v.parse::<i64>() {
            Ok(i) => toml::Value::Integer(i),
            Err(_) => match v.as_str() {
                "true" => toml::Value::Boolean(true),
                "false" => toml::Value::Boolean(false),
                _ => toml::Value::String(v),
            },
        };
        let table = doc
            .entry(section)
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if let toml::Value::Table(t) = table {
            t.insert(key, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_overrides_file_values_and_unknown_options_are_named() {
        let mut doc: toml::Table = "[identity]\nbcrypt_cost = 10\n".parse().unwrap();
        apply_env(
            &mut doc,
            vec![
                (
                    "FERROSTACK__IDENTITY__BCRYPT_COST".to_string(),
                    "4".to_string(),
                ),
                (
                    "FERROSTACK__COMMON__BIND_HOST".to_string(),
                    "0.0.0.0".to_string(),
                ),
                ("UNRELATED".to_string(), "x".to_string()),
            ]
            .into_iter(),
        );
        let cfg: Config = toml::Value::Table(doc).try_into().unwrap();
        assert_eq!(cfg.identity.bcrypt_cost, 4);
        assert_eq!(cfg.common.bind_host, "0.0.0.0");
        assert_eq!(cfg.identity.public_port, 5000);

        let bad: Result<Config, _> =
            toml::Value::Table("[identity]\nbcrypt_cots = 4\n".parse().unwrap()).try_into();
        assert!(bad.unwrap_err().to_string().contains("bcrypt_cots"));
    }
}
