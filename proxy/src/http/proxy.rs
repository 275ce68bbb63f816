//! One HTTP request through a vserver: check it, pick a member, forward, stream the response
//! back.
//!
//! Order of events: load the current snapshot → check the request ([`super::checks`]) → pick
//! an eligible member → take a connection (pooled or new) → only then hand over the request. A
//! connect failure therefore leaves the request intact, and it is retried on another member
//! (passive detection counts the failure, unless Ballast itself is out of file descriptors).
//! Once bytes went to a member a request is replayed only if it is idempotent, has no body, and
//! the connection was a reused keep-alive one that the member closed under it (once).
//!
//! Every failure is an [`ExchangeError`]: it picks the status and the generic body, and is
//! counted by side and kind. A request body that breaks or stalls is the client's failure,
//! whatever the member connection reports afterwards, and never counts against the member.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use arc_swap::ArcSwap;
use http::{Method, Request, Response, Uri};
use http_body::Body as _;
use tokio::time::Instant;

use super::body::{Exchange, RequestBody, ResponseBody};
use super::checks;
use super::client_body::ClientBody;
use super::error::{ExchangeError, Retry};
use super::h1_client::MemberConnection;
use super::h1_client::response_body::MemberBody;
use super::headers;
use super::pool::ConnectError;
use super::private::PrivateConnection;
use super::upgrade::{self, TunnelPlan, Tunnels};
use super::upload::{Progress, Upload};
use crate::accesslog::Trace;
use crate::config::LbMethod;
use crate::error::is_local_exhaustion;
use crate::lb::PickKey;
use crate::member::MemberState;
use crate::persistence::Sticky;
use crate::snapshot::{GroupPlan, Snapshot, VserverPlan};

/// Members tried per request before giving up with `503`.
const MAX_ATTEMPTS: usize = 4;

/// What every request on one client connection shares.
#[derive(Debug)]
pub struct ConnContext {
    pub snapshot: Arc<ArcSwap<Snapshot>>,
    pub vserver: Arc<str>,
    pub client: SocketAddr,
    /// The address the client connected to (the vserver's, or the destination its PROXY header
    /// named): what a PROXY header sent to a member names as the destination.
    pub local: SocketAddr,
    pub https: bool,
    /// The member connection kept for this client connection alone (a servicegroup that sends
    /// PROXY headers); made when first needed.
    pub private: OnceLock<Arc<PrivateConnection>>,
    /// Upgraded connections (WebSocket) made from this client connection's requests.
    pub tunnels: Tunnels,
}

/// The `[httpprofile]` limits one request is held to.
#[derive(Debug, Clone, Copy)]
struct Limits {
    max_header_len: usize,
    client_body_timeout: Duration,
}

/// The members one request went to, in order: at most [`MAX_ATTEMPTS`], kept without an
/// allocation.
#[derive(Debug, Default)]
struct Tried {
    members: [usize; MAX_ATTEMPTS],
    len: usize,
}

impl Tried {
    fn push(&mut self, index: usize) {
        if let Some(slot) = self.members.get_mut(self.len) {
            *slot = index;
            self.len += 1;
        }
    }

    fn pop(&mut self) {
        self.len = self.len.saturating_sub(1);
    }
}

impl std::ops::Deref for Tried {
    type Target = [usize];

    fn deref(&self) -> &[usize] {
        &self.members[..self.len]
    }
}

/// Serves one request. Never fails: every problem becomes a response with a clear status.
pub async fn handle(request: Request<ClientBody>, ctx: &ConnContext) -> Response<ResponseBody> {
    let version = request.version();
    let snapshot = ctx.snapshot.load();
    let Some(plan) = snapshot.vserver(&ctx.vserver).cloned() else {
        tracing::debug!(vserver = %ctx.vserver, "request for a vserver that is no longer configured");
        return ExchangeError::NotConfigured.response(version);
    };
    let limits = Limits {
        max_header_len: snapshot.http_profile.max_header_len,
        client_body_timeout: snapshot.http_profile.client_body_timeout,
    };
    let logging = snapshot.access_log.is_some();
    drop(snapshot);
    plan.stats.requests.fetch_add(1, Relaxed);
    let mut trace = Trace::default();
    // A csvserver counts the request too, and passes it on to the lbvserver its policies chose.
    let front = plan.switch.is_some().then(|| plan.stats.clone());
    let routed = crate::content_switch::plan::route(plan, &request, &mut trace);
    let mut response = match routed {
        Ok(plan) => {
            let stats = plan.stats.clone();
            let response = match forward(request, ctx, plan, limits, &mut trace).await {
                Ok(response) => response,
                Err(error) => {
                    stats.record_error(error);
                    front.iter().for_each(|front| front.record_error(error));
                    error.response(version)
                }
            };
            stats.record_status(response.status().as_u16());
            response
        }
        Err(error) => error.response(version),
    };
    if let Some(front) = &front {
        front.record_status(response.status().as_u16());
    }
    if logging {
        response.extensions_mut().insert(trace);
    }
    response
}

