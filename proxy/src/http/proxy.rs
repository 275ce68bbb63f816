//! One HTTP request through a vserver: pick a member, forward, stream the response back.
//!
//! Order of events: load the current snapshot → pick an eligible member → take a connection
//! (pooled or new) → only then hand over the request. A connect failure therefore leaves the
//! request intact, and it is retried on another member (passive detection counts the failure).
//! Once bytes went to a member a request is replayed only if it is idempotent, has no body, and
//! the connection was a reused keep-alive one that the member closed under it (once).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use arc_swap::ArcSwap;
use http::{HeaderValue, Method, Request, Response, StatusCode, Uri, header};
use http_body::Body as _;
use hyper::body::Incoming;
use tokio::time::Instant;

use super::body::{Exchange, RequestBody, ResponseBody};
use super::headers;
use crate::config::LbMethod;
use crate::lb::PickKey;
use crate::snapshot::{GroupPlan, Snapshot, VserverPlan};

/// Members tried per request before giving up with `503`.
const MAX_ATTEMPTS: usize = 4;

/// What every request on one client connection shares.
#[derive(Debug)]
pub struct ConnContext {
    pub snapshot: Arc<ArcSwap<Snapshot>>,
    pub vserver: Arc<str>,
    pub client: SocketAddr,
    pub https: bool,
}

/// Serves one request. Never fails: every problem becomes a response with a clear status.
pub async fn handle(request: Request<Incoming>, ctx: &ConnContext) -> Response<ResponseBody> {
    let snapshot = ctx.snapshot.load();
    let Some(plan) = snapshot.vserver(&ctx.vserver) else {
        return message(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("lbvserver `{}` is no longer configured\n", ctx.vserver),
        );
    };
    let plan = plan.clone();
    drop(snapshot);
    plan.stats.requests.fetch_add(1, Relaxed);
    let stats = plan.stats.clone();
    let response = forward(request, ctx, plan).await;
    stats.record_status(response.status().as_u16());
    response
}

async fn forward(
    request: Request<Incoming>,
    ctx: &ConnContext,
    mut plan: Arc<VserverPlan>,
) -> Response<ResponseBody> {
    let Some(mut group) = plan.group.clone() else {
        return message(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("lbvserver `{}` has no servicegroup bound\n", plan.name),
        );
    };
    let (mut parts, body) = request.into_parts();
    let url = (plan.lb_method == LbMethod::UrlHash).then(|| {
        parts
            .uri
            .path_and_query()
            .map_or("/", |pq| pq.as_str())
            .to_owned()
    });
    rewrite_request_head(&mut parts, ctx);
    let mut request = Request::from_parts(parts, RequestBody::new(body, plan.stats.clone()));
    let key = PickKey {
        client: ctx.client.ip(),
        url: url.as_deref(),
    };

    let mut tried = Vec::new();
    let mut replayed = false;
    let mut refreshed = false;
    while tried.len() < MAX_ATTEMPTS {
        let Some(index) = plan
            .balancer
            .pick(&group.members, &group.weights, key, &tried)
        else {
            // A reload may have replaced every member between loading the snapshot and now:
            // the old ones are draining, the new ones are in the next snapshot. Look once more.
            if !refreshed
                && tried.is_empty()
                && let Some(newer) = newer_plan(ctx, &plan)
                && let Some(newer_group) = newer.group.clone()
            {
                (plan, group, refreshed) = (newer, newer_group, true);
                continue;
            }
            break;
        };
        tried.push(index);
        let member = &group.members[index];
        let guard = member.begin();
        let pooled = match member.pool.checkout() {
            Some(mut sender) => match sender.ready().await {
                Ok(()) => Some(sender),
                Err(_) => None,
            },
            None => None,
        };
        let (mut sender, reused) = match pooled {
            Some(sender) => (sender, true),
            None => match member.pool.connect(group.connect_timeout).await {
                Ok(sender) => {
                    member.connect_succeeded();
                    (sender, false)
                }
                Err(error) => {
                    member.connect_failed(group.passive_retries, "connect failed");
                    tracing::debug!(vserver = %plan.name, member = %member.label, %error, "connect failed, trying another member");
                    continue;
                }
            },
        };
        let replay = (reused && !replayed)
            .then(|| replayable(&request, &plan.stats))
            .flatten();
        let started = Instant::now();
        let sent =
            tokio::time::timeout(group.server_timeout, sender.try_send_request(request)).await;
        if !matches!(&sent, Ok(Err(error)) if error.message().is_some()) {
            member.counters.requests.fetch_add(1, Relaxed);
        }
        let response = match sent {
            Ok(Ok(response)) => response,
            Ok(Err(mut error)) => match error.take_message() {
                // The pooled connection closed before the request went out: nothing was sent.
                Some(unsent) => {
                    request = unsent;
                    tried.pop();
                    continue;
                }
                None if replay.is_some() => {
                    // A reused connection closed under the request: send it again, once.
                    request = replay.expect("checked by the guard");
                    replayed = true;
                    tried.pop();
                    continue;
                }
                None => {
                    tracing::debug!(vserver = %plan.name, member = %member.label, error = %error.error(), "member failed before responding");
                    return message(
                        StatusCode::BAD_GATEWAY,
                        format!(
                            "member {} of servicegroup `{}` failed before responding\n",
                            member.label, group.name
                        ),
                    );
                }
            },
            Err(_) => {
                return message(
                    StatusCode::GATEWAY_TIMEOUT,
                    format!(
                        "member {} of servicegroup `{}` did not respond within {:?}\n",
                        member.label, group.name, group.server_timeout
                    ),
                );
            }
        };
        let elapsed = started.elapsed();
        member.record_response_time(elapsed);
        member.counters.responses.fetch_add(1, Relaxed);
        plan.stats.response_time.observe(elapsed);
        return relay_response(
            response,
            Exchange {
                guard,
                sender,
                stats: plan.stats.clone(),
            },
        );
    }
    no_member(&plan, &group)
}

