//! What a node runs: the services and agents a `ferrostack serve` can
//! start, by name or by the seed's role (`controller`, `network`,
//! `compute`).

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    Identity,
    Image,
    Network,
    Compute,
    Volume,
    Telemetry,
    Object,
    /// This host's hypervisor (nova-compute).
    ComputeAgent,
    /// This host's network agents (neutron-*-agent); the L3 agent brings
    /// the metadata proxy of its routers.
    L2Agent,
    DhcpAgent,
    L3Agent,
}

impl Service {
    /// The APIs and control services (a controller).
    pub const CONTROLLER: [Service; 7] = [
        Service::Identity,
        Service::Image,
        Service::Network,
        Service::Compute,
        Service::Volume,
        Service::Telemetry,
        Service::Object,
    ];
    /// Everything on one host: the controller's services and both hosts'
    /// agents (the network agents as `[network_agent]` enables them).
    pub const ALL: [Service; 11] = [
        Service::Identity,
        Service::Image,
        Service::Network,
        Service::Compute,
        Service::Volume,
        Service::Telemetry,
        Service::Object,
        Service::ComputeAgent,
        Service::L2Agent,
        Service::DhcpAgent,
        Service::L3Agent,
    ];

    pub fn parse(name: &str) -> Result<Service, String> {
        match name.trim() {
            "identity" | "keystone" => Ok(Service::Identity),
            "image" | "glance" => Ok(Service::Image),
            "network" | "neutron" => Ok(Service::Network),
            "compute" | "nova" => Ok(Service::Compute),
            "volume" | "block-storage" | "cinder" => Ok(Service::Volume),
            "telemetry" | "metering" | "metric" | "alarming" | "ceilometer" | "gnocchi"
            | "aodh" => Ok(Service::Telemetry),
            "object" | "object-store" | "swift" => Ok(Service::Object),
            "compute-agent" | "nova-compute" => Ok(Service::ComputeAgent),
            "l2-agent" | "l2" => Ok(Service::L2Agent),
            "dhcp-agent" | "dhcp" => Ok(Service::DhcpAgent),
            "l3-agent" | "l3" | "metadata-agent" => Ok(Service::L3Agent),
            other => Err(format!(
                "unknown service '{other}' (identity, image, network, compute, volume, telemetry, object, compute-agent, l2-agent, dhcp-agent, l3-agent)"
            )),
        }
    }

    /// The services of a seed node role: `controller` (every API and
    /// control service), `network` (the L2, DHCP, L3 and metadata agents),
    /// `compute` (the compute agent and the L2 agent).
    pub fn for_role(role: &str) -> Result<Vec<Service>, String> {
        match role.trim() {
            "controller" => Ok(Service::CONTROLLER.to_vec()),
            "network" => Ok(vec![Service::L2Agent, Service::DhcpAgent, Service::L3Agent]),
            "compute" => Ok(vec![Service::ComputeAgent, Service::L2Agent]),
            other => Err(format!(
                "unknown role '{other}' (controller, network, compute)"
            )),
        }
    }

    /// Roles and services named in `[node] roles` or on the command line:
    /// `network` and `compute` are roles here, the service names of the
    /// networking and compute APIs being `neutron` and `nova` as well.
    pub fn select(names: &[String], roles_first: bool) -> Result<Vec<Service>, String> {
        let mut out: Vec<Service> = Vec::new();
        for name in names {
            let name = name.trim();
            let found = match Service::for_role(name) {
                Ok(s) if roles_first || name == "controller" => s,
                _ => vec![Service::parse(name)?],
            };
            for s in found {
                if !out.contains(&s) {
                    out.push(s);
                }
            }
        }
        if out.is_empty() {
            return Err("[node] roles: name what this node runs (controller, network, compute, or services)".into());
        }
        Ok(out)
    }

    pub fn is_network_agent(self) -> bool {
        matches!(
            self,
            Service::L2Agent | Service::DhcpAgent | Service::L3Agent
        )
    }

    /// The service user that validates tokens for this service (the seed's).
    pub fn service_user(self) -> &'static str {
        match self {
            Service::Identity => "keystone",
            Service::Image => "glance",
            Service::Network | Service::L2Agent | Service::DhcpAgent | Service::L3Agent => {
                "neutron"
            }
            Service::Compute | Service::ComputeAgent => "nova",
            Service::Volume => "cinder",
            Service::Telemetry => "ceilometer",
            Service::Object => "swift",
        }
    }
}
