//! SIGHUP reloads under load: members come and go without a single failed request, and a bad
//! file is rejected while traffic goes on with the old config.

use std::net::SocketAddr;
use std::time::Duration;

use ballast_tests::{Backend, Binary, Load, Net, Reload, members_toml, single_vserver_config};

/// The `ballast` binary cargo built for this test run.
const BALLAST: Binary = Binary::new(env!("CARGO_BIN_EXE_ballast"));

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_reloads_under_load_fail_no_request() {
    let net = Net::new();
    let mut backends = Vec::new();
    for (host, name) in [(1, "a"), (2, "b"), (3, "c"), (4, "d"), (5, "e")] {
        backends.push(Backend::start(net.free_addr(host), name).await);
    }
    let addrs: Vec<SocketAddr> = backends.iter().map(Backend::addr).collect();
    let vserver = net.free_addr(100);
    let config = |members: &[SocketAddr]| {
        single_vserver_config(vserver, "HTTP", "ROUNDROBIN", &members_toml(members), "")
    };
    let ballast = BALLAST.start(&config(&addrs[..3])).await;

    let load = Load::start(vserver, 4, "/");
    assert!(
        load.wait_for_more(50, Duration::from_secs(10)).await,
        "no traffic flows"
    );

    // A fixed walk through member sets: every one non-empty, members added and removed.
    let sets: [&[usize]; 20] = [
        &[0, 1, 2, 3],
        &[1, 2, 3],
        &[3],
        &[3, 4],
        &[0, 4],
        &[0, 1, 2, 3, 4],
        &[2],
        &[1, 2],
        &[0, 1],
        &[4],
        &[0, 2, 4],
        &[1, 3],
        &[0, 1, 2, 3, 4],
        &[0],
        &[1],
        &[2, 3, 4],
        &[0, 3],
        &[4, 1],
        &[2, 0],
        &[0, 1, 2],
    ];
    for (round, set) in sets.iter().enumerate() {
        let members: Vec<SocketAddr> = set.iter().map(|&i| addrs[i]).collect();
        assert_eq!(
            ballast.reload(&config(&members)).await,
            Reload::Reloaded,
            "reload {round} was not applied"
        );
        assert!(
            load.wait_for_more(20, Duration::from_secs(10)).await,
            "traffic stalled after reload {round}"
        );
    }

    // The last set is a, b, c: d and e get nothing new.
    let (d_before, e_before) = (backends[3].requests(), backends[4].requests());
    assert!(load.wait_for_more(100, Duration::from_secs(10)).await);
    assert_eq!(
        (backends[3].requests(), backends[4].requests()),
        (d_before, e_before),
        "members removed by the last reload still get requests"
    );

    let report = load.stop().await;
    assert_eq!(
        report.failed,
        0,
        "{} of {} requests failed during 20 reloads: {:#?}",
        report.failed,
        report.ok + report.failed,
        report.errors
    );
    drop(ballast);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_file_is_rejected_and_the_old_config_keeps_serving() {
    let net = Net::new();
    let a = Backend::start(net.free_addr(1), "a").await;
    let b = Backend::start(net.free_addr(2), "b").await;
    let vserver = net.free_addr(100);
    let good = single_vserver_config(
        vserver,
        "HTTP",
        "ROUNDROBIN",
        &members_toml(&[a.addr()]),
        "",
    );
    let ballast = BALLAST.start(&good).await;

    let load = Load::start(vserver, 2, "/");
    assert!(
        load.wait_for_more(20, Duration::from_secs(10)).await,
        "no traffic flows"
    );

    // Adds b but also a bad port and an unknown method: the whole file is rejected.
    let bad = single_vserver_config(
        vserver,
        "HTTP",
        "FASTEST",
        &format!(
            "members = [{{ ip = \"{}\", port = {} }}, {{ ip = \"{}\", port = 70000 }}]",
            b.addr().ip(),
            b.addr().port(),
            a.addr().ip()
        ),
        "",
    );
    match ballast.reload(&bad).await {
        Reload::Rejected(problems) => {
            assert!(problems.contains("lbmethod"), "problems: {problems}");
            assert!(problems.contains("port"), "problems: {problems}");
        }
        Reload::Reloaded => panic!("a file with an unknown lbmethod and port 70000 was accepted"),
    }

    assert!(
        load.wait_for_more(100, Duration::from_secs(10)).await,
        "traffic stopped"
    );
    let report = load.stop().await;
    assert_eq!(report.failed, 0, "requests failed: {:#?}", report.errors);
    assert_eq!(
        b.requests(),
        0,
        "b (only in the rejected file) got requests"
    );
    assert_eq!(report.by_backend.keys().collect::<Vec<_>>(), ["a"]);

    // A good file after the bad one is applied as usual.
    let both = single_vserver_config(
        vserver,
        "HTTP",
        "ROUNDROBIN",
        &members_toml(&[a.addr(), b.addr()]),
        "",
    );
    assert_eq!(ballast.reload(&both).await, Reload::Reloaded);
    let replies = ballast_tests::fetch_all(vserver, &vec!["/".to_owned(); 10], 1)
        .await
        .expect("requests after a good reload");
    assert_eq!(
        ballast_tests::tally(&replies).len(),
        2,
        "a and b both serve now"
    );
    drop(ballast);
}
