//! Backends the proxy balances over, running in-process on the test's tokio runtime.
//!
//! [`Backend`] is a hyper HTTP/1.1 + h2c server (hyper-util's auto builder). Every response is
//! `200` with header `x-backend: <name>` and, unless a path below says otherwise, the body
//! `<name>`:
//!
//! | path | answer |
//! |---|---|
//! | `/slow?ms=N` | sleeps N ms first |
//! | `/healthz` | `ok` (counted as a probe, not as a request) |
//! | `/echo-headers` | the request headers, one `name: value` line each |
//! | `/echo-body` | the request body, then a `trailer name: value` line per trailer field |
//! | `/truncate` | `Content-Length: 1000000`, 16 bytes, then the connection is torn down |
//!
//! It counts requests, remembers the last `X-Forwarded-For`/`-Proto` and every path, and can be
//! stopped (listener closed, every connection closed: the proxy then sees connection refused)
//! and restarted on the same address. [`EchoBackend`] is a TCP echo server for L4 vservers.

use std::convert::Infallible;
use std::error::Error as StdError;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

type BoxError = Box<dyn StdError + Send + Sync>;
type Body = BoxBody<Bytes, BoxError>;

/// How long [`Backend::stop`] lets in-flight requests finish before cutting them off.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// An HTTP backend that answers with its name.
#[derive(Debug)]
pub struct Backend {
    addr: SocketAddr,
    name: Arc<str>,
    stats: Arc<Stats>,
    running: Option<Running>,
}

#[derive(Debug, Default)]
struct Stats {
    requests: AtomicU64,
    probes: AtomicU64,
    in_flight: AtomicU64,
    /// The most requests that were in flight at once.
    max_in_flight: AtomicU64,
    last_forwarded_for: Mutex<Option<String>>,
    last_forwarded_proto: Mutex<Option<String>>,
    paths: Mutex<Vec<String>>,
}

#[derive(Debug)]
struct Running {
    accept: JoinHandle<()>,
    /// `true` asks every connection to finish its current response and close.
    closing: watch::Sender<bool>,
    connections: Arc<Mutex<JoinSet<()>>>,
}

