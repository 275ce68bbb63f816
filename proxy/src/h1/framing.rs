//! What a parsed request head says about its body and its connection.
//!
//! Message length (RFC 9112 §6.1–§6.3), for a request:
//!
//! - `Transfer-Encoding`: only `chunked`, once, as the only coding, over all the field lines
//!   together. A list whose last coding is not `chunked` gets `400` (§6.1: the length cannot
//!   be known); one that ends in `chunked` after another coding, `501` (a coding Ballast does
//!   not implement, as nginx answers); `chunked` twice, or a field with no coding, `400`; any
//!   `Transfer-Encoding` in an HTTP/1.0 request, `400` (§6.1: it cannot be trusted there).
//! - `Content-Length`: one value, or the same value repeated in a list or in several field
//!   lines (RFC 9110 §8.6 lets a recipient take that); differing values, an empty element or
//!   anything but digits (a sign, whitespace inside, hex), or a value over `u64`: `400`.
//! - Both: `400`. §6.3 lets a server go by `Transfer-Encoding` and drop `Content-Length`
//!   (hyper does), but the pair is the request-smuggling shape, and nothing legitimate sends
//!   it: refused, an intended difference from the hyper path.
//! - Neither: no body.
//!
//! Connection semantics:
//!
//! - Keep-alive (§9.3): HTTP/1.1 persists unless a `Connection` field names `close`; HTTP/1.0
//!   persists only when one names `keep-alive` and none names `close`.
//! - `Expect` (RFC 9110 §10.1.1): `100-continue` (any case) on HTTP/1.1 asks for an interim
//!   `100` before the body is read (a request with no body gets none: nothing is waited
//!   for); an HTTP/1.0 request's `Expect` is ignored, as the RFC says; any other expectation
//!   on HTTP/1.1 gets `417` (hyper ignores it).
//! - `Upgrade` (RFC 9110 §7.8): requested when an HTTP/1.1 request carries `Upgrade` and its
//!   `Connection` names `upgrade`, the rule [`crate::http::upgrade`] follows today.

use http::StatusCode;
use thiserror::Error;

use super::head::{Head, Version};

/// How the request body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyLength {
    /// No body: the next request starts right after the head.
    Empty,
    /// Exactly this many bytes (never 0: that is [`BodyLength::Empty`]).
    Fixed(u64),
    /// Chunked ([`super::chunked::ChunkedDecoder`]).
    Chunked,
}

/// Everything the head decides about the exchange, once it is known to be acceptable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Framing {
    pub body: BodyLength,
    /// The connection may carry another request after this one.
    pub keep_alive: bool,
    /// Send `100 Continue` before reading the body (never set when there is no body).
    pub expect_continue: bool,
    /// The client asks to switch protocols (`Upgrade` named in `Connection`).
    pub upgrade: bool,
}

/// Why a request's framing is refused. [`FramingError::status`] is the answer; the connection
/// closes after it, since where the body ends is unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum FramingError {
    #[error("transfer coding other than chunked")]
    UnsupportedTransferCoding,
    #[error("the last transfer coding is not chunked")]
    ChunkedNotFinal,
    #[error("chunked is applied more than once")]
    ChunkedTwice,
    #[error("Transfer-Encoding with no coding")]
    EmptyTransferEncoding,
    #[error("Transfer-Encoding in an HTTP/1.0 request")]
    TransferEncodingInHttp10,
    #[error("invalid Content-Length")]
    InvalidContentLength,
    #[error("differing Content-Length values")]
    DifferingContentLengths,
    #[error("both Content-Length and Transfer-Encoding")]
    ContentLengthAndTransferEncoding,
    #[error("unsupported expectation")]
    UnsupportedExpectation,
}

impl FramingError {
    pub fn status(self) -> StatusCode {
        match self {
            FramingError::UnsupportedTransferCoding => StatusCode::NOT_IMPLEMENTED,
            FramingError::UnsupportedExpectation => StatusCode::EXPECTATION_FAILED,
            FramingError::ChunkedTwice
            | FramingError::ChunkedNotFinal
            | FramingError::EmptyTransferEncoding
            | FramingError::TransferEncodingInHttp10
            | FramingError::InvalidContentLength
            | FramingError::DifferingContentLengths
            | FramingError::ContentLengthAndTransferEncoding => StatusCode::BAD_REQUEST,
        }
    }
}

