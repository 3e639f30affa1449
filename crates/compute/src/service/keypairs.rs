//! Key pairs: import of OpenSSH public keys and generation of RSA keys,
//! with Nova's MD5 fingerprints; X.509 certificates in `x509.rs`.

use super::ComputeService;
use crate::store::{self, catalog::KeyPair};
use base64::Engine;
use ferrostack_core::{Error, Result};

/// The key blob of an OpenSSH public key line, checked to be of the type it claims.
fn parse_public_key(line: &str) -> Result<Vec<u8>> {
    let bad =
        || Error::BadRequest("Keypair data is invalid: failed to generate fingerprint".into());
    let mut parts = line.split_whitespace();
    let kind = parts.next().ok_or_else(bad)?;
    let data = parts.next().ok_or_else(bad)?;
    let blob = base64::engine::general_purpose::STANDARD
        .decode(data)
        .map_err(|_| bad())?;
    if blob.len() < 4 {
        return Err(bad());
    }
    let n = u32::from_be_bytes([blob[0], blob[1], blob[2], blob[3]]) as usize;
    if blob.len() < 4 + n || &blob[4..4 + n] != kind.as_bytes() {
        return Err(bad());
    }
    Ok(blob)
}

fn fingerprint(blob: &[u8]) -> String {
    use md5::Digest;
    let digest = md5::Md5::digest(blob);
    digest
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn ssh_string(out: &mut Vec<u8>, data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(data);
}

/// SSH's mpint: big-endian, with a leading zero when the top bit is set.
fn ssh_mpint(out: &mut Vec<u8>, be: &[u8]) {
    let trimmed: Vec<u8> = be.iter().copied().skip_while(|b| *b == 0).collect();
    if trimmed.first().is_some_and(|b| b & 0x80 != 0) {
        let mut v = vec![0u8];
        v.extend_from_slice(&trimmed);
        ssh_string(out, &v);
    } else {
        ssh_string(out, &trimmed);
    }
}

/// A new RSA key: (OpenSSH public key line, PEM private key).
fn generate_rsa(comment: &str) -> Result<(String, String)> {
    use rsa::pkcs1::EncodeRsaPrivateKey;
    use rsa::traits::PublicKeyParts;
    let key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).map_err(Error::internal)?;
    let mut blob = Vec::new();
    ssh_string(&mut blob, b"ssh-rsa");
    ssh_mpint(&mut blob, &key.e().to_bytes_be());
    ssh_mpint(&mut blob, &key.n().to_bytes_be());
    let public = format!(
        "ssh-rsa {} {comment}",
        base64::engine::general_purpose::STANDARD.encode(&blob)
    );
    let private = key
        .to_pkcs1_pem(rsa::pkcs1::LineEnding::LF)
        .map_err(Error::internal)?
        .to_string();
    Ok((public, private))
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || " -_.@".contains(c))
        && name.trim() == name
}

impl ComputeService {
    /// Import `public_key`, or generate a key pair when it is `None`
    /// (the private key is returned once and never stored).
    pub async fn create_keypair(
        &self,
        user_id: &str,
        project_id: &str,
        name: &str,
        public_key: Option<&str>,
        key_type: &str,
    ) -> Result<(KeyPair, Option<String>)> {
        if !valid_name(name) {
            return Err(Error::BadRequest(
                "Keypair data is invalid: Keypair name contains unsafe characters".into(),
            ));
        }
        if key_type != "ssh" && key_type != "x509" {
            return Err(Error::BadRequest(format!(
                "Invalid input for field/attribute type. Value: {key_type}. '{key_type}' is not one of ['ssh', 'x509']"
            )));
        }
        // Checked here too, before the key is generated (a CPU-second), and
        // again where the key pair is written (the check that holds).
        let limit = self.quotas(project_id).await?["key_pairs"];
        let have = store::catalog::list_keypairs(&self.db, user_id)
            .await?
            .len() as i64;
        if limit >= 0 && have >= limit {
            return Err(over_keypair_quota());
        }
        let (public, private, fingerprint) = if key_type == "x509" {
            match public_key {
                Some(pem) => {
                    let der = super::x509::certificate_der(pem)?;
                    (pem.trim().to_owned(), None, super::x509::fingerprint(&der))
                }
                None => {
                    let cn = user_id.to_owned();
                    let (pem, private, fp) =
                        tokio::task::spawn_blocking(move || super::x509::generate(&cn))
                            .await
                            .map_err(Error::internal)??;
                    (pem, Some(private), fp)
                }
            }
        } else {
            let (public, private) = match public_key {
                Some(p) => (p.trim().to_owned(), None),
                None => {
                    let comment = "Generated-by-Nova".to_string();
                    let (pub_line, priv_pem) =
                        tokio::task::spawn_blocking(move || generate_rsa(&comment))
                            .await
                            .map_err(Error::internal)??;
                    (pub_line, Some(priv_pem))
                }
            };
            let blob = parse_public_key(&public)?;
            (public, private, fingerprint(&blob))
        };
        let mut kp = KeyPair {
            id: 0,
            user_id: user_id.into(),
            name: name.into(),
            key_type: key_type.into(),
            public_key: public,
            fingerprint,
            created_at: ferrostack_core::time::iso_naive(chrono::Utc::now()),
        };
        if !store::catalog::insert_keypair_within_quota(&self.db, &mut kp, project_id, limit)
            .await?
        {
            return Err(over_keypair_quota());
        }
        Ok((kp, private))
    }
}

fn over_keypair_quota() -> Error {
    Error::Forbidden("Quota exceeded, too many key pairs.".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_parse_and_fingerprint() {
        let (public, private) = generate_rsa("test").unwrap();
        assert!(private.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
        let blob = parse_public_key(&public).unwrap();
        assert_eq!(fingerprint(&blob).len(), 47);
        assert!(parse_public_key("ssh-rsa AAAA").is_err());
        assert!(parse_public_key("ssh-ed25519 AAAAB3NzaC1yc2EAAAADAQABAAABAQ").is_err());
    }
}
