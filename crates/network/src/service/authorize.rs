//! Where the service asks the policy (`crate::policy`): what a rule sees of
//! a document (its target), who sees a document, who may create, change or
//! delete one. No decision here is made outside the policy's rules.

use super::*;

impl NetworkService {
    /// The target a rule sees for a stored document: the document with
    /// what Neutron adds to it — the network's owner and sharing for
    /// subnets and ports (`network:project_id`, `shared`), the security
    /// group's owner for rules (`security_group:project_id`).
    pub fn policy_target(&self, kind: Kind, doc: &Value, related: &Related) -> Value {
        let mut target = doc.clone();
        match kind {
            Kind::Subnet | Kind::Port => {
                let network = related
                    .networks
                    .get(doc["network_id"].as_str().unwrap_or_default());
                add_network(&mut target, network);
            }
            Kind::SecurityGroupRule => {
                let group = doc["security_group_id"].as_str().unwrap_or_default();
                target["security_group:project_id"] = related
                    .group_projects
                    .get(group)
                    .cloned()
                    .unwrap_or(Value::Null);
            }
            _ => {}
        }
        target
    }

    /// Whether the caller may see a document (`get_<kind>`).
    pub fn visible_with(
        &self,
        ctx: &AuthContext,
        kind: Kind,
        doc: &Value,
        related: &Related,
    ) -> bool {
        let target = self.policy_target(kind, doc, related);
        self.policy
            .check(&format!("get_{}", kind.as_str()), ctx, &target)
    }

    /// The document, if the caller may see it; 404 otherwise (as Neutron,
    /// which does not tell a forbidden document from a missing one).
    pub async fn get_visible(&self, ctx: &AuthContext, kind: Kind, id: &str) -> Result<Value> {
        let doc = self.get_doc(kind, id).await?;
        let related = self.related(kind, std::slice::from_ref(&doc)).await?;
        if !self.visible_with(ctx, kind, &doc, &related) {
            return Err(not_found(kind, id));
        }
        Ok(doc)
    }

    /// The document, for an update the caller is allowed (`update_<kind>`
    /// and the rule of each attribute `body` sets): 404 if invisible, 403
    /// if visible but not allowed.
    pub async fn get_for_update(
        &self,
        ctx: &AuthContext,
        kind: Kind,
        id: &str,
        body: &Map<String, Value>,
    ) -> Result<Value> {
        self.get_for(ctx, "update", kind, id, body).await
    }

    /// The document, for a delete the caller is allowed (`delete_<kind>`).
    pub async fn get_for_delete(&self, ctx: &AuthContext, kind: Kind, id: &str) -> Result<Value> {
        self.get_for(ctx, "delete", kind, id, &Map::new()).await
    }

    async fn get_for(
        &self,
        ctx: &AuthContext,
        action: &str,
        kind: Kind,
        id: &str,
        body: &Map<String, Value>,
    ) -> Result<Value> {
        let doc = self.get_doc(kind, id).await?;
        let related = self.related(kind, std::slice::from_ref(&doc)).await?;
        if !self.visible_with(ctx, kind, &doc, &related) {
            return Err(not_found(kind, id));
        }
        // As Neutron: the rules see the document as it would be after the change.
        let mut target = self.policy_target(kind, &doc, &related);
        for (k, v) in body {
            target[k] = v.clone();
        }
        self.policy
            .enforce_request(action, kind.as_str(), ctx, &target, body)?;
        Ok(doc)
    }

    /// Enforce `create_<kind>` and its attribute rules for a request body
    /// creating a document of `project` in `parent` (the network of a
    /// subnet or port, the security group of a rule).
    pub fn authorize_create(
        &self,
        ctx: &AuthContext,
        kind: Kind,
        project: &str,
        parent: Option<&Value>,
        body: &Map<String, Value>,
    ) -> Result<()> {
        let mut target = Value::Object(body.clone());
        target["project_id"] = json!(project);
        target["tenant_id"] = json!(project);
        match kind {
            Kind::Subnet | Kind::Port => add_network(&mut target, parent),
            Kind::SecurityGroupRule => {
                target["security_group:project_id"] =
                    parent.map_or(Value::Null, |g| g["project_id"].clone());
            }
            _ => {}
        }
        self.policy
            .enforce_request("create", kind.as_str(), ctx, &target, body)
    }

    /// Enforce a rule that is not one of a document kind's
    /// (`add_router_interface`, `get_quota`, `create_l3-router`, …).
    pub fn enforce(&self, ctx: &AuthContext, action: &str, target: &Value) -> Result<()> {
        self.policy.enforce(action, ctx, target)
    }

    /// Neutron's `context.is_admin` (the `context_is_admin` rule), which
    /// its plugins consult for checks that are not attribute rules.
    pub fn is_admin(&self, ctx: &AuthContext) -> bool {
        self.policy.is_admin(ctx)
    }
}

/// What a subnet's or port's target carries of its network.
fn add_network(target: &mut Value, network: Option<&Value>) {
    let Some(network) = network else {
        target["network:project_id"] = Value::Null;
        return;
    };
    target["network:project_id"] = network["project_id"].clone();
    target["network:tenant_id"] = network["project_id"].clone();
    target["shared"] = json!(network["shared"] == true);
}
