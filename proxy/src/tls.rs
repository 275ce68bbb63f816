//! TLS termination for `SSL` and `SSL_TCP` vservers: SNI picks the certificate.
//!
//! Each handshake's server name is checked against the bound certificates in order (with
//! webpki's name matching, so wildcards and SANs work as clients expect); the first bound
//! certificate is served when the client sends no SNI or no certificate matches.
//!
//! Clients resume with stateless TLS session tickets. [`ServerConfigs`] keeps each vserver's
//! rustls config (and with it the ticket keys) for as long as its certificates stay the same.

use std::collections::HashMap;
use std::sync::Arc;

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::ServerName;

/// Builds the rustls config of one vserver. `alpn_http` offers `h2` and `http/1.1`.
pub fn server_config(certs: Vec<Arc<CertifiedKey>>, alpn_http: bool) -> Arc<rustls::ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(SniResolver { certs }));
    if alpn_http {
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    }
    // Stateless session tickets (12-hour keys, rotated): any number of clients can resume,
    // where the default session cache would remember only the last 256. If the system cannot
    // give random keys, resumption falls back to that cache.
    if let Ok(ticketer) = rustls::crypto::ring::Ticketer::new() {
        config.ticketer = ticketer;
    }
    Arc::new(config)
}

/// The rustls config of each TLS vserver, reused while its certificates (the same loaded keys)
/// and ALPN stay the same: an edit elsewhere keeps sessions resumable and reads no PEM file.
#[derive(Debug, Default)]
pub struct ServerConfigs {
    by_vserver: HashMap<String, Built>,
}

#[derive(Debug)]
struct Built {
    certs: Vec<Arc<CertifiedKey>>,
    alpn_http: bool,
    config: Arc<rustls::ServerConfig>,
}

impl ServerConfigs {
    /// The config of `vserver` for `certs`: the one it has if nothing changed, else a new one.
    pub fn get(
        &mut self,
        vserver: &str,
        certs: Vec<Arc<CertifiedKey>>,
        alpn_http: bool,
    ) -> Arc<rustls::ServerConfig> {
        if let Some(built) = self.by_vserver.get(vserver)
            && built.alpn_http == alpn_http
            && built.certs.len() == certs.len()
            && built
                .certs
                .iter()
                .zip(&certs)
                .all(|(a, b)| Arc::ptr_eq(a, b))
        {
            return built.config.clone();
        }
        let config = server_config(certs.clone(), alpn_http);
        let built = Built {
            certs,
            alpn_http,
            config: config.clone(),
        };
        self.by_vserver.insert(vserver.to_owned(), built);
        config
    }

    /// Forgets the vservers that `keep` does not name.
    pub fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        self.by_vserver.retain(|name, _| keep(name));
    }
}

/// Picks a certificate by the client's server name.
#[derive(Debug)]
struct SniResolver {
    certs: Vec<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        // With one certificate there is nothing to choose: skip parsing it on every handshake.
        if let [only] = self.certs.as_slice() {
            return Some(only.clone());
        }
        let by_name = hello
            .server_name()
            .and_then(|name| ServerName::try_from(name).ok())
            .and_then(|name| self.certs.iter().find(|cert| matches(cert, &name)));
        by_name.or_else(|| self.certs.first()).cloned()
    }
}

fn matches(cert: &CertifiedKey, name: &ServerName<'_>) -> bool {
    let Some(leaf) = cert.cert.first() else {
        return false;
    };
    webpki::EndEntityCert::try_from(leaf)
        .map(|leaf| leaf.verify_is_valid_for_subject_name(name).is_ok())
        .unwrap_or(false)
}
