//! Listening sockets and accept loops, one per vserver.
//!
//! [`bind`] makes the socket (so the writer can fail a reload *before* publishing it when an
//! address is taken); [`spawn`] runs the accept loop. Every connection task is tracked, so a
//! shutdown can wait for in-flight work, and gets a token that asks it to finish gracefully.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use socket2::{Domain, Socket, Type};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::ServiceType;
use crate::http::proxy::ConnContext;
use crate::http::serve::{Protocol, serve_http, sniff};
use crate::snapshot::Snapshot;

/// A bound, listening vserver.
#[derive(Debug)]
pub struct RunningVserver {
    pub name: Arc<str>,
    pub addr: SocketAddr,
    pub service_type: ServiceType,
    /// Stops the accept loop.
    stop_accepting: CancellationToken,
    /// Asks this vserver's connections to finish (HTTP: after the current response).
    close_connections: CancellationToken,
}

impl RunningVserver {
    /// Stops listening and asks open connections to finish their current work.
    pub fn stop(&self) {
        self.stop_accepting.cancel();
        self.close_connections.cancel();
    }
}

/// Binds a listening socket: `SO_REUSEADDR`, `TCP_NODELAY` (inherited by accepted sockets).
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(
        Domain::for_address(addr),
        Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    socket.set_reuse_address(true)?;
    socket.set_tcp_nodelay(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(4096)?;
    TcpListener::from_std(socket.into())
}

/// Runs the accept loop of one vserver on an already-bound listener.
pub fn spawn(
    listener: TcpListener,
    name: Arc<str>,
    service_type: ServiceType,
    snapshot: Arc<ArcSwap<Snapshot>>,
    tracker: TaskTracker,
    shutdown: CancellationToken,
) -> io::Result<RunningVserver> {
    let addr = listener.local_addr()?;
    let stop_accepting = shutdown.child_token();
    let close_connections = shutdown.child_token();
    let running = RunningVserver {
        name: name.clone(),
        addr,
        service_type,
        stop_accepting: stop_accepting.clone(),
        close_connections: close_connections.clone(),
    };
    let conn_tracker = tracker.clone();
    tracker.spawn(async move {
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                () = stop_accepting.cancelled() => break,
            };
            match accepted {
                Ok((stream, client)) => {
                    let connection = Connection {
                        name: name.clone(),
                        service_type,
                        snapshot: snapshot.clone(),
                        client,
                        close: close_connections.clone(),
                    };
                    conn_tracker.spawn(connection.serve(stream));
                }
                Err(error) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(vserver = %name, %error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    });
    Ok(running)
}

/// One accepted connection, about to be served according to its vserver's type.
struct Connection {
    name: Arc<str>,
    service_type: ServiceType,
    snapshot: Arc<ArcSwap<Snapshot>>,
    client: SocketAddr,
    close: CancellationToken,
}

impl Connection {
    async fn serve(self, stream: TcpStream) {
        let _ = stream.set_nodelay(true);
        let snapshot = self.snapshot.load_full();
        let Some(plan) = snapshot.vserver(&self.name).cloned() else {
            return;
        };
        let _counted = plan.stats.client_connected();
        let profile = snapshot.http_profile.clone();
        let l4_relay = snapshot.config.settings.l4_relay;
        drop(snapshot);
        match self.service_type {
            ServiceType::Http => {
                let Some(protocol) = sniff(&stream, profile.client_header_timeout).await else {
                    return;
                };
                let ctx = self.context(false);
                serve_http(stream, protocol, ctx, &profile, self.close).await;
            }
            ServiceType::Tcp => crate::l4::relay_tcp(stream, self.client, plan, l4_relay).await,
            ServiceType::Ssl | ServiceType::SslTcp => {
                let Some(tls) = plan.tls.clone() else { return };
                let handshake = TlsAcceptor::from(tls).accept(stream);
                let stream = match tokio::time::timeout(profile.client_header_timeout, handshake)
                    .await
                {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(error)) => {
                        tracing::debug!(vserver = %self.name, client = %self.client, %error, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(vserver = %self.name, client = %self.client, "TLS handshake timed out");
                        return;
                    }
                };
                if self.service_type == ServiceType::Ssl {
                    let protocol = match stream.get_ref().1.alpn_protocol() {
                        Some(b"h2") => Protocol::Http2,
                        _ => Protocol::Http1,
                    };
                    let ctx = self.context(true);
                    serve_http(stream, protocol, ctx, &profile, self.close).await;
                } else {
                    crate::l4::relay_copy(stream, self.client, plan).await;
                }
            }
        }
    }

    fn context(&self, https: bool) -> Arc<ConnContext> {
        Arc::new(ConnContext {
            snapshot: self.snapshot.clone(),
            vserver: self.name.clone(),
            client: self.client,
            https,
        })
    }
}
