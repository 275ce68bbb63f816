//! A request head (RFC 9112 §2–§5) from a byte slice, with `httparse` doing the tokenizing.
//!
//! [`parse`] takes the bytes read so far and the caller's `maxheaderlen`; it answers
//! [`Parsed::Partial`] (read more and call again with the longer slice), a [`Parsed::Complete`]
//! head with the number of bytes it used (the body, or a pipelined request, starts there), or
//! a [`HeadError`] that names the status to answer.
//!
//! What is checked beyond `httparse`'s grammar:
//!
//! - Line endings (§2.2): every line ends in CRLF. A bare CR is refused, and so is a bare LF,
//!   although §2.2 lets a server accept one and `httparse` (so hyper today) does: with one
//!   line ending only, a proxy in front that splits lines differently cannot make Ballast see
//!   other fields than it saw. This is an intended difference from the hyper path.
//! - obs-fold (§5.2): a header line that starts with SP or HTAB is refused with `400`.
//! - No whitespace inside a header name or between the name and the colon (§5.1).
//! - Field values hold only HTAB, SP, VCHAR and obs-text (RFC 9110 §5.5; `httparse` enforces
//!   it); leading and trailing whitespace is not part of the value.
//! - The request target (§3.2) is origin-form, absolute-form, authority-form (`CONNECT`
//!   only) or asterisk-form (`OPTIONS` only), of visible ASCII the `http` crate's URI parser
//!   also takes, with no fragment, at most [`MAX_TARGET_LEN`] bytes. An authority is
//!   `host[:port]`: no user information (RFC 9110 §4.2.4), no percent-encoded host.
//! - The version is `HTTP/1.0` or `HTTP/1.1`; another well-formed `HTTP/x.y` gets `505`
//!   (hyper answers `400`), anything else `400`.
//! - Limits: at most [`MAX_HEADERS`] fields (`431`); the head, leading empty lines included,
//!   within `max_head_len` bytes: `414` while the request line has not ended by then, `431`
//!   after. Only the first `max_head_len` bytes are ever looked at.
//!
//! Feeding the same bytes in any split gives the same answer as all at once: a refusal depends
//! only on the first offending byte, whichever check finds it. The caller parses again from
//! the start after each read, as hyper does; a head costs at most `max_head_len` bytes of
//! scanning per call.
//!
//! The [`Head`] keeps one copy of the head's bytes and 32-bit offsets into it: two allocations
//! per request whatever its header count, where an `http::HeaderMap` costs its index table, its
//! entry vector and one allocation per header name outside the standard ones. The wiring
//! converts to `http` types only where a request leaves for a member.

use std::mem::MaybeUninit;
use std::ops::Range;

use http::StatusCode;
use thiserror::Error;

/// The most header fields a request head may carry (hyper's default too).
pub const MAX_HEADERS: usize = 100;

/// The longest request target, as hyper bounds it.
pub const MAX_TARGET_LEN: usize = u16::MAX as usize - 1;

/// The HTTP versions Ballast serves over HTTP/1.x.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    Http10,
    Http11,
}

impl Version {
    /// The version as the request line spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
        }
    }
}

/// A byte range into [`Head`]'s bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    start: u32,
    end: u32,
}

impl Span {
    fn range(self) -> Range<usize> {
        self.start as usize..self.end as usize
    }
}

/// A parsed request head: the bytes as received and where each part lies in them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    bytes: Box<[u8]>,
    method: Span,
    target: Span,
    version: Version,
    fields: Vec<(Span, Span)>,
}

impl Head {
    pub fn method(&self) -> &[u8] {
        &self.bytes[self.method.range()]
    }

    pub fn target(&self) -> &[u8] {
        &self.bytes[self.target.range()]
    }

    pub fn version(&self) -> Version {
        self.version
    }

    /// The head as received, through the empty line that ends it.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Every field, in order, as `(name, value)`; the value without surrounding whitespace.
    pub fn fields(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        self.fields
            .iter()
            .map(|(name, value)| (&self.bytes[name.range()], &self.bytes[value.range()]))
    }

    pub fn field_count(&self) -> usize {
        self.fields.len()
    }

