//! Per-project quotas: defaults from configuration, overrides stored per project.

use super::*;

pub const QUOTA_RESOURCES: &[(&str, Kind)] = &[
    ("network", Kind::Network),
    ("subnet", Kind::Subnet),
    ("port", Kind::Port),
    ("router", Kind::Router),
    ("floatingip", Kind::FloatingIp),
    ("security_group", Kind::SecurityGroup),
    ("security_group_rule", Kind::SecurityGroupRule),
];

impl NetworkService {
    pub fn default_quota(&self) -> Value {
        let n = &self.config.network;
        json!({
            "network": n.quota_network, "subnet": n.quota_subnet, "port": n.quota_port,
            "router": n.quota_router, "floatingip": n.quota_floatingip,
            "security_group": n.quota_security_group, "security_group_rule": n.quota_security_group_rule,
        })
    }

    pub async fn quota(&self, project: &str) -> Result<Value> {
        let mut q = self.default_quota();
        if let Some(o) = store::get(&self.db, Kind::Quota, project).await? {
            if let (Some(qm), Some(om)) = (q.as_object_mut(), o["limits"].as_object()) {
                for (k, v) in om {
                    qm.insert(k.clone(), v.clone());
                }
            }
        }
        Ok(q)
    }

    pub async fn quota_limit(&self, project: &str, kind: Kind) -> Result<i64> {
        let name = QUOTA_RESOURCES
            .iter()
            .find(|(_, k)| *k == kind)
            .map(|(n, _)| *n)
            .unwrap_or("");
        Ok(self.quota(project).await?[name].as_i64().unwrap_or(-1))
    }

    /// Set a project's limits (`q`: resource name → limit, and `force`).
    pub async fn set_quota(
        &self,
        ctx: &AuthContext,
        project: &str,
        q: &Map<String, Value>,
    ) -> Result<Value> {
        self.enforce(ctx, "update_quota", &json!({"project_id": project}))?;
        let mut limits = store::get(&self.db, Kind::Quota, project)
            .await?
            .map(|d| d["limits"].clone())
            .unwrap_or_else(|| json!({}));
        let force = q.get("force").and_then(Value::as_bool).unwrap_or(false);
        for (k, v) in q {
            if k == "force" || k == "check_limit" {
                continue;
            }
            if !QUOTA_RESOURCES.iter().any(|(n, _)| n == k) {
                return Err(
                    Error::BadRequest(format!("Unrecognized attribute(s) '{k}'"))
                        .typed("HTTPBadRequest"),
                );
            }
            let n = v
                .as_i64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                .filter(|n| *n >= -1)
                .ok_or_else(|| Error::BadRequest(format!("Invalid input for {k}. Reason: '{v}' should be an integer greater or equal to -1.")))?;
            if !force && n >= 0 {
                let kind = QUOTA_RESOURCES
                    .iter()
                    .find(|(name, _)| name == k)
                    .map(|(_, kind)| *kind)
                    .expect("checked");
                let used = store::count_for_project(&self.db, kind, project).await?;
                if n < used {
                    return Err(Error::BadRequest(format!(
                        "Quota limit {n} for {k} must be greater than or equal to already used {used}"
                    ))
                    .typed("InvalidQuotaValue"));
                }
            }
            limits[k] = json!(n);
        }
        let doc = json!({"id": project, "project_id": project, "limits": limits});
        let exists = store::get(&self.db, Kind::Quota, project).await?.is_some();
        let mut tx = store::Tx::begin(&self.db);
        if exists {
            tx.update(Kind::Quota, &doc);
        } else {
            tx.insert(Kind::Quota, &doc);
        }
        tx.commit().await?;
        self.quota(project).await
    }

    pub async fn reset_quota(&self, ctx: &AuthContext, project: &str) -> Result<()> {
        self.enforce(ctx, "delete_quota", &json!({"project_id": project}))?;
        let mut tx = store::Tx::begin(&self.db);
        tx.delete(Kind::Quota, project);
        tx.commit().await
    }

    pub async fn quota_details(&self, project: &str) -> Result<Value> {
        let q = self.quota(project).await?;
        let mut out = serde_json::Map::new();
        for (name, kind) in QUOTA_RESOURCES {
            let used = store::count_for_project(&self.db, *kind, project).await?;
            out.insert(
                name.to_string(),
                json!({"limit": q[name], "used": used, "reserved": 0}),
            );
        }
        Ok(Value::Object(out))
    }
}