async fn forward(
    request: Request<ClientBody>,
    ctx: &ConnContext,
    mut plan: Arc<VserverPlan>,
    limits: Limits,
    trace: &mut Trace,
) -> Result<Response<ResponseBody>, ExchangeError> {
    let (mut parts, body) = request.into_parts();
    if let Err(error) = checks::admit(&mut parts, limits.max_header_len) {
        tracing::debug!(vserver = %plan.name, client = %ctx.client, kind = error.kind(), "request refused before reaching a member");
        return Err(error);
    }
    // The members that serve: this vserver's, or its backupvserver's when none of its own is
    // eligible or it is past its spillover threshold.
    let mut serving = crate::backup::serving(&plan).unwrap_or_else(|| plan.clone());
    let Some(mut group) = serving.group.clone() else {
        tracing::debug!(vserver = %plan.name, "no servicegroup bound: 503");
        return Err(ExchangeError::NotConfigured);
    };
    let url = (serving.lb_method == LbMethod::UrlHash).then(|| {
        parts
            .uri
            .path_and_query()
            .map_or("/", |pq| pq.as_str())
            .to_owned()
    });
    let mut upgrade = upgrade::requested(&mut parts);
    rewrite_request_head(&mut parts, ctx);
    if let Some(upgrade) = &upgrade {
        upgrade.keep_headers(&mut parts.headers);
    }
    let head_len = checks::head_len(&parts) as u64;
    let body = RequestBody::new(body, plan.stats.clone(), limits.client_body_timeout);
    let upload = body.upload().cloned();
    // Taken when a member connection is ready: a failed connect leaves it for the next member.
    let mut body = Some(body);
    let key = PickKey {
        client: ctx.client.ip(),
        url: url.as_deref(),
    };

    // Persistence is the serving vserver's (a backup vserver's own, when traffic spills there).
    let sticky = Sticky::lookup(&serving, ctx.client.ip(), Some(&parts.headers));

    let mut tried = Tried::default();
    let mut replayed = false;
    let mut refreshed = false;
    let mut last_error = ExchangeError::NoMemberAvailable;
    while tried.len() < MAX_ATTEMPTS {
        // A member under the servicegroup's maxclient, waiting in its surge queue if need be.
        // A persistent client goes to its member first (SOURCEIP entry, cookie), if that one
        // is under its maxclient; else it is balanced as any other client.
        let persistent = sticky.member(&serving, &group, &tried).and_then(|index| {
            let guard = group.members[index].try_begin(group.surge.max_client())?;
            Some((index, guard))
        });
        let admitted = match persistent {
            Some(admitted) => Ok(admitted),
            None => crate::surge::admit(&serving.balancer, &group, key, &tried).await,
        };
        let (index, guard) = match admitted {
            Ok(admitted) => admitted,
            Err(ExchangeError::NoMemberAvailable) => {
                // A reload may have replaced every member between loading the snapshot and
                // now: the old ones are draining, the new ones are in the next snapshot. Look
                // once more.
                if !refreshed
                    && tried.is_empty()
                    && let Some(newer) = newer_plan(ctx, &plan)
                {
                    let newer_serving =
                        crate::backup::serving(&newer).unwrap_or_else(|| newer.clone());
                    if let Some(newer_group) = newer_serving.group.clone() {
                        (plan, serving, group) = (newer, newer_serving, newer_group);
                    }
                    refreshed = true;
                    continue;
                }
                break;
            }
            Err(refused) => {
                tracing::debug!(vserver = %plan.name, servicegroup = %group.name, kind = refused.kind(), "every member is at maxclient and the surge queue refused the request: 503");
                return Err(refused);
            }
        };
        tried.push(index);
        let member = &group.members[index];
        trace.connecting(&group.name, &member.label);
        let connected = connection(member, &group, ctx, &plan.name, upgrade.is_some()).await;
        let (conn, reused) = match connected {
            Ok(connection) => connection,
            Err(error) if error.retry() == Retry::AnotherMember => {
                last_error = error;
                continue;
            }
            Err(error) => return Err(error),
        };
        trace.connected();
        // A replay sends no body: only a request without one is replayed.
        let mut sending = body
            .take()
            .unwrap_or_else(|| RequestBody::empty(plan.stats.clone()));
        let replayable = reused && !replayed && replayable(&parts.method, &sending);
        sending.send_to(member.clone());
        if let Some(upload) = &upload {
            upload.begin();
        }
        let started = Instant::now();
        let sent = response_head(
            conn.send(&parts, sending),
            upload.as_deref(),
            started,
            group.server_timeout,
        )
        .await;
        member.counters.requests.fetch_add(1, Relaxed);
        member.counters.request_bytes.fetch_add(head_len, Relaxed);
        if let Some(failure) = upload.as_deref().and_then(Upload::failure) {
            tracing::debug!(vserver = %plan.name, client = %ctx.client, member = %member.label, kind = failure.kind(), "the client's request body failed; the member is not blamed");
            return Err(failure);
        }
        let mut response = match sent {
            Some(Ok(response)) => response,
            Some(Err(error)) => {
                let failure = ExchangeError::NoResponse;
                if failure.retry() == Retry::IfReplayable && error.closed_early() && replayable {
                    // A reused connection closed under the request: send it again, once.
                    replayed = true;
                    tried.pop();
                    continue;
                }
                member.counters.errors.fetch_add(1, Relaxed);
                if let Some(why) = crate::member_tls::tls_cause(&error) {
                    // TLS 1.3: a member that refuses the client certificate says so after the
                    // handshake, on the first read.
                    tracing::warn!(vserver = %plan.name, servicegroup = %group.name, member = %member.label, reason = %why, "member ended the TLS connection before responding: 502");
                } else {
                    tracing::warn!(vserver = %plan.name, servicegroup = %group.name, member = %member.label, %error, "member failed before responding: 502");
                }
                return Err(failure);
            }
            None => {
                member.counters.errors.fetch_add(1, Relaxed);
                tracing::warn!(vserver = %plan.name, servicegroup = %group.name, member = %member.label, svrtimeout = ?group.server_timeout, "member sent no response head within svrtimeout: 504");
                return Err(ExchangeError::ResponseTimeout);
            }
        };
        let elapsed = time_to_first_byte(started, upload.as_deref());
        member.record_response_time(elapsed);
        trace.first_byte(elapsed);
        member.counters.responses.fetch_add(1, Relaxed);
        plan.stats.response_time.observe(elapsed);
        if let Some(cookie) = sticky.remember(&serving, ctx.client.ip(), &group, index) {
            response
                .headers_mut()
                .append(http::header::SET_COOKIE, cookie);
        }
        if upgrade::switches(&response)
            && let Some(requested) = upgrade.take()
        {
            let tunnel = TunnelPlan {
                guard,
                stats: plan.stats.clone(),
                idle_timeout: plan.client_timeout.min(group.server_timeout),
            };
            return upgrade::switch(response, requested, tunnel, &ctx.tunnels);
        }
        return Ok(relay_response(
            response,
            Exchange {
                guard,
                stats: plan.stats.clone(),
                reusable: upgrade.is_none(),
                // A connection that began with this client's PROXY header is not another's.
                private: group
                    .proxy_protocol
                    .map(|_| ctx.private.get_or_init(Arc::default).clone()),
            },
        ));
    }
    if last_error == ExchangeError::NoMemberAvailable {
        tracing::debug!(vserver = %plan.name, servicegroup = %group.name, members = group.members.len(), "no member is UP and enabled: 503");
    } else {
        tracing::debug!(vserver = %plan.name, servicegroup = %group.name, tried = tried.len(), "no member could be reached: 503");
    }
    Err(last_error)
}

