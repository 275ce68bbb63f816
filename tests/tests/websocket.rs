//! WebSocket (HTTP/1.1 `Upgrade`) through `ballast run`, with the Python `websockets` library
//! on both sides: messages go both ways through an `HTTP` vserver; the tunnel counts as an
//! active connection of its member in `stat` while it is open, and its access log line
//! (status 101, bytes) is written when it closes. A member disabled with a `delay` keeps its
//! tunnels for that long (they still echo), then Ballast closes them; a member disabled without
//! one (the autoscaler's scale-in) keeps them until it is unbound (the autoscaler's end of
//! quiettime), which closes them at once. A silent tunnel is
//! closed after `clttimeout`; `wss://` works through an `SSL` vserver; SIGTERM closes open
//! tunnels instead of waiting for them.

use std::net::SocketAddr;
use std::time::Duration;

use ballast_tests::nitro::Nitro;
use ballast_tests::websocket::{WsClient, WsOutcome, WsServer};
use ballast_tests::{
    BALLAST_SECTION, Backend, Binary, H2, Net, TestCa, members_toml, raw, wait_until,
};
use http::StatusCode;
use serde_json::{Value, json};
use tokio::time::Instant;

/// The `ballast` binary cargo built for this test run.
const BALLAST: Binary = Binary::new(env!("CARGO_BIN_EXE_ballast"));

const PASSWORD: &str = "Pw-websocket-1";

/// One `HTTP` vserver `web` over servicegroup `pool` with `members`, an admin API and a JSON
/// access log.
fn config(web: SocketAddr, admin: SocketAddr, members: &[SocketAddr]) -> String {
    config_with(web, admin, members, "HTTP", "")
}

/// [`config`] with the vserver's `servicetype` and `extra` lines in its section.
fn config_with(
    web: SocketAddr,
    admin: SocketAddr,
    members: &[SocketAddr],
    servicetype: &str,
    extra: &str,
) -> String {
    format!(
        r#"{BALLAST_SECTION}[admin]
listen = "{admin}"
passwordfile = "admin.pass"

[accesslog]
path = "access.log"
format = "json"

[[servicegroup]]
servicegroupname = "pool"
servicetype = "HTTP"
{}

[[lbvserver]]
name = "web"
servicetype = "{servicetype}"
ipv46 = "{}"
port = {}
lbmethod = "LEASTCONNECTION"
servicegroupname = "pool"
{extra}
"#,
        members_toml(members),
        web.ip(),
        web.port()
    )
}

/// The member's `curclntconnections` in `stat servicegroup pool`.
async fn member_connections(nitro: &Nitro, member: SocketAddr) -> Option<u64> {
    let stat = nitro.get("stat/servicegroup/pool?statbindings=yes").await;
    let groups = stat.body["servicegroup"].as_array()?.clone();
    let members = groups.first()?["servicegroupmember"].as_array()?.clone();
    members
        .iter()
        .find(|m| m["port"] == json!(member.port()) && m["ip"] == json!(member.ip().to_string()))
        .and_then(|m| m["curclntconnections"].as_u64())
}

