//! QoS specs: named sets of limits (`read_iops_sec`, …) with the consumer
//! that enforces them, associated with volume types. Admin-only, as in
//! Cinder; a type carries at most one specs.

use crate::service::{type_not_found, VolumeService};
use crate::store::{self, qos::Consumer, qos::QosSpecs};
use ferrostack_core::{Error, Result};
use serde_json::{Map, Value};

pub fn qos_not_found(id: &str) -> Error {
    Error::NotFound(format!("QoS Specs {id} could not be found."))
}

/// The specs' key/value limits: every value a string, every key 1 to 255
/// characters (Cinder's `qos_specs` schema).
fn check_specs(specs: &Map<String, Value>) -> Result<()> {
    for (k, v) in specs {
        if k.is_empty() || k.chars().count() > 255 {
            return Err(Error::BadRequest(
                "Invalid input received: QoS specs keys must be 1 to 255 characters long.".into(),
            ));
        }
        if !v.is_string() {
            return Err(Error::BadRequest(format!(
                "Invalid input for field/attribute {k}. Value: {v}. {v} is not of type 'string'"
            )));
        }
    }
    crate::io_limits::check_limit_values(specs)
}

fn parse_consumer(v: &Value) -> Result<Consumer> {
    v.as_str().and_then(Consumer::parse).ok_or_else(|| {
        Error::BadRequest(format!(
            "Invalid input received: Valid consumer of QoS specs are: ['front-end', 'back-end', 'both'] (got {v})"
        ))
    })
}

impl VolumeService {
    pub async fn qos_specs(&self, id: &str) -> Result<QosSpecs> {
        store::qos::get(&self.db, id)
            .await?
            .ok_or_else(|| qos_not_found(id))
    }

    /// Create specs from Cinder's body: `name`, optional `consumer`
    /// (default `back-end`), every other key a spec.
    pub async fn create_qos(&self, mut body: Map<String, Value>) -> Result<QosSpecs> {
        let name = match body.remove("name") {
            Some(Value::String(n)) if !n.trim().is_empty() && n.trim().chars().count() <= 255 => {
                n.trim().to_owned()
            }
            Some(_) => return Err(Error::BadRequest(
                "Invalid input for field/attribute name. Name must be 1 to 255 characters long."
                    .into(),
            )),
            None => {
                return Err(Error::BadRequest(
                    "Invalid input for field/attribute qos_specs. 'name' is a required property"
                        .into(),
                ))
            }
        };
        let consumer = match body.remove("consumer") {
            Some(c) => parse_consumer(&c)?,
            None => Consumer::BackEnd,
        };
        check_specs(&body)?;
        if store::qos::name_taken(&self.db, &name).await? {
            return Err(Error::Conflict(format!("QoS Specs {name} already exists.")));
        }
        let q = QosSpecs {
            id: uuid::Uuid::new_v4().to_string(),
            name,
            consumer,
            specs: body,
        };
        store::qos::insert(&self.db, &q).await?;
        Ok(q)
    }

    /// Set keys (and `consumer`, which is not a spec) of existing specs.
    pub async fn update_qos(&self, id: &str, mut body: Map<String, Value>) -> Result<()> {
        let mut q = self.qos_specs(id).await?;
        if body.is_empty() {
            return Err(Error::BadRequest(
                "Missing required element 'qos_specs' in request body.".into(),
            ));
        }
        if let Some(c) = body.remove("consumer") {
            q.consumer = parse_consumer(&c)?;
        }
        check_specs(&body)?;
        q.specs.extend(body);
        store::qos::update(&self.db, &q).await
    }

    /// Remove keys; a key the specs do not have is a 404 and removes none.
    pub async fn unset_qos_keys(&self, id: &str, keys: &[String]) -> Result<()> {
        let mut q = self.qos_specs(id).await?;
        for k in keys {
            if q.specs.remove(k).is_none() {
                return Err(Error::NotFound(format!(
                    "QoS spec {id} has no spec with key {k}."
                )));
            }
        }
        store::qos::update(&self.db, &q).await
    }

    /// Delete specs; while associated with a type only with `force`.
    pub async fn delete_qos(&self, id: &str, force: bool) -> Result<()> {
        self.qos_specs(id).await?;
        if !force && !store::qos::associations(&self.db, id).await?.is_empty() {
            return Err(Error::BadRequest(format!(
                "QoS Specs {id} is still associated with entities."
            )));
        }
        store::qos::delete(&self.db, id).await
    }

    /// Put specs on a type that has none (or has these already).
    pub async fn associate_qos(&self, id: &str, type_id: Option<&str>) -> Result<()> {
        self.qos_specs(id).await?;
        let t = self.qos_type(type_id).await?;
        match t.qos_specs_id.as_deref() {
            Some(current) if current != id => Err(Error::BadRequest(format!(
                "Invalid volume type: Type {} is already associated with another qos specs: {current}",
                t.id
            ))),
            Some(_) => Ok(()),
            None => store::qos::set_type_specs(&self.db, &t.id, Some(id)).await,
        }
    }

    pub async fn disassociate_qos(&self, id: &str, type_id: Option<&str>) -> Result<()> {
        self.qos_specs(id).await?;
        let t = self.qos_type(type_id).await?;
        if t.qos_specs_id.as_deref() == Some(id) {
            store::qos::set_type_specs(&self.db, &t.id, None).await?;
        }
        Ok(())
    }

    pub async fn disassociate_all_qos(&self, id: &str) -> Result<()> {
        self.qos_specs(id).await?;
        store::qos::disassociate_all(&self.db, id).await
    }

    /// The type named by `vol_type_id` of an (dis)associate request.
    async fn qos_type(&self, type_id: Option<&str>) -> Result<store::types::VolumeType> {
        let type_id = type_id
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Error::BadRequest("Volume Type id must not be None.".into()))?;
        store::types::get(&self.db, type_id)
            .await?
            .ok_or_else(|| type_not_found(type_id))
    }
}
