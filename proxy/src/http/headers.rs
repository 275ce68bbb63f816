//! Header rewriting between the client and member legs.

use std::net::IpAddr;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

/// Hop-by-hop headers (RFC 9110 §7.6.1): they describe one connection and are never forwarded.
/// (`Trailer` is not one: it names the trailer fields a chunked body ends with, and hyper's
/// client sends only the trailers it names.)
static HOP_BY_HOP: [HeaderName; 6] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::TE,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

/// Removes hop-by-hop headers, including those that `Connection` names.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Most messages carry none: one pass over the names costs less than a lookup of each.
    if !headers.keys().any(|name| HOP_BY_HOP.contains(name)) {
        return;
    }
    if let Some(connection) = headers.get(header::CONNECTION) {
        let named: Vec<HeaderName> = connection
            .to_str()
            .unwrap_or("")
            .split(',')
            .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
            .collect();
        for name in named {
            headers.remove(name);
        }
    }
    for name in &HOP_BY_HOP {
        if headers.contains_key(name) {
            headers.remove(name);
        }
    }
}

/// Appends the client address to `X-Forwarded-For` and sets `X-Forwarded-Proto`.
pub fn add_forwarded(headers: &mut HeaderMap, client: IpAddr, https: bool) {
    let mut text = [0u8; MAX_IP_TEXT];
    let client = ip_text(client, &mut text);
    let value = match headers.get(&X_FORWARDED_FOR) {
        Some(existing) => HeaderValue::from_bytes(&[existing.as_bytes(), b", ", client].concat()),
        None => HeaderValue::from_bytes(client),
    };
    if let Ok(value) = value {
        headers.insert(X_FORWARDED_FOR.clone(), value);
    }
    let proto = if https { "https" } else { "http" };
    headers.insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static(proto));
}

/// The longest text of an IP address (IPv6 with an IPv4 tail).
const MAX_IP_TEXT: usize = 45;

/// `ip` as text, written into `buf`: an IPv4 address digit by digit (the formatting machinery
/// costs more than the rest of the header rewrite), an IPv6 one as `Display` writes it.
fn ip_text(ip: IpAddr, buf: &mut [u8; MAX_IP_TEXT]) -> &[u8] {
    use std::io::Write as _;
    let mut out = &mut buf[..];
    // The buffer holds the longest address: these writes cannot fail.
    let _ = match ip {
        IpAddr::V4(v4) => v4.octets().iter().enumerate().try_for_each(|(i, octet)| {
            if i > 0 {
                out.write_all(b".")?;
            }
            out.write_all(itoa::Buffer::new().format(*octet).as_bytes())
        }),
        IpAddr::V6(v6) => write!(out, "{v6}"),
    };
    let len = MAX_IP_TEXT - out.len();
    &buf[..len]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_hop_by_hop_and_connection_named_headers() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-secret"),
        );
        headers.insert("x-secret", HeaderValue::from_static("1"));
        headers.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        headers.insert("x-kept", HeaderValue::from_static("yes"));
        strip_hop_by_hop(&mut headers);
        assert_eq!(headers.len(), 1);
        assert_eq!(headers["x-kept"], "yes");
    }

    #[test]
    fn appends_to_an_existing_forwarded_for() {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", HeaderValue::from_static("10.0.0.1"));
        add_forwarded(&mut headers, "127.0.0.5".parse().unwrap(), true);
        assert_eq!(headers["x-forwarded-for"], "10.0.0.1, 127.0.0.5");
        assert_eq!(headers["x-forwarded-proto"], "https");
    }

    #[test]
    fn forwarded_for_spells_addresses_as_display_does() {
        let clients = [
            "127.0.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "10.20.3.40",
            "::1",
            "2001:db8::8:1",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            "::ffff:255.255.255.255",
        ];
        for client in clients {
            let ip: IpAddr = client.parse().unwrap();
            let mut headers = HeaderMap::new();
            add_forwarded(&mut headers, ip, false);
            assert_eq!(headers["x-forwarded-for"], ip.to_string().as_str());
            assert_eq!(headers["x-forwarded-for"], client);
            assert_eq!(headers["x-forwarded-proto"], "http");
        }
    }
}