impl Backend {
    /// Listens on `addr` and serves until stopped or dropped.
    /// Starts on `addr`; if its port was taken since it was picked (another socket of the
    /// machine got it meanwhile), on another free port of the same IP: use [`Backend::addr`].
    pub async fn start(addr: SocketAddr, name: &str) -> Backend {
        let (addr, listened) = listen_or_move(addr);
        let mut backend = Backend {
            addr,
            name: name.into(),
            stats: Arc::default(),
            running: None,
        };
        // The listener that found the port free serves: closing it and listening again
        // would let another socket take the port in between.
        backend.serve_on(listened);
        backend
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Requests served (health probes to `/healthz` not included).
    pub fn requests(&self) -> u64 {
        self.stats.requests.load(Relaxed)
    }

    /// Requests to `/healthz`.
    pub fn probes(&self) -> u64 {
        self.stats.probes.load(Relaxed)
    }

    /// Requests being handled right now (a `/slow` one counts until it answers).
    pub fn in_flight(&self) -> u64 {
        self.stats.in_flight.load(Relaxed)
    }

    /// The most requests that were ever in flight at once (a `/healthz` probe counts too).
    pub fn max_in_flight(&self) -> u64 {
        self.stats.max_in_flight.load(Relaxed)
    }

    /// `X-Forwarded-For` of the last request that had one.
    pub fn last_forwarded_for(&self) -> Option<String> {
        self.stats.last_forwarded_for.lock().expect("lock").clone()
    }

    /// `X-Forwarded-Proto` of the last request that had one.
    pub fn last_forwarded_proto(&self) -> Option<String> {
        self.stats
            .last_forwarded_proto
            .lock()
            .expect("lock")
            .clone()
    }

    /// Path (with query) of every request, in order (probes not included).
    pub fn paths(&self) -> Vec<String> {
        self.stats.paths.lock().expect("lock").clone()
    }

    /// Closes the listener and every connection: idle ones at once, busy ones right after
    /// their current response (cut off after 10 s). When this returns, a connect to the
    /// address is refused.
    pub async fn stop(&mut self) {
        let Some(running) = self.running.take() else {
            return;
        };
        running.accept.abort();
        let _ = running.accept.await;
        let _ = running.closing.send(true);
        let mut connections = std::mem::take(&mut *running.connections.lock().expect("lock"));
        let drained = tokio::time::timeout(STOP_GRACE, async {
            while connections.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            connections.shutdown().await;
        }
    }

    /// Like [`Backend::stop`], but in-flight requests are cut off too (a crash).
    pub async fn kill(&mut self) {
        let Some(running) = self.running.take() else {
            return;
        };
        running.accept.abort();
        let _ = running.accept.await;
        let mut connections = std::mem::take(&mut *running.connections.lock().expect("lock"));
        connections.shutdown().await;
    }

    /// Listens on the same address again (after [`Backend::stop`]); counters are kept.
    pub async fn restart(&mut self) {
        if self.running.is_some() {
            return;
        }
        self.serve_on(listen(self.addr));
    }

    fn serve_on(&mut self, listened: std::io::Result<TcpListener>) {
        let listener = listened.unwrap_or_else(|error| {
            panic!(
                "backend {} cannot listen on {}: {error}",
                self.name, self.addr
            )
        });
        let (closing, _) = watch::channel(false);
        let connections = Arc::new(Mutex::new(JoinSet::new()));
        let accept = tokio::spawn(accept_loop(
            listener,
            self.name.clone(),
            self.stats.clone(),
            closing.clone(),
            connections.clone(),
        ));
        self.running = Some(Running {
            accept,
            closing,
            connections,
        });
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            running.accept.abort();
            // Dropping the JoinSet aborts every connection task.
        }
    }
}

/// Listens on `addr`; if its port was taken since it was picked (another socket of the
/// machine got it meanwhile), on another free port of the same IP, up to three times.
fn listen_or_move(mut addr: SocketAddr) -> (SocketAddr, std::io::Result<TcpListener>) {
    let mut listened = listen(addr);
    for _ in 0..3 {
        match &listened {
            Err(error) if error.kind() == std::io::ErrorKind::AddrInUse => {
                addr = SocketAddr::new(addr.ip(), crate::free_port(addr.ip()));
                listened = listen(addr);
            }
            _ => break,
        }
    }
    (addr, listened)
}

/// A listening socket with `SO_REUSEADDR`, so a restart is not blocked by TIME_WAIT.
fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

async fn accept_loop(
    listener: TcpListener,
    name: Arc<str>,
    stats: Arc<Stats>,
    closing: watch::Sender<bool>,
    connections: Arc<Mutex<JoinSet<()>>>,
) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let name = name.clone();
        let stats = stats.clone();
        let mut closing = closing.subscribe();
        let mut set = connections.lock().expect("lock");
        while set.try_join_next().is_some() {}
        set.spawn(async move {
            let service = service_fn(move |request| {
                let name = name.clone();
                let stats = stats.clone();
                async move { Ok::<_, Infallible>(answer(request, &name, &stats).await) }
            });
            let builder = auto::Builder::new(TokioExecutor::new());
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                () = async { let _ = closing.wait_for(|closing| *closing).await; } => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
        });
    }
}

async fn answer(request: Request<Incoming>, name: &str, stats: &Stats) -> Response<Body> {
    let now = stats.in_flight.fetch_add(1, Relaxed) + 1;
    stats.max_in_flight.fetch_max(now, Relaxed);
    let response = respond(request, name, stats).await;
    stats.in_flight.fetch_sub(1, Relaxed);
    response
}

