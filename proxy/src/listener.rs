//! Listening sockets and accept loops, one per vserver.
//!
//! [`bind`] makes the socket (so the writer can fail a reload *before* publishing it when an
//! address is taken); [`spawn`] runs the accept loop. Every connection task is tracked, so a
//! shutdown can wait for in-flight work, and gets a token that asks it to finish gracefully.
//!
//! A vserver with `proxyprotocol = "ENABLED"` first reads a trusted source's PROXY header
//! ([`crate::proxy_protocol::accept`]): the client address it gives is the one admitted,
//! balanced on, forwarded and logged.
//!
//! Each accepted connection is then admitted under the connection limits ([`crate::limits`]);
//! one over a limit is refused: an `HTTP` client gets a short `503` and the connection closes,
//! other types are closed at once. When accepting fails because Ballast is out of file
//! descriptors, the loop backs off (10 ms doubling to 1 s) instead of spinning, and logs the
//! episode once when it starts and once, with a count, when accepting works again.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use arc_swap::ArcSwap;
use socket2::{Domain, Socket, Type};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::accesslog::AccessLog;
use crate::config::{HttpProfile, L4Relay, ServiceType};
use crate::error::is_local_exhaustion;
use crate::http::proxy::ConnContext;
use crate::http::serve::{Protocol, Serving, serve_http, sniff};
use crate::limits::admission::Admitted;
use crate::limits::admission::RefusalSlot;
use crate::limits::{AcceptBackoff, Limit, admit};
use crate::proxy_protocol::Addresses;
use crate::proxy_protocol::accept::{self, Header, Refusal};
use crate::proxy_protocol::guard::RefuseHeader;
use crate::snapshot::{Snapshot, VserverPlan};

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
        let mut exhausted = AcceptBackoff::new(format!("lbvserver {name}"));
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                () = stop_accepting.cancelled() => break,
            };
            match accepted {
                Ok((stream, client)) => {
                    exhausted.recovered();
                    let connection = Connection {
                        name: name.clone(),
                        service_type,
                        snapshot: snapshot.clone(),
                        client,
                        local: stream.local_addr().unwrap_or(addr),
                        close: close_connections.clone(),
                    };
                    conn_tracker.spawn(connection.serve(stream));
                }
                Err(error) if is_local_exhaustion(&error) => {
                    let pause = exhausted.failed(&error);
                    tokio::select! {
                        () = tokio::time::sleep(pause) => {}
                        () = stop_accepting.cancelled() => break,
                    }
                }
                // The client gave up before it was accepted, and the like: nothing to wait for.
                Err(error) => tracing::debug!(vserver = %name, %error, "accept failed"),
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
    /// The client's address: the peer's, or the source of its PROXY header.
    client: SocketAddr,
    /// The address the client connected to: the listener's, or the destination of its PROXY
    /// header.
    local: SocketAddr,
    close: CancellationToken,
}

/// What an admitted connection goes on to.
enum Route {
    /// A plain `HTTP` connection, served in the connection's own task.
    Http(Box<HttpRoute>),
    /// Any other, already set up in a box of its own.
    Other(Pin<Box<dyn Future<Output = ()> + Send>>),
}

/// What serving a plain `HTTP` connection takes.
struct HttpRoute {
    stream: TcpStream,
    protocol: Protocol,
    ctx: Arc<ConnContext>,
    profile: HttpProfile,
    idle: Duration,
    close: CancellationToken,
    /// Counts the connection against its limits while it is open.
    admitted: Admitted,
}

impl HttpRoute {
    /// The server for the connection, and its admission. The route's box is freed here, not
    /// held (emptied) beside the server for the connection's whole life.
    #[expect(
        clippy::boxed_local,
        reason = "the route arrives boxed; taking the box is what frees it before serving"
    )]
    fn start(self: Box<Self>) -> (Serving<impl Future<Output = ()> + Send>, Admitted) {
        let HttpRoute {
            stream,
            protocol,
            ctx,
            profile,
            idle,
            close,
            admitted,
        } = *self;
        let serving = serve_http(stream, protocol, ctx, &profile, idle, close);
        (serving, admitted)
    }
}

