//! Disk format inspection: does the uploaded data match the declared
//! `disk_format`, and what is its virtual size. Only headers are read.

/// How many leading bytes of an upload are kept for inspection (enough for
/// the ISO 9660 volume descriptor at 32 KiB).
pub const HEAD_BYTES: usize = 40 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detected {
    Qcow2 {
        virtual_size: u64,
        backing_file: bool,
    },
    Vmdk {
        virtual_size: u64,
    },
    Vhdx,
    Iso,
    Unknown,
}

pub fn detect(head: &[u8]) -> Detected {
    if head.len() >= 32 && &head[0..4] == b"QFI\xfb" {
        let size = u64::from_be_bytes(head[24..32].try_into().expect("8 bytes"));
        let backing = u64::from_be_bytes(head[8..16].try_into().expect("8 bytes"));
        return Detected::Qcow2 {
            virtual_size: size,
            backing_file: backing != 0,
        };
    }
    if head.len() >= 20 && &head[0..4] == b"KDMV" {
        let sectors = u64::from_le_bytes(head[12..20].try_into().expect("8 bytes"));
        return Detected::Vmdk {
            virtual_size: sectors.saturating_mul(512),
        };
    }
    if head.len() >= 8 && &head[0..8] == b"vhdxfile" {
        return Detected::Vhdx;
    }
    if head.len() >= 0x8006 && &head[0x8001..0x8006] == b"CD001" {
        return Detected::Iso;
    }
    Detected::Unknown
}

/// Check the data against the declared format; returns the virtual size
/// when it is known. A mismatch is the message for a 400.
pub fn verify(declared: Option<&str>, head: &[u8], size: u64) -> Result<Option<u64>, String> {
    let found = detect(head);
    let mismatch = |what: &str| {
        Err(format!(
            "Image data does not match the declared disk_format '{}': the data is {what}.",
            declared.unwrap_or("")
        ))
    };
    match (declared, found) {
        // A backing file would make the guest read a file of the host's choosing.
        (
            _,
            Detected::Qcow2 {
                backing_file: true, ..
            },
        ) => Err("qcow2 images with a backing file are not accepted.".to_owned()),
        (Some("qcow2"), Detected::Qcow2 { virtual_size, .. }) => Ok(Some(virtual_size)),
        (Some("qcow2"), _) => mismatch("not a qcow2 image"),
        (Some("vmdk"), Detected::Vmdk { virtual_size }) => Ok(Some(virtual_size)),
        (Some("vmdk"), _) => mismatch("not a VMDK image"),
        (Some("vhdx"), Detected::Vhdx) => Ok(None),
        (Some("vhdx"), _) => mismatch("not a VHDX image"),
        (Some("iso"), Detected::Iso) => Ok(Some(size)),
        (Some("iso"), _) => mismatch("not an ISO 9660 image"),
        // Any data is a valid raw disk (a guest sees exactly these bytes);
        // the qcow2 safety checks above still apply.
        (Some("raw"), _) => Ok(Some(size)),
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn qcow2(size: u64) -> Vec<u8> {
        let mut h = vec![0u8; 512];
        h[0..4].copy_from_slice(b"QFI\xfb");
        h[4..8].copy_from_slice(&3u32.to_be_bytes());
        h[24..32].copy_from_slice(&size.to_be_bytes());
        h
    }

    #[test]
    fn detects_and_verifies() {
        assert_eq!(
            verify(Some("qcow2"), &qcow2(1 << 30), 196_608),
            Ok(Some(1 << 30))
        );
        assert!(verify(Some("qcow2"), b"just some raw bytes", 19).is_err());
        assert_eq!(verify(Some("raw"), &qcow2(1), 512), Ok(Some(512)));
        let mut backed = qcow2(1 << 20);
        backed[8..16].copy_from_slice(&512u64.to_be_bytes());
        assert!(verify(Some("qcow2"), &backed, 1024).is_err());
        assert_eq!(verify(Some("raw"), b"raw bytes", 9), Ok(Some(9)));
        assert_eq!(verify(Some("ami"), b"anything", 8), Ok(None));
        let mut iso = vec![0u8; 0x9000];
        iso[0x8001..0x8006].copy_from_slice(b"CD001");
        assert_eq!(verify(Some("iso"), &iso, 0x9000), Ok(Some(0x9000)));
    }
}
