//! Bad input never wedges the proxy: malformed requests get 400, oversized heads 431, slow
//! clients are cut off, TLS garbage closes only its own connection, and a backend that dies
//! mid-response ends only that response. After each, a normal request through the same vserver
//! still gets 200.

use std::net::SocketAddr;
use std::time::Duration;

use ballast_tests::certs::{TestCa, connect_tls};
use ballast_tests::raw::{self, RawReply};
use ballast_tests::{Backend, Ballast, Binary, H1, H2, Net, members_toml, single_vserver_config};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// The `ballast` binary cargo built for this test run.
const BALLAST: Binary = Binary::new(env!("CARGO_BIN_EXE_ballast"));

/// How long a raw exchange waits for the proxy to answer and close.
const RAW_TIMEOUT: Duration = Duration::from_secs(3);

struct Setup {
    ballast: Ballast,
    app: Backend,
    vserver: SocketAddr,
}

/// An `HTTP` vserver in front of one backend, `maxheaderlen = 8192`.
async fn setup(clientheadertimeout: &str) -> Setup {
    let net = Net::new();
    let app = Backend::start(net.free_addr(1), "app").await;
    let vserver = net.free_addr(100);
    let profile = format!(
        "[httpprofile]\nmaxheaderlen = 8192\nclientheadertimeout = \"{clientheadertimeout}\"\n"
    );
    let ballast = BALLAST
        .start(&single_vserver_config(
            vserver,
            "HTTP",
            "ROUNDROBIN",
            &members_toml(&[app.addr()]),
            &profile,
        ))
        .await;
    Setup {
        ballast,
        app,
        vserver,
    }
}

/// A normal request on a new connection gets 200 from the backend, and the process is alive.
async fn assert_still_serves(setup: &mut Setup) {
    setup.ballast.assert_running();
    let reply = ballast_tests::get(setup.vserver, "/normal")
        .await
        .expect("a normal request after the bad one");
    assert_eq!((reply.status.as_u16(), reply.text().as_str()), (200, "app"));
}

