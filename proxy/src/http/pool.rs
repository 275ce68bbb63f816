//! Keep-alive HTTP/1.1 connections to one member.
//!
//! A request first takes a connection (an idle one, or a new connect), and only then hands its
//! body over; so a connect failure can be retried on another member with the request intact.
//! The idle list is a lock-free queue that grows as connections come back to it. A draining
//! member's pool is closed: idle connections are dropped at once, and busy ones are dropped
//! (closed) when their response ends.
//!
//! An `SSL` servicegroup's connections are TLS ([`crate::member_tls`]): the handshake is part
//! of the connect, within `connecttimeout`. Each connection remembers the rustls config it was
//! made with, and only a request of a group with that same config reuses it; so a change of
//! servicetype, CA or client certificate never sends a request over an older connection.

use std::io;
use std::net::SocketAddr;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::Duration;

use crossbeam_queue::SegQueue;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_util::either::Either;

use super::body::RequestBody;
use crate::member::MemberState;
use crate::member_tls::{self, MemberStream, TlsFailure, TlsToMembers};

/// The sending half of a backend connection, with the TLS config it was made with (`None`:
/// plain TCP).
#[derive(Debug)]
pub struct Sender {
    send: http1::SendRequest<RequestBody>,
    made_with: Option<Arc<ClientConfig>>,
}

impl Deref for Sender {
    type Target = http1::SendRequest<RequestBody>;

    fn deref(&self) -> &Self::Target {
        &self.send
    }
}

impl DerefMut for Sender {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.send
    }
}

impl Sender {
    /// Whether the connection speaks what `tls` asks for (the very same rustls config).
    pub(super) fn made_for(&self, tls: Option<&TlsToMembers>) -> bool {
        match (&self.made_with, tls) {
            (None, None) => true,
            (Some(made_with), Some(tls)) => Arc::ptr_eq(made_with, &tls.config),
            _ => false,
        }
    }
}

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

/// The connection task of a new member connection, to be spawned by the caller.
type Connection = http1::Connection<TokioIo<MemberStream>, RequestBody>;

/// Idle connections kept per member; more are closed.
const MAX_IDLE: usize = 1024;
/// An idle connection older than this is not reused (backends commonly close at 60 s or later).
const IDLE_TIMEOUT: Duration = Duration::from_secs(50);

#[derive(Debug)]
struct Idle {
    sender: Sender,
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

    /// An idle connection that is still open, if there is one. It may still be finishing its
    /// previous response (it was returned as soon as that response's body ended), so the caller
    /// waits for [`http1::SendRequest::ready`] before sending. `tls` is the group's (a
    /// connection made with another config is closed).
    pub fn checkout(&self, tls: Option<&TlsToMembers>) -> Option<Sender> {
        let now = Instant::now();
        while let Some(idle) = self.idle.pop() {
            if !idle.sender.is_closed()
                && now.duration_since(idle.since) < IDLE_TIMEOUT
                && idle.sender.made_for(tls)
            {
                return Some(idle.sender);
            }
        }
        None
    }

    /// Opens a new connection (TLS with `tls`), bounded by `timeout`. A `proxy_header` is
    /// sent first, before TLS; such a connection carries one client's address and must not be
    /// pooled for another's.
    pub async fn connect(
        &self,
        timeout: Duration,
        tls: Option<&TlsToMembers>,
        proxy_header: Option<&[u8]>,
    ) -> Result<Sender, ConnectError> {
        let (sender, connection) = self.handshake(timeout, tls, proxy_header).await?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "backend connection ended with an error");
            }
        });
        Ok(sender)
    }

    /// Opens a new connection that may switch protocols (`101`, then
    /// [`hyper::upgrade::on`] the response). It is never pooled: the caller drops it.
    pub async fn connect_upgradable(
        &self,
        timeout: Duration,
        tls: Option<&TlsToMembers>,
        proxy_header: Option<&[u8]>,
    ) -> Result<Sender, ConnectError> {
        let (sender, connection) = self.handshake(timeout, tls, proxy_header).await?;
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
        tls: Option<&TlsToMembers>,
        proxy_header: Option<&[u8]>,
    ) -> Result<(Sender, Connection), ConnectError> {
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
            Some(tls) => Either::Right(
                member_tls::handshake(tls, stream, self.addr, deadline)
                    .await
                    .map_err(ConnectError::Tls)?,
            ),
        };
        let (send, connection) = http1::Builder::new()
            .handshake(TokioIo::new(stream))
            .await
            .map_err(io::Error::other)?;
        let made_with = tls.map(|tls| tls.config.clone());
        Ok((Sender { send, made_with }, connection))
    }

    fn put(&self, sender: Sender) {
        if self.closed.load(Relaxed) {
            return;
        }
        // Past MAX_IDLE the connection is dropped (closed). Two returns at once may both pass
        // the check: the bound is loose by the number of threads, which is harmless.
        if self.idle.len() < MAX_IDLE {
            self.idle.push(Idle {
                sender,
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

/// Gives a connection whose response has ended back to its member's pool (unless the member is
/// draining). No task is spawned to wait for readiness: the next user waits, for microseconds.
pub fn recycle(member: Arc<MemberState>, sender: Sender) {
    if !member.pool.closed.load(Relaxed) && !sender.is_closed() {
        member.pool.put(sender);
    }
}
