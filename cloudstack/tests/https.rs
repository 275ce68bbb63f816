//! `https://` endpoints against a real TLS server on 127.0.0.1 whose certificate (for
//! `localhost`) comes from a CA made for this test: with that CA as the client's CA file the
//! call goes through; without one the client trusts the platform's store, which does not know
//! that CA, so the handshake fails: the request was not sent, and the rustls error is in the
//! chain.

use std::error::Error as _;
use std::sync::Arc;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use cloudstack::{ClientConfig, CloudError, CloudStackClient, ListFilter, TransportError};

/// A CA's PEM, and a TLS server for `localhost` with a certificate it signed that answers
/// every request with an empty `listZones`.
async fn tls_server() -> (String, u16, JoinHandle<()>) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("no names");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Ballast CloudStack test CA");
    let ca_key = KeyPair::generate().expect("a CA key");
    let ca = ca_params.self_signed(&ca_key).expect("self-signed CA");
    let leaf_key = KeyPair::generate().expect("a leaf key");
    let leaf = CertificateParams::new(vec!["localhost".to_string()])
        .expect("a DNS name")
        .signed_by(&leaf_key, &ca, &ca_key)
        .expect("signed by the CA");

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("default versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            PrivateKeyDer::from_pem_slice(leaf_key.serialize_pem().as_bytes()).expect("PEM key"),
        )
        .expect("a valid certificate and key");
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("local addr").port();
    let server = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut request = Vec::new();
                let mut buf = [0_u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let body = r#"{"listzonesresponse":{}}"#;
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                     Connection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(answer.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    (ca.pem(), port, server)
}

fn client(port: u16, ca_file: Option<std::path::PathBuf>) -> CloudStackClient {
    let mut config = ClientConfig::new(
        format!("https://localhost:{port}/client/api"),
        "key",
        "secret",
    );
    config.timeout = Duration::from_secs(5);
    config.ca_file = ca_file;
    CloudStackClient::new(config).expect("a client: the platform's trust store has certificates")
}

#[tokio::test]
async fn a_configured_ca_file_wins_and_the_platform_store_does_not_know_a_private_ca() {
    let (ca_pem, port, server) = tls_server().await;
    let dir = std::env::temp_dir().join(format!("ballast-cs-https-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, &ca_pem).expect("write the CA");
    // The file really is PEM that rustls reads.
    assert_eq!(
        CertificateDer::pem_file_iter(&ca_file)
            .expect("readable")
            .count(),
        1
    );

    let zones = client(port, Some(ca_file))
        .list_zones(&ListFilter::default())
        .await
        .expect("trusted through the CA file");
    assert!(zones.is_empty());

    let error = client(port, None)
        .list_zones(&ListFilter::default())
        .await
        .expect_err("the platform's store does not trust the test CA");
    assert!(matches!(error, CloudError::NotSent { .. }), "{error:?}");
    let cause = error
        .source()
        .and_then(|cause| cause.downcast_ref::<TransportError>())
        .expect("a TransportError");
    assert!(matches!(cause, TransportError::Tls(_)), "{cause:?}");
    assert!(
        error.to_string().contains("UnknownIssuer"),
        "rustls says why: {error}"
    );

    server.abort();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_ca_file_without_certificates_is_a_setup_error() {
    let dir = std::env::temp_dir().join(format!("ballast-cs-https-empty-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let empty = dir.join("empty.pem");
    std::fs::write(&empty, "not a certificate\n").expect("write");
    let mut config = ClientConfig::new("https://localhost:1/client/api", "key", "secret");
    config.ca_file = Some(empty.clone());
    let error = CloudStackClient::new(config).expect_err("nothing to trust");
    assert_eq!(
        error.to_string(),
        format!(
            "CloudStack client setup: CA file {}: no usable certificate",
            empty.display()
        )
    );
    let _ = std::fs::remove_dir_all(&dir);
}
