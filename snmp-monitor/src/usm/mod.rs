//! SNMPv3 User-based Security Model (RFC 3414, RFC 3826, RFC 7860): users, keys, and the
//! authenticated and encrypted message format.
//!
//! - [`keys`]: passphrase → Ku → localized Kul, AES-192/256 key stretching.
//! - [`crypto`]: hashes, HMACs, AES-CFB128.
//! - [`message`]: encoding requests and decoding, authenticating and decrypting replies.

pub mod crypto;
pub mod keys;
pub mod message;

use std::fmt;

use crate::error::SpecError;

/// Authentication protocols: HMAC-SHA-96 (RFC 3414) and the HMAC-SHA-2 family (RFC 7860).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthProtocol {
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

impl AuthProtocol {
    /// Bytes of the truncated MAC carried in msgAuthenticationParameters.
    pub fn mac_len(self) -> usize {
        match self {
            AuthProtocol::Sha1 => 12,
            AuthProtocol::Sha224 => 16,
            AuthProtocol::Sha256 => 24,
            AuthProtocol::Sha384 => 32,
            AuthProtocol::Sha512 => 48,
        }
    }

    /// The name net-snmp uses (`-a SHA-256`).
    pub fn name(self) -> &'static str {
        match self {
            AuthProtocol::Sha1 => "SHA",
            AuthProtocol::Sha224 => "SHA-224",
            AuthProtocol::Sha256 => "SHA-256",
            AuthProtocol::Sha384 => "SHA-384",
            AuthProtocol::Sha512 => "SHA-512",
        }
    }

    /// Parses net-snmp's names (`SHA`, `SHA1`, `SHA-256`, ...), case-insensitively.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name.to_ascii_uppercase().replace('_', "-").as_str() {
            "SHA" | "SHA1" | "SHA-1" => AuthProtocol::Sha1,
            "SHA-224" | "SHA224" => AuthProtocol::Sha224,
            "SHA-256" | "SHA256" => AuthProtocol::Sha256,
            "SHA-384" | "SHA384" => AuthProtocol::Sha384,
            "SHA-512" | "SHA512" => AuthProtocol::Sha512,
            _ => return None,
        })
    }
}

/// Privacy protocols: AES-128 (RFC 3826) and AES-192/256 with either key extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PrivProtocol {
    Aes128,
    /// Blumenthal key extension (net-snmp `AES-192`).
    Aes192,
    /// Blumenthal key extension (net-snmp `AES-256`).
    Aes256,
    /// Reeder key extension (net-snmp `AES-192-C`, Cisco).
    Aes192Reeder,
    /// Reeder key extension (net-snmp `AES-256-C`, Cisco).
    Aes256Reeder,
}

impl PrivProtocol {
    pub fn key_len(self) -> usize {
        match self {
            PrivProtocol::Aes128 => 16,
            PrivProtocol::Aes192 | PrivProtocol::Aes192Reeder => 24,
            PrivProtocol::Aes256 | PrivProtocol::Aes256Reeder => 32,
        }
    }

    pub fn reeder_extension(self) -> bool {
        matches!(
            self,
            PrivProtocol::Aes192Reeder | PrivProtocol::Aes256Reeder
        )
    }

    /// The name net-snmp uses (`-x AES-256`).
    pub fn name(self) -> &'static str {
        match self {
            PrivProtocol::Aes128 => "AES",
            PrivProtocol::Aes192 => "AES-192",
            PrivProtocol::Aes256 => "AES-256",
            PrivProtocol::Aes192Reeder => "AES-192-C",
            PrivProtocol::Aes256Reeder => "AES-256-C",
        }
    }

    /// Parses net-snmp's names (`AES`, `AES128`, `AES-256`, `AES-256-C`), case-insensitively.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name.to_ascii_uppercase().replace('_', "-").as_str() {
            "AES" | "AES128" | "AES-128" => PrivProtocol::Aes128,
            "AES192" | "AES-192" => PrivProtocol::Aes192,
            "AES256" | "AES-256" => PrivProtocol::Aes256,
            "AES192C" | "AES-192-C" => PrivProtocol::Aes192Reeder,
            "AES256C" | "AES-256-C" => PrivProtocol::Aes256Reeder,
            _ => return None,
        })
    }
}

/// A USM user as an operator writes it: name, and optional auth and privacy passphrases.
#[derive(Clone, PartialEq, Eq)]
pub struct UsmUser {
    pub name: String,
    pub auth: Option<(AuthProtocol, String)>,
    /// Needs `auth`: USM has no privacy without authentication.
    pub privacy: Option<(PrivProtocol, String)>,
}

impl fmt::Debug for UsmUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UsmUser")
            .field("name", &self.name)
            .field("auth", &self.auth.as_ref().map(|(p, _)| p))
            .field("privacy", &self.privacy.as_ref().map(|(p, _)| p))
            .finish()
    }
}