/// The framing of `head`'s request.
pub fn framing(head: &Head) -> Result<Framing, FramingError> {
    let chunked = transfer_encoding(head)?;
    let content_length = content_length(head)?;
    let body = match (chunked, content_length) {
        (true, Some(_)) => return Err(FramingError::ContentLengthAndTransferEncoding),
        (true, None) => BodyLength::Chunked,
        (false, Some(0) | None) => BodyLength::Empty,
        (false, Some(len)) => BodyLength::Fixed(len),
    };
    let http11 = head.version() == Version::Http11;
    let close = connection_names(head, "close");
    let keep_alive = !close && (http11 || connection_names(head, "keep-alive"));
    // Checked even without a body: an expectation Ballast cannot meet is refused either way.
    let expect_continue = http11 && expects_continue(head)? && body != BodyLength::Empty;
    let upgrade =
        http11 && head.values("upgrade").next().is_some() && connection_names(head, "upgrade");
    Ok(Framing {
        body,
        keep_alive,
        expect_continue,
        upgrade,
    })
}

/// Elements of a comma-separated list (RFC 9110 §5.6.1), OWS trimmed, empty ones dropped.
fn list_elements(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(|element| element.trim_ascii())
        .filter(|element| !element.is_empty())
}

/// Whether the request is chunked; `false` when it has no `Transfer-Encoding`.
fn transfer_encoding(head: &Head) -> Result<bool, FramingError> {
    let mut fields = head.values("transfer-encoding").peekable();
    if fields.peek().is_none() {
        return Ok(false);
    }
    if head.version() == Version::Http10 {
        return Err(FramingError::TransferEncodingInHttp10);
    }
    let mut chunked = 0usize;
    let mut other = false;
    let mut last_is_chunked = false;
    for value in fields {
        for coding in list_elements(value) {
            last_is_chunked = coding.eq_ignore_ascii_case(b"chunked");
            if last_is_chunked {
                chunked += 1;
            } else {
                other = true;
            }
        }
    }
    match chunked {
        0 if !other => Err(FramingError::EmptyTransferEncoding),
        _ if !last_is_chunked => Err(FramingError::ChunkedNotFinal),
        _ if other => Err(FramingError::UnsupportedTransferCoding),
        1 => Ok(true),
        _ => Err(FramingError::ChunkedTwice),
    }
}

fn content_length(head: &Head) -> Result<Option<u64>, FramingError> {
    let mut length = None;
    for value in head.values("content-length") {
        for element in value.split(|&b| b == b',') {
            let element = element.trim_ascii();
            let parsed = digits(element).ok_or(FramingError::InvalidContentLength)?;
            match length {
                Some(seen) if seen != parsed => {
                    return Err(FramingError::DifferingContentLengths);
                }
                _ => length = Some(parsed),
            }
        }
    }
    Ok(length)
}

/// `1*DIGIT` as a `u64`.
fn digits(value: &[u8]) -> Option<u64> {
    if value.is_empty() {
        return None;
    }
    value.iter().try_fold(0u64, |acc, &b| {
        let digit = b.is_ascii_digit().then(|| u64::from(b - b'0'))?;
        acc.checked_mul(10)?.checked_add(digit)
    })
}

/// Some `Connection` field names `option` (ASCII case-insensitive).
fn connection_names(head: &Head, option: &str) -> bool {
    head.values("connection")
        .flat_map(list_elements)
        .any(|token| token.eq_ignore_ascii_case(option.as_bytes()))
}

/// `Expect: 100-continue`; any other expectation is refused.
fn expects_continue(head: &Head) -> Result<bool, FramingError> {
    let mut expect = false;
    for value in head.values("expect") {
        for element in list_elements(value) {
            if !element.eq_ignore_ascii_case(b"100-continue") {
                return Err(FramingError::UnsupportedExpectation);
            }
            expect = true;
        }
    }
    Ok(expect)
}
