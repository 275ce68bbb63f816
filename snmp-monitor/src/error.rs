//! Error types: one for bytes that are not valid SNMP, one for monitor specs that cannot work,
//! one for a privacy key that does not fit its cipher.

/// Why a datagram could not be decoded. Decoding never panics; every malformed input ends here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("datagram ends inside an element")]
    Truncated,
    #[error("length field is indefinite, too long or larger than the data")]
    BadLength,
    #[error("multi-byte tags are not used by SNMP")]
    UnsupportedTag,
    #[error("expected tag {expected:#04x}, found {found:#04x}")]
    UnexpectedTag { expected: u8, found: u8 },
    #[error("integer is empty or does not fit its type")]
    BadInteger,
    #[error("object identifier is empty, too long or has an oversized arc")]
    BadOid,
    #[error("unknown value type {0:#04x}")]
    UnknownValue(u8),
    #[error("unknown PDU type {0:#04x}")]
    UnknownPdu(u8),
    #[error("unsupported SNMP version {0}")]
    UnsupportedVersion(i64),
    #[error("bytes left over after the message")]
    TrailingBytes,
    #[error("malformed SNMPv3 header or security parameters")]
    BadV3Header,
}

/// Why a [`crate::LoadMonitorSpec`] was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    #[error("metric table `{0}` has no metrics")]
    EmptyTable(String),
    #[error("metric `{metric}` is bound to the monitor but not defined in table `{table}`")]
    UnknownMetric { metric: String, table: String },
    #[error("metric `{0}` has a threshold that is not a positive number")]
    BadThreshold(String),
    #[error("metric `{0}` has a weight that is negative or not a number")]
    BadWeight(String),
    #[error("resptimeout ({resptimeout_ms} ms) must be shorter than interval ({interval_ms} ms)")]
    TimeoutNotBelowInterval {
        resptimeout_ms: u128,
        interval_ms: u128,
    },
    #[error("interval and resptimeout must be above zero")]
    ZeroDuration,
    #[error("SNMPv3 {which} passphrase of user `{user}` is shorter than 8 characters")]
    ShortPassphrase { user: String, which: &'static str },
    #[error("SNMPv3 user name is empty")]
    EmptyUser,
    #[error("community is empty")]
    EmptyCommunity,
    #[error("too many OIDs in one table ({0}; at most 64)")]
    TooManyOids(usize),
    #[error("`{0}` is not a dotted object identifier")]
    BadOid(String),
}

/// A privacy key whose length is not the one its AES variant needs. Keys derived by
/// [`crate::UsmUser`] always fit; this catches keys built any other way.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{protocol} privacy key must be {expected} bytes, not {found}")]
pub struct KeyLengthError {
    pub protocol: &'static str,
    pub expected: usize,
    pub found: usize,
}
