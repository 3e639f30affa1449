//! The parts of `POST /servers`' request schema that Nova changed by
//! microversion. The typed body ([`CreateServerBody`]) takes the union of
//! every version's fields; this says which of them the asked version
//! allows, so a field is refused (400) exactly where Nova's schema lacks it.

use super::ApiVersion;
use crate::service::servers::boot_request::{CreateServerBody, Networks};
use ferrostack_core::{Error, Result};

/// Nova's JSON-schema style message for a field the version's schema
/// does not have.
fn unexpected(object: &str, field: &str) -> Error {
    Error::BadRequest(format!(
        "Invalid input for field/attribute {object}. Additional properties are not allowed ('{field}' was unexpected)"
    ))
}

/// Device tags (on a network or a block device) exist at 2.32, were lost
/// by mistake in 2.33–2.41 and came back at 2.42.
pub fn device_tags_allowed(version: ApiVersion) -> bool {
    version == (2, 32) || version >= (2, 42)
}

/// Nova's `tag` parameter type: at most 60 characters, no `,` or `/`
/// (the metadata service lists devices by tag in a path).
pub fn check_device_tag(tag: &str) -> Result<()> {
    if tag.chars().count() > 60 || tag.contains([',', '/']) {
        return Err(Error::BadRequest(format!(
            "Invalid input for field/attribute tag. Value: {tag}. '{tag}' does not match '^[^,/]*$' or is longer than 60 characters"
        )));
    }
    Ok(())
}

/// Check `body` against the schema of `version`, and fill in what the
/// version implies (before 2.19 the description is the name, as Nova
/// keeps it).
pub fn check(body: &mut CreateServerBody, version: ApiVersion) -> Result<()> {
    let s = &mut body.server;
    if version < (2, 19) {
        if s.description.is_some() {
            return Err(unexpected("server", "description"));
        }
        s.description = Some(Some(s.name.clone()));
    }
    if version >= (2, 57) && s.personality.is_some() {
        return Err(unexpected("server", "personality"));
    }
    s.multiattach_allowed = version >= (2, 60);
    s.resource_request_allowed = version >= (2, 72);
    if let Some(certs) = &s.trusted_image_certificates {
        if version < (2, 63) {
            return Err(unexpected("server", "trusted_image_certificates"));
        }
        check_trusted_certificates(certs)?;
        let volume_backed = s.image_ref.as_ref().is_none_or(|r| r.text().is_empty());
        if volume_backed {
            return Err(Error::BadRequest(
                "Image certificate validation is not supported for volume-backed servers.".into(),
            ));
        }
    }
    for (field, given) in [
        ("host", s.host.is_some()),
        ("hypervisor_hostname", s.hypervisor_hostname.is_some()),
    ] {
        if given && version < (2, 74) {
            return Err(unexpected("server", field));
        }
    }
    if let Some(h) = &s.hostname {
        check_hostname(h, version, "server")?;
    }
    check_networks(s.networks.as_ref(), version)?;
    if let Some(tags) = &s.tags {
        if version < (2, 52) {
            return Err(unexpected("server", "tags"));
        }
        check_server_tags(tags)?;
    }
    let tags = device_tags_allowed(version);
    for b in s.block_device_mapping_v2.iter().flatten() {
        if b.volume_type.is_some() && version < (2, 67) {
            return Err(unexpected("block_device_mapping_v2", "volume_type"));
        }
        match &b.tag {
            Some(_) if !tags => return Err(unexpected("block_device_mapping_v2", "tag")),
            Some(t) => check_device_tag(t)?,
            None => {}
        }
    }
    Ok(())
}

/// `hostname` at create, update and rebuild (`object` names the body):
/// none before 2.90, a single label (Nova's `hostname`: 2 to 63 letters,
/// digits and inner hyphens) to 2.93, from 2.94 an FQDN (Nova's `fqdn`:
/// 1 to 255 of letters, digits, `-`, `.`, `_`).
pub fn check_hostname(hostname: &str, version: ApiVersion, object: &str) -> Result<()> {
    if version < (2, 90) {
        return Err(unexpected(object, "hostname"));
    }
    let ok = if version >= (2, 94) {
        (1..=255).contains(&hostname.len())
            && hostname
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
    } else {
        let b = hostname.as_bytes();
        (2..=63).contains(&b.len())
            && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
            && b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric()
    };
    if !ok {
        return Err(Error::BadRequest(format!(
            "Invalid input for field/attribute hostname. Value: {hostname}. '{hostname}' is not a valid hostname"
        )));
    }
    Ok(())
}

/// 2.37 made `networks` required, added `auto` and `none`, and asks a
/// network's `uuid` to be a UUID; device tags as [`device_tags_allowed`].
fn check_networks(networks: Option<&Networks>, version: ApiVersion) -> Result<()> {
    let list = match networks {
        None if version >= (2, 37) => {
            return Err(Error::BadRequest(
                "Invalid input for field/attribute server. Value: networks. 'networks' is a required property".into(),
            ))
        }
        None => return Ok(()),
        Some(Networks::Keyword(k)) if version < (2, 37) => {
            return Err(Error::BadRequest(format!(
                "Invalid input for field/attribute networks. Value: {k}. '{k}' is not of type 'array'"
            )))
        }
        Some(Networks::Keyword(_)) => return Ok(()),
        Some(Networks::List(list)) => list,
    };
    for n in list {
        if let Some(t) = &n.tag {
            if !device_tags_allowed(version) {
                return Err(unexpected("networks", "tag"));
            }
            check_device_tag(t)?;
        }
        if let Some(u) = n.uuid.as_deref().filter(|_| version >= (2, 37)) {
            if uuid::Uuid::try_parse(u).is_err() {
                return Err(Error::BadRequest(format!(
                    "Invalid input for field/attribute uuid. Value: {u}. '{u}' is not a 'uuid'"
                )));
            }
        }
    }
    Ok(())
}

/// A server's tags (2.26's rules, at create from 2.52): at most 50, each
/// 1–60 characters without `/` or `,`.
pub fn check_server_tags(tags: &[String]) -> Result<()> {
    if tags.len() > 50 {
        return Err(Error::BadRequest(
            "The number of tags exceeded the per-server limit 50".into(),
        ));
    }
    for t in tags {
        if t.is_empty() || t.chars().count() > 60 || t.contains(['/', ',']) {
            return Err(Error::BadRequest(format!("Invalid tag: '{t}'")));
        }
    }
    Ok(())
}

/// Nova's `trusted_image_certificates`: 1–50 unique, non-empty ids.
pub fn check_trusted_certificates(certs: &[String]) -> Result<()> {
    let mut seen = std::collections::BTreeSet::new();
    let bad = certs.is_empty()
        || certs.len() > 50
        || certs
            .iter()
            .any(|c| c.is_empty() || !seen.insert(c.as_str()));
    if bad {
        return Err(Error::BadRequest(
            "Invalid input for field/attribute trusted_image_certificates.".into(),
        ));
    }
    Ok(())
}
