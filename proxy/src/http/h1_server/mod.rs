//! Ballast's own HTTP/1.1 server side: one client connection, request after request, over the
//! sans-I/O core of [`crate::h1`]. (HTTP/2 and the admin API stay on hyper.)
//!
//! Why not hyper here: hyper keeps its read and write buffers for the life of a connection,
//! about 18 kB per idle keep-alive client. This loop holds no buffer between requests: it
//! waits for the socket to become readable, takes a buffer while a request is read and
//! answered, and lets it go as soon as no pipelined bytes are left in it.
//!
//! One request, in order:
//!
//! 1. Wait for bytes, at most the vserver's `clttimeout` or `clientheadertimeout`, the
//!    shorter (the keep-alive idle timeout), or until a graceful shutdown asks the
//!    connection to close.
//! 2. Read the head ([`crate::h1::head`]) within `clientheadertimeout` and up to
//!    `maxheaderlen`; decide its framing ([`crate::h1::framing`]). A head that breaks a rule
//!    gets its status (`400`, `414`, `417`, `431`, `501`, `505`) with a line saying why, and
//!    the connection closes.
//! 3. The exchange (the same as for HTTP/2: [`super::serve::exchange`]) runs while the body
//!    is read as the member takes it ([`read_body`]); `100 Continue` goes out when the body
//!    is first asked for.
//! 4. The response is written ([`respond`]) while any rest of the body is still read. The
//!    connection stays open if the request allows it, its body was read whole before the
//!    response started, the response is not delimited by closing, and no shutdown is asked.
//! 5. A `101` to an upgrade request hands the connection, with any bytes read past the
//!    handshake, to the request's tunnel ([`transport::Upgraded`]).
//!
//! [`body`] is how the body gets from the connection to the exchange; [`refusal`] is what a
//! request refused before any exchange is answered.

pub mod body;
mod read_body;
mod refusal;
mod respond;
pub mod transport;

use std::future::poll_fn;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::BytesMut;
use http::{Request, StatusCode, header};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;

use self::read_body::{BodyReader, Reading};
use self::refusal::{Refusal, write_refusal};
use self::respond::{WriteFailure, Writer};
use self::transport::{ClientIo, PendingUpgrade, UpgradeSender, Upgraded};
use super::client_body::ClientBody;
use super::proxy::ConnContext;
use crate::config::HttpProfile;
use crate::h1::convert;
use crate::h1::framing::{self, BodyLength};
use crate::h1::head::{self, Head, Parsed, Version};
use crate::h1::response::{self, ResponseBody as Framing};

/// A buffer starts this large; a longer head grows it, up to `maxheaderlen`.
const HEAD_BUFFER: usize = 4096;

/// After a refusal, or a response to a request whose body was not read, how long the
/// client's unread bytes are read and dropped, so the answer is not lost to a reset.
const LINGER: Duration = Duration::from_millis(500);

/// The limits one connection is held to.
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    pub header_timeout: Duration,
    pub max_head_len: usize,
    /// How long a keep-alive connection may wait for its next request.
    pub idle_timeout: Duration,
}

impl ConnLimits {
    /// `clttimeout` bounds an idle keep-alive connection, and so does `clientheadertimeout`
    /// (the next request's head is due within it): the shorter wins.
    pub fn new(profile: &HttpProfile, clttimeout: Duration) -> ConnLimits {
        ConnLimits {
            header_timeout: profile.client_header_timeout,
            max_head_len: profile.max_header_len,
            idle_timeout: clttimeout.min(profile.client_header_timeout),
        }
    }
}

