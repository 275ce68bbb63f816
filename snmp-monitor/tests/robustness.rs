//! Replies that must not be believed (wrong request id, wrong source, wrong community,
//! malformed, oversized, mismatched varbinds, late) are counted and dropped; an unreachable
//! agent costs one timeout per try and never delays other members.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use common::wait_for;
use snmp_monitor::pdu::{CommunityMessage, PduType, Version};
use snmp_monitor::value::Value;
use snmp_monitor::{
    DropReason, LoadMonitor, LoadMonitorSpec, MetricTable, PollResult, Poller, PollerConfig,
    ResultClass, Sample, Security,
};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::Instant;

fn monitor(interval_ms: u64, timeout_ms: u64, retries: u32) -> Arc<LoadMonitor> {
    let mut spec = LoadMonitorSpec::new(
        "robust",
        Security::V2c {
            community: "public".into(),
        },
        MetricTable::linux(),
    );
    spec.interval = Duration::from_millis(interval_ms);
    spec.resptimeout = Duration::from_millis(timeout_ms);
    spec.retries = retries;
    LoadMonitor::new(spec).unwrap()
}

/// A scripted agent: the test reads each request and decides what goes back.
struct FakeAgent {
    socket: UdpSocket,
}

impl FakeAgent {
    async fn bind(ip: &str) -> Self {
        Self {
            socket: UdpSocket::bind((ip, 0)).await.unwrap(),
        }
    }

    fn addr(&self) -> SocketAddr {
        self.socket.local_addr().unwrap()
    }

    async fn request(&self) -> (Vec<u8>, SocketAddr) {
        let mut buf = vec![0u8; 65536];
        let (len, from) =
            tokio::time::timeout(Duration::from_secs(5), self.socket.recv_from(&mut buf))
                .await
                .expect("a poll arrives")
                .unwrap();
        buf.truncate(len);
        (buf, from)
    }

    async fn send(&self, bytes: &[u8], to: SocketAddr) {
        self.socket.send_to(bytes, to).await.unwrap();
    }
}

/// A Response to `request` with every OID answered 42, optionally another id or community.
fn response(request: &[u8], community: &[u8], id_delta: i32, skip_last: bool) -> Vec<u8> {
    let msg = CommunityMessage::decode(request).unwrap();
    let mut oids: Vec<Vec<u8>> = msg
        .pdu
        .varbinds
        .map(|vb| vb.unwrap().oid.to_vec())
        .collect();
    if skip_last {
        oids.pop();
    }
    CommunityMessage::encode(
        Version::V2c,
        community,
        PduType::Response,
        msg.pdu.request_id.wrapping_add(id_delta),
        0,
        0,
        oids.iter().map(|oid| (oid.as_slice(), Value::Integer(42))),
    )
}

fn drops(poller: &Poller<&'static str>, reason: DropReason) -> u64 {
    poller.stats().drops(reason)
}

async fn next_of(
    rx: &mut mpsc::Receiver<Sample<&'static str>>,
    member: &'static str,
) -> Sample<&'static str> {
    wait_for(rx, &member, Duration::from_secs(5), |_| true).await
}

#[tokio::test]
async fn spoofed_and_malformed_replies_are_counted_and_the_real_reply_still_counts() {
    let agent = FakeAgent::bind("127.0.0.41").await;
    let spoofer = UdpSocket::bind("127.0.0.42:0").await.unwrap();
    let (tx, mut rx) = mpsc::channel(64);
    let poller = Poller::spawn(PollerConfig::default(), tx).unwrap();
    poller.watch("m", agent.addr(), monitor(1000, 900, 0));

    let (request, poller_addr) = agent.request().await;
    agent
        .send(&response(&request, b"public", 1, false), poller_addr)
        .await; // wrong request id
    spoofer
        .send_to(&response(&request, b"public", 0, false), poller_addr)
        .await
        .unwrap(); // wrong source
    agent
        .send(&response(&request, b"private", 0, false), poller_addr)
        .await; // wrong community
    agent.send(b"\x30\x03\x02\x01", poller_addr).await; // truncated
    let mut garbage = response(&request, b"public", 0, false);
    garbage.resize(20_000, 0); // oversized
    agent.send(&garbage, poller_addr).await;
    agent
        .send(&response(&request, b"public", 0, false), poller_addr)
        .await; // the real one

    let sample = next_of(&mut rx, "m").await;
    assert_eq!(sample.result, PollResult::Ok);
    assert_eq!(sample.value("cpu_user"), Some(42.0));
    assert_eq!(drops(&poller, DropReason::UnknownRequest), 1);
    assert_eq!(drops(&poller, DropReason::WrongSource), 1);
    assert_eq!(drops(&poller, DropReason::BadCommunity), 1);
    assert_eq!(drops(&poller, DropReason::Malformed), 1);
    assert_eq!(drops(&poller, DropReason::Oversized), 1);

    // A duplicate of the real reply arrives after the poll ended: unknown, not a second sample.
    agent
        .send(&response(&request, b"public", 0, false), poller_addr)
        .await;
    // The next poll gets a reply that leaves out one OID: a decode error, not partial data.
    let (request, poller_addr) = agent.request().await;
    agent
        .send(&response(&request, b"public", 0, true), poller_addr)
        .await;
    let sample = next_of(&mut rx, "m").await;
    assert_eq!(sample.result, PollResult::DecodeError);
    assert_eq!(drops(&poller, DropReason::UnknownRequest), 2);
    assert_eq!(poller.stats().polls(ResultClass::DecodeError), 1);
}

