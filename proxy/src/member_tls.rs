//! TLS from Ballast to the members of `SSL` and `SSL_TCP` servicegroups.
//!
//! The writer builds one rustls [`ClientConfig`] per group ([`ClientConfigs`]) and keeps it
//! while the group's TLS settings and client certificate stay the same, so an unrelated edit
//! keeps pooled member connections and TLS sessions to resume. [`handshake`] wraps a connected
//! member socket; a failure comes back as a [`TlsFailure`] that says why in words an operator
//! can act on ("certificate verify failed: unknown issuer ...").

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use rustls::client::ResolvesClientCert;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_util::either::Either;

use crate::config::{BackendType, MemberTls};

/// A connection to a member: plain TCP, or TLS over it (boxed: a TLS session is about a
/// kilobyte, which a plain connection should not carry).
pub type MemberStream = Either<TcpStream, Box<TlsStream<TcpStream>>>;

/// What a group's member connections need for TLS, compiled once per config.
#[derive(Debug, Clone)]
pub struct TlsToMembers {
    pub config: Arc<ClientConfig>,
    /// `snihost`; `None`: no SNI, the member's certificate must name its IP address.
    pub server_name: Option<ServerName<'static>>,
}

/// Why a TLS handshake with a member failed, in words (for the log and `lastfailurereason`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TlsFailure(pub String);

impl TlsToMembers {
    /// The name the handshake sends and verifies for the member at `addr`.
    pub fn server_name(&self, addr: SocketAddr) -> ServerName<'static> {
        self.server_name
            .clone()
            .unwrap_or_else(|| ServerName::IpAddress(addr.ip().into()))
    }
}

/// The TLS handshake on a connected member socket, to be done by `deadline` (the group's
/// `connecttimeout` counts the TCP connect and the handshake together).
pub async fn handshake(
    tls: &TlsToMembers,
    stream: TcpStream,
    addr: SocketAddr,
    deadline: Instant,
) -> Result<TlsStream<TcpStream>, TlsFailure> {
    let name = tls.server_name(addr);
    let connecting = TlsConnector::from(tls.config.clone()).connect(name, stream);
    match tokio::time::timeout_at(deadline, connecting).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(error)) => Err(TlsFailure(why(&error))),
        Err(_) => Err(TlsFailure(
            "the TLS handshake did not finish within connecttimeout".to_owned(),
        )),
    }
}

/// What went wrong in a handshake, from the error tokio-rustls reports.
fn why(error: &io::Error) -> String {
    let tls = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    match tls {
        Some(tls) => describe(tls),
        None if error.kind() == io::ErrorKind::UnexpectedEof => {
            "the member closed the connection during the TLS handshake".to_owned()
        }
        None => format!("TLS handshake failed: {error}"),
    }
}

/// Why a member connection failed, if TLS says why: the first rustls error in `error`'s
/// chain (an `io::Error` keeps it as its inner error, which `source()` skips).
pub fn tls_cause(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut next = Some(error);
    while let Some(error) = next {
        if let Some(tls) = error.downcast_ref::<rustls::Error>() {
            return Some(describe(tls));
        }
        if let Some(inner) = error
            .downcast_ref::<io::Error>()
            .and_then(io::Error::get_ref)
            && let Some(tls) = inner.downcast_ref::<rustls::Error>()
        {
            return Some(describe(tls));
        }
        next = error.source();
    }
    None
}

fn describe(error: &rustls::Error) -> String {
    use rustls::{AlertDescription, CertificateError, Error};
    match error {
        Error::InvalidCertificate(certificate) => {
            let reason = match certificate {
                CertificateError::UnknownIssuer => "unknown issuer: the member's certificate does \
                     not chain to a CA in cafile (or the system's trust store)"
                    .to_owned(),
                CertificateError::NotValidForName
                | CertificateError::NotValidForNameContext { .. } => {
                    format!("name mismatch: {certificate}")
                }
                CertificateError::BadSignature => "bad signature: the member's certificate \
                     names a CA in cafile as its issuer but that CA did not sign it"
                    .to_owned(),
                other => other.to_string(),
            };
            format!("certificate verify failed: {reason}")
        }
        Error::AlertReceived(
            alert @ (AlertDescription::CertificateRequired
            | AlertDescription::HandshakeFailure
            | AlertDescription::BadCertificate
            | AlertDescription::UnknownCA),
        ) => format!(
            "the member refused the handshake (alert {alert:?}); does it require a client \
             certificate that clientcertkey should give, or refuse the one given?"
        ),
        Error::AlertReceived(alert) => {
            format!("the member refused the handshake (alert {alert:?})")
        }
        Error::InvalidMessage(_)
        | Error::InappropriateMessage { .. }
        | Error::InappropriateHandshakeMessage { .. } => {
            format!("the member does not speak TLS on this port ({error})")
        }
        other => format!("TLS handshake failed: {other}"),
    }
}

/// The rustls config of each TLS servicegroup, reused while its settings and client
/// certificate (the same loaded key) stay the same.
#[derive(Debug, Default)]
pub struct ClientConfigs {
    by_group: HashMap<String, Built>,
}

#[derive(Debug)]
struct Built {
    settings: MemberTls,
    alpn_http: bool,
    client_cert: Option<Arc<CertifiedKey>>,
    config: Arc<ClientConfig>,
}

