//! The PROXY protocol, versions 1 (text) and 2 (binary), as HAProxy specifies it: the header
//! an L4 balancer puts in front of a connection's bytes to pass on the client's address.
//!
//! Sans-I/O: [`parse`] reads a header from the start of a buffer (telling how many bytes it
//! took, or that more are needed), and [`encode`] writes one. Nothing here reads a socket, and
//! nothing panics on any input: every malformed header is a [`ProxyHeaderError`] that says
//! what was wrong.
//!
//! - [`trust`]: `proxyprotocoltrusted`, the sources a vserver takes headers from.
//! - [`accept`]: reading a trusted source's header off an accepted socket, and refusing one
//!   an untrusted source sends.
//! - [`guard`]: the same refusal for `TCP` vservers, whose clients need not speak first.
//!
//! Sending is in the member connects: [`crate::l4`] (`TCP` groups) and
//! [`crate::http::pool`] (`HTTP` groups).

pub mod accept;
pub mod guard;
pub mod trust;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The 12 bytes every version 2 header starts with.
const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// A version 1 header is at most 107 bytes, `\r\n` included.
const V1_MAX_LEN: usize = 107;
/// The fixed part of a version 2 header: signature, version/command, family, length.
const V2_FIXED_LEN: usize = 16;

/// Which version to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

impl Version {
    pub const ALL: [(&'static str, Version); 2] = [("V1", Version::V1), ("V2", Version::V2)];
}

/// Whether `buf` starts with a PROXY header's signature (`PROXY ` or v2's 12 bytes): `None`
/// while the bytes so far could still be either.
pub fn starts_with_signature(buf: &[u8]) -> Option<bool> {
    let v1 = b"PROXY ".as_slice();
    let v2 = V2_SIGNATURE.as_slice();
    if buf.starts_with(v1) || buf.starts_with(v2) {
        Some(true)
    } else if starts_like(buf, v1) || starts_like(buf, v2) {
        None
    } else {
        Some(false)
    }
}

/// What a complete header says about the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Addresses {
    /// The original client (`source`) and the address it connected to (`destination`).
    Proxied {
        source: SocketAddr,
        destination: SocketAddr,
    },
    /// v1 `UNKNOWN`, v2 `LOCAL` or an unsupported family: use the connection's own addresses.
    Local,
}

/// The outcome of [`parse`] on the bytes received so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed {
    /// A header, and how many bytes of the buffer it took.
    Complete { addresses: Addresses, len: usize },
    /// The bytes so far are a valid start; more are needed.
    Incomplete,
}

/// Why a header was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProxyHeaderError {
    #[error("the connection does not start with a PROXY protocol header")]
    NoHeader,
    #[error("PROXY v1 header longer than 107 bytes without its CRLF")]
    V1TooLong,
    #[error("malformed PROXY v1 header: {0}")]
    V1Malformed(&'static str),
    #[error("PROXY v2 header with version {0} (only 2 is defined)")]
    V2Version(u8),
    #[error("PROXY v2 header with unknown command {0}")]
    V2Command(u8),
    #[error("PROXY v2 header whose length {len} is too short for its address family")]
    V2ShortAddresses { len: usize },
}

/// Reads a PROXY header (v1 or v2) from the start of `buf`.
pub fn parse(buf: &[u8]) -> Result<Parsed, ProxyHeaderError> {
    let v1_prefix = b"PROXY ";
    if starts_like(buf, &V2_SIGNATURE) {
        if buf.len() < V2_SIGNATURE.len() {
            return Ok(Parsed::Incomplete);
        }
        parse_v2(buf)
    } else if starts_like(buf, v1_prefix) {
        if buf.len() < v1_prefix.len() {
            return Ok(Parsed::Incomplete);
        }
        parse_v1(buf)
    } else {
        Err(ProxyHeaderError::NoHeader)
    }
}

/// `buf` and `prefix` agree on their common length.
fn starts_like(buf: &[u8], prefix: &[u8]) -> bool {
    let n = buf.len().min(prefix.len());
    buf[..n] == prefix[..n]
}

