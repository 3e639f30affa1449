//! The driver's errors. They are plain data so that they cross the bus
//! intact: a spawn that fails on the compute host reaches the server's
//! `fault` with its real reason and the right kind.

use serde::{Deserialize, Serialize};

pub type Result<T, E = DriverError> = std::result::Result<T, E>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "kind", content = "message", rename_all = "snake_case")]
pub enum DriverError {
    /// No such guest on this host.
    #[error("{0}")]
    InstanceNotFound(String),
    /// The guest cannot do this in its present state (e.g. unpause a running guest).
    #[error("{0}")]
    InvalidState(String),
    /// The image cannot boot or cannot be converted (not a disk, no boot sector, …).
    #[error("{0}")]
    InvalidImage(String),
    /// The request itself is wrong (a bad id, a flavor the host cannot give).
    #[error("{0}")]
    InvalidRequest(String),
    /// This backend does not offer the operation.
    #[error("{0}")]
    NotSupported(String),
    /// The hypervisor cannot run guests here (binary missing, process died at start).
    #[error("{0}")]
    HypervisorUnavailable(String),
    /// Anything else, with the real reason (a QMP error, an I/O error).
    #[error("{0}")]
    Failed(String),
}

impl DriverError {
    pub fn not_found(id: &str) -> Self {
        DriverError::InstanceNotFound(format!("Instance {id} could not be found."))
    }

    pub fn failed(context: &str, e: impl std::fmt::Display) -> Self {
        DriverError::Failed(format!("{context}: {e}"))
    }

    pub fn message(&self) -> &str {
        match self {
            DriverError::InstanceNotFound(m)
            | DriverError::InvalidState(m)
            | DriverError::InvalidImage(m)
            | DriverError::InvalidRequest(m)
            | DriverError::NotSupported(m)
            | DriverError::HypervisorUnavailable(m)
            | DriverError::Failed(m) => m,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_as_json() {
        let e = DriverError::InvalidImage("no boot sector".into());
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"kind": "invalid_image", "message": "no boot sector"})
        );
        assert_eq!(serde_json::from_value::<DriverError>(v).unwrap(), e);
    }
}
