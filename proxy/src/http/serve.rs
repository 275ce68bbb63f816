//! Serving one client connection with HTTP/1.1 or HTTP/2 until it closes or a graceful shutdown
//! asks it to.
//!
//! The protocol is known before a byte is read: on TLS from ALPN, in cleartext by peeking at
//! the first bytes for HTTP/2's connection preface (prior knowledge). HTTP/1.1 is served by
//! Ballast's own server ([`super::h1_server`], which holds no buffer on an idle connection),
//! HTTP/2 by hyper's; both run each request through [`exchange`].
//!
//! Limits come from `[httpprofile]`: a request head over `maxheaderlen` gets `431`, a client
//! that does not send its head within `clientheadertimeout` is disconnected. On shutdown or when
//! the vserver is removed, HTTP/1.1 connections close after their current response and HTTP/2
//! connections get GOAWAY. An idle HTTP/1.1 keep-alive connection closes after the vserver's
//! `clttimeout` or `clientheadertimeout`, the shorter. An HTTP/2 connection may have
//! `maxconcurrentstreams` streams open (more are refused with `REFUSED_STREAM`), and gets
//! GOAWAY once it had none open for the vserver's `clttimeout` ([`super::idle`]). HTTP/2 clients may open WebSockets with the
//! extended `CONNECT` (RFC 8441, [`super::h2_websocket`]).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::server::conn::http2;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use super::body::ResponseBody;
use super::client_body::ClientBody;
use super::error::ExchangeError;
use super::h1_server::{self, ConnLimits, transport::ClientIo};
use super::idle::{Held, OpenStreams, serve_until_idle};
use super::proxy::{ConnContext, handle, record_head_error};
use super::upgrade::RequestHold;
use crate::accesslog;
use crate::accesslog::http::Logged;
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

/// Serves one client connection; `idle_timeout` is the vserver's `clttimeout`. It ends when
/// the connection and any tunnel made of it have ended.
pub fn serve_http<IO: ClientIo>(
    io: IO,
    protocol: Protocol,
    ctx: Arc<ConnContext>,
    profile: &HttpProfile,
    idle_timeout: Duration,
    shutdown: CancellationToken,
) -> Serving<impl Future<Output = ()> + Send + use<IO>> {
    match protocol {
        Protocol::Http1 => {
            let limits = ConnLimits::new(profile, idle_timeout);
            Serving::Http1 {
                serving: h1_server::serve(io, ctx, limits, shutdown),
            }
        }
        // Boxed: an HTTP/1.1 connection does not carry the room an HTTP/2 server takes.
        Protocol::Http2 => Serving::Http2 {
            serving: Box::pin(serve_http2(
                io,
                ctx,
                profile.clone(),
                idle_timeout,
                shutdown,
            )),
        },
    }
}

pin_project_lite::pin_project! {
    /// One protocol's server. (Not an `async` block around both: that would keep its
    /// arguments beside the server in every idle connection's future.)
    #[project = ServingProjection]
    pub enum Serving<H1> {
        Http1 { #[pin] serving: H1 },
        Http2 { serving: Pin<Box<dyn Future<Output = ()> + Send>> },
    }
}

impl<H1: Future<Output = ()>> Future for Serving<H1> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match self.project() {
            ServingProjection::Http1 { serving } => serving.poll(cx),
            ServingProjection::Http2 { serving } => serving.as_mut().poll(cx),
        }
    }
}

async fn serve_http2<IO: ClientIo>(
    io: IO,
    ctx: Arc<ConnContext>,
    profile: HttpProfile,
    idle_timeout: Duration,
    shutdown: CancellationToken,
) {
    let streams = OpenStreams::new();
    let counted = streams.clone();
    let conn = ctx.clone();
    let service = service_fn(move |request: Request<Incoming>| {
        // Boxed: hyper spawns each stream as a task, and the exchange's state (about 4 kB) would
        // otherwise be copied into the stream's future and again into the task.
        let served = Box::pin(exchange(
            request.map(ClientBody::Http2),
            ctx.clone(),
            counted.opened(),
        ));
        async move { Ok::<_, Infallible>(served.await) }
    });
    let connection = http2::Builder::new(TokioExecutor::new())
        .timer(TokioTimer::new())
        .max_header_list_size(profile.max_header_len as u32)
        .max_concurrent_streams(profile.max_concurrent_streams)
        .enable_connect_protocol()
        .serve_connection(TokioIo::new(io), service);
    let serving = serve_until_idle(connection, shutdown.clone(), &streams, idle_timeout, |c| {
        c.graceful_shutdown()
    });
    // A WebSocket on a stream keeps the connection open: shutdown closes it first.
    if let Err(error) = conn.tunnels.close_on(&shutdown, serving).await {
        record_head_error(&conn, &error);
        tracing::debug!(%error, "client connection ended with an error");
    }
    conn.tunnels.finish(&shutdown).await;
}

/// A response as the client connection sends it: it writes the access log line when it ends,
/// and holds what the request counts (`G`: an HTTP/2 stream; its `maxconn` slot) until then.
pub type Served<G> = Response<Held<Logged<ResponseBody>, Option<(G, Option<RequestSlot>)>>>;

/// One request, HTTP/1.1 or HTTP/2: under `maxconn`, through [`handle`], logged.
pub async fn exchange<G: Send + 'static>(
    request: Request<ClientBody>,
    ctx: Arc<ConnContext>,
    counted: G,
) -> Served<G> {
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
        Some(hold) => hold.keep((counted, slot)),
        None => Some((counted, slot)),
    };
    response.map(|body| Held::new(body, counted))
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
