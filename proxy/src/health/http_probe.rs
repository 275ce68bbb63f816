//! The `HTTP` and `HTTP-ECV` probes: one HTTP/1.1 request (over TLS with `secure = "YES"`),
//! then its status code (`HTTP`: one of `respcode`) or its body (`HTTP-ECV`: contains
//! `recv`; at most [`MAX_BODY`] bytes are read).
//!
//! The request carries `Host` (the member's `ip:port`, unless `customheaders` has one),
//! `User-Agent: ballast-monitor`, `Connection: close` and the `customheaders`. Like NetScaler,
//! a secure probe does not verify the member's certificate: members often have self-signed
//! ones, and the probe asks about health, not identity.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use http::header::{CONNECTION, HOST, HeaderName, HeaderValue, USER_AGENT};
use http::{Request, Response};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::Failure;
use crate::config::Probe;
use crate::config::http_monitor::MAX_BODY;
use crate::member_tls::Unverified;

/// Sends `probe` (an `HTTP` one) on `stream`, connected to `addr`, and judges the answer.
pub(super) async fn probe(
    probe: &Probe,
    stream: TcpStream,
    addr: SocketAddr,
) -> Result<(), Failure> {
    let Probe::Http {
        method,
        path,
        resp_codes,
        recv,
        headers,
        secure,
    } = probe
    else {
        return Ok(());
    };
    let _ = stream.set_nodelay(true);
    let host = headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("host"))
        .map_or_else(|| addr.to_string(), |(_, value)| value.clone());
    let mut request = Request::builder()
        .method(method.as_str())
        .uri(path.as_str())
        .header(HOST, &host)
        .header(USER_AGENT, "ballast-monitor")
        .header(CONNECTION, "close");
    for (name, value) in headers
        .iter()
        .filter(|(n, _)| !n.eq_ignore_ascii_case("host"))
    {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            request = request.header(name, value);
        }
    }
    let request = request
        .body(Empty::<Bytes>::new())
        .map_err(|e| format!("cannot build the request: {e}"))?;
    let response = if *secure {
        let name = server_name(&host, addr);
        let tls = TlsConnector::from(tls_config())
            .connect(name, stream)
            .await
            .map_err(|e| format!("TLS handshake: {e}"))?;
        exchange(tls, request, recv.is_some()).await?
    } else {
        exchange(stream, request, recv.is_some()).await?
    };
    let (code, body) = response;
    match recv {
        Some(expected) => {
            let expected_bytes = expected.as_bytes();
            // `windows(0)` would panic; validation refuses an empty `recv` anyway.
            let found = expected_bytes.is_empty()
                || body
                    .windows(expected_bytes.len())
                    .any(|w| w == expected_bytes);
            if found {
                Ok(())
            } else {
                Err(format!("response body did not contain {expected:?}").into())
            }
        }
        None if resp_codes.iter().any(|range| range.contains(&code)) => Ok(()),
        None => Err(format!("status {code} is not an expected respcode").into()),
    }
}

/// Sends `request` and returns the status and (when `read_body`) the first [`MAX_BODY`]
/// bytes of the body.
async fn exchange<IO>(
    io: IO,
    request: Request<Empty<Bytes>>,
    read_body: bool,
) -> Result<(u16, Vec<u8>), Failure>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| format!("send request: {e}"))?;
    let driver = async {
        // Its errors reach the request or the body; it must keep running until they end.
        let _ = connection.await;
        std::future::pending::<()>().await;
    };
    let talk = async {
        let response: Response<Incoming> = sender
            .send_request(request)
            .await
            .map_err(|e| format!("read response: {e}"))?;
        let code = response.status().as_u16();
        let mut body = Vec::new();
        if read_body {
            let mut incoming = response.into_body();
            while body.len() < MAX_BODY {
                let Some(frame) = incoming.frame().await else {
                    break;
                };
                let frame = frame.map_err(|e| format!("read response body: {e}"))?;
                if let Some(data) = frame.data_ref() {
                    let room = MAX_BODY - body.len();
                    body.extend_from_slice(&data[..data.len().min(room)]);
                }
            }
        }
        Ok::<_, Failure>((code, body))
    };
    tokio::select! {
        result = talk => result,
        () = driver => unreachable!("the driver never ends"),
    }
}

