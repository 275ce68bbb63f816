//! The poller listens only where its agents are reached from: polling agents on 127.0.0.x
//! binds its sockets to 127.0.0.1, never to 0.0.0.0, and those few sockets serve every agent.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use snmp_monitor::pdu::{CommunityMessage, PduType, Version};
use snmp_monitor::value::Value;
use snmp_monitor::{LoadMonitor, LoadMonitorSpec, MetricTable, PollResult, Poller, PollerConfig};
use snmp_monitor::{Sample, Security};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

fn monitor() -> Arc<LoadMonitor> {
    let mut spec = LoadMonitorSpec::new(
        "sockets",
        Security::V2c {
            community: "public".into(),
        },
        MetricTable::linux(),
    );
    // Generous: the test answers by hand, and a loaded CI host must not turn that into a timeout.
    spec.interval = Duration::from_secs(3);
    spec.resptimeout = Duration::from_millis(2500);
    spec.retries = 0;
    LoadMonitor::new(spec).unwrap()
}

/// Answers one request with every OID set to 7; returns where the request came from.
async fn answer_one(agent: &UdpSocket) -> SocketAddr {
    let mut buf = vec![0u8; 65536];
    let (len, from) = tokio::time::timeout(Duration::from_secs(5), agent.recv_from(&mut buf))
        .await
        .expect("a poll arrives")
        .unwrap();
    let request = CommunityMessage::decode(&buf[..len]).unwrap();
    let oids: Vec<Vec<u8>> = request
        .pdu
        .varbinds
        .map(|vb| vb.unwrap().oid.to_vec())
        .collect();
    let reply = CommunityMessage::encode(
        Version::V2c,
        b"public",
        PduType::Response,
        request.pdu.request_id,
        0,
        0,
        oids.iter().map(|oid| (oid.as_slice(), Value::Integer(7))),
    );
    agent.send_to(&reply, from).await.unwrap();
    from
}

/// The first sample of each of `members`, in any order they arrive.
async fn first_results(
    rx: &mut mpsc::Receiver<Sample<u32>>,
    members: usize,
) -> HashMap<u32, PollResult> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut first = HashMap::new();
    while first.len() < members {
        let sample = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .expect("a sample arrives")
            .unwrap();
        first.entry(sample.member).or_insert(sample.result);
    }
    first
}

/// The local addresses of this process's UDP sockets, from /proc/net/udp and /proc/self/fd
/// (what `ss -ulpn` shows for it).
fn own_udp_sockets() -> Vec<SocketAddr> {
    let inodes: HashSet<String> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter_map(|target| {
            let target = target.to_str()?;
            Some(
                target
                    .strip_prefix("socket:[")?
                    .strip_suffix(']')?
                    .to_owned(),
            )
        })
        .collect();
    std::fs::read_to_string("/proc/net/udp")
        .unwrap()
        .lines()
        .skip(1)
        .filter_map(|row| {
            let fields: Vec<&str> = row.split_whitespace().collect();
            if !inodes.contains(*fields.get(9)?) {
                return None;
            }
            let (ip, port) = fields.get(1)?.split_once(':')?;
            let ip = Ipv4Addr::from(u32::from_be(u32::from_str_radix(ip, 16).ok()?));
            Some(SocketAddr::new(
                ip.into(),
                u16::from_str_radix(port, 16).ok()?,
            ))
        })
        .collect()
}

#[tokio::test]
async fn loopback_agents_are_polled_from_127_0_0_1_and_nothing_listens_on_0_0_0_0() {
    let loopback = IpAddr::from([127, 0, 0, 1]);
    let agents = [
        UdpSocket::bind("127.0.0.51:0").await.unwrap(),
        UdpSocket::bind("127.3.2.1:0").await.unwrap(),
    ];
    let (tx, mut rx) = mpsc::channel(64);
    let poller = Poller::spawn(PollerConfig::default(), tx).unwrap();
    assert!(poller.local_addrs().is_empty(), "no socket before an agent");
    for (member, agent) in (0u32..).zip(&agents) {
        poller.watch(member, agent.local_addr().unwrap(), monitor());
    }
    let (from_first, from_second) = tokio::join!(answer_one(&agents[0]), answer_one(&agents[1]));
    for from in [from_first, from_second] {
        assert_eq!(
            from.ip(),
            loopback,
            "the agent sees the request come from loopback"
        );
    }
    let first = first_results(&mut rx, agents.len()).await;
    assert_eq!(
        first,
        HashMap::from([(0, PollResult::Ok), (1, PollResult::Ok)])
    );

    // Both agents share the two sockets bound for 127.0.0.1; no more are opened.
    let local = poller.local_addrs();
    assert_eq!(local.len(), 2, "{local:?}");
    assert!(local.iter().all(|a| a.ip() == loopback), "{local:?}");

    // What the kernel shows for this process: the agents' sockets and the poller's, none on
    // the wildcard address.
    let listening = own_udp_sockets();
    for addr in &local {
        assert!(listening.contains(addr), "{addr} in {listening:?}");
    }
    assert!(
        listening.iter().all(|a| !a.ip().is_unspecified()),
        "{listening:?}"
    );
}
