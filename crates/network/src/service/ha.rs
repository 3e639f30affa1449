//! HA routers (Neutron's L3 HA): a router with `ha: true` is scheduled to
//! up to `max_l3_agents_per_router` L3 agents, each of which builds its
//! namespace and runs keepalived; VRRP between them travels on the
//! project's hidden HA network (`HA network tenant <project>`, subnet
//! 169.254.192.0/18, one port per agent, owned by no project), and the
//! agent holding the master role holds the router's addresses. Agents
//! report which of them is active; `GET /routers/{id}/l3-agents` shows it.

use super::ports::PortSpec;
use super::*;
use std::collections::HashSet;

/// The device owner of a router's port on the HA network, one per agent.
pub const HA_PORT_OWNER: &str = "network:router_ha_interface";
/// Neutron's `l3_ha_net_cidr`.
const HA_CIDR: &str = "169.254.192.0/18";
/// VRRP router ids one HA network can carry.
const MAX_VR_ID: i64 = 254;

/// What an agent says its copy of an HA router is (Neutron's `ha_state`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HaState {
    Active,
    Standby,
}

pub fn is_ha(router: &Value) -> bool {
    router["ha"] == true
}

fn ha_network_name(project: &str) -> String {
    format!("HA network tenant {project}")
}

/// The agents hosting an HA router and their states: an agent that never
/// reported is standby; when several say active, the dead ones are not
/// (Neutron's rule: a node that died as master cannot have stepped down).
pub fn ha_states(router: &Value, agents: &[Value], alive: impl Fn(&Value) -> bool) -> Vec<Value> {
    let reported = |a: &Value| {
        let id = a["id"].as_str().unwrap_or_default();
        match router["_ha_states"][id].as_str() {
            Some("active") => HaState::Active,
            _ => HaState::Standby,
        }
    };
    let actives = agents
        .iter()
        .filter(|a| reported(a) == HaState::Active)
        .count();
    agents
        .iter()
        .map(|a| {
            let mut state = reported(a);
            if state == HaState::Active && actives > 1 && !alive(a) {
                state = HaState::Standby;
            }
            json!(state)
        })
        .collect()
}

impl NetworkService {
    /// The project's HA network, if it has one.
    async fn ha_network(&self, project: &str) -> Result<Option<Value>> {
        let name = ha_network_name(project);
        Ok(store::list(&self.db, Kind::Network)
            .await?
            .into_iter()
            .find(|n| n["name"] == name.as_str() && n["project_id"] == ""))
    }

    /// The project's HA network, made with its subnet on first use.
    async fn ensure_ha_network(&self, project: &str) -> Result<String> {
        let _one_maker = self.ha_lock.lock().await;
        if let Some(n) = self.ha_network(project).await? {
            return Ok(n["id"].as_str().unwrap_or_default().to_owned());
        }
        let ctx = agent_context();
        let body = json!({"name": ha_network_name(project), "project_id": "",
            "admin_state_up": true, "shared": false});
        let net = self.create_network(&ctx, as_map(&body)).await?;
        let id = net["id"].as_str().unwrap_or_default().to_owned();
        let subnet = json!({"name": format!("HA subnet tenant {project}"), "project_id": "",
            "network_id": id, "ip_version": 4, "cidr": HA_CIDR, "enable_dhcp": false,
            "gateway_ip": null});
        self.create_subnet(&ctx, as_map(&subnet)).await?;
        Ok(id)
    }

    /// The lowest VRRP id no other HA router of the project uses (the
    /// caller holds `alloc_lock`).
    async fn free_vr_id(&self, project: &str) -> Result<i64> {
        let used: HashSet<i64> = store::list(&self.db, Kind::Router)
            .await?
            .iter()
            .filter(|r| r["project_id"] == project && is_ha(r))
            .filter_map(|r| r["_ha_vr_id"].as_i64())
            .collect();
        (1..=MAX_VR_ID).find(|v| !used.contains(v)).ok_or_else(|| {
            Error::Conflict(format!(
                "No more VRRP ids are available on the HA network of project {project}."
            ))
            .typed("NoVRIDAvailable")
        })
    }

    /// Turn `router` into an HA router: its project's HA network, a VRRP id
    /// and its agents. The caller holds `alloc_lock` and writes `router`.
    pub(super) async fn make_ha(&self, router: &mut Value, ha_net: String) -> Result<()> {
        let project = router["project_id"].as_str().unwrap_or_default().to_owned();
        router["ha"] = json!(true);
        router["_ha_network"] = json!(ha_net);
        router["_ha_vr_id"] = json!(self.free_vr_id(&project).await?);
        router["_ha_states"] = json!({});
        router["_l3_agents"] = json!(
            self.pick_agents("L3 agent", self.agents_per_router(true))
                .await?
        );
        Ok(())
    }

    /// Before taking `alloc_lock`: the HA network an HA router will use.
    pub(super) async fn prepare_ha(&self, project: &str) -> Result<String> {
        self.ensure_ha_network(project).await
    }

