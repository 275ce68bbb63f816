//! What a request must satisfy before any member sees it.
//!
//! - `CONNECT` gets `405`: Ballast is a reverse proxy, not a tunnel (HTTP/2's extended
//!   `CONNECT` for `websocket` is a WebSocket, [`super::h2_websocket`]).
//! - A head over `maxheaderlen` gets `431`, whatever the server's read buffer let through: the
//!   request line and header lines are counted here from the parsed request (see [`head_len`]).
//! - A transfer coding other than `chunked` gets `501`, as nginx answers (the HTTP/1.1 server
//!   already refuses a coding list that does not end in `chunked` with `400`).
//! - `Host` (RFC 9112 §3.2): an HTTP/1.1 request without one, or any request with two, or one
//!   that is no valid `host[:port]`, gets `400`. An absolute-form target's authority (HTTP/2:
//!   `:authority`) wins over `Host`, and becomes the `Host` the member sees.

use http::header::{self, HeaderValue};
use http::request::Parts;
use http::{Method, Version};

use super::error::ExchangeError;

/// Checks `parts` and settles its `Host`.
pub fn admit(parts: &mut Parts, max_head_len: usize) -> Result<(), ExchangeError> {
    if parts.method == Method::CONNECT && !super::h2_websocket::is_extended_connect(parts) {
        return Err(ExchangeError::MethodNotAllowed);
    }
    if head_len(parts) > max_head_len {
        return Err(ExchangeError::HeadTooLarge);
    }
    if !only_chunked(parts) {
        return Err(ExchangeError::UnsupportedTransferCoding);
    }
    settle_host(parts)
}

/// The size of the request head as HTTP/1.1 spells it: `METHOD SP target SP HTTP/1.1 CRLF`,
/// `name: value CRLF` for each header, and the empty line. It is the size the client sent,
/// less any optional whitespace around header values.
pub fn head_len(parts: &Parts) -> usize {
    let uri = &parts.uri;
    let target = uri.scheme_str().map_or(0, |scheme| scheme.len() + 3)
        + uri
            .authority()
            .map_or(0, |authority| authority.as_str().len())
        + uri.path_and_query().map_or(0, |pq| pq.as_str().len());
    let request_line = parts.method.as_str().len() + 1 + target + 1 + "HTTP/1.1\r\n".len();
    let headers: usize = parts
        .headers
        .iter()
        .map(|(name, value)| name.as_str().len() + 2 + value.len() + 2)
        .sum();
    request_line + headers + 2
}

/// Every `Transfer-Encoding` coding is `chunked`.
fn only_chunked(parts: &Parts) -> bool {
    parts
        .headers
        .get_all(header::TRANSFER_ENCODING)
        .iter()
        .all(|value| {
            value.to_str().is_ok_and(|codings| {
                codings
                    .split(',')
                    .map(str::trim)
                    .filter(|coding| !coding.is_empty())
                    .all(|coding| coding.eq_ignore_ascii_case("chunked"))
            })
        })
}

/// Exactly one valid `Host` (none is fine for HTTP/1.0 and for HTTP/2 with `:authority`);
/// the target's authority replaces it when there is one.
fn settle_host(parts: &mut Parts) -> Result<(), ExchangeError> {
    let mut hosts = parts.headers.get_all(header::HOST).iter();
    let host = hosts.next();
    if hosts.next().is_some() {
        return Err(ExchangeError::BadHost);
    }
    if let Some(authority) = parts.uri.authority() {
        let needs_host = parts.version == Version::HTTP_11;
        if (needs_host && host.is_none()) || !valid_host(authority.as_str().as_bytes()) {
            return Err(ExchangeError::BadHost);
        }
        let value =
            HeaderValue::from_str(authority.as_str()).map_err(|_| ExchangeError::BadHost)?;
        parts.headers.insert(header::HOST, value);
        return Ok(());
    }
    match host {
        Some(host) if valid_host(host.as_bytes()) => Ok(()),
        None if parts.version <= Version::HTTP_10 => Ok(()),
        _ => Err(ExchangeError::BadHost),
    }
}

/// `host[:port]` with no user information, as RFC 9110 §7.2 allows in `Host`: the host an
/// IPv6 literal in brackets, or a registered name or IPv4 address (RFC 3986 §3.2.2; no `%`),
/// and the port, if there is a colon, a number up to 65535. Checked in place: this runs on
/// every request.
fn valid_host(value: &[u8]) -> bool {
    let (host, port) = match value.first() {
        Some(b'[') => match value.iter().position(|&b| b == b']') {
            Some(end) => value.split_at(end + 1),
            None => return false,
        },
        _ => value.split_at(value.iter().position(|&b| b == b':').unwrap_or(value.len())),
    };
    let port_ok = match port.split_first() {
        None => true,
        Some((b':', digits)) => {
            !digits.is_empty()
                && digits.iter().all(u8::is_ascii_digit)
                && std::str::from_utf8(digits).is_ok_and(|port| port.parse::<u16>().is_ok())
        }
        Some(_) => false,
    };
    let host_ok = match host {
        [b'[', literal @ .., b']'] => std::str::from_utf8(literal)
            .is_ok_and(|literal| literal.parse::<std::net::Ipv6Addr>().is_ok()),
        name => !name.is_empty() && name.iter().all(|&b| reg_name_byte(b)),
    };
    host_ok && port_ok
}

