//! The origins: `bench backend` (HTTP) and `bench tcp-backend` (L4 sink/source). Each is a
//! single-threaded tokio runtime, so its CPU is one process on one core, like the proxy's.
//! `bench backend --listeners N` answers on N loopback addresses at once (the members of a
//! large servicegroup, for `reconfig`); [`WatchedBackend`] answers inside the bench process and
//! notes when each request came.

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio::time::{Duration, Instant};

/// What every request gets: `200`, 19 bytes, `Content-Length` (hyper sets it from the body).
pub const BODY: &[u8] = b"hello from backend\n";

/// Size of the L4 sink/source buffers and of the client's writes (iperf3's default is 128 KiB).
pub const TCP_CHUNK: usize = 128 * 1024;

fn current_thread() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

async fn bind(listen: SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))
}

/// Accepts forever; a failed accept (e.g. out of file descriptors) is logged and retried.
async fn accept_loop<F, Fut>(listener: TcpListener, handle: F)
where
    F: Fn(TcpStream) -> Fut,
    Fut: Future<Output = ()> + 'static,
{
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let _ = stream.set_nodelay(true);
                tokio::task::spawn_local(handle(stream));
            }
            Err(error) => {
                eprintln!("backend: accept failed: {error}");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// `bench backend`: HTTP/1.1 keep-alive, hyper, one thread, on `listeners` addresses
/// ([`consecutive_addrs`] from `first`).
pub fn serve_http(first: SocketAddr, listeners: usize) -> Result<()> {
    let addrs = consecutive_addrs(first, listeners)?;
    let local = tokio::task::LocalSet::new();
    current_thread()?.block_on(local.run_until(async move {
        // Every address is bound before any is served, so a clash fails the start.
        let mut bound = Vec::with_capacity(addrs.len());
        for addr in addrs {
            bound.push(bind(addr).await?);
        }
        let mut loops = Vec::with_capacity(bound.len());
        for listener in bound {
            loops.push(tokio::task::spawn_local(accept_loop(listener, serve_hello)));
        }
        for accepting in loops {
            accepting.await.context("accept loop")?;
        }
        Ok(())
    }))
}

async fn serve_hello(stream: TcpStream) {
    let service = service_fn(|_request: Request<hyper::body::Incoming>| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(BODY))))
    });
    let _ = http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

/// `count` addresses on `first`'s port: `first`, then the next IPv4 addresses, skipping those
/// ending in `.0` or `.255` (so no member looks like a network or broadcast address). More than
/// one must stay inside 127.0.0.0/8: the bench only ever listens on loopback.
pub fn consecutive_addrs(first: SocketAddr, count: usize) -> Result<Vec<SocketAddr>> {
    if count <= 1 {
        return Ok(vec![first]);
    }
    let IpAddr::V4(start) = first.ip() else {
        bail!("{count} listeners need an IPv4 first address, not {first}");
    };
    if !start.is_loopback() {
        bail!("{count} listeners must be on loopback (127.0.0.0/8), not from {start}");
    }
    let mut addrs = Vec::with_capacity(count);
    let mut next = u32::from(start);
    while addrs.len() < count {
        let ip = Ipv4Addr::from(next);
        if !ip.is_loopback() || ip == Ipv4Addr::new(127, 255, 255, 255) {
            bail!("{count} addresses from {start} run past 127.255.255.254");
        }
        if !matches!(ip.octets()[3], 0 | 255) {
            addrs.push(SocketAddr::new(IpAddr::V4(ip), first.port()));
        }
        next += 1;
    }
    Ok(addrs)
}

/// The L4 protocol: the client sends `U` or `D` and a big-endian `u64` byte count. For `U`
/// (upload) the server reads and discards that many bytes and answers one byte; for `D`
/// (download) it writes that many bytes. Then it waits for the client to close.
pub const UPLOAD: u8 = b'U';
pub const DOWNLOAD: u8 = b'D';

/// `bench tcp-backend`: the sink/source for `bench tcp`.
pub fn serve_tcp(listen: SocketAddr) -> Result<()> {
    let local = tokio::task::LocalSet::new();
    current_thread()?.block_on(local.run_until(async move {
        let listener = bind(listen).await?;
        accept_loop(listener, |stream| async move {
            if let Err(error) = sink_or_source(stream).await {
                eprintln!("tcp-backend: {error:#}");
            }
        })
        .await;
        Ok(())
    }))
}

