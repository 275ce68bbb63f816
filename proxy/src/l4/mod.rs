//! The L4 data plane (`TCP` and `SSL_TCP` vservers): pick a member per connection and relay
//! bytes both ways until both sides are done, or until nothing moved for the idle timeout (the
//! vserver's `clttimeout` or the servicegroup's `svrtimeout`, the shorter: [`idle`]).
//!
//! Two relays, chosen by `[ballast] l4relay`: `splice` (the default; [`splice`]: kernel pipe, no
//! copy through user space; plain `TCP` only) and `copy` (tokio's `copy_bidirectional`, 8 KiB
//! buffers in user space; what `SSL_TCP` always uses). `bench tcp` measured 4 GiB transfers on
//! loopback: splice 9.2 Gbit/s at 0.28 relay CPU-seconds per GiB, copy 6.5 Gbit/s at 1.28.
//! A `splice` relay needs four pipe descriptors: it copies instead when its connection gets no
//! [`SpliceSlot`] or the pipes cannot be made.
//!
//! A connect that fails because Ballast itself is out of descriptors (or memory)
//! closes the client connection without counting against the member.
//!
//! An `SSL_TCP` servicegroup's members are spoken to over TLS ([`crate::member_tls`]): the
//! handshake is part of the connect (within `connecttimeout`), a failed one counts against the
//! member and the next member is tried, and the relay copies (splice cannot see through TLS).

pub mod idle;
pub mod splice;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_util::either::Either;

use self::idle::{Activity, Tracked};
use crate::accesslog::tcp::ConnectionLog;
use crate::accesslog::{AccessLog, Termination, Trace};
use crate::error::is_local_exhaustion;
use crate::http::error::ExchangeError;
use crate::lb::PickKey;
use crate::limits::admission::SpliceSlot;
use crate::member::ActiveGuard;
use crate::member_tls::{MemberStream, handshake};
use crate::persistence::Sticky;
use crate::snapshot::VserverPlan;

const MAX_ATTEMPTS: usize = 4;

/// Relays a plain TCP client connection: with `splice` when it has a slot for the pipes,
/// else by copying. The connection's line goes to `log` when it closes.
pub async fn relay_tcp(
    client: TcpStream,
    client_addr: SocketAddr,
    local: SocketAddr,
    plan: Arc<VserverPlan>,
    splice_slot: Option<SpliceSlot>,
    log: Option<AccessLog>,
) {
    let tls_to_members = plan.group.as_ref().is_some_and(|g| g.tls.is_some());
    let Some(slot) = splice_slot.filter(|_| !tls_to_members) else {
        return relay_copy(client, client_addr, local, plan, log).await;
    };
    let pipes = match splice::Pipes::new() {
        Ok(pipes) => pipes,
        Err(error) => {
            tracing::debug!(vserver = %plan.name, %error, "no pipes for splice; copying instead");
            drop(slot);
            return relay_copy(client, client_addr, local, plan, log).await;
        }
    };
    let log = ConnectionLog::begin(log, &plan.name, client_addr);
    let mut trace = Trace::default();
    let (server, guard) = match connect(&plan, client_addr, local, &mut trace).await {
        Ok((Either::Left(server), guard)) => (server, guard),
        Ok((tls @ Either::Right(_), guard)) => {
            // Not reached: a group with TLS to its members never gets here (checked above).
            drop((pipes, slot));
            return copy_connected(client, tls, guard, &plan, log, trace).await;
        }
        Err(failure) => return log.finish(trace, 0, 0, Termination::Failed(failure)),
    };
    let activity = Activity::default();
    let relay = splice::relay(&client, &server, pipes, &activity);
    let ended = until_idle(relay, &activity, idle_timeout(&plan)).await;
    account(&plan, &guard, &activity);
    drop(slot);
    finish_log(log, trace, &activity, ended);
}

/// Relays any client stream (plain or TLS) by copying through user-space buffers. The
/// connection's line goes to `log` when it closes.
pub async fn relay_copy<IO>(
    mut client: IO,
    client_addr: SocketAddr,
    local: SocketAddr,
    plan: Arc<VserverPlan>,
    log: Option<AccessLog>,
) where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let log = ConnectionLog::begin(log, &plan.name, client_addr);
    let mut trace = Trace::default();
    let (server, guard) = match connect(&plan, client_addr, local, &mut trace).await {
        Ok(connected) => connected,
        Err(failure) => {
            let _ = client.shutdown().await;
            return log.finish(trace, 0, 0, Termination::Failed(failure));
        }
    };
    copy_connected(client, server, guard, &plan, log, trace).await;
}

/// Copies between a client and its connected member (plain or TLS) until done or idle.
async fn copy_connected<IO>(
    client: IO,
    mut server: MemberStream,
    guard: ActiveGuard,
    plan: &VserverPlan,
    log: ConnectionLog,
    trace: Trace,
) where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let activity = Activity::default();
    let mut tracked = Tracked::new(client, &activity);
    let relay = tokio::io::copy_bidirectional(&mut tracked, &mut server);
    let ended = until_idle(relay, &activity, idle_timeout(plan)).await;
    account(plan, &guard, &activity);
    finish_log(log, trace, &activity, ended);
}

/// Runs `relay` until it ends or nothing moved for `timeout`; says which.
async fn until_idle<T, E>(
    relay: impl Future<Output = Result<T, E>>,
    activity: &Activity,
    timeout: Duration,
) -> Termination {
    tokio::select! {
        result = relay => match result {
            Ok(_) => Termination::Complete,
            Err(_) => Termination::Reset,
        },
        () = activity.idle_for(timeout) => {
            tracing::debug!(?timeout, "closing an idle TCP connection");
            Termination::IdleTimeout
        }
    }
}