    /// The values of every field named `name` (ASCII case-insensitive), in order.
    pub fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.fields()
            .filter(move |(field, _)| field.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, value)| value)
    }

    pub fn is_method(&self, method: &str) -> bool {
        self.method() == method.as_bytes()
    }
}

/// What [`parse`] made of the bytes so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// A whole head; `len` bytes of the input are its, the rest follows it.
    Complete { head: Head, len: usize },
    /// No error so far, but the head has not ended: read more.
    Partial,
}

/// Why a request head is refused. [`HeadError::status`] is the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum HeadError {
    #[error("line ending is a bare CR or LF, not CRLF")]
    BareLineEnding,
    #[error("obsolete line folding")]
    ObsFold,
    #[error("whitespace in a header name or before its colon")]
    WhitespaceInHeaderName,
    #[error("invalid method")]
    InvalidMethod,
    #[error("invalid request target")]
    InvalidTarget,
    #[error("malformed request line")]
    MalformedRequestLine,
    #[error("HTTP version not supported")]
    UnsupportedVersion,
    #[error("invalid header name")]
    InvalidHeaderName,
    #[error("invalid header value")]
    InvalidHeaderValue,
    #[error("too many header fields")]
    TooManyHeaders,
    #[error("request head too large")]
    HeadTooLarge,
    #[error("request line too long")]
    RequestLineTooLong,
}

impl HeadError {
    /// The status to answer before closing the connection.
    pub fn status(self) -> StatusCode {
        match self {
            HeadError::UnsupportedVersion => StatusCode::HTTP_VERSION_NOT_SUPPORTED,
            HeadError::TooManyHeaders | HeadError::HeadTooLarge => {
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
            }
            HeadError::RequestLineTooLong => StatusCode::URI_TOO_LONG,
            HeadError::BareLineEnding
            | HeadError::ObsFold
            | HeadError::WhitespaceInHeaderName
            | HeadError::InvalidMethod
            | HeadError::InvalidTarget
            | HeadError::MalformedRequestLine
            | HeadError::InvalidHeaderName
            | HeadError::InvalidHeaderValue => StatusCode::BAD_REQUEST,
        }
    }
}

/// Parses the request head at the start of `input`, which holds the bytes read so far.
pub fn parse(input: &[u8], max_head_len: usize) -> Result<Parsed, HeadError> {
    let window = &input[..input.len().min(max_head_len)];
    let scanned = scan(window);
    // A CR whose next byte has not arrived is left out: `httparse` would judge it alone.
    let parsable = match scanned {
        Err((at, _)) => &window[..at],
        Ok(ScanEnd {
            trailing_cr: true, ..
        }) => &window[..window.len() - 1],
        Ok(_) => window,
    };
    // Left uninitialised: `httparse` writes only the fields it finds.
    let mut fields = [const { MaybeUninit::uninit() }; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut []);
    match request.parse_with_uninit_headers(parsable, &mut fields) {
        Ok(httparse::Status::Complete(len)) => {
            let head = build(&request, &parsable[..len])?;
            Ok(Parsed::Complete { head, len })
        }
        Ok(httparse::Status::Partial) => match scanned {
            Err((_, error)) => Err(error),
            Ok(_) if input.len() <= max_head_len => Ok(Parsed::Partial),
            Ok(ScanEnd {
                request_line_ended: false,
                ..
            }) => Err(HeadError::RequestLineTooLong),
            Ok(_) => Err(HeadError::HeadTooLarge),
        },
        Err(error) => Err(match error {
            httparse::Error::Token if request.method.is_none() => HeadError::InvalidMethod,
            httparse::Error::Token => HeadError::InvalidTarget,
            httparse::Error::Version => version_error(parsable),
            httparse::Error::HeaderName => HeadError::InvalidHeaderName,
            httparse::Error::HeaderValue => HeadError::InvalidHeaderValue,
            httparse::Error::TooManyHeaders => HeadError::TooManyHeaders,
            httparse::Error::NewLine | httparse::Error::Status => HeadError::MalformedRequestLine,
        }),
    }
}