fn parse_v1(buf: &[u8]) -> Result<Parsed, ProxyHeaderError> {
    let window = &buf[..buf.len().min(V1_MAX_LEN)];
    let Some(end) = window.windows(2).position(|pair| pair == b"\r\n") else {
        return if buf.len() >= V1_MAX_LEN {
            Err(ProxyHeaderError::V1TooLong)
        } else {
            Ok(Parsed::Incomplete)
        };
    };
    let line =
        std::str::from_utf8(&buf[..end]).map_err(|_| ProxyHeaderError::V1Malformed("not ASCII"))?;
    let fields: Vec<&str> = line.split(' ').collect();
    let addresses = match fields.as_slice() {
        ["PROXY", "UNKNOWN", ..] => Addresses::Local,
        ["PROXY", family, src, dst, sport, dport] => {
            let (source, destination) = match *family {
                "TCP4" => (v1_ip::<Ipv4Addr>(src)?, v1_ip::<Ipv4Addr>(dst)?),
                "TCP6" => (v1_ip::<Ipv6Addr>(src)?, v1_ip::<Ipv6Addr>(dst)?),
                _ => return Err(ProxyHeaderError::V1Malformed("unknown family")),
            };
            Addresses::Proxied {
                source: SocketAddr::new(source, v1_port(sport)?),
                destination: SocketAddr::new(destination, v1_port(dport)?),
            }
        }
        _ => return Err(ProxyHeaderError::V1Malformed("wrong number of fields")),
    };
    Ok(Parsed::Complete {
        addresses,
        len: end + 2,
    })
}

fn v1_ip<T: std::str::FromStr + Into<IpAddr>>(text: &str) -> Result<IpAddr, ProxyHeaderError> {
    text.parse::<T>()
        .map(Into::into)
        .map_err(|_| ProxyHeaderError::V1Malformed("bad address"))
}

fn v1_port(text: &str) -> Result<u16, ProxyHeaderError> {
    // The spec forbids leading zeros and signs; `u16::from_str` takes a `+`.
    if text.is_empty() || text.starts_with(['0', '+']) && text != "0" {
        return Err(ProxyHeaderError::V1Malformed("bad port"));
    }
    text.parse()
        .map_err(|_| ProxyHeaderError::V1Malformed("bad port"))
}

fn parse_v2(buf: &[u8]) -> Result<Parsed, ProxyHeaderError> {
    if buf.len() < V2_FIXED_LEN {
        return Ok(Parsed::Incomplete);
    }
    let version = buf[12] >> 4;
    if version != 2 {
        return Err(ProxyHeaderError::V2Version(version));
    }
    let command = buf[12] & 0x0f;
    let family = buf[13];
    let len = usize::from(u16::from_be_bytes([buf[14], buf[15]]));
    let total = V2_FIXED_LEN + len;
    if buf.len() < total {
        return Ok(Parsed::Incomplete);
    }
    let body = &buf[V2_FIXED_LEN..total];
    let addresses = match command {
        0x0 => Addresses::Local,
        0x1 => v2_addresses(family, body)?,
        other => return Err(ProxyHeaderError::V2Command(other)),
    };
    Ok(Parsed::Complete {
        addresses,
        len: total,
    })
}

/// The addresses of a v2 `PROXY` command; TLVs after them are skipped.
fn v2_addresses(family: u8, body: &[u8]) -> Result<Addresses, ProxyHeaderError> {
    let short = || ProxyHeaderError::V2ShortAddresses { len: body.len() };
    let port = |at: usize| u16::from_be_bytes([body[at], body[at + 1]]);
    match family {
        // TCP (0x1) or UDP (0x2) over IPv4.
        0x11 | 0x12 => {
            if body.len() < 12 {
                return Err(short());
            }
            let ip = |at: usize| {
                IpAddr::from(<[u8; 4]>::try_from(&body[at..at + 4]).unwrap_or_default())
            };
            Ok(Addresses::Proxied {
                source: SocketAddr::new(ip(0), port(8)),
                destination: SocketAddr::new(ip(4), port(10)),
            })
        }
        0x21 | 0x22 => {
            if body.len() < 36 {
                return Err(short());
            }
            let ip = |at: usize| {
                IpAddr::from(<[u8; 16]>::try_from(&body[at..at + 16]).unwrap_or_default())
            };
            Ok(Addresses::Proxied {
                source: SocketAddr::new(ip(0), port(32)),
                destination: SocketAddr::new(ip(16), port(34)),
            })
        }
        // UNSPEC, UNIX sockets: nothing Ballast can use as a client address.
        _ => Ok(Addresses::Local),
    }
}

