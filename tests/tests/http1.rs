//! Ballast's own HTTP/1.1 server side, seen from raw client sockets: what hyper did for the
//! client connection before, and what HAProxy and nginx users expect of keep-alive.
//!
//! Pipelined requests are answered in order; `Expect: 100-continue` gets its interim `100`;
//! chunked bodies (with the trailers their `Trailer` field names) and `Content-Length` bodies
//! reach the member whole; a `HEAD` keeps the member's `Content-Length`; HTTP/1.0 closes
//! unless it asks to keep alive; an idle keep-alive connection closes at the vserver's
//! `clttimeout` (when it is shorter than `clientheadertimeout`).

use std::net::SocketAddr;
use std::time::Duration;

use ballast_tests::raw::{self, RawReply};
use ballast_tests::{Backend, Ballast, Binary, Net, members_toml, single_vserver_config};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// The `ballast` binary cargo built for this test run.
const BALLAST: Binary = Binary::new(env!("CARGO_BIN_EXE_ballast"));

/// How long a raw exchange waits for the proxy to answer and close.
const RAW_TIMEOUT: Duration = Duration::from_secs(3);

struct Setup {
    _ballast: Ballast,
    app: Backend,
    vserver: SocketAddr,
}

/// An `HTTP` vserver `web` (with `vserver_keys`) in front of one backend `app`.
async fn setup(vserver_keys: &str) -> Setup {
    let net = Net::new();
    let app = Backend::start(net.free_addr(1), "app").await;
    let vserver = net.free_addr(100);
    let config = single_vserver_config(
        vserver,
        "HTTP",
        "ROUNDROBIN",
        &members_toml(&[app.addr()]),
        vserver_keys,
    );
    Setup {
        _ballast: BALLAST.start(&config).await,
        app,
        vserver,
    }
}

/// Reads from `stream` until `count` whole responses (each with `content-length`) arrived.
async fn read_responses(stream: &mut TcpStream, count: usize) -> String {
    let deadline = Instant::now() + RAW_TIMEOUT;
    let mut data = Vec::new();
    let mut buffer = [0u8; 4096];
    while complete_responses(&data) < count {
        match tokio::time::timeout_at(deadline, stream.read(&mut buffer)).await {
            Ok(Ok(n)) if n > 0 => data.extend_from_slice(&buffer[..n]),
            other => panic!(
                "{count} responses did not arrive ({other:?}): {:?}",
                String::from_utf8_lossy(&data)
            ),
        }
    }
    String::from_utf8_lossy(&data).into_owned()
}

