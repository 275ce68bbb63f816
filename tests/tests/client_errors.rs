//! Client errors are the client's: a malformed or stalled request body gets a 4xx, counts in
//! `ballast_vserver_errors_total{side="client"}`, and never counts against a member (its state,
//! its error counters, its response time). Requests a peer gets wrong are refused before any
//! member sees them: no `Host` or two, a transfer coding other than `chunked`, `CONNECT`, a
//! head over `maxheaderlen` even when it arrives in one write. A member connect that Ballast
//! cannot even open (out of file descriptors) is Ballast's failure, not the member's. And
//! members' request bytes are counted.

use std::net::SocketAddr;
use std::time::Duration;

use ballast_tests::prom::{sample, scrape};
use ballast_tests::raw::{self, RawReply};
use ballast_tests::{
    Backend, Ballast, Binary, H1, H2, Net, get, members_toml, single_vserver_config,
};
use bytes::Bytes;
use http::{Request, StatusCode, Version};
use http_body_util::Full;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// The `ballast` binary cargo built for this test run.
const BALLAST: Binary = Binary::new(env!("CARGO_BIN_EXE_ballast"));

/// How long a raw exchange waits for the proxy to answer and close.
const RAW_TIMEOUT: Duration = Duration::from_secs(5);

struct Setup {
    ballast: Ballast,
    members: Vec<Backend>,
    vserver: SocketAddr,
    metrics: SocketAddr,
}

/// An `HTTP` vserver `web` over `members` backends (servicegroup `pool`, `group_keys` added to
/// it), `[metrics]` on its own address, and `extra` appended.
async fn setup(members: usize, group_keys: &str, extra: &str) -> Setup {
    let net = Net::new();
    let mut backends = Vec::new();
    for i in 0..members {
        backends.push(Backend::start(net.free_addr(1 + i as u8), &format!("m{i}")).await);
    }
    let vserver = net.free_addr(100);
    let metrics = net.free_addr(101);
    let addrs: Vec<SocketAddr> = backends.iter().map(Backend::addr).collect();
    let members_line = format!("{group_keys}{}", members_toml(&addrs));
    let extra = format!("[metrics]\nlisten = \"{metrics}\"\n\n{extra}");
    let config = single_vserver_config(vserver, "HTTP", "ROUNDROBIN", &members_line, &extra);
    let ballast = BALLAST.start(&config).await;
    Setup {
        ballast,
        members: backends,
        vserver,
        metrics,
    }
}

/// Writes `bytes`, half-closes if `end` (the client has nothing more to send), and reads the
/// answer until the proxy closes.
async fn send(vserver: SocketAddr, bytes: &[u8], end: bool) -> RawReply {
    let mut stream = TcpStream::connect(vserver).await.expect("connect");
    stream.write_all(bytes).await.expect("write");
    if end {
        stream.shutdown().await.expect("half-close");
    }
    raw::read_until_closed(&mut stream, RAW_TIMEOUT).await
}

fn member_series(name: &str, member: &Backend) -> String {
    format!(
        "{name}{{servicegroup=\"pool\",member=\"{}\"}}",
        member.addr()
    )
}

fn errors_series(side: &str, kind: &str) -> String {
    format!("ballast_vserver_errors_total{{vserver=\"web\",side=\"{side}\",kind=\"{kind}\"}}")
}

