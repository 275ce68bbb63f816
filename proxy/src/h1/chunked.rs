//! The chunked transfer coding (RFC 9112 §7.1): an incremental decoder for request bodies and
//! the encoder for bodies Ballast frames itself.
//!
//! [`ChunkedDecoder`] is a byte-at-a-time state machine: it buffers nothing but the trailer
//! section, so input may arrive in pieces of any size (one byte included) and the answer is
//! the same. Each [`ChunkedDecoder::decode`] call returns one [`Step`]: a range of body data
//! in the input, "need more", or the end of the body with how many input bytes it used (a
//! pipelined request starts there).
//!
//! Strictness:
//!
//! - chunk-size (§7.1): one or more hex digits, at most `u64::MAX`; the size line (digits,
//!   extensions) is bounded by [`ChunkedLimits::max_line_len`], leading zeros included.
//! - chunk-ext (§7.1.1): skipped, never interpreted. Whitespace after the size is taken only
//!   before a `;`; an extension holds no control byte but HTAB.
//! - Every line, and every chunk's data, ends in CRLF: a bare CR or LF is refused.
//! - trailer-section (§7.1.2): kept (a proxy forwards it), bounded in bytes and in fields,
//!   parsed with `httparse` once it ends; obs-fold is refused as in a head.
//!
//! Every refusal answers `400`; the decoder stays failed afterwards.

use std::ops::Range;

use http::StatusCode;
use thiserror::Error;

/// Bounds on what a chunked body may spend outside its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkedLimits {
    /// The longest chunk-size line, extensions included, CRLF excluded.
    pub max_line_len: usize,
    /// The largest trailer section, CRLFs included.
    pub max_trailer_len: usize,
    /// The most trailer fields.
    pub max_trailers: usize,
}

impl Default for ChunkedLimits {
    /// 4 KiB size lines; trailers as hyper bounds them (16 KiB, 100 fields).
    fn default() -> Self {
        ChunkedLimits {
            max_line_len: 4096,
            max_trailer_len: 16 * 1024,
            max_trailers: 100,
        }
    }
}

/// Why a chunked body is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum ChunkedError {
    #[error("invalid chunk size")]
    InvalidChunkSize,
    #[error("chunk size overflows")]
    ChunkSizeOverflow,
    #[error("chunk size line too long")]
    LineTooLong,
    #[error("invalid chunk extension")]
    InvalidExtension,
    #[error("missing CRLF")]
    MissingCrlf,
    #[error("trailer section too large")]
    TrailersTooLarge,
    #[error("too many trailer fields")]
    TooManyTrailers,
    #[error("invalid trailer field")]
    InvalidTrailer,
    #[error("obsolete line folding in the trailer section")]
    ObsFoldInTrailer,
}

impl ChunkedError {
    pub fn status(self) -> StatusCode {
        StatusCode::BAD_REQUEST
    }
}

/// What one [`ChunkedDecoder::decode`] call found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// `input[range]` is body data; `input[..range.end]` is used up.
    Data(Range<usize>),
    /// All the input is used up and the body goes on.
    NeedMore,
    /// The body (trailers included) ended after `consumed` bytes of this input.
    Done { consumed: usize },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// In the hex digits of a size line.
    Size,
    /// Whitespace after the digits: a `;` must follow.
    SizeSpace,
    /// In the extensions of a size line.
    Extension,
    /// The size line's CR was seen.
    SizeLf,
    /// Inside a chunk's data.
    Data,
    DataCr,
    DataLf,
    /// At the start of a trailer line (or of the empty line that ends the body).
    TrailerStart,
    TrailerLine,
    TrailerLf,
    EndLf,
    Done,
    Failed(ChunkedError),
}

