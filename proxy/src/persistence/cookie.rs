//! `COOKIEINSERT` cookies: opaque, signed, and with an end.
//!
//! A cookie's value is 64 hex digits: the member's id (8 bytes), the Unix time it ends at (8
//! bytes, 0 for a session cookie) and the first 16 bytes of HMAC-SHA256 over the vserver's
//! name, the id and the end, under the vserver's `cookiekey`. The member's id is itself an
//! HMAC of its servicegroup and `ip:port`, so the value never shows the member's address, and a
//! reload or a restart (with the same key) finds the same member. A value that does not parse,
//! whose MAC does not match (forged, altered, from another vserver or another key) or that has
//! ended is no cookie at all.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ring::hmac;
use subtle::ConstantTimeEq;

/// A member's id in cookies.
pub type MemberId = [u8; 8];

const MAC_LEN: usize = 16;
const VALUE_LEN: usize = 2 * (8 + 8 + MAC_LEN);

/// Signs and checks one key's cookies.
#[derive(Debug)]
pub struct CookieSigner {
    key: hmac::Key,
}

impl CookieSigner {
    pub fn new(key: &[u8]) -> CookieSigner {
        CookieSigner {
            key: hmac::Key::new(hmac::HMAC_SHA256, key),
        }
    }

    /// The id cookies carry for the member `addr` of servicegroup `group`.
    pub fn member_id(&self, group: &str, addr: SocketAddr) -> MemberId {
        let mut context = hmac::Context::with_key(&self.key);
        context.update(b"member\0");
        context.update(group.as_bytes());
        context.update(b"\0");
        context.update(addr.to_string().as_bytes());
        let tag = context.sign();
        tag.as_ref()[..8]
            .try_into()
            .expect("a SHA-256 tag has 32 bytes")
    }

    /// A cookie value for `member` on `vserver` that ends `lifetime` from now (`None`: a
    /// session cookie, no end of its own).
    pub fn issue(&self, vserver: &str, member: MemberId, lifetime: Option<Duration>) -> String {
        let ends = lifetime.map_or(0, |lifetime| {
            unix_now().saturating_add(whole_seconds(lifetime))
        });
        let mac = self.mac(vserver, &member, ends);
        let mut value = String::with_capacity(VALUE_LEN);
        for byte in member.iter().chain(&ends.to_be_bytes()).chain(&mac) {
            value.push_str(&format!("{byte:02x}"));
        }
        value
    }

    /// The member a cookie value names, if the value is this key's, for `vserver`, and has
    /// not ended.
    pub fn verify(&self, vserver: &str, value: &str) -> Option<MemberId> {
        self.check(vserver, value).map(|(member, _)| member)
    }

    /// [`CookieSigner::verify`], with the whole seconds the cookie has left (`None`: a session
    /// cookie, no end of its own).
    pub fn check(&self, vserver: &str, value: &str) -> Option<(MemberId, Option<u64>)> {
        let bytes = decode_hex(value)?;
        let member: MemberId = bytes[..8].try_into().ok()?;
        let ends = u64::from_be_bytes(bytes[8..16].try_into().ok()?);
        let expected = self.mac(vserver, &member, ends);
        let matches: bool = expected.ct_eq(&bytes[16..]).into();
        let now = unix_now();
        if !matches || (ends != 0 && ends <= now) {
            return None;
        }
        Some((member, (ends != 0).then(|| ends - now)))
    }

    fn mac(&self, vserver: &str, member: &MemberId, ends: u64) -> [u8; MAC_LEN] {
        let mut context = hmac::Context::with_key(&self.key);
        context.update(vserver.as_bytes());
        context.update(&[0]);
        context.update(member);
        context.update(&ends.to_be_bytes());
        context.sign().as_ref()[..MAC_LEN]
            .try_into()
            .expect("a SHA-256 tag has 32 bytes")
    }
}

/// A lifetime in whole seconds, rounded up (cookies and `Max-Age` count in seconds).
pub fn whole_seconds(lifetime: Duration) -> u64 {
    lifetime.as_secs() + u64::from(lifetime.subsec_nanos() > 0)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

fn decode_hex(text: &str) -> Option<[u8; VALUE_LEN / 2]> {
    if text.len() != VALUE_LEN {
        return None;
    }
    let mut bytes = [0u8; VALUE_LEN / 2];
    for (byte, pair) in bytes.iter_mut().zip(text.as_bytes().chunks_exact(2)) {
        let high = (pair[0] as char).to_digit(16)?;
        let low = (pair[1] as char).to_digit(16)?;
        *byte = (high * 16 + low) as u8;
    }
    Some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        ([10, 1, 2, 3], port).into()
    }

    #[test]
    fn a_cookie_names_its_member_without_showing_it() {
        let signer = CookieSigner::new(b"0123456789abcdef");
        let id = signer.member_id("web", addr(8080));
        assert_ne!(id, signer.member_id("web", addr(8081)));
        assert_ne!(id, signer.member_id("api", addr(8080)));
        let value = signer.issue("vs", id, Some(Duration::from_secs(120)));
        assert_eq!(value.len(), VALUE_LEN);
        assert!(!value.contains("0a010203"), "{value}");
        assert_eq!(signer.verify("vs", &value), Some(id));
        let session = signer.issue("vs", id, None);
        assert_eq!(signer.verify("vs", &session), Some(id));
    }

    #[test]
    fn forged_altered_foreign_and_ended_cookies_are_refused() {
        let signer = CookieSigner::new(b"0123456789abcdef");
        let other = CookieSigner::new(b"another key, 16+");
        let id = signer.member_id("web", addr(1));
        let value = signer.issue("vs", id, Some(Duration::from_secs(60)));
        // Every single-digit change is caught.
        for at in 0..value.len() {
            let mut altered = value.clone().into_bytes();
            altered[at] = if altered[at] == b'0' { b'1' } else { b'0' };
            let altered = String::from_utf8(altered).unwrap();
            assert_eq!(signer.verify("vs", &altered), None, "{altered}");
        }
        assert_eq!(signer.verify("other-vserver", &value), None);
        assert_eq!(other.verify("vs", &value), None);
        assert_eq!(signer.verify("vs", "zz"), None);
        assert_eq!(signer.verify("vs", &"g".repeat(VALUE_LEN)), None);
        assert_eq!(signer.verify("vs", &"é".repeat(VALUE_LEN / 2)), None);
        // Ended a second ago.
        let ended = {
            let ends = unix_now() - 1;
            let mac = signer.mac("vs", &id, ends);
            let mut v = String::new();
            for byte in id.iter().chain(&ends.to_be_bytes()).chain(&mac) {
                v.push_str(&format!("{byte:02x}"));
            }
            v
        };
        assert_eq!(signer.verify("vs", &ended), None);
    }
}
