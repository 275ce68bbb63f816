//! Serving one client connection with HTTP/1.1 or HTTP/2 until it closes or a graceful shutdown
//! asks it to.
//!
//! The protocol is known before hyper sees a byte: on TLS from ALPN, in cleartext by peeking
//! at the first bytes for HTTP/2's connection preface (prior knowledge). So each connection runs
//! one protocol's server directly, with no detection layer keeping buffers of its own.
//!
//! Limits come from `[httpprofile]`: a request head over `maxheaderlen` gets `431`, a client
//! that does not send its head within `clientheadertimeout` is disconnected. On shutdown or when
//! the vserver is removed, HTTP/1.1 connections close after their current response and HTTP/2
//! connections get GOAWAY. An HTTP/2 connection may have `maxconcurrentstreams` streams open
//! (more are refused with `REFUSED_STREAM`), and gets GOAWAY once it had none open for the
//! vserver's `clttimeout` ([`super::idle`]). HTTP/2 clients may open WebSockets with the
//! extended `CONNECT` (RFC 8441, [`super::h2_websocket`]).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use super::error::ExchangeError;
use super::idle::{Held, OpenStreams, serve_until_idle};
use super::proxy::{ConnContext, handle, record_head_error};
use super::upgrade::RequestHold;
use crate::accesslog;
use crate::config::HttpProfile;
use crate::limits::admission::RequestSlot;

/// Which HTTP a client connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Http1,
    Http2,
}

/// Cleartext: HTTP/2 with prior knowledge starts with `PRI * HTTP/2.0`, which no HTTP/1
/// request does. Waits (at most `timeout`) for the first three bytes without consuming them;
/// `None` if the client sent nothing in time or closed.
pub async fn sniff(stream: &TcpStream, timeout: Duration) -> Option<Protocol> {
    let peek = async {
        let mut first = [0u8; 3];
        loop {
            let n = stream.peek(&mut first).await.ok()?;
            match n {
                0 => return None,
                3 => {
                    return Some(if &first == b"PRI" {
                        Protocol::Http2
                    } else {
                        Protocol::Http1
                    });
                }
                // Fewer bytes so far: wait for more to arrive (peek returns at once otherwise).
                _ if first[..n] != b"PRI"[..n] => return Some(Protocol::Http1),
                _ => tokio::time::sleep(Duration::from_millis(1)).await,
            }
        }
    };
    tokio::time::timeout(timeout, peek).await.ok().flatten()
}

/// Serves one client connection; `idle_timeout` is the vserver's `clttimeout`.
pub async fn serve_http<IO>(
    io: IO,
    protocol: Protocol,
    ctx: Arc<ConnContext>,
    profile: &HttpProfile,
    idle_timeout: Duration,
    shutdown: CancellationToken,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let streams = OpenStreams::new();
    let counted = streams.clone();
    let conn = ctx.clone();
    let service = service_fn(move |request| {
        let ctx = ctx.clone();
        let stream = counted.opened();
        async move {
            let logged = accesslog::http::Pending::begin(&ctx, &request);
            let (response, slot) = match request_slot(&ctx) {
                Some(slot) => (handle(request, &ctx).await, Some(slot)),
                None => {
                    let refused = ExchangeError::LocalResources;
                    (refused.response(request.version()), None)
                }
            };
            let mut response = accesslog::http::track(logged, response);
            // A tunnel holds its member connection: it keeps the request's slot until it ends.
            let counted = match response.extensions_mut().remove::<RequestHold>() {
                Some(hold) => hold.keep((stream, slot)),
                None => Some((stream, slot)),
            };
            Ok::<_, Infallible>(response.map(|body| Held::new(body, counted)))
        }
    });
    let io = TokioIo::new(io);
    let result = match protocol {
        Protocol::Http1 => {
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(profile.client_header_timeout)
                .max_buf_size(profile.max_header_len)
                .keep_alive(true)
                .serve_connection(io, service)
                .with_upgrades();
            until_shutdown(connection, shutdown.clone(), |c| c.graceful_shutdown()).await
        }
        Protocol::Http2 => {
            let connection = http2::Builder::new(TokioExecutor::new())
                .timer(TokioTimer::new())
                .max_header_list_size(profile.max_header_len as u32)
                .max_concurrent_streams(profile.max_concurrent_streams)
                .enable_connect_protocol()
                .serve_connection(io, service);
            let serving =
                serve_until_idle(connection, shutdown.clone(), &streams, idle_timeout, |c| {
                    c.graceful_shutdown()
                });
            // A WebSocket on a stream keeps the connection open: shutdown closes it first.
            conn.tunnels.close_on(&shutdown, serving).await
        }
    };
    if let Err(error) = result {
        record_head_error(&conn, &error);
        tracing::debug!(%error, "client connection ended with an error");
    }
    // An upgraded connection lives on in its tunnel: the client connection is still open.
    conn.tunnels.finish(&shutdown).await;
}

/// Every request in flight holds a connection to a member, and HTTP/2 carries many on one client
/// connection: at most `maxconn` are in flight at once. One over it gets `503` at once, counted
/// as Ballast's own shortage (`local_resources`), and no member is asked.
fn request_slot(ctx: &ConnContext) -> Option<RequestSlot> {
    let snapshot = ctx.snapshot.load();
    let connections = &snapshot.connections;
    let slot = connections.try_request(connections.max(&snapshot.config.settings));
    if slot.is_none() {
        tracing::debug!(vserver = %ctx.vserver, client = %ctx.client, "request refused: maxconn requests in flight");
        if let Some(plan) = snapshot.vserver(&ctx.vserver) {
            plan.stats.requests.fetch_add(1, Relaxed);
            plan.stats.record_error(ExchangeError::LocalResources);
            plan.stats.record_status(503);
        }
    }
    slot
}

/// Drives `connection`; on `shutdown`, asks it to finish gracefully and waits for that.
async fn until_shutdown<C>(
    connection: C,
    shutdown: CancellationToken,
    graceful: impl FnOnce(Pin<&mut C>),
) -> hyper::Result<()>
where
    C: Future<Output = hyper::Result<()>>,
{
    tokio::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => result,
        () = shutdown.cancelled() => {
            graceful(connection.as_mut());
            connection.await
        }
    }
}
