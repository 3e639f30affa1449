//! Object versioning (`X-Versions-Location` stack mode and
//! `X-History-Location` history mode): the archive copies the object
//! service makes before a write or delete, and the restore after one.

use super::ObjectService;
use crate::store::objects::{self, Object};
use crate::store::{containers, now_us, ListRange};
use ferrostack_core::{Error, Result};

/// The archive name of a version of `name` written at `modified_us`.
fn version_name(name: &str, modified_us: i64) -> String {
    format!(
        "{}/{}",
        version_prefix(name),
        crate::store::timestamp(modified_us)
    )
}

fn version_prefix(name: &str) -> String {
    format!("{:03x}{name}", name.len())
}

fn archive_of(c: &containers::Container) -> Option<&String> {
    c.meta
        .get("x-versions-location")
        .or_else(|| c.meta.get("x-history-location"))
}

/// Before an object is replaced (or, in history mode, deleted): copy what
/// is there into the archive container.
pub(crate) async fn before_write(
    svc: &ObjectService,
    c: &containers::Container,
    name: &str,
) -> Result<()> {
    let Some(archive) = archive_of(c) else {
        return Ok(());
    };
    let Ok(old) = svc.object(&c.account, &c.name, name).await else {
        return Ok(());
    };
    if containers::get(&svc.db, &c.account, archive)
        .await?
        .is_none()
    {
        return Err(Error::Status(
            axum::http::StatusCode::PRECONDITION_FAILED,
            format!("The versions container {archive} does not exist."),
        ));
    }
    let data_id = uuid::Uuid::new_v4().simple().to_string();
    objects::add_loose(&svc.db, &data_id).await?;
    svc.backend
        .duplicate(&old.data_id, &data_id)
        .await
        .map_err(Error::internal)?;
    let copy = Object {
        container: archive.clone(),
        name: version_name(name, old.modified_us),
        data_id,
        ..old
    };
    if let Some(replaced) = objects::put(&svc.db, &copy).await? {
        let _ = svc.backend.remove(&replaced.data_id).await;
        objects::remove_loose(&svc.db, &replaced.data_id).await?;
    }
    Ok(())
}

/// Before a delete: history mode archives the object.
pub(crate) async fn before_delete(
    svc: &ObjectService,
    c: &containers::Container,
    name: &str,
) -> Result<()> {
    if c.meta.contains_key("x-history-location") {
        before_write(svc, c, name).await?;
    }
    Ok(())
}

/// After a delete: stack mode (`X-Versions-Location`) brings back the
/// newest archived version.
pub(crate) async fn after_delete(
    svc: &ObjectService,
    c: &containers::Container,
    gone: &Object,
) -> Result<()> {
    let Some(archive) = c.meta.get("x-versions-location") else {
        return Ok(());
    };
    let range = ListRange {
        prefix: Some(format!("{}/", version_prefix(&gone.name))),
        reverse: true,
        limit: 1,
        ..Default::default()
    };
    let Some(latest) = objects::list(&svc.db, &c.account, archive, &range)
        .await?
        .pop()
    else {
        return Ok(());
    };
    let restored = Object {
        container: c.name.clone(),
        name: gone.name.clone(),
        modified_us: now_us(),
        ..latest.clone()
    };
    // The archived record's data moves back: same data, new name.
    objects::delete(
        &svc.db,
        &c.account,
        archive,
        &latest.name,
        Some(&latest.data_id),
    )
    .await?;
    objects::put(&svc.db, &restored).await?;
    objects::remove_loose(&svc.db, &latest.data_id).await?;
    Ok(())
}
