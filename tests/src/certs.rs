//! Certificates for TLS tests: a throw-away CA ([`TestCa`]) that issues leaf certificates
//! ([`TestCert`]) for names such as `a.test`, and rustls client configs that trust that CA.
//!
//! Clients verify the chain and the name as a browser would, so a handshake with SNI `a.test`
//! fails if the proxy presented the certificate for `b.test`.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// A certificate authority that exists only for one test.
pub struct TestCa {
    cert: rcgen::Certificate,
    key: KeyPair,
}

/// A leaf certificate and its key, PEM (for the proxy's files) and DER (to compare with what a
/// client was shown).
#[derive(Debug, Clone)]
pub struct TestCert {
    pub names: Vec<String>,
    pub cert_pem: String,
    pub key_pem: String,
    pub der: CertificateDer<'static>,
}

impl TestCa {
    pub fn new() -> TestCa {
        TestCa::named("Ballast test CA")
    }

    /// A CA whose name is `common_name` (two CAs of one name look alike to a verifier that
    /// finds issuers by name).
    pub fn named(common_name: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("empty SAN list");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        let key = KeyPair::generate().expect("generate a CA key");
        let cert = params.self_signed(&key).expect("self-sign the CA");
        TestCa { cert, key }
    }

    /// The CA certificate, for a client's root store.
    pub fn der(&self) -> &CertificateDer<'static> {
        self.cert.der()
    }

    /// The CA certificate as PEM, for a `cafile`.
    pub fn pem(&self) -> String {
        self.cert.pem()
    }

    /// Issues a certificate for `names` (DNS names).
    pub fn issue(&self, names: &[&str]) -> TestCert {
        let names: Vec<String> = names.iter().map(|name| (*name).to_owned()).collect();
        let mut params = CertificateParams::new(names.clone()).expect("valid DNS names");
        params.distinguished_name.push(
            DnType::CommonName,
            names.first().cloned().unwrap_or_default(),
        );
        let key = KeyPair::generate().expect("generate a leaf key");
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .expect("sign the leaf");
        TestCert {
            names,
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().clone(),
        }
    }

    /// A client config that trusts this CA and offers `alpn` (e.g. `["h2", "http/1.1"]`).
    pub fn client_config(&self, alpn: &[&str]) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(self.der().clone())
            .expect("a valid CA certificate");
        let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
        Arc::new(config)
    }
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa").finish_non_exhaustive()
    }
}

impl Default for TestCa {
    fn default() -> Self {
        TestCa::new()
    }
}

/// A TLS connection to `addr` with SNI `server_name`, verified against `config`'s roots.
pub async fn connect_tls(
    addr: SocketAddr,
    server_name: &str,
    config: Arc<rustls::ClientConfig>,
) -> anyhow::Result<TlsStream<TcpStream>> {
    let tcp = crate::client::connect_tcp(addr, None).await?;
    let name = ServerName::try_from(server_name.to_owned()).context("a valid server name")?;
    let handshake = TlsConnector::from(config).connect(name, tcp);
    tokio::time::timeout(crate::client::REQUEST_TIMEOUT, handshake)
        .await
        .context("TLS handshake timed out")?
        .with_context(|| format!("TLS handshake with {addr} as {server_name}"))
}

/// [`connect_tls`] from the local address `source` (a client a test must tell apart).
pub async fn connect_tls_from(
    addr: SocketAddr,
    source: std::net::IpAddr,
    server_name: &str,
    config: Arc<rustls::ClientConfig>,
) -> anyhow::Result<TlsStream<TcpStream>> {
    let tcp = crate::client::connect_tcp(addr, Some(source)).await?;
    let name = ServerName::try_from(server_name.to_owned()).context("a valid server name")?;
    let handshake = TlsConnector::from(config).connect(name, tcp);
    tokio::time::timeout(crate::client::REQUEST_TIMEOUT, handshake)
        .await
        .context("TLS handshake timed out")?
        .with_context(|| format!("TLS handshake with {addr} as {server_name}"))
}

/// The leaf certificate the server presented.
pub fn peer_leaf(stream: &TlsStream<TcpStream>) -> Option<CertificateDer<'static>> {
    let (_, connection) = stream.get_ref();
    connection
        .peer_certificates()
        .and_then(|chain| chain.first())
        .map(|cert| cert.clone().into_owned())
}

/// The ALPN protocol the server chose, as text.
pub fn negotiated_alpn(stream: &TlsStream<TcpStream>) -> Option<String> {
    let (_, connection) = stream.get_ref();
    connection
        .alpn_protocol()
        .map(|p| String::from_utf8_lossy(p).into_owned())
}
