//! Agents: registration and heartbeats over the bus, admin changes, and the
//! scheduling of routers to L3 agents and networks to DHCP agents.

use super::*;

/// An agent's attributes a user may change (agents register over the bus).
pub(super) const ATTRIBUTES: &[Attribute] = &[Attribute::updatable("admin_state_up", Bool)];

impl NetworkService {
    /// Handle an agent's `report_state` (its first one registers it).
    pub async fn report_state(&self, state: &Value) -> Result<Value> {
        let agent_type = state["agent_type"]
            .as_str()
            .ok_or_else(|| Error::BadRequest("agent_state needs agent_type".into()))?;
        let host = state["host"]
            .as_str()
            .ok_or_else(|| Error::BadRequest("agent_state needs host".into()))?;
        let beat = chrono::Utc::now().format("%Y-%m-%d %H:%M:%S").to_string();
        let existing = store::list(&self.db, Kind::Agent)
            .await?
            .into_iter()
            .find(|a| a["agent_type"] == agent_type && a["host"] == host);
        let mut tx = store::Tx::begin(&self.db);
        let mut created = false;
        let doc = match existing {
            Some(mut a) => {
                a["heartbeat_timestamp"] = json!(beat);
                a["configurations"] = state
                    .get("configurations")
                    .cloned()
                    .unwrap_or_else(|| json!({}));
                if state.get("start_flag") == Some(&json!(true)) {
                    a["started_at"] = json!(beat);
                }
                tx.update(Kind::Agent, &a);
                a
            }
            None => {
                let az = if matches!(agent_type, "L3 agent" | "DHCP agent") {
                    json!("nova")
                } else {
                    Value::Null
                };
                let a = json!({
                    "id": new_id(), "agent_type": agent_type, "host": host,
                    "binary": state["binary"], "topic": state["topic"], "admin_state_up": true,
                    "created_at": beat, "started_at": beat, "heartbeat_timestamp": beat,
                    "configurations": state.get("configurations").cloned().unwrap_or_else(|| json!({})),
                    "description": null, "availability_zone": az, "resources_synced": null,
                    "project_id": null,
                });
                tx.insert(Kind::Agent, &a);
                created = true;
                a
            }
        };
        tx.commit().await?;
        // A new host: the others learn its tunnel endpoint at once.
        if created {
            self.notify(Kind::Agent, "create", &doc).await;
        }
        Ok(doc)
    }

