//! HTTP clients: [`H1`] (HTTP/1.1 keep-alive) and [`H2`] (HTTP/2) over any stream, one-shot
//! [`get`], and [`Load`], a steady keep-alive load that counts every failed request.
//!
//! Every request has a deadline ([`REQUEST_TIMEOUT`]) so a wedged proxy fails a test instead of
//! hanging it.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode, Version};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpSocket, TcpStream};
use tokio::task::JoinHandle;

/// The longest any one request (head and body) may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A response, read to the end.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: StatusCode,
    pub version: Version,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    /// The `x-backend` header: which backend answered.
    pub fn backend(&self) -> Option<&str> {
        self.headers
            .get("x-backend")
            .and_then(|value| value.to_str().ok())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Connects a TCP stream to `addr`, from `source` (port chosen by the kernel) when given.
pub async fn connect_tcp(addr: SocketAddr, source: Option<IpAddr>) -> anyhow::Result<TcpStream> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(source) = source {
        socket
            .bind(SocketAddr::new(source, 0))
            .with_context(|| format!("bind {source}:0"))?;
    }
    let stream = tokio::time::timeout(REQUEST_TIMEOUT, socket.connect(addr))
        .await
        .with_context(|| format!("connect to {addr} timed out"))?
        .with_context(|| format!("connect to {addr}"))?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// An HTTP/1.1 keep-alive connection.
#[derive(Debug)]
pub struct H1 {
    sender: http1::SendRequest<Full<Bytes>>,
    connection: JoinHandle<()>,
    host: String,
}

impl H1 {
    /// A plain TCP connection to `addr`.
    pub async fn connect(addr: SocketAddr) -> anyhow::Result<H1> {
        H1::over(connect_tcp(addr, None).await?, &addr.to_string()).await
    }

    /// A plain TCP connection to `addr` from the address `source`.
    pub async fn connect_from(source: IpAddr, addr: SocketAddr) -> anyhow::Result<H1> {
        H1::over(connect_tcp(addr, Some(source)).await?, &addr.to_string()).await
    }

    /// HTTP/1.1 over an established stream (TLS, ...); `host` goes in the `Host` header.
    pub async fn over<IO>(io: IO, host: &str) -> anyhow::Result<H1>
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (sender, connection) = http1::handshake(TokioIo::new(io)).await?;
        let connection = tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(H1 {
            sender,
            connection,
            host: host.to_owned(),
        })
    }

    /// Whether the server closed the connection.
    pub fn is_closed(&self) -> bool {
        self.sender.is_closed()
    }

    pub async fn get(&mut self, path: &str) -> anyhow::Result<Reply> {
        let request = Request::get(path)
            .header("host", &self.host)
            .body(Full::new(Bytes::new()))?;
        self.send(request).await
    }

    /// Sends `request` (add a `Host` header yourself) and reads the whole response.
    pub async fn send(&mut self, request: Request<Full<Bytes>>) -> anyhow::Result<Reply> {
        tokio::time::timeout(REQUEST_TIMEOUT, async {
            self.sender.ready().await.context("connection not ready")?;
            let response = self.sender.send_request(request).await?;
            read_reply(response).await
        })
        .await
        .context("request timed out")?
    }

    /// Like [`H1::send`], but tells "the connection was closed before the request went out"
    /// (`Ok(None)`: nothing was sent, safe to send again elsewhere) from other failures.
    pub async fn try_send(
        &mut self,
        request: Request<Full<Bytes>>,
    ) -> anyhow::Result<Option<Reply>> {
        tokio::time::timeout(REQUEST_TIMEOUT, async {
            if self.sender.ready().await.is_err() {
                return Ok(None);
            }
            match self.sender.try_send_request(request).await {
                Ok(response) => read_reply(response).await.map(Some),
                Err(mut error) => match error.take_message() {
                    Some(_) => Ok(None),
                    None => Err(error.into_error().into()),
                },
            }
        })
        .await
        .context("request timed out")?
    }
}

impl Drop for H1 {
    fn drop(&mut self) {
        self.connection.abort();
    }
}

/// An HTTP/2 connection; clones share it.
#[derive(Debug, Clone)]
pub struct H2 {
    sender: http2::SendRequest<Full<Bytes>>,
    authority: String,
    scheme: &'static str,
}

