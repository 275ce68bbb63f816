//! The origins: `bench backend` (HTTP) and `bench tcp-backend` (L4 sink/source). Each is a
//! single-threaded tokio runtime, so its CPU is one process on one core, like the proxy's.

use std::convert::Infallible;
use std::net::SocketAddr;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What every request gets: `200`, 19 bytes, `Content-Length` (hyper sets it from the body).
pub const BODY: &[u8] = b"hello from backend\n";

/// Size of the L4 sink/source buffers and of the client's writes (iperf3's default is 128 KiB).
pub const TCP_CHUNK: usize = 128 * 1024;

fn current_thread() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// Accepts forever; a failed accept (e.g. out of file descriptors) is logged and retried.
async fn accept_loop<F, Fut>(listen: SocketAddr, handle: F) -> Result<()>
where
    F: Fn(TcpStream) -> Fut,
    Fut: Future<Output = ()> + 'static,
{
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let _ = stream.set_nodelay(true);
                tokio::task::spawn_local(handle(stream));
            }
            Err(error) => {
                eprintln!("backend: accept failed: {error}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    }
}

/// `bench backend`: HTTP/1.1 keep-alive, hyper, one thread.
pub fn serve_http(listen: SocketAddr) -> Result<()> {
    let local = tokio::task::LocalSet::new();
    current_thread()?.block_on(local.run_until(accept_loop(listen, |stream| async move {
        let service = service_fn(|_request: Request<hyper::body::Incoming>| async {
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(BODY))))
        });
        let _ = http1::Builder::new()
            .serve_connection(TokioIo::new(stream), service)
            .await;
    })))
}

/// The L4 protocol: the client sends `U` or `D` and a big-endian `u64` byte count. For `U`
/// (upload) the server reads and discards that many bytes and answers one byte; for `D`
/// (download) it writes that many bytes. Then it waits for the client to close.
pub const UPLOAD: u8 = b'U';
pub const DOWNLOAD: u8 = b'D';

/// `bench tcp-backend`: the sink/source for `bench tcp`.
pub fn serve_tcp(listen: SocketAddr) -> Result<()> {
    let local = tokio::task::LocalSet::new();
    current_thread()?.block_on(local.run_until(accept_loop(listen, |stream| async move {
        if let Err(error) = sink_or_source(stream).await {
            eprintln!("tcp-backend: {error:#}");
        }
    })))
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
