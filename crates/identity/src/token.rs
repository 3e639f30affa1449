//! Fernet tokens. A token is the Fernet encryption (AES-128-CBC + HMAC-SHA256)
//! of a compact JSON payload that carries everything a validator needs —
//! user, scope, roles, expiry, audit ids — so any controller holding the key
//! repository validates a token without reading the database. Revocation is
//! checked against an in-memory list of revocation events.

use ferrostack_core::auth::NamedRef;
use ferrostack_core::Error;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::RwLock;

/// What a token says. Field names are short because the token travels in
/// every request header.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TokenPayload {
    /// user id, name, domain id, domain name
    pub u: (String, String, String, String),
    /// authentication methods
    pub m: Vec<String>,
    /// project scope: id, name, domain id, domain name
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p: Option<(String, String, String, String)>,
    /// domain scope: id, name
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub d: Option<(String, String)>,
    /// system scope
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub s: bool,
    /// roles (id, name), implied roles included
    #[serde(default)]
    pub r: Vec<(String, String)>,
    /// issued at, microseconds since the epoch
    pub i: i64,
    /// expires at, microseconds since the epoch
    pub e: i64,
    /// audit ids: this token's, then its parent's for rescoped tokens
    pub a: Vec<String>,
    /// application credential id
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub c: Option<String>,
    /// user's password expiry (as stored), for `password_expires_at`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    /// application credential access rules: (service type, path, method)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ar: Option<Vec<(String, String, String)>>,
}

impl TokenPayload {
    pub fn roles(&self) -> Vec<NamedRef> {
        self.r
            .iter()
            .map(|(id, name)| NamedRef {
                id: id.clone(),
                name: name.clone(),
            })
            .collect()
    }
}

/// The key repository: files named by integers; `0` is the staged key, the
/// highest number the primary (used to encrypt), the rest secondary (still
/// accepted). The same layout and rotation as `keystone-manage fernet_rotate`.
pub struct KeyRepository {
    dir: PathBuf,
    keys: RwLock<Option<fernet::MultiFernet>>,
}

impl KeyRepository {
    pub fn open(dir: &Path) -> Result<Self, String> {
        let repo = KeyRepository {
            dir: dir.to_owned(),
            keys: RwLock::new(None),
        };
        repo.setup()?;
        repo.reload()?;
        Ok(repo)
    }

    /// Create the repository with a staged and a primary key if it is empty.
    fn setup(&self) -> Result<(), String> {
        std::fs::create_dir_all(&self.dir).map_err(|e| format!("{}: {e}", self.dir.display()))?;
        set_mode(&self.dir, 0o700);
        if self.key_indexes()?.is_empty() {
            self.write_key(0)?;
            self.write_key(1)?;
        }
        Ok(())
    }

    fn key_indexes(&self) -> Result<Vec<u64>, String> {
        let mut idx: Vec<u64> = std::fs::read_dir(&self.dir)
            .map_err(|e| format!("{}: {e}", self.dir.display()))?
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect();
        idx.sort_unstable();
        Ok(idx)
    }

