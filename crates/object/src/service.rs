//! The object service: what each operation does to records and data,
//! after the API has decided the caller may do it.

mod versioning;

use crate::backend::{Backend, WriteError, Written};
use crate::store::objects::{self, Kind, Object};
use crate::store::{accounts, containers, now_us, Meta};
use axum::body::Bytes;
use ferrostack_core::config::Config;
use ferrostack_core::policy::Policy;
use ferrostack_core::{Error, Result};
use ferrostack_db::Db;
use futures::Stream;
use std::pin::Pin;
use std::sync::Arc;

pub type Body = Pin<Box<dyn Stream<Item = std::result::Result<Bytes, Error>> + Send>>;

pub struct ObjectService {
    pub db: Db,
    pub backend: Arc<dyn Backend>,
    pub config: Config,
    pub policy: Policy,
    /// EC2 credentials for the S3 API, looked up in the identity service.
    pub ec2: crate::s3::credentials::Ec2Credentials,
}

/// What a new object is, besides its bytes.
#[derive(Clone, Debug, Default)]
pub struct NewObject {
    pub content_type: String,
    pub meta: Meta,
    pub delete_at: Option<i64>,
    /// The MD5 the client says the bytes have (`ETag`): 422 otherwise.
    pub etag: Option<String>,
    /// `Content-Length`, when sent.
    pub length: Option<u64>,
}

fn not_found() -> Error {
    Error::NotFound(String::new())
}

pub fn now_s() -> i64 {
    now_us() / 1_000_000
}

impl ObjectService {
    pub fn new(db: Db, backend: Arc<dyn Backend>, config: Config) -> Result<Arc<Self>, String> {
        let policy = crate::access::policy(&config)?;
        Ok(Arc::new(ObjectService {
            db,
            backend,
            ec2: crate::s3::credentials::Ec2Credentials::new(&config),
            config,
            policy,
        }))
    }

    /// After a restart: temporary files go, and so does every data file
    /// left loose by an interrupted write or delete.
    pub async fn recover(&self) -> Result<()> {
        let tmp = self
            .backend
            .clear_temporary()
            .await
            .map_err(Error::internal)?;
        let mut removed = 0;
        for id in objects::loose(&self.db).await? {
            if !objects::referenced(&self.db, &id).await? {
                self.backend.remove(&id).await.map_err(Error::internal)?;
                removed += 1;
            }
            objects::remove_loose(&self.db, &id).await?;
        }
        if tmp + removed > 0 {
            tracing::info!(
                tmp,
                removed,
                "object store: removed data of interrupted writes"
            );
        }
        Ok(())
    }

