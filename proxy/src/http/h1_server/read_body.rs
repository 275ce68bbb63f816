//! Reading one request body off the client connection, as the exchange asks for it: by its
//! `Content-Length`, or through the chunked decoder ([`crate::h1::chunked`]). Body bytes are
//! split off the connection's read buffer, never copied; bytes after the body (a pipelined
//! request) stay in the buffer.
//!
//! `Expect: 100-continue` is answered when the exchange first asks for the body (that is,
//! once a member has taken the request); a body the exchange drops is never read further.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, BytesMut};
use http_body::Frame;
use tokio::io::AsyncWrite;

use super::body::{BodyFeed, Room};
use super::transport::ClientIo;
use crate::h1::chunked::{ChunkedDecoder, ChunkedLimits, Step};
use crate::h1::framing::BodyLength;
use crate::http::client_body::ClientBodyError;

const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// Read this much at a time while a body arrives.
const BODY_READ: usize = 16 * 1024;

/// Where a body stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reading {
    /// More of it is to come.
    Open,
    /// All of it was read: the connection can serve the next request.
    Complete,
    /// Not read to its end (it failed, or the exchange dropped it): the connection must close.
    Stopped,
}

#[derive(Debug)]
enum Length {
    Remaining(u64),
    Chunked(Box<ChunkedDecoder>),
}

/// One request body being read.
#[derive(Debug)]
pub struct BodyReader {
    feed: BodyFeed,
    length: Length,
    /// How much of `100 Continue` is written, when one is due.
    continue_written: Option<usize>,
    state: Reading,
}

impl BodyReader {
    /// A reader for a body of `length` (not [`BodyLength::Empty`]).
    pub fn new(feed: BodyFeed, length: BodyLength, expect_continue: bool) -> BodyReader {
        let length = match length {
            BodyLength::Fixed(len) => Length::Remaining(len),
            BodyLength::Empty => Length::Remaining(0),
            BodyLength::Chunked => {
                Length::Chunked(Box::new(ChunkedDecoder::new(ChunkedLimits::default())))
            }
        };
        BodyReader {
            feed,
            length,
            continue_written: expect_continue.then_some(0),
            state: Reading::Open,
        }
    }

    pub fn state(&self) -> Reading {
        self.state
    }

    /// Reads and hands over the body while the exchange takes it; ready once reading is over.
    pub fn poll_read<IO: ClientIo>(
        &mut self,
        io: &mut IO,
        buf: &mut BytesMut,
        cx: &mut Context<'_>,
    ) -> Poll<Reading> {
        while self.state == Reading::Open {
            if ready!(self.feed.poll_room(cx)) == Room::Abandoned {
                self.state = Reading::Stopped;
                break;
            }
            if let Some(written) = self.continue_written {
                ready!(self.feed.poll_wanted(cx));
                match ready!(poll_write_continue(io, written, cx)) {
                    Ok(written) if written == CONTINUE.len() => self.continue_written = None,
                    Ok(written) => self.continue_written = Some(written),
                    Err(error) => self.stop(ClientBodyError::Io(error)),
                }
                continue;
            }
            if !buf.is_empty() {
                self.hand_over(buf);
                continue;
            }
            buf.reserve(BODY_READ);
            match ready!(tokio_util::io::poll_read_buf(Pin::new(&mut *io), cx, buf)) {
                Ok(0) => self.stop(ClientBodyError::Closed),
                Ok(_) => {}
                Err(error) => self.stop(ClientBodyError::Io(error)),
            }
        }
        Poll::Ready(self.state)
    }

    /// Hands over the next piece of the body from `buf` (which holds some bytes).
    fn hand_over(&mut self, buf: &mut BytesMut) {
        match &mut self.length {
            Length::Remaining(left) => {
                let n = buf.len().min(usize::try_from(*left).unwrap_or(usize::MAX));
                *left -= n as u64;
                let last = *left == 0;
                self.feed.give(Frame::data(buf.split_to(n).freeze()), last);
                if last {
                    self.state = Reading::Complete;
                }
            }
            Length::Chunked(decoder) => match decoder.decode(buf) {
                Ok(Step::Data(range)) => {
                    buf.advance(range.start);
                    let data = buf.split_to(range.len()).freeze();
                    self.feed.give(Frame::data(data), false);
                }
                Ok(Step::NeedMore) => buf.clear(),
                Ok(Step::Done { consumed }) => {
                    buf.advance(consumed);
                    let trailers = decoder.trailer_map();
                    if trailers.is_empty() {
                        self.feed.finish();
                    } else {
                        self.feed.give(Frame::trailers(trailers), true);
                    }
                    self.state = Reading::Complete;
                }
                Err(error) => self.stop(ClientBodyError::Chunked(error)),
            },
        }
    }

    fn stop(&mut self, error: ClientBodyError) {
        self.feed.fail(error);
        self.state = Reading::Stopped;
    }
}

fn poll_write_continue<IO: AsyncWrite + Unpin>(
    io: &mut IO,
    mut written: usize,
    cx: &mut Context<'_>,
) -> Poll<io::Result<usize>> {
    while written < CONTINUE.len() {
        let n = ready!(Pin::new(&mut *io).poll_write(cx, &CONTINUE[written..]))?;
        if n == 0 {
            return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
        }
        written += n;
    }
    ready!(Pin::new(&mut *io).poll_flush(cx))?;
    Poll::Ready(Ok(written))
}
