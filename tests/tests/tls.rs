//! Protocols end to end: TLS termination (SNI picks the certificate, ALPN picks HTTP/2 or
//! HTTP/1.1), cleartext HTTP/1.1 and h2c, TLS-then-L4 (`SSL_TCP`), and the L4 `TCP` relay
//! moving 100 MiB exactly.

use std::net::SocketAddr;
use std::time::Duration;

use ballast_tests::certs::{TestCa, connect_tls, negotiated_alpn, peer_leaf};
use ballast_tests::client::connect_tcp;
use ballast_tests::{
    Backend, Ballast, Binary, EchoBackend, H1, H2, Net, TestCert, members_toml,
    single_vserver_config,
};
use http::Version;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The `ballast` binary cargo built for this test run.
const BALLAST: Binary = Binary::new(env!("CARGO_BIN_EXE_ballast"));

/// `[[sslcertkey]]` sections for certificates written as `<name>.pem` / `<name>.key`.
fn certkeys(names: &[&str]) -> String {
    names
        .iter()
        .map(|name| {
            format!("[[sslcertkey]]\ncertkey = \"{name}\"\ncert = \"{name}.pem\"\nkey = \"{name}.key\"\n\n")
        })
        .collect()
}

/// A config with one TLS vserver (`SSL` or `SSL_TCP`) bound to certificates `a` and `b`.
fn tls_config(vserver: SocketAddr, servicetype: &str, members: &[SocketAddr]) -> String {
    let config = single_vserver_config(
        vserver,
        servicetype,
        "ROUNDROBIN",
        &members_toml(members),
        &certkeys(&["a", "b"]),
    );
    // The vserver's certificates: `a` first, so it is the default.
    config.replacen(
        "servicegroupname = \"pool\"\n\n",
        "servicegroupname = \"pool\"\nsslcertkey = [\"a\", \"b\"]\n\n",
        1,
    )
}

