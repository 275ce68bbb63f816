//! The member side of HTTP/1.1, sans-I/O: the request head Ballast writes to a member, and
//! the member's response head and message length (RFC 9112 §6.3) read back.
//!
//! [`write_request_head`] frames the body itself, as [`super::response::write_head`] does
//! for responses: a `Content-Length` or `Transfer-Encoding` among the fields is replaced by
//! what [`RequestFraming`] says.
//!
//! [`parse_response`] takes what a member sent so far. What it refuses (a `502` for the
//! client, a failure of the member):
//!
//! - anything `httparse` refuses: a malformed status line, a field name or value it does not
//!   take, obs-fold (RFC 9112 §5.2 lets a proxy refuse it);
//! - more than [`MAX_RESPONSE_FIELDS`] fields, or a head longer than the caller's bound;
//! - a version other than HTTP/1.0 or HTTP/1.1;
//! - a `Content-Length` that is not one decimal number, or several that differ (§6.3 item 5).
//!
//! [`response_length`] says where the body ends: no body ([`super::response::has_no_body`]),
//! `Transfer-Encoding` ending in `chunked`, one `Content-Length`, or the end of the connection.
//! A response with both `Transfer-Encoding` and `Content-Length` is read as chunked and its
//! connection is not reused (§6.3 item 3), nor is one that ends with the connection, one that
//! says `Connection: close`, or an HTTP/1.0 one that does not ask to keep alive.

use std::mem::MaybeUninit;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode};
use thiserror::Error;

/// The most fields a member's response head may carry (hyper's bound as a client too).
pub const MAX_RESPONSE_FIELDS: usize = 100;

/// How a request body goes to the member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestFraming {
    /// No body, and no framing field.
    None,
    /// `Content-Length: n`.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// Appends `METHOD target HTTP/1.1`, the fields less the framing ones, the framing fields
/// for `framing`, and the empty line. The `http` types hold no CR, LF or NUL in a field, so
/// no field can end the head early.
pub fn write_request_head(
    out: &mut Vec<u8>,
    method: &Method,
    target: &str,
    fields: &HeaderMap,
    framing: RequestFraming,
) {
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in fields {
        if name == header::CONTENT_LENGTH || name == header::TRANSFER_ENCODING {
            continue;
        }
        field(out, name.as_str().as_bytes(), value.as_bytes());
    }
    match framing {
        RequestFraming::None => {}
        RequestFraming::Length(len) => {
            let mut digits = itoa::Buffer::new();
            field(out, b"content-length", digits.format(len).as_bytes());
        }
        RequestFraming::Chunked => field(out, b"transfer-encoding", b"chunked"),
    }
    out.extend_from_slice(b"\r\n");
}

fn field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// A member's response head.
#[derive(Debug)]
pub struct ResponseHead {
    pub status: StatusCode,
    /// The response is HTTP/1.0 (it keeps the connection only if it says so).
    pub http10: bool,
    pub headers: HeaderMap,
}

/// Why a member's response head is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum ResponseHeadError {
    #[error("malformed response head ({0})")]
    Malformed(httparse::Error),
    #[error("more than {MAX_RESPONSE_FIELDS} header fields")]
    TooManyFields,
    #[error("response head longer than {0} bytes")]
    TooLarge(usize),
    #[error("not an HTTP/1.0 or HTTP/1.1 response")]
    Version,
    #[error("invalid status code")]
    Status,
    #[error("invalid Content-Length")]
    ContentLength,
}

/// Parses the response head at the start of `input`: the head and the bytes it used, or
/// `None` until it is whole.
pub fn parse_response(
    input: &[u8],
    max_len: usize,
) -> Result<Option<(ResponseHead, usize)>, ResponseHeadError> {
    let window = &input[..input.len().min(max_len)];
    // Left uninitialised: `httparse` writes only the fields it finds.
    let mut fields = [const { MaybeUninit::uninit() }; MAX_RESPONSE_FIELDS];
    let mut response = httparse::Response::new(&mut []);
    let parsed = httparse::ParserConfig::default().parse_response_with_uninit_headers(
        &mut response,
        window,
        &mut fields,
    );
    let len = match parsed {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if input.len() < max_len => return Ok(None),
        Ok(httparse::Status::Partial) => return Err(ResponseHeadError::TooLarge(max_len)),
        Err(httparse::Error::TooManyHeaders) => return Err(ResponseHeadError::TooManyFields),
        Err(error) => return Err(ResponseHeadError::Malformed(error)),
    };
    let http10 = match response.version {
        Some(0) => true,
        Some(1) => false,
        _ => return Err(ResponseHeadError::Version),
    };
    let status = response
        .code
        .and_then(|code| StatusCode::from_u16(code).ok())
        .ok_or(ResponseHeadError::Status)?;
    let mut headers = HeaderMap::with_capacity(response.headers.len());
    for field in response.headers.iter() {
        // `httparse` has checked the grammar the `http` types check again.
        let name = HeaderName::from_bytes(field.name.as_bytes());
        let value = HeaderValue::from_bytes(field.value);
        match (name, value) {
            (Ok(name), Ok(value)) => headers.append(name, value),
            _ => return Err(ResponseHeadError::Malformed(httparse::Error::HeaderName)),
        };
    }
    Ok(Some((
        ResponseHead {
            status,
            http10,
            headers,
        },
        len,
    )))
}