async fn send_raw(vserver: SocketAddr, bytes: &[u8]) -> RawReply {
    raw::exchange(vserver, bytes, RAW_TIMEOUT)
        .await
        .expect("raw exchange")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_request_line_gets_400() {
    let mut setup = setup("10s").await;
    for bad in [
        &b"this is not http\r\n\r\n"[..],
        b"GET / HTTP/1.1 trailing-garbage\r\nHost: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nBad Header Name: y\r\n\r\n",
    ] {
        let reply = send_raw(setup.vserver, bad).await;
        assert_eq!(
            reply.status(),
            Some(400),
            "{:?} got {:?}",
            String::from_utf8_lossy(bad),
            reply.text()
        );
        assert!(
            reply.closed,
            "the connection stays open after a malformed request"
        );
    }
    assert_eq!(
        setup.app.requests(),
        0,
        "a malformed request reached the backend"
    );
    assert_still_serves(&mut setup).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_head_over_maxheaderlen_gets_431() {
    let mut setup = setup("10s").await;
    let head = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "b".repeat(16 * 1024)
    );
    let reply = send_raw(setup.vserver, head.as_bytes()).await;
    assert_eq!(reply.status(), Some(431), "got {:?}", reply.text());
    assert_eq!(setup.app.requests(), 0);
    // Just under the limit is fine.
    let head = format!(
        "GET /fits HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Big: {}\r\n\r\n",
        "b".repeat(6 * 1024)
    );
    let reply = send_raw(setup.vserver, head.as_bytes()).await;
    assert_eq!(reply.status(), Some(200), "got {:?}", reply.text());
    assert_still_serves(&mut setup).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflicting_framing_headers_are_refused_or_made_harmless() {
    let mut setup = setup("10s").await;

    // Two different Content-Length values: 400.
    let reply = send_raw(
        setup.vserver,
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
    )
    .await;
    assert_eq!(
        reply.status(),
        Some(400),
        "two Content-Lengths got {:?}",
        reply.text()
    );

    // A Transfer-Encoding that does not end in chunked: 400.
    let reply = send_raw(
        setup.vserver,
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n",
    )
    .await;
    assert_eq!(
        reply.status(),
        Some(400),
        "TE `chunked, gzip` got {:?}",
        reply.text()
    );

    // Content-Length and Transfer-Encoding together (the smuggling shape), with a second
    // request hidden behind the chunked body: either 400 (as nginx), or the chunked framing
    // wins and the connection closes after the response (as HAProxy, RFC 9112 §6.1). Either
    // way the hidden request is never served.
    let reply = send_raw(
        setup.vserver,
        b"POST /smuggle HTTP/1.1\r\nHost: x\r\nContent-Length: 40\r\nTransfer-Encoding: chunked\r\n\r\n\
          0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .await;
    eprintln!("CL + TE answered {:?}", reply.status());
    assert!(
        matches!(reply.status(), Some(400) | Some(200)),
        "CL + TE got {:?}",
        reply.text()
    );
    assert!(
        reply.closed,
        "the connection stays open after a CL + TE request"
    );
    assert_eq!(
        reply.responses(),
        1,
        "more than one response: {:?}",
        reply.text()
    );
    assert!(
        !setup.app.paths().iter().any(|path| path == "/smuggled"),
        "the smuggled request reached the backend: {:?}",
        setup.app.paths()
    );
    assert_still_serves(&mut setup).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_sending_its_head_slowly_is_cut_off_after_clientheadertimeout() {
    let mut setup = setup("1s").await;
    let mut stream = TcpStream::connect(setup.vserver).await.expect("connect");
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("first bytes");
    let started = Instant::now();
    let (mut reader, mut writer) = stream.split();
    // One more header line every 100 ms: always sending, never finishing the head.
    let drip = async {
        for i in 0..100 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if writer
                .write_all(format!("X-Slow-{i}: y\r\n").as_bytes())
                .await
                .is_err()
            {
                break;
            }
        }
    };
    let mut answer = Vec::new();
    let read = async {
        let mut buffer = [0u8; 1024];
        loop {
            match reader.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buffer[..n]),
            }
        }
    };
    tokio::select! {
        () = read => {}
        () = drip => {}
    }
    let elapsed = started.elapsed();
    // About 1 s: at least 0.9 s (not cut off early), at most 1 s + 1.5 s of slack for a busy
    // machine (the drip gives up after 10 s).
    assert!(
        elapsed >= Duration::from_millis(900) && elapsed <= Duration::from_millis(2500),
        "the slow client was cut off after {elapsed:?}, expected about 1 s"
    );
    let status = raw::status_code(&answer);
    assert!(
        matches!(status, None | Some(408)),
        "a timed-out head got {:?}",
        String::from_utf8_lossy(&answer)
    );
    assert_eq!(setup.app.requests(), 0);
    assert_still_serves(&mut setup).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_an_ssl_port_closes_only_that_connection() {
    let net = Net::new();
    let app = Backend::start(net.free_addr(1), "app").await;
    let vserver = net.free_addr(100);
    let ca = TestCa::new();
    let cert = ca.issue(&["a.test"]);
    let config = single_vserver_config(
        vserver,
        "SSL",
        "ROUNDROBIN",
        &members_toml(&[app.addr()]),
        "[[sslcertkey]]\ncertkey = \"a\"\ncert = \"a.pem\"\nkey = \"a.key\"\n",
    )
    .replacen(
        "servicegroupname = \"pool\"\n\n",
        "servicegroupname = \"pool\"\nsslcertkey = [\"a\"]\n\n",
        1,
    );
    let mut ballast = BALLAST
        .start_with_files(
            &config,
            &[
                ("a.pem", cert.cert_pem.as_bytes()),
                ("a.key", cert.key_pem.as_bytes()),
            ],
        )
        .await;

    // A good connection, opened before the garbage, kept alive across it.
    let tls = connect_tls(vserver, "a.test", ca.client_config(&[]))
        .await
        .expect("TLS handshake");
    let mut kept = H1::over(tls, "a.test").await.expect("handshake");
    assert_eq!(kept.get("/before").await.expect("request").status, 200);

    let mut garbage = vec![0x16, 0x03, 0x01, 0x02, 0x00];
    garbage.extend((0..512u32).map(|i| (i.wrapping_mul(7919) >> 3) as u8));
    for bad in [
        garbage.as_slice(),
        b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n",
        b"\x00\x00\x00\x00\x00\x00\x00\x00",
    ] {
        let reply = send_raw(vserver, bad).await;
        assert!(
            reply.closed,
            "the proxy kept a connection open after {} bytes of garbage",
            bad.len()
        );
        assert_eq!(
            raw::status_code(&reply.data),
            None,
            "plain HTTP answered on a TLS port"
        );
    }

    ballast.assert_running();
    assert_eq!(
        kept.get("/after").await.expect("kept connection").status,
        200
    );
    let tls = connect_tls(vserver, "a.test", ca.client_config(&["h2"]))
        .await
        .expect("a new TLS handshake after the garbage");
    let mut h2 = H2::over(tls, "https", "a.test").await.expect("HTTP/2");
    let reply = h2.get("/new").await.expect("request");
    assert_eq!((reply.status.as_u16(), reply.text().as_str()), (200, "app"));
    assert_eq!(app.requests(), 3);
    drop(ballast);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_failing_mid_response_ends_only_that_response() {
    let mut setup = setup("10s").await;
    let vserver = setup.vserver;
    let mut kept = H1::connect(vserver).await.expect("connect");
    assert_eq!(kept.get("/before").await.expect("request").status, 200);
    let mut h2 = H2::connect(vserver).await.expect("h2c");
    assert_eq!(h2.get("/before").await.expect("request").status, 200);

    // HTTP/1.1: the response starts (200, Content-Length 1000000) and then breaks off.
    match ballast_tests::get(vserver, "/truncate").await {
        Err(_) => {}
        Ok(reply) => assert!(
            reply.body.len() < 1_000_000,
            "a truncated response arrived whole ({} bytes)",
            reply.body.len()
        ),
    }
    // HTTP/2: only that stream fails; the connection carries on.
    match h2.get("/truncate").await {
        Err(_) => {}
        Ok(reply) => assert!(
            reply.body.len() < 1_000_000,
            "a truncated response arrived whole"
        ),
    }
    let reply = h2
        .get("/after")
        .await
        .expect("the same HTTP/2 connection still works");
    assert_eq!((reply.status.as_u16(), reply.text().as_str()), (200, "app"));

    let reply = kept
        .get("/after")
        .await
        .expect("a kept-alive connection still works");
    assert_eq!((reply.status.as_u16(), reply.text().as_str()), (200, "app"));
    assert_still_serves(&mut setup).await;
}
