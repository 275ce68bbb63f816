//! A request on its way to a member: the head, then the body as the client delivers it,
//! framed by Ballast ([`RequestFraming`]).
//!
//! What is framed and not yet written (the head, then a short queue of the body's byte slices)
//! goes out in one vectored write where the stream takes one: a chunk's size line, its data
//! and its CRLF cost one system call, and the head of a request without a body costs one, and
//! no allocation besides its own buffer.

use std::collections::VecDeque;
use std::io::IoSlice;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes};
use http::header::{self, HeaderMap, HeaderName};
use http::{Method, request};
use http_body::{Body, Frame};
use tokio::io::AsyncWrite;

use super::MemberError;
use crate::h1::chunked;
use crate::h1::client::RequestFraming;
use crate::http::body::RequestBody;

/// The most slices one vectored write takes.
const MAX_SLICES: usize = 16;

/// The framing of a request body towards the member: its length when known (a request of a
/// method that defines a body says `Content-Length: 0` when it has none), else chunked.
pub fn framing(parts: &request::Parts, body: &RequestBody) -> RequestFraming {
    if body.is_end_stream() {
        let defines_body = matches!(parts.method, Method::POST | Method::PUT | Method::PATCH);
        return if defines_body || parts.headers.contains_key(header::CONTENT_LENGTH) {
            RequestFraming::Length(0)
        } else {
            RequestFraming::None
        };
    }
    match body.size_hint().exact() {
        Some(len) => RequestFraming::Length(len),
        None => RequestFraming::Chunked,
    }
}

/// The request's bytes not yet written, and the body still to come.
#[derive(Debug)]
pub struct Outgoing {
    /// The request head, written from `head_sent` on; it goes before everything queued.
    head: Vec<u8>,
    head_sent: usize,
    /// The body's framed pieces (none for a request without a body: no allocation).
    queue: VecDeque<Bytes>,
    body: Option<RequestBody>,
    framing: RequestFraming,
    /// The trailer fields the request's `Trailer` field announced: only those are sent.
    trailers: Vec<HeaderName>,
    flushed: bool,
}

impl Outgoing {
    pub fn new(
        head: Vec<u8>,
        body: RequestBody,
        framing: RequestFraming,
        fields: &HeaderMap,
    ) -> Self {
        let trailers = if framing == RequestFraming::Chunked {
            announced_trailers(fields)
        } else {
            Vec::new()
        };
        Outgoing {
            head,
            head_sent: 0,
            queue: VecDeque::new(),
            body: (!body.is_end_stream()).then_some(body),
            framing,
            trailers,
            flushed: false,
        }
    }

    /// Writes until the whole request is out (and flushed), the client's body has nothing
    /// more yet, or the stream cannot take more.
    pub fn poll_send<IO: AsyncWrite + Unpin>(
        &mut self,
        io: &mut IO,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), MemberError>> {
        loop {
            ready!(self.poll_write_queue(io, cx))?;
            if !self.flushed {
                ready!(Pin::new(&mut *io).poll_flush(cx)).map_err(MemberError::Io)?;
                self.flushed = true;
            }
            let Some(body) = self.body.as_mut() else {
                return Poll::Ready(Ok(()));
            };
            match ready!(Pin::new(body).poll_frame(cx)) {
                Some(Ok(frame)) => self.frame(frame),
                Some(Err(error)) => {
                    self.body = None;
                    return Poll::Ready(Err(MemberError::RequestBody(error.to_string())));
                }
                None => {
                    self.body = None;
                    if self.framing == RequestFraming::Chunked {
                        self.queue.push_back(Bytes::from_static(b"0\r\n\r\n"));
                    }
                }
            }
        }
    }

    fn frame(&mut self, frame: Frame<Bytes>) {
        match frame.into_data() {
            Ok(data) if data.is_empty() => {}
            Ok(data) => {
                if self.framing == RequestFraming::Chunked {
                    self.queue
                        .push_back(Bytes::from(format!("{:x}\r\n", data.len())));
                    self.queue.push_back(data);
                    self.queue.push_back(Bytes::from_static(b"\r\n"));
                } else {
                    self.queue.push_back(data);
                }
            }
            Err(frame) => {
                let Ok(trailers) = frame.into_trailers() else {
                    return;
                };
                if self.framing == RequestFraming::Chunked {
                    let mut end = Vec::new();
                    let announced = trailers
                        .iter()
                        .filter(|(name, _)| self.trailers.contains(name))
                        .map(|(name, value)| (name.as_str().as_bytes(), value.as_bytes()));
                    chunked::encode_end(announced, &mut end);
                    self.queue.push_back(Bytes::from(end));
                }
                // Trailers end the body.
                self.body = None;
            }
        }
        self.flushed = false;
    }

    fn poll_write_queue<IO: AsyncWrite + Unpin>(
        &mut self,
        io: &mut IO,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), MemberError>> {
        loop {
            let head = &self.head[self.head_sent..];
            let pieces = usize::from(!head.is_empty()) + self.queue.len();
            let written = if pieces == 0 {
                return Poll::Ready(Ok(()));
            } else if pieces > 1 && io.is_write_vectored() {
                let slices: Vec<IoSlice<'_>> = std::iter::once(head)
                    .filter(|head| !head.is_empty())
                    .chain(self.queue.iter().map(|bytes| &bytes[..]))
                    .take(MAX_SLICES)
                    .map(IoSlice::new)
                    .collect();
                ready!(Pin::new(&mut *io).poll_write_vectored(cx, &slices))
            } else {
                let first = if head.is_empty() {
                    &self.queue[0]
                } else {
                    head
                };
                ready!(Pin::new(&mut *io).poll_write(cx, first))
            }
            .map_err(MemberError::Io)?;
            if written == 0 {
                return Poll::Ready(Err(MemberError::Io(std::io::ErrorKind::WriteZero.into())));
            }
            self.advance(written);
            self.flushed = false;
        }
    }

    fn advance(&mut self, mut written: usize) {
        let head_left = self.head.len() - self.head_sent;
        let from_head = written.min(head_left);
        self.head_sent += from_head;
        written -= from_head;
        while written > 0 {
            let Some(front) = self.queue.front_mut() else {
                return;
            };
            if written < front.len() {
                front.advance(written);
                return;
            }
            written -= front.len();
            self.queue.pop_front();
        }
    }
}

/// The field names a request's `Trailer` fields list.
fn announced_trailers(fields: &HeaderMap) -> Vec<HeaderName> {
    fields
        .get_all(header::TRAILER)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect()
}
