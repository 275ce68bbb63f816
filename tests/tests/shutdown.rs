//! SIGTERM: stop accepting at once, let in-flight requests finish, exit 0.

use std::time::Duration;

use ballast_tests::client::connect_tcp;
use ballast_tests::{
    Backend, Binary, Net, is_event, members_toml, single_vserver_config, wait_until,
};

/// The `ballast` binary cargo built for this test run.
const BALLAST: Binary = Binary::new(env!("CARGO_BIN_EXE_ballast"));

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_the_in_flight_request_and_refuses_new_connections() {
    let net = Net::new();
    let app = Backend::start(net.free_addr(1), "app").await;
    let vserver = net.free_addr(100);
    let mut ballast = BALLAST
        .start(&single_vserver_config(
            vserver,
            "HTTP",
            "ROUNDROBIN",
            &members_toml(&[app.addr()]),
            "",
        ))
        .await;

    let slow = tokio::spawn(async move { ballast_tests::get(vserver, "/slow?ms=1000").await });
    assert!(
        wait_until(Duration::from_secs(5), || app.in_flight() == 1).await,
        "the slow request did not reach the backend"
    );

    ballast.signal("TERM");
    assert!(
        ballast
            .wait_for_log(
                |line| is_event(line, "shutting down"),
                Duration::from_secs(2)
            )
            .await
            .is_some(),
        "no `shutting down` after SIGTERM"
    );
    // New connections are refused soon after (the listener closes right after the log line),
    // while the slow request is still in flight.
    let deadline = tokio::time::Instant::now() + Duration::from_millis(500);
    let refused = loop {
        match connect_tcp(vserver, None).await {
            Err(error) if is_refused(&error) => break true,
            _ if tokio::time::Instant::now() >= deadline => break false,
            _ => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    };
    assert!(
        refused,
        "new connections are still accepted 500 ms after SIGTERM"
    );
    assert_eq!(
        app.in_flight(),
        1,
        "the slow request should still be in flight"
    );

    let reply = slow
        .await
        .expect("task")
        .expect("the in-flight request completes");
    assert_eq!((reply.status.as_u16(), reply.text().as_str()), (200, "app"));

    let status = ballast
        .wait_exit(Duration::from_secs(10))
        .await
        .expect("ballast exits after its last request");
    assert!(status.success(), "ballast exited with {status}");
    assert!(
        !ballast
            .find_all(|line| is_event(line, "stopped"))
            .is_empty(),
        "no `stopped` log line"
    );
}

fn is_refused(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused)
    })
}

/// Idle keep-alive connections do not hold shutdown up: they are closed, and Ballast exits 0
/// long before its `shutdowntimeout` (5 s in test configs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_closes_idle_keep_alive_connections_and_exits_promptly() {
    let net = Net::new();
    let app = Backend::start(net.free_addr(1), "app").await;
    let vserver = net.free_addr(100);
    let mut ballast = BALLAST
        .start(&single_vserver_config(
            vserver,
            "HTTP",
            "ROUNDROBIN",
            &members_toml(&[app.addr()]),
            "",
        ))
        .await;
    let mut idle = ballast_tests::H1::connect(vserver).await.expect("connect");
    assert_eq!(idle.get("/").await.expect("request").status, 200);
    let mut h2 = ballast_tests::H2::connect(vserver).await.expect("h2c");
    assert_eq!(h2.get("/").await.expect("request").status, 200);

    let started = tokio::time::Instant::now();
    let status = ballast.terminate().await;
    let took = started.elapsed();
    assert!(status.success(), "ballast exited with {status}");
    assert!(
        took < Duration::from_secs(2),
        "idle connections held shutdown up for {took:?}"
    );
    assert!(
        wait_until(Duration::from_secs(1), || idle.is_closed()).await,
        "the idle HTTP/1.1 connection is still open after ballast exited"
    );
}