/// Where a response body ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseLength {
    None,
    Length(u64),
    Chunked,
    UntilClose,
}

/// The response's message length (RFC 9112 §6.3), and whether the connection may carry
/// another request after it.
pub fn response_length(
    method: &Method,
    head: &ResponseHead,
) -> Result<(ResponseLength, bool), ResponseHeadError> {
    let headers = &head.headers;
    let keep_alive = keeps_alive(head);
    if super::response::has_no_body(method.as_str().as_bytes(), head.status) {
        return Ok((ResponseLength::None, keep_alive));
    }
    if headers.contains_key(header::TRANSFER_ENCODING) {
        let last = headers
            .get_all(header::TRANSFER_ENCODING)
            .iter()
            .flat_map(|value| value.as_bytes().split(|&b| b == b','))
            .map(<[u8]>::trim_ascii)
            .rfind(|coding| !coding.is_empty());
        let chunked = last.is_some_and(|coding| coding.eq_ignore_ascii_case(b"chunked"));
        let alone = !headers.contains_key(header::CONTENT_LENGTH);
        return Ok(if chunked && !head.http10 {
            (ResponseLength::Chunked, keep_alive && alone)
        } else {
            (ResponseLength::UntilClose, false)
        });
    }
    match content_length(headers)? {
        Some(len) => Ok((ResponseLength::Length(len), keep_alive)),
        None => Ok((ResponseLength::UntilClose, false)),
    }
}

/// The one `Content-Length` (repeats of the same number are one), if any.
fn content_length(headers: &HeaderMap) -> Result<Option<u64>, ResponseHeadError> {
    let mut length = None;
    for value in headers.get_all(header::CONTENT_LENGTH) {
        for item in value.as_bytes().split(|&b| b == b',') {
            let item = item.trim_ascii();
            if item.is_empty() || !item.iter().all(u8::is_ascii_digit) {
                return Err(ResponseHeadError::ContentLength);
            }
            let len = std::str::from_utf8(item)
                .ok()
                .and_then(|digits| digits.parse::<u64>().ok())
                .ok_or(ResponseHeadError::ContentLength)?;
            if length.is_some_and(|seen| seen != len) {
                return Err(ResponseHeadError::ContentLength);
            }
            length = Some(len);
        }
    }
    Ok(length)
}