    pub fn is_alive(&self, a: &Value) -> bool {
        a["heartbeat_timestamp"]
            .as_str()
            .and_then(|t| chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S").ok())
            .is_some_and(|t| {
                (chrono::Utc::now().naive_utc() - t).num_seconds()
                    < self.config.network.agent_down_time
            })
    }

    /// An alive, enabled agent of a type, for automatic scheduling.
    pub async fn pick_agent(&self, agent_type: &str) -> Result<Option<String>> {
        Ok(store::list(&self.db, Kind::Agent)
            .await?
            .into_iter()
            .find(|a| {
                a["agent_type"] == agent_type && a["admin_state_up"] == true && self.is_alive(a)
            })
            .and_then(|a| a["id"].as_str().map(str::to_owned)))
    }

    /// Up to `n` alive, enabled agents of a type, the least loaded first
    /// (by the routers they host), for routers needing several.
    pub async fn pick_agents(&self, agent_type: &str, n: usize) -> Result<Vec<String>> {
        let routers = store::list(&self.db, Kind::Router).await?;
        let load = |id: &str| {
            routers
                .iter()
                .filter(|r| {
                    r["_l3_agents"]
                        .as_array()
                        .is_some_and(|a| a.iter().any(|x| x == id))
                })
                .count()
        };
        let mut ids: Vec<String> = store::list(&self.db, Kind::Agent)
            .await?
            .into_iter()
            .filter(|a| {
                a["agent_type"] == agent_type && a["admin_state_up"] == true && self.is_alive(a)
            })
            .filter_map(|a| a["id"].as_str().map(str::to_owned))
            .collect();
        ids.sort_by_cached_key(|id| load(id));
        ids.truncate(n);
        Ok(ids)
    }

    pub async fn update_agent(
        &self,
        ctx: &AuthContext,
        id: &str,
        body: &Map<String, Value>,
    ) -> Result<Value> {
        self.enforce(ctx, "update_agent", &json!({}))?;
        check_known(body, Kind::Agent)?;
        let mut doc = self.get_doc(Kind::Agent, id).await?;
        if let Some(v) = opt_bool(body, "admin_state_up")? {
            doc["admin_state_up"] = json!(v);
        }
        if let Some(v) = body.get("description") {
            doc["description"] = v.clone();
        }
        let mut tx = store::Tx::begin(&self.db);
        tx.update(Kind::Agent, &doc);
        tx.commit().await?;
        Ok(doc)
    }

    pub async fn delete_agent(&self, ctx: &AuthContext, id: &str) -> Result<()> {
        self.enforce(ctx, "delete_agent", &json!({}))?;
        self.get_doc(Kind::Agent, id).await?;
        let mut tx = store::Tx::begin(&self.db);
        tx.delete(Kind::Agent, id);
        tx.commit().await?;
        Ok(())
    }

    /// Schedule (`add`) or unschedule a router on an L3 agent, or a network
    /// on a DHCP agent. `field` is the internal list on the resource.
    pub async fn schedule(
        &self,
        ctx: &AuthContext,
        agent_id: &str,
        kind: Kind,
        id: &str,
        add: bool,
    ) -> Result<()> {
        let (want_type, field, rule) = match (kind, add) {
            (Kind::Router, true) => ("L3 agent", "_l3_agents", "create_l3-router"),
            (Kind::Router, false) => ("L3 agent", "_l3_agents", "delete_l3-router"),
            (_, true) => ("DHCP agent", "_dhcp_agents", "create_dhcp-network"),
            (_, false) => ("DHCP agent", "_dhcp_agents", "delete_dhcp-network"),
        };
        self.enforce(ctx, rule, &json!({}))?;
        let agent = self.get_doc(Kind::Agent, agent_id).await?;
        if agent["agent_type"] != want_type {
            return Err(Error::Conflict(format!(
                "Agent {agent_id} is not a {want_type}."
            )));
        }
        let mut doc = self.get_doc(kind, id).await?;
        let mut list: Vec<String> = doc[field]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        if add {
            if agent["admin_state_up"] != true {
                return Err(Error::Conflict(format!(
                    "Agent {agent_id} is administratively disabled."
                )));
            }
            if list.iter().any(|a| a == agent_id) {
                // Neutron: a router already on this L3 agent needs nothing
                // more (the seed's `l3-agent-router-add` of an auto-scheduled
                // router); a network already on a DHCP agent is a conflict.
                if kind == Kind::Router {
                    return Ok(());
                }
                return Err(Error::Conflict(format!(
                    "The network {id} is already hosted by agent {agent_id}."
                ))
                .typed("NetworkHostedByDHCPAgent"));
            }
            let room = self.agents_per_router(super::ha::is_ha(&doc));
            if kind == Kind::Router && list.len() >= room {
                return Err(Error::Conflict(format!(
                    "The router {id} has been already hosted by the L3 Agent {}.",
                    list[0]
                ))
                .typed("RouterHostedByL3Agent"));
            }
            list.push(agent_id.to_owned());
        } else {
            let before = list.len();
            list.retain(|a| a != agent_id);
            if list.len() == before {
                return Err(Error::NotFound(format!(
                    "The {} {id} is not hosted by agent {agent_id}.",
                    kind.as_str()
                )));
            }
        }
        doc[field] = json!(list);
        let mut tx = store::Tx::begin(&self.db);
        tx.update(kind, &doc);
        tx.commit().await?;
        self.notify(kind, "update", &doc).await;
        Ok(())
    }

    /// Resources of `kind` hosted by an agent, or agents hosting a resource.
    pub async fn hosted_by(&self, agent_id: &str, kind: Kind) -> Result<Vec<Value>> {
        let field = if kind == Kind::Router {
            "_l3_agents"
        } else {
            "_dhcp_agents"
        };
        Ok(store::list(&self.db, kind)
            .await?
            .into_iter()
            .filter(|d| {
                d[field]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|x| x == agent_id))
            })
            .collect())
    }

    pub async fn agents_hosting(&self, kind: Kind, id: &str) -> Result<Vec<Value>> {
        let field = if kind == Kind::Router {
            "_l3_agents"
        } else {
            "_dhcp_agents"
        };
        let doc = self.get_doc(kind, id).await?;
        let ids: Vec<Value> = doc[field].as_array().cloned().unwrap_or_default();
        let mut out = Vec::new();
        for a in ids {
            if let Some(agent) =
                store::get(&self.db, Kind::Agent, a.as_str().unwrap_or_default()).await?
            {
                out.push(agent);
            }
        }
        if kind == Kind::Router {
            // Neutron's `ha_state`: null for a legacy router.
            let states = if super::ha::is_ha(&doc) {
                super::ha::ha_states(&doc, &out, |a| self.is_alive(a))
            } else {
                vec![Value::Null; out.len()]
            };
            for (agent, state) in out.iter_mut().zip(states) {
                agent["ha_state"] = state;
            }
        }
        Ok(out)
    }
}
