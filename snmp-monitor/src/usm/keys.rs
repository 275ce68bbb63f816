//! Keys from passphrases (RFC 3414 A.2, RFC 7860), localization to an engine, and the two ways
//! of stretching a short localized key for AES-192/256.

use super::crypto::{Hasher, hash};
use super::{AuthProtocol, PrivProtocol};

/// Ku: the hash of the passphrase repeated over 1 MiB.
pub fn password_to_key(protocol: AuthProtocol, passphrase: &[u8]) -> Vec<u8> {
    let mut h = Hasher::new(protocol);
    if passphrase.is_empty() {
        return h.finish();
    }
    let mut block = [0u8; 64];
    let mut index = 0usize;
    for _ in 0..(1024 * 1024 / 64) {
        for byte in &mut block {
            *byte = passphrase[index % passphrase.len()];
            index += 1;
        }
        h.update(&block);
    }
    h.finish()
}

/// Kul = H(Ku || engineID || Ku).
pub fn localize(protocol: AuthProtocol, ku: &[u8], engine_id: &[u8]) -> Vec<u8> {
    hash(protocol, &[ku, engine_id, ku])
}

/// The localized privacy key, cut or stretched to the cipher's key length.
pub fn privacy_key(
    auth: AuthProtocol,
    privacy: PrivProtocol,
    priv_ku: &[u8],
    engine_id: &[u8],
) -> Vec<u8> {
    let mut key = localize(auth, priv_ku, engine_id);
    let need = privacy.key_len();
    while key.len() < need {
        let more = if privacy.reeder_extension() {
            // Reeder (Cisco "AES-256-C"): Kul || Kul(Ku(Kul)).
            localize(auth, &password_to_key(auth, &key), engine_id)
        } else {
            // Blumenthal (draft-blumenthal-aes-usm-04, net-snmp "AES-256"): Kul || H(Kul).
            hash(auth, &[&key])
        };
        key.extend_from_slice(&more);
    }
    key.truncate(need);
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    const ENGINE: [u8; 12] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];

    #[test]
    fn sha1_key_localization_matches_rfc3414_a3_2() {
        let ku = password_to_key(AuthProtocol::Sha1, b"maplesyrup");
        assert_eq!(hex(&ku), "9fb5cc0381497b3793528939ff788d5d79145211");
        let kul = localize(AuthProtocol::Sha1, &ku, &ENGINE);
        assert_eq!(hex(&kul), "6695febc9288e36282235fc7151f128497b38f3f");
    }

    #[test]
    fn sha256_key_localization_matches_rfc7860_test_vector() {
        let ku = password_to_key(AuthProtocol::Sha256, b"maplesyrup");
        let kul = localize(AuthProtocol::Sha256, &ku, &ENGINE);
        assert_eq!(
            hex(&kul),
            "8982e0e549e866db361a6b625d84cccc11162d453ee8ce3a6445c2d6776f0f8b"
        );
    }

    #[test]
    fn extensions_keep_the_localized_prefix_and_differ_after_it() {
        let ku = password_to_key(AuthProtocol::Sha1, b"maplesyrup");
        let kul = localize(AuthProtocol::Sha1, &ku, &ENGINE);
        let blumenthal = privacy_key(AuthProtocol::Sha1, PrivProtocol::Aes256, &ku, &ENGINE);
        let reeder = privacy_key(AuthProtocol::Sha1, PrivProtocol::Aes256Reeder, &ku, &ENGINE);
        assert_eq!(blumenthal.len(), 32);
        assert_eq!(&blumenthal[..20], &kul[..]);
        assert_eq!(&blumenthal[20..], &hash(AuthProtocol::Sha1, &[&kul])[..12]);
        assert_eq!(&reeder[..20], &kul[..]);
        assert_ne!(blumenthal, reeder);
        let aes128 = privacy_key(AuthProtocol::Sha1, PrivProtocol::Aes128, &ku, &ENGINE);
        assert_eq!(&aes128[..], &kul[..16]);
    }
}