/// Serves HTTP/1.1 requests on `io` until the client closes, the connection idles too long,
/// a request asks to close, or `shutdown` asks it to finish.
///
/// (A plain function returning an `async` block: an `async fn` would keep its arguments and
/// the [`Connection`] made of them side by side in every idle connection's future.)
pub fn serve<IO: ClientIo>(
    io: IO,
    ctx: Arc<ConnContext>,
    limits: ConnLimits,
    shutdown: CancellationToken,
) -> impl Future<Output = ()> + Send {
    let now = Instant::now();
    let mut conn = Connection {
        io,
        buf: None,
        ctx,
        limits,
        idle: Box::pin(tokio::time::sleep_until(now + limits.idle_timeout)),
        last_active: now,
        shutdown,
    };
    async move {
        let upgrade = conn.run().await;
        match upgrade {
            Some(to) => {
                let early = conn.buf.take().unwrap_or_default();
                // The tunnel may be gone already (the exchange dropped it): nothing to do then.
                let _ = to.send(Upgraded::new(Box::new(conn.io), early));
            }
            None => {
                let _ = tokio::time::timeout(LINGER, conn.io.shutdown()).await;
            }
        }
        // An upgraded connection lives on in its tunnel: the client connection is still open.
        conn.ctx.tunnels.finish(&conn.shutdown).await;
    }
}

/// One client connection.
struct Connection<IO> {
    io: IO,
    /// Bytes read and not used yet; `None` while the connection waits between requests.
    buf: Option<BytesMut>,
    ctx: Arc<ConnContext>,
    limits: ConnLimits,
    /// Wakes the idle wait; re-armed lazily from `last_active`, not after every request.
    idle: Pin<Box<Sleep>>,
    last_active: Instant,
    shutdown: CancellationToken,
}

/// What ended a wait for the next request.
enum Wait {
    Bytes,
    Closed,
}

/// After a response: go on, or not.
enum Next {
    KeepAlive,
    Close,
    /// The `101` went out: the connection goes to the tunnel.
    Upgrade(UpgradeSender),
}

impl<IO: ClientIo> Connection<IO> {
    /// Serves requests until the connection ends; `Some` when it switched protocols.
    async fn run(&mut self) -> Option<UpgradeSender> {
        loop {
            if self.shutdown.is_cancelled() {
                return None;
            }
            if self.buf.as_ref().is_none_or(BytesMut::is_empty) {
                self.buf = None;
                if let Wait::Closed = self.wait_for_request().await {
                    return None;
                }
            }
            let head = match self.read_head().await {
                Ok(Some(head)) => head,
                Ok(None) => return None,
                Err(refusal) => {
                    self.refuse(refusal).await;
                    return None;
                }
            };
            let framing = match framing::framing(&head) {
                Ok(framing) => framing,
                Err(error) => {
                    self.refuse(Refusal::Framing(error)).await;
                    return None;
                }
            };
            // Boxed, and bound before it is awaited: an idle connection's future holds none of
            // a request's state.
            let exchange = Box::pin(self.exchange(head, framing));
            match exchange.await {
                Ok(Next::KeepAlive) => self.last_active = Instant::now(),
                Ok(Next::Close) => return None,
                Ok(Next::Upgrade(to)) => return Some(to),
                Err(refusal) => {
                    self.refuse(refusal).await;
                    return None;
                }
            }
        }
    }

