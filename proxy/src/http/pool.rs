//! Keep-alive HTTP/1.1 connections to one member.
//!
//! A request first takes a connection (an idle one, or a new connect), and only then hands its
//! body over; so a connect failure can be retried on another member with the request intact.
//! The idle list is a lock-free queue. A draining member's pool is closed: idle connections are
//! dropped at once, and busy ones are dropped (closed) when their response ends.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::Duration;

use crossbeam_queue::ArrayQueue;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::body::RequestBody;
use crate::member::MemberState;

/// The sending half of a backend connection.
pub type Sender = http1::SendRequest<RequestBody>;

/// Idle connections kept per member; more are closed.
const MAX_IDLE: usize = 1024;
/// An idle connection older than this is not reused (backends commonly close at 60 s or later).
const IDLE_TIMEOUT: Duration = Duration::from_secs(50);

#[derive(Debug)]
struct Idle {
    sender: Sender,
    since: Instant,
}

/// The connection pool of one member.
#[derive(Debug)]
pub struct Pool {
    addr: SocketAddr,
    idle: ArrayQueue<Idle>,
    closed: AtomicBool,
}

impl Pool {
    pub fn new(addr: SocketAddr) -> Pool {
        Pool {
            addr,
            idle: ArrayQueue::new(MAX_IDLE),
            closed: AtomicBool::new(false),
        }
    }

    /// An idle connection that is still open, if there is one. It may still be finishing its
    /// previous response (it was returned as soon as that response's body ended), so the caller
    /// waits for [`Sender::ready`] before sending.
    pub fn checkout(&self) -> Option<Sender> {
        let now = Instant::now();
        while let Some(idle) = self.idle.pop() {
            if !idle.sender.is_closed() && now.duration_since(idle.since) < IDLE_TIMEOUT {
                return Some(idle.sender);
            }
        }
        None
    }

    /// Opens a new connection, bounded by `timeout`.
    pub async fn connect(&self, timeout: Duration) -> io::Result<Sender> {
        let (sender, connection) = self.handshake(timeout).await?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "backend connection ended with an error");
            }
        });
        Ok(sender)
    }

    /// Opens a new connection that may switch protocols (`101`, then
    /// [`hyper::upgrade::on`] the response). It is never pooled: the caller drops it.
    pub async fn connect_upgradable(&self, timeout: Duration) -> io::Result<Sender> {
        let (sender, connection) = self.handshake(timeout).await?;
        tokio::spawn(async move {
            if let Err(error) = connection.with_upgrades().await {
                tracing::debug!(%error, "backend connection ended with an error");
            }
        });
        Ok(sender)
    }

    async fn handshake(
        &self,
        timeout: Duration,
    ) -> io::Result<(Sender, http1::Connection<TokioIo<TcpStream>, RequestBody>)> {
        let stream = tokio::time::timeout(timeout, TcpStream::connect(self.addr))
            .await
            .map_err(|_| {
                io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("connect timed out after {timeout:?}"),
                )
            })??;
        stream.set_nodelay(true)?;
        http1::Builder::new()
            .handshake(TokioIo::new(stream))
            .await
            .map_err(io::Error::other)
    }

    fn put(&self, sender: Sender) {
        if self.closed.load(Relaxed) {
            return;
        }
        // A full queue drops (closes) the connection.
        let _ = self.idle.push(Idle {
            sender,
            since: Instant::now(),
        });
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

/// Gives a connection whose response has ended back to its member's pool (unless the member is
/// draining). No task is spawned to wait for readiness: the next user waits, for microseconds.
pub fn recycle(member: Arc<MemberState>, sender: Sender) {
    if !member.pool.closed.load(Relaxed) && !sender.is_closed() {
        member.pool.put(sender);
    }
}
