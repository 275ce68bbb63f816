//! Hashes, HMACs and AES-CFB128 for the User-based Security Model.

use aes::cipher::{AsyncStreamCipher, BlockCipher, BlockEncrypt, KeyInit, KeyIvInit};
use cfb_mode::{Decryptor, Encryptor};
use hmac::{Hmac, Mac};
use sha1::{Digest, Sha1};
use sha2::{Sha224, Sha256, Sha384, Sha512};

use super::{AuthProtocol, PrivProtocol};
use crate::error::KeyLengthError;

/// An incremental hash of the user's authentication protocol.
pub enum Hasher {
    Sha1(Sha1),
    Sha224(Sha224),
    Sha256(Sha256),
    Sha384(Sha384),
    Sha512(Sha512),
}

impl Hasher {
    pub fn new(protocol: AuthProtocol) -> Self {
        match protocol {
            AuthProtocol::Sha1 => Hasher::Sha1(Sha1::new()),
            AuthProtocol::Sha224 => Hasher::Sha224(Sha224::new()),
            AuthProtocol::Sha256 => Hasher::Sha256(Sha256::new()),
            AuthProtocol::Sha384 => Hasher::Sha384(Sha384::new()),
            AuthProtocol::Sha512 => Hasher::Sha512(Sha512::new()),
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha1(h) => h.update(data),
            Hasher::Sha224(h) => h.update(data),
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha384(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
        }
    }

    pub fn finish(self) -> Vec<u8> {
        match self {
            Hasher::Sha1(h) => h.finalize().to_vec(),
            Hasher::Sha224(h) => h.finalize().to_vec(),
            Hasher::Sha256(h) => h.finalize().to_vec(),
            Hasher::Sha384(h) => h.finalize().to_vec(),
            Hasher::Sha512(h) => h.finalize().to_vec(),
        }
    }
}

impl std::fmt::Debug for Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hasher")
    }
}

/// One-shot hash of the concatenation of `parts`.
pub fn hash(protocol: AuthProtocol, parts: &[&[u8]]) -> Vec<u8> {
    let mut h = Hasher::new(protocol);
    for part in parts {
        h.update(part);
    }
    h.finish()
}

/// The full HMAC of `data` under `key`; USM sends its first `mac_len()` bytes.
pub fn hmac(protocol: AuthProtocol, key: &[u8], data: &[u8]) -> Vec<u8> {
    fn run<M: Mac + KeyInit>(key: &[u8], data: &[u8]) -> Vec<u8> {
        keyed::<M>(key, data).finalize().into_bytes().to_vec()
    }
    match protocol {
        AuthProtocol::Sha1 => run::<Hmac<Sha1>>(key, data),
        AuthProtocol::Sha224 => run::<Hmac<Sha224>>(key, data),
        AuthProtocol::Sha256 => run::<Hmac<Sha256>>(key, data),
        AuthProtocol::Sha384 => run::<Hmac<Sha384>>(key, data),
        AuthProtocol::Sha512 => run::<Hmac<Sha512>>(key, data),
    }
}

/// Whether `mac` is the protocol's truncated HMAC of `data` under `key` (RFC 3414 §6.3.2,
/// RFC 7860 §4.2.2). The comparison takes the same time however many bytes match.
pub fn verify_hmac(protocol: AuthProtocol, key: &[u8], data: &[u8], mac: &[u8]) -> bool {
    fn run<M: Mac + KeyInit>(key: &[u8], data: &[u8], mac: &[u8]) -> bool {
        keyed::<M>(key, data).verify_truncated_left(mac).is_ok()
    }
    if mac.len() != protocol.mac_len() {
        return false;
    }
    match protocol {
        AuthProtocol::Sha1 => run::<Hmac<Sha1>>(key, data, mac),
        AuthProtocol::Sha224 => run::<Hmac<Sha224>>(key, data, mac),
        AuthProtocol::Sha256 => run::<Hmac<Sha256>>(key, data, mac),
        AuthProtocol::Sha384 => run::<Hmac<Sha384>>(key, data, mac),
        AuthProtocol::Sha512 => run::<Hmac<Sha512>>(key, data, mac),
    }
}

/// An HMAC under `key` that has absorbed `data`.
fn keyed<M: Mac + KeyInit>(key: &[u8], data: &[u8]) -> M {
    let mut mac = <M as Mac>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(data);
    mac
}

