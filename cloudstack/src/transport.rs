//! One HTTP/1.1 exchange with the API endpoint, over TCP or TLS (rustls, trusting a configured
//! CA file or else the platform's trust store), with a deadline.
//!
//! A connection per call: an autoscaler makes a few calls a second at most, and a fresh
//! connection never trips over a server that closed an idle one (CloudStack's integration port
//! turns keep-alive off anyway).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::Request;
use hyper_util::rt::TokioIo;
use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};
use tokio_rustls::TlsConnector;

use crate::error::CloudError;

/// Answers larger than this are refused (a `listVirtualMachines` page of 500 VMs is ~1 MB).
const MAX_BODY: usize = 32 * 1024 * 1024;

/// Where the API lives: `http[s]://host[:port]/path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub https: bool,
    pub host: String,
    pub port: u16,
    pub path: String,
}

impl Endpoint {
    /// Parses `http://127.0.0.1:8080/client/api` (path defaults to `/client/api`).
    pub fn parse(url: &str) -> Result<Self, CloudError> {
        let bad = |why: &str| CloudError::Setup(format!("endpoint {url:?}: {why}"));
        let (https, rest) = if let Some(rest) = url.strip_prefix("http://") {
            (false, rest)
        } else if let Some(rest) = url.strip_prefix("https://") {
            (true, rest)
        } else {
            return Err(bad("must start with http:// or https://"));
        };
        let (authority, path) = match rest.find('/') {
            Some(slash) => (&rest[..slash], &rest[slash..]),
            None => (rest, "/client/api"),
        };
        let default_port = if https { 443 } else { 80 };
        let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
            let (host, after) = bracketed
                .split_once(']')
                .ok_or_else(|| bad("unclosed '['"))?;
            let port = match after.strip_prefix(':') {
                Some(port) => port.parse().map_err(|_| bad("bad port"))?,
                None if after.is_empty() => default_port,
                None => return Err(bad("junk after ']'")),
            };
            (host.to_string(), port)
        } else {
            match authority.rsplit_once(':') {
                Some((host, port)) => {
                    (host.to_string(), port.parse().map_err(|_| bad("bad port"))?)
                }
                None => (authority.to_string(), default_port),
            }
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        if path.contains('?') || path.contains('#') {
            return Err(bad("no query or fragment allowed"));
        }
        Ok(Self {
            https,
            host,
            port,
            path: path.to_string(),
        })
    }

    fn host_header(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        match (self.https, self.port) {
            (false, 80) | (true, 443) => host,
            _ => format!("{host}:{}", self.port),
        }
    }
}

/// How a call is sent. Both are signed the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HttpMethod {
    /// Parameters in the query string.
    #[default]
    Get,
    /// Parameters in an `application/x-www-form-urlencoded` body.
    Post,
}

