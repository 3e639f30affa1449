//! Volume type encryption specs: which encryptor (LUKS, …), cipher, key
//! size and where it runs, for the volumes of a type. The specs are
//! stored and served as Cinder does; the file backend does not encrypt,
//! so a volume of an encrypted type is refused rather than written in
//! clear (see `VolumeService::check_type_usable`).

use crate::service::{type_not_found, VolumeService};
use crate::store::{self, encryption::Encryption};
use ferrostack_core::{Error, Result};

/// Cinder's `control_location`: where encryption runs.
pub const CONTROL_LOCATIONS: &[&str] = &["front-end", "back-end"];

/// The fields of a create or an update; `None`: not given.
#[derive(Default)]
pub struct EncryptionSpecs {
    pub provider: Option<String>,
    pub cipher: Option<Option<String>>,
    pub key_size: Option<Option<i64>>,
    pub control_location: Option<String>,
}

fn check_specs(s: &EncryptionSpecs) -> Result<()> {
    if let Some(c) = &s.control_location {
        if !CONTROL_LOCATIONS.contains(&c.as_str()) {
            return Err(Error::BadRequest(format!(
                "Invalid input received: Valid control location are: {CONTROL_LOCATIONS:?}"
            )));
        }
    }
    if let Some(Some(k)) = s.key_size {
        if k < 0 {
            return Err(Error::BadRequest(
                "Invalid input for field/attribute key_size. Value must be >= 0".into(),
            ));
        }
    }
    if s.provider
        .as_deref()
        .is_some_and(|p| p.is_empty() || p.len() > 255)
    {
        return Err(Error::BadRequest(
            "Invalid input for field/attribute provider. Value must be 1 to 255 characters long."
                .into(),
        ));
    }
    Ok(())
}

impl VolumeService {
    /// The encryption of type `type_id` (after the type is found).
    pub async fn type_encryption(&self, type_id: &str) -> Result<Option<Encryption>> {
        store::types::get(&self.db, type_id)
            .await?
            .ok_or_else(|| type_not_found(type_id))?;
        store::encryption::of_type(&self.db, type_id).await
    }

    /// Refused while the type has volumes (their data would not match)
    /// or already has specs.
    pub async fn create_encryption(&self, type_id: &str, s: EncryptionSpecs) -> Result<Encryption> {
        if self.type_encryption(type_id).await?.is_some() {
            return Err(Error::Conflict(format!(
                "Volume type encryption for type {type_id} already exists."
            )));
        }
        self.check_type_unused(type_id).await?;
        check_specs(&s)?;
        let provider = s.provider.ok_or_else(|| {
            Error::BadRequest(
                "Invalid input for field/attribute encryption. 'provider' is a required property"
                    .into(),
            )
        })?;
        let e = Encryption {
            encryption_id: uuid::Uuid::new_v4().to_string(),
            volume_type_id: type_id.to_owned(),
            provider,
            cipher: s.cipher.flatten(),
            key_size: s.key_size.flatten(),
            control_location: s.control_location.unwrap_or_else(|| "front-end".into()),
            created_at: store::now_str(),
            updated_at: None,
        };
        store::encryption::insert(&self.db, &e).await?;
        Ok(e)
    }

    pub async fn update_encryption(
        &self,
        type_id: &str,
        encryption_id: &str,
        s: EncryptionSpecs,
    ) -> Result<()> {
        let mut e = self
            .type_encryption(type_id)
            .await?
            .filter(|e| e.encryption_id == encryption_id)
            .ok_or_else(|| not_encrypted(type_id))?;
        self.check_type_unused(type_id).await?;
        check_specs(&s)?;
        if let Some(p) = s.provider {
            e.provider = p;
        }
        if let Some(c) = s.cipher {
            e.cipher = c;
        }
        if let Some(k) = s.key_size {
            e.key_size = k;
        }
        if let Some(c) = s.control_location {
            e.control_location = c;
        }
        e.updated_at = Some(store::now_str());
        store::encryption::update(&self.db, &e).await
    }

    pub async fn delete_encryption(&self, type_id: &str, encryption_id: &str) -> Result<()> {
        self.type_encryption(type_id)
            .await?
            .filter(|e| e.encryption_id == encryption_id)
            .ok_or_else(|| not_encrypted(type_id))?;
        self.check_type_unused(type_id).await?;
        store::encryption::delete(&self.db, type_id).await
    }

    async fn check_type_unused(&self, type_id: &str) -> Result<()> {
        if store::volumes::count_of_type(&self.db, type_id).await? > 0 {
            return Err(Error::BadRequest(
                "Invalid volume type: Cannot change encryption specs. Volume type in use.".into(),
            ));
        }
        Ok(())
    }
}

pub fn not_encrypted(type_id: &str) -> Error {
    Error::NotFound(format!(
        "Volume type encryption for type {type_id} does not exist."
    ))
}