    /// Waits, holding no buffer where the stream allows it, until the client sends bytes.
    async fn wait_for_request(&mut self) -> Wait {
        let shutdown = self.shutdown.clone();
        let mut closing = std::pin::pin!(shutdown.cancelled());
        poll_fn(|cx| {
            if closing.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Wait::Closed);
            }
            match self.io.poll_readable(cx) {
                Some(Poll::Ready(Ok(()))) => return Poll::Ready(Wait::Bytes),
                Some(Poll::Ready(Err(_))) => return Poll::Ready(Wait::Closed),
                Some(Poll::Pending) => {}
                None => {
                    let buf = self
                        .buf
                        .get_or_insert_with(|| BytesMut::with_capacity(HEAD_BUFFER));
                    match tokio_util::io::poll_read_buf(Pin::new(&mut self.io), cx, buf) {
                        Poll::Ready(Ok(0) | Err(_)) => return Poll::Ready(Wait::Closed),
                        Poll::Ready(Ok(_)) => return Poll::Ready(Wait::Bytes),
                        Poll::Pending => {}
                    }
                }
            }
            self.poll_idle(cx)
        })
        .await
    }

    /// Ready (closed) once no request came for `clttimeout` since the last one.
    fn poll_idle(&mut self, cx: &mut Context<'_>) -> Poll<Wait> {
        loop {
            if self.idle.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            let due = self.last_active + self.limits.idle_timeout;
            if Instant::now() >= due {
                tracing::debug!(vserver = %self.ctx.vserver, client = %self.ctx.client, timeout = ?self.limits.idle_timeout, "closing an idle keep-alive connection");
                return Poll::Ready(Wait::Closed);
            }
            self.idle.as_mut().reset(due);
        }
    }

    /// Reads until a whole head is in the buffer; `None` if the client closed first.
    async fn read_head(&mut self) -> Result<Option<Head>, Refusal> {
        let mut deadline = None;
        loop {
            let buf = self
                .buf
                .get_or_insert_with(|| BytesMut::with_capacity(HEAD_BUFFER));
            if !buf.is_empty() {
                match head::parse(buf, self.limits.max_head_len) {
                    Ok(Parsed::Complete { head, len }) => {
                        bytes::Buf::advance(buf, len);
                        return Ok(Some(head));
                    }
                    Ok(Parsed::Partial) => {}
                    Err(error) => return Err(Refusal::Head(error)),
                }
            }
            // The clock starts when the head turns out not to have come in one piece.
            let deadline =
                *deadline.get_or_insert_with(|| Instant::now() + self.limits.header_timeout);
            let started = !buf.is_empty();
            let read = tokio::time::timeout_at(deadline, self.io.read_buf(buf)).await;
            match read {
                Ok(Ok(0)) => {
                    if started {
                        tracing::debug!(vserver = %self.ctx.vserver, client = %self.ctx.client, "client closed the connection in the middle of a request head");
                    }
                    return Ok(None);
                }
                Ok(Ok(_)) => {}
                Ok(Err(error)) => {
                    tracing::debug!(vserver = %self.ctx.vserver, client = %self.ctx.client, %error, "reading a request head failed");
                    return Ok(None);
                }
                Err(_) if started => return Err(Refusal::Timeout),
                Err(_) => return Ok(None),
            }
        }
    }

    /// One request, from its head to the end of its response.
    async fn exchange(&mut self, head: Head, framing: framing::Framing) -> Result<Next, Refusal> {
        let mut parts = convert::to_parts(&head).map_err(Refusal::Head)?;
        let version = head.version();
        drop(head);
        let method = parts.method.clone();
        let upgrade = framing.upgrade.then(|| {
            let (sender, pending) = PendingUpgrade::new();
            parts.extensions.insert(pending);
            sender
        });
        let (mut reader, body) = match framing.body {
            BodyLength::Empty => (None, ClientBody::Empty),
            length => {
                let known = match length {
                    BodyLength::Fixed(len) => Some(len),
                    _ => None,
                };
                let (feed, body) = body::channel(known);
                let reader = BodyReader::new(feed, length, framing.expect_continue);
                (Some(reader), ClientBody::Http1(body))
            }
        };
        let request = Request::from_parts(parts, body);
        let mut exchange = std::pin::pin!(super::serve::exchange(request, self.ctx.clone(), ()));
        let buf = self.buf.get_or_insert_with(BytesMut::new);
        let io = &mut self.io;
        let response = poll_fn(|cx| {
            if let Some(reader) = &mut reader {
                let _ = reader.poll_read(io, buf, cx);
            }
            exchange.as_mut().poll(cx)
        })
        .await;

        let (parts, mut body) = response.into_parts();
        let status = parts.status;
        let switching = status == StatusCode::SWITCHING_PROTOCOLS && upgrade.is_some();
        let delimited = if response::has_no_body(method.as_str().as_bytes(), status) {
            Framing::None
        } else if let Some(len) = http_body::Body::size_hint(&body).exact() {
            Framing::Length(len)
        } else if version == Version::Http11 {
            Framing::Chunked
        } else {
            Framing::UntilClose
        };
        let body_read = reader
            .as_ref()
            .is_none_or(|r| r.state() == Reading::Complete);
        // Ballast's own answer to a client error closes (part of the request may be unread).
        let closes = parts
            .headers
            .get(header::CONNECTION)
            .is_some_and(|v| v == "close");
        let keep_alive = framing.keep_alive
            && body_read
            && !closes
            && !switching
            && !self.shutdown.is_cancelled();
        let fields = parts
            .headers
            .iter()
            .map(|(name, value)| (name.as_str().as_bytes(), value.as_bytes()));
        let mut out = Vec::with_capacity(512);
        if let Err(error) =
            response::write_head(&mut out, version, status, fields, delimited, keep_alive)
        {
            tracing::warn!(vserver = %self.ctx.vserver, %error, "a response head could not be written: 502");
            out.clear();
            write_refusal(&mut out, version, StatusCode::BAD_GATEWAY, "bad gateway");
            let _ = self.io.write_all(&out).await;
            return Ok(Next::Close);
        }
        let mut writer = Writer::new(out, delimited);
        let written = poll_fn(|cx| {
            if let Some(reader) = &mut reader {
                let _ = reader.poll_read(io, buf, cx);
            }
            writer.poll_write(io, Pin::new(&mut body), cx)
        })
        .await;
        drop(body);
        match written {
            Ok(()) => {}
            Err(WriteFailure::Client(error)) => {
                tracing::debug!(vserver = %self.ctx.vserver, client = %self.ctx.client, %error, "writing a response to the client failed");
                return Ok(Next::Close);
            }
            Err(WriteFailure::Member) => return Ok(Next::Close),
        }
        Ok(match upgrade {
            Some(to) if switching => Next::Upgrade(to),
            _ if keep_alive && delimited != Framing::UntilClose => Next::KeepAlive,
            _ if reader.is_some_and(|r| r.state() != Reading::Complete) => {
                // The client may still be sending the body nobody reads: close gently, so
                // the response it is owed is not lost to a reset.
                self.linger().await;
                Next::Close
            }
            _ => Next::Close,
        })
    }

    /// Closes the sending side, then reads and drops what the client still sends for a
    /// moment: closing with unread bytes would reset the connection, and the client could
    /// lose the response written just before.
    async fn linger(&mut self) {
        if self.io.shutdown().await.is_err() {
            return;
        }
        let mut sink = vec![0u8; 4096];
        let drain = async { while matches!(self.io.read(&mut sink).await, Ok(n) if n > 0) {} };
        let _ = tokio::time::timeout(LINGER, drain).await;
    }

    /// Answers a refused request with its status and why, then closes.
    async fn refuse(&mut self, refusal: Refusal) {
        let answered = Box::pin(self.answer_refusal(refusal));
        answered.await;
    }

    async fn answer_refusal(&mut self, refusal: Refusal) {
        let status = refusal.status();
        tracing::debug!(vserver = %self.ctx.vserver, client = %self.ctx.client, status = status.as_u16(), reason = %refusal.reason(), "request refused before reaching a member");
        if let Some(plan) = self.ctx.snapshot.load().vserver(&self.ctx.vserver) {
            plan.stats.record_error(refusal.failure());
            plan.stats.record_status(status.as_u16());
        }
        let mut out = Vec::with_capacity(256);
        write_refusal(&mut out, Version::Http11, status, &refusal.reason());
        if self.io.write_all(&out).await.is_ok() {
            self.linger().await;
        }
    }
}
