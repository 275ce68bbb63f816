//! `ballast vm`: the small HTTP workload that local-cloud VMs run (and that examples and tests
//! use as a backend). Every response names the VM, so an operator can see balancing at work.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;

/// Serves until the process ends: `/healthz` → `200 ok`, anything else → `200 <name>`, with an
/// `X-Ballast-Vm` header.
pub async fn serve(listen: SocketAddr, name: String) -> std::io::Result<()> {
    let listener = crate::listener::bind(listen)?;
    tracing::info!(address = %listen, name, "vm workload listening");
    let name: Arc<str> = name.into();
    loop {
        let (stream, _) = listener.accept().await?;
        let name = name.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| respond(request, name.clone()));
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn respond(
    request: Request<Incoming>,
    name: Arc<str>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let body = if request.uri().path() == "/healthz" {
        Bytes::from_static(b"ok\n")
    } else {
        Bytes::from(format!("{name}\n"))
    };
    let response = Response::builder()
        .status(StatusCode::OK)
        .header("x-ballast-vm", &*name)
        .header("content-type", "text/plain")
        .body(Full::new(body))
        .expect("static parts are valid");
    Ok(response)
}
