//! What a client sees when members fail: `504` when a member is slower than `svrtimeout`, `503`
//! when no member is eligible or none can be reached, `502` when a member hangs up without
//! answering. Each answer says what went wrong in a generic line that names no member address
//! (the log names the member), and the vserver keeps serving.

use std::net::SocketAddr;
use std::time::Duration;

use ballast_tests::{
    Backend, Ballast, Binary, Net, Reply, field, get, members_toml, single_vserver_config,
};
use http::StatusCode;
use tokio::net::TcpListener;
use tokio::time::Instant;

/// The `ballast` binary cargo built for this test run.
const BALLAST: Binary = Binary::new(env!("CARGO_BIN_EXE_ballast"));

/// The body says `expected` and names neither the member's address nor its port.
fn assert_generic_body(reply: &Reply, expected: &str, member: SocketAddr) {
    let text = reply.text();
    assert!(text.contains(expected), "{text}");
    for leak in [member.ip().to_string(), member.port().to_string()] {
        assert!(
            !text.contains(&leak),
            "the body names the member ({leak}): {text}"
        );
    }
}

/// A log line with `message` names `member` (it may reach the log pipe a moment after the
/// client had its answer).
async fn assert_logged_with_member(ballast: &Ballast, message: &str, member: SocketAddr) {
    let named = ballast
        .wait_for_log(
            |line| {
                field(line, "message").is_some_and(|m| m.starts_with(message))
                    && field(line, "member") == Some(member.to_string().as_str())
            },
            Duration::from_secs(5),
        )
        .await;
    assert!(
        named.is_some(),
        "no `{message}` line names {member}:\n{}",
        ballast.log_text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_slower_than_svrtimeout_gets_504() {
    let net = Net::new();
    let app = Backend::start(net.free_addr(1), "app").await;
    let vserver = net.free_addr(100);
    let members = format!("svrtimeout = \"300ms\"\n{}", members_toml(&[app.addr()]));
    let ballast = BALLAST
        .start(&single_vserver_config(
            vserver,
            "HTTP",
            "ROUNDROBIN",
            &members,
            "",
        ))
        .await;
    let started = Instant::now();
    let reply = get(vserver, "/slow?ms=3000").await.expect("an answer");
    let waited = started.elapsed();
    assert_eq!(reply.status, StatusCode::GATEWAY_TIMEOUT);
    assert_generic_body(&reply, "the server did not respond in time", app.addr());
    assert_logged_with_member(
        &ballast,
        "member sent no response head within svrtimeout",
        app.addr(),
    )
    .await;
    assert!(
        waited >= Duration::from_millis(300) && waited < Duration::from_secs(2),
        "answered after {waited:?}"
    );
    assert_eq!(
        get(vserver, "/").await.expect("served").status,
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_eligible_member_gets_503_with_a_generic_body() {
    let net = Net::new();
    let app = Backend::start(net.free_addr(1), "app").await;
    let vserver = net.free_addr(100);
    let members = format!(
        "members = [{{ ip = \"{}\", port = {}, state = \"DISABLED\" }}]",
        app.addr().ip(),
        app.addr().port()
    );
    let _ballast = BALLAST
        .start(&single_vserver_config(
            vserver,
            "HTTP",
            "ROUNDROBIN",
            &members,
            "",
        ))
        .await;
    let reply = get(vserver, "/").await.expect("an answer");
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_generic_body(
        &reply,
        "no server is available to take the request",
        app.addr(),
    );
    assert_eq!(app.requests(), 0, "a disabled member got the request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_refusing_connections_gets_503_with_a_generic_body() {
    let net = Net::new();
    let mut app = Backend::start(net.free_addr(1), "app").await;
    app.stop().await;
    let vserver = net.free_addr(100);
    let _ballast = BALLAST
        .start(&single_vserver_config(
            vserver,
            "HTTP",
            "ROUNDROBIN",
            &members_toml(&[app.addr()]),
            "",
        ))
        .await;
    let reply = get(vserver, "/").await.expect("an answer");
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_generic_body(&reply, "no server could be reached", app.addr());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_hangs_up_without_answering_gets_502() {
    let net = Net::new();
    let closer = TcpListener::bind(net.free_addr(1)).await.expect("bind");
    let closer_addr = closer.local_addr().unwrap();
    // Accepts, reads a little, and closes: the request went out, no response came back.
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = closer.accept().await {
            let mut buf = [0u8; 1024];
            let _ = tokio::io::AsyncReadExt::read(&mut stream, &mut buf).await;
            drop(stream);
        }
    });
    let vserver = net.free_addr(100);
    let members = members_toml(&[closer_addr]);
    let ballast = BALLAST
        .start(&single_vserver_config(
            vserver,
            "HTTP",
            "ROUNDROBIN",
            &members,
            "",
        ))
        .await;
    for _ in 0..3 {
        let reply = get(vserver, "/").await.expect("an answer");
        assert_eq!(reply.status, StatusCode::BAD_GATEWAY);
        assert_generic_body(&reply, "the server failed before responding", closer_addr);
    }
    assert_logged_with_member(&ballast, "member failed before responding", closer_addr).await;
}