/// Sends requests to one endpoint.
#[derive(Clone)]
pub struct Transport {
    endpoint: Endpoint,
    tls: Option<TlsConnector>,
    timeout: Duration,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("endpoint", &self.endpoint)
            .field("tls", &self.tls.is_some())
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Transport {
    /// For `https://`, trusts `ca_file` (PEM) when given, or else the platform's trust store.
    pub fn new(
        endpoint: Endpoint,
        ca_file: Option<&Path>,
        timeout: Duration,
    ) -> Result<Self, CloudError> {
        let tls = if endpoint.https {
            Some(tls_connector(ca_file)?)
        } else {
            None
        };
        Ok(Self {
            endpoint,
            tls,
            timeout,
        })
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Sends `form` (already encoded and signed) and returns the status and body, or why no
    /// answer came and whether the request went out.
    pub async fn send(&self, method: HttpMethod, form: String) -> Result<(u16, Bytes), SendError> {
        let deadline = Instant::now() + self.timeout;
        let unconnected = || SendError::NotSent(TransportError::ConnectTimeout(self.timeout));
        let late = || SendError::AnswerLost(TransportError::Timeout(self.timeout));
        let request = self
            .request(method, form)
            .map_err(|error| SendError::NotSent(TransportError::Request(error)))?;
        let tcp = timeout_at(deadline, self.connect())
            .await
            .map_err(|_| unconnected())?
            .map_err(SendError::NotSent)?;
        let Some(connector) = &self.tls else {
            return timeout_at(deadline, exchange_on(tcp, request))
                .await
                .map_err(|_| late())?;
        };
        let tls = timeout_at(deadline, self.handshake(connector, tcp))
            .await
            .map_err(|_| unconnected())?
            .map_err(SendError::NotSent)?;
        timeout_at(deadline, exchange_on(tls, request))
            .await
            .map_err(|_| late())?
    }

    async fn connect(&self) -> Result<TcpStream, TransportError> {
        let tcp = TcpStream::connect((self.endpoint.host.as_str(), self.endpoint.port))
            .await
            .map_err(TransportError::Connect)?;
        let _ = tcp.set_nodelay(true);
        Ok(tcp)
    }

    async fn handshake(
        &self,
        connector: &TlsConnector,
        tcp: TcpStream,
    ) -> Result<tokio_rustls::client::TlsStream<TcpStream>, TransportError> {
        let name = ServerName::try_from(self.endpoint.host.clone())
            .map_err(|_| TransportError::ServerName(self.endpoint.host.clone()))?;
        connector
            .connect(name, tcp)
            .await
            .map_err(TransportError::Tls)
    }

    fn request(
        &self,
        method: HttpMethod,
        form: String,
    ) -> Result<Request<Full<Bytes>>, http::Error> {
        let builder = Request::builder()
            .header(http::header::HOST, self.endpoint.host_header())
            .header(http::header::USER_AGENT, "ballast-cloudstack/0.1")
            .header(http::header::ACCEPT, "application/json");
        match method {
            HttpMethod::Get => builder
                .method(http::Method::GET)
                .uri(format!("{}?{form}", self.endpoint.path))
                .body(Full::new(Bytes::new())),
            HttpMethod::Post => builder
                .method(http::Method::POST)
                .uri(&self.endpoint.path)
                .header(
                    http::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded; charset=UTF-8",
                )
                .body(Full::new(Bytes::from(form))),
        }
    }
}

/// A call that got no HTTP answer, split by whether the request went out.
#[derive(Debug)]
pub enum SendError {
    /// Nothing of the request reached the server.
    NotSent(TransportError),
    /// The request was written (or may have been), and no complete answer came back.
    AnswerLost(TransportError),
}

/// Why an exchange got no answer. The I/O, TLS or HTTP error underneath is its `source()`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The TCP connection could not be made: refused, unreachable, no such host.
    #[error("cannot connect: {0}")]
    Connect(#[source] std::io::Error),
    /// The endpoint's host is not a name TLS can check a certificate against.
    #[error("{0:?} is not a valid TLS server name")]
    ServerName(String),
    /// The TLS handshake failed (an untrusted certificate, a wrong name, no common version).
    #[error("TLS handshake: {0}")]
    Tls(#[source] std::io::Error),
    /// The endpoint path cannot be made into a request.
    #[error("building the request: {0}")]
    Request(#[source] http::Error),
    /// HTTP/1.1 failed: the connection closed or reset before an answer.
    #[error("HTTP: {0}")]
    Http(#[source] hyper::Error),
    /// The answer's body was cut short, or is over the size limit.
    #[error("reading the answer: {0}")]
    Body(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The connection (TCP, and TLS for `https://`) was not up within the client's timeout.
    #[error("no connection within {0:?}")]
    ConnectTimeout(Duration),
    /// The request was sent and no answer came within the client's timeout.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

/// One request on a fresh connection. hyper gives the request back when it failed before
/// writing any of it: only then is it certain that the server did not see it.
async fn exchange_on<S>(stream: S, request: Request<Full<Bytes>>) -> Result<(u16, Bytes), SendError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|error| SendError::NotSent(TransportError::Http(error)))?;
    let driver = tokio::spawn(connection);
    let result = async {
        let response = sender
            .try_send_request(request)
            .await
            .map_err(|mut error| {
                let unsent = error.take_message().is_some();
                let cause = TransportError::Http(error.into_error());
                if unsent {
                    SendError::NotSent(cause)
                } else {
                    SendError::AnswerLost(cause)
                }
            })?;
        let status = response.status().as_u16();
        let body = Limited::new(response.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|error| SendError::AnswerLost(TransportError::Body(error)))?
            .to_bytes();
        Ok((status, body))
    }
    .await;
    driver.abort();
    result
}

fn tls_connector(ca_file: Option<&Path>) -> Result<TlsConnector, CloudError> {
    let roots = match ca_file {
        Some(path) => ca_file_roots(path)?,
        None => platform_roots()?,
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| CloudError::Setup(format!("TLS: {error}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}

/// The certificates of a configured PEM file: it alone is trusted.
fn ca_file_roots(path: &Path) -> Result<RootCertStore, CloudError> {
    let bad = |error: &dyn std::fmt::Display| {
        CloudError::Setup(format!("CA file {}: {error}", path.display()))
    };
    let certs = CertificateDer::pem_file_iter(path).map_err(|error| bad(&error))?;
    let mut roots = RootCertStore::empty();
    for cert in certs {
        let cert = cert.map_err(|error| bad(&error))?;
        // A bundle may hold a certificate rustls cannot use; skip it like other TLS clients.
        let _ = roots.add(cert);
    }
    if roots.is_empty() {
        return Err(bad(&"no usable certificate"));
    }
    Ok(roots)
}

/// The platform's trust store (`rustls-native-certs`: `SSL_CERT_FILE` / `SSL_CERT_DIR` when
/// set, else where this system keeps its CA certificates).
fn platform_roots() -> Result<RootCertStore, CloudError> {
    let found = rustls_native_certs::load_native_certs();
    for error in &found.errors {
        tracing::warn!(%error, "reading the platform's CA certificates");
    }
    let mut roots = RootCertStore::empty();
    let (added, _unusable) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        let errors: Vec<String> = found.errors.iter().map(ToString::to_string).collect();
        return Err(CloudError::Setup(format!(
            "https: the platform's trust store has no usable CA certificate{}; install the \
             system's CA certificates, point SSL_CERT_FILE at a PEM bundle, or give the client \
             a CA file",
            if errors.is_empty() {
                String::new()
            } else {
                format!(" ({})", errors.join("; "))
            }
        )));
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse() {
        let e = Endpoint::parse("http://127.0.0.1:8080/client/api").expect("valid");
        assert_eq!(
            (e.https, e.host.as_str(), e.port, e.path.as_str()),
            (false, "127.0.0.1", 8080, "/client/api")
        );
        let e = Endpoint::parse("https://cloud.example.com").expect("valid");
        assert_eq!(
            (e.https, e.port, e.path.as_str()),
            (true, 443, "/client/api")
        );
        assert_eq!(e.host_header(), "cloud.example.com");
        let e = Endpoint::parse("http://[::1]:8096/client/api").expect("valid");
        assert_eq!((e.host.as_str(), e.port), ("::1", 8096));
        assert_eq!(e.host_header(), "[::1]:8096");
        for bad in [
            "ftp://x",
            "http://",
            "http://h:port/",
            "http://h/x?y=1",
            "http://[::1/",
        ] {
            assert!(Endpoint::parse(bad).is_err(), "{bad}");
        }
    }
}
