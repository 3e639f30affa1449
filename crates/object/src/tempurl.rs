//! Temporary URLs (Swift's tempurl middleware): a signature over method,
//! expiry and path with one of the account's or container's keys lets a
//! request in without a token, for one object (or one prefix) until expiry.

use base64::Engine as _;
use ferrostack_core::Error;
use hmac::{Hmac, Mac};

/// The temp URL parameters of a query.
#[derive(Clone, Debug, Default)]
pub struct TempUrl {
    pub sig: String,
    pub expires: String,
    pub prefix: Option<String>,
    pub filename: Option<String>,
    pub inline: bool,
}

impl TempUrl {
    /// `None` unless the query carries `temp_url_sig`.
    pub fn from_query(q: &[(String, String)]) -> Option<TempUrl> {
        let get = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        Some(TempUrl {
            sig: get("temp_url_sig")?,
            expires: get("temp_url_expires").unwrap_or_default(),
            prefix: get("temp_url_prefix"),
            filename: get("filename"),
            inline: q.iter().any(|(n, _)| n == "inline"),
        })
    }
}

fn invalid() -> Error {
    Error::Unauthorized("Temp URL invalid".into())
}

/// Unix seconds of `temp_url_expires`: an integer or ISO 8601 (`...Z`).
pub fn parse_expires(s: &str) -> Option<i64> {
    if let Ok(n) = s.parse::<i64>() {
        return Some(n);
    }
    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%SZ")
        .ok()
        .map(|t| t.and_utc().timestamp())
}

#[derive(Clone, Copy)]
enum Digest {
    Sha1,
    Sha256,
    Sha512,
}

fn mac(digest: Digest, key: &[u8], body: &[u8]) -> Vec<u8> {
    macro_rules! run {
        ($h:ty) => {{
            let mut m = Hmac::<$h>::new_from_slice(key).expect("HMAC takes any key length");
            m.update(body);
            m.finalize().into_bytes().to_vec()
        }};
    }
    match digest {
        Digest::Sha1 => run!(sha1::Sha1),
        Digest::Sha256 => run!(sha2::Sha256),
        Digest::Sha512 => run!(sha2::Sha512),
    }
}

/// The digest and raw signature bytes of `temp_url_sig`: hex (length
/// names the digest) or `<digest>:<base64>`.
fn decode_sig(sig: &str) -> Option<(Digest, Vec<u8>)> {
    if let Some((name, b64)) = sig.split_once(':') {
        let digest = match name {
            "sha1" => Digest::Sha1,
            "sha256" => Digest::Sha256,
            "sha512" => Digest::Sha512,
            _ => return None,
        };
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let raw = engine
            .decode(b64.trim_end_matches('='))
            .or_else(|_| base64::engine::general_purpose::STANDARD.decode(b64))
            .ok()?;
        return Some((digest, raw));
    }
    let digest = match sig.len() {
        40 => Digest::Sha1,
        64 => Digest::Sha256,
        128 => Digest::Sha512,
        _ => return None,
    };
    let raw = (0..sig.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(sig.get(i..i + 2)?, 16).ok())
        .collect::<Option<Vec<u8>>>()?;
    Some((digest, raw))
}

/// Verify `t` for `method` on `path` (`/v1/AUTH_x/c/o`, decoded) against
/// `keys` at `now`. HEAD may use a signature made for GET, PUT or HEAD.
pub fn verify(
    t: &TempUrl,
    method: &str,
    path: &str,
    keys: &[String],
    now: i64,
) -> Result<(), Error> {
    let expires = parse_expires(&t.expires).ok_or_else(invalid)?;
    if expires <= now || keys.is_empty() {
        return Err(invalid());
    }
    let (digest, sig) = decode_sig(&t.sig).ok_or_else(invalid)?;
    let signed_path = match &t.prefix {
        Some(prefix) => {
            let (base, obj) = split_object(path).ok_or_else(invalid)?;
            if !obj.starts_with(prefix.as_str()) {
                return Err(invalid());
            }
            format!("prefix:{base}/{prefix}")
        }
        None => path.to_owned(),
    };
    let methods: &[&str] = match method {
        "HEAD" => &["HEAD", "GET", "PUT"],
        "GET" => &["GET"],
        "PUT" => &["PUT"],
        "POST" => &["POST"],
        "DELETE" => &["DELETE"],
        _ => return Err(invalid()),
    };
    let expires_text = &t.expires;
    for key in keys {
        for m in methods {
            let body = format!("{m}\n{expires_text}\n{signed_path}");
            if constant_eq(&mac(digest, key.as_bytes(), body.as_bytes()), &sig) {
                return Ok(());
            }
        }
    }
    Err(invalid())
}

/// Whether `sig` (hex, or `<digest>:<base64>`) is an HMAC of `message`
/// with one of `keys` (form POST signatures).
pub fn signed_by(sig: &str, message: &str, keys: &[String]) -> bool {
    let Some((digest, raw)) = decode_sig(sig) else {
        return false;
    };
    keys.iter()
        .any(|k| constant_eq(&mac(digest, k.as_bytes(), message.as_bytes()), &raw))
}

/// `(/v1/a/c, object)` of an object path.
fn split_object(path: &str) -> Option<(&str, &str)> {
    let mut idx = 0;
    for _ in 0..4 {
        idx += path[idx..].find('/')? + 1;
    }
    Some((&path[..idx - 1], &path[idx..]))
}

fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(key: &str, method: &str, expires: i64, path: &str) -> String {
        let raw = mac(
            Digest::Sha256,
            key.as_bytes(),
            format!("{method}\n{expires}\n{path}").as_bytes(),
        );
        raw.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn signatures() {
        let path = "/v1/AUTH_p/c/o";
        let t = TempUrl {
            sig: sign("k", "GET", 2000, path),
            expires: "2000".into(),
            ..Default::default()
        };
        assert!(verify(&t, "GET", path, &["k".into()], 1000).is_ok());
        assert!(verify(&t, "HEAD", path, &["x".into(), "k".into()], 1000).is_ok());
        assert!(verify(&t, "GET", path, &["other".into()], 1000).is_err());
        assert!(verify(&t, "GET", "/v1/AUTH_p/c/o2", &["k".into()], 1000).is_err());
        assert!(verify(&t, "PUT", path, &["k".into()], 1000).is_err());
        assert!(verify(&t, "GET", path, &["k".into()], 2000).is_err());
        assert_eq!(split_object(path), Some(("/v1/AUTH_p/c", "o")));
        assert_eq!(parse_expires("1970-01-01T00:01:40Z"), Some(100));
    }
}