fn complete_responses(data: &[u8]) -> usize {
    let text = String::from_utf8_lossy(data);
    let mut rest = text.as_ref();
    let mut count = 0;
    while let Some(end) = rest.find("\r\n\r\n") {
        let head = &rest[..end];
        let length = head
            .lines()
            .find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse::<usize>().ok())?
            })
            .unwrap_or(0);
        if rest.len() < end + 4 + length {
            break;
        }
        rest = &rest[end + 4 + length..];
        count += 1;
    }
    count
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_requests_are_answered_in_order_on_one_connection() {
    let setup = setup("").await;
    let mut stream = TcpStream::connect(setup.vserver).await.expect("connect");
    let requests: String = ["/one", "/two", "/three"]
        .iter()
        .map(|path| format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n"))
        .collect();
    // Three requests in one write, then a fourth with a body, in two pieces.
    stream.write_all(requests.as_bytes()).await.expect("write");
    stream
        .write_all(b"POST /echo-body HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello")
        .await
        .expect("write");
    tokio::time::sleep(Duration::from_millis(50)).await;
    stream.write_all(b" world").await.expect("write");
    let text = read_responses(&mut stream, 4).await;
    assert_eq!(text.matches("HTTP/1.1 200 OK").count(), 4, "{text}");
    assert!(text.ends_with("hello world"), "{text}");
    assert_eq!(
        setup.app.paths(),
        ["/one", "/two", "/three", "/echo-body"],
        "not served in order"
    );
    // The connection is still open for a fifth.
    stream
        .write_all(b"GET /five HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let text = read_responses(&mut stream, 1).await;
    assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_expects_100_continue_gets_it_before_sending_its_body() {
    let setup = setup("").await;
    let mut stream = TcpStream::connect(setup.vserver).await.expect("connect");
    stream
        .write_all(
            b"PUT /echo-body HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n",
        )
        .await
        .expect("write");
    let mut interim = [0u8; 25];
    tokio::time::timeout(RAW_TIMEOUT, stream.read_exact(&mut interim))
        .await
        .expect("no 100 Continue in time")
        .expect("read");
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    stream.write_all(b"data").await.expect("write");
    let text = read_responses(&mut stream, 1).await;
    assert!(
        text.starts_with("HTTP/1.1 200 OK") && text.ends_with("\r\n\r\ndata"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunked_body_reaches_the_member_whole_with_its_trailers() {
    let setup = setup("").await;
    let reply = raw::exchange(
        setup.vserver,
        b"POST /echo-body HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTrailer: x-checksum\r\n\
          Connection: close\r\n\r\n\
          5;ext=1\r\nhello\r\n6\r\n chunk\r\n0\r\nx-checksum: 42\r\n\r\n",
        RAW_TIMEOUT,
    )
    .await
    .expect("exchange");
    assert_eq!(reply.status(), Some(200), "{}", reply.text());
    assert!(
        reply
            .text()
            .ends_with("\r\n\r\nhello chunk\ntrailer x-checksum: 42"),
        "{}",
        reply.text()
    );
    assert!(reply.closed, "Connection: close was not honoured");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_keeps_the_members_content_length_and_the_connection() {
    let setup = setup("").await;
    let mut stream = TcpStream::connect(setup.vserver).await.expect("connect");
    stream
        .write_all(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let mut head = vec![0u8; 512];
    let n = tokio::time::timeout(RAW_TIMEOUT, stream.read(&mut head))
        .await
        .expect("no answer in time")
        .expect("read");
    let head = String::from_utf8_lossy(&head[..n]).into_owned();
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(head.contains("content-length: 3\r\n"), "{head}");
    assert!(head.ends_with("\r\n\r\n"), "a body followed: {head}");
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let text = read_responses(&mut stream, 1).await;
    assert!(text.ends_with("\r\n\r\napp"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http10_closes_unless_it_asks_to_keep_alive() {
    let setup = setup("").await;
    let reply = raw::exchange(setup.vserver, b"GET / HTTP/1.0\r\n\r\n", RAW_TIMEOUT)
        .await
        .expect("exchange");
    assert_eq!(reply.status(), Some(200), "{}", reply.text());
    assert!(reply.closed, "an HTTP/1.0 connection stayed open");

    let mut stream = TcpStream::connect(setup.vserver).await.expect("connect");
    for _ in 0..2 {
        stream
            .write_all(b"GET / HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n")
            .await
            .expect("write");
        let text = read_responses(&mut stream, 1).await;
        assert!(text.contains("connection: keep-alive\r\n"), "{text}");
        assert!(text.ends_with("\r\n\r\napp"), "{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_keep_alive_connection_closes_at_clttimeout() {
    let setup = setup("clttimeout = \"1s\"").await;
    let mut stream = TcpStream::connect(setup.vserver).await.expect("connect");
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    read_responses(&mut stream, 1).await;
    let idle_since = Instant::now();
    let RawReply { data, closed } = raw::read_until_closed(&mut stream, RAW_TIMEOUT).await;
    let idle = idle_since.elapsed();
    assert!(closed && data.is_empty(), "not closed quietly: {data:?}");
    assert!(
        idle >= Duration::from_millis(900) && idle <= Duration::from_millis(2500),
        "closed after {idle:?} idle, expected about 1 s"
    );
}
