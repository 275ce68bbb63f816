//! Bounded resources: `maxconn` (set, or derived from a lowered file descriptor limit), a
//! vserver's `maxclient` and `maxclientpersource`, running out of descriptors without blaming a
//! member, idle timeouts (`clttimeout` for TCP and HTTP/2, `clientheadertimeout` for slow
//! clients), and the HTTP/2 stream cap. Everything runs through the real binary.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ballast_tests::client::connect_tcp;
use ballast_tests::prom::{sample, scrape};
use ballast_tests::raw::read_until_closed;
use ballast_tests::{
    BALLAST_SECTION, Backend, Ballast, Binary, EchoBackend, H1, H2, Net, is_event,
    member_state_changed, wait_until,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio::time::Instant;

const BALLAST: Binary = Binary::new(env!("CARGO_BIN_EXE_ballast"));

/// The HTTP/2 connection preface and an empty SETTINGS frame.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";

/// Everything one test runs: an HTTP backend behind vserver `web`, a TCP echo backend behind
/// vserver `tcp`, both monitored every 200 ms (two failures mark a member DOWN), and metrics.
struct Rig {
    net: Net,
    web: SocketAddr,
    tcp: SocketAddr,
    metrics: SocketAddr,
    backend: Backend,
    echo: EchoBackend,
}

impl Rig {
    async fn new() -> Rig {
        let net = Net::new();
        Rig {
            web: net.free_addr(1),
            tcp: net.free_addr(1),
            metrics: net.free_addr(1),
            backend: Backend::start(net.free_addr(2), "b1").await,
            echo: EchoBackend::start(net.free_addr(3)).await,
            net,
        }
    }

    /// The config: `ballast` goes into `[ballast]`, `profile` into `[httpprofile]`, `web` and
    /// `tcp` into their vservers.
    fn config(&self, ballast: &str, profile: &str, web: &str, tcp: &str) -> String {
        format!(
            r#"{BALLAST_SECTION}{ballast}

[httpprofile]
{profile}

[metrics]
listen = "{metrics}"

[[lbmonitor]]
monitorname = "http"
type = "HTTP"
httprequest = "GET /healthz"
respcode = ["200"]
interval = "200ms"
resptimeout = "150ms"
retries = 2

[[lbmonitor]]
monitorname = "tcp"
type = "TCP"
interval = "200ms"
resptimeout = "150ms"
retries = 2

[[servicegroup]]
servicegroupname = "pool"
servicetype = "HTTP"
monitor = ["http"]
members = [{{ ip = "{b_ip}", port = {b_port} }}]

[[servicegroup]]
servicegroupname = "echo"
servicetype = "TCP"
monitor = ["tcp"]
members = [{{ ip = "{e_ip}", port = {e_port} }}]

[[lbvserver]]
name = "web"
servicetype = "HTTP"
ipv46 = "{web_ip}"
port = {web_port}
servicegroupname = "pool"
{web}

[[lbvserver]]
name = "tcp"
servicetype = "TCP"
ipv46 = "{tcp_ip}"
port = {tcp_port}
servicegroupname = "echo"
{tcp}
"#,
            metrics = self.metrics,
            b_ip = self.backend.addr().ip(),
            b_port = self.backend.addr().port(),
            e_ip = self.echo.addr().ip(),
            e_port = self.echo.addr().port(),
            web_ip = self.web.ip(),
            web_port = self.web.port(),
            tcp_ip = self.tcp.ip(),
            tcp_port = self.tcp.port(),
        )
    }

    /// One series from `/metrics` (0 when absent).
    async fn metric(&self, series: &str) -> f64 {
        let (_, text) = scrape(self.metrics, None).await;
        sample(&text, series).unwrap_or(0.0)
    }

    /// Waits until `series` satisfies `holds`; returns its last value.
    async fn wait_metric(&self, series: &str, holds: impl Fn(f64) -> bool) -> f64 {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let value = self.metric(series).await;
            if holds(value) || Instant::now() >= deadline {
                return value;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn member_up(&self, group: &str, member: SocketAddr) -> String {
        format!("ballast_member_up{{servicegroup=\"{group}\",member=\"{member}\"}}")
    }

    /// Both members UP in `/metrics`, and no log line ever said one went DOWN.
    async fn assert_members_up(&self, ballast: &Ballast) {
        for (group, member) in [("pool", self.backend.addr()), ("echo", self.echo.addr())] {
            assert_eq!(self.metric(&self.member_up(group, member)).await, 1.0);
            let downs = ballast.find_all(member_state_changed(member, "DOWN"));
            assert!(downs.is_empty(), "{member} was marked DOWN: {downs:?}");
        }
    }
}

fn refused(vserver: &str, limit: &str) -> String {
    format!("ballast_connections_refused_total{{vserver=\"{vserver}\",limit=\"{limit}\"}}")
}

/// A TCP connection through the `tcp` vserver that got as far as a member: one byte echoed.
async fn relayed(addr: SocketAddr) -> TcpStream {
    let mut stream = connect_tcp(addr, None).await.expect("connect");
    stream.write_all(b"x").await.expect("write");
    let mut byte = [0u8; 1];
    tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut byte))
        .await
        .expect("the echo comes back in time")
        .expect("the echo comes back");
    stream
}

/// A GET on a fresh connection (from `source` when given), read until the proxy closes it or
/// a few seconds pass.
async fn raw_get(addr: SocketAddr, source: Option<IpAddr>) -> ballast_tests::raw::RawReply {
    let mut stream = connect_tcp(addr, source).await.expect("connect");
    stream
        .write_all(b"GET / HTTP/1.1\r\nhost: web\r\n\r\n")
        .await
        .expect("write");
    read_until_closed(&mut stream, Duration::from_secs(3)).await
}

/// Whether a TCP vserver closed this new connection without relaying a byte.
async fn closed_without_relaying(addr: SocketAddr) -> bool {
    let mut stream = connect_tcp(addr, None).await.expect("connect");
    let _ = stream.write_all(b"y").await;
    let reply = read_until_closed(&mut stream, Duration::from_secs(3)).await;
    reply.closed && reply.data.is_empty()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lowered_descriptor_limit_sets_maxconn_refuses_the_rest_and_keeps_members_up() {
    let rig = Rig::new().await;
    // (512 - 256) / 3 = 85 client connections.
    let config = rig.config("", "clientheadertimeout = \"60s\"", "", "");
    let ballast = BALLAST.with_nofile(512).start(&config).await;
    assert_eq!(rig.metric("ballast_maxconn").await, 85.0);

    // 40 relayed TCP connections, 25 idle HTTP/1 ones, 20 HTTP/2 ones with 2 stalled streams
    // each: 85 in all.
    let mut held = Vec::new();
    for _ in 0..40 {
        held.push(relayed(rig.tcp).await);
    }
    for _ in 0..25 {
        held.push(connect_tcp(rig.web, None).await.expect("connect"));
    }
    let mut stalled = JoinSet::new();
    let mut h2s = Vec::new();
    for _ in 0..20 {
        let h2 = H2::connect(rig.web).await.expect("an HTTP/2 connection");
        for _ in 0..2 {
            let mut stream = h2.clone();
            stalled.spawn(async move { stream.get("/slow?ms=30000").await });
        }
        h2s.push(h2);
    }
    let open = rig.wait_metric("ballast_connections", |n| n >= 85.0).await;
    assert_eq!(open, 85.0);
    let backend = &rig.backend;
    assert!(wait_until(Duration::from_secs(10), || backend.in_flight() == 40).await);

    // Over the limit: HTTP gets a short 503, TCP is closed.
    let reply = raw_get(rig.web, None).await;
    assert_eq!(reply.status(), Some(503), "{}", reply.text());
    assert!(reply.closed, "a refused connection is closed");
    assert!(
        reply.text().ends_with("too many connections\n"),
        "{}",
        reply.text()
    );
    assert!(closed_without_relaying(rig.tcp).await);
    assert_eq!(rig.metric(&refused("web", "maxconn")).await, 1.0);
    assert_eq!(rig.metric(&refused("tcp", "maxconn")).await, 1.0);
    assert_eq!(rig.metric("ballast_connections").await, 85.0);
    // Several monitor rounds pass at the limit: members stay UP.
    tokio::time::sleep(Duration::from_secs(1)).await;
    rig.assert_members_up(&ballast).await;

    // The load goes; normal traffic works again.
    drop(held);
    drop(h2s);
    stalled.abort_all();
    rig.wait_metric("ballast_connections", |n| n == 0.0).await;
    let mut client = H1::connect(rig.web).await.expect("connect");
    assert_eq!(client.get("/").await.expect("a reply").status, 200);
    drop(relayed(rig.tcp).await);
    rig.assert_members_up(&ballast).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maxconn_also_bounds_http2_requests_in_flight() {
    let rig = Rig::new().await;
    let config = rig.config("maxconn = 10", "", "", "");
    let ballast = BALLAST.start(&config).await;

    // One client connection, 30 slow streams: each would hold a connection to the member.
    let h2 = H2::connect(rig.web).await.expect("an HTTP/2 connection");
    let mut streams = JoinSet::new();
    for _ in 0..30 {
        let mut stream = h2.clone();
        streams.spawn(async move { stream.get("/slow?ms=2000").await });
    }
    let backend = &rig.backend;
    assert!(wait_until(Duration::from_secs(5), || backend.in_flight() == 10).await);
    let mut statuses = Vec::new();
    while let Some(reply) = streams.join_next().await {
        let reply = reply.expect("a stream task").expect("a reply");
        statuses.push(reply.status.as_u16());
        assert!(
            backend.in_flight() <= 10,
            "{} in flight",
            backend.in_flight()
        );
    }
    statuses.sort_unstable();
    assert_eq!(statuses, [[200; 10].as_slice(), &[503; 20]].concat());
    let refused =
        "ballast_vserver_errors_total{vserver=\"web\",side=\"ballast\",kind=\"local_resources\"}";
    assert_eq!(rig.metric(refused).await, 20.0);
    rig.assert_members_up(&ballast).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_descriptors_no_member_is_blamed_and_accepting_backs_off() {
    let rig = Rig::new().await;
    // maxconn far above what 200 descriptors hold: the process really runs out.
    let config = rig.config("maxconn = 10000", "clientheadertimeout = \"60s\"", "", "");
    let ballast = BALLAST.with_nofile(200).start(&config).await;
    // An HTTP/2 connection opened first, to send requests on once descriptors are gone.
    let mut h2 = H2::connect(rig.web).await.expect("an HTTP/2 connection");

    // 20 relayed TCP connections take six descriptors each (client, member, two pipes); then
    // idle HTTP connections, which hold theirs, take the rest: the next accepts fail.
    let mut held = Vec::new();
    for _ in 0..20 {
        held.push(relayed(rig.tcp).await);
    }
    for _ in 0..150 {
        held.push(connect_tcp(rig.web, None).await.expect("connect"));
    }
    let exhausted = ballast
        .wait_for_log(
            |line| is_event(line, "cannot accept connections: Ballast is out of file descriptors or memory; backing off until it can"),
            Duration::from_secs(10),
        )
        .await;
    assert!(exhausted.is_some(), "no back-off was logged");

    // A request that needs a new connection to the member gets 503, and the member is not
    // blamed for it.
    let reply = h2.get("/").await.expect("a reply");
    assert_eq!(reply.status, 503, "{}", reply.text());
    // Monitor rounds (every 200 ms, DOWN after 2 failures) pass while descriptors are gone.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for member in [rig.backend.addr(), rig.echo.addr()] {
        let downs = ballast.find_all(member_state_changed(member, "DOWN"));
        assert!(downs.is_empty(), "{member} was marked DOWN: {downs:?}");
    }
    // Backing off, not spinning: a handful of episodes at most, not one line per accept.
    let warnings = ballast.find_all(|line| {
        is_event(line, "cannot accept connections: Ballast is out of file descriptors or memory; backing off until it can")
    });
    assert!(warnings.len() <= 5, "{} back-off warnings", warnings.len());

    // The load goes: accepting resumes (logged with a count), and everything works.
    drop(held);
    let resumed = ballast
        .wait_for_log(
            |line| is_event(line, "accepting connections again"),
            Duration::from_secs(10),
        )
        .await
        .expect("the end of the episode is logged");
    assert!(resumed.to_string().contains("failed_accepts"), "{resumed}");
    // Clients that hung up (with a reset: their echo was never read) free their relays.
    let open = rig.wait_metric("ballast_connections", |n| n <= 1.0).await;
    assert_eq!(open, 1.0, "only the HTTP/2 connection is left");
    assert_eq!(h2.get("/").await.expect("a reply").status, 200);
    let mut client = H1::connect(rig.web).await.expect("connect");
    assert_eq!(client.get("/").await.expect("a reply").status, 200);
    drop(relayed(rig.tcp).await);
    rig.assert_members_up(&ballast).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_idle_and_500_slowloris_connections_leave_1000_requests_unharmed() {
    ballast_tests::raise_nofile_limit();
    let rig = Rig::new().await;
    let header_timeout = Duration::from_secs(10);
    let config = rig.config("maxconn = 12000", "clientheadertimeout = \"10s\"", "", "");
    let ballast = BALLAST.start(&config).await;

    let mut idle = Vec::with_capacity(10_000);
    for _ in 0..50 {
        let mut batch = JoinSet::new();
        for _ in 0..200 {
            batch.spawn(connect_tcp(rig.web, None));
        }
        while let Some(stream) = batch.join_next().await {
            idle.push(stream.expect("a connect task").expect("an idle connection"));
        }
    }
    let mut slowloris = JoinSet::new();
    for _ in 0..500 {
        let mut stream = connect_tcp(rig.web, None).await.expect("connect");
        let opened = Instant::now();
        stream
            .write_all(b"GET / HTTP/1.1\r\nhost: web\r\n")
            .await
            .expect("write");
        slowloris.spawn(async move {
            // One header line a second, never the end of the head; until the proxy hangs up.
            let mut buffer = [0u8; 1024];
            loop {
                tokio::select! {
                    read = stream.read(&mut buffer) => match read {
                        Ok(0) | Err(_) => return opened.elapsed(),
                        Ok(_) => {}
                    },
                    () = tokio::time::sleep(Duration::from_secs(1)) => {
                        if stream.write_all(b"x-slow: 1\r\n").await.is_err() {
                            return opened.elapsed();
                        }
                    }
                }
            }
        });
    }
    let open = rig
        .wait_metric("ballast_connections", |n| n >= 10_500.0)
        .await;
    assert!(open >= 10_500.0, "only {open} connections open");

    // 1,000 requests on 20 keep-alive connections while all of that is open.
    let mut clients = JoinSet::new();
    for _ in 0..20 {
        let web = rig.web;
        clients.spawn(async move {
            let mut client = H1::connect(web).await.expect("connect");
            let mut ok = 0;
            for _ in 0..50 {
                if client.get("/").await.is_ok_and(|reply| reply.status == 200) {
                    ok += 1;
                }
            }
            ok
        });
    }
    let mut ok = 0;
    while let Some(done) = clients.join_next().await {
        ok += done.expect("a client task");
    }
    assert_eq!(ok, 1000);
    let still_open = rig.metric("ballast_connections").await;
    assert!(
        still_open >= 10_000.0,
        "the idle connections closed too early: {still_open}"
    );

    // Every slowloris connection is closed at the header timeout.
    while let Some(lasted) = slowloris.join_next().await {
        let lasted = lasted.expect("a slowloris task");
        assert!(
            lasted >= header_timeout - Duration::from_millis(500)
                && lasted <= header_timeout + Duration::from_secs(5),
            "a slowloris connection lasted {lasted:?}"
        );
    }
    drop(idle);
    rig.assert_members_up(&ballast).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_tcp_connection_is_closed_at_clttimeout_and_a_busy_one_is_not() {
    let rig = Rig::new().await;
    let config = rig.config("", "", "", "clttimeout = \"1s\"");
    let _ballast = BALLAST.start(&config).await;

    let mut idle = relayed(rig.tcp).await;
    let last_byte = Instant::now();
    let mut busy = relayed(rig.tcp).await;
    let busy_task = tokio::spawn(async move {
        for _ in 0..6 {
            tokio::time::sleep(Duration::from_millis(400)).await;
            busy.write_all(b"z").await?;
            let mut byte = [0u8; 1];
            busy.read_exact(&mut byte).await?;
        }
        std::io::Result::Ok(())
    });
    let reply = read_until_closed(&mut idle, Duration::from_secs(5)).await;
    let lasted = last_byte.elapsed();
    assert!(reply.closed, "the idle connection is still open");
    assert!(
        lasted >= Duration::from_millis(900) && lasted <= Duration::from_millis(2500),
        "closed {lasted:?} after its last byte"
    );
    // 2.4 s of a byte every 400 ms: never idle for 1 s, never closed.
    busy_task
        .await
        .expect("the busy task")
        .expect("the busy connection stays open");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http2_connection_with_only_its_preface_is_closed_at_clttimeout() {
    let rig = Rig::new().await;
    let config = rig.config("", "", "clttimeout = \"1s\"", "");
    let _ballast = BALLAST.start(&config).await;

    let mut stream = connect_tcp(rig.web, None).await.expect("connect");
    stream.write_all(H2_PREFACE).await.expect("write");
    let started = Instant::now();
    let reply = read_until_closed(&mut stream, Duration::from_secs(6)).await;
    let lasted = started.elapsed();
    assert!(reply.closed, "the idle HTTP/2 connection is still open");
    assert!(
        lasted >= Duration::from_millis(900) && lasted <= Duration::from_millis(3500),
        "closed after {lasted:?}"
    );
    let frames = frames(&reply.data);
    assert!(
        frames.iter().any(|frame| frame.kind == GOAWAY),
        "no GOAWAY: {frames:?}"
    );

    // A stream longer than the idle timeout is not idleness.
    let mut h2 = H2::connect(rig.web).await.expect("an HTTP/2 connection");
    assert_eq!(h2.get("/slow?ms=2500").await.expect("a reply").status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http2_client_over_maxconcurrentstreams_gets_refused_streams() {
    let rig = Rig::new().await;
    let config = rig.config("", "maxconcurrentstreams = 4", "", "");
    let _ballast = BALLAST.start(&config).await;

    let mut stream = connect_tcp(rig.web, None).await.expect("connect");
    stream.write_all(H2_PREFACE).await.expect("write");
    // The server's SETTINGS announce the cap; acknowledge them, then open six streams.
    let mut seen = Vec::new();
    let settings = loop {
        let mut buffer = [0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buffer))
            .await
            .expect("the server's SETTINGS in time")
            .expect("read");
        assert!(n > 0, "closed before SETTINGS");
        seen.extend_from_slice(&buffer[..n]);
        if let Some(frame) = frames(&seen)
            .into_iter()
            .find(|f| f.kind == SETTINGS && f.flags & 1 == 0)
        {
            break frame;
        }
    };
    let max_streams = settings
        .payload
        .chunks(6)
        .find(|setting| setting[..2] == [0, 3])
        .map(|setting| u32::from_be_bytes([setting[2], setting[3], setting[4], setting[5]]));
    assert_eq!(max_streams, Some(4), "SETTINGS_MAX_CONCURRENT_STREAMS");
    stream
        .write_all(&frame(SETTINGS, 1, 0, &[]))
        .await
        .expect("write");
    let mut requests = Vec::new();
    for id in [1u32, 3, 5, 7, 9, 11] {
        requests.extend(frame(HEADERS, 0x5, id, &slow_get_headers()));
    }
    stream.write_all(&requests).await.expect("write");

    // Read until all six streams are settled: four answered, two refused.
    let mut data = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(8);
    let (mut answered, mut refused) = (Vec::new(), Vec::new());
    while answered.len() + refused.len() < 6 && Instant::now() < deadline {
        let mut buffer = [0u8; 16 * 1024];
        let read = tokio::time::timeout_at(deadline, stream.read(&mut buffer)).await;
        let Ok(Ok(n)) = read else { break };
        if n == 0 {
            break;
        }
        data.extend_from_slice(&buffer[..n]);
        answered.clear();
        refused.clear();
        for frame in frames(&data) {
            match frame.kind {
                HEADERS => answered.push(frame.stream),
                RST_STREAM if frame.payload == [0, 0, 0, 7] => refused.push(frame.stream),
                _ => {}
            }
        }
    }
    answered.sort_unstable();
    refused.sort_unstable();
    assert_eq!(answered, [1, 3, 5, 7], "streams answered");
    assert_eq!(refused, [9, 11], "streams refused with REFUSED_STREAM");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maxclient_and_maxclientpersource_refuse_and_count() {
    let rig = Rig::new().await;
    let config = rig.config(
        "",
        "clientheadertimeout = \"60s\"",
        "maxclient = 4\nmaxclientpersource = 2",
        "",
    );
    let _ballast = BALLAST.start(&config).await;
    let connections = "ballast_vserver_client_connections{vserver=\"web\"}";
    let (a, b, c) = (rig.net.ip(100), rig.net.ip(101), rig.net.ip(102));

    let mut from_a = Vec::new();
    for _ in 0..2 {
        from_a.push(connect_tcp(rig.web, Some(a)).await.expect("connect"));
    }
    assert_eq!(rig.wait_metric(connections, |n| n >= 2.0).await, 2.0);
    let reply = raw_get(rig.web, Some(a)).await;
    assert_eq!(
        reply.status(),
        Some(503),
        "a third from one source: {}",
        reply.text()
    );
    assert_eq!(rig.metric(&refused("web", "maxclientpersource")).await, 1.0);

    let mut from_b = Vec::new();
    for _ in 0..2 {
        from_b.push(connect_tcp(rig.web, Some(b)).await.expect("connect"));
    }
    assert_eq!(rig.wait_metric(connections, |n| n >= 4.0).await, 4.0);
    let reply = raw_get(rig.web, Some(c)).await;
    assert_eq!(
        reply.status(),
        Some(503),
        "a fifth on the vserver: {}",
        reply.text()
    );
    assert_eq!(rig.metric(&refused("web", "maxclient")).await, 1.0);
    assert_eq!(rig.metric(&refused("web", "maxconn")).await, 0.0);

    // One closes: a new source gets in.
    drop(from_a.pop());
    assert_eq!(rig.wait_metric(connections, |n| n <= 3.0).await, 3.0);
    let mut client = H1::connect_from(c, rig.web).await.expect("connect");
    assert_eq!(client.get("/").await.expect("a reply").status, 200);
}

const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const GOAWAY: u8 = 0x7;

/// One HTTP/2 frame as read off the wire.
#[derive(Debug)]
struct Frame {
    kind: u8,
    flags: u8,
    stream: u32,
    payload: Vec<u8>,
}

/// Every whole frame in `data`, which starts right after the connection preface.
fn frames(data: &[u8]) -> Vec<Frame> {
    let mut frames = Vec::new();
    let mut rest = data;
    while rest.len() >= 9 {
        let len = u32::from_be_bytes([0, rest[0], rest[1], rest[2]]) as usize;
        if rest.len() < 9 + len {
            break;
        }
        frames.push(Frame {
            kind: rest[3],
            flags: rest[4],
            stream: u32::from_be_bytes([rest[5], rest[6], rest[7], rest[8]]) & 0x7fff_ffff,
            payload: rest[9..9 + len].to_vec(),
        });
        rest = &rest[9 + len..];
    }
    frames
}

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = (payload.len() as u32).to_be_bytes();
    let mut bytes = vec![len[1], len[2], len[3], kind, flags];
    bytes.extend(stream.to_be_bytes());
    bytes.extend(payload);
    bytes
}

/// HPACK for `GET http://web/slow?ms=1500`: indexed `:method GET` and `:scheme http`, then
/// `:path` and `:authority` as literals without indexing.
fn slow_get_headers() -> Vec<u8> {
    let mut block = vec![0x82, 0x86];
    for (name_index, value) in [(4u8, "/slow?ms=1500"), (1, "web")] {
        block.push(name_index);
        block.push(value.len() as u8);
        block.extend(value.as_bytes());
    }
    block
}