/// Counts a request head hyper's HTTP/2 server refused on its own, before any request reached
/// [`handle`] (HTTP/1.1 refusals are counted by [`super::h1_server`]).
pub fn record_head_error(ctx: &ConnContext, error: &hyper::Error) {
    let refused = if error.is_parse_too_large() {
        ExchangeError::HeadTooLarge
    } else if error.is_parse() {
        ExchangeError::MalformedHead
    } else {
        return;
    };
    if let Some(plan) = ctx.snapshot.load().vserver(&ctx.vserver) {
        plan.stats.record_error(refused);
        plan.stats.record_status(refused.status().as_u16());
    }
}

/// Waits for the member's response head; `None` if it took longer than `svrtimeout`.
///
/// `svrtimeout` counts from when the member had the whole request, or from when it last took
/// body bytes and asked for no more; never while Ballast waits for the client's body (the
/// client body timeout bounds that).
async fn response_head<F: Future>(
    sending: F,
    upload: Option<&Upload>,
    started: Instant,
    timeout: Duration,
) -> Option<F::Output> {
    tokio::pin!(sending);
    loop {
        let now = Instant::now();
        let deadline = match upload.map(Upload::progress) {
            None => started + timeout,
            Some(Progress::Sent { at } | Progress::WaitingForMember { since: at }) => {
                at.max(started) + timeout
            }
            Some(Progress::WaitingForClient | Progress::Failed(_)) => now + timeout,
        };
        if deadline <= now {
            return None;
        }
        tokio::select! {
            biased;
            output = &mut sending => return Some(output),
            () = tokio::time::sleep_until(deadline) => {}
        }
    }
}