/// Every `side="member"` and `side="ballast"` series of `ballast_vserver_errors_total`, summed.
fn not_client_errors(text: &str) -> f64 {
    text.lines()
        .filter(|line| line.starts_with("ballast_vserver_errors_total{"))
        .filter(|line| !line.contains("side=\"client\""))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_request_bodies_get_400_and_never_count_against_members() {
    let setup = setup(2, "", "").await;
    let bad_chunk: &[u8] =
        b"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n";
    let truncated_chunked: &[u8] =
        b"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel";
    let short_body: &[u8] =
        b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly twenty bytes...";
    let kinds = [
        ("bad chunk size", bad_chunk, false),
        ("truncated chunked body", truncated_chunked, true),
        ("body shorter than Content-Length", short_body, true),
    ];

    let mut tasks = JoinSet::new();
    let mut sent = [0u64; 3];
    for i in 0..500 {
        let which = i % kinds.len();
        sent[which] += 1;
        let (name, bytes, end) = kinds[which];
        let vserver = setup.vserver;
        tasks.spawn(async move { (name, send(vserver, bytes, end).await) });
        if tasks.len() >= 8 {
            let (name, reply) = tasks.join_next().await.expect("a task").expect("no panic");
            assert_eq!(reply.status(), Some(400), "{name} got {:?}", reply.text());
        }
    }
    while let Some(done) = tasks.join_next().await {
        let (name, reply) = done.expect("no panic");
        assert_eq!(reply.status(), Some(400), "{name} got {:?}", reply.text());
    }

    let (_, text) = scrape(setup.metrics, None).await;
    for member in &setup.members {
        for (series, expected) in [
            ("ballast_member_up", 1.0),
            ("ballast_member_connect_failures_total", 0.0),
            ("ballast_member_errors_total", 0.0),
        ] {
            assert_eq!(
                sample(&text, &member_series(series, member)),
                Some(expected),
                "{series} of {} after 500 malformed client requests\n{text}",
                member.addr()
            );
        }
    }
    assert_eq!(
        sample(&text, &errors_series("client", "malformed_body")),
        Some(sent[0] as f64),
        "{text}"
    );
    assert_eq!(
        sample(&text, &errors_series("client", "incomplete_body")),
        Some((sent[1] + sent[2]) as f64),
        "{text}"
    );
    assert_eq!(not_client_errors(&text), 0.0, "{text}");
    assert_eq!(
        sample(
            &text,
            "ballast_vserver_responses_total{vserver=\"web\",class=\"4xx\"}"
        ),
        Some(500.0)
    );
    let changes = setup
        .ballast
        .find_all(|line| ballast_tests::is_event(line, "member state changed"));
    assert!(changes.is_empty(), "members changed state: {changes:?}");
    for _ in 0..4 {
        assert_eq!(
            get(setup.vserver, "/").await.expect("served").status,
            StatusCode::OK
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_upload_ends_at_clientbodytimeout_without_touching_the_members_response_time() {
    let setup = setup(
        1,
        "svrtimeout = \"1s\"\n",
        "[httpprofile]\nclientbodytimeout = \"1s\"\n",
    )
    .await;
    let member = &setup.members[0];
    let response_time = member_series("ballast_member_response_time_seconds", member);
    for _ in 0..5 {
        assert_eq!(get(setup.vserver, "/").await.expect("served").status, 200);
    }
    let (_, before) = scrape(setup.metrics, None).await;
    let warm = sample(&before, &response_time).expect("a response time");

    // 100 of 1000 bytes, then silence: 408 after about a second, the client's fault.
    let mut stream = TcpStream::connect(setup.vserver).await.expect("connect");
    let head = "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n";
    stream.write_all(head.as_bytes()).await.expect("head");
    stream.write_all(&[b'x'; 100]).await.expect("some body");
    let started = Instant::now();
    let reply = raw::read_until_closed(&mut stream, RAW_TIMEOUT).await;
    let waited = started.elapsed();
    assert_eq!(reply.status(), Some(408), "got {:?}", reply.text());
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(3),
        "the stalled upload ended after {waited:?}, expected about 1 s"
    );
    let (_, after) = scrape(setup.metrics, None).await;
    assert_eq!(
        sample(&after, &response_time),
        Some(warm),
        "a stalled upload moved the member's response time"
    );
    assert_eq!(
        sample(
            &after,
            &member_series("ballast_member_errors_total", member)
        ),
        Some(0.0)
    );
    assert_eq!(
        sample(&after, &errors_series("client", "body_timeout")),
        Some(1.0),
        "{after}"
    );
    assert_eq!(not_client_errors(&after), 0.0, "{after}");

    // A slow upload that keeps moving (300 ms gaps, 1.8 s in all, longer than svrtimeout) is
    // served, and the member's time to first byte is counted from the end of the body.
    let mut stream = TcpStream::connect(setup.vserver).await.expect("connect");
    let head =
        "POST /upload HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 600\r\n\r\n";
    stream.write_all(head.as_bytes()).await.expect("head");
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        stream
            .write_all(&[b'y'; 100])
            .await
            .expect("a slice of body");
    }
    let reply = raw::read_until_closed(&mut stream, RAW_TIMEOUT).await;
    assert_eq!(reply.status(), Some(200), "got {:?}", reply.text());
    let (_, slow) = scrape(setup.metrics, None).await;
    let ewma = sample(&slow, &response_time).expect("a response time");
    // Counted from the start of the upload, the 1.8 s sample alone would add 0.225 s.
    assert!(
        ewma < 0.1,
        "the slow upload skewed the member's response time: {warm} s → {ewma} s"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_a_peer_gets_wrong_are_refused_before_any_member_sees_them() {
    let mut setup = setup(1, "", "").await;
    let cases: [(&str, &[u8], u16); 7] = [
        ("not HTTP", b"this is not http\r\n\r\n", 400),
        ("no Host", b"GET / HTTP/1.1\r\n\r\n", 400),
        (
            "two Hosts",
            b"GET / HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\n\r\n",
            400,
        ),
        (
            "user information in Host",
            b"GET / HTTP/1.1\r\nHost: user@a.test\r\n\r\n",
            400,
        ),
        (
            "a Host with a space",
            b"GET / HTTP/1.1\r\nHost: a test\r\n\r\n",
            400,
        ),
        (
            "gzip, chunked",
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
            501,
        ),
        (
            "CONNECT",
            b"CONNECT a.test:443 HTTP/1.1\r\nHost: a.test:443\r\n\r\n",
            405,
        ),
    ];
    for (name, bytes, status) in cases {
        let reply = send(setup.vserver, bytes, false).await;
        assert_eq!(
            reply.status(),
            Some(status),
            "{name} got {:?}",
            reply.text()
        );
        assert!(reply.closed, "{name}: the connection stayed open");
    }
    // Heads over the default 32 KB limit, each in one write: 431 whatever hyper's read buffer
    // lets through; 32 KB exactly passes.
    let head = |len: usize| {
        let start = "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Big: ";
        format!("{start}{}\r\n\r\n", "b".repeat(len - start.len() - 4))
    };
    let too_large = [32 * 1024 + 1, 33 * 1024, 40 * 1024, 49 * 1024, 64 * 1024];
    for len in too_large {
        let reply = send(setup.vserver, head(len).as_bytes(), false).await;
        assert_eq!(
            reply.status(),
            Some(431),
            "a {len}-byte head got {:?}",
            reply.text()
        );
    }
    let app = &setup.members[0];
    assert_eq!(app.requests(), 0, "a refused request reached the member");
    let reply = send(setup.vserver, head(32 * 1024).as_bytes(), false).await;
    assert_eq!(
        reply.status(),
        Some(200),
        "a 32 KB head got {:?}",
        reply.text()
    );

    // An absolute-form target's authority wins over Host; HTTP/2's :authority does too.
    let reply = send(
        setup.vserver,
        b"GET http://a.test/echo-headers HTTP/1.1\r\nHost: b.test\r\nConnection: close\r\n\r\n",
        false,
    )
    .await;
    assert_eq!(reply.status(), Some(200), "{}", reply.text());
    assert!(
        reply.text().contains("host: a.test\n") && !reply.text().contains("b.test"),
        "{}",
        reply.text()
    );
    let mut h2 = H2::connect(setup.vserver).await.expect("h2c");
    let request = Request::get("http://a.test/echo-headers")
        .version(Version::HTTP_2)
        .header("host", "b.test")
        .body(Full::new(Bytes::new()))
        .expect("a request");
    let reply = h2.send(request).await.expect("an HTTP/2 answer");
    assert_eq!(reply.status, StatusCode::OK);
    assert!(
        reply.text().contains("host: a.test\n") && !reply.text().contains("b.test"),
        "{}",
        reply.text()
    );
    // HTTP/1.0 needs no Host.
    let reply = send(setup.vserver, b"GET /old HTTP/1.0\r\n\r\n", false).await;
    assert_eq!(reply.status(), Some(200), "{}", reply.text());
    assert_eq!(app.requests(), 4);

    let (_, text) = scrape(setup.metrics, None).await;
    for (kind, count) in [
        ("bad_host", 4.0),
        ("transfer_coding", 1.0),
        ("method", 1.0),
        ("head_too_large", too_large.len() as f64),
        ("malformed_head", 1.0),
    ] {
        assert_eq!(
            sample(&text, &errors_series("client", kind)),
            Some(count),
            "{kind}\n{text}"
        );
    }
    setup.ballast.assert_running();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_request_bytes_count_what_was_sent() {
    let setup = setup(1, "", "").await;
    let member = &setup.members[0];
    let series = member_series("ballast_member_request_bytes_total", member);
    let (_, before) = scrape(setup.metrics, None).await;
    assert_eq!(sample(&before, &series), Some(0.0), "{before}");

    let mut client = H1::connect(setup.vserver).await.expect("connect");
    let body = Bytes::from(vec![b'z'; 10_000]);
    let request = Request::post("/upload")
        .header("host", "x")
        .body(Full::new(body))
        .expect("a request");
    let reply = client.send(request).await.expect("an answer");
    assert_eq!(reply.status, StatusCode::OK);

    let (_, after) = scrape(setup.metrics, None).await;
    let sent = sample(&after, &series).expect("request bytes");
    // The 10,000 body bytes, and a head of some 100 bytes (request line and headers).
    assert!(
        (10_050.0..11_000.0).contains(&sent),
        "{sent} request bytes counted for a 10,000-byte POST"
    );
    assert_eq!(
        sample(
            &after,
            "ballast_vserver_request_bytes_total{vserver=\"web\"}"
        ),
        Some(10_000.0),
        "the vserver counts body bytes"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connect_ballast_cannot_open_for_lack_of_fds_is_not_the_members_failure() {
    let net = Net::new();
    let app = Backend::start(net.free_addr(1), "app").await;
    let vserver = net.free_addr(100);
    let metrics = net.free_addr(101);
    // 128 descriptors, and a maxconn above them, so that client connections can use them all.
    let config = single_vserver_config(
        vserver,
        "HTTP",
        "ROUNDROBIN",
        &members_toml(&[app.addr()]),
        &format!("[metrics]\nlisten = \"{metrics}\"\n"),
    )
    .replacen("[ballast]\n", "[ballast]\nmaxconn = 100000\n", 1);
    let ballast = BALLAST.with_nofile(128).start(&config).await;

    // A client that has connected but not sent its request yet, then enough idle connections
    // to use up every descriptor Ballast has left.
    let mut kept = TcpStream::connect(vserver).await.expect("connect");
    let mut fillers = Vec::new();
    for _ in 0..200 {
        fillers.push(TcpStream::connect(vserver).await.expect("connect a filler"));
    }
    let exhausted = ballast
        .wait_for_log(
            |line| {
                ballast_tests::field(line, "message")
                    .is_some_and(|message| message.starts_with("cannot accept connections"))
            },
            Duration::from_secs(5),
        )
        .await;
    assert!(
        exhausted.is_some(),
        "Ballast never ran out of descriptors:\n{}",
        ballast.log_text()
    );

    // The request needs one more descriptor, for the member: 503, Ballast's own failure.
    kept.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .expect("request");
    let reply = raw::read_until_closed(&mut kept, RAW_TIMEOUT).await;
    assert_eq!(reply.status(), Some(503), "got {:?}", reply.text());
    assert!(
        !reply.text().contains(&app.addr().ip().to_string()),
        "{}",
        reply.text()
    );
    drop(fillers);

    // Descriptors free again: the member was never blamed, and serves.
    let mut served = false;
    for _ in 0..50 {
        if get(vserver, "/")
            .await
            .is_ok_and(|reply| reply.status == StatusCode::OK)
        {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        served,
        "the vserver did not serve again:\n{}",
        ballast.log_text()
    );
    let (_, text) = scrape(metrics, None).await;
    let series = |name: &str| format!("{name}{{servicegroup=\"pool\",member=\"{}\"}}", app.addr());
    assert_eq!(
        sample(&text, &series("ballast_member_up")),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, &series("ballast_member_connect_failures_total")),
        Some(0.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, &errors_series("ballast", "local_resources")),
        Some(1.0),
        "{text}"
    );
    let down = ballast.find_all(|line| ballast_tests::is_event(line, "member state changed"));
    assert!(down.is_empty(), "the member changed state: {down:?}");
}