async fn respond(request: Request<Incoming>, name: &str, stats: &Stats) -> Response<Body> {
    let path = request.uri().path().to_owned();
    let path_and_query = request
        .uri()
        .path_and_query()
        .map_or("/", |pq| pq.as_str())
        .to_owned();
    if path == "/healthz" {
        stats.probes.fetch_add(1, Relaxed);
        return reply(name, Bytes::from_static(b"ok"));
    }
    stats.requests.fetch_add(1, Relaxed);
    stats.paths.lock().expect("lock").push(path_and_query);
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    };
    if let Some(value) = header("x-forwarded-for") {
        *stats.last_forwarded_for.lock().expect("lock") = Some(value);
    }
    if let Some(value) = header("x-forwarded-proto") {
        *stats.last_forwarded_proto.lock().expect("lock") = Some(value);
    }
    let echoed: String = request
        .headers()
        .iter()
        .map(|(name, value)| format!("{name}: {}\n", String::from_utf8_lossy(value.as_bytes())))
        .collect();
    let query_ms = request
        .uri()
        .query()
        .and_then(|query| query.split('&').find_map(|pair| pair.strip_prefix("ms=")))
        .and_then(|ms| ms.parse::<u64>().ok());
    // Read the whole request body, as a real application would.
    let body = request.into_body().collect().await.ok();

    match path.as_str() {
        "/slow" => {
            tokio::time::sleep(Duration::from_millis(query_ms.unwrap_or(1000))).await;
            reply(name, Bytes::from(name.to_owned()))
        }
        "/echo-headers" => reply(name, Bytes::from(echoed)),
        "/echo-body" => reply(name, echo_body(body)),
        "/truncate" => truncated(name),
        _ => reply(name, Bytes::from(name.to_owned())),
    }
}

/// The request body as received, then a `trailer name: value` line per trailer field.
fn echo_body(body: Option<http_body_util::Collected<Bytes>>) -> Bytes {
    let Some(body) = body else {
        return Bytes::from_static(b"(the body failed)");
    };
    let trailers: String = body
        .trailers()
        .into_iter()
        .flatten()
        .map(|(name, value)| {
            format!(
                "\ntrailer {name}: {}",
                String::from_utf8_lossy(value.as_bytes())
            )
        })
        .collect();
    let mut echoed = body.to_bytes().to_vec();
    echoed.extend_from_slice(trailers.as_bytes());
    Bytes::from(echoed)
}

fn reply(name: &str, body: Bytes) -> Response<Body> {
    Response::builder()
        .status(StatusCode::OK)
        .header("x-backend", name)
        .body(Full::new(body).map_err(|never| match never {}).boxed())
        .expect("a valid response")
}

/// Promises a megabyte, sends 16 bytes, then fails the body: hyper tears the connection down.
fn truncated(name: &str) -> Response<Body> {
    Response::builder()
        .status(StatusCode::OK)
        .header("x-backend", name)
        .header("content-length", "1000000")
        .body(Truncated { sent: false }.boxed())
        .expect("a valid response")
}

/// A body that yields one small frame and then an error.
struct Truncated {
    sent: bool,
}

impl hyper::body::Body for Truncated {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.sent {
            return Poll::Ready(Some(Err("backend failed mid-response".into())));
        }
        self.sent = true;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(
            b"0123456789abcdef",
        )))))
    }
}

/// A TCP server that writes back every byte it reads, for L4 vservers.
#[derive(Debug)]
pub struct EchoBackend {
    addr: SocketAddr,
    accept: JoinHandle<()>,
    connections: Arc<AtomicU64>,
}

impl EchoBackend {
    /// Starts on `addr`, or on another free port of its IP if that one was taken since it
    /// was picked: use [`EchoBackend::addr`].
    pub async fn start(addr: SocketAddr) -> EchoBackend {
        let (addr, listened) = listen_or_move(addr);
        let listener = listened
            .unwrap_or_else(|error| panic!("echo backend cannot listen on {addr}: {error}"));
        let connections = Arc::new(AtomicU64::new(0));
        let counted = connections.clone();
        let accept = tokio::spawn(async move {
            let mut tasks = JoinSet::new();
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    continue;
                };
                counted.fetch_add(1, Relaxed);
                while tasks.try_join_next().is_some() {}
                tasks.spawn(async move {
                    let _ = stream.set_nodelay(true);
                    let (reader, mut writer) = stream.split();
                    let mut reader = tokio::io::BufReader::with_capacity(256 * 1024, reader);
                    let _ = tokio::io::copy_buf(&mut reader, &mut writer).await;
                    let _ = tokio::io::AsyncWriteExt::shutdown(&mut writer).await;
                });
            }
        });
        EchoBackend {
            addr,
            accept,
            connections,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.connections.load(Relaxed)
    }
}

impl Drop for EchoBackend {
    fn drop(&mut self) {
        // Aborting the accept task drops its JoinSet, which aborts every connection.
        self.accept.abort();
    }
}
