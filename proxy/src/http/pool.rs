//! Keep-alive HTTP/1.1 connections to one member.
//!
//! A request first takes a connection (an idle one, or a new connect), and only then hands its
//! body over; so a connect failure can be retried on another member with the request intact.
//! The idle list is a lock-free queue that grows as connections come back to it. A draining
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
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::Duration;

use arc_swap::ArcSwap;
use crossbeam_queue::SegQueue;
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

/// The connection pool of one member. The idle queue takes memory as connections come back
/// to it, in small blocks: a member that is never used costs nothing (a queue with room for
/// [`MAX_IDLE`] made up front was 64 KiB a member, 650 MB for a 10,000-member group).
#[derive(Debug)]
pub struct Pool {
    addr: SocketAddr,
    idle: SegQueue<Idle>,
    closed: AtomicBool,
}

impl Pool {
    pub fn new(addr: SocketAddr) -> Pool {
        Pool {
            addr,
            idle: SegQueue::new(),
            closed: AtomicBool::new(false),
        }
    }

    /// An idle connection that is still open, if there is one. `tls` is the group's (a
    /// connection made with another config is closed).
    pub fn checkout(&self, tls: Option<&TlsToMembers>) -> Option<MemberConnection> {
        let now = Instant::now();
        while let Some(mut idle) = self.idle.pop() {
            if now.duration_since(idle.since) < IDLE_TIMEOUT
                && idle.conn.made_for(tls)
                && idle.conn.is_usable()
            {
                return Some(idle.conn);
            }
        }
        None
    }

    /// Closes the idle connections the member closed (or sent bytes on unasked) and those past
    /// [`IDLE_TIMEOUT`], so that none lingers half-closed while no request comes to take it;
    /// the others go back. A request meanwhile may miss one and connect anew.
    pub fn sweep(&self) {
        let now = Instant::now();
        for _ in 0..self.idle.len() {
            let Some(mut idle) = self.idle.pop() else {
                return;
            };
            if now.duration_since(idle.since) < IDLE_TIMEOUT && idle.conn.is_usable() {
                self.idle.push(idle);
            }
        }
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
        if self.closed.load(Relaxed) {
            return;
        }
        // Past MAX_IDLE the connection is dropped (closed). Two returns at once may both pass
        // the check: the bound is loose by the number of threads, which is harmless.
        if self.idle.len() < MAX_IDLE {
            self.idle.push(Idle {
                conn,
                since: Instant::now(),
            });
        }
    }

    /// Closes idle connections and stops keeping new ones (the member is draining).
    pub fn close(&self) {
        self.closed.store(true, Relaxed);
        while self.idle.pop().is_some() {}
    }

    pub fn reopen(&self) {
        self.closed.store(false, Relaxed);
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
            if pool.idle.len() == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(pool.idle.len(), 1, "the closed connection was not swept");
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_millis(200), member_kept.read(&mut byte));
        assert!(read.await.is_err(), "the open connection was closed too");
    }
}
