//! Load-balancing methods as a client sees them: which backend answers (`x-backend`).

use std::collections::BTreeMap;
use std::time::Duration;

use ballast_tests::{
    Backend, Binary, H1, Net, Reload, fetch_all, members_toml, single_vserver_config, tally,
    wait_until, weighted_members_toml,
};

/// The `ballast` binary cargo built for this test run.
const BALLAST: Binary = Binary::new(env!("CARGO_BIN_EXE_ballast"));

/// Weights 1/1/2 give 25/25/50 % of 4,000 requests, within ±2 points.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roundrobin_follows_weights() {
    let net = Net::new();
    let a = Backend::start(net.free_addr(1), "a").await;
    let b = Backend::start(net.free_addr(2), "b").await;
    let c = Backend::start(net.free_addr(3), "c").await;
    let vserver = net.free_addr(100);
    let members = weighted_members_toml(&[(a.addr(), 1), (b.addr(), 1), (c.addr(), 2)]);
    let ballast = BALLAST
        .start(&single_vserver_config(
            vserver,
            "HTTP",
            "ROUNDROBIN",
            &members,
            "",
        ))
        .await;

    let paths: Vec<String> = (0..4000).map(|i| format!("/rr/{i}")).collect();
    let replies = fetch_all(vserver, &paths, 4)
        .await
        .expect("every request gets 200");
    let counts = tally(&replies);

    let total = 4000.0;
    for (name, expected) in [("a", 0.25), ("b", 0.25), ("c", 0.50)] {
        let share = counts.get(name).copied().unwrap_or(0) as f64 / total;
        assert!(
            (share - expected).abs() <= 0.02,
            "member {name} got {:.1} % of requests, expected {:.0} % ± 2; counts: {counts:?}",
            share * 100.0,
            expected * 100.0
        );
    }
    // The backends agree with what the clients saw.
    assert_eq!(a.requests() + b.requests() + c.requests(), 4000);
    drop(ballast);
}

/// A member holding 5 open slow requests gets none of the next requests while the other two
/// are idle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leastconnection_avoids_the_busy_member() {
    let net = Net::new();
    let a = Backend::start(net.free_addr(1), "a").await;
    let b = Backend::start(net.free_addr(2), "b").await;
    let c = Backend::start(net.free_addr(3), "c").await;
    let vserver = net.free_addr(100);
    // Only `a` at first, so that all the slow requests land on it.
    let ballast = BALLAST
        .start(&single_vserver_config(
            vserver,
            "HTTP",
            "LEASTCONNECTION",
            &members_toml(&[a.addr()]),
            "",
        ))
        .await;

    let slow: Vec<_> = (0..5)
        .map(|_| tokio::spawn(async move { ballast_tests::get(vserver, "/slow?ms=3000").await }))
        .collect();
    assert!(
        wait_until(Duration::from_secs(5), || a.in_flight() == 5).await,
        "the 5 slow requests did not reach member a (in flight: {})",
        a.in_flight()
    );

    let all = single_vserver_config(
        vserver,
        "HTTP",
        "LEASTCONNECTION",
        &members_toml(&[a.addr(), b.addr(), c.addr()]),
        "",
    );
    assert_eq!(ballast.reload(&all).await, Reload::Reloaded);

    let mut client = H1::connect(vserver).await.expect("connect");
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for i in 0..20 {
        let reply = client
            .get(&format!("/fast/{i}"))
            .await
            .expect("fast request");
        assert_eq!(reply.status, 200, "{}", reply.text());
        *counts
            .entry(reply.backend().unwrap_or("<none>").into())
            .or_default() += 1;
    }
    assert_eq!(
        counts.get("a").copied().unwrap_or(0),
        0,
        "member a holds 5 open requests, b and c none, yet a got some of 20 new requests: {counts:?}"
    );
    assert_eq!(a.in_flight(), 5, "the slow requests are still open");

    for request in slow {
        let reply = request.await.expect("task").expect("slow request");
        assert_eq!(reply.status, 200);
        assert_eq!(reply.backend(), Some("a"));
    }
    drop(ballast);
}