    pub(super) fn agents_per_router(&self, ha: bool) -> usize {
        if ha {
            self.config.network.max_l3_agents_per_router.max(1)
        } else {
            1
        }
    }

    /// The HA port of `router` on `host`, made (bound to the host) when missing.
    pub(super) async fn ensure_ha_port(&self, router: &Value, host: &str) -> Result<Value> {
        let rid = router["id"].as_str().unwrap_or_default();
        let existing = store::list(&self.db, Kind::Port)
            .await?
            .into_iter()
            .find(|p| {
                p["device_id"] == rid
                    && p["device_owner"] == HA_PORT_OWNER
                    && p["binding:host_id"] == host
            });
        if let Some(p) = existing {
            return Ok(p);
        }
        let project = router["project_id"].as_str().unwrap_or_default();
        let spec = PortSpec {
            project_id: String::new(),
            network_id: router["_ha_network"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            name: format!("HA port tenant {project}"),
            device_owner: HA_PORT_OWNER.into(),
            device_id: rid.to_owned(),
            admin_state_up: true,
            security_groups: Some(vec![]),
            port_security_enabled: Some(false),
            binding_host: host.to_owned(),
            binding_profile: json!({}),
            vnic_type: "normal".into(),
            extra_dhcp_opts: json!([]),
            ..Default::default()
        };
        let guard = self.alloc_lock.lock().await;
        let mut tx = store::Tx::begin(&self.db);
        let port = self.build_port(spec, &mut tx, &mut HashSet::new()).await?;
        tx.commit().await?;
        drop(guard);
        self.notify(Kind::Port, "create", &port).await;
        Ok(port)
    }

    /// Make each scheduled agent's HA port now, so they show at once.
    pub(super) async fn ha_ports_for_agents(&self, router: &Value) -> Result<()> {
        for a in router["_l3_agents"].as_array().into_iter().flatten() {
            if let Some(agent) =
                store::get(&self.db, Kind::Agent, a.as_str().unwrap_or_default()).await?
            {
                self.ensure_ha_port(router, agent["host"].as_str().unwrap_or_default())
                    .await?;
            }
        }
        Ok(())
    }

    /// Remove a router's HA ports inside `tx`.
    pub(super) async fn drop_ha_ports(
        &self,
        tx: &mut store::Tx<'_>,
        router_id: &str,
    ) -> Result<()> {
        for p in store::list(&self.db, Kind::Port).await? {
            if p["device_id"] == router_id && p["device_owner"] == HA_PORT_OWNER {
                self.remove_port(tx, &p).await?;
            }
        }
        Ok(())
    }

    /// The project's HA network goes with its last HA router (as Neutron's).
    pub(super) async fn drop_unused_ha_network(&self, project: &str) -> Result<()> {
        let _one_maker = self.ha_lock.lock().await;
        let in_use = store::list(&self.db, Kind::Router)
            .await?
            .iter()
            .any(|r| r["project_id"] == project && is_ha(r));
        match self.ha_network(project).await? {
            Some(net) if !in_use => {
                self.delete_network(&agent_context(), net["id"].as_str().unwrap_or_default())
                    .await
            }
            _ => Ok(()),
        }
    }

    /// An L3 agent's report of its HA routers' states (`update_ha_states`).
    /// The active agent's host becomes the binding host of the router's
    /// interface and gateway ports.
    pub async fn update_ha_states(&self, host: &str, states: &Map<String, Value>) -> Result<()> {
        let Some(agent_id) = self.l3_agent_id(host).await? else {
            return Ok(());
        };
        for (router_id, state) in states {
            let state: HaState = serde_json::from_value(state.clone())
                .map_err(|e| Error::BadRequest(format!("ha state of {router_id}: {e}")))?;
            let written = self
                .update_with_retry(Kind::Router, router_id, |doc| {
                    if doc["_ha_states"][agent_id.as_str()] == json!(state) {
                        return false;
                    }
                    if !doc["_ha_states"].is_object() {
                        doc["_ha_states"] = json!({});
                    }
                    doc["_ha_states"][agent_id.as_str()] = json!(state);
                    true
                })
                .await;
            match written {
                Ok(_) => {}
                Err(e) if e.status().as_u16() == 404 => continue,
                Err(e) => return Err(e),
            }
            if state == HaState::Active {
                self.bind_router_ports(router_id, host).await?;
            }
        }
        Ok(())
    }
}

fn as_map(v: &Value) -> &Map<String, Value> {
    v.as_object().expect("a JSON object literal")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_agent_that_still_says_active_is_standby_when_another_took_over() {
        let router = json!({"_ha_states": {"a": "active", "b": "active"}});
        let agents = [json!({"id": "a"}), json!({"id": "b"}), json!({"id": "c"})];
        let states = ha_states(&router, &agents, |a| a["id"] != "a");
        assert_eq!(
            states,
            [json!("standby"), json!("active"), json!("standby")]
        );
        // Alone, the last active one keeps its state, alive or not.
        let router = json!({"_ha_states": {"a": "active"}});
        assert_eq!(
            ha_states(&router, &agents[..1], |_| false),
            [json!("active")]
        );
    }
}