/// HTTP/1.1 keeps the connection unless `Connection: close`; HTTP/1.0 only with
/// `Connection: keep-alive`.
fn keeps_alive(head: &ResponseHead) -> bool {
    let says = |option: &[u8]| {
        head.headers
            .get_all(header::CONNECTION)
            .iter()
            .flat_map(|value| value.as_bytes().split(|&b| b == b','))
            .any(|token| token.trim_ascii().eq_ignore_ascii_case(option))
    };
    if head.http10 {
        says(b"keep-alive") && !says(b"close")
    } else {
        !says(b"close")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(bytes: &[u8]) -> Result<ResponseHead, ResponseHeadError> {
        parse_response(bytes, 8192).map(|parsed| parsed.expect("a whole head").0)
    }

    fn length(method: Method, bytes: &[u8]) -> Result<(ResponseLength, bool), ResponseHeadError> {
        response_length(&method, &head(bytes)?)
    }

    #[test]
    fn a_request_head_carries_the_framing_ballast_chose() {
        let mut fields = HeaderMap::new();
        fields.insert(header::HOST, HeaderValue::from_static("app"));
        fields.insert(header::CONTENT_LENGTH, HeaderValue::from_static("99"));
        fields.insert(header::TRANSFER_ENCODING, HeaderValue::from_static("gzip"));
        let mut out = Vec::new();
        write_request_head(
            &mut out,
            &Method::POST,
            "/a?b",
            &fields,
            RequestFraming::Length(5),
        );
        assert_eq!(
            out,
            b"POST /a?b HTTP/1.1\r\nhost: app\r\ncontent-length: 5\r\n\r\n"
        );
        out.clear();
        write_request_head(
            &mut out,
            &Method::PUT,
            "/",
            &fields,
            RequestFraming::Chunked,
        );
        assert_eq!(
            out,
            b"PUT / HTTP/1.1\r\nhost: app\r\ntransfer-encoding: chunked\r\n\r\n"
        );
        out.clear();
        write_request_head(
            &mut out,
            &Method::GET,
            "*",
            &HeaderMap::new(),
            RequestFraming::None,
        );
        assert_eq!(out, b"GET * HTTP/1.1\r\n\r\n");
    }

    #[test]
    fn a_head_is_parsed_once_whole_and_says_how_long_it_was() {
        let bytes = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nX-A: 1\r\nX-A: 2\r\n\r\nabc";
        for cut in 0..bytes.len() - 3 {
            assert!(
                parse_response(&bytes[..cut], 8192).unwrap().is_none(),
                "{cut}"
            );
        }
        let (head, len) = parse_response(bytes, 8192).unwrap().unwrap();
        assert_eq!(len, bytes.len() - 3);
        assert_eq!(head.status, StatusCode::OK);
        assert_eq!(head.headers.get_all("x-a").iter().count(), 2);
    }

    #[test]
    fn malformed_heads_are_refused() {
        let refused = [
            &b"HTTP/1.1 2000 OK\r\n\r\n"[..],
            b"HTTP/2.0 200 OK\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nX: a\r\n folded\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nBad Name: a\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nX: a\x00b\r\n\r\n",
            b"ICY 200 OK\r\n\r\n",
        ];
        for bytes in refused {
            assert!(head(bytes).is_err(), "{}", String::from_utf8_lossy(bytes));
        }
        let many: String = (0..=MAX_RESPONSE_FIELDS)
            .map(|i| format!("x-{i}: 1\r\n"))
            .collect();
        let many = format!("HTTP/1.1 200 OK\r\n{many}\r\n");
        assert_eq!(
            head(many.as_bytes()).unwrap_err(),
            ResponseHeadError::TooManyFields
        );
        let long = format!("HTTP/1.1 200 OK\r\nx: {}\r\n\r\n", "a".repeat(100));
        assert_eq!(
            parse_response(long.as_bytes(), 64).unwrap_err(),
            ResponseHeadError::TooLarge(64)
        );
    }

    #[test]
    fn message_length_follows_rfc_9112_section_6_3() {
        use ResponseLength::*;
        let get = || Method::GET;
        let cases: [(Method, &[u8], ResponseLength, bool); 10] = [
            (
                Method::HEAD,
                b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n",
                None,
                true,
            ),
            (
                get(),
                b"HTTP/1.1 204 No Content\r\nContent-Length: 9\r\n\r\n",
                None,
                true,
            ),
            (get(), b"HTTP/1.1 304 Not Modified\r\n\r\n", None, true),
            (
                get(),
                b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n",
                Length(9),
                true,
            ),
            (
                get(),
                b"HTTP/1.1 200 OK\r\nContent-Length: 9, 9\r\n\r\n",
                Length(9),
                true,
            ),
            (
                get(),
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
                Chunked,
                true,
            ),
            (
                get(),
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 9\r\n\r\n",
                Chunked,
                false,
            ),
            (
                get(),
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
                UntilClose,
                false,
            ),
            (get(), b"HTTP/1.1 200 OK\r\n\r\n", UntilClose, false),
            (
                get(),
                b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\n",
                Length(1),
                false,
            ),
        ];
        for (method, bytes, expected, reusable) in cases {
            assert_eq!(
                length(method, bytes).unwrap(),
                (expected, reusable),
                "{}",
                String::from_utf8_lossy(bytes)
            );
        }
    }

    #[test]
    fn http10_keeps_the_connection_only_when_it_asks() {
        let plain = b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n";
        assert!(!length(Method::GET, plain).unwrap().1);
        let asks = b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 1\r\n\r\n";
        assert!(length(Method::GET, asks).unwrap().1);
    }

    #[test]
    fn a_content_length_must_be_one_number() {
        for value in ["9, 10", "-1", "0x10", "", "1 2", "99999999999999999999999"] {
            let bytes = format!("HTTP/1.1 200 OK\r\nContent-Length: {value}\r\n\r\n");
            assert_eq!(
                length(Method::GET, bytes.as_bytes()).unwrap_err(),
                ResponseHeadError::ContentLength,
                "{value}"
            );
        }
        let twice = b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\nContent-Length: 8\r\n\r\n";
        assert!(length(Method::GET, twice).is_err());
    }
}