/// The vserver's plan in the current snapshot, if it is not `plan` any more.
fn newer_plan(ctx: &ConnContext, plan: &Arc<VserverPlan>) -> Option<Arc<VserverPlan>> {
    let current = ctx.snapshot.load();
    let newer = current.vserver(&ctx.vserver)?;
    (!Arc::ptr_eq(newer, plan)).then(|| newer.clone())
}

/// Origin-form URI, `Host` kept (or taken from an HTTP/2 `:authority`), hop-by-hop headers
/// removed, `X-Forwarded-For`/`-Proto` added; always HTTP/1.1 towards the member.
fn rewrite_request_head(parts: &mut http::request::Parts, ctx: &ConnContext) {
    if !parts.headers.contains_key(header::HOST)
        && let Some(authority) = parts.uri.authority()
        && let Ok(host) = HeaderValue::from_str(authority.as_str())
    {
        parts.headers.insert(header::HOST, host);
    }
    if parts.uri.scheme().is_some() || parts.uri.authority().is_some() {
        let path = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
        parts.uri = Uri::try_from(path).unwrap_or_else(|_| Uri::from_static("/"));
    }
    parts.version = http::Version::HTTP_11;
    headers::strip_hop_by_hop(&mut parts.headers);
    headers::add_forwarded(&mut parts.headers, ctx.client.ip(), ctx.https);
}

/// A copy of a request that is safe to send twice: idempotent method, no body.
fn replayable(
    request: &Request<RequestBody>,
    stats: &Arc<crate::stats::VserverStats>,
) -> Option<Request<RequestBody>> {
    let idempotent = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    );
    if !idempotent || !request.body().is_end_stream() {
        return None;
    }
    let mut copy = Request::new(RequestBody::empty(stats.clone()));
    *copy.method_mut() = request.method().clone();
    *copy.uri_mut() = request.uri().clone();
    *copy.version_mut() = request.version();
    *copy.headers_mut() = request.headers().clone();
    Some(copy)
}

fn relay_response(response: Response<Incoming>, exchange: Exchange) -> Response<ResponseBody> {
    let (mut parts, inner) = response.into_parts();
    headers::strip_hop_by_hop(&mut parts.headers);
    let mut exchange = Some(exchange);
    if inner.is_end_stream()
        && let Some(Exchange { guard, sender, .. }) = exchange.take()
    {
        super::pool::recycle(guard.member().clone(), sender);
    }
    Response::from_parts(parts, ResponseBody::Upstream { inner, exchange })
}

fn no_member(plan: &VserverPlan, group: &GroupPlan) -> Response<ResponseBody> {
    message(
        StatusCode::SERVICE_UNAVAILABLE,
        format!(
            "no member of servicegroup `{}` (lbvserver `{}`) is available: {} bound, none UP and enabled\n",
            group.name,
            plan.name,
            group.members.len()
        ),
    )
}

/// A response written by Ballast itself.
pub fn message(status: StatusCode, text: String) -> Response<ResponseBody> {
    let mut response = Response::new(ResponseBody::message(format!("{} {}", status, text)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
