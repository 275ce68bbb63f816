//! A client's request body as it arrives: from hyper's HTTP/2 server, or from Ballast's own
//! HTTP/1.1 connection ([`super::h1_server`]). [`super::body::RequestBody`] wraps either the
//! same way: it counts, records the upload's progress and watches for a stalled client.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

use super::error::ExchangeError;
use super::h1_server::body::H1Body;
use crate::h1::chunked::ChunkedError;

/// A request body from the client.
#[derive(Debug)]
pub enum ClientBody {
    /// No body at all (an HTTP/1.1 request without `Content-Length` or `Transfer-Encoding`).
    Empty,
    /// An HTTP/1.1 body, read by the client connection as the member takes it.
    Http1(H1Body),
    /// An HTTP/2 stream's body, from hyper.
    Http2(Incoming),
}

/// Why a client's body stopped before its end.
#[derive(Debug, thiserror::Error)]
pub enum ClientBodyError {
    #[error("the chunked body is malformed: {0}")]
    Chunked(#[from] ChunkedError),
    #[error("the client closed the connection before the body ended")]
    Closed,
    #[error("reading the body failed: {0}")]
    Io(#[from] io::Error),
    #[error(transparent)]
    Http2(#[from] hyper::Error),
}

impl ClientBodyError {
    /// A body that broke its framing is malformed; one that just stopped is incomplete.
    pub fn failure(&self) -> ExchangeError {
        match self {
            ClientBodyError::Chunked(_) => ExchangeError::MalformedBody,
            ClientBodyError::Closed | ClientBodyError::Io(_) => ExchangeError::IncompleteBody,
            ClientBodyError::Http2(error) => {
                let cause =
                    std::error::Error::source(error).and_then(|e| e.downcast_ref::<io::Error>());
                match cause.map(io::Error::kind) {
                    Some(io::ErrorKind::InvalidData | io::ErrorKind::InvalidInput) => {
                        ExchangeError::MalformedBody
                    }
                    _ => ExchangeError::IncompleteBody,
                }
            }
        }
    }
}

impl Body for ClientBody {
    type Data = Bytes;
    type Error = ClientBodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ClientBodyError>>> {
        match self.get_mut() {
            ClientBody::Empty => Poll::Ready(None),
            ClientBody::Http1(body) => Pin::new(body).poll_frame(cx),
            ClientBody::Http2(body) => Pin::new(body)
                .poll_frame(cx)
                .map(|frame| frame.map(|frame| frame.map_err(ClientBodyError::from))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ClientBody::Empty => true,
            ClientBody::Http1(body) => body.is_end_stream(),
            ClientBody::Http2(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ClientBody::Empty => SizeHint::with_exact(0),
            ClientBody::Http1(body) => body.size_hint(),
            ClientBody::Http2(body) => body.size_hint(),
        }
    }
}