impl Connection {
    /// Admits the connection, then serves it. Everything up to a plain `HTTP` connection's
    /// serving runs in a box of its own, freed once it is done, so an idle HTTP/1.1
    /// connection's task holds only what serving it needs.
    fn serve(self, stream: TcpStream) -> impl Future<Output = ()> + Send {
        let admitting = Box::pin(self.admit(stream));
        async move {
            match admitting.await {
                Some(Route::Http(http)) => {
                    let (serving, admitted) = http.start();
                    serving.await;
                    drop(admitted);
                }
                Some(Route::Other(serving)) => serving.await,
                None => {}
            }
        }
    }

    /// Admission, PROXY headers and refusals; then a plain `HTTP` connection's route, or any
    /// other connection's serving, boxed. `None`: refused, or gone before its first bytes.
    async fn admit(mut self, mut stream: TcpStream) -> Option<Route> {
        let _ = stream.set_nodelay(true);
        let snapshot = self.snapshot.load_full();
        let plan = snapshot.vserver(&self.name).cloned()?;
        // A trusted balancer's PROXY header is read before admission: `maxclientpersource`
        // counts the address it gives.
        let header_timeout = snapshot.http_profile.client_header_timeout;
        let trusted = match &plan.proxy_protocol {
            Some(trusted) => trusted.contains(self.client.ip()),
            None => false,
        };
        if trusted && let Err(refusal) = self.proxy_header(&mut stream, header_timeout).await {
            self.refuse_header(stream, &plan, refusal).await;
            return None;
        }
        let max_conn = snapshot.connections.max(&snapshot.config.settings);
        let admitted = match admit(&snapshot.connections, max_conn, &plan, self.client.ip()) {
            Ok(admitted) => admitted,
            Err(limit) => {
                let answer = snapshot.connections.try_answer_refusal();
                drop(snapshot);
                self.refuse(stream, limit, answer).await;
                return None;
            }
        };
        // Anyone else must not send one; an admitted connection's first bytes are looked at
        // (or, on `TCP` vservers, whose clients may wait for the member to speak, watched as
        // they are relayed).
        let watch_first_bytes =
            plan.proxy_protocol.is_some() && !trusted && self.service_type == ServiceType::Tcp;
        let profile = snapshot.http_profile.clone();
        let access_log = snapshot.access_log.clone();
        let splice_slot = match snapshot.config.settings.l4_relay {
            L4Relay::Splice if !watch_first_bytes => snapshot.connections.try_splice(max_conn),
            L4Relay::Splice | L4Relay::Copy => None,
        };
        drop(snapshot);
        if plan.proxy_protocol.is_some()
            && !trusted
            && self.service_type != ServiceType::Tcp
            && let Err(refusal) = accept::refuse_untrusted(&stream, header_timeout).await
        {
            self.refuse_header(stream, &plan, Some(refusal)).await;
            return None;
        }
        let serving: Pin<Box<dyn Future<Output = ()> + Send>> = match self.service_type {
            ServiceType::Http => {
                let protocol = sniff(&stream, profile.client_header_timeout).await?;
                return Some(Route::Http(Box::new(HttpRoute {
                    ctx: self.context(false),
                    stream,
                    protocol,
                    profile,
                    idle: plan.client_timeout,
                    close: self.close,
                    admitted,
                })));
            }
            ServiceType::Tcp if watch_first_bytes => {
                let (stats, vserver, client) = (plan.stats.clone(), self.name.clone(), self.client);
                let guarded = RefuseHeader::new(stream, move || {
                    let refusal = Refusal::Untrusted;
                    stats.proxy_protocol_refused[refusal.index()].fetch_add(1, Relaxed);
                    tracing::debug!(%vserver, %client, reason = refusal.as_str(), "connection refused: PROXY protocol");
                });
                let (client, local) = (self.client, self.local);
                Box::pin(crate::l4::relay_copy(
                    guarded, client, local, plan, access_log,
                ))
            }
            ServiceType::Tcp => {
                let (client, local) = (self.client, self.local);
                Box::pin(crate::l4::relay_tcp(
                    stream,
                    client,
                    local,
                    plan,
                    splice_slot,
                    access_log,
                ))
            }
            ServiceType::Ssl | ServiceType::SslTcp => {
                Box::pin(self.serve_tls(stream, plan, profile, access_log))
            }
        };
        Some(Route::Other(Box::pin(async move {
            serving.await;
            drop(admitted);
        })))
    }

