//! HTTP/1.1 `Upgrade` pass-through (WebSocket, or any other `Upgrade` token).
//!
//! A request whose `Connection` names `upgrade` and that carries an `Upgrade` header keeps
//! both headers towards the member, over a fresh connection that is never pooled. If the member
//! answers `101 Switching Protocols`, the client gets that `101`, and a tunnel task takes both
//! raw streams (the member's from Ballast's client, with any bytes it sent past its `101`) and
//! relays bytes both ways (an HTTP/2 client's WebSocket, RFC 8441,
//! is made such an upgrade by [`super::h2_websocket`]; its tunnel is one stream) until:
//!
//! - either side closes, or fails;
//! - nothing moved for the idle timeout (the vserver's `clttimeout` or the servicegroup's
//!   `svrtimeout`, the shorter, as for a TCP relay);
//! - the member's drain is over: unbound, or the `delay` of a NITRO `disable` passed
//!   ([`MemberState::tunnels_cut`]);
//! - Ballast shuts down, or the vserver is removed ([`Tunnels::finish`]).
//!
//! For its whole life a tunnel is an active connection of its member (so `LEASTCONNECTION`
//! and drains see it) and of its vserver (the client connection stays counted until its
//! tunnel ends), and holds its request's `maxconn` slot ([`RequestHold`]), as it holds a member
//! connection. Its access log line is written when it closes: status `101`, the bytes sent to
//! the client.

use std::any::Any;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use http::header::{self, HeaderMap, HeaderValue};
use http::{Response, StatusCode, Version};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::body::ResponseBody;
use super::error::ExchangeError;
use super::h1_client::response_body::MemberBody;
use super::h1_server::transport::{PendingUpgrade, Stream, Upgraded};
use super::{h2_websocket, headers};
use crate::accesslog::Termination;
use crate::accesslog::http::TunnelLine;
use crate::l4::idle::{Activity, Tracked};
use crate::member::ActiveGuard;
use crate::stats::VserverStats;

/// The tunnels of one client connection: the connection is served (and counted) until they
/// have ended. Made when the first tunnel opens: most connections never have one.
#[derive(Debug, Default)]
pub struct Tunnels(OnceLock<TunnelSet>);

#[derive(Debug, Default)]
struct TunnelSet {
    tracker: TaskTracker,
    close: CancellationToken,
}

impl Tunnels {
    fn set(&self) -> &TunnelSet {
        self.0.get_or_init(TunnelSet::default)
    }

    /// Drives `serving` (an HTTP/2 connection, which cannot end while a tunnel holds one of
    /// its streams); `shutdown` closes the tunnels, so that it can.
    pub async fn close_on<F: Future>(&self, shutdown: &CancellationToken, serving: F) -> F::Output {
        tokio::pin!(serving);
        tokio::select! {
            output = &mut serving => output,
            () = shutdown.cancelled() => {
                self.set().close.cancel();
                serving.await
            }
        }
    }

    /// Waits until every tunnel ended; `shutdown` closes those still open.
    pub async fn finish(&self, shutdown: &CancellationToken) {
        let Some(set) = self.0.get() else { return };
        set.tracker.close();
        tokio::select! {
            () = set.tracker.wait() => {}
            () = shutdown.cancelled() => {
                set.close.cancel();
                set.tracker.wait().await;
            }
        }
    }
}

/// What the client connection counts for a request (its `maxconn` request slot, its HTTP/2
/// stream): a tunnel holds it until it ends, as it holds its member connection.
#[derive(Debug, Clone, Default)]
pub struct RequestHold(Arc<Mutex<Option<Box<dyn Any + Send>>>>);

impl RequestHold {
    /// Keeps `counted` until the tunnel ends; gives it back if the tunnel is over already.
    pub fn keep<T: Send + 'static>(&self, counted: T) -> Option<T> {
        match self.0.lock() {
            Ok(mut slot) if Arc::strong_count(&self.0) > 1 => {
                *slot = Some(Box::new(counted));
                None
            }
            _ => Some(counted),
        }
    }
}

/// A request that asks to switch protocols.
#[derive(Debug)]
pub struct Requested {
    client: ClientSide,
    upgrade: HeaderValue,
    /// An HTTP/2 extended `CONNECT`, made an HTTP/1.1 WebSocket handshake.
    h2: Option<h2_websocket::Handshake>,
}