/// How far [`scan`] got without finding a fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ScanEnd {
    request_line_ended: bool,
    /// `window` ends in a CR, which may yet be followed by its LF.
    trailing_cr: bool,
}

/// The line-level rules `httparse` does not enforce, up to the end of the head or of `window`:
/// the first offending byte's offset and what is wrong there.
fn scan(window: &[u8]) -> Result<ScanEnd, (usize, HeadError)> {
    let mut request_line_ended = false;
    let mut line_start = true;
    let mut in_name = false;
    let mut i = 0;
    while let Some(&byte) = window.get(i) {
        match byte {
            b'\r' => match window.get(i + 1) {
                None => {
                    return Ok(ScanEnd {
                        request_line_ended,
                        trailing_cr: true,
                    });
                }
                Some(b'\n') => {
                    if line_start && request_line_ended {
                        break; // the empty line that ends the head
                    }
                    // An empty line before the request line is skipped (§2.2).
                    request_line_ended |= !line_start;
                    line_start = true;
                    in_name = request_line_ended;
                    i += 2;
                    continue;
                }
                Some(_) => return Err((i, HeadError::BareLineEnding)),
            },
            b'\n' => return Err((i, HeadError::BareLineEnding)),
            b' ' | b'\t' if line_start && request_line_ended => {
                return Err((i, HeadError::ObsFold));
            }
            b' ' | b'\t' if in_name => return Err((i, HeadError::WhitespaceInHeaderName)),
            b':' => in_name = false,
            _ => {}
        }
        line_start = false;
        i += 1;
    }
    Ok(ScanEnd {
        request_line_ended,
        trailing_cr: false,
    })
}

/// `505` for a well-formed `HTTP/x.y` other than 1.0 and 1.1, `400` for anything else.
/// `httparse` stops at the first byte that is not `HTTP/1.0` or `HTTP/1.1`; which byte that
/// is decides, so a prefix of the request answers as the whole does.
fn version_error(input: &[u8]) -> HeadError {
    let start = input
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(input.len());
    let line = &input[start..];
    let line = &line[..line.iter().position(|&b| b == b'\r').unwrap_or(line.len())];
    let mut parts = line.splitn(3, |&b| b == b' ');
    let version = parts.nth(2).unwrap_or_default();
    let digit = |i: usize| version.get(i).filter(|b| b.is_ascii_digit()).copied();
    let well_formed_other = version.starts_with(b"HTTP/")
        && match digit(5) {
            Some(b'1') => {
                version.get(6) == Some(&b'.') && digit(7).is_some_and(|minor| minor > b'1')
            }
            Some(_) => true,
            None => false,
        };
    if well_formed_other {
        HeadError::UnsupportedVersion
    } else {
        HeadError::MalformedRequestLine
    }
}

/// The owned [`Head`] of a complete parse; `bytes` is the head, through its empty line.
fn build(request: &httparse::Request<'_, '_>, bytes: &[u8]) -> Result<Head, HeadError> {
    let (Some(method), Some(target), Some(minor)) = (request.method, request.path, request.version)
    else {
        return Err(HeadError::MalformedRequestLine);
    };
    let version = match minor {
        0 => Version::Http10,
        1 => Version::Http11,
        _ => return Err(HeadError::UnsupportedVersion),
    };
    let method = span(bytes, method.as_bytes()).ok_or(HeadError::InvalidMethod)?;
    let target_span = span(bytes, target.as_bytes()).ok_or(HeadError::InvalidTarget)?;
    if !valid_target(&bytes[method.range()], target.as_bytes()) {
        return Err(HeadError::InvalidTarget);
    }
    let mut fields = Vec::with_capacity(request.headers.len());
    for field in request.headers.iter() {
        let name = span(bytes, field.name.as_bytes()).ok_or(HeadError::InvalidHeaderName)?;
        let value = span(bytes, trim(field.value)).ok_or(HeadError::InvalidHeaderValue)?;
        fields.push((name, value));
    }
    Ok(Head {
        bytes: bytes.into(),
        method,
        target: target_span,
        version,
        fields,
    })
}

