//! Ballast's own HTTP/1.1 client side: one request at a time on a member connection, driven
//! by the task that serves the client, with no task or channel of its own.
//!
//! - this module: [`MemberConnection`] (the stream and the TLS config it was made with) and
//!   [`MemberConnection::send`]: write the request while watching for the response head, which
//!   may come before the body has all gone (the rest of the body is then not sent, and the
//!   connection is not reused). `1xx` heads other than `101` are skipped.
//! - [`send`]: the request's bytes, framed and queued for vectored writes.
//! - [`response_body`]: the response body, read straight from the connection as the client's
//!   side asks for it.
//!
//! The framing rules are [`crate::h1::client`]'s. An idle pooled connection has no task
//! watching it: [`MemberConnection::is_usable`] asks the stream, without blocking, whether the
//! member closed it (or sent bytes nobody asked for) before it is used again.

pub mod response_body;
pub mod send;

#[cfg(test)]
mod tests;

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker, ready};

use bytes::{Buf, BytesMut};
use http::{Response, request};
use rustls::ClientConfig;
use tokio::io::{AsyncRead, ReadBuf};

use self::response_body::MemberBody;
use self::send::Outgoing;
use crate::h1::chunked::ChunkedError;
use crate::h1::client::{self, ResponseHead, ResponseHeadError};
use crate::http::body::RequestBody;
use crate::member_tls::{MemberStream, TlsToMembers};

/// The longest response head a member may send (hyper's client reads up to about 400 KiB;
/// 64 KiB holds any head a browser or a proxy in front would take).
const MAX_RESPONSE_HEAD: usize = 64 * 1024;

/// Bytes read at a time.
const READ_SIZE: usize = 16 * 1024;

/// An open connection to a member, between requests.
#[derive(Debug)]
pub struct MemberConnection {
    io: MemberStream,
    made_with: Option<Arc<ClientConfig>>,
}

/// Why an exchange with a member failed.
#[derive(Debug, thiserror::Error)]
pub enum MemberError {
    #[error("{0}")]
    Io(#[source] io::Error),
    #[error("the member closed the connection before responding")]
    Closed,
    #[error("the member closed the connection in the middle of its response head")]
    TruncatedHead,
    #[error("{0}")]
    Head(#[from] ResponseHeadError),
    #[error("malformed chunked response body: {0}")]
    Chunked(ChunkedError),
    #[error("the member closed the connection before the end of its response body")]
    Truncated,
    /// The client's request body failed (the client is to blame, not the member).
    #[error("the request body failed: {0}")]
    RequestBody(String),
}

impl MemberError {
    /// The member closed or reset the connection before any response: on a reused keep-alive
    /// connection, the member may have closed it just as the request went out.
    pub fn closed_early(&self) -> bool {
        matches!(self, MemberError::Closed | MemberError::Io(_))
    }
}

impl MemberConnection {
    pub fn new(io: MemberStream, made_with: Option<Arc<ClientConfig>>) -> MemberConnection {
        MemberConnection { io, made_with }
    }

    /// Whether the connection speaks what `tls` asks for (the very same rustls config).
    pub fn made_for(&self, tls: Option<&TlsToMembers>) -> bool {
        match (&self.made_with, tls) {
            (None, None) => true,
            (Some(made_with), Some(tls)) => Arc::ptr_eq(made_with, &tls.config),
            _ => false,
        }
    }

    /// Whether an idle connection can take a request: a read finds nothing yet. One the member
    /// closed, or on which it sent something unasked, is not.
    pub fn is_usable(&mut self) -> bool {
        let mut probe = [0u8; 1];
        let mut buf = ReadBuf::new(&mut probe);
        let mut cx = Context::from_waker(Waker::noop());
        Pin::new(&mut self.io)
            .poll_read(&mut cx, &mut buf)
            .is_pending()
    }

    /// Sends the request (`parts` and `body`) and reads the response head; the body follows
    /// as it is polled. The caller keeps `parts`, to send it again where that is safe.
    pub async fn send(
        self,
        parts: &request::Parts,
        body: RequestBody,
    ) -> Result<Response<MemberBody>, MemberError> {
        let framing = send::framing(parts, &body);
        let target = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
        let mut head = Vec::with_capacity(256 + parts.headers.len() * 32);
        client::write_request_head(&mut head, &parts.method, target, &parts.headers, framing);
        let mut outgoing = Some(Outgoing::new(head, body, framing, &parts.headers));
        let MemberConnection { mut io, made_with } = self;
        let mut buf = BytesMut::with_capacity(READ_SIZE);
        let mut cut_short = false;
        let (head, used) = poll_fn(|cx| {
            if let Some(sending) = outgoing.as_mut() {
                match sending.poll_send(&mut io, cx) {
                    Poll::Ready(Ok(())) => outgoing = None,
                    Poll::Ready(Err(error @ MemberError::RequestBody(_))) => {
                        return Poll::Ready(Err(error));
                    }
                    // The member may have answered and closed: its answer is read below.
                    Poll::Ready(Err(_)) => {
                        outgoing = None;
                        cut_short = true;
                    }
                    Poll::Pending => {}
                }
            }
            poll_head(&mut io, &mut buf, cx)
        })
        .await?;
        buf.advance(used);
        // An answer before the whole request went out: the rest is not sent, and the member
        // would read what follows as another request.
        cut_short |= outgoing.is_some();
        drop(outgoing);
        let (length, keep_alive) = client::response_length(&parts.method, &head)?;
        let switched = head.status == http::StatusCode::SWITCHING_PROTOCOLS;
        let reusable = keep_alive && !cut_short && !switched;
        let conn = MemberConnection { io, made_with };
        let mut response = Response::new(MemberBody::new(conn, buf, length, reusable));
        *response.status_mut() = head.status;
        *response.headers_mut() = head.headers;
        Ok(response)
    }
}

/// Reads until a final response head is whole: the head and the bytes it took.
fn poll_head(
    io: &mut MemberStream,
    buf: &mut BytesMut,
    cx: &mut Context<'_>,
) -> Poll<Result<(ResponseHead, usize), MemberError>> {
    loop {
        if !buf.is_empty()
            && let Some((head, used)) = client::parse_response(buf, MAX_RESPONSE_HEAD)?
        {
            let informational = head.status.is_informational();
            if !informational || head.status == http::StatusCode::SWITCHING_PROTOCOLS {
                return Poll::Ready(Ok((head, used)));
            }
            // `100 Continue` and the like: the final answer follows.
            buf.advance(used);
            continue;
        }
        if ready!(read_more(io, buf, cx)).map_err(MemberError::Io)? == 0 {
            return Poll::Ready(Err(if buf.is_empty() {
                MemberError::Closed
            } else {
                MemberError::TruncatedHead
            }));
        }
    }
}

/// Reads what the member sent into the spare room of `buf` (made room for first): the number
/// of bytes, 0 at the end of the stream.
fn read_more(
    io: &mut MemberStream,
    buf: &mut BytesMut,
    cx: &mut Context<'_>,
) -> Poll<io::Result<usize>> {
    if buf.capacity() - buf.len() < READ_SIZE / 4 {
        buf.reserve(READ_SIZE);
    }
    tokio_util::io::poll_read_buf(Pin::new(io), cx, buf)
}