/// Polls `stat` until the member counts `want` connections (5 s at most).
async fn connections_become(nitro: &Nitro, member: SocketAddr, want: u64) -> bool {
    for _ in 0..100 {
        if member_connections(nitro, member).await == Some(want) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

fn access_lines(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_pass_both_ways_and_the_tunnel_is_an_active_connection_until_it_closes() {
    let net = Net::new();
    let server = WsServer::start(net.free_addr(1), "m1").await;
    let (web, admin) = (net.free_addr(100), net.free_addr(101));
    let ballast = BALLAST
        .start_with_files(
            &config(web, admin, &[server.addr()]),
            &[("admin.pass", format!("{PASSWORD}\n").as_bytes())],
        )
        .await;
    let nitro = Nitro::new(admin, "nsroot", PASSWORD);

    let mut client = WsClient::connect(&format!("ws://{web}/chat")).await;
    for message in ["hello", "second message", "3"] {
        assert_eq!(
            client.send(message).await,
            WsOutcome::Reply(format!("m1:{message}"))
        );
    }
    assert_eq!(
        member_connections(&nitro, server.addr()).await,
        Some(1),
        "the open tunnel is not an active connection of its member"
    );
    let log = ballast.dir().join("access.log");
    assert!(
        access_lines(&log).is_empty(),
        "the tunnel's line was written before it closed"
    );

    client.close().await;
    assert!(
        connections_become(&nitro, server.addr(), 0).await,
        "the member still counts the closed tunnel"
    );
    assert!(
        wait_until(Duration::from_secs(5), || access_lines(&log).len() == 1).await,
        "no access log line for the tunnel"
    );
    let line = access_lines(&log).remove(0);
    assert_eq!(line["status"], 101, "{line}");
    assert_eq!(line["uri"], "/chat", "{line}");
    assert_eq!(line["member"], server.addr().to_string(), "{line}");
    assert_eq!(line["termination"], "ok", "{line}");
    // Three answers of `m1:` + message, each in a WebSocket frame.
    let answers = ["hello", "second message", "3"]
        .iter()
        .map(|m| 3 + m.len() as u64 + 2)
        .sum::<u64>();
    let sent = line["bytes_sent"].as_u64().expect("bytes_sent");
    assert!(
        sent >= answers,
        "{sent} bytes sent, expected at least {answers}: {line}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_member_keeps_its_tunnel_for_the_delay_then_ballast_closes_it() {
    let net = Net::new();
    let server = WsServer::start(net.free_addr(1), "m1").await;
    let other = WsServer::start(net.free_addr(2), "m2").await;
    let (web, admin) = (net.free_addr(100), net.free_addr(101));
    let ballast = BALLAST
        .start_with_files(
            &config(web, admin, &[server.addr(), other.addr()]),
            &[("admin.pass", format!("{PASSWORD}\n").as_bytes())],
        )
        .await;
    let nitro = Nitro::new(admin, "nsroot", PASSWORD);

    // LEASTCONNECTION: the first tunnel goes to one member, the second to the other.
    let mut first = WsClient::connect(&format!("ws://{web}/")).await;
    let WsOutcome::Reply(answer) = first.send("who").await else {
        panic!("no answer through the first tunnel");
    };
    let mut second = WsClient::connect(&format!("ws://{web}/")).await;
    let (victim, victim_name) = if answer == "m1:who" {
        (server.addr(), "m1")
    } else {
        (other.addr(), "m2")
    };
    assert_ne!(
        second.send("who").await,
        WsOutcome::Reply(answer.clone()),
        "both tunnels went to one member"
    );

    // A delay that is not whole seconds is refused by its path, and nothing changes.
    let refused = nitro
        .post(
            "config/servicegroup?action=disable",
            json!({"servicegroup": {
                "servicegroupname": "pool",
                "ip": victim.ip().to_string(),
                "port": victim.port(),
                "delay": "-1",
            }}),
        )
        .await;
    assert_eq!(
        refused.status,
        StatusCode::BAD_REQUEST,
        "{:?}",
        refused.body
    );
    assert_eq!(
        refused.message(),
        "servicegroup.delay: expected whole seconds (0 or more), got \"-1\""
    );
    assert_eq!(
        first.send("not drained").await,
        WsOutcome::Reply(format!("{victim_name}:not drained"))
    );

    let delay = Duration::from_secs(3);
    let disabled_at = Instant::now();
    let reply = nitro
        .post(
            "config/servicegroup?action=disable",
            json!({"servicegroup": {
                "servicegroupname": "pool",
                "ip": victim.ip().to_string(),
                "port": victim.port(),
                "delay": delay.as_secs(),
            }}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);

    // During the delay: the tunnel still echoes, and the member still counts it.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        first.send("still there?").await,
        WsOutcome::Reply(format!("{victim_name}:still there?")),
        "the tunnel of the drained member did not last its delay"
    );
    assert_eq!(member_connections(&nitro, victim).await, Some(1));

    // After it: closed by Ballast, and the member is OUT OF SERVICE.
    assert!(
        first.closed_within(Duration::from_secs(4)).await,
        "the drained member's tunnel was still open {:?} after the disable",
        disabled_at.elapsed()
    );
    let closed_after = disabled_at.elapsed();
    assert!(
        closed_after >= delay && closed_after < delay + Duration::from_secs(2),
        "closed {closed_after:?} after the disable, expected just after {delay:?}"
    );
    eprintln!(
        "the drained member's tunnel closed {closed_after:?} after a disable with delay {delay:?}"
    );
    assert!(
        connections_become(&nitro, victim, 0).await,
        "the drained member still counts its closed tunnel"
    );
    let log = ballast.dir().join("access.log");
    assert!(
        wait_until(Duration::from_secs(5), || !access_lines(&log).is_empty()).await,
        "no access log line for the closed tunnel"
    );
    let line = access_lines(&log).remove(0);
    assert_eq!(
        (&line["status"], &line["termination"], &line["member"]),
        (&json!(101), &json!("drained"), &json!(victim.to_string())),
        "{line}"
    );
    // The other member's tunnel is untouched.
    assert_eq!(
        second.send("and you?").await,
        WsOutcome::Reply(format!(
            "{}:and you?",
            if victim_name == "m1" { "m2" } else { "m1" }
        ))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_without_delay_keeps_the_tunnel_until_the_member_is_unbound() {
    let net = Net::new();
    let server = WsServer::start(net.free_addr(1), "m1").await;
    let (web, admin) = (net.free_addr(100), net.free_addr(101));
    let ballast = BALLAST
        .start_with_files(
            &config(web, admin, &[server.addr()]),
            &[("admin.pass", format!("{PASSWORD}\n").as_bytes())],
        )
        .await;
    let nitro = Nitro::new(admin, "nsroot", PASSWORD);
    let mut client = WsClient::connect(&format!("ws://{web}/")).await;
    assert_eq!(client.send("hi").await, WsOutcome::Reply("m1:hi".into()));

    // What the autoscaler does on a scale-in: disable (no delay), wait out its quiettime...
    let member = json!({"servicegroup": {
        "servicegroupname": "pool",
        "ip": server.addr().ip().to_string(),
        "port": server.addr().port(),
    }});
    let reply = nitro
        .post("config/servicegroup?action=disable", member)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    ballast
        .wait_for_log(
            ballast_tests::member_state_changed(server.addr(), "GOING OUT OF SERVICE"),
            Duration::from_secs(5),
        )
        .await
        .expect("the member with an open tunnel is not GOING OUT OF SERVICE");
    for i in 0..3 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(
            client.send(&format!("draining {i}")).await,
            WsOutcome::Reply(format!("m1:draining {i}")),
            "the drained member's tunnel did not stay open"
        );
    }

    // ...then unbind: the tunnel closes at once.
    let path = format!(
        "config/servicegroup_servicegroupmember_binding/pool?args=ip:{},port:{}",
        server.addr().ip(),
        server.addr().port()
    );
    let reply = nitro.delete(&path).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert!(
        client.closed_within(Duration::from_secs(2)).await,
        "the unbound member's tunnel stayed open"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tunnel_with_nothing_moving_for_clttimeout_is_closed() {
    let net = Net::new();
    let server = WsServer::start(net.free_addr(1), "m1").await;
    let (web, admin) = (net.free_addr(100), net.free_addr(101));
    let ballast = BALLAST
        .start_with_files(
            &config_with(web, admin, &[server.addr()], "HTTP", "clttimeout = \"1s\""),
            &[("admin.pass", format!("{PASSWORD}\n").as_bytes())],
        )
        .await;
    let mut client = WsClient::connect(&format!("ws://{web}/")).await;
    // Traffic keeps it open past the timeout...
    for i in 0..4 {
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(
            client.send(&format!("{i}")).await,
            WsOutcome::Reply(format!("m1:{i}"))
        );
    }
    // ...silence closes it.
    let quiet = Instant::now();
    assert!(
        client.closed_within(Duration::from_secs(3)).await,
        "an idle tunnel outlived clttimeout"
    );
    let closed_after = quiet.elapsed();
    eprintln!("the idle tunnel closed {closed_after:?} after its last message (clttimeout 1s)");
    assert!(
        closed_after >= Duration::from_millis(800),
        "closed after {closed_after:?} of silence, before clttimeout (1s)"
    );
    let log = ballast.dir().join("access.log");
    assert!(wait_until(Duration::from_secs(5), || !access_lines(&log).is_empty()).await);
    assert_eq!(access_lines(&log)[0]["termination"], "idle_timeout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_through_an_ssl_vserver_and_shutdown_closes_open_tunnels() {
    let net = Net::new();
    let server = WsServer::start(net.free_addr(1), "m1").await;
    let (web, admin) = (net.free_addr(100), net.free_addr(101));
    let ca = TestCa::new();
    let cert = ca.issue(&["ws.test"]);
    let text = format!(
        "[[sslcertkey]]\ncertkey = \"ws\"\ncert = \"ws.pem\"\nkey = \"ws.key\"\n\n{}",
        config_with(web, admin, &[server.addr()], "SSL", "sslcertkey = [\"ws\"]")
    );
    let mut ballast = BALLAST
        .start_with_files(
            &text,
            &[
                ("admin.pass", format!("{PASSWORD}\n").as_bytes()),
                ("ws.pem", cert.cert_pem.as_bytes()),
                ("ws.key", cert.key_pem.as_bytes()),
                ("ca.pem", ca.pem().as_bytes()),
            ],
        )
        .await;
    let ca_file = ballast.dir().join("ca.pem");
    let mut client = WsClient::connect_tls(&format!("wss://{web}/tls"), &ca_file, "ws.test").await;
    assert_eq!(
        client.send("over tls").await,
        WsOutcome::Reply("m1:over tls".into())
    );

    // SIGTERM: the open tunnel is closed and Ballast exits without waiting out
    // shutdowntimeout (5 s) for it.
    let asked = Instant::now();
    ballast.signal("TERM");
    assert!(
        client.closed_within(Duration::from_secs(3)).await,
        "the tunnel stayed open during shutdown"
    );
    let status = ballast
        .wait_exit(Duration::from_secs(4))
        .await
        .expect("Ballast did not exit");
    assert!(status.success(), "{status:?}");
    eprintln!(
        "SIGTERM with an open tunnel: exited after {:?}",
        asked.elapsed()
    );
    assert!(
        asked.elapsed() < Duration::from_secs(4),
        "shutdown took {:?}",
        asked.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_does_not_switch_answers_as_usual_and_saw_the_upgrade_headers() {
    let net = Net::new();
    let member = Backend::start(net.free_addr(1), "plain").await;
    let (web, admin) = (net.free_addr(100), net.free_addr(101));
    let _ballast = BALLAST
        .start_with_files(
            &config(web, admin, &[member.addr()]),
            &[("admin.pass", format!("{PASSWORD}\n").as_bytes())],
        )
        .await;
    let request = |upgrade: &str| {
        format!(
            "GET /echo-headers HTTP/1.1\r\nHost: app\r\nConnection: keep-alive, Upgrade\r\n\
             Upgrade: {upgrade}\r\nX-Kept: yes\r\n\r\nGET / HTTP/1.1\r\nHost: app\r\n\
             Connection: close\r\n\r\n"
        )
    };
    let reply = raw::exchange(web, request("websocket").as_bytes(), Duration::from_secs(5))
        .await
        .expect("a raw exchange");
    let text = reply.text().to_ascii_lowercase();
    // The member answered 200 (it does not speak WebSocket): the client gets it, and the
    // connection serves its next request.
    assert_eq!(reply.status(), Some(200), "{text}");
    assert_eq!(reply.responses(), 2, "{text}");
    assert!(
        text.contains("upgrade: websocket"),
        "the member did not see Upgrade: {text}"
    );
    assert!(
        text.contains("connection: upgrade"),
        "the member did not see Connection: {text}"
    );
    assert!(text.contains("x-kept: yes"), "{text}");

    // `h2c` is Ballast's own business: the member sees a plain HTTP/1.1 request.
    let reply = raw::exchange(web, request("h2c").as_bytes(), Duration::from_secs(5))
        .await
        .expect("a raw exchange");
    let text = reply.text().to_ascii_lowercase();
    assert_eq!(reply.responses(), 2, "{text}");
    assert!(!text.contains("upgrade: h2c"), "h2c was passed on: {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_tunnel_holds_its_place_under_maxconn_like_a_request_in_flight() {
    let net = Net::new();
    let server = WsServer::start(net.free_addr(1), "m1").await;
    let backend = Backend::start(net.free_addr(2), "b").await;
    let (ws, web) = (net.free_addr(100), net.free_addr(101));
    // maxconn 3: two tunnels (each a client connection and a member connection) leave one
    // place for a request in flight.
    let text = format!(
        r#"[ballast]
workers = 2
shutdowntimeout = "5s"
maxconn = 3

[[servicegroup]]
servicegroupname = "sockets"
servicetype = "HTTP"
{}

[[servicegroup]]
servicegroupname = "pages"
servicetype = "HTTP"
{}

[[lbvserver]]
name = "ws"
servicetype = "HTTP"
ipv46 = "{}"
port = {}
servicegroupname = "sockets"

[[lbvserver]]
name = "web"
servicetype = "HTTP"
ipv46 = "{}"
port = {}
servicegroupname = "pages"
"#,
        members_toml(&[server.addr()]),
        members_toml(&[backend.addr()]),
        ws.ip(),
        ws.port(),
        web.ip(),
        web.port()
    );
    let _ballast = BALLAST.start(&text).await;
    let mut first = WsClient::connect(&format!("ws://{ws}/")).await;
    let mut second = WsClient::connect(&format!("ws://{ws}/")).await;
    assert_eq!(first.send("a").await, WsOutcome::Reply("m1:a".into()));
    assert_eq!(second.send("b").await, WsOutcome::Reply("m1:b".into()));

    let h2 = H2::connect(web).await.expect("an HTTP/2 connection");
    let (mut one, mut two) = (h2.clone(), h2.clone());
    let (a, b) = tokio::join!(one.get("/slow?ms=1000"), two.get("/slow?ms=1000"));
    let mut statuses = [a.expect("a reply").status, b.expect("a reply").status];
    statuses.sort_unstable();
    assert_eq!(
        statuses,
        [StatusCode::OK, StatusCode::SERVICE_UNAVAILABLE],
        "the tunnels did not count as requests in flight"
    );

    // Once a tunnel closes, its place is free again.
    first.close().await;
    let mut freed = false;
    for _ in 0..50 {
        let (mut one, mut two) = (h2.clone(), h2.clone());
        let (a, b) = tokio::join!(one.get("/slow?ms=300"), two.get("/slow?ms=300"));
        if a.expect("a reply").status == StatusCode::OK
            && b.expect("a reply").status == StatusCode::OK
        {
            freed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(freed, "the closed tunnel's place was not given back");
    assert_eq!(second.send("c").await, WsOutcome::Reply("m1:c".into()));
}

/// One masked client text frame (RFC 6455 §5.2) carrying `text` (under 126 bytes).
fn client_frame(text: &str) -> Vec<u8> {
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    let mut frame = vec![0x81, 0x80 | text.len() as u8];
    frame.extend_from_slice(&mask);
    frame.extend(text.bytes().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    frame
}

/// Reads one unmasked server text frame (under 126 bytes) and returns its text.
async fn server_frame(io: &mut (impl tokio::io::AsyncRead + Unpin)) -> String {
    use tokio::io::AsyncReadExt;
    let mut head = [0u8; 2];
    io.read_exact(&mut head).await.expect("a frame head");
    assert_eq!(head[0], 0x81, "not a final text frame");
    let mut text = vec![0u8; usize::from(head[1] & 0x7f)];
    io.read_exact(&mut text).await.expect("the frame's text");
    String::from_utf8(text).expect("UTF-8 text")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http2_client_opens_a_websocket_with_extended_connect() {
    use hyper::client::conn::http2;
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use tokio::io::AsyncWriteExt;

    let net = Net::new();
    let server = WsServer::start(net.free_addr(1), "m1").await;
    let (web, admin) = (net.free_addr(100), net.free_addr(101));
    let ballast = BALLAST
        .start_with_files(
            &config(web, admin, &[server.addr()]),
            &[("admin.pass", format!("{PASSWORD}\n").as_bytes())],
        )
        .await;
    let nitro = Nitro::new(admin, "nsroot", PASSWORD);
    let stream = tokio::net::TcpStream::connect(web).await.expect("connect");
    let (mut sender, connection) = http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
        .await
        .expect("an HTTP/2 handshake");
    tokio::spawn(connection);

    // RFC 8441: CONNECT with `:protocol = websocket`, once the server's SETTINGS allow it.
    let mut response = None;
    for _ in 0..50 {
        let mut request = http::Request::builder()
            .method(http::Method::CONNECT)
            .version(http::Version::HTTP_2)
            .uri(format!("http://{web}/h2chat"))
            .header("sec-websocket-version", "13")
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .expect("a request");
        request
            .extensions_mut()
            .insert(hyper::ext::Protocol::from_static("websocket"));
        sender.ready().await.expect("the connection is ready");
        match sender.send_request(request).await {
            Ok(answer) => {
                response = Some(answer);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    let response = response.expect("the extended CONNECT was never accepted");
    assert_eq!(response.status(), StatusCode::OK);
    let mut tunnel = TokioIo::new(hyper::upgrade::on(response).await.expect("the tunnel"));
    for message in ["over h2", "again"] {
        tunnel
            .write_all(&client_frame(message))
            .await
            .expect("write a frame");
        assert_eq!(server_frame(&mut tunnel).await, format!("m1:{message}"));
    }
    assert_eq!(member_connections(&nitro, server.addr()).await, Some(1));

    // Another request on the same HTTP/2 connection meanwhile: the WebSocket's stream does not
    // hold it up.
    let request = http::Request::get(format!("http://{web}/"))
        .version(http::Version::HTTP_2)
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .expect("a request");
    let plain = sender.send_request(request).await.expect("a response");
    assert_eq!(
        plain.status(),
        StatusCode::UPGRADE_REQUIRED,
        "the member's own answer to a GET"
    );
    drop(tunnel);
    assert!(connections_become(&nitro, server.addr(), 0).await);
    let log = ballast.dir().join("access.log");
    assert!(wait_until(Duration::from_secs(5), || access_lines(&log).len() >= 2).await);
    let lines = access_lines(&log);
    let line = lines
        .iter()
        .find(|l| l["uri"] == "/h2chat")
        .expect("the tunnel's access log line");
    assert_eq!(
        (&line["status"], &line["method"], &line["version"]),
        (&json!(200), &json!("CONNECT"), &json!("HTTP/2.0")),
        "{line}"
    );
}