fn finish_log(log: ConnectionLog, trace: Trace, activity: &Activity, ended: Termination) {
    let to_member = activity.to_member.load(Relaxed);
    let to_client = activity.to_client.load(Relaxed);
    log.finish(trace, to_member, to_client, ended);
}

/// The vserver's `clttimeout` or the servicegroup's `svrtimeout`, whichever is shorter.
fn idle_timeout(plan: &VserverPlan) -> Duration {
    let server = plan
        .group
        .as_ref()
        .map_or(Duration::MAX, |g| g.server_timeout);
    plan.client_timeout.min(server)
}

/// Picks a member and connects (with the TLS handshake for an `SSL_TCP` group), retrying
/// failures on other members; `trace` follows the member tried last. A group with
/// `proxyprotocol` gets its PROXY header (`client_addr` connected to `local`) before anything
/// else, TLS included.
async fn connect(
    plan: &VserverPlan,
    client_addr: SocketAddr,
    local: SocketAddr,
    trace: &mut Trace,
) -> Result<(MemberStream, ActiveGuard), ExchangeError> {
    // This vserver's members serve, or its backupvserver's when none of its own is eligible or
    // it is past its spillover threshold.
    let backup = crate::backup::serving(plan);
    let serving = backup.as_deref().unwrap_or(plan);
    let Some(group) = &serving.group else {
        tracing::debug!(vserver = %plan.name, "no servicegroup bound; closing the connection");
        return Err(ExchangeError::NotConfigured);
    };
    let key = PickKey {
        client: client_addr.ip(),
        url: None,
    };
    let sticky = Sticky::lookup(serving, client_addr.ip(), None);
    let mut tried = Vec::new();
    let mut failure = ExchangeError::NoMemberAvailable;
    while tried.len() < MAX_ATTEMPTS {
        // A persistent client (SOURCEIP) goes to its member first.
        let sticky_member = sticky.member(serving, group, &tried).and_then(|index| {
            let guard = group.members[index].try_begin(group.surge.max_client())?;
            Some((index, guard))
        });
        // Else a member under the servicegroup's maxclient, waiting in its surge queue.
        let (index, guard) = match sticky_member {
            Some(admitted) => admitted,
            None => match crate::surge::admit(&serving.balancer, group, key, &tried).await {
                Ok(admitted) => admitted,
                Err(ExchangeError::NoMemberAvailable) => break,
                Err(refused) => {
                    tracing::debug!(vserver = %plan.name, servicegroup = %group.name, kind = refused.kind(), "every member is at maxclient and the surge queue refused the connection; closing it");
                    return Err(refused);
                }
            },
        };
        tried.push(index);
        let member = &group.members[index];
        trace.connecting(&group.name, &member.label);
        let deadline = Instant::now() + group.connect_timeout;
        match tokio::time::timeout_at(deadline, TcpStream::connect(member.key.addr)).await {
            Ok(Ok(mut server)) => {
                let _ = server.set_nodelay(true);
                if let Some(version) = group.proxy_protocol {
                    let header = crate::proxy_protocol::encode(version, client_addr, local);
                    if let Err(error) = server.write_all(&header).await {
                        tracing::debug!(vserver = %plan.name, member = %member.label, %error, "sending the PROXY header failed; trying another member");
                        member.connect_failed(group.passive_retries, "connect failed");
                        failure = ExchangeError::ConnectFailed;
                        continue;
                    }
                }
                let server = match &group.tls {
                    None => Either::Left(server),
                    Some(tls) => match handshake(tls, server, member.key.addr, deadline).await {
                        Ok(server) => Either::Right(Box::new(server)),
                        Err(why) => {
                            tracing::warn!(vserver = %plan.name, servicegroup = %group.name, member = %member.label, reason = %why, "TLS handshake with the member failed; trying another member");
                            member.tls_handshake_failed(group.passive_retries, &why.0);
                            failure = ExchangeError::TlsHandshake;
                            continue;
                        }
                    },
                };
                trace.connected();
                member.connect_succeeded();
                member.counters.requests.fetch_add(1, Relaxed);
                plan.stats.requests.fetch_add(1, Relaxed);
                sticky.remember(serving, client_addr.ip(), group, index);
                return Ok((server, guard));
            }
            Ok(Err(error)) if is_local_exhaustion(&error) => {
                // Any member would fail the same way: not the member's fault.
                tracing::debug!(vserver = %plan.name, member = %member.label, %error, "cannot open a connection to a member; closing the client connection");
                return Err(ExchangeError::LocalResources);
            }
            Ok(Err(_)) | Err(_) => {
                member.connect_failed(group.passive_retries, "connect failed");
                failure = ExchangeError::ConnectFailed;
            }
        }
    }
    tracing::debug!(vserver = %plan.name, "no member available; closing the connection");
    Err(failure)
}

fn account(plan: &VserverPlan, guard: &ActiveGuard, activity: &Activity) {
    let to_member = activity.to_member.load(Relaxed);
    let to_client = activity.to_client.load(Relaxed);
    let member = guard.member();
    member.counters.request_bytes.fetch_add(to_member, Relaxed);
    member.counters.response_bytes.fetch_add(to_client, Relaxed);
    plan.stats.request_bytes.fetch_add(to_member, Relaxed);
    plan.stats.response_bytes.fetch_add(to_client, Relaxed);
}