    /// `SSL` and `SSL_TCP`: the TLS handshake, then HTTP or a relay over the TLS stream (in a
    /// function of its own: a TLS stream is large, and only these connections carry one).
    async fn serve_tls(
        self,
        stream: TcpStream,
        plan: Arc<VserverPlan>,
        profile: HttpProfile,
        access_log: Option<AccessLog>,
    ) {
        let Some(tls) = plan.tls.clone() else { return };
        let handshake = TlsAcceptor::from(tls).accept(stream);
        let handshake = Box::pin(tokio::time::timeout(
            profile.client_header_timeout,
            handshake,
        ));
        let stream = match handshake.await {
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
            let idle = plan.client_timeout;
            serve_http(stream, protocol, ctx, &profile, idle, self.close).await;
        } else {
            let relay = Box::pin(crate::l4::relay_copy(
                stream,
                self.client,
                self.local,
                plan,
                access_log,
            ));
            relay.await;
        }
    }

    /// A connection over `limit`: an `HTTP` client is told `503` (its request is read and
    /// dropped for a moment, so the reply is not lost to a reset) when `answer` gave it a
    /// place among the refusals being answered; any other is closed at once.
    async fn refuse(self, mut stream: TcpStream, limit: Limit, answer: Option<RefusalSlot>) {
        tracing::debug!(vserver = %self.name, client = %self.client, limit = limit.as_str(), "connection refused at a limit");
        if self.service_type != ServiceType::Http || answer.is_none() {
            return;
        }
        answer_and_close(
            &mut stream,
            "503 Service Unavailable",
            "too many connections",
        )
        .await;
    }

    /// A trusted source's PROXY header, read within `timeout`: its addresses become this
    /// connection's. `Err(None)`: the source closed before sending a byte (a health check's
    /// connect), nothing to count.
    async fn proxy_header(
        &mut self,
        stream: &mut TcpStream,
        timeout: Duration,
    ) -> Result<(), Option<Refusal>> {
        match accept::read_header(stream, timeout).await {
            Header::Read(Addresses::Proxied {
                source,
                destination,
            }) => {
                (self.client, self.local) = (source, destination);
                Ok(())
            }
            Header::Read(Addresses::Local) => Ok(()),
            Header::Closed => Err(None),
            Header::Refused(refusal) => Err(Some(refusal)),
        }
    }

    /// A connection refused for its PROXY header (or its lack): counted by reason, and closed;
    /// an `HTTP` client is told `400` and why first (when there is a place among the refusals
    /// being answered, as at a limit).
    async fn refuse_header(
        self,
        mut stream: TcpStream,
        plan: &VserverPlan,
        refusal: Option<Refusal>,
    ) {
        let Some(refusal) = refusal else { return };
        plan.stats.proxy_protocol_refused[refusal.index()].fetch_add(1, Relaxed);
        tracing::debug!(vserver = %self.name, client = %self.client, reason = refusal.as_str(), "connection refused: PROXY protocol");
        if self.service_type != ServiceType::Http {
            return;
        }
        let Some(_answering) = self.snapshot.load().connections.try_answer_refusal() else {
            return;
        };
        answer_and_close(&mut stream, "400 Bad Request", refusal.message()).await;
    }

    fn context(&self, https: bool) -> Arc<ConnContext> {
        Arc::new(ConnContext {
            snapshot: self.snapshot.clone(),
            vserver: self.name.clone(),
            client: self.client,
            local: self.local,
            https,
            private: Default::default(),
            tunnels: Default::default(),
        })
    }
}

/// Answers an `HTTP` client `status` with `reason` and closes; what it sends meanwhile is read
/// and dropped for a moment, so the answer is not lost to a reset.
async fn answer_and_close(stream: &mut TcpStream, status: &str, reason: &str) {
    let body = format!("{status}: {reason}\n");
    let reply = format!(
        "HTTP/1.1 {status}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let answer = async {
        stream.write_all(reply.as_bytes()).await?;
        stream.shutdown().await?;
        let mut sink = [0u8; 4096];
        while stream.read(&mut sink).await? > 0 {}
        io::Result::Ok(())
    };
    let _ = tokio::time::timeout(Duration::from_millis(500), answer).await;
}
