//! Object identifiers: parsed once from dotted text, kept with their BER contents so replies are
//! matched by comparing bytes.

use std::fmt;
use std::str::FromStr;

use crate::error::{DecodeError, SpecError};

/// Longest OID accepted (RFC 2578 allows 128 sub-identifiers).
pub const MAX_ARCS: usize = 128;

/// An object identifier such as `1.3.6.1.4.1.2021.11.11.0`. Ordered the way GETNEXT walks.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Oid {
    arcs: Vec<u32>,
}

impl Oid {
    /// From arcs; at least two, the first 0–2 and the second below 40 when the first is 0 or 1.
    pub fn from_arcs(arcs: &[u32]) -> Option<Self> {
        let valid = arcs.len() >= 2
            && arcs.len() <= MAX_ARCS
            && match arcs[0] {
                0 | 1 => arcs[1] < 40,
                2 => arcs[1] <= u32::MAX - 80,
                _ => false,
            };
        valid.then(|| Self {
            arcs: arcs.to_vec(),
        })
    }

    pub fn arcs(&self) -> &[u32] {
        &self.arcs
    }

    /// The BER contents (without tag and length).
    pub fn to_ber(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.arcs.len() + 4);
        let first = self.arcs[0] * 40 + self.arcs[1];
        push_base128(&mut out, first);
        for &arc in &self.arcs[2..] {
            push_base128(&mut out, arc);
        }
        out
    }

    /// From BER contents.
    pub fn from_ber(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut arcs = Vec::with_capacity(bytes.len() + 1);
        let mut value: u32 = 0;
        let mut in_arc = false;
        for &byte in bytes {
            if !in_arc && byte == 0x80 {
                return Err(DecodeError::BadOid); // non-minimal leading 0x80
            }
            value = value.checked_mul(128).ok_or(DecodeError::BadOid)? | u32::from(byte & 0x7f);
            in_arc = byte & 0x80 != 0;
            if !in_arc {
                if arcs.is_empty() {
                    let (a, b) = match value {
                        0..40 => (0, value),
                        40..80 => (1, value - 40),
                        _ => (2, value - 80),
                    };
                    arcs.extend([a, b]);
                } else {
                    arcs.push(value);
                }
                if arcs.len() > MAX_ARCS {
                    return Err(DecodeError::BadOid);
                }
                value = 0;
            }
        }
        if in_arc || arcs.is_empty() {
            return Err(DecodeError::BadOid);
        }
        Ok(Self { arcs })
    }

    /// True when `self` lies under `prefix` (or equals it).
    pub fn starts_with(&self, prefix: &Oid) -> bool {
        self.arcs.starts_with(&prefix.arcs)
    }
}

fn push_base128(out: &mut Vec<u8>, value: u32) {
    let mut chunks = [0u8; 5];
    let mut n = 0;
    let mut v = value;
    loop {
        chunks[n] = (v & 0x7f) as u8;
        n += 1;
        v >>= 7;
        if v == 0 {
            break;
        }
    }
    for i in (0..n).rev() {
        out.push(chunks[i] | if i > 0 { 0x80 } else { 0 });
    }
}

impl FromStr for Oid {
    type Err = SpecError;

    /// Dotted numbers, with or without a leading dot: `1.3.6.1.2.1.1.3.0`, `.1.3.6.1`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || SpecError::BadOid(text.to_owned());
        let trimmed = text.trim().strip_prefix('.').unwrap_or(text.trim());
        let arcs = trimmed
            .split('.')
            .map(|part| part.parse::<u32>().map_err(|_| bad()))
            .collect::<Result<Vec<_>, _>>()?;
        Oid::from_arcs(&arcs).ok_or_else(bad)
    }
}

impl fmt::Display for Oid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, arc) in self.arcs.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            write!(f, "{arc}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Oid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Oid({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_prints_and_round_trips_ber() {
        let oid: Oid = ".1.3.6.1.4.1.2021.11.11.0".parse().unwrap();
        assert_eq!(oid.to_string(), "1.3.6.1.4.1.2021.11.11.0");
        let ber = oid.to_ber();
        assert_eq!(&ber[..7], &[0x2b, 6, 1, 4, 1, 0x8f, 0x65]);
        assert_eq!(Oid::from_ber(&ber).unwrap(), oid);
        let big = Oid::from_arcs(&[2, 999, u32::MAX]).unwrap();
        assert_eq!(Oid::from_ber(&big.to_ber()).unwrap(), big);
    }

    #[test]
    fn refuses_bad_text_and_bad_ber() {
        assert!("1.3.x".parse::<Oid>().is_err());
        assert!("5.1".parse::<Oid>().is_err());
        assert!("1".parse::<Oid>().is_err());
        assert_eq!(Oid::from_ber(&[]), Err(DecodeError::BadOid));
        assert_eq!(Oid::from_ber(&[0x2b, 0x86]), Err(DecodeError::BadOid));
        assert_eq!(
            Oid::from_ber(&[0x2b, 0xff, 0xff, 0xff, 0xff, 0x7f]),
            Err(DecodeError::BadOid)
        );
    }

    #[test]
    fn orders_like_getnext() {
        let a: Oid = "1.3.6.1.2.1.1.3.0".parse().unwrap();
        let b: Oid = "1.3.6.1.4.1.2021.4.5.0".parse().unwrap();
        let prefix: Oid = "1.3.6.1.4".parse().unwrap();
        assert!(a < b);
        assert!(b.starts_with(&prefix));
        assert!(!a.starts_with(&prefix));
    }
}
