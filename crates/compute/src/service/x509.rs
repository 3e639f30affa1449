//! X.509 key pairs (microversion 2.2's `type: x509`, which Windows guests
//! use for WinRM): an imported PEM certificate or a generated self-signed
//! one, fingerprinted as Nova does (SHA-1 of the DER, colon-separated hex).

use base64::Engine;
use ferrostack_core::{Error, Result};

const PEM_BEGIN: &str = "-----BEGIN CERTIFICATE-----";
const PEM_END: &str = "-----END CERTIFICATE-----";

fn invalid() -> Error {
    Error::BadRequest("Keypair data is invalid: failed to generate fingerprint".into())
}

/// The DER of a PEM certificate, checked to be one DER SEQUENCE.
pub fn certificate_der(pem: &str) -> Result<Vec<u8>> {
    let body = pem
        .trim()
        .strip_prefix(PEM_BEGIN)
        .and_then(|rest| rest.trim_end().strip_suffix(PEM_END))
        .ok_or_else(invalid)?;
    let text: String = body.split_whitespace().collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|_| invalid())?;
    match der_length(&der) {
        Some(total) if der.first() == Some(&0x30) && total == der.len() => Ok(der),
        _ => Err(invalid()),
    }
}

/// The whole length of the DER element at the start of `der`.
fn der_length(der: &[u8]) -> Option<usize> {
    let first = *der.get(1)?;
    if first < 0x80 {
        return Some(2 + first as usize);
    }
    let n = (first & 0x7f) as usize;
    if n == 0 || n > 4 {
        return None;
    }
    let len = der
        .get(2..2 + n)?
        .iter()
        .fold(0usize, |acc, b| (acc << 8) | *b as usize);
    Some(2 + n + len)
}

/// Nova's `generate_x509_fingerprint`.
pub fn fingerprint(der: &[u8]) -> String {
    use sha1::Digest;
    sha1::Sha1::digest(der)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// A DER element: tag, length, contents.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend_from_slice(&bytes);
    }
    out.extend_from_slice(content);
    out
}

fn sequence(parts: &[&[u8]]) -> Vec<u8> {
    tlv(0x30, &parts.concat())
}

/// `sha256WithRSAEncryption` (1.2.840.113549.1.1.11) with NULL parameters.
fn sha256_with_rsa() -> Vec<u8> {
    let oid = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b];
    sequence(&[&tlv(0x06, &oid), &[0x05, 0x00]])
}

/// A Name of one common name.
fn common_name(cn: &str) -> Vec<u8> {
    let attribute = sequence(&[&tlv(0x06, &[0x55, 0x04, 0x03]), &tlv(0x0c, cn.as_bytes())]);
    sequence(&[&tlv(0x31, &attribute)])
}

fn utc_time(t: chrono::DateTime<chrono::Utc>) -> Vec<u8> {
    tlv(0x17, t.format("%y%m%d%H%M%SZ").to_string().as_bytes())
}

/// A new RSA key and a self-signed certificate for `common_name` valid for
/// ten years, as Nova's `generate_winrm_x509_cert`: (certificate PEM,
/// private key PEM, fingerprint).
pub fn generate(cn: &str) -> Result<(String, String, String)> {
    use rsa::pkcs1::EncodeRsaPrivateKey;
    use rsa::pkcs8::EncodePublicKey;
    use sha2::Digest;
    let key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).map_err(Error::internal)?;
    let spki = key
        .to_public_key()
        .to_public_key_der()
        .map_err(Error::internal)?;
    let serial: [u8; 8] = rand::random();
    let mut serial = serial.to_vec();
    serial[0] &= 0x7f; // positive
    serial[0] |= 0x01; // and minimal (no leading zero byte)
    let now = chrono::Utc::now();
    let tbs = sequence(&[
        &tlv(0xa0, &tlv(0x02, &[2])),
        &tlv(0x02, &serial),
        &sha256_with_rsa(),
        &common_name(cn),
        &sequence(&[
            &utc_time(now),
            &utc_time(now + chrono::Duration::days(3650)),
        ]),
        &common_name(cn),
        spki.as_bytes(),
    ]);
    // PKCS#1 v1.5 over SHA-256's DigestInfo.
    let digest_info_prefix = [
        0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
        0x05, 0x00, 0x04, 0x20,
    ];
    let digest_info = [&digest_info_prefix[..], &sha2::Sha256::digest(&tbs)[..]].concat();
    let signature = key
        .sign(rsa::Pkcs1v15Sign::new_unprefixed(), &digest_info)
        .map_err(Error::internal)?;
    let bit_string = tlv(0x03, &[&[0u8][..], &signature[..]].concat());
    let der = sequence(&[&tbs, &sha256_with_rsa(), &bit_string]);
    let b64 = base64::engine::general_purpose::STANDARD.encode(&der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).expect("base64 is ascii"))
        .collect();
    let pem = format!("{PEM_BEGIN}\n{}\n{PEM_END}\n", lines.join("\n"));
    let private = key
        .to_pkcs1_pem(rsa::pkcs1::LineEnding::LF)
        .map_err(Error::internal)?
        .to_string();
    Ok((pem, private, fingerprint(&der)))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_generated_certificate_reads_back_with_its_fingerprint() {
        let (pem, private, fp) = super::generate("user-1").unwrap();
        assert!(private.contains("PRIVATE KEY"));
        let der = super::certificate_der(&pem).unwrap();
        assert_eq!(super::fingerprint(&der), fp);
        assert_eq!(fp.len(), 59, "20 bytes as colon-separated hex");
        assert!(super::certificate_der("ssh-rsa AAAA").is_err());
        let truncated = pem.replacen("MII", "MIJ", 1);
        assert!(super::certificate_der(&truncated).is_err());
    }
}
