//! Health monitors: a member that stops answering is marked DOWN in time (passively under
//! load, by its monitor alone without load), no client request fails meanwhile, and the member
//! comes back UP and gets traffic again.

use std::time::Duration;

use ballast_tests::{
    Backend, Binary, Load, Net, field, member_state_changed, members_toml, single_vserver_config,
    wait_until,
};
use tokio::time::Instant;

/// The `ballast` binary cargo built for this test run.
const BALLAST: Binary = Binary::new(env!("CARGO_BIN_EXE_ballast"));

const INTERVAL: Duration = Duration::from_millis(500);
const RESPTIMEOUT: Duration = Duration::from_millis(200);
const RETRIES: u32 = 2;
/// Real time on a small shared machine: scheduling, the probe loop's phase and the log pipe add
/// delay that the config does not promise away. 1 s of slack on top of what the config allows.
const SLACK: Duration = Duration::from_secs(1);

fn monitored_config(vserver: std::net::SocketAddr, members: &[std::net::SocketAddr]) -> String {
    let monitor = format!(
        r#"[[lbmonitor]]
monitorname = "health"
type = "HTTP"
httprequest = "GET /healthz"
respcode = ["200"]
interval = "{}ms"
resptimeout = "{}ms"
retries = {RETRIES}
"#,
        INTERVAL.as_millis(),
        RESPTIMEOUT.as_millis()
    );
    let members = format!("monitor = [\"health\"]\n{}", members_toml(members));
    single_vserver_config(vserver, "HTTP", "ROUNDROBIN", &members, &monitor)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_member_goes_down_and_comes_back_without_failed_requests() {
    let net = Net::new();
    let a = Backend::start(net.free_addr(1), "a").await;
    let mut b = Backend::start(net.free_addr(2), "b").await;
    let c = Backend::start(net.free_addr(3), "c").await;
    let vserver = net.free_addr(100);
    let ballast = BALLAST
        .start(&monitored_config(vserver, &[a.addr(), b.addr(), c.addr()]))
        .await;

    let load = Load::start(vserver, 3, "/");
    assert!(
        wait_until(Duration::from_secs(5), || load.ok_from("b") >= 20).await,
        "member b gets no traffic before the test starts: {} ok, {} failed",
        load.ok(),
        load.failed()
    );

    // Stop b: the monitor must notice within interval × retries + resptimeout (+ slack).
    let mark = ballast.log_mark();
    b.stop().await;
    let stopped = Instant::now();
    let limit = INTERVAL * RETRIES + RESPTIMEOUT + SLACK;
    let down = ballast
        .wait_for_log_since(mark, member_state_changed(b.addr(), "DOWN"), limit)
        .await;
    assert!(
        down.is_some(),
        "no `member state changed` to DOWN for {} within {limit:?} of stopping it",
        b.addr()
    );
    eprintln!("b DOWN after {:?}", stopped.elapsed());
    // Keep the load on a while after detection too.
    assert!(
        load.wait_for_more(200, Duration::from_secs(10)).await,
        "the load stalled"
    );

    // Restart b: UP again within one downtime (= interval) + resptimeout (+ slack) ...
    let mark = ballast.log_mark();
    b.restart().await;
    let limit = INTERVAL + RESPTIMEOUT + SLACK;
    let up = ballast
        .wait_for_log_since(mark, member_state_changed(b.addr(), "UP"), limit)
        .await;
    assert!(
        up.is_some(),
        "no `member state changed` to UP for {} within {limit:?} of restarting it",
        b.addr()
    );
    // ... and it gets traffic again.
    let before = load.ok_from("b");
    assert!(
        wait_until(Duration::from_secs(5), || load.ok_from("b") >= before + 20).await,
        "member b is UP again but gets no traffic"
    );

    let report = load.stop().await;
    assert_eq!(
        report.failed,
        0,
        "{} of {} client requests failed while a member went down and up: {:#?}",
        report.failed,
        report.ok + report.failed,
        report.errors
    );
    drop(ballast);
}

/// With no client traffic (so no passive detection), the monitor alone marks a member DOWN
/// when it stops answering: it accepts connections but never responds, so every probe runs
/// into `resptimeout`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_monitor_marks_a_member_that_stopped_answering_down() {
    let net = Net::new();
    let a = Backend::start(net.free_addr(1), "a").await;
    let mut b = Backend::start(net.free_addr(2), "b").await;
    let vserver = net.free_addr(100);
    let ballast = BALLAST
        .start(&monitored_config(vserver, &[a.addr(), b.addr()]))
        .await;

    let mark = ballast.log_mark();
    b.stop().await;
    // The kernel completes connections into the backlog; nothing ever reads or answers.
    let black_hole = std::net::TcpListener::bind(b.addr()).expect("rebind b's address");
    let limit = INTERVAL * RETRIES + RESPTIMEOUT + SLACK;
    let down = ballast
        .wait_for_log_since(mark, member_state_changed(b.addr(), "DOWN"), limit)
        .await
        .unwrap_or_else(|| {
            panic!(
                "no `member state changed` to DOWN for {} within {limit:?} of it going silent",
                b.addr()
            )
        });
    let reason = field(&down, "reason").unwrap_or_default();
    assert!(
        reason.contains("health"),
        "the DOWN should come from monitor `health`; reason: {reason:?}"
    );
    // Clients are not sent to it: every request is answered by a.
    for _ in 0..10 {
        let reply = ballast_tests::get(vserver, "/").await.expect("request");
        assert_eq!((reply.status.as_u16(), reply.backend()), (200, Some("a")));
    }
    drop(black_hole);
    drop(ballast);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_never_comes_up_logs_why_and_stat_shows_it() {
    let net = Net::new();
    let a = Backend::start(net.free_addr(1), "a").await;
    // Nothing listens here: every probe is refused.
    let dead = net.free_addr(2);
    let (vserver, admin) = (net.free_addr(100), net.free_addr(250));
    let password = "Pw-health-test-5e0a";
    let config = monitored_config(vserver, &[a.addr(), dead]).replace(
        "[[lbmonitor]]",
        &format!("[admin]\nlisten = \"{admin}\"\npasswordfile = \"admin.pass\"\n\n[[lbmonitor]]"),
    );
    let mut ballast = BALLAST
        .start_with_files(
            &config,
            &[("admin.pass", format!("{password}\n").as_bytes())],
        )
        .await;

    let limit = INTERVAL + RESPTIMEOUT + SLACK;
    let down = ballast
        .wait_for_log(member_state_changed(dead, "DOWN"), limit)
        .await
        .unwrap_or_else(|| {
            panic!(
                "a member that never came UP logged no change to DOWN:\n{}",
                ballast.log_text()
            )
        });
    assert_eq!(field(&down, "from"), Some("UNKNOWN"), "{down}");
    assert_eq!(down["level"], "WARN");
    let reason = field(&down, "reason").unwrap_or_default();
    assert!(
        reason.starts_with("monitor health: connect to ") && reason.contains("refused"),
        "{reason:?}"
    );

    let nitro = ballast_tests::nitro::Nitro::new(admin, "nsroot", password);
    let stat = nitro.get("stat/servicegroup/pool?statbindings=yes").await;
    let members = stat.body["servicegroup"][0]["servicegroupmember"]
        .as_array()
        .cloned()
        .unwrap_or_else(|| panic!("no members in {:?}", stat.body));
    let of = |addr: std::net::SocketAddr| {
        members
            .iter()
            .find(|m| m["port"] == addr.port() && m["ip"] == addr.ip().to_string())
            .cloned()
            .unwrap_or_else(|| panic!("{addr} is not in {members:?}"))
    };
    let last = of(dead)["lastfailurereason"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        last.starts_with("monitor health: connect to ") && last.contains("refused"),
        "{:?}",
        of(dead)
    );
    assert_eq!(of(a.addr())["lastfailurereason"], serde_json::Value::Null);

    // A shutdown is not a monitor verdict: no member changes state on the way out.
    let mark = ballast.log_mark();
    ballast.terminate().await;
    let changed: Vec<_> = ballast
        .find_all(|line| ballast_tests::is_event(line, "member state changed"))
        .into_iter()
        .filter(|(at, _)| *at >= mark)
        .collect();
    assert!(
        changed.is_empty(),
        "state changes logged at shutdown: {changed:?}"
    );
}