/// A header telling a member that `source` connected to `destination`. Mixed families (an
/// IPv4 client on an IPv6 listener) are sent as IPv6, with the IPv4 address mapped.
pub fn encode(version: Version, source: SocketAddr, destination: SocketAddr) -> Vec<u8> {
    let (source, destination) = same_family(source, destination);
    match version {
        Version::V1 => {
            let family = if source.is_ipv4() { "TCP4" } else { "TCP6" };
            format!(
                "PROXY {family} {} {} {} {}\r\n",
                source.ip(),
                destination.ip(),
                source.port(),
                destination.port()
            )
            .into_bytes()
        }
        Version::V2 => {
            let mut out = Vec::with_capacity(V2_FIXED_LEN + 36);
            out.extend_from_slice(&V2_SIGNATURE);
            out.push(0x21); // version 2, PROXY
            match (source.ip(), destination.ip()) {
                (IpAddr::V4(src), IpAddr::V4(dst)) => {
                    out.push(0x11);
                    out.extend_from_slice(&12u16.to_be_bytes());
                    out.extend_from_slice(&src.octets());
                    out.extend_from_slice(&dst.octets());
                }
                (src, dst) => {
                    out.push(0x21);
                    out.extend_from_slice(&36u16.to_be_bytes());
                    out.extend_from_slice(&v6(src).octets());
                    out.extend_from_slice(&v6(dst).octets());
                }
            }
            out.extend_from_slice(&source.port().to_be_bytes());
            out.extend_from_slice(&destination.port().to_be_bytes());
            out
        }
    }
}

fn same_family(source: SocketAddr, destination: SocketAddr) -> (SocketAddr, SocketAddr) {
    if source.is_ipv4() == destination.is_ipv4() {
        return (source, destination);
    }
    (
        SocketAddr::new(IpAddr::V6(v6(source.ip())), source.port()),
        SocketAddr::new(IpAddr::V6(v6(destination.ip())), destination.port()),
    )
}