impl UsmUser {
    /// authPriv with the given protocols and passphrases.
    pub fn auth_priv(
        name: &str,
        auth: AuthProtocol,
        auth_pass: &str,
        privacy: PrivProtocol,
        priv_pass: &str,
    ) -> Self {
        Self {
            name: name.to_owned(),
            auth: Some((auth, auth_pass.to_owned())),
            privacy: Some((privacy, priv_pass.to_owned())),
        }
    }

    /// Checks the rules net-snmp enforces and derives the master keys (1 MiB of hashing each).
    pub fn master_keys(&self) -> Result<MasterKeys, SpecError> {
        if self.name.is_empty() {
            return Err(SpecError::EmptyUser);
        }
        let short = |which| SpecError::ShortPassphrase {
            user: self.name.clone(),
            which,
        };
        let auth = match &self.auth {
            Some((_, pass)) if pass.len() < 8 => return Err(short("authentication")),
            Some((protocol, pass)) => {
                Some((*protocol, keys::password_to_key(*protocol, pass.as_bytes())))
            }
            None => None,
        };
        let privacy = match (&self.privacy, &auth) {
            (None, _) => None,
            (Some(_), None) => return Err(short("authentication")),
            (Some((_, pass)), Some(_)) if pass.len() < 8 => return Err(short("privacy")),
            (Some((protocol, pass)), Some((auth_protocol, _))) => Some((
                *protocol,
                keys::password_to_key(*auth_protocol, pass.as_bytes()),
            )),
        };
        Ok(MasterKeys {
            user: self.name.as_bytes().to_vec(),
            auth,
            privacy,
        })
    }
}

/// A user's engine-independent keys (Ku), derived once per monitor.
#[derive(Clone)]
pub struct MasterKeys {
    pub user: Vec<u8>,
    auth: Option<(AuthProtocol, Vec<u8>)>,
    privacy: Option<(PrivProtocol, Vec<u8>)>,
}

impl fmt::Debug for MasterKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MasterKeys")
            .field("user", &String::from_utf8_lossy(&self.user))
            .finish()
    }
}

impl MasterKeys {
    /// The keys for one agent's engine.
    pub fn localize(&self, engine_id: &[u8]) -> LocalKeys {
        let auth = self
            .auth
            .as_ref()
            .map(|(protocol, ku)| (*protocol, keys::localize(*protocol, ku, engine_id)));
        let privacy = match (&self.privacy, &self.auth) {
            (Some((protocol, ku)), Some((auth_protocol, _))) => Some((
                *protocol,
                keys::privacy_key(*auth_protocol, *protocol, ku, engine_id),
            )),
            _ => None,
        };
        LocalKeys { auth, privacy }
    }

    pub fn has_auth(&self) -> bool {
        self.auth.is_some()
    }

    pub fn has_privacy(&self) -> bool {
        self.privacy.is_some()
    }
}

/// Keys localized to one engine ID.
#[derive(Clone, Default)]
pub struct LocalKeys {
    pub auth: Option<(AuthProtocol, Vec<u8>)>,
    pub privacy: Option<(PrivProtocol, Vec<u8>)>,
}

impl fmt::Debug for LocalKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LocalKeys(..)")
    }
}

/// Why a v3 agent refused a request: the usmStats counter it sent back in a Report PDU
/// (RFC 3414 §5). Net-snmp's `snmpget` tells these apart the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthFailure {
    UnsupportedSecLevel,
    NotInTimeWindow,
    UnknownUserName,
    UnknownEngineId,
    WrongDigest,
    DecryptionError,
    Other,
}

impl AuthFailure {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthFailure::UnsupportedSecLevel => "unsupported_security_level",
            AuthFailure::NotInTimeWindow => "not_in_time_window",
            AuthFailure::UnknownUserName => "unknown_user_name",
            AuthFailure::UnknownEngineId => "unknown_engine_id",
            AuthFailure::WrongDigest => "wrong_digest",
            AuthFailure::DecryptionError => "decryption_error",
            AuthFailure::Other => "other_report",
        }
    }

    /// Classifies a Report's first varbind OID (BER contents).
    pub fn from_oid(oid: &[u8]) -> Self {
        // 1.3.6.1.6.3.15.1.1.N.0
        const USM_STATS: [u8; 9] = [0x2b, 6, 1, 6, 3, 15, 1, 1, 0];
        match oid {
            [prefix @ .., n, 0] if prefix == &USM_STATS[..8] => match n {
                1 => AuthFailure::UnsupportedSecLevel,
                2 => AuthFailure::NotInTimeWindow,
                3 => AuthFailure::UnknownUserName,
                4 => AuthFailure::UnknownEngineId,
                5 => AuthFailure::WrongDigest,
                6 => AuthFailure::DecryptionError,
                _ => AuthFailure::Other,
            },
            _ => AuthFailure::Other,
        }
    }
}
