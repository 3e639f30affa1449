//! The namespaces an agent created, written down before each is created and
//! struck out after it is deleted. After a crash the agent knows exactly
//! what is its own to clean up, and never touches another agent's
//! namespaces on the same machine (tests run several "hosts" on one).

use std::collections::BTreeSet;
use std::path::PathBuf;

pub struct Ledger {
    path: PathBuf,
    names: BTreeSet<String>,
}

impl Ledger {
    pub fn open(path: PathBuf) -> Ledger {
        let names = std::fs::read_to_string(&path)
            .ok()
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or_default();
        Ledger { path, names }
    }

    fn save(&self) -> std::io::Result<()> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = self.path.with_extension("tmp");
        std::fs::write(&tmp, serde_json::to_vec(&self.names)?)?;
        std::fs::rename(tmp, &self.path)
    }

    /// Record `name` before creating it.
    pub fn add(&mut self, name: &str) -> std::io::Result<()> {
        if self.names.insert(name.to_owned()) {
            self.save()?;
        }
        Ok(())
    }

    /// Strike `name` out after deleting it.
    pub fn remove(&mut self, name: &str) -> std::io::Result<()> {
        if self.names.remove(name) {
            self.save()?;
        }
        Ok(())
    }

    pub fn with_prefix(&self, prefix: &str) -> Vec<String> {
        self.names
            .iter()
            .filter(|n| n.starts_with(prefix))
            .cloned()
            .collect()
    }
}
