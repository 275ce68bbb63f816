//! Keep-alive HTTP/1.1 connections to one member.
//!
//! A request first takes a connection (an idle one, or a new connect), and only then hands its
//! body over; so a connect failure can be retried on another member with the request intact.
//! The idle list is a stack, as in nginx's upstream keepalive cache: a request takes the
//! connection that came back last. Under steady load the same few connections carry the
//! traffic and stay warm, the ones a burst opened rest until the sweep closes them at
//! [`IDLE_TIMEOUT`], and the one taken is the least likely to have been closed by the member
//! meanwhile. (A queue, tried first, kept every connection a burst ever opened in rotation,
//! each refreshed on every use, so none aged out while traffic flowed.) A draining
//! member's pool is closed: idle connections are dropped at once, and busy ones are dropped
//! (closed) when their response ends. No task watches an idle connection: one the member
//! closed meanwhile is found, and dropped, when it is next taken, or by the sweep of every
//! pool every few seconds ([`sweep_idle_connections`]), whichever comes first.
//!
//! An `SSL` servicegroup's connections are TLS ([`crate::member_tls`]): the handshake is part
//! of the connect, within `connecttimeout`. Each connection remembers the rustls config it was
//! made with, and only a request of a group with that same config reuses it; so a change of
//! servicetype, CA or client certificate never sends a request over an older connection.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_util::either::Either;

use super::h1_client::MemberConnection;
use crate::member_tls::{self, TlsFailure, TlsToMembers};
use crate::snapshot::Snapshot;

/// Why a new member connection could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The TCP connect failed or timed out (or Ballast could not make a socket).
    #[error(transparent)]
    Io(#[from] io::Error),
    /// The TLS handshake failed; the text says why.
    #[error("TLS handshake failed: {0}")]
    Tls(TlsFailure),
}

/// Idle connections kept per member; more are closed.
const MAX_IDLE: usize = 1024;
/// An idle connection older than this is not reused (backends commonly close at 60 s or later).
const IDLE_TIMEOUT: Duration = Duration::from_secs(50);
/// How often every pool is swept of connections the member closed or that grew too old.
const SWEEP_EVERY: Duration = Duration::from_secs(5);

#[derive(Debug)]
struct Idle {
    conn: MemberConnection,
    since: Instant,
}

/// The connection pool of one member. The idle stack takes memory as connections come back
/// to it: a member that is never used costs nothing (a queue with room for [`MAX_IDLE`] made
/// up front was 64 KiB a member, 650 MB for a 10,000-member group). The lock is held only to
/// push or pop; a connection is closed after it is released.
#[derive(Debug)]
pub struct Pool {
    addr: SocketAddr,
    /// Oldest at the bottom, the last one back on top.
    idle: Mutex<Vec<Idle>>,
    closed: AtomicBool,
}

impl Pool {
    pub fn new(addr: SocketAddr) -> Pool {
        Pool {
            addr,
            idle: Mutex::default(),
            closed: AtomicBool::new(false),
        }
    }

    /// An idle connection that is still open, if there is one. `tls` is the group's (a
    /// connection made with another config is closed).
    pub fn checkout(&self, tls: Option<&TlsToMembers>) -> Option<MemberConnection> {
        let now = Instant::now();
        loop {
            // The lock ends with this statement: a connection found closed is dropped without it.
            let top = self.idle().pop();
            let mut idle = top?;
            if now.duration_since(idle.since) < IDLE_TIMEOUT
                && idle.conn.made_for(tls)
                && idle.conn.is_usable()
            {
                return Some(idle.conn);
            }
        }
    }

    /// Closes the idle connections the member closed (or sent bytes on unasked) and those past
    /// [`IDLE_TIMEOUT`], so that none lingers half-closed while no request comes to take it;
    /// the others go back. A request meanwhile may miss one and connect anew.
    pub fn sweep(&self) {
        let now = Instant::now();
        let mut kept = std::mem::take(&mut *self.idle());
        kept.retain_mut(|idle| {
            now.duration_since(idle.since) < IDLE_TIMEOUT && idle.conn.is_usable()
        });
        let mut idle = self.idle();
        // Those that came back meanwhile are newer: they go on top.
        kept.append(&mut idle);
        if kept.capacity() > 4 * kept.len().max(8) {
            kept.shrink_to_fit();
        }
        *idle = kept;
    }