    fn write_key(&self, index: u64) -> Result<(), String> {
        let path = self.dir.join(index.to_string());
        let tmp = self.dir.join(format!(".{index}.tmp"));
        std::fs::write(&tmp, fernet::Fernet::generate_key())
            .map_err(|e| format!("{}: {e}", tmp.display()))?;
        set_mode(&tmp, 0o600);
        std::fs::rename(&tmp, &path).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Re-read the keys from disk (after a rotation by another process).
    pub fn reload(&self) -> Result<(), String> {
        let mut idx = self.key_indexes()?;
        idx.reverse(); // primary (highest) first: MultiFernet encrypts with the first
        let mut keys = Vec::new();
        for i in idx {
            let text =
                std::fs::read_to_string(self.dir.join(i.to_string())).map_err(|e| e.to_string())?;
            let key = fernet::Fernet::new(text.trim())
                .ok_or_else(|| format!("key {i} is not a valid Fernet key"))?;
            keys.push(key);
        }
        if keys.is_empty() {
            return Err(format!("no keys in {}", self.dir.display()));
        }
        *self.keys.write().unwrap() = Some(fernet::MultiFernet::new(keys));
        Ok(())
    }

    /// Promote the staged key to primary, stage a new key, and drop the
    /// oldest secondary keys beyond `max_active`.
    pub fn rotate(&self, max_active: usize) -> Result<Vec<u64>, String> {
        let idx = self.key_indexes()?;
        let next = idx.iter().max().copied().unwrap_or(0) + 1;
        let staged = self.dir.join("0");
        std::fs::rename(&staged, self.dir.join(next.to_string())).map_err(|e| e.to_string())?;
        self.write_key(0)?;
        let mut idx = self.key_indexes()?;
        let max_active = max_active.max(2);
        while idx.len() > max_active {
            // Oldest secondary: the smallest non-zero index.
            let victim = idx.remove(1);
            std::fs::remove_file(self.dir.join(victim.to_string())).map_err(|e| e.to_string())?;
        }
        self.reload()?;
        Ok(idx)
    }

    pub fn encrypt(&self, payload: &TokenPayload) -> String {
        let json = serde_json::to_vec(payload).expect("payload serializes");
        let keys = self.keys.read().unwrap();
        let token = keys.as_ref().expect("keys loaded").encrypt(&json);
        token.trim_end_matches('=').to_owned()
    }

    /// Decrypt and parse; any failure is "not a token of ours".
    pub fn decrypt(&self, token: &str) -> Result<TokenPayload, Error> {
        let invalid = || Error::NotFound("The token is invalid or has expired.".into());
        if token.len() > 4096 {
            return Err(invalid());
        }
        let mut padded = token.to_owned();
        while !padded.len().is_multiple_of(4) {
            padded.push('=');
        }
        let keys = self.keys.read().unwrap();
        let plain = keys
            .as_ref()
            .expect("keys loaded")
            .decrypt(&padded)
            .map_err(|_| invalid())?;
        serde_json::from_slice(&plain).map_err(|_| invalid())
    }
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload() -> TokenPayload {
        TokenPayload {
            u: (
                "u".into(),
                "admin".into(),
                "default".into(),
                "Default".into(),
            ),
            m: vec!["password".into()],
            p: Some((
                "p".into(),
                "admin".into(),
                "default".into(),
                "Default".into(),
            )),
            d: None,
            s: false,
            r: vec![("r".into(), "admin".into())],
            i: 1,
            e: 2,
            a: vec!["audit".into()],
            c: None,
            x: None,
            ar: None,
        }
    }

    #[test]
    fn round_trip_rotation_and_tamper() {
        let dir = std::env::temp_dir().join(format!("fernet-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let repo = KeyRepository::open(&dir).unwrap();
        let t = repo.encrypt(&payload());
        assert_eq!(repo.decrypt(&t).unwrap(), payload());

        // Tokens made with the old primary stay valid after one rotation…
        repo.rotate(3).unwrap();
        assert_eq!(repo.decrypt(&t).unwrap(), payload());
        // …and a second controller reading the same directory accepts them.
        let other = KeyRepository::open(&dir).unwrap();
        assert_eq!(other.decrypt(&repo.encrypt(&payload())).unwrap(), payload());

        // After enough rotations the key is gone and the token is refused.
        repo.rotate(3).unwrap();
        repo.rotate(3).unwrap();
        assert!(repo.decrypt(&t).is_err());
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 3);

        let mut bad = repo.encrypt(&payload());
        bad.replace_range(10..11, if &bad[10..11] == "A" { "B" } else { "A" });
        assert!(repo.decrypt(&bad).is_err());
        assert!(repo.decrypt("garbage").is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