/// SNI: the `Host` (without its port) when it is a DNS name, else the member's address (sent
/// without SNI).
fn server_name(host: &str, addr: SocketAddr) -> ServerName<'static> {
    let name = host
        .rsplit_once(':')
        .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
        .map_or(host, |(name, _)| name);
    ServerName::try_from(name.to_owned()).unwrap_or_else(|_| ServerName::from(addr.ip()))
}

/// One client config for every secure probe: no certificate verification, the handshake's
/// own signatures still checked.
fn tls_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let config = rustls::ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .expect("ring supports the default protocol versions")
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(Unverified::accepting(provider)))
                .with_no_client_auth();
            Arc::new(config)
        })
        .clone()
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    /// A member that answers one probe with `response` (written as given).
    async fn answering(response: Vec<u8>) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut head = [0u8; 1024];
            let _ = stream.read(&mut head).await;
            let _ = stream.write_all(&response).await;
        });
        addr
    }

    fn ecv(recv: &str) -> Probe {
        Probe::Http {
            method: "GET".into(),
            path: "/status".into(),
            resp_codes: Vec::new(),
            recv: Some(recv.into()),
            headers: Vec::new(),
            secure: false,
        }
    }

    async fn run(monitor: &Probe, response: Vec<u8>) -> Result<(), String> {
        let addr = answering(response).await;
        let stream = TcpStream::connect(addr).await.unwrap();
        probe(monitor, stream, addr)
            .await
            .map_err(|f| f.to_string())
    }

    #[tokio::test]
    async fn recv_is_found_across_chunks() {
        let response = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nall\r\n5\r\n is o\r\n1\r\nk\r\n0\r\n\r\n";
        assert_eq!(run(&ecv("is ok"), response.to_vec()).await, Ok(()));
    }

    #[tokio::test]
    async fn only_the_first_64_kib_of_the_body_are_read() {
        let mut body = vec![b'x'; MAX_BODY];
        body.extend_from_slice(b"ok");
        let mut response =
            format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
        response.extend_from_slice(&body);
        assert_eq!(
            run(&ecv("ok"), response.clone()).await,
            Err("response body did not contain \"ok\"".to_owned())
        );
        assert_eq!(run(&ecv("xxxx"), response).await, Ok(()));
    }

    #[tokio::test]
    async fn an_http_probe_checks_the_status_and_not_the_body() {
        let monitor = Probe::Http {
            method: "GET".into(),
            path: "/".into(),
            resp_codes: vec![200..=299],
            recv: None,
            headers: Vec::new(),
            secure: false,
        };
        let ok = b"HTTP/1.1 204 No Content\r\n\r\n".to_vec();
        assert_eq!(run(&monitor, ok).await, Ok(()));
        let failed = b"HTTP/1.1 503 Unavailable\r\nContent-Length: 2\r\n\r\nok".to_vec();
        assert_eq!(
            run(&monitor, failed).await,
            Err("status 503 is not an expected respcode".to_owned())
        );
        let garbage = b"SSH-2.0-OpenSSH_9.2\r\n".to_vec();
        let reason = run(&monitor, garbage).await.unwrap_err();
        assert!(reason.starts_with("read response: "), "{reason}");
    }

    #[test]
    fn sni_is_the_host_name_without_its_port() {
        let addr: SocketAddr = "127.0.0.5:8443".parse().unwrap();
        assert_eq!(
            server_name("app.example:8443", addr),
            ServerName::try_from("app.example").unwrap()
        );
        assert_eq!(
            server_name("127.0.0.5:8443", addr),
            ServerName::from(addr.ip())
        );
    }
}
