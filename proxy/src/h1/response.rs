//! The response side of HTTP/1.1 framing: which responses carry no body (RFC 9112 §6.3
//! items 1–2), and writing a response head into a caller's buffer.
//!
//! [`write_head`] decides the framing fields itself from a [`ResponseBody`]: any
//! `Content-Length`, `Transfer-Encoding` or `Connection` the caller passes is dropped, so one
//! place says where the body ends (a bodiless answer to `HEAD`, or a `304`, keeps its
//! `Content-Length`: it says how long the body would be, RFC 9110 §8.6). A `101` says
//! `Connection: upgrade`. A field name or value that would break the head (a CR,
//! an LF, a control byte) is refused rather than written.

use http::StatusCode;
use thiserror::Error;

use super::head::Version;

/// Whether a response to a request with `method` and with `status` has no body whatever its
/// fields say: a `HEAD` response, `1xx`, `204`, `304`, and a `2xx` to `CONNECT` (a tunnel).
pub fn has_no_body(method: &[u8], status: StatusCode) -> bool {
    method == b"HEAD"
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
        || (method == b"CONNECT" && status.is_success())
}

/// How the body that follows the head is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseBody {
    /// No body ([`has_no_body`], or an empty one): `Content-Length` is not sent.
    None,
    /// `Content-Length: n`.
    Length(u64),
    /// `Transfer-Encoding: chunked` (HTTP/1.1 only, see [`super::chunked::encode_chunk`]).
    Chunked,
    /// Until the connection closes (an HTTP/1.0 client and a body of unknown length).
    UntilClose,
}

/// Why a head is not written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum ResponseError {
    #[error("chunked response to an HTTP/1.0 request")]
    ChunkedForHttp10,
    #[error("invalid header name")]
    InvalidName,
    #[error("invalid header value")]
    InvalidValue,
}

/// Appends the response head to `out`: the status line, `fields` (less the framing ones),
/// the framing fields for `body`, `Connection: close` when the connection ends after this
/// response (or `keep-alive` for an HTTP/1.0 client that keeps it; `upgrade` for a `101`),
/// and the empty line.
/// Nothing is appended on error.
pub fn write_head<'a>(
    out: &mut Vec<u8>,
    version: Version,
    status: StatusCode,
    fields: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
    body: ResponseBody,
    keep_alive: bool,
) -> Result<(), ResponseError> {
    if body == ResponseBody::Chunked && version == Version::Http10 {
        return Err(ResponseError::ChunkedForHttp10);
    }
    let start = out.len();
    let keep_alive = keep_alive && body != ResponseBody::UntilClose;
    out.extend_from_slice(version.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    // A bodiless response to `HEAD` (or a `304`) may say how long the body would have been.
    let keeps_length = body == ResponseBody::None
        && !status.is_informational()
        && status != StatusCode::NO_CONTENT;
    for (name, value) in fields {
        if !is_token(name) || !is_field_value(value) {
            out.truncate(start);
            return Err(if is_token(name) {
                ResponseError::InvalidValue
            } else {
                ResponseError::InvalidName
            });
        }
        let framing = [&b"transfer-encoding"[..], b"connection"];
        let length = name.eq_ignore_ascii_case(b"content-length");
        if framing.iter().any(|f| name.eq_ignore_ascii_case(f)) || (length && !keeps_length) {
            continue;
        }
        field(out, name, value);
    }
    match body {
        ResponseBody::None | ResponseBody::UntilClose => {}
        ResponseBody::Length(len) => {
            field(out, b"content-length", len.to_string().as_bytes());
        }
        ResponseBody::Chunked => field(out, b"transfer-encoding", b"chunked"),
    }
    match (version, keep_alive) {
        _ if status == StatusCode::SWITCHING_PROTOCOLS => field(out, b"connection", b"upgrade"),
        (Version::Http11, false) => field(out, b"connection", b"close"),
        (Version::Http10, true) => field(out, b"connection", b"keep-alive"),
        _ => {}
    }
    out.extend_from_slice(b"\r\n");
    Ok(())
}

fn field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// A token (RFC 9110 §5.6.2).
fn is_token(name: &[u8]) -> bool {
    !name.is_empty()
        && name
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// HTAB, SP, VCHAR and obs-text (RFC 9110 §5.5).
fn is_field_value(value: &[u8]) -> bool {
    value
        .iter()
        .all(|&b| b == b'\t' || (0x20..=0x7e).contains(&b) || b >= 0x80)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodiless_responses() {
        assert!(has_no_body(b"HEAD", StatusCode::OK));
        assert!(has_no_body(b"GET", StatusCode::CONTINUE));
        assert!(has_no_body(b"GET", StatusCode::SWITCHING_PROTOCOLS));
        assert!(has_no_body(b"GET", StatusCode::NO_CONTENT));
        assert!(has_no_body(b"GET", StatusCode::NOT_MODIFIED));
        assert!(has_no_body(b"CONNECT", StatusCode::OK));
        assert!(!has_no_body(b"CONNECT", StatusCode::FORBIDDEN));
        assert!(!has_no_body(b"GET", StatusCode::OK));
        assert!(!has_no_body(b"POST", StatusCode::NOT_FOUND));
    }

    #[test]
    fn a_head_is_written_with_its_framing() {
        let mut out = b"prefix".to_vec();
        let fields = [
            (&b"server"[..], &b"ballast"[..]),
            (b"Content-Length", b"99"),
            (b"connection", b"keep-alive"),
        ];
        write_head(
            &mut out,
            Version::Http11,
            StatusCode::OK,
            fields,
            ResponseBody::Length(5),
            false,
        )
        .expect("written");
        assert_eq!(
            out,
            b"prefixHTTP/1.1 200 OK\r\nserver: ballast\r\ncontent-length: 5\r\nconnection: close\r\n\r\n"
        );
        let mut out = Vec::new();
        write_head(
            &mut out,
            Version::Http10,
            StatusCode::NOT_FOUND,
            [],
            ResponseBody::None,
            true,
        )
        .expect("written");
        assert_eq!(
            out,
            b"HTTP/1.0 404 Not Found\r\nconnection: keep-alive\r\n\r\n"
        );
    }

    #[test]
    fn a_head_that_would_break_is_not_written() {
        let mut out = b"x".to_vec();
        let bad_value = [(&b"a"[..], &b"1\r\nb: 2"[..])];
        assert_eq!(
            write_head(
                &mut out,
                Version::Http11,
                StatusCode::OK,
                bad_value,
                ResponseBody::None,
                true
            ),
            Err(ResponseError::InvalidValue)
        );
        let bad_name = [(&b"a b"[..], &b"1"[..])];
        assert_eq!(
            write_head(
                &mut out,
                Version::Http11,
                StatusCode::OK,
                bad_name,
                ResponseBody::None,
                true
            ),
            Err(ResponseError::InvalidName)
        );
        assert_eq!(
            write_head(
                &mut out,
                Version::Http10,
                StatusCode::OK,
                [],
                ResponseBody::Chunked,
                true
            ),
            Err(ResponseError::ChunkedForHttp10)
        );
        assert_eq!(out, b"x");
    }
}