fn v6(ip: IpAddr) -> Ipv6Addr {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    fn proxied(src: &str, dst: &str) -> Addresses {
        Addresses::Proxied {
            source: addr(src),
            destination: addr(dst),
        }
    }

    #[test]
    fn a_signature_is_told_from_other_first_bytes() {
        assert_eq!(starts_with_signature(b""), None);
        assert_eq!(starts_with_signature(b"PRO"), None);
        assert_eq!(starts_with_signature(b"\r\n\r\n"), None);
        assert_eq!(starts_with_signature(b"PROXY "), Some(true));
        assert_eq!(starts_with_signature(&V2_SIGNATURE), Some(true));
        assert_eq!(starts_with_signature(b"PRI * HTTP/2.0"), Some(false));
        assert_eq!(starts_with_signature(b"GET / HTTP/1.1"), Some(false));
        assert_eq!(starts_with_signature(b"\r\n\r\nGET"), Some(false));
        assert_eq!(starts_with_signature(b"\x16\x03\x01"), Some(false));
    }

    #[test]
    fn v1_tcp4_is_read_and_its_length_counted() {
        let buf = b"PROXY TCP4 192.0.2.7 127.0.0.1 51234 8080\r\nGET / HTTP/1.1\r\n";
        let parsed = parse(buf).unwrap();
        let Parsed::Complete { addresses, len } = parsed else {
            panic!("{parsed:?}")
        };
        assert_eq!(addresses, proxied("192.0.2.7:51234", "127.0.0.1:8080"));
        assert_eq!(&buf[len..], b"GET / HTTP/1.1\r\n");
    }

    #[test]
    fn v1_tcp6_and_unknown() {
        let parsed = parse(b"PROXY TCP6 2001:db8::1 ::1 1 2\r\n").unwrap();
        assert!(
            matches!(parsed, Parsed::Complete { addresses, .. } if addresses == proxied("[2001:db8::1]:1", "[::1]:2"))
        );
        let parsed = parse(b"PROXY UNKNOWN ffff::1 ::1 1 2\r\n").unwrap();
        assert!(matches!(
            parsed,
            Parsed::Complete {
                addresses: Addresses::Local,
                ..
            }
        ));
    }

    #[test]
    fn every_prefix_of_a_header_asks_for_more() {
        let v1 = encode(Version::V1, addr("10.1.2.3:4000"), addr("127.0.0.1:80"));
        let v2 = encode(Version::V2, addr("10.1.2.3:4000"), addr("127.0.0.1:80"));
        for header in [v1, v2] {
            for cut in 0..header.len() {
                assert_eq!(
                    parse(&header[..cut]),
                    Ok(Parsed::Incomplete),
                    "cut at {cut}"
                );
            }
        }
    }

    #[test]
    fn encoded_headers_read_back() {
        let cases = [
            ("10.1.2.3:4000", "127.0.0.1:80"),
            ("[2001:db8::7]:65535", "[::1]:443"),
            ("10.1.2.3:4000", "[::1]:443"),
        ];
        for version in [Version::V1, Version::V2] {
            for (src, dst) in cases {
                let header = encode(version, addr(src), addr(dst));
                let (src, dst) = same_family(addr(src), addr(dst));
                assert_eq!(
                    parse(&header),
                    Ok(Parsed::Complete {
                        addresses: Addresses::Proxied {
                            source: src,
                            destination: dst
                        },
                        len: header.len()
                    }),
                    "{version:?} {src} {dst}"
                );
            }
        }
    }

    #[test]
    fn v2_skips_tlvs_and_reads_local() {
        let mut header = encode(Version::V2, addr("10.0.0.1:1"), addr("10.0.0.2:2"));
        header[15] += 7; // a TLV after the addresses
        header.extend_from_slice(&[0x04, 0x00, 0x04, 1, 2, 3, 4]);
        header.extend_from_slice(b"payload");
        let Ok(Parsed::Complete { addresses, len }) = parse(&header) else {
            panic!()
        };
        assert_eq!(addresses, proxied("10.0.0.1:1", "10.0.0.2:2"));
        assert_eq!(&header[len..], b"payload");

        let mut local = V2_SIGNATURE.to_vec();
        local.extend_from_slice(&[0x20, 0x00, 0, 0]);
        assert_eq!(
            parse(&local),
            Ok(Parsed::Complete {
                addresses: Addresses::Local,
                len: 16
            })
        );
    }

    #[test]
    fn malformed_headers_are_refused_with_a_reason() {
        use ProxyHeaderError::*;
        assert_eq!(parse(b"GET / HTTP/1.1\r\n"), Err(NoHeader));
        assert_eq!(parse(b"\x16\x03\x01"), Err(NoHeader));
        assert_eq!(parse(&[b'P'; 200][..]), Err(NoHeader));
        let mut long = b"PROXY TCP4 ".to_vec();
        long.extend_from_slice(&[b'1'; 120]);
        assert_eq!(parse(&long), Err(V1TooLong));
        for bad in [
            &b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n"[..],
            b"PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n",
            b"PROXY TCP4 1.2.3.999 5.6.7.8 1 2\r\n",
            b"PROXY TCP4 ::1 5.6.7.8 1 2\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n",
            b"PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 \xff\r\n",
        ] {
            assert!(
                matches!(parse(bad), Err(V1Malformed(_))),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let mut v2 = encode(Version::V2, addr("10.0.0.1:1"), addr("10.0.0.2:2"));
        v2[12] = 0x11;
        assert_eq!(parse(&v2), Err(V2Version(1)));
        v2[12] = 0x25;
        assert_eq!(parse(&v2), Err(V2Command(5)));
        let mut short = V2_SIGNATURE.to_vec();
        short.extend_from_slice(&[0x21, 0x11, 0, 4, 1, 2, 3, 4]);
        assert_eq!(parse(&short), Err(V2ShortAddresses { len: 4 }));
        let mut short6 = V2_SIGNATURE.to_vec();
        short6.extend_from_slice(&[0x21, 0x21, 0, 12]);
        short6.extend_from_slice(&[0; 12]);
        assert_eq!(parse(&short6), Err(V2ShortAddresses { len: 12 }));
    }
}