#[tokio::test]
async fn an_unreachable_agent_costs_one_timeout_per_try_and_never_delays_others() {
    let healthy = FakeAgent::bind("127.0.0.43").await;
    let silent_port = common::free_udp_port("127.0.0.44".parse().unwrap());
    let (tx, mut rx) = mpsc::channel(256);
    let poller = Poller::spawn(PollerConfig::default(), tx).unwrap();
    poller.watch("healthy", healthy.addr(), monitor(100, 50, 0));
    poller.watch(
        "silent",
        SocketAddr::new("127.0.0.44".parse().unwrap(), silent_port),
        monitor(1000, 200, 2),
    );

    let answer = tokio::spawn(async move {
        loop {
            let (request, from) = healthy.request().await;
            healthy
                .send(&response(&request, b"public", 0, false), from)
                .await;
        }
    });
    let started = Instant::now();
    let silent = wait_for(&mut rx, &"silent", Duration::from_secs(5), |_| true).await;
    let silent_at = silent.at;
    assert_eq!(silent.result, PollResult::Timeout);
    assert_eq!(silent.latency, None);
    // Meanwhile the healthy member kept its 100 ms rhythm.
    let mut healthy_ok = 0;
    let window = Instant::now() + Duration::from_millis(1000);
    while let Ok(Some(sample)) = tokio::time::timeout_at(window, rx.recv()).await {
        if sample.member == "healthy" && sample.result == PollResult::Ok {
            healthy_ok += 1;
        }
    }
    answer.abort();
    assert!(
        healthy_ok >= 7,
        "healthy member polled {healthy_ok} times in 1 s"
    );
    assert!(silent_at.duration_since(started) < Duration::from_millis(1000 + 3 * 200 + 300));
    let stats = poller.stats().snapshot();
    assert!(stats.retransmits >= 2, "{stats:#?}");
    let timeouts = stats
        .polls
        .iter()
        .find(|(c, _)| *c == ResultClass::Timeout)
        .unwrap()
        .1;
    assert!(
        (1..=2).contains(&timeouts),
        "only the silent member times out: {stats:#?}"
    );
    assert!(
        stats.retransmits >= 2 * timeouts,
        "two retries per silent poll: {stats:#?}"
    );
}

#[tokio::test]
async fn unwatch_stops_polling_and_watch_again_restarts() {
    let agent = FakeAgent::bind("127.0.0.45").await;
    let (tx, mut rx) = mpsc::channel(64);
    let poller = Poller::spawn(PollerConfig::default(), tx).unwrap();
    poller.watch("m", agent.addr(), monitor(100, 50, 0));
    let (request, from) = agent.request().await;
    agent
        .send(&response(&request, b"public", 0, false), from)
        .await;
    assert_eq!(next_of(&mut rx, "m").await.result, PollResult::Ok);
    poller.unwatch("m");
    tokio::time::sleep(Duration::from_millis(100)).await;
    while rx.try_recv().is_ok() {}
    let mut buf = [0u8; 2048];
    let quiet =
        tokio::time::timeout(Duration::from_millis(400), agent.socket.recv_from(&mut buf)).await;
    assert!(quiet.is_err(), "no polls after unwatch");
    assert_eq!(poller.stats().snapshot().agents, 0);
    poller.watch("m", agent.addr(), monitor(100, 50, 0));
    let (request, from) = agent.request().await;
    agent
        .send(&response(&request, b"public", 0, false), from)
        .await;
    assert_eq!(next_of(&mut rx, "m").await.result, PollResult::Ok);
}