async fn sink_or_source(mut stream: TcpStream) -> Result<()> {
    let mut header = [0u8; 9];
    stream.read_exact(&mut header).await?;
    let mut remaining = u64::from_be_bytes(header[1..].try_into()?);
    let mut buf = vec![0u8; TCP_CHUNK];
    match header[0] {
        UPLOAD => {
            while remaining > 0 {
                let want = buf
                    .len()
                    .min(usize::try_from(remaining).unwrap_or(usize::MAX));
                let n = stream.read(&mut buf[..want]).await?;
                if n == 0 {
                    bail!("client closed with {remaining} bytes to go");
                }
                remaining -= n as u64;
            }
            stream.write_all(b"k").await?;
        }
        DOWNLOAD => {
            while remaining > 0 {
                let n = buf
                    .len()
                    .min(usize::try_from(remaining).unwrap_or(usize::MAX));
                stream.write_all(&buf[..n]).await?;
                remaining -= n as u64;
            }
        }
        other => bail!("unknown command byte {other:#x}"),
    }
    // Wait for the client's close so the connection ends from its side.
    while stream.read(&mut buf).await? > 0 {}
    Ok(())
}

/// An origin inside the bench process (on its runtime) that notes when each request came, so a
/// bench can tell when a proxy starts or stops sending it requests.
pub struct WatchedBackend {
    pub addr: SocketAddr,
    arrivals: Arc<Mutex<Vec<Instant>>>,
    task: tokio::task::JoinHandle<()>,
}

impl WatchedBackend {
    pub async fn start(addr: SocketAddr) -> Result<WatchedBackend> {
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding {addr}"))?;
        let arrivals = Arc::new(Mutex::new(Vec::new()));
        let task = tokio::spawn(serve_watched(listener, arrivals.clone()));
        Ok(WatchedBackend {
            addr,
            arrivals,
            task,
        })
    }

    fn arrivals(&self) -> std::sync::MutexGuard<'_, Vec<Instant>> {
        self.arrivals.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Requests that arrived at or after `since`.
    pub fn requests_since(&self, since: Instant) -> usize {
        self.arrivals().iter().filter(|t| **t >= since).count()
    }

    /// The time from `since` to the first request at or after it; none by `since + within`
    /// is an error.
    pub async fn first_request_since(&self, since: Instant, within: Duration) -> Result<Duration> {
        let deadline = since + within;
        loop {
            if let Some(first) = self.arrivals().iter().find(|t| **t >= since) {
                return Ok(*first - since);
            }
            if Instant::now() >= deadline {
                bail!("{} got no request within {within:?}", self.addr);
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}

impl Drop for WatchedBackend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Answers like `bench backend`; the connections end with the accept loop.
async fn serve_watched(listener: TcpListener, arrivals: Arc<Mutex<Vec<Instant>>>) {
    let mut connections = JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let arrivals = arrivals.clone();
        connections.spawn(async move {
            let service = hyper::service::service_fn(move |_request| {
                let now = Instant::now();
                arrivals
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(now);
                async { Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(BODY)))) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
        while connections.try_join_next().is_some() {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    #[test]
    fn consecutive_addresses_skip_network_and_broadcast_looking_ones() {
        let addrs = consecutive_addrs(addr("127.1.0.253:8000"), 4).unwrap();
        let expected = [
            "127.1.0.253:8000",
            "127.1.0.254:8000",
            "127.1.1.1:8000",
            "127.1.1.2:8000",
        ];
        assert_eq!(addrs, expected.map(addr));
    }

    #[test]
    fn one_listener_is_the_address_given() {
        assert_eq!(
            consecutive_addrs(addr("[::1]:80"), 1).unwrap(),
            [addr("[::1]:80")]
        );
    }

    #[test]
    fn many_listeners_stay_on_loopback() {
        assert!(consecutive_addrs(addr("10.0.0.1:80"), 2).is_err());
        assert!(consecutive_addrs(addr("[::1]:80"), 2).is_err());
        assert!(consecutive_addrs(addr("127.255.255.253:80"), 3).is_err());
        assert_eq!(
            consecutive_addrs(addr("127.1.0.1:80"), 10_000)
                .unwrap()
                .len(),
            10_000
        );
    }
}