/// A client address always lands on the same member; different clients spread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sourceiphash_keeps_a_client_on_one_member() {
    let net = Net::new();
    let a = Backend::start(net.free_addr(1), "a").await;
    let b = Backend::start(net.free_addr(2), "b").await;
    let c = Backend::start(net.free_addr(3), "c").await;
    let vserver = net.free_addr(100);
    let members = members_toml(&[a.addr(), b.addr(), c.addr()]);
    let ballast = BALLAST
        .start(&single_vserver_config(
            vserver,
            "HTTP",
            "SOURCEIPHASH",
            &members,
            "",
        ))
        .await;

    // Each source: 50 requests, each on a new connection (a new source port every time).
    for host in [5, 6] {
        let source = net.ip(host);
        let mut seen = BTreeMap::<String, u64>::new();
        for i in 0..50 {
            let mut client = H1::connect_from(source, vserver).await.expect("connect");
            let reply = client.get(&format!("/sticky/{i}")).await.expect("request");
            assert_eq!(reply.status, 200, "{}", reply.text());
            *seen
                .entry(reply.backend().unwrap_or("<none>").into())
                .or_default() += 1;
        }
        assert_eq!(
            seen.len(),
            1,
            "client {source} was sent to more than one member: {seen:?}"
        );
    }

    // And the hash does spread clients: 20 sources do not all land on one member.
    let mut members_used = BTreeMap::<String, u64>::new();
    for host in 10..30 {
        let mut client = H1::connect_from(net.ip(host), vserver)
            .await
            .expect("connect");
        let reply = client.get("/spread").await.expect("request");
        assert_eq!(reply.status, 200);
        *members_used
            .entry(reply.backend().unwrap_or("<none>").into())
            .or_default() += 1;
    }
    assert!(
        members_used.len() >= 2,
        "20 different client addresses all went to one member: {members_used:?}"
    );
    drop(ballast);
}

/// 1,000 URLs over 4 members; removing one member moves at most 35 % of the URLs (consistent
/// hashing: ideally only the quarter that member had).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn urlhash_moves_few_urls_when_a_member_leaves() {
    let net = Net::new();
    let mut backends = Vec::new();
    for (host, name) in [(1, "a"), (2, "b"), (3, "c"), (4, "d")] {
        backends.push(Backend::start(net.free_addr(host), name).await);
    }
    let addrs: Vec<_> = backends.iter().map(Backend::addr).collect();
    let vserver = net.free_addr(100);
    let ballast = BALLAST
        .start(&single_vserver_config(
            vserver,
            "HTTP",
            "URLHASH",
            &members_toml(&addrs),
            "",
        ))
        .await;

    let paths: Vec<String> = (0..1000)
        .map(|i| format!("/item/{i}?v={}", i * 7))
        .collect();
    let before: Vec<String> = backend_names(&fetch_all(vserver, &paths, 4).await.expect("before"));
    let counts = count(&before);
    for name in ["a", "b", "c", "d"] {
        let n = counts.get(name).copied().unwrap_or(0);
        assert!(
            n >= 100,
            "member {name} owns only {n} of 1000 URLs: {counts:?}"
        );
    }
    // The same URL goes to the same member again.
    let again = backend_names(&fetch_all(vserver, &paths[..200], 4).await.expect("again"));
    assert_eq!(
        again,
        before[..200],
        "URLHASH sent a URL to a different member the second time"
    );

    let without_d =
        single_vserver_config(vserver, "HTTP", "URLHASH", &members_toml(&addrs[..3]), "");
    assert_eq!(ballast.reload(&without_d).await, Reload::Reloaded);
    let after = backend_names(&fetch_all(vserver, &paths, 4).await.expect("after"));
    assert!(
        !after.iter().any(|name| name == "d"),
        "removed member d still got requests"
    );
    let moved = before.iter().zip(&after).filter(|(x, y)| x != y).count();
    assert!(
        moved <= 350,
        "removing 1 of 4 members moved {moved} of 1000 URLs (at most 350 expected)"
    );
    drop(ballast);
}

fn backend_names(replies: &[ballast_tests::Reply]) -> Vec<String> {
    replies
        .iter()
        .map(|reply| reply.backend().unwrap_or("<none>").to_owned())
        .collect()
}

fn count(names: &[String]) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for name in names {
        *counts.entry(name.clone()).or_default() += 1;
    }
    counts
}