/// `Some` when the request is HTTP/1.1, its `Connection` names `upgrade` and it has an
/// `Upgrade` header (HTTP/2 has no `Upgrade`; hyper offers none there). An upgrade to `h2c`
/// is not passed on: Ballast speaks HTTP/2 itself, and the request goes on as HTTP/1.1.
/// An HTTP/2 extended `CONNECT` for `websocket` (RFC 8441) is one too: it becomes a `GET`.
pub fn requested(parts: &mut http::request::Parts) -> Option<Requested> {
    if h2_websocket::is_extended_connect(parts) {
        let client = ClientSide::Http2(parts.extensions.remove::<OnUpgrade>()?);
        let handshake = h2_websocket::to_http11(parts);
        return Some(Requested {
            client,
            upgrade: HeaderValue::from_static("websocket"),
            h2: Some(handshake),
        });
    }
    if parts.version != Version::HTTP_11 || !names_upgrade(&parts.headers) {
        return None;
    }
    let upgrade = parts.headers.get(header::UPGRADE)?.clone();
    if offers_h2c(&upgrade) {
        return None;
    }
    let client = ClientSide::Http1(parts.extensions.remove::<PendingUpgrade>()?);
    Some(Requested {
        client,
        upgrade,
        h2: None,
    })
}

impl Requested {
    /// Puts back the two hop-by-hop headers the member needs to see the upgrade (and, for an
    /// HTTP/2 client, the rest of the HTTP/1.1 handshake).
    pub fn keep_headers(&self, headers: &mut HeaderMap) {
        if let Some(handshake) = &self.h2 {
            return handshake.headers(headers);
        }
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, self.upgrade.clone());
    }
}

/// Where the client's side of a tunnel comes from.
#[derive(Debug)]
enum ClientSide {
    /// Ballast's HTTP/1.1 connection, handed over once the `101` went out.
    Http1(PendingUpgrade),
    /// An HTTP/2 stream, from hyper.
    Http2(OnUpgrade),
}

impl ClientSide {
    async fn connection(self) -> Result<Box<dyn Stream>, String> {
        match self {
            ClientSide::Http1(pending) => match pending.take().await {
                Ok(upgraded) => Ok(Box::new(upgraded)),
                Err(error) => Err(error.to_string()),
            },
            ClientSide::Http2(on) => match on.await {
                Ok(upgraded) => Ok(Box::new(TokioIo::new(upgraded))),
                Err(error) => Err(error.to_string()),
            },
        }
    }
}

fn offers_h2c(upgrade: &HeaderValue) -> bool {
    let tokens = upgrade.to_str().unwrap_or("").split(',');
    tokens
        .into_iter()
        .any(|token| token.trim().eq_ignore_ascii_case("h2c"))
}

fn names_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|token| token.trim().eq_ignore_ascii_case("upgrade"))
}

/// What a tunnel counts against, and how long it may stay idle.
#[derive(Debug)]
pub struct TunnelPlan {
    pub guard: ActiveGuard,
    pub stats: Arc<VserverStats>,
    pub idle_timeout: Duration,
}

/// The member answered `101`: the client gets it (with `Connection: upgrade` and the member's
/// `Upgrade`; an HTTP/2 client gets `200`), and a tunnel starts once the client's side of
/// the connection is handed over (the member's is at hand already). A `101` that does not
/// answer an HTTP/2 client's handshake is a `502`.
pub fn switch(
    response: Response<MemberBody>,
    requested: Requested,
    plan: TunnelPlan,
    tunnels: &Tunnels,
) -> Result<Response<ResponseBody>, ExchangeError> {
    let (mut parts, mut body) = response.into_parts();
    let Some(member) = body.into_upgraded() else {
        return Err(ExchangeError::NoResponse);
    };
    let upgrade = parts.headers.get(header::UPGRADE).cloned();
    headers::strip_hop_by_hop(&mut parts.headers);
    match &requested.h2 {
        Some(handshake) => {
            if !handshake.accepted_by(&parts.headers) {
                let member = plan.guard.member();
                member.counters.errors.fetch_add(1, Relaxed);
                tracing::warn!(member = %member.label, "member answered a WebSocket handshake with a wrong Sec-WebSocket-Accept: 502");
                return Err(ExchangeError::NoResponse);
            }
            parts.status = StatusCode::OK;
            h2_websocket::response_headers(&mut parts.headers);
        }
        None => {
            parts
                .headers
                .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
            parts
                .headers
                .insert(header::UPGRADE, upgrade.unwrap_or(requested.upgrade));
        }
    }
    let line = TunnelLine::default();
    parts.extensions.insert(line.clone());
    let hold = RequestHold::default();
    parts.extensions.insert(hold.clone());
    let set = tunnels.set();
    let relayed = relay(requested.client, member, plan, line, set.close.clone());
    set.tracker.spawn(async move {
        relayed.await;
        drop(hold);
    });
    Ok(Response::from_parts(parts, ResponseBody::Message(None)))
}

