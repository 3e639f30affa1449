//! A request path to what answers it, as Nova's `InstanceMetadata.lookup`
//! resolves it: the path is normalized (`//`, `.`, `..` and a trailing `/`
//! do not matter), `/openstack/…` is the OpenStack format, `/ec2/…` and
//! any other path the EC2 format (`/latest/meta-data/` is
//! `/ec2/latest/meta-data`), and `/` lists the EC2 versions.

use crate::{ec2, openstack, InstanceMetadata};

/// Paths longer than this are not looked up (no real path comes close).
pub const MAX_PATH_LEN: usize = 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContentType {
    Text,
    Json,
}

impl ContentType {
    pub fn header_value(self) -> &'static str {
        match self {
            ContentType::Text => "text/plain; charset=UTF-8",
            ContentType::Json => "application/json",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolved {
    /// A document, a value or a listing.
    Document {
        body: Vec<u8>,
        content_type: ContentType,
    },
    /// `/openstack/<version>/password`: the API reads or stores it.
    Password,
}

fn text(body: impl Into<Vec<u8>>) -> Option<Resolved> {
    Some(Resolved::Document {
        body: body.into(),
        content_type: ContentType::Text,
    })
}

fn json(body: Vec<u8>) -> Option<Resolved> {
    Some(Resolved::Document {
        body,
        content_type: ContentType::Json,
    })
}

/// The path's components after Python's `posixpath.normpath`: empty and
/// `.` components dropped, `..` removing the one before it (never above
/// the root). `None` for an over-long path.
pub fn normalize(path: &str) -> Option<Vec<&str>> {
    if path.len() > MAX_PATH_LEN {
        return None;
    }
    let mut tokens = Vec::new();
    for token in path.split('/') {
        match token {
            "" | "." => {}
            ".." => {
                tokens.pop();
            }
            other => tokens.push(other),
        }
    }
    Some(tokens)
}

/// What answers `path` for this instance; `None` is 404. `address` is the
/// address the request came from (see [`ec2::meta_data`]).
pub fn lookup(md: &InstanceMetadata, path: &str, address: Option<&str>) -> Option<Resolved> {
    let tokens = normalize(path)?;
    match tokens.split_first() {
        None => text(ec2::versions().join("\n")),
        Some((&"openstack", rest)) => lookup_openstack(md, rest),
        Some((&"ec2", rest)) => lookup_ec2(md, rest, address),
        Some(_) => lookup_ec2(md, &tokens, address),
    }
}

fn lookup_openstack(md: &InstanceMetadata, tokens: &[&str]) -> Option<Resolved> {
    let (version, rest) = match tokens.split_first() {
        None => return text(openstack::versions().join("\n")),
        Some(split) => split,
    };
    let version = openstack::version_index(version)?;
    let name = match rest {
        [] => return text(openstack::listing(md, version).join("\n")),
        [name] => *name,
        _ => return None,
    };
    if !openstack::listing(md, version).contains(&name) {
        return None;
    }
    match name {
        openstack::META_DATA => json(openstack::meta_data(md, version, false)),
        openstack::USER_DATA => text(md.user_data_lossy()?),
        openstack::PASSWORD => Some(Resolved::Password),
        openstack::VENDOR_DATA => json(openstack::vendor_data(md)),
        openstack::NETWORK_DATA => json(openstack::network_data(md)),
        openstack::VENDOR_DATA2 => json(openstack::vendor_data2(md)),
        _ => None,
    }
}

fn lookup_ec2(md: &InstanceMetadata, tokens: &[&str], address: Option<&str>) -> Option<Resolved> {
    let (version, rest) = match tokens.split_first() {
        None => return text(ec2::versions().join("\n")),
        Some(split) => split,
    };
    let version = ec2::version_index(version)?;
    match rest {
        [] => {
            let mut listing = vec!["meta-data/"];
            if md.user_data_lossy().is_some() {
                listing.push("user-data");
            }
            text(listing.join("\n"))
        }
        ["user-data"] => text(md.user_data_lossy()?),
        ["meta-data", path @ ..] => {
            let tree = ec2::meta_data(md, version, address);
            text(ec2::render(ec2::find(&tree, path)?))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests_support::two_port_instance;

    fn body(md: &InstanceMetadata, path: &str) -> Option<String> {
        match lookup(md, path, None)? {
            Resolved::Document { body, .. } => Some(String::from_utf8(body).unwrap()),
            Resolved::Password => Some("<password>".into()),
        }
    }

    #[test]
    fn normalization() {
        assert_eq!(normalize("/").unwrap(), Vec::<&str>::new());
        assert_eq!(normalize("").unwrap(), Vec::<&str>::new());
        assert_eq!(
            normalize("//latest/./meta-data/").unwrap(),
            ["latest", "meta-data"]
        );
        assert_eq!(
            normalize("/../../openstack/x/../latest").unwrap(),
            ["openstack", "latest"]
        );
        assert_eq!(normalize(&"/a".repeat(MAX_PATH_LEN)), None);
    }

    #[test]
    fn top_level_listings() {
        let md = two_port_instance();
        let ec2_versions = "1.0\n2007-01-19\n2007-03-01\n2007-08-29\n2007-10-10\n2007-12-15\n\
                            2008-02-01\n2008-09-01\n2009-04-04\nlatest";
        assert_eq!(body(&md, "/").unwrap(), ec2_versions);
        assert_eq!(body(&md, "/ec2").unwrap(), ec2_versions);
        assert_eq!(
            body(&md, "/openstack/").unwrap(),
            "2012-08-10\n2013-04-04\n2013-10-17\n2015-10-15\n2016-06-30\n2016-10-06\n\
             2017-02-22\n2018-08-27\n2020-10-14\nlatest"
        );
        assert_eq!(body(&md, "/latest").unwrap(), "meta-data/\nuser-data");
        assert_eq!(
            body(&md, "/ec2/2009-04-04/").unwrap(),
            "meta-data/\nuser-data"
        );
        assert_eq!(
            body(&md, "/2009-04-04/user-data").unwrap(),
            "#cloud-config\nhostname: a\n"
        );
        assert_eq!(
            body(&md, "/latest/meta-data/placement/").unwrap(),
            "availability-zone"
        );
    }

    #[test]
    fn openstack_documents() {
        let md = two_port_instance();
        assert_eq!(
            body(&md, "/openstack/2012-08-10").unwrap(),
            "meta_data.json\nuser_data"
        );
        assert_eq!(
            body(&md, "/openstack/latest/user_data").unwrap(),
            "#cloud-config\nhostname: a\n"
        );
        assert_eq!(
            lookup(&md, "/openstack/latest/password", None),
            Some(Resolved::Password)
        );
        assert_eq!(lookup(&md, "/openstack/2012-08-10/password", None), None);
        assert_eq!(
            lookup(&md, "/openstack/2013-04-04/vendor_data.json", None),
            None
        );
        assert_eq!(
            lookup(&md, "/openstack/2013-10-17/network_data.json", None),
            None
        );
        assert_eq!(
            lookup(&md, "/openstack/2016-06-30/vendor_data2.json", None),
            None
        );
        for path in [
            "/openstack/latest/meta_data.json",
            "/openstack/latest/network_data.json",
            "/openstack/latest/vendor_data.json",
            "/openstack/latest/vendor_data2.json",
        ] {
            match lookup(&md, path, None) {
                Some(Resolved::Document { body, content_type }) => {
                    assert_eq!(content_type, ContentType::Json, "{path}");
                    serde_json::from_slice::<serde_json::Value>(&body).unwrap();
                }
                other => panic!("{path}: {other:?}"),
            }
        }
        let Some(Resolved::Document { content_type, .. }) =
            lookup(&md, "/openstack/latest/user_data", None)
        else {
            panic!()
        };
        assert_eq!(content_type, ContentType::Text);
    }

    #[test]
    fn unknown_paths() {
        let mut md = two_port_instance();
        for path in [
            "/openstack/2012-08-11",
            "/openstack/latest/nothing",
            "/openstack/latest/meta_data.json/uuid",
            "/openstack/content/0000",
            "/2010-01-01/meta-data",
            "/latest/meta-data/nothing",
            "/latest/user-data/x",
            "/latest/other",
            "/nothing",
        ] {
            assert_eq!(lookup(&md, path, None), None, "{path}");
        }
        md.user_data_b64 = None;
        assert_eq!(lookup(&md, "/latest/user-data", None), None);
        assert_eq!(lookup(&md, "/openstack/latest/user_data", None), None);
        assert_eq!(body(&md, "/latest").unwrap(), "meta-data/");
    }
}