/// RFC 3986's `unreserved` and `sub-delims`: what a registered name (or an IPv4 address) is
/// made of, percent-encoding aside.
fn reg_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(request: http::request::Builder) -> Parts {
        request.body(()).expect("a valid request").into_parts().0
    }

    fn admitted(request: http::request::Builder) -> Result<Parts, ExchangeError> {
        let mut parts = parts(request);
        admit(&mut parts, 32 * 1024).map(|()| parts)
    }

    #[test]
    fn head_len_counts_the_head_as_http1_spells_it() {
        let head = "GET /a?b HTTP/1.1\r\nhost: x\r\nx-long: 12345\r\n\r\n";
        let parts = parts(
            http::Request::get("/a?b")
                .header("host", "x")
                .header("x-long", "12345"),
        );
        assert_eq!(head_len(&parts), head.len());
    }

    #[test]
    fn a_head_one_byte_over_the_limit_is_refused() {
        let mut parts = parts(http::Request::get("/").header("host", "x"));
        let len = head_len(&parts);
        assert_eq!(admit(&mut parts.clone(), len), Ok(()));
        assert_eq!(admit(&mut parts, len - 1), Err(ExchangeError::HeadTooLarge));
    }

    #[test]
    fn host_is_required_once_and_valid() {
        let get = || http::Request::get("/");
        assert_eq!(
            admitted(get()).err(),
            Some(ExchangeError::BadHost),
            "no Host"
        );
        assert_eq!(
            admitted(get().header("host", "a").header("host", "b")).err(),
            Some(ExchangeError::BadHost),
            "two Hosts"
        );
        for bad in [
            "",
            "a b",
            "user@a.test",
            "a.test:port",
            "a.test:",
            "a.test:99999",
            "a.test:80:80",
            "a.test:+80",
            ":80",
            "a%41.test",
            "a[b]",
            "[::1",
            "[a.test]",
            "[::1]x",
            "[::1]:",
            "[fe80::1%25eth0]",
        ] {
            assert_eq!(
                admitted(get().header("host", bad)).err(),
                Some(ExchangeError::BadHost),
                "Host {bad:?}"
            );
        }
        for good in [
            "a.test",
            "a.test:8080",
            "a.test:0",
            "a.test:65535",
            "A_b-c~.test",
            "127.0.0.1",
            "[::1]:80",
            "[::1]",
            "[2001:db8::ffff:1.2.3.4]:443",
        ] {
            assert!(
                admitted(get().header("host", good)).is_ok(),
                "Host {good:?}"
            );
        }
        let old = http::Request::get("/").version(Version::HTTP_10);
        assert!(admitted(old).is_ok(), "HTTP/1.0 needs no Host");
    }

    #[test]
    fn the_targets_authority_wins_over_host() {
        let parts = admitted(http::Request::get("http://a.test/x").header("host", "b.test"))
            .expect("admitted");
        assert_eq!(parts.headers[header::HOST], "a.test");
        let h2 = http::Request::get("https://a.test/x")
            .version(Version::HTTP_2)
            .header("host", "b.test");
        assert_eq!(
            admitted(h2).expect("admitted").headers[header::HOST],
            "a.test"
        );
        let h2 = http::Request::get("https://a.test/x").version(Version::HTTP_2);
        assert_eq!(
            admitted(h2).expect("admitted").headers[header::HOST],
            "a.test"
        );
    }

    #[test]
    fn only_chunked_transfer_coding_passes() {
        let post = || http::Request::post("/").header("host", "x");
        assert!(admitted(post().header("transfer-encoding", "chunked")).is_ok());
        assert!(admitted(post().header("transfer-encoding", "Chunked")).is_ok());
        assert_eq!(
            admitted(post().header("transfer-encoding", "gzip, chunked")).err(),
            Some(ExchangeError::UnsupportedTransferCoding)
        );
    }

    #[test]
    fn connect_is_not_allowed() {
        let connect = http::Request::connect("a.test:443").header("host", "a.test:443");
        assert_eq!(
            admitted(connect).err(),
            Some(ExchangeError::MethodNotAllowed)
        );
    }

    /// What `http`'s `Authority` parser took, with the port as `u16` parses it: the check
    /// before `valid_host` was written by hand.
    fn authority_would_take(value: &[u8]) -> bool {
        let Ok(authority) = http::uri::Authority::try_from(value) else {
            return false;
        };
        let host = authority.host();
        let port = &authority.as_str()[host.len()..];
        !value.contains(&b'@')
            && !host.is_empty()
            && (port.is_empty()
                || port
                    .strip_prefix(':')
                    .is_some_and(|p| p.parse::<u16>().is_ok()))
    }

    #[test]
    fn valid_host_takes_nothing_the_authority_parser_refused() {
        const ALPHABET: &[u8] = b"a1f.-_~:[]@%/?# !$&'()*+,;=\"\x7f\xff";
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut taken = 0;
        for _ in 0..200_000 {
            let len = (next() % 14) as usize;
            let value: Vec<u8> = (0..len)
                .map(|_| ALPHABET[(next() % ALPHABET.len() as u64) as usize])
                .collect();
            if valid_host(&value) {
                taken += 1;
                assert!(
                    authority_would_take(&value),
                    "{:?} is taken by hand but not by the parser",
                    String::from_utf8_lossy(&value)
                );
            }
        }
        assert!(
            taken > 1_000,
            "the alphabet makes valid hosts too ({taken})"
        );
    }
}