/// Where `part`, a subslice of `bytes`, lies in it.
fn span(bytes: &[u8], part: &[u8]) -> Option<Span> {
    let start = (part.as_ptr() as usize).checked_sub(bytes.as_ptr() as usize)?;
    let end = start.checked_add(part.len())?;
    if end > bytes.len() {
        return None;
    }
    Some(Span {
        start: u32::try_from(start).ok()?,
        end: u32::try_from(end).ok()?,
    })
}

/// `value` without leading and trailing SP and HTAB.
fn trim(value: &[u8]) -> &[u8] {
    let is_ws = |b: &u8| *b == b' ' || *b == b'\t';
    let start = value.iter().position(|b| !is_ws(b)).unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|b| !is_ws(b))
        .map_or(start, |i| i + 1);
    &value[start..end]
}

/// The four request-target forms of RFC 9112 §3.2.
fn valid_target(method: &[u8], target: &[u8]) -> bool {
    if target.is_empty() || target.len() > MAX_TARGET_LEN {
        return false;
    }
    if target == b"*" {
        return method == b"OPTIONS";
    }
    if method == b"CONNECT" {
        return valid_authority(target, true);
    }
    if target[0] == b'/' {
        return path_and_query(target);
    }
    // absolute-form: scheme "://" authority path-abempty [ "?" query ]
    let Some(colon) = target.iter().position(|&b| b == b':') else {
        return false;
    };
    let (scheme, rest) = target.split_at(colon);
    let valid_scheme = scheme.first().is_some_and(u8::is_ascii_alphabetic)
        && scheme
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    let Some(rest) = rest.strip_prefix(b"://") else {
        return false;
    };
    let authority_end = rest
        .iter()
        .position(|&b| b == b'/' || b == b'?')
        .unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    valid_scheme
        && scheme.len() <= 64
        && valid_authority(authority, false)
        && (path.is_empty() || path_and_query(path))
}

/// `host [":" port]` (RFC 9110 §4.2.3, RFC 3986 §3.2.2): a reg-name or a bracketed IP
/// literal, and a port that fits `u16`. No user information (RFC 9110 §4.2.4 calls it an
/// error in an `http` URI). `CONNECT` needs the port.
fn valid_authority(authority: &[u8], needs_port: bool) -> bool {
    let (host, port) = if authority.first() == Some(&b'[') {
        let Some(close) = authority.iter().position(|&b| b == b']') else {
            return false;
        };
        let literal = &authority[1..close];
        let valid_literal = !literal.is_empty()
            && literal
                .iter()
                .all(|&b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
        if !valid_literal {
            return false;
        }
        authority.split_at(close + 1)
    } else {
        let colon = authority
            .iter()
            .position(|&b| b == b':')
            .unwrap_or(authority.len());
        let (host, port) = authority.split_at(colon);
        let reg_name = !host.is_empty() && host.iter().all(|&b| reg_name_byte(b));
        if !reg_name {
            return false;
        }
        (host, port)
    };
    let port_ok = match port.strip_prefix(b":") {
        None => port.is_empty() && !needs_port,
        Some(digits) => {
            !digits.is_empty()
                && digits.iter().all(u8::is_ascii_digit)
                && std::str::from_utf8(digits).is_ok_and(|d| d.parse::<u16>().is_ok())
        }
    };
    !host.is_empty() && port_ok
}

/// unreserved and sub-delims (RFC 3986 §3.2.2); no pct-encoded host names.
fn reg_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.'
                | b'_'
                | b'~'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
        )
}

/// A path and optional query of visible ASCII, with no fragment. A few bytes RFC 3986 wants
/// percent-encoded are let through where the `http` crate takes them (`"`, `{`, `}`, `\`,
/// `^`, `|` in a path; `` ` ``, `{`, `}`, `\`, `^`, `|` in a query).
fn path_and_query(target: &[u8]) -> bool {
    let query_start = target
        .iter()
        .position(|&b| b == b'?')
        .unwrap_or(target.len());
    let (path, query) = target.split_at(query_start);
    let visible = |b: u8| (0x21..=0x7e).contains(&b) && b != b'#' && b != b'<' && b != b'>';
    path.iter().all(|&b| visible(b) && b != b'`') && query.iter().all(|&b| visible(b) && b != b'"')
}