/// Starts Ballast with certificate files `a.pem`/`a.key` and `b.pem`/`b.key`.
async fn start_with_certs(config: &str, a: &TestCert, b: &TestCert) -> Ballast {
    BALLAST
        .start_with_files(
            config,
            &[
                ("a.pem", a.cert_pem.as_bytes()),
                ("a.key", a.key_pem.as_bytes()),
                ("b.pem", b.cert_pem.as_bytes()),
                ("b.key", b.key_pem.as_bytes()),
            ],
        )
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssl_vserver_picks_the_certificate_by_sni_and_the_protocol_by_alpn() {
    let net = Net::new();
    let app = Backend::start(net.free_addr(1), "app").await;
    let vserver = net.free_addr(100);
    let ca = TestCa::new();
    let (cert_a, cert_b) = (ca.issue(&["a.test"]), ca.issue(&["b.test"]));
    let config = tls_config(vserver, "SSL", &[app.addr()]);
    assert!(config.contains("sslcertkey = [\"a\", \"b\"]"), "{config}");
    let ballast = start_with_certs(&config, &cert_a, &cert_b).await;

    // SNI a.test, offering h2: certificate A (verified for a.test), HTTP/2.
    let tls = connect_tls(vserver, "a.test", ca.client_config(&["h2", "http/1.1"]))
        .await
        .expect("TLS handshake as a.test");
    assert_eq!(
        peer_leaf(&tls).as_ref(),
        Some(&cert_a.der),
        "SNI a.test did not get certificate A"
    );
    assert_eq!(
        negotiated_alpn(&tls).as_deref(),
        Some("h2"),
        "ALPN h2 was offered first"
    );
    let client_addr = tls.get_ref().0.local_addr().expect("local address");
    let mut h2 = H2::over(tls, "https", "a.test")
        .await
        .expect("HTTP/2 handshake");
    for _ in 0..3 {
        let reply = h2.get("/over-h2").await.expect("HTTP/2 request");
        assert_eq!(
            (reply.status.as_u16(), reply.version),
            (200, Version::HTTP_2)
        );
        assert_eq!(reply.text(), "app");
    }
    assert_eq!(app.last_forwarded_proto().as_deref(), Some("https"));
    let forwarded_for = app.last_forwarded_for().unwrap_or_default();
    assert!(
        forwarded_for.ends_with(&client_addr.ip().to_string()),
        "X-Forwarded-For {forwarded_for:?} does not end with the client {}",
        client_addr.ip()
    );

    // SNI b.test, offering only http/1.1: certificate B, HTTP/1.1.
    let tls = connect_tls(vserver, "b.test", ca.client_config(&["http/1.1"]))
        .await
        .expect("TLS handshake as b.test");
    assert_eq!(
        peer_leaf(&tls).as_ref(),
        Some(&cert_b.der),
        "SNI b.test did not get certificate B"
    );
    assert_eq!(negotiated_alpn(&tls).as_deref(), Some("http/1.1"));
    let mut h1 = H1::over(tls, "b.test").await.expect("HTTP/1.1 handshake");
    for _ in 0..3 {
        let reply = h1.get("/over-h1").await.expect("HTTP/1.1 request");
        assert_eq!(
            (reply.status.as_u16(), reply.version),
            (200, Version::HTTP_11)
        );
        assert_eq!(reply.text(), "app");
    }

    // No ALPN at all: HTTP/1.1.
    let tls = connect_tls(vserver, "b.test", ca.client_config(&[]))
        .await
        .expect("TLS handshake without ALPN");
    assert_eq!(negotiated_alpn(&tls), None);
    let reply = H1::over(tls, "b.test")
        .await
        .expect("handshake")
        .get("/")
        .await
        .expect("request");
    assert_eq!((reply.status.as_u16(), reply.text().as_str()), (200, "app"));
    drop(ballast);
}

/// One TLS connection with one request over it; whether its handshake resumed a session.
async fn handshake_kind(
    vserver: SocketAddr,
    client: std::sync::Arc<rustls::ClientConfig>,
) -> Option<rustls::HandshakeKind> {
    let tls = connect_tls(vserver, "a.test", client)
        .await
        .expect("TLS handshake");
    let kind = tls.get_ref().1.handshake_kind();
    // The request makes the client read, and so take in the session tickets.
    let reply = H1::over(tls, "a.test")
        .await
        .expect("HTTP/1.1 over TLS")
        .get("/")
        .await
        .expect("GET / over TLS");
    assert_eq!(reply.status.as_u16(), 200);
    kind
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_client_can_resume_its_session_however_many_came_since() {
    let net = Net::new();
    let app = Backend::start(net.free_addr(1), "app").await;
    let vserver = net.free_addr(100);
    let ca = TestCa::new();
    let (cert_a, cert_b) = (ca.issue(&["a.test"]), ca.issue(&["b.test"]));
    let config = tls_config(vserver, "SSL", &[app.addr()]);
    let _ballast = start_with_certs(&config, &cert_a, &cert_b).await;

    // 300 clients, each with a session store of its own: more sessions than a 256-entry
    // server-side cache holds (the first clients' would have been evicted).
    let clients: Vec<_> = (0..300).map(|_| ca.client_config(&["http/1.1"])).collect();
    for client in &clients {
        assert_eq!(
            handshake_kind(vserver, client.clone()).await,
            Some(rustls::HandshakeKind::Full)
        );
    }
    for client in [&clients[0], &clients[150], &clients[299]] {
        assert_eq!(
            handshake_kind(vserver, client.clone()).await,
            Some(rustls::HandshakeKind::Resumed),
            "a client could not resume its session"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_vserver_serves_http1_and_h2c() {
    let net = Net::new();
    let app = Backend::start(net.free_addr(1), "app").await;
    let vserver = net.free_addr(100);
    let ballast = BALLAST
        .start(&single_vserver_config(
            vserver,
            "HTTP",
            "ROUNDROBIN",
            &members_toml(&[app.addr()]),
            "",
        ))
        .await;

    let mut h2 = H2::connect(vserver)
        .await
        .expect("h2c prior-knowledge handshake");
    let reply = h2.get("/h2c").await.expect("h2c request");
    assert_eq!(
        (reply.status.as_u16(), reply.version),
        (200, Version::HTTP_2)
    );
    assert_eq!(reply.text(), "app");

    let mut h1 = H1::connect(vserver).await.expect("connect");
    let reply = h1.get("/h1").await.expect("HTTP/1.1 request");
    assert_eq!(
        (reply.status.as_u16(), reply.version),
        (200, Version::HTTP_11)
    );
    assert_eq!(reply.text(), "app");
    assert_eq!(app.last_forwarded_proto().as_deref(), Some("http"));
    assert!(
        app.last_forwarded_for().is_some(),
        "no X-Forwarded-For reached the backend"
    );
    drop(ballast);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssl_tcp_vserver_relays_decrypted_bytes_to_a_plain_backend() {
    let net = Net::new();
    let app = Backend::start(net.free_addr(1), "app").await;
    let vserver = net.free_addr(100);
    let ca = TestCa::new();
    let (cert_a, cert_b) = (ca.issue(&["a.test"]), ca.issue(&["b.test"]));
    let ballast = start_with_certs(
        &tls_config(vserver, "SSL_TCP", &[app.addr()]),
        &cert_a,
        &cert_b,
    )
    .await;

    let tls = connect_tls(vserver, "b.test", ca.client_config(&[]))
        .await
        .expect("TLS handshake");
    assert_eq!(peer_leaf(&tls).as_ref(), Some(&cert_b.der));
    let mut h1 = H1::over(tls, "b.test")
        .await
        .expect("HTTP/1.1 over the relay");
    for _ in 0..3 {
        let reply = h1.get("/through-ssl-tcp").await.expect("request");
        assert_eq!((reply.status.as_u16(), reply.text().as_str()), (200, "app"));
    }
    // An L4 relay passes the bytes as they are: no proxy headers were added.
    assert_eq!(app.last_forwarded_for(), None);
    assert_eq!(app.requests(), 3);
    drop(ballast);
}

const TRANSFER: usize = 100 * 1024 * 1024;
const CHUNK: usize = 64 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_vserver_relays_100_mib_exactly_both_ways() {
    relay_100_mib("copy").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_vserver_relays_100_mib_exactly_both_ways_with_splice() {
    relay_100_mib("splice").await;
}

/// Sends 100 MiB of a deterministic pseudo-random stream through a `TCP` vserver to an echo
/// backend and compares every byte that comes back.
async fn relay_100_mib(l4relay: &str) {
    let net = Net::new();
    let echo = EchoBackend::start(net.free_addr(1)).await;
    let vserver = net.free_addr(100);
    let config = single_vserver_config(
        vserver,
        "TCP",
        "ROUNDROBIN",
        &members_toml(&[echo.addr()]),
        "",
    )
    .replacen(
        "[ballast]\n",
        &format!("[ballast]\nl4relay = \"{l4relay}\"\n"),
        1,
    );
    let ballast = BALLAST.start(&config).await;

    let stream = connect_tcp(vserver, None).await.expect("connect");
    let (mut reader, mut writer) = stream.into_split();
    let send = tokio::spawn(async move {
        let mut chunk = vec![0u8; CHUNK];
        for index in 0..TRANSFER / CHUNK {
            fill_chunk(index, &mut chunk);
            writer.write_all(&chunk).await?;
        }
        writer.shutdown().await?;
        std::io::Result::Ok(())
    });
    let receive = async {
        let mut got = vec![0u8; CHUNK];
        let mut expected = vec![0u8; CHUNK];
        for index in 0..TRANSFER / CHUNK {
            reader.read_exact(&mut got).await.unwrap_or_else(|error| {
                panic!("stream ended early at byte {}: {error}", index * CHUNK)
            });
            fill_chunk(index, &mut expected);
            if got != expected {
                let at = got
                    .iter()
                    .zip(&expected)
                    .position(|(x, y)| x != y)
                    .unwrap_or(0);
                panic!("byte {} differs after the round trip", index * CHUNK + at);
            }
        }
        let mut rest = Vec::new();
        reader
            .read_to_end(&mut rest)
            .await
            .expect("read to the end");
        assert!(
            rest.is_empty(),
            "{} bytes more than were sent came back",
            rest.len()
        );
    };
    tokio::time::timeout(Duration::from_secs(90), receive)
        .await
        .expect("100 MiB round trip within 90 s");
    send.await.expect("task").expect("sending 100 MiB");
    assert_eq!(echo.connections(), 1);
    drop(ballast);
}

/// Chunk `index` of the test stream: SplitMix64 of the word's position, so any chunk can be
/// made again to compare with.
fn fill_chunk(index: usize, chunk: &mut [u8]) {
    let first_word = (index * CHUNK / 8) as u64;
    for (i, word) in chunk.chunks_exact_mut(8).enumerate() {
        let mut z = (first_word + i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        word.copy_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
}
