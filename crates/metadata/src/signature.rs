//! The proxy's proof that it is asking for the instance it names:
//! `X-Instance-ID-Signature` is the hex HMAC-SHA256 of the instance id,
//! keyed by the secret the proxy and this service share (Neutron's metadata
//! agent and Nova's `metadata_proxy_shared_secret`).

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The longest instance id whose signature is checked; longer ids are
/// refused without hashing (ids are UUIDs).
pub const MAX_INSTANCE_ID_LEN: usize = 255;

fn mac(secret: &str, instance_id: &str) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(instance_id.as_bytes());
    mac
}

/// The signature a proxy sends for `instance_id`: lowercase hex.
pub fn sign(secret: &str, instance_id: &str) -> String {
    mac(secret, instance_id)
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether `signature` is the signature of `instance_id`, compared in
/// constant time.
pub fn verify(secret: &str, instance_id: &str, signature: &str) -> bool {
    if instance_id.len() > MAX_INSTANCE_ID_LEN {
        return false;
    }
    let Some(raw) = decode_hex(signature) else {
        return false;
    };
    mac(secret, instance_id).verify_slice(&raw).is_ok()
}

/// 64 hex digits to 32 bytes; anything else is `None`.
fn decode_hex(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    fn digit(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    bytes
        .chunks(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hex_hmac_sha256() {
        // RFC 4231 test case 2.
        let sig = sign("Jefe", "what do ya want for nothing?");
        assert_eq!(
            sig,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert!(verify("Jefe", "what do ya want for nothing?", &sig));
        assert!(verify(
            "Jefe",
            "what do ya want for nothing?",
            &sig.to_uppercase()
        ));
    }

    #[test]
    fn wrong_signatures_fail() {
        let sig = sign("secret", "a");
        assert!(!verify("secret", "b", &sig));
        assert!(!verify("other", "a", &sig));
        assert!(!verify("secret", "a", ""));
        assert!(!verify("secret", "a", &sig[..63]));
        assert!(!verify("secret", "a", &format!("{sig}00")));
        assert!(!verify(
            "secret",
            "a",
            &sig.replace(|c: char| c.is_ascii_digit(), "g")
        ));
        let long = "x".repeat(MAX_INSTANCE_ID_LEN + 1);
        assert!(!verify("secret", &long, &sign("secret", &long)));
    }
}