    /// Opens a new connection (TLS with `tls`), bounded by `timeout`. A `proxy_header` is
    /// sent first, before TLS; such a connection carries one client's address and must not be
    /// pooled for another's.
    pub async fn connect(
        &self,
        timeout: Duration,
        tls: Option<&TlsToMembers>,
        proxy_header: Option<&[u8]>,
    ) -> Result<MemberConnection, ConnectError> {
        let deadline = Instant::now() + timeout;
        let mut stream = tokio::time::timeout_at(deadline, TcpStream::connect(self.addr))
            .await
            .map_err(|_| {
                io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("connect timed out after {timeout:?}"),
                )
            })??;
        stream.set_nodelay(true)?;
        if let Some(header) = proxy_header {
            stream.write_all(header).await?;
        }
        let stream = match tls {
            None => Either::Left(stream),
            Some(tls) => Either::Right(Box::new(
                member_tls::handshake(tls, stream, self.addr, deadline)
                    .await
                    .map_err(ConnectError::Tls)?,
            )),
        };
        let made_with = tls.map(|tls| tls.config.clone());
        Ok(MemberConnection::new(stream, made_with))
    }

    /// Takes back a connection whose response has ended (unless the member is draining).
    pub fn put(&self, conn: MemberConnection) {
        // `closed` is read under the lock, so a `close` running meanwhile takes this one too.
        let mut idle = self.idle();
        if !self.closed.load(Relaxed) && idle.len() < MAX_IDLE {
            idle.push(Idle {
                conn,
                since: Instant::now(),
            });
            return;
        }
        drop(idle);
        // Draining, or past MAX_IDLE: the connection is closed, outside the lock.
        drop(conn);
    }

    /// Closes idle connections and stops keeping new ones (the member is draining).
    pub fn close(&self) {
        self.closed.store(true, Relaxed);
        let idle = std::mem::take(&mut *self.idle());
        drop(idle);
    }

    pub fn reopen(&self) {
        self.closed.store(false, Relaxed);
    }

    /// The idle stack. Nothing panics while holding it, but a poisoned lock would still hold
    /// a valid stack.
    fn idle(&self) -> MutexGuard<'_, Vec<Idle>> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Sweeps every member's pool every [`SWEEP_EVERY`] ([`Pool::sweep`]), for Ballast's life.
pub async fn sweep_idle_connections(snapshot: Arc<ArcSwap<Snapshot>>) {
    let mut tick = tokio::time::interval(SWEEP_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let current = snapshot.load();
        for group in current.groups.values() {
            group.members.iter().for_each(|member| member.pool.sweep());
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncReadExt;
    use tokio::net::TcpListener;

    use super::*;

    /// A burst opened two connections; then one request at a time comes, every 10 s, for a
    /// minute. The last connection back carries them all and the other one is closed once it
    /// has idled [`IDLE_TIMEOUT`], as HAProxy and nginx let surplus connections go.
    #[tokio::test]
    async fn steady_traffic_reuses_the_last_connection_back_and_the_surplus_ages_out() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let pool = Pool::new(listener.local_addr().unwrap());
        let timeout = Duration::from_secs(5);
        let first = pool.connect(timeout, None, None).await.unwrap();
        let (mut member_first, _) = listener.accept().await.unwrap();
        let second = pool.connect(timeout, None, None).await.unwrap();
        let (mut member_second, _) = listener.accept().await.unwrap();
        pool.put(first);
        pool.put(second);

        tokio::time::pause();
        for _ in 0..6 {
            tokio::time::advance(Duration::from_secs(10)).await;
            let taken = pool.checkout(None).expect("an idle connection");
            pool.put(taken);
            pool.sweep();
        }
        tokio::time::resume();
        assert_eq!(pool.idle().len(), 1, "the surplus connection is still kept");

        let mut byte = [0u8; 1];
        let closed = tokio::time::timeout(Duration::from_secs(2), member_first.read(&mut byte));
        assert_eq!(
            closed.await.expect("the first connection closes").unwrap(),
            0
        );
        let open = tokio::time::timeout(Duration::from_millis(200), member_second.read(&mut byte));
        assert!(open.await.is_err(), "the connection in use was closed");
    }

    #[tokio::test]
    async fn a_sweep_closes_what_the_member_closed_and_keeps_the_rest() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let pool = Pool::new(listener.local_addr().unwrap());
        let timeout = Duration::from_secs(5);
        let (kept, closed) = (
            pool.connect(timeout, None, None),
            pool.connect(timeout, None, None),
        );
        let (kept, closed) = (kept.await.unwrap(), closed.await.unwrap());
        let (mut member_kept, _) = listener.accept().await.unwrap();
        let (member_closed, _) = listener.accept().await.unwrap();
        pool.put(kept);
        pool.put(closed);
        drop(member_closed);
        // The member's FIN is on loopback in a moment; the sweep then closes its side too.
        for _ in 0..100 {
            pool.sweep();
            if pool.idle().len() == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(pool.idle().len(), 1, "the closed connection was not swept");
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_millis(200), member_kept.read(&mut byte));
        assert!(read.await.is_err(), "the open connection was closed too");
    }
}
