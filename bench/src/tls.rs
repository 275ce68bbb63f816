//! The TLS side of `bench`: a throw-away CA and the ECDSA P-256 certificate every proxy serves,
//! and the client config the handshake generator uses.
//!
//! Every proxy gets the same leaf certificate and key (HAProxy wants them in one PEM file), and
//! the client verifies the chain and the name as a browser would, so each proxy does the full
//! work of a real handshake. The client asks for TLS 1.3 only (all three proxies default to it)
//! and offers ALPN `http/1.1`, since the generator speaks HTTP/1.1.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use rustls::client::Resumption;
use rustls::pki_types::{CertificateDer, ServerName};

/// The name the certificate is for, and the SNI every client sends.
pub const SERVER_NAME: &str = "bench.ballast.test";

/// The files a TLS lab writes, and the CA its clients trust.
#[derive(Debug, Clone)]
pub struct CertFiles {
    /// Leaf certificate (PEM).
    pub cert: PathBuf,
    /// Its private key (PEM, PKCS#8).
    pub key: PathBuf,
    /// Certificate then key, in one file (HAProxy's `crt`).
    pub combined: PathBuf,
    pub ca: CertificateDer<'static>,
}

impl CertFiles {
    /// Issues a P-256 leaf for [`SERVER_NAME`] from a new CA and writes it under `dir`.
    pub fn create(dir: &Path) -> Result<Self> {
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "ballast bench CA");
        let ca_key = KeyPair::generate().context("generating the CA key")?;
        let ca = ca_params.self_signed(&ca_key)?;

        let mut params = CertificateParams::new(vec![SERVER_NAME.to_string()])?;
        params
            .distinguished_name
            .push(DnType::CommonName, SERVER_NAME);
        let key = KeyPair::generate().context("generating the leaf key")?;
        let leaf = params.signed_by(&key, &ca, &ca_key)?;

        let files = Self {
            cert: dir.join("bench-cert.pem"),
            key: dir.join("bench-key.pem"),
            combined: dir.join("bench-combined.pem"),
            ca: ca.der().clone(),
        };
        let (cert_pem, key_pem) = (leaf.pem(), key.serialize_pem());
        for (path, text) in [
            (&files.cert, cert_pem.clone()),
            (&files.key, key_pem.clone()),
            (&files.combined, cert_pem + &key_pem),
        ] {
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(files)
    }
}

/// Whether a client keeps the session tickets it is given and offers one on its next
/// connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sessions {
    /// Every connection is a full handshake.
    Full,
    /// Connections resume the session of an earlier one (TLS 1.3 tickets).
    Resumed,
}

/// A TLS 1.3 client config that trusts only `ca`. Each run gets its own, so tickets from one
/// proxy are never offered to another.
pub fn client_config(
    ca: &CertificateDer<'static>,
    sessions: Sessions,
) -> Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.clone()).context("trusting the bench CA")?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config.resumption = match sessions {
        Sessions::Full => Resumption::disabled(),
        Sessions::Resumed => Resumption::in_memory_sessions(1024),
    };
    Ok(Arc::new(config))
}

pub fn server_name() -> ServerName<'static> {
    ServerName::try_from(SERVER_NAME).expect("a valid DNS name")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_hold_a_certificate_and_its_key() {
        let dir = std::env::temp_dir().join(format!("bench-tls-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let files = CertFiles::create(&dir).unwrap();
        let combined = std::fs::read_to_string(&files.combined).unwrap();
        assert!(combined.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(combined.contains("-----BEGIN PRIVATE KEY-----"));
        assert_eq!(
            std::fs::read_to_string(&files.cert).unwrap()
                + &std::fs::read_to_string(&files.key).unwrap(),
            combined
        );
        assert!(client_config(&files.ca, Sessions::Resumed).is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