impl ClientConfigs {
    /// The config of group `group`: the one it has if nothing changed, else a new one.
    pub fn get(
        &mut self,
        group: &str,
        settings: &MemberTls,
        backend_type: BackendType,
        client_cert: Option<Arc<CertifiedKey>>,
    ) -> TlsToMembers {
        let alpn_http = backend_type == BackendType::Http;
        let server_name = settings
            .sni_host
            .as_deref()
            .and_then(|host| ServerName::try_from(host.to_owned()).ok());
        if let Some(built) = self.by_group.get(group)
            && built.settings == *settings
            && built.alpn_http == alpn_http
            && same_key(built.client_cert.as_ref(), client_cert.as_ref())
        {
            return TlsToMembers {
                config: built.config.clone(),
                server_name,
            };
        }
        let config = client_config(settings, alpn_http, client_cert.clone());
        self.by_group.insert(
            group.to_owned(),
            Built {
                settings: settings.clone(),
                alpn_http,
                client_cert,
                config: config.clone(),
            },
        );
        TlsToMembers {
            config,
            server_name,
        }
    }

    /// Forgets the groups that `keep` does not name.
    pub fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        self.by_group.retain(|name, _| keep(name));
    }
}

fn same_key(a: Option<&Arc<CertifiedKey>>, b: Option<&Arc<CertifiedKey>>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => Arc::ptr_eq(a, b),
        _ => false,
    }
}

/// Builds the client config of one group. HTTP groups offer ALPN `http/1.1` only.
pub fn client_config(
    settings: &MemberTls,
    alpn_http: bool,
    client_cert: Option<Arc<CertifiedKey>>,
) -> Arc<ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions");
    let builder = if settings.server_auth {
        let mut roots = RootCertStore::empty();
        roots.add_parsable_certificates(settings.roots.iter().cloned());
        match WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone()).build()
        {
            Ok(verifier) => builder.with_webpki_verifier(verifier),
            Err(error) => {
                // Validation keeps only usable CAs, so this is not expected; fail closed.
                tracing::error!(%error, "no usable CA for a servicegroup: every handshake will fail");
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(Unverified::refusing(
                        provider,
                        format!("no usable CA certificate ({error})"),
                    )))
            }
        }
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Unverified::accepting(provider)))
    };
    let mut config = match client_cert {
        Some(certified) => builder.with_client_cert_resolver(Arc::new(ClientCert(certified))),
        None => builder.with_no_client_auth(),
    };
    if alpn_http {
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
    }
    Arc::new(config)
}

/// `clientcertkey`: the one certificate Ballast presents when a member asks for one.
#[derive(Debug)]
struct ClientCert(Arc<CertifiedKey>);

impl ResolvesClientCert for ClientCert {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        schemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        self.0.key.choose_scheme(schemes).map(|_| self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// `serverauth = "DISABLED"` and secure monitor probes: any certificate is accepted (the
/// handshake's signatures are still checked, so the connection is encrypted to whoever holds
/// the certificate's key). With `refuse`, every certificate is refused with that reason.
#[derive(Debug)]
pub(crate) struct Unverified {
    provider: Arc<CryptoProvider>,
    refuse: Option<String>,
}

impl Unverified {
    /// Accepts every certificate.
    pub(crate) fn accepting(provider: Arc<CryptoProvider>) -> Self {
        Self {
            provider,
            refuse: None,
        }
    }

    /// Refuses every certificate with `reason`.
    fn refusing(provider: Arc<CryptoProvider>, reason: String) -> Self {
        Self {
            provider,
            refuse: Some(reason),
        }
    }
}

impl ServerCertVerifier for Unverified {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match &self.refuse {
            Some(reason) => Err(rustls::Error::General(reason.clone())),
            None => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_say_why_in_words() {
        let unknown = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        assert!(describe(&unknown).starts_with("certificate verify failed: unknown issuer"));
        let name = rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName);
        assert!(describe(&name).starts_with("certificate verify failed: name mismatch"));
        let alert = rustls::Error::AlertReceived(rustls::AlertDescription::CertificateRequired);
        assert!(describe(&alert).contains("client certificate"));
        let wrapped = io::Error::other(alert);
        assert!(
            tls_cause(&wrapped)
                .unwrap_or_default()
                .contains("client certificate")
        );
        assert_eq!(tls_cause(&io::Error::other("plain")), None);
        let eof = io::Error::from(io::ErrorKind::UnexpectedEof);
        assert_eq!(
            why(&eof),
            "the member closed the connection during the TLS handshake"
        );
    }

    #[test]
    fn an_unchanged_group_keeps_its_config() {
        let settings = MemberTls {
            ca_file: None,
            roots: Arc::new(Vec::new()),
            server_auth: false,
            sni_host: Some("app.example".to_owned()),
            client_cert_key: None,
        };
        let mut configs = ClientConfigs::default();
        let first = configs.get("app", &settings, BackendType::Http, None);
        let again = configs.get("app", &settings, BackendType::Http, None);
        assert!(Arc::ptr_eq(&first.config, &again.config));
        assert_eq!(first.config.alpn_protocols, [b"http/1.1".to_vec()]);
        let changed = MemberTls {
            sni_host: None,
            ..settings.clone()
        };
        let other = configs.get("app", &changed, BackendType::Http, None);
        assert!(!Arc::ptr_eq(&first.config, &other.config));
        assert!(other.server_name.is_none());
        let l4 = configs.get("app", &changed, BackendType::Tcp, None);
        assert!(l4.config.alpn_protocols.is_empty());
    }
}