impl H2 {
    /// Cleartext HTTP/2 with prior knowledge (h2c) to `addr`.
    pub async fn connect(addr: SocketAddr) -> anyhow::Result<H2> {
        H2::over(connect_tcp(addr, None).await?, "http", &addr.to_string()).await
    }

    /// HTTP/2 over an established stream: `scheme` and `authority` go in the pseudo-headers.
    pub async fn over<IO>(io: IO, scheme: &'static str, authority: &str) -> anyhow::Result<H2>
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (sender, connection) = http2::handshake(TokioExecutor::new(), TokioIo::new(io)).await?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(H2 {
            sender,
            authority: authority.to_owned(),
            scheme,
        })
    }

    pub async fn get(&mut self, path: &str) -> anyhow::Result<Reply> {
        let uri = format!("{}://{}{path}", self.scheme, self.authority);
        let request = Request::get(uri)
            .version(Version::HTTP_2)
            .body(Full::new(Bytes::new()))?;
        self.send(request).await
    }

    /// Sends `request` (an absolute URI: it gives `:scheme` and `:authority`) and reads the
    /// whole response.
    pub async fn send(&mut self, request: Request<Full<Bytes>>) -> anyhow::Result<Reply> {
        tokio::time::timeout(REQUEST_TIMEOUT, async {
            self.sender.ready().await.context("connection not ready")?;
            let response = self.sender.send_request(request).await?;
            read_reply(response).await
        })
        .await
        .context("request timed out")?
    }
}

async fn read_reply(response: http::Response<hyper::body::Incoming>) -> anyhow::Result<Reply> {
    let (parts, body) = response.into_parts();
    let body = body
        .collect()
        .await
        .with_context(|| format!("reading the body of a {} response", parts.status))?
        .to_bytes();
    Ok(Reply {
        status: parts.status,
        version: parts.version,
        headers: parts.headers,
        body,
    })
}

/// One GET on a fresh HTTP/1.1 connection.
pub async fn get(addr: SocketAddr, path: &str) -> anyhow::Result<Reply> {
    H1::connect(addr).await?.get(path).await
}

/// A steady load: `connections` keep-alive HTTP/1.1 clients, each sending `GET path` in a loop
/// until [`Load::stop`]. A request fails when it gets no response, a status other than 200, or
/// a body that is not the name in its `x-backend` header. A keep-alive connection that the
/// proxy closed between requests is reopened (that is not a failure: nothing was sent), as any
/// HTTP client does.
#[derive(Debug)]
pub struct Load {
    stop: Arc<AtomicBool>,
    tasks: Vec<JoinHandle<()>>,
    shared: Arc<LoadShared>,
}

#[derive(Debug, Default)]
struct LoadShared {
    ok: AtomicU64,
    failed: AtomicU64,
    errors: Mutex<Vec<String>>,
    by_backend: Mutex<BTreeMap<String, u64>>,
}

/// What a [`Load`] saw.
#[derive(Debug, Clone)]
pub struct LoadReport {
    pub ok: u64,
    pub failed: u64,
    /// The first failures, described.
    pub errors: Vec<String>,
    /// Successful responses per `x-backend`.
    pub by_backend: BTreeMap<String, u64>,
}

/// Failures described in a report, at most.
const KEPT_ERRORS: usize = 20;

