//! The conformance suite of the sans-I/O HTTP/1.1 core, table-driven and named after the
//! RFC 9112 (and RFC 9110) sections it checks, with a deterministic fuzz loop and a
//! differential check against hyper's server path.
//!
//! [`read`] drives the three modules as the connection loop will: bytes arrive in pieces,
//! the head is parsed from the buffer so far, then the body is taken by its framing.

mod hyper_differential;
mod limits;
mod mutations;
mod pipelining;
mod rfc9110_10_1_1_expect;
mod rfc9112_2_2_line_endings;
mod rfc9112_3_request_line;
mod rfc9112_5_fields;
mod rfc9112_6_message_length;
mod rfc9112_7_1_chunked;
mod rfc9112_9_3_persistence;

use super::chunked::{ChunkedDecoder, ChunkedError, ChunkedLimits, Step};
use super::framing::{self, BodyLength, Framing, FramingError};
use super::head::{self, Head, HeadError, Parsed};

/// `maxheaderlen` in the tests unless one says otherwise (Ballast's default is larger).
pub(super) const MAX_HEAD: usize = 8 * 1024;

/// A whole request, as [`read`] found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Request {
    pub head: Head,
    pub framing: Framing,
    pub body: Vec<u8>,
    pub trailers: Vec<(Vec<u8>, Vec<u8>)>,
    /// Input bytes the request used: the next one starts there.
    pub consumed: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Outcome {
    Request(Request),
    /// The input ended inside the request.
    Partial,
    Head(HeadError),
    Framing(FramingError),
    Chunked(ChunkedError),
}

impl Outcome {
    pub fn request(self) -> Request {
        match self {
            Outcome::Request(request) => request,
            other => panic!("expected a request, got {other:?}"),
        }
    }
}

/// Reads the request at the start of `input` all at once.
pub(super) fn read(input: &[u8]) -> Outcome {
    read_split(input, MAX_HEAD, &[])
}

/// Reads the request at the start of `input`, delivered in pieces that end at `cuts`.
pub(super) fn read_split(input: &[u8], max_head: usize, cuts: &[usize]) -> Outcome {
    let mut ends: Vec<usize> = cuts
        .iter()
        .copied()
        .filter(|&cut| cut > 0 && cut < input.len())
        .collect();
    ends.push(input.len());
    ends.sort_unstable();
    ends.dedup();
    let mut head: Option<(Head, Framing, usize)> = None;
    let mut decoder = ChunkedDecoder::new(ChunkedLimits::default());
    let mut body = Vec::new();
    let mut pos = 0;
    for end in ends {
        let available = &input[..end];
        if head.is_none() {
            match head::parse(available, max_head) {
                Ok(Parsed::Partial) => continue,
                Err(error) => return Outcome::Head(error),
                Ok(Parsed::Complete { head: parsed, len }) => {
                    let framing = match framing::framing(&parsed) {
                        Ok(framing) => framing,
                        Err(error) => return Outcome::Framing(error),
                    };
                    pos = len;
                    head = Some((parsed, framing, len));
                }
            }
        }
        let Some((parsed, framing, head_len)) = &head else {
            continue;
        };
        let done = |body: Vec<u8>, trailers, consumed| {
            Outcome::Request(Request {
                head: parsed.clone(),
                framing: *framing,
                body,
                trailers,
                consumed,
            })
        };
        match framing.body {
            BodyLength::Empty => return done(Vec::new(), Vec::new(), *head_len),
            BodyLength::Fixed(len) => {
                let Some(body_end) = usize::try_from(len)
                    .ok()
                    .and_then(|len| head_len.checked_add(len))
                else {
                    return Outcome::Partial;
                };
                if body_end <= end {
                    return done(input[*head_len..body_end].to_vec(), Vec::new(), body_end);
                }
            }
            BodyLength::Chunked => loop {
                match decoder.decode(&available[pos..]) {
                    Err(error) => return Outcome::Chunked(error),
                    Ok(Step::NeedMore) => {
                        pos = end;
                        break;
                    }
                    Ok(Step::Data(range)) => {
                        body.extend_from_slice(&available[pos..][range.clone()]);
                        pos += range.end;
                    }
                    Ok(Step::Done { consumed }) => {
                        let trailers = decoder
                            .trailers()
                            .map(|(name, value)| (name.to_vec(), value.to_vec()))
                            .collect();
                        return done(body, trailers, pos + consumed);
                    }
                }
            },
        }
    }
    Outcome::Partial
}

/// The fields of `head` as `(name, value)` strings, for assertions.
pub(super) fn fields(head: &Head) -> Vec<(String, String)> {
    head.fields()
        .map(|(name, value)| {
            (
                String::from_utf8_lossy(name).into_owned(),
                String::from_utf8_lossy(value).into_owned(),
            )
        })
        .collect()
}
