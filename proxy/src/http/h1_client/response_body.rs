//! A member's response body, read from the member connection by whoever polls it: the client
//! connection's task, as it writes the response. No task runs in between and nothing is
//! copied: each frame is a slice of the read buffer.
//!
//! The body owns the connection while it lasts. Once it has ended cleanly, on a connection
//! that may carry another request, [`MemberBody::take_connection`] gives it back for the pool;
//! after a `101`, [`MemberBody::into_upgraded`] gives the raw stream to the tunnel.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};

use super::{MemberConnection, MemberError, read_more};
use crate::h1::chunked::{ChunkedDecoder, ChunkedLimits, Step};
use crate::h1::client::ResponseLength;
use crate::http::h1_server::transport::Upgraded;

/// Where the body stands.
#[derive(Debug)]
enum State {
    /// This many bytes are still to come.
    Length(u64),
    Chunked(Box<ChunkedDecoder>),
    UntilClose,
    Done,
    /// The member broke the body off; the connection is gone.
    Failed,
}

/// A member's response body (see the module docs).
#[derive(Debug)]
pub struct MemberBody {
    conn: Option<MemberConnection>,
    buf: BytesMut,
    state: State,
    /// The connection may carry another request once the body has ended.
    reusable: bool,
}

impl MemberBody {
    pub(super) fn new(
        conn: MemberConnection,
        buf: BytesMut,
        length: ResponseLength,
        reusable: bool,
    ) -> MemberBody {
        let state = match length {
            ResponseLength::None | ResponseLength::Length(0) => State::Done,
            ResponseLength::Length(len) => State::Length(len),
            ResponseLength::Chunked => {
                State::Chunked(Box::new(ChunkedDecoder::new(ChunkedLimits::default())))
            }
            ResponseLength::UntilClose => State::UntilClose,
        };
        MemberBody {
            conn: Some(conn),
            buf,
            state,
            reusable,
        }
    }

    /// The connection, if the body has ended and it may serve the member's next request: the
    /// member sent nothing past the response, and neither side asked to close.
    pub fn take_connection(&mut self) -> Option<MemberConnection> {
        let clean = matches!(self.state, State::Done) && self.reusable && self.buf.is_empty();
        if clean { self.conn.take() } else { None }
    }

    /// The connection after a `101`: what the member sent past its response comes first.
    pub fn into_upgraded(&mut self) -> Option<Upgraded> {
        let conn = self.conn.take()?;
        let early = std::mem::take(&mut self.buf);
        Some(Upgraded::new(Box::new(conn.io), early))
    }

    fn fail(&mut self, error: MemberError) -> Poll<Option<Result<Frame<Bytes>, MemberError>>> {
        self.state = State::Failed;
        self.conn = None;
        Poll::Ready(Some(Err(error)))
    }

    /// Reads more of the body into the buffer: `false` at the end of the connection.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<Result<bool, MemberError>> {
        let Some(conn) = self.conn.as_mut() else {
            return Poll::Ready(Ok(false));
        };
        let read = ready!(read_more(&mut conn.io, &mut self.buf, cx)).map_err(MemberError::Io)?;
        Poll::Ready(Ok(read > 0))
    }
}

impl Body for MemberBody {
    type Data = Bytes;
    type Error = MemberError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, MemberError>>> {
        let this = self.get_mut();
        loop {
            match &mut this.state {
                State::Done | State::Failed => return Poll::Ready(None),
                State::Length(left) if !this.buf.is_empty() => {
                    let take = this
                        .buf
                        .len()
                        .min(usize::try_from(*left).unwrap_or(usize::MAX));
                    *left -= take as u64;
                    if *left == 0 {
                        this.state = State::Done;
                    }
                    let data = this.buf.split_to(take).freeze();
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                State::UntilClose if !this.buf.is_empty() => {
                    let data = this.buf.split().freeze();
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                State::Chunked(decoder) if !this.buf.is_empty() => {
                    match decoder.decode(&this.buf) {
                        Ok(Step::Data(range)) => {
                            this.buf.advance(range.start);
                            let data = this.buf.split_to(range.len()).freeze();
                            return Poll::Ready(Some(Ok(Frame::data(data))));
                        }
                        Ok(Step::NeedMore) => this.buf.clear(),
                        Ok(Step::Done { consumed }) => {
                            this.buf.advance(consumed);
                            let trailers = decoder.trailer_map();
                            this.state = State::Done;
                            if !trailers.is_empty() {
                                return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
                            }
                        }
                        Err(error) => return this.fail(MemberError::Chunked(error)),
                    }
                }
                _ => match ready!(this.poll_fill(cx)) {
                    Ok(true) => {}
                    Ok(false) if matches!(this.state, State::UntilClose) => {
                        this.state = State::Done;
                        this.reusable = false;
                    }
                    Ok(false) => return this.fail(MemberError::Truncated),
                    Err(error) => return this.fail(error),
                },
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.state, State::Done | State::Failed)
    }

    fn size_hint(&self) -> SizeHint {
        match self.state {
            State::Length(left) => SizeHint::with_exact(left),
            State::Done | State::Failed => SizeHint::with_exact(0),
            State::Chunked(_) | State::UntilClose => SizeHint::default(),
        }
    }
}