    pub fn spawn_expirer(self: &Arc<Self>) {
        let interval = self.config.object.expirer_interval;
        if interval == 0 {
            return;
        }
        let me = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_secs(interval)).await;
                let Some(svc) = me.upgrade() else { return };
                if let Err(e) = svc.reap_expired().await {
                    tracing::warn!(error = %e, "object expirer");
                }
            }
        });
    }

    /// Delete objects past their `X-Delete-At`; how many.
    pub async fn reap_expired(&self) -> Result<usize> {
        let mut n = 0;
        loop {
            let batch = objects::expired(&self.db, now_s(), 500).await?;
            if batch.is_empty() {
                return Ok(n);
            }
            for o in batch {
                if let Some(old) = objects::delete(
                    &self.db,
                    &o.account,
                    &o.container,
                    &o.name,
                    Some(&o.data_id),
                )
                .await?
                {
                    self.drop_data(&old.data_id).await;
                    n += 1;
                }
            }
        }
    }

    /// Remove data no record names any more (a failure leaves it loose,
    /// for the next start to remove).
    async fn drop_data(&self, data_id: &str) {
        match self.backend.remove(data_id).await {
            Ok(()) => {
                let _ = objects::remove_loose(&self.db, data_id).await;
            }
            Err(e) => tracing::warn!(data_id, error = %e, "object data not removed"),
        }
    }

    /// Delete an empty container (objects past their expiry are reaped
    /// first: they no longer count).
    pub async fn delete_container(&self, account: &str, name: &str) -> Result<()> {
        let c = self.container(account, name).await?;
        if c.object_count > 0 {
            self.reap_expired().await?;
        }
        containers::delete(&self.db, account, name).await
    }

    pub async fn container(&self, account: &str, name: &str) -> Result<containers::Container> {
        containers::get(&self.db, account, name)
            .await?
            .ok_or_else(not_found)
    }

    /// The live object at a name (expired ones are missing).
    pub async fn object(&self, account: &str, container: &str, name: &str) -> Result<Object> {
        objects::get(&self.db, account, container, name)
            .await?
            .filter(|o| !o.expired(now_s()))
            .ok_or_else(not_found)
    }

    /// How many more bytes (and objects) the account's and container's
    /// quotas allow; 413 when none.
    async fn room(&self, c: &containers::Container, adding: Option<u64>) -> Result<u64> {
        let mut room = self.config.object.max_file_size;
        let quota = |m: &Meta, k: &str| m.get(k).and_then(|v| v.parse::<i64>().ok());
        let over = || Error::PayloadTooLarge("Upload exceeds quota.".into());
        if let Some(q) = quota(&c.meta, "x-container-meta-quota-bytes") {
            room = room.min((q - c.bytes_used).max(0) as u64);
        }
        if let Some(q) = quota(&c.meta, "x-container-meta-quota-count") {
            if c.object_count >= q {
                return Err(over());
            }
        }
        if let Some(a) = accounts::get(&self.db, &c.account).await? {
            let bytes = ["x-account-meta-quota-bytes", "x-account-quota-bytes"]
                .iter()
                .filter_map(|k| quota(&a.meta, k))
                .min();
            let count = quota(&a.meta, "x-account-quota-count");
            if bytes.is_some() || count.is_some() {
                let used = accounts::totals(&self.db, &c.account).await?;
                if let Some(q) = bytes {
                    room = room.min((q - used.bytes).max(0) as u64);
                }
                if count.is_some_and(|q| used.objects >= q) {
                    return Err(over());
                }
            }
        }
        match adding {
            Some(n) if n > room && n <= self.config.object.max_file_size => Err(over()),
            Some(n) if n > room => Err(Error::PayloadTooLarge("Your request is too large.".into())),
            _ => Ok(room),
        }
    }

    /// Stream `body` into new data, verified against `etag`; the data is
    /// loose until a record names it.
    async fn write_data(
        &self,
        body: Body,
        limit: u64,
        length: Option<u64>,
        etag: Option<&str>,
    ) -> Result<Written> {
        let data_id = uuid::Uuid::new_v4().simple().to_string();
        objects::add_loose(&self.db, &data_id).await?;
        let written = match self.backend.write(&data_id, body, limit, length).await {
            Ok(w) => w,
            Err(e) => {
                self.drop_data(&data_id).await;
                return Err(match e {
                    WriteError::TooLarge if limit < self.config.object.max_file_size => {
                        Error::PayloadTooLarge("Upload exceeds quota.".into())
                    }
                    e => e.into(),
                });
            }
        };
        if let Some(want) = etag {
            if !want.trim_matches('"').eq_ignore_ascii_case(&written.md5) {
                self.drop_data(&data_id).await;
                return Err(Error::Status(
                    axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                    "Unable to process the contained instructions".into(),
                ));
            }
        }
        Ok(written)
    }

    /// Store an object from a body.
    pub async fn put_object(
        &self,
        account: &str,
        container: &str,
        name: &str,
        new: NewObject,
        body: Body,
    ) -> Result<Object> {
        let c = self.container(account, container).await?;
        let limit = self.room(&c, new.length).await?;
        let w = self
            .write_data(body, limit, new.length, new.etag.as_deref())
            .await?;
        let obj = Object {
            account: account.into(),
            container: container.into(),
            name: name.into(),
            data_id: w.data_id.clone(),
            kind: Kind::Plain,
            size: w.size as i64,
            etag: w.md5.clone(),
            content_type: new.content_type,
            modified_us: now_us(),
            delete_at: new.delete_at,
            meta: new.meta,
        };
        self.commit(&c, obj).await
    }

    /// Record `obj` (whose data is written and loose) at its name; the
    /// container's versioning keeps what it replaces.
    pub async fn commit(&self, c: &containers::Container, obj: Object) -> Result<Object> {
        if let Err(e) = versioning::before_write(self, c, &obj.name).await {
            self.drop_data(&obj.data_id).await;
            return Err(e);
        }
        match objects::put(&self.db, &obj).await {
            Ok(Some(old)) => self.drop_data(&old.data_id).await,
            Ok(None) => {}
            Err(e) => {
                self.drop_data(&obj.data_id).await;
                return Err(e);
            }
        }
        Ok(obj)
    }

    /// Store a small document (a manifest) as new, loose data.
    pub async fn write_document(&self, doc: Vec<u8>) -> Result<Written> {
        let len = doc.len() as u64;
        let body: Body = Box::pin(futures::stream::iter([Ok(Bytes::from(doc))]));
        self.write_data(body, u64::MAX, Some(len), None).await
    }

    /// Copy `src` to a new name, with `meta` (when given) instead of its
    /// own metadata.
    pub async fn copy_object(
        &self,
        src: &Object,
        account: &str,
        container: &str,
        name: &str,
        update: impl FnOnce(&mut Object),
    ) -> Result<Object> {
        let c = self.container(account, container).await?;
        self.room(&c, Some(src.size as u64)).await?;
        let data_id = uuid::Uuid::new_v4().simple().to_string();
        objects::add_loose(&self.db, &data_id).await?;
        if let Err(e) = self.backend.duplicate(&src.data_id, &data_id).await {
            self.drop_data(&data_id).await;
            return Err(Error::internal(e));
        }
        let mut obj = Object {
            account: account.into(),
            container: container.into(),
            name: name.into(),
            data_id,
            modified_us: now_us(),
            ..src.clone()
        };
        update(&mut obj);
        self.commit(&c, obj).await
    }

    pub async fn delete_object(
        &self,
        account: &str,
        container: &str,
        name: &str,
    ) -> Result<Object> {
        let c = self.container(account, container).await?;
        self.object(account, container, name).await?;
        versioning::before_delete(self, &c, name).await?;
        let gone = objects::delete(&self.db, account, container, name, None)
            .await?
            .ok_or_else(not_found)?;
        self.drop_data(&gone.data_id).await;
        versioning::after_delete(self, &c, &gone).await?;
        if gone.expired(now_s()) {
            return Err(not_found());
        }
        Ok(gone)
    }

    pub async fn post_object(
        &self,
        mut obj: Object,
        update: impl FnOnce(&mut Object),
    ) -> Result<()> {
        update(&mut obj);
        obj.modified_us = now_us();
        objects::set_meta(&self.db, &obj).await
    }

    /// The bytes of a plain object, `len` of them from `offset`.
    pub async fn read(
        &self,
        obj: &Object,
        offset: u64,
        len: u64,
    ) -> Result<crate::backend::ByteStream> {
        self.backend
            .read(&obj.data_id, offset, len)
            .await
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => not_found(),
                _ => Error::internal(e),
            })
    }
}
