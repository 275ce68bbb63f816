//! Bodies that stream through the proxy and count their bytes on the way.
//!
//! Nothing is buffered whole: each frame is passed on as it arrives. [`ResponseBody`] also
//! carries the member's in-flight guard and the backend connection, so the member's active count
//! drops and the connection goes back to the pool exactly when the response ends.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

use super::pool::{self, Sender};
use crate::member::ActiveGuard;
use crate::stats::VserverStats;

/// A client's request body on its way to a member (`None`: a replayed request without body).
#[derive(Debug)]
pub struct RequestBody {
    inner: Option<Incoming>,
    stats: Arc<VserverStats>,
}

impl RequestBody {
    pub fn new(inner: Incoming, stats: Arc<VserverStats>) -> RequestBody {
        RequestBody {
            inner: Some(inner),
            stats,
        }
    }

    pub fn empty(stats: Arc<VserverStats>) -> RequestBody {
        RequestBody { inner: None, stats }
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let Some(inner) = self.inner.as_mut() else {
            return Poll::Ready(None);
        };
        let frame = ready!(Pin::new(inner).poll_frame(cx));
        if let Some(Ok(frame)) = &frame
            && let Some(data) = frame.data_ref()
        {
            self.stats
                .request_bytes
                .fetch_add(data.len() as u64, Relaxed);
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(Incoming::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or(SizeHint::with_exact(0), Incoming::size_hint)
    }
}

/// What the client receives: a member's streamed response, or a message from Ballast itself.
#[derive(Debug)]
pub enum ResponseBody {
    Upstream {
        inner: Incoming,
        exchange: Option<Exchange>,
    },
    Message(Option<Bytes>),
}

/// A response in flight from a member: the member's active count and the connection it uses.
#[derive(Debug)]
pub struct Exchange {
    pub guard: ActiveGuard,
    pub sender: Sender,
    pub stats: Arc<VserverStats>,
}

impl ResponseBody {
    pub fn message(text: impl Into<Bytes>) -> ResponseBody {
        ResponseBody::Message(Some(text.into()))
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            ResponseBody::Message(data) => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
            ResponseBody::Upstream { inner, exchange } => {
                let frame = ready!(Pin::new(&mut *inner).poll_frame(cx));
                match &frame {
                    Some(Ok(frame)) => {
                        if let (Some(data), Some(exchange)) = (frame.data_ref(), exchange.as_ref())
                        {
                            let len = data.len() as u64;
                            exchange.stats.response_bytes.fetch_add(len, Relaxed);
                            exchange
                                .guard
                                .member()
                                .counters
                                .response_bytes
                                .fetch_add(len, Relaxed);
                        }
                        if inner.is_end_stream() {
                            finish(exchange);
                        }
                    }
                    None => finish(exchange),
                    // The member failed mid-response: drop the connection, end this response.
                    Some(Err(_)) => drop(exchange.take()),
                }
                Poll::Ready(frame)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ResponseBody::Message(data) => data.is_none(),
            ResponseBody::Upstream { inner, .. } => inner.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ResponseBody::Message(Some(data)) => SizeHint::with_exact(data.len() as u64),
            ResponseBody::Message(None) => SizeHint::with_exact(0),
            ResponseBody::Upstream { inner, .. } => inner.size_hint(),
        }
    }
}

/// The response ended cleanly: the connection can serve the member's next request.
fn finish(exchange: &mut Option<Exchange>) {
    if let Some(Exchange { guard, sender, .. }) = exchange.take() {
        pool::recycle(guard.member().clone(), sender);
    }
}
