//! Draining a member by config (`state = "DISABLED"`): what it is serving completes, it gets
//! nothing new, and its state goes GOING OUT OF SERVICE → OUT OF SERVICE.

use std::time::Duration;

use ballast_tests::{
    Backend, Binary, H1, Net, Reload, member_state_changed, single_vserver_config, wait_until,
};

/// The `ballast` binary cargo built for this test run.
const BALLAST: Binary = Binary::new(env!("CARGO_BIN_EXE_ballast"));

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabling_a_member_lets_its_request_finish_and_sends_it_nothing_new() {
    let net = Net::new();
    let a = Backend::start(net.free_addr(1), "a").await;
    let b = Backend::start(net.free_addr(2), "b").await;
    let vserver = net.free_addr(100);
    let members = |disabled: Option<std::net::SocketAddr>| {
        let entries: Vec<String> = [a.addr(), b.addr()]
            .iter()
            .map(|addr| {
                let state = if Some(*addr) == disabled {
                    "DISABLED"
                } else {
                    "ENABLED"
                };
                format!(
                    "{{ ip = \"{}\", port = {}, state = \"{state}\" }}",
                    addr.ip(),
                    addr.port()
                )
            })
            .collect();
        format!("members = [{}]", entries.join(", "))
    };
    let config =
        |disabled| single_vserver_config(vserver, "HTTP", "ROUNDROBIN", &members(disabled), "");
    let ballast = BALLAST.start(&config(None)).await;

    // A 2 s request in flight on one member: that member is the one we drain.
    let slow = tokio::spawn(async move { ballast_tests::get(vserver, "/slow?ms=2000").await });
    assert!(
        wait_until(Duration::from_secs(5), || a.in_flight() + b.in_flight()
            == 1)
        .await,
        "the slow request did not reach a member"
    );
    let (victim, other) = if a.in_flight() == 1 {
        (&a, &b)
    } else {
        (&b, &a)
    };
    let victim_requests = victim.requests();

    let mark = ballast.log_mark();
    assert_eq!(
        ballast.reload(&config(Some(victim.addr()))).await,
        Reload::Reloaded
    );
    assert!(
        ballast
            .wait_for_log_since(
                mark,
                member_state_changed(victim.addr(), "GOING OUT OF SERVICE"),
                Duration::from_secs(2)
            )
            .await
            .is_some(),
        "no `member state changed` to GOING OUT OF SERVICE for {}",
        victim.addr()
    );

    // New requests, on new and on kept-alive connections, all go to the other member.
    let mut kept = H1::connect(vserver).await.expect("connect");
    for i in 0..20 {
        let reply = if i % 2 == 0 {
            kept.get("/after-drain").await
        } else {
            ballast_tests::get(vserver, "/after-drain").await
        }
        .expect("request during the drain");
        assert_eq!(reply.status, 200, "{}", reply.text());
        assert_eq!(
            reply.backend(),
            Some(other.name()),
            "a draining member got a new request"
        );
    }
    assert_eq!(
        victim.in_flight(),
        1,
        "the slow request is still being served"
    );

    let reply = slow
        .await
        .expect("task")
        .expect("the in-flight request completes");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.backend(), Some(victim.name()));
    assert_eq!(reply.text(), victim.name());

    let out = ballast
        .wait_for_log_since(
            mark,
            member_state_changed(victim.addr(), "OUT OF SERVICE"),
            Duration::from_secs(2),
        )
        .await;
    assert!(
        out.is_some(),
        "no `member state changed` to OUT OF SERVICE for {} after its last request",
        victim.addr()
    );
    let going = ballast.find_all(member_state_changed(victim.addr(), "GOING OUT OF SERVICE"));
    let gone = ballast.find_all(member_state_changed(victim.addr(), "OUT OF SERVICE"));
    assert!(
        going[0].0 < gone[0].0,
        "OUT OF SERVICE was logged before GOING OUT OF SERVICE"
    );

    // Still nothing new for the drained member.
    for _ in 0..10 {
        let reply = ballast_tests::get(vserver, "/later")
            .await
            .expect("request");
        assert_eq!(reply.backend(), Some(other.name()));
    }
    assert_eq!(
        victim.requests(),
        victim_requests,
        "the drained member received requests after it was disabled: {:?}",
        victim.paths()
    );
    drop(ballast);
}