/// An incremental decoder for one chunked body.
#[derive(Debug, Clone)]
pub struct ChunkedDecoder {
    limits: ChunkedLimits,
    state: State,
    /// The chunk size being read, then what is left of the chunk's data.
    size: u64,
    digits: usize,
    line_len: usize,
    /// The trailer section as received, then (once parsed) its fields' ranges.
    trailer_bytes: Vec<u8>,
    trailers: Vec<(Range<usize>, Range<usize>)>,
    decoded: u64,
}

impl ChunkedDecoder {
    pub fn new(limits: ChunkedLimits) -> Self {
        ChunkedDecoder {
            limits,
            state: State::Size,
            size: 0,
            digits: 0,
            line_len: 0,
            trailer_bytes: Vec::new(),
            trailers: Vec::new(),
            decoded: 0,
        }
    }

    /// The body has ended.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Body bytes decoded so far.
    pub fn decoded_len(&self) -> u64 {
        self.decoded
    }

    /// The trailer fields, once the body has ended, as `(name, value)`.
    pub fn trailers(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        self.trailers.iter().map(|(name, value)| {
            (
                &self.trailer_bytes[name.clone()],
                &self.trailer_bytes[value.clone()],
            )
        })
    }

    /// The trailer fields as a header map (those the `http` types take; the decoder has
    /// checked their grammar already).
    pub fn trailer_map(&self) -> http::HeaderMap {
        let mut map = http::HeaderMap::new();
        for (name, value) in self.trailers() {
            if let (Ok(name), Ok(value)) = (
                http::HeaderName::from_bytes(name),
                http::HeaderValue::from_bytes(value),
            ) {
                map.append(name, value);
            }
        }
        map
    }

    /// Reads `input`, the bytes that follow what earlier calls used up.
    pub fn decode(&mut self, input: &[u8]) -> Result<Step, ChunkedError> {
        match self.state {
            State::Failed(error) => return Err(error),
            State::Done => return Ok(Step::Done { consumed: 0 }),
            _ => {}
        }
        let mut i = 0;
        while i < input.len() {
            if self.state == State::Data {
                let left = input.len() - i;
                let take = usize::try_from(self.size).map_or(left, |size| size.min(left));
                self.size -= take as u64;
                self.decoded += take as u64;
                if self.size == 0 {
                    self.state = State::DataCr;
                }
                return Ok(Step::Data(i..i + take));
            }
            let byte = input[i];
            i += 1;
            if let Err(error) = self.step(byte) {
                self.state = State::Failed(error);
                return Err(error);
            }
            if self.state == State::Done {
                return Ok(Step::Done { consumed: i });
            }
        }
        Ok(Step::NeedMore)
    }

