//! Serving one client connection with HTTP/1.1 or HTTP/2 (cleartext prior knowledge, or
//! negotiated by ALPN on TLS), until it closes or a graceful shutdown asks it to.
//!
//! Limits come from `[httpprofile]`: a request head over `maxheaderlen` gets `431`, a client
//! that does not send its head within `clientheadertimeout` is disconnected. On shutdown or when
//! the vserver is removed, HTTP/1.1 connections close after their current response and HTTP/2
//! connections get GOAWAY.

use std::convert::Infallible;
use std::sync::Arc;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::sync::CancellationToken;

use super::proxy::{ConnContext, handle};
use crate::config::HttpProfile;

pub async fn serve_http<IO>(
    io: IO,
    ctx: Arc<ConnContext>,
    profile: &HttpProfile,
    shutdown: CancellationToken,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(profile.client_header_timeout)
        .max_buf_size(profile.max_header_len)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(profile.max_header_len as u32);
    let service = service_fn(move |request| {
        let ctx = ctx.clone();
        async move { Ok::<_, Infallible>(handle(request, &ctx).await) }
    });
    let connection = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = shutdown.cancelled() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(error) = result {
        tracing::debug!(%error, "client connection ended with an error");
    }
}
