//! An HTTP request's line: begun when its head arrives ([`Pending::begin`]), finished when the
//! client has the whole response or went away ([`Logged`], the response body that watches).
//!
//! What happened on the member side comes with the response: the request's [`Trace`] (which
//! member, the connect and first-byte times) and, for a response Ballast made itself, the
//! [`ExchangeError`] behind it, both in the response's extensions.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::SystemTime;

use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use tokio::time::Instant;

use super::AccessLog;
use super::record::{HttpFields, Kind, Record, Termination, Trace};
use crate::http::error::ExchangeError;
use crate::http::proxy::ConnContext;

/// A request whose line is not written yet.
#[derive(Debug)]
pub struct Pending {
    log: AccessLog,
    time: SystemTime,
    arrived: Instant,
    client: SocketAddr,
    vserver: Arc<str>,
    method: http::Method,
    uri: String,
    version: http::Version,
}

impl Pending {
    /// Notes a request as its head arrives (the target as in its request line: path and
    /// query); `None` when no access log is configured.
    pub fn begin<B>(ctx: &ConnContext, request: &Request<B>) -> Option<Pending> {
        let log = ctx.snapshot.load().access_log.clone()?;
        Some(Pending {
            log,
            time: SystemTime::now(),
            arrived: Instant::now(),
            client: ctx.client,
            vserver: ctx.vserver.clone(),
            method: request.method().clone(),
            uri: request
                .uri()
                .path_and_query()
                .map_or_else(|| request.uri().to_string(), |pq| pq.as_str().to_owned()),
            version: request.version(),
        })
    }
}

/// Wraps `response`'s body so that the request's line is written when it ends.
pub fn track<B: Body + Unpin>(
    pending: Option<Pending>,
    mut response: Response<B>,
) -> Response<Logged<B>> {
    let status = response.status().as_u16();
    let tunnel = response.extensions_mut().remove::<TunnelLine>();
    let entry = pending.map(|pending| {
        let extensions = response.extensions_mut();
        Entry {
            trace: extensions.remove::<Trace>().unwrap_or_default(),
            failure: extensions.get::<ExchangeError>().copied(),
            status,
            bytes_sent: 0,
            ended: None,
            pending,
        }
    });
    // A tunnel's line waits for the tunnel to close, not for the (empty) `101` body.
    let entry = match (tunnel, entry) {
        (Some(tunnel), Some(entry)) => {
            tunnel.hold(entry);
            None
        }
        (_, entry) => entry,
    };
    response.map(|inner| Logged { inner, entry })
}

/// The line of an upgraded connection (`101`): [`track`] leaves it here, and the tunnel
/// writes it when it closes, with the bytes it sent to the client.
#[derive(Debug, Clone, Default)]
pub struct TunnelLine(Arc<std::sync::Mutex<Option<Entry>>>);

impl TunnelLine {
    fn hold(&self, entry: Entry) {
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some(entry);
        }
    }

    /// Writes the line (nothing when no access log is configured).
    pub fn finish(&self, bytes_sent: u64, termination: Termination) {
        let entry = self.0.lock().ok().and_then(|mut slot| slot.take());
        if let Some(mut entry) = entry {
            entry.bytes_sent = bytes_sent;
            write(entry, termination);
        }
    }
}

/// A response body that writes its request's access log line when it ends or is dropped.
#[derive(Debug)]
pub struct Logged<B: Body> {
    inner: B,
    entry: Option<Entry>,
}

#[derive(Debug)]
struct Entry {
    pending: Pending,
    trace: Trace,
    failure: Option<ExchangeError>,
    status: u16,
    bytes_sent: u64,
    /// How the body ended, once it has.
    ended: Option<Termination>,
}

impl<B: Body + Unpin> Body for Logged<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let this = &mut *self;
        let frame = std::task::ready!(Pin::new(&mut this.inner).poll_frame(cx));
        if let Some(entry) = &mut this.entry {
            match &frame {
                Some(Ok(frame)) => {
                    if let Some(data) = frame.data_ref() {
                        entry.bytes_sent += bytes::Buf::remaining(data) as u64;
                    }
                    if this.inner.is_end_stream() {
                        entry.ended = Some(Termination::Complete);
                    }
                }
                None => entry.ended = Some(Termination::Complete),
                Some(Err(_)) => entry.ended = Some(Termination::MemberAborted),
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<B: Body> Drop for Logged<B> {
    /// hyper drops the body once it sent the last frame, or when the client went away.
    fn drop(&mut self) {
        let Some(entry) = self.entry.take() else {
            return;
        };
        let ended = entry.ended.or_else(|| {
            // A body that was empty from the start is never polled.
            self.inner.is_end_stream().then_some(Termination::Complete)
        });
        let termination = match (entry.failure, ended) {
            (Some(failure), _) => Termination::Failed(failure),
            (None, Some(ended)) => ended,
            (None, None) => Termination::ClientAborted,
        };
        write(entry, termination);
    }
}

fn write(entry: Entry, termination: Termination) {
    let Entry {
        pending,
        trace,
        status,
        bytes_sent,
        ..
    } = entry;
    let record = Record {
        time: pending.time,
        client: pending.client,
        vserver: pending.vserver,
        target: trace.target.clone(),
        queue: trace.queue(pending.arrived),
        connect: trace.connect,
        servicegroup: trace.servicegroup,
        member: trace.member,
        total: pending.arrived.elapsed(),
        termination,
        kind: Kind::Http(HttpFields {
            method: pending.method,
            uri: pending.uri,
            version: pending.version,
            status,
            bytes_sent,
            first_byte: trace.first_byte,
        }),
    };
    pending.log.log(record);
}
