//! A parsed [`Head`] as `http` request parts, for the code that already works on them:
//! [`crate::http::checks::admit`] (`Host`, `CONNECT`) and the exchange with a member.
//!
//! Every field is kept, in order, framing fields included, as hyper keeps them; the head's
//! checks already make every part convertible, so a failure here is reported, not expected.

use http::header::{HeaderName, HeaderValue};
use http::request::Parts;
use http::{HeaderMap, Method, Uri};

use super::head::{Head, HeadError, Version};

/// `head` as `http` request parts (with an empty body type to split off).
pub fn to_parts(head: &Head) -> Result<Parts, HeadError> {
    let method = Method::from_bytes(head.method()).map_err(|_| HeadError::InvalidMethod)?;
    let uri = Uri::try_from(head.target()).map_err(|_| HeadError::InvalidTarget)?;
    // Room for the two `X-Forwarded-*` fields the proxy adds, so the map never grows.
    let mut headers = HeaderMap::with_capacity(head.field_count() + 2);
    for (name, value) in head.fields() {
        let name = HeaderName::from_bytes(name).map_err(|_| HeadError::InvalidHeaderName)?;
        let value = HeaderValue::from_bytes(value).map_err(|_| HeadError::InvalidHeaderValue)?;
        headers.append(name, value);
    }
    let (mut parts, ()) = http::Request::new(()).into_parts();
    parts.method = method;
    parts.uri = uri;
    parts.version = match head.version() {
        Version::Http10 => http::Version::HTTP_10,
        Version::Http11 => http::Version::HTTP_11,
    };
    parts.headers = headers;
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::h1::head::{self, Parsed};

    fn parts(input: &[u8]) -> Parts {
        let Ok(Parsed::Complete { head, .. }) = head::parse(input, 8192) else {
            panic!("a head");
        };
        to_parts(&head).expect("converted")
    }

    #[test]
    fn every_part_is_kept() {
        let parts = parts(
            b"POST http://a.test/x?y HTTP/1.0\r\nHost: b\r\nX-A: 1\r\nx-a: 2\r\nContent-Length: 0\r\n\r\n",
        );
        assert_eq!(parts.method, Method::POST);
        assert_eq!(parts.uri, "http://a.test/x?y");
        assert_eq!(parts.version, http::Version::HTTP_10);
        assert_eq!(parts.headers["host"], "b");
        assert_eq!(
            parts.headers.get_all("x-a").iter().collect::<Vec<_>>(),
            ["1", "2"]
        );
        assert_eq!(parts.headers["content-length"], "0");
        assert_eq!(parts.headers.len(), 4);
    }

    #[test]
    fn extension_methods_and_other_forms() {
        assert_eq!(parts(b"PURGE /a HTTP/1.1\r\n\r\n").method.as_str(), "PURGE");
        assert_eq!(parts(b"OPTIONS * HTTP/1.1\r\n\r\n").uri, "*");
        let connect = parts(b"CONNECT a.test:443 HTTP/1.1\r\n\r\n");
        assert_eq!(
            connect.uri.authority().map(|a| a.as_str()),
            Some("a.test:443")
        );
    }
}