    /// One byte outside chunk data.
    fn step(&mut self, byte: u8) -> Result<(), ChunkedError> {
        let in_size_line = matches!(
            self.state,
            State::Size | State::SizeSpace | State::Extension
        );
        match self.state {
            State::Size => match byte {
                b'\r' if self.digits > 0 => self.state = State::SizeLf,
                b';' if self.digits > 0 => self.state = State::Extension,
                b' ' | b'\t' if self.digits > 0 => self.state = State::SizeSpace,
                _ => {
                    let digit = hex(byte).ok_or(ChunkedError::InvalidChunkSize)?;
                    self.size = self
                        .size
                        .checked_mul(16)
                        .and_then(|size| size.checked_add(u64::from(digit)))
                        .ok_or(ChunkedError::ChunkSizeOverflow)?;
                    self.digits += 1;
                }
            },
            State::SizeSpace => match byte {
                b' ' | b'\t' => {}
                b';' => self.state = State::Extension,
                _ => return Err(ChunkedError::InvalidExtension),
            },
            State::Extension => match byte {
                b'\r' => self.state = State::SizeLf,
                b'\t' | 0x20..=0x7e | 0x80..=0xff => {}
                _ => return Err(ChunkedError::InvalidExtension),
            },
            State::SizeLf => {
                if byte != b'\n' {
                    return Err(ChunkedError::MissingCrlf);
                }
                self.line_len = 0;
                self.digits = 0;
                self.state = if self.size == 0 {
                    State::TrailerStart
                } else {
                    State::Data
                };
            }
            State::DataCr => {
                if byte != b'\r' {
                    return Err(ChunkedError::MissingCrlf);
                }
                self.state = State::DataLf;
            }
            State::DataLf => {
                if byte != b'\n' {
                    return Err(ChunkedError::MissingCrlf);
                }
                self.state = State::Size;
            }
            State::TrailerStart => match byte {
                b'\r' => self.state = State::EndLf,
                b' ' | b'\t' if !self.trailer_bytes.is_empty() => {
                    return Err(ChunkedError::ObsFoldInTrailer);
                }
                b'\n' => return Err(ChunkedError::MissingCrlf),
                _ => {
                    self.keep_trailer_byte(byte)?;
                    self.state = State::TrailerLine;
                }
            },
            State::TrailerLine => match byte {
                b'\r' => self.state = State::TrailerLf,
                b'\n' => return Err(ChunkedError::MissingCrlf),
                _ => self.keep_trailer_byte(byte)?,
            },
            State::TrailerLf => {
                if byte != b'\n' {
                    return Err(ChunkedError::MissingCrlf);
                }
                self.keep_trailer_byte(b'\r')?;
                self.keep_trailer_byte(b'\n')?;
                self.state = State::TrailerStart;
            }
            State::EndLf => {
                if byte != b'\n' {
                    return Err(ChunkedError::MissingCrlf);
                }
                self.parse_trailers()?;
                self.state = State::Done;
            }
            State::Data | State::Done => {}
            State::Failed(error) => return Err(error),
        }
        if in_size_line && self.state != State::SizeLf {
            self.line_len += 1;
            if self.line_len > self.limits.max_line_len {
                return Err(ChunkedError::LineTooLong);
            }
        }
        Ok(())
    }

    fn keep_trailer_byte(&mut self, byte: u8) -> Result<(), ChunkedError> {
        // The final empty line is not kept, but counts.
        if self.trailer_bytes.len() + 2 >= self.limits.max_trailer_len {
            return Err(ChunkedError::TrailersTooLarge);
        }
        self.trailer_bytes.push(byte);
        Ok(())
    }

    fn parse_trailers(&mut self) -> Result<(), ChunkedError> {
        if self.trailer_bytes.is_empty() {
            return Ok(());
        }
        let mut section = self.trailer_bytes.clone();
        section.extend_from_slice(b"\r\n");
        let mut fields = vec![httparse::EMPTY_HEADER; self.limits.max_trailers];
        let parsed = match httparse::parse_headers(&section, &mut fields) {
            Ok(httparse::Status::Complete((_, parsed))) => parsed,
            Ok(httparse::Status::Partial) => return Err(ChunkedError::InvalidTrailer),
            Err(httparse::Error::TooManyHeaders) => return Err(ChunkedError::TooManyTrailers),
            Err(_) => return Err(ChunkedError::InvalidTrailer),
        };
        let base = section.as_ptr() as usize;
        let range = |part: &[u8]| {
            let start = (part.as_ptr() as usize).saturating_sub(base);
            start..start + part.len()
        };
        self.trailers = parsed
            .iter()
            .map(|field| {
                (
                    range(field.name.as_bytes()),
                    range(field.value.trim_ascii()),
                )
            })
            .collect();
        Ok(())
    }
}

fn hex(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// Appends one chunk holding `data` to `out`; nothing when `data` is empty (a zero-size chunk
/// would end the body).
pub fn encode_chunk(data: &[u8], out: &mut Vec<u8>) {
    if data.is_empty() {
        return;
    }
    out.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// Appends the last chunk, the `trailers` and the final empty line to `out`.
pub fn encode_end<'a>(trailers: impl IntoIterator<Item = (&'a [u8], &'a [u8])>, out: &mut Vec<u8>) {
    out.extend_from_slice(b"0\r\n");
    for (name, value) in trailers {
        out.extend_from_slice(name);
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
}
