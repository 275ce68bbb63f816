//! Bodies that stream through the proxy and count their bytes on the way.
//!
//! Nothing is buffered whole: each frame is passed on as it arrives. [`RequestBody`] also
//! watches for a client that stops sending its body. [`ResponseBody`] also
//! carries the member's in-flight guard and the backend connection, so the member's active count
//! drops and the connection goes back to the pool exactly when the response ends.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::time::Sleep;

use super::client_body::{ClientBody, ClientBodyError};

use super::error::ExchangeError;
use super::h1_client::response_body::MemberBody;
use super::h1_client::{MemberConnection, MemberError};
use super::private::PrivateConnection;
use super::upload::Upload;
use crate::member::{ActiveGuard, MemberState};
use crate::stats::VserverStats;

/// A client's request body on its way to a member (`None`: a replayed request without body).
///
/// It counts the bytes for the vserver and the member, records its [`Upload`] progress, and
/// ends with an error when the client sends nothing for `clientbodytimeout` while Ballast
/// waits for it.
#[derive(Debug)]
pub struct RequestBody {
    inner: Option<ClientBody>,
    stats: Arc<VserverStats>,
    /// Where the body stands; `None` for a request without a body.
    upload: Option<Arc<Upload>>,
    /// The member the body goes to, once one is picked.
    member: Option<Arc<MemberState>>,
    stall_timeout: Duration,
    /// Armed the first time Ballast waits for the client's bytes.
    stall: Option<Pin<Box<Sleep>>>,
}

/// Why a request body could not be passed on: always the client's doing.
#[derive(Debug, thiserror::Error)]
pub enum RequestBodyError {
    #[error("the client's request body failed: {0}")]
    Client(#[source] ClientBodyError),
    #[error("the client sent no request body bytes for {0:?} (clientbodytimeout)")]
    Stalled(Duration),
}

impl RequestBody {
    pub fn new(
        inner: ClientBody,
        stats: Arc<VserverStats>,
        stall_timeout: Duration,
    ) -> RequestBody {
        let upload = (!inner.is_end_stream()).then(|| Arc::new(Upload::new()));
        RequestBody {
            inner: Some(inner),
            stats,
            upload,
            member: None,
            stall_timeout,
            stall: None,
        }
    }

    pub fn empty(stats: Arc<VserverStats>) -> RequestBody {
        RequestBody {
            inner: None,
            stats,
            upload: None,
            member: None,
            stall_timeout: Duration::MAX,
            stall: None,
        }
    }

    /// The body's progress, shared with whoever waits for the member's response.
    pub fn upload(&self) -> Option<&Arc<Upload>> {
        self.upload.as_ref()
    }

    /// The body goes to `member`: its bytes count in the member's `request_bytes`.
    pub fn send_to(&mut self, member: Arc<MemberState>) {
        self.member = Some(member);
    }

    fn count(&self, len: u64) {
        self.stats.request_bytes.fetch_add(len, Relaxed);
        if let Some(member) = &self.member {
            member.counters.request_bytes.fetch_add(len, Relaxed);
        }
    }

    /// Nothing to pass on yet: fails the body once the client has been silent too long.
    fn poll_stall(&mut self, cx: &mut Context<'_>) -> Poll<RequestBodyError> {
        let Some(upload) = &self.upload else {
            return Poll::Pending;
        };
        upload.waiting_for_client();
        let Some(deadline) = upload.last_progress().checked_add(self.stall_timeout) else {
            return Poll::Pending;
        };
        let stall = self
            .stall
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if stall.deadline() != deadline {
            stall.as_mut().reset(deadline);
        }
        ready!(stall.as_mut().poll(cx));
        upload.failed(ExchangeError::BodyTimeout);
        self.inner = None;
        Poll::Ready(RequestBodyError::Stalled(self.stall_timeout))
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = RequestBodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, RequestBodyError>>> {
        let this = self.get_mut();
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        match Pin::new(&mut *inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let last = inner.is_end_stream();
                if let Some(data) = frame.data_ref() {
                    this.count(data.len() as u64);
                }
                if let Some(upload) = &this.upload {
                    upload.handed_on(last);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(None) => {
                if let Some(upload) = &this.upload {
                    upload.handed_on(true);
                }
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(error))) => {
                if let Some(upload) = &this.upload {
                    upload.failed(error.failure());
                }
                this.inner = None;
                Poll::Ready(Some(Err(RequestBodyError::Client(error))))
            }
            Poll::Pending => this.poll_stall(cx).map(|error| Some(Err(error))),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(ClientBody::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or(SizeHint::with_exact(0), ClientBody::size_hint)
    }
}

/// What the client receives: a member's streamed response, or a message from Ballast itself.
#[derive(Debug)]
pub enum ResponseBody {
    Upstream {
        inner: MemberBody,
        exchange: Option<Exchange>,
    },
    Message(Option<Bytes>),
}

/// A response in flight from a member: the member's active count, and where its connection
/// goes once the response has ended.
#[derive(Debug)]
pub struct Exchange {
    pub guard: ActiveGuard,
    pub stats: Arc<VserverStats>,
    /// `false` for a connection opened for an upgrade: it is never pooled.
    pub reusable: bool,
    /// A group that sends PROXY headers: the connection goes back to the client connection's
    /// own slot, not to the member's shared pool.
    pub private: Option<Arc<PrivateConnection>>,
}

impl Exchange {
    /// The response ended cleanly: a reusable connection goes back for the member's next
    /// request (to its pool, or to the client connection's own slot); any other closes.
    pub fn recycle(self, conn: Option<MemberConnection>) {
        let Some(conn) = conn.filter(|_| self.reusable) else {
            return;
        };
        let member = self.guard.member();
        match self.private {
            Some(private) => private.keep(member.clone(), conn),
            None => member.pool.put(conn),
        }
    }
}

impl ResponseBody {
    pub fn message(text: impl Into<Bytes>) -> ResponseBody {
        ResponseBody::Message(Some(text.into()))
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = MemberError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, MemberError>>> {
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
                            finish(inner, exchange);
                        }
                    }
                    None => finish(inner, exchange),
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
fn finish(inner: &mut MemberBody, exchange: &mut Option<Exchange>) {
    if let Some(exchange) = exchange.take() {
        exchange.recycle(inner.take_connection());
    }
}
