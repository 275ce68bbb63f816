//! UUIDs as CloudStack shows them: random (v4) for VMs and jobs, name-based (v5) for what the
//! config names, so a zone or template keeps its id across restarts.

use ring::digest;

/// A random UUID (version 4), from the operating system's random source (`getrandom`).
pub fn random() -> String {
    let mut bytes = [0_u8; 16];
    if getrandom::getrandom(&mut bytes).is_err() {
        // The OS random source failing is not worth a crash here; fall back to the clock.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        bytes.copy_from_slice(&nanos.to_le_bytes());
    }
    format_uuid(bytes, 4)
}

/// A stable UUID (version 5, SHA-1) for `kind` + `name`.
pub fn stable(kind: &str, name: &str) -> String {
    let mut context = digest::Context::new(&digest::SHA1_FOR_LEGACY_USE_ONLY);
    context.update(b"ballast-localcloud:");
    context.update(kind.as_bytes());
    context.update(b":");
    context.update(name.as_bytes());
    let hash = context.finish();
    let mut bytes = [0_u8; 16];
    bytes.copy_from_slice(&hash.as_ref()[..16]);
    format_uuid(bytes, 5)
}

fn format_uuid(mut bytes: [u8; 16], version: u8) -> String {
    bytes[6] = (bytes[6] & 0x0f) | (version << 4);
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_look_like_uuids() {
        let a = random();
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert_ne!(a, random());
        let s = stable("zone", "z1");
        assert_eq!(s, stable("zone", "z1"));
        assert_ne!(s, stable("zone", "z2"));
        assert_eq!(&s[14..15], "5");
    }
}
