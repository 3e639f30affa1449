//! Password and secret hashes.
//!
//! bcrypt reads only the first 72 bytes of its input, so a plain bcrypt hash
//! of `72×P + "one"` also accepts `72×P + "two"`. New hashes are therefore
//! Keystone's `bcrypt_sha256` (passlib's format, version 2): the password is
//! first reduced to HMAC-SHA256 keyed with the bcrypt salt, base64-encoded
//! (44 bytes), and that is bcrypt-hashed — every byte of a password of any
//! length counts, and Keystone reads and writes the same strings:
//! `$bcrypt-sha256$v=2,t=2b,r=<cost>$<salt22>$<digest31>`.
//!
//! Hashes written before (`$2a$`/`$2b$`/`$2y$`, plain bcrypt) still verify
//! as bcrypt does; they keep the 72-byte limit until the password is set
//! again. Both functions cost a bcrypt round: call them off the async
//! runtime (`spawn_blocking`).

use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

/// The prefix of Keystone's (passlib's) `bcrypt_sha256` hashes.
pub const BCRYPT_SHA256_PREFIX: &str = "$bcrypt-sha256$";

/// HMAC-SHA256 of the password keyed with the salt's text, base64 (44 bytes,
/// under bcrypt's 72 and without NUL bytes).
fn prehash(password: &[u8], salt: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(salt.as_bytes()).expect("HMAC takes any key");
    mac.update(password);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Hash a password or secret as `bcrypt_sha256` with `cost` rounds (log2).
pub fn hash(password: &str, cost: u32) -> Result<String, String> {
    let mut salt = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut salt);
    let salt_text = bcrypt::BASE_64.encode(salt);
    let parts = bcrypt::hash_with_salt(prehash(password.as_bytes(), &salt_text), cost, salt)
        .map_err(|e| e.to_string())?;
    // `$2b$NN$` + 22 characters of salt + 31 of digest.
    let full = parts.format_for_version(bcrypt::Version::TwoB);
    let digest = &full[full.len() - 31..];
    Ok(format!(
        "{BCRYPT_SHA256_PREFIX}v=2,t=2b,r={cost}${salt_text}${digest}"
    ))
}

/// Whether `password` matches `hashed`, a `bcrypt_sha256` or a plain bcrypt
/// hash. Anything malformed is a mismatch.
pub fn verify(password: &str, hashed: &str) -> bool {
    match hashed.strip_prefix(BCRYPT_SHA256_PREFIX) {
        Some(rest) => verify_bcrypt_sha256(password, rest).unwrap_or(false),
        None => bcrypt::verify(password, hashed).unwrap_or(false),
    }
}

/// `v=2,t=2b,r=12$<salt>$<digest>` (the part after the prefix).
fn verify_bcrypt_sha256(password: &str, rest: &str) -> Option<bool> {
    let mut parts = rest.split('$');
    let (params, salt, digest) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || salt.len() != 22 || digest.len() != 31 {
        return None;
    }
    let (mut version, mut ident, mut rounds) = (None, None, None);
    for param in params.split(',') {
        match param.split_once('=')? {
            ("v", v) => version = Some(v),
            ("t", t) => ident = Some(t),
            ("r", r) => rounds = r.parse::<u32>().ok(),
            _ => return None,
        }
    }
    // Version 1 (plain SHA-256, no HMAC) is passlib's old format; Keystone
    // writes only version 2.
    if version != Some("2") || !matches!(ident, Some("2a" | "2b")) {
        return None;
    }
    let bcrypt_hash = format!("${}${:02}${salt}{digest}", ident?, rounds?);
    bcrypt::verify(prehash(password.as_bytes(), salt), &bcrypt_hash).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_byte_of_a_long_password_counts() {
        let base = "P".repeat(72);
        let h = hash(&format!("{base}one"), 4).unwrap();
        assert!(h.starts_with("$bcrypt-sha256$v=2,t=2b,r=4$"), "{h}");
        assert!(verify(&format!("{base}one"), &h));
        assert!(!verify(&format!("{base}two"), &h));
        assert!(!verify(&base, &h));
        let long = "x".repeat(4096);
        assert!(verify(&long, &hash(&long, 4).unwrap()));
    }

    #[test]
    fn plain_bcrypt_hashes_still_verify() {
        let legacy = bcrypt::hash("admin_pass", 4).unwrap();
        assert!(verify("admin_pass", &legacy));
        assert!(!verify("admin_pas", &legacy));
    }

    #[test]
    fn reads_keystone_hashes() {
        // Keystone's Bcrypt_sha256.hash(b"password", rounds=4), computed
        // independently with Python's hmac and bcrypt modules.
        let keystone =
            "$bcrypt-sha256$v=2,t=2b,r=4$R6FAVUhOM2FObkCjFLNA..$nscOkz90KTnG1GmYDX757z5/bk8M3iW";
        assert!(verify("password", keystone));
        assert!(!verify("passwore", keystone));
        assert!(!verify("password", "$bcrypt-sha256$v=1,t=2b,r=4$x$y"));
        assert!(!verify("password", "not a hash"));
    }
}