/// From when the member had the whole request (or from `started`, for a request without a
/// body or a member that answered before the body ended) to now.
fn time_to_first_byte(started: Instant, upload: Option<&Upload>) -> Duration {
    let from = upload
        .and_then(Upload::sent_at)
        .map_or(started, |sent| sent.max(started));
    from.elapsed()
}

/// A connection to `member`: an idle pooled one (`true`), or a new connect (`false`); always a
/// new one that is never pooled when the request asks to `upgrade`; for a group that sends PROXY
/// headers, the one this client connection kept (`true`), never a pooled one. A connect
/// the member refused or did not accept in time counts for passive detection; one Ballast could
/// not even start (out of file descriptors or memory) is Ballast's failure, not the member's.
async fn connection(
    member: &MemberState,
    group: &GroupPlan,
    ctx: &ConnContext,
    vserver: &str,
    upgrade: bool,
) -> Result<(MemberConnection, bool), ExchangeError> {
    // A group that sends PROXY headers never shares a connection between clients: it reuses
    // only the one this client connection kept.
    let proxy_header = group
        .proxy_protocol
        .map(|version| crate::proxy_protocol::encode(version, ctx.client, ctx.local));
    if !upgrade
        && proxy_header.is_some()
        && let Some(conn) = ctx.private.get().and_then(|kept| kept.take(member))
        && conn.made_for(group.tls.as_ref())
    {
        return Ok((conn, true));
    }
    if !upgrade
        && proxy_header.is_none()
        && let Some(conn) = member.pool.checkout(group.tls.as_ref())
    {
        return Ok((conn, true));
    }
    let connecting = member
        .pool
        .connect(
            group.connect_timeout,
            group.tls.as_ref(),
            proxy_header.as_deref(),
        )
        .await;
    match connecting {
        Ok(conn) => {
            member.connect_succeeded();
            Ok((conn, false))
        }
        Err(ConnectError::Tls(why)) => {
            tracing::warn!(vserver, servicegroup = %group.name, member = %member.label, reason = %why, "TLS handshake with the member failed; trying another member");
            member.tls_handshake_failed(group.passive_retries, &why.0);
            Err(ExchangeError::TlsHandshake)
        }
        Err(ConnectError::Io(error)) if is_local_exhaustion(&error) => {
            tracing::warn!(vserver, servicegroup = %group.name, member = %member.label, %error, "cannot open a connection to the member: Ballast is out of local resources (the member is not blamed)");
            Err(ExchangeError::LocalResources)
        }
        Err(ConnectError::Io(error)) => {
            member.connect_failed(group.passive_retries, "connect failed");
            tracing::debug!(vserver, member = %member.label, %error, "connect failed, trying another member");
            Err(ExchangeError::ConnectFailed)
        }
    }
}

/// The vserver's plan in the current snapshot, if it is not `plan` any more (by the plan's own
/// name: a csvserver's request is served by its target's plan).
fn newer_plan(ctx: &ConnContext, plan: &Arc<VserverPlan>) -> Option<Arc<VserverPlan>> {
    let current = ctx.snapshot.load();
    let newer = current.vserver(&plan.name)?;
    (!Arc::ptr_eq(newer, plan)).then(|| newer.clone())
}

/// Origin-form URI (`Host` was settled by the checks), hop-by-hop headers removed,
/// `X-Forwarded-For`/`-Proto` added; always HTTP/1.1 towards the member.
fn rewrite_request_head(parts: &mut http::request::Parts, ctx: &ConnContext) {
    if parts.uri.scheme().is_some() || parts.uri.authority().is_some() {
        let path = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
        parts.uri = Uri::try_from(path).unwrap_or_else(|_| Uri::from_static("/"));
    }
    parts.version = http::Version::HTTP_11;
    headers::strip_hop_by_hop(&mut parts.headers);
    headers::add_forwarded(&mut parts.headers, ctx.client.ip(), ctx.https);
}

/// Whether a request is safe to send twice: an idempotent method, and no body.
fn replayable(method: &Method, body: &RequestBody) -> bool {
    let idempotent = matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    );
    idempotent && body.is_end_stream()
}

fn relay_response(response: Response<MemberBody>, exchange: Exchange) -> Response<ResponseBody> {
    let (mut parts, mut inner) = response.into_parts();
    headers::strip_hop_by_hop(&mut parts.headers);
    let mut exchange = Some(exchange);
    if inner.is_end_stream()
        && let Some(exchange) = exchange.take()
    {
        exchange.recycle(inner.take_connection());
    }
    Response::from_parts(parts, ResponseBody::Upstream { inner, exchange })
}