/// AES in CFB-128 mode (RFC 3826 §3.1.3), in place. A `key` that is not exactly the protocol's
/// key length is an error, never a silent no-op.
pub fn aes_cfb(
    protocol: PrivProtocol,
    key: &[u8],
    iv: [u8; 16],
    data: &mut [u8],
    direction: Direction,
) -> Result<(), KeyLengthError> {
    fn run<C>(key: &[u8], iv: [u8; 16], data: &mut [u8], direction: Direction) -> Option<()>
    where
        C: BlockEncrypt + BlockCipher + KeyInit,
    {
        match direction {
            Direction::Encrypt => Encryptor::<C>::new_from_slices(key, &iv)
                .ok()?
                .encrypt(data),
            Direction::Decrypt => Decryptor::<C>::new_from_slices(key, &iv)
                .ok()?
                .decrypt(data),
        }
        Some(())
    }
    let done = match protocol.key_len() {
        len if len != key.len() => None,
        16 => run::<aes::Aes128>(key, iv, data, direction),
        24 => run::<aes::Aes192>(key, iv, data, direction),
        _ => run::<aes::Aes256>(key, iv, data, direction),
    };
    done.ok_or(KeyLengthError {
        protocol: protocol.name(),
        expected: protocol.key_len(),
        found: key.len(),
    })
}

/// Which way [`aes_cfb`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Encrypt,
    Decrypt,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn aes128_cfb_matches_nist_sp800_38a() {
        // NIST SP 800-38A F.3.13 CFB128-AES128.Encrypt, first two blocks.
        let key = hex("2b7e151628aed2a6abf7158809cf4f3c");
        let iv: [u8; 16] = hex("000102030405060708090a0b0c0d0e0f").try_into().unwrap();
        let plain = hex("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51");
        let mut data = plain.clone();
        aes_cfb(
            PrivProtocol::Aes128,
            &key,
            iv,
            &mut data,
            Direction::Encrypt,
        )
        .unwrap();
        assert_eq!(
            data,
            hex("3b3fd92eb72dad20333449f8e83cfb4ac8a64537a0b3a93fcde3cdad9f1ce58b")
        );
        aes_cfb(
            PrivProtocol::Aes128,
            &key,
            iv,
            &mut data,
            Direction::Decrypt,
        )
        .unwrap();
        assert_eq!(data, plain);
    }

    #[test]
    fn aes256_cfb_matches_nist_sp800_38a_including_a_partial_last_block() {
        // NIST SP 800-38A F.3.17 CFB128-AES256.Encrypt: one block and 5 bytes of the second.
        let key = hex("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4");
        let iv: [u8; 16] = hex("000102030405060708090a0b0c0d0e0f").try_into().unwrap();
        let mut data = hex("6bc1bee22e409f96e93d7e117393172aae2d8a571e");
        aes_cfb(
            PrivProtocol::Aes256,
            &key,
            iv,
            &mut data,
            Direction::Encrypt,
        )
        .unwrap();
        assert_eq!(data, hex("dc7e84bfda79164b7ecd8486985d386039ffed143b"));
    }

    #[test]
    fn a_key_of_the_wrong_length_is_an_error_and_leaves_the_data_alone() {
        let iv = [7u8; 16];
        for (protocol, key_len) in [
            (PrivProtocol::Aes128, 20),
            (PrivProtocol::Aes192, 16),
            (PrivProtocol::Aes256, 24),
            (PrivProtocol::Aes256Reeder, 0),
        ] {
            let key = vec![1u8; key_len];
            let mut data = b"scopedPDU bytes".to_vec();
            let error = aes_cfb(protocol, &key, iv, &mut data, Direction::Encrypt).unwrap_err();
            assert_eq!(data, b"scopedPDU bytes", "{protocol:?}");
            assert_eq!(
                error.to_string(),
                format!(
                    "{} privacy key must be {} bytes, not {key_len}",
                    protocol.name(),
                    protocol.key_len()
                )
            );
        }
    }

    #[test]
    fn only_the_exact_truncated_hmac_verifies() {
        let key = [9u8; 32];
        let data = b"wholeMsg with zeroed msgAuthenticationParameters";
        for protocol in [
            AuthProtocol::Sha1,
            AuthProtocol::Sha256,
            AuthProtocol::Sha512,
        ] {
            let full = hmac(protocol, &key, data);
            let mac = &full[..protocol.mac_len()];
            assert!(verify_hmac(protocol, &key, data, mac));
            let mut flipped = mac.to_vec();
            flipped[protocol.mac_len() - 1] ^= 0x80;
            assert!(!verify_hmac(protocol, &key, data, &flipped));
            // Shorter or longer tags than the protocol sends are refused, even if they match.
            assert!(!verify_hmac(protocol, &key, data, &mac[..mac.len() - 1]));
            assert!(!verify_hmac(protocol, &key, data, &full[..mac.len() + 1]));
            assert!(!verify_hmac(protocol, &key, data, &[]));
        }
    }
}
