//! A small BER (X.690) codec for exactly what SNMP needs: single-byte tags, definite lengths.
//!
//! [`Reader`] borrows the datagram and never panics: every bound is checked, every length is
//! compared with what is left, and nothing recurses on input depth. [`Writer`] produces minimal
//! (DER-style) lengths, which every agent accepts.

mod read;
mod write;

pub use read::{Reader, decode_i64, decode_u64, offset_in};
pub use write::Writer;

/// Tags used by SNMP (RFC 3416 / RFC 2578).
pub mod tag {
    pub const INTEGER: u8 = 0x02;
    pub const OCTET_STRING: u8 = 0x04;
    pub const NULL: u8 = 0x05;
    pub const OID: u8 = 0x06;
    pub const SEQUENCE: u8 = 0x30;
    pub const IP_ADDRESS: u8 = 0x40;
    pub const COUNTER32: u8 = 0x41;
    pub const GAUGE32: u8 = 0x42;
    pub const TIMETICKS: u8 = 0x43;
    pub const OPAQUE: u8 = 0x44;
    pub const COUNTER64: u8 = 0x46;
    pub const NO_SUCH_OBJECT: u8 = 0x80;
    pub const NO_SUCH_INSTANCE: u8 = 0x81;
    pub const END_OF_MIB_VIEW: u8 = 0x82;
}
