//! Hashes, HMACs and AES-CFB128 for the User-based Security Model.

use aes::cipher::{BlockEncrypt, KeyInit, generic_array::GenericArray};
use hmac::{Hmac, Mac};
use sha1::{Digest, Sha1};
use sha2::{Sha224, Sha256, Sha384, Sha512};

use super::{AuthProtocol, PrivProtocol};

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
        let mut mac = <M as Mac>::new_from_slice(key).expect("HMAC accepts keys of any length");
        mac.update(data);
        mac.finalize().into_bytes().to_vec()
    }
    match protocol {
        AuthProtocol::Sha1 => run::<Hmac<Sha1>>(key, data),
        AuthProtocol::Sha224 => run::<Hmac<Sha224>>(key, data),
        AuthProtocol::Sha256 => run::<Hmac<Sha256>>(key, data),
        AuthProtocol::Sha384 => run::<Hmac<Sha384>>(key, data),
        AuthProtocol::Sha512 => run::<Hmac<Sha512>>(key, data),
    }
}

/// Compares without an early exit, so timing does not tell how many bytes matched.
pub fn equal_time(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// AES in CFB-128 mode (RFC 3826), in place. `key` has exactly the protocol's key length.
pub fn aes_cfb(protocol: PrivProtocol, key: &[u8], iv: [u8; 16], data: &mut [u8], encrypt: bool) {
    match protocol.key_len() {
        16 => cfb::<aes::Aes128>(key, iv, data, encrypt),
        24 => cfb::<aes::Aes192>(key, iv, data, encrypt),
        _ => cfb::<aes::Aes256>(key, iv, data, encrypt),
    }
}

fn cfb<C: BlockEncrypt + KeyInit>(key: &[u8], iv: [u8; 16], data: &mut [u8], encrypt: bool) {
    let Ok(cipher) = C::new_from_slice(key) else {
        return;
    };
    let mut register = GenericArray::clone_from_slice(&iv);
    for chunk in data.chunks_mut(16) {
        let mut stream = register.clone();
        cipher.encrypt_block(&mut stream);
        let mut next = [0u8; 16];
        for (i, byte) in chunk.iter_mut().enumerate() {
            let input = *byte;
            *byte ^= stream[i];
            next[i] = if encrypt { *byte } else { input };
        }
        register = GenericArray::clone_from_slice(&next);
    }
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
        aes_cfb(PrivProtocol::Aes128, &key, iv, &mut data, true);
        assert_eq!(
            data,
            hex("3b3fd92eb72dad20333449f8e83cfb4ac8a64537a0b3a93fcde3cdad9f1ce58b")
        );
        aes_cfb(PrivProtocol::Aes128, &key, iv, &mut data, false);
        assert_eq!(data, plain);
    }
}