impl Load {
    pub fn start(addr: SocketAddr, connections: usize, path: &str) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let shared = Arc::new(LoadShared::default());
        let tasks = (0..connections)
            .map(|_| {
                let stop = stop.clone();
                let shared = shared.clone();
                let path = path.to_owned();
                tokio::spawn(async move {
                    let mut client: Option<H1> = None;
                    while !stop.load(Relaxed) {
                        let result = load_one(&mut client, addr, &path).await;
                        match result {
                            Ok(backend) => {
                                shared.ok.fetch_add(1, Relaxed);
                                *shared
                                    .by_backend
                                    .lock()
                                    .expect("lock")
                                    .entry(backend)
                                    .or_default() += 1;
                            }
                            Err(error) => {
                                shared.failed.fetch_add(1, Relaxed);
                                let mut errors = shared.errors.lock().expect("lock");
                                if errors.len() < KEPT_ERRORS {
                                    errors.push(format!("{error:#}"));
                                }
                                client = None;
                            }
                        }
                    }
                })
            })
            .collect();
        Load {
            stop,
            tasks,
            shared,
        }
    }

    /// Successful requests so far.
    pub fn ok(&self) -> u64 {
        self.shared.ok.load(Relaxed)
    }

    /// Failed requests so far.
    pub fn failed(&self) -> u64 {
        self.shared.failed.load(Relaxed)
    }

    /// Successful responses from `backend` so far.
    pub fn ok_from(&self, backend: &str) -> u64 {
        self.shared
            .by_backend
            .lock()
            .expect("lock")
            .get(backend)
            .copied()
            .unwrap_or(0)
    }

    /// Waits until `n` more requests have succeeded (false at the deadline).
    pub async fn wait_for_more(&self, n: u64, timeout: Duration) -> bool {
        let target = self.ok() + n;
        crate::wait_until(timeout, || self.ok() >= target).await
    }

    /// Stops every client (each finishes its current request) and reports.
    pub async fn stop(self) -> LoadReport {
        self.stop.store(true, Relaxed);
        for task in self.tasks {
            let _ = task.await;
        }
        LoadReport {
            ok: self.shared.ok.load(Relaxed),
            failed: self.shared.failed.load(Relaxed),
            errors: self.shared.errors.lock().expect("lock").clone(),
            by_backend: self.shared.by_backend.lock().expect("lock").clone(),
        }
    }
}

/// One request of a [`Load`]: the answering backend's name, or why it failed.
async fn load_one(client: &mut Option<H1>, addr: SocketAddr, path: &str) -> anyhow::Result<String> {
    // A connection closed before the request went out is reopened, once per request.
    for _ in 0..2 {
        if client.as_ref().is_none_or(H1::is_closed) {
            *client = Some(H1::connect(addr).await?);
        }
        let connection = client.as_mut().expect("connected just above");
        let request = Request::get(path)
            .header("host", addr.to_string())
            .body(Full::new(Bytes::new()))?;
        let Some(reply) = connection.try_send(request).await? else {
            *client = None;
            continue;
        };
        let backend = reply.backend().unwrap_or_default().to_owned();
        if reply.status != StatusCode::OK || backend.is_empty() || reply.body != backend.as_bytes()
        {
            bail!(
                "{} from {:?}: {}",
                reply.status,
                reply.backend(),
                reply.text().trim_end()
            );
        }
        return Ok(backend);
    }
    bail!("the connection was closed twice before the request could be sent")
}

/// GETs every path in `paths` over `connections` parallel keep-alive HTTP/1.1 connections and
/// returns the replies in the order of `paths`. Any failure or non-200 reply is an error.
pub async fn fetch_all(
    addr: SocketAddr,
    paths: &[String],
    connections: usize,
) -> anyhow::Result<Vec<Reply>> {
    let connections = connections.clamp(1, paths.len().max(1));
    let mut tasks = Vec::new();
    for worker in 0..connections {
        let mine: Vec<(usize, String)> = paths
            .iter()
            .enumerate()
            .skip(worker)
            .step_by(connections)
            .map(|(index, path)| (index, path.clone()))
            .collect();
        tasks.push(tokio::spawn(async move {
            let mut client = H1::connect(addr).await?;
            let mut replies = Vec::with_capacity(mine.len());
            for (index, path) in mine {
                if client.is_closed() {
                    client = H1::connect(addr).await?;
                }
                let reply = client
                    .get(&path)
                    .await
                    .with_context(|| format!("GET {path}"))?;
                if reply.status != StatusCode::OK {
                    bail!("GET {path}: {} {}", reply.status, reply.text().trim_end());
                }
                replies.push((index, reply));
            }
            anyhow::Ok(replies)
        }));
    }
    let mut all = Vec::with_capacity(paths.len());
    for task in tasks {
        all.extend(task.await??);
    }
    all.sort_by_key(|(index, _)| *index);
    Ok(all.into_iter().map(|(_, reply)| reply).collect())
}

/// How many replies each backend (`x-backend`) gave.
pub fn tally(replies: &[Reply]) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for reply in replies {
        *counts
            .entry(reply.backend().unwrap_or("<none>").to_owned())
            .or_default() += 1;
    }
    counts
}
