//! Volume transfers: the giving project offers an `available` volume
//! (`awaiting-transfer`) with a one-time key; a project that presents the
//! key receives the volume and its snapshots, counted against its quotas
//! from then on.

use crate::service::VolumeService;
use crate::store::db_err;
use crate::store::{self, transfers::Transfer};
use ferrostack_core::auth::AuthContext;
use ferrostack_core::{Error, Result};
use rand::Rng;
use sha2::{Digest, Sha256};
use std::sync::Arc;

pub fn transfer_not_found(id: &str) -> Error {
    Error::NotFound(format!("Transfer {id} could not be found."))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn random_hex(n: usize) -> String {
    let bytes: Vec<u8> = (0..n).map(|_| rand::thread_rng().gen()).collect();
    hex(&bytes)
}

/// The salted hash a key is kept as (the key itself is shown once).
fn key_hash(salt: &str, key: &str) -> String {
    hex(&Sha256::digest(format!("{salt}{key}").as_bytes()))
}

impl VolumeService {
    pub async fn visible_transfer(&self, ctx: &AuthContext, id: &str) -> Result<Transfer> {
        let t = store::transfers::get(&self.db, id)
            .await?
            .ok_or_else(|| transfer_not_found(id))?;
        if ctx.project_id.as_deref() != Some(&t.project_id) && !self.is_admin(ctx) {
            return Err(transfer_not_found(id));
        }
        Ok(t)
    }

    /// Offer a volume: the transfer and its key (returned only here).
    pub async fn create_transfer(
        &self,
        ctx: &AuthContext,
        volume_id: &str,
        name: Option<String>,
    ) -> Result<(Transfer, String)> {
        let v = self.visible_volume(ctx, volume_id).await?;
        self.authorize(ctx, "volume:create_transfer", &v.project_id)?;
        let key = random_hex(8);
        let salt = random_hex(8);
        let t = Transfer {
            id: uuid::Uuid::new_v4().to_string(),
            volume_id: v.id.clone(),
            project_id: v.project_id.clone(),
            name,
            crypt_hash: key_hash(&salt, &key),
            salt,
            created_at: store::now_str(),
        };
        let mut tx = self.db.pool.begin().await.map_err(db_err)?;
        let from = ["available"];
        if !store::volumes::transition_on(&self.db, &mut tx, &v.id, &from, "awaiting-transfer")
            .await?
        {
            return Err(Error::BadRequest(format!(
                "Invalid volume: status must be available (current: {}).",
                v.status
            )));
        }
        store::transfers::insert_on(&self.db, &mut tx, &t).await?;
        tx.commit().await.map_err(db_err)?;
        Ok((t, key))
    }

    /// Withdraw an offer: the volume is `available` to its project again.
    pub async fn delete_transfer(&self, ctx: &AuthContext, id: &str) -> Result<()> {
        let t = self.visible_transfer(ctx, id).await?;
        self.authorize(ctx, "volume:delete_transfer", &t.project_id)?;
        let mut tx = self.db.pool.begin().await.map_err(db_err)?;
        if store::transfers::delete_on(&self.db, &mut tx, id).await? {
            let from = ["awaiting-transfer"];
            store::volumes::transition_on(&self.db, &mut tx, &t.volume_id, &from, "available")
                .await?;
        }
        tx.commit().await.map_err(db_err)
    }

    /// Receive a volume with its key: it and its snapshots become the
    /// caller's project's, under that project's quota lock.
    pub async fn accept_transfer(
        self: &Arc<Self>,
        ctx: &AuthContext,
        id: &str,
        auth_key: &str,
    ) -> Result<Transfer> {
        let project_id = Self::project_of(ctx)?;
        self.authorize(ctx, "volume:accept_transfer", &project_id)?;
        let t = store::transfers::get(&self.db, id)
            .await?
            .ok_or_else(|| transfer_not_found(id))?;
        if key_hash(&t.salt, auth_key) != t.crypt_hash {
            return Err(Error::BadRequest(format!(
                "Invalid auth key: Attempt to transfer {id} with invalid auth key."
            )));
        }
        let v = store::volumes::get(&self.db, &t.volume_id)
            .await?
            .ok_or_else(|| crate::service::volume_not_found(&t.volume_id))?;
        let types = self.type_names().await?;
        let type_name = types.get(&v.volume_type_id).cloned().unwrap_or_default();
        let snaps = store::snapshots::of_volume(&self.db, &v.id).await?;
        let mut deltas = crate::quota::volume_deltas(&type_name, v.size);
        for s in &snaps {
            deltas.extend(crate::quota::snapshot_deltas(&type_name, s.size));
        }
        let mut tx = self
            .db
            .begin_under_quota_lock("project_id", &project_id)
            .await?;
        self.check_quotas_on(&mut tx, &project_id, &deltas).await?;
        if !store::transfers::delete_on(&self.db, &mut tx, id).await? {
            return Err(transfer_not_found(id));
        }
        if !store::volumes::move_on(&self.db, &mut tx, &v.id, &project_id, &ctx.user_id).await? {
            return Err(crate::service::invalid_volume_status());
        }
        store::snapshots::move_on(&self.db, &mut tx, &v.id, &project_id, &ctx.user_id).await?;
        tx.commit().await.map_err(db_err)?;
        self.notify_by_id("volume.transfer.accept.end", &v.id)
            .await?;
        Ok(t)
    }
}