async fn relay(
    client: ClientSide,
    mut member: Upgraded,
    plan: TunnelPlan,
    line: TunnelLine,
    close: CancellationToken,
) {
    let member_state = plan.guard.member().clone();
    let client = match client.connection().await {
        Ok(client) => client,
        Err(error) => {
            tracing::debug!(member = %member_state.label, %error, "the connection did not switch protocols");
            line.finish(0, Termination::ClientAborted);
            return;
        }
    };
    let activity = Activity::default();
    let mut client = Tracked::new(client, &activity);
    let ended = tokio::select! {
        result = tokio::io::copy_bidirectional(&mut client, &mut member) => match result {
            Ok(_) => Termination::Complete,
            Err(_) => Termination::Reset,
        },
        () = activity.idle_for(plan.idle_timeout) => {
            tracing::debug!(member = %member_state.label, timeout = ?plan.idle_timeout, "closing an idle upgraded connection");
            Termination::IdleTimeout
        }
        () = member_state.tunnels_cut() => Termination::Drained,
        () = close.cancelled() => Termination::Drained,
    };
    let to_member = activity.to_member.load(Relaxed);
    let to_client = activity.to_client.load(Relaxed);
    member_state
        .counters
        .request_bytes
        .fetch_add(to_member, Relaxed);
    member_state
        .counters
        .response_bytes
        .fetch_add(to_client, Relaxed);
    plan.stats.request_bytes.fetch_add(to_member, Relaxed);
    plan.stats.response_bytes.fetch_add(to_client, Relaxed);
    line.finish(to_client, ended);
    drop(plan.guard);
}

/// `101` is the only answer that opens a tunnel.
pub fn switches(response: &Response<MemberBody>) -> bool {
    response.status() == StatusCode::SWITCHING_PROTOCOLS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_must_name_upgrade() {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONNECTION, HeaderValue::from_static("keep-alive"));
        assert!(!names_upgrade(&headers));
        headers.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, Upgrade"),
        );
        assert!(names_upgrade(&headers));
    }

    #[test]
    fn only_http11_requests_with_an_upgrade_header_ask() {
        let (mut parts, ()) = http::Request::get("/")
            .header(header::CONNECTION, "upgrade")
            .body(())
            .unwrap()
            .into_parts();
        // No `Upgrade` header (and no client connection behind it).
        assert!(requested(&mut parts).is_none());
        parts.version = Version::HTTP_2;
        parts
            .headers
            .insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        assert!(requested(&mut parts).is_none());
    }

    #[test]
    fn a_request_hold_keeps_what_it_is_given_while_its_tunnel_runs() {
        let counted = Arc::new(());
        let tunnel = RequestHold::default();
        let response = tunnel.clone();
        assert!(response.keep(counted.clone()).is_none());
        drop(response);
        assert_eq!(
            Arc::strong_count(&counted),
            2,
            "released before the tunnel ended"
        );
        drop(tunnel);
        assert_eq!(
            Arc::strong_count(&counted),
            1,
            "still held after the tunnel ended"
        );
        // A tunnel that is over already gives it straight back.
        let over = RequestHold::default();
        assert!(over.keep(counted.clone()).is_some());
    }

    #[test]
    fn an_h2c_upgrade_is_not_passed_on() {
        assert!(offers_h2c(&HeaderValue::from_static("H2C")));
        assert!(offers_h2c(&HeaderValue::from_static("foo/1, h2c")));
        assert!(!offers_h2c(&HeaderValue::from_static("websocket")));
    }
}
