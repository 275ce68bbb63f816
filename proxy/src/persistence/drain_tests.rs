//! A drain with a persistence grace, through a running writer: the member keeps its persistent
//! clients (and counts its `SOURCEIP` entries for the autoscaler) until the grace ends.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::DrainGrace;
use crate::member::{MemberKey, MemberStatus};
use crate::snapshot::Snapshot;
use crate::writer::ConfigWriter;

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address").port()
}

#[tokio::test]
async fn a_drain_with_a_grace_keeps_persistent_clients_and_counts_their_entries() {
    let text = format!(
        r#"
[[servicegroup]]
servicegroupname = "pool"
servicetype = "HTTP"
members = [{{ ip = "127.0.0.2", port = 80 }}, {{ ip = "127.0.0.3", port = 80 }}]

[[lbvserver]]
name = "web"
servicetype = "HTTP"
ipv46 = "127.0.0.1"
port = {}
servicegroupname = "pool"
persistencetype = "SOURCEIP"
"#,
        free_port()
    );
    let config = crate::config::validate::from_toml(&text, Path::new(".")).expect("valid");
    let snapshot = Arc::new(ArcSwap::from_pointee(Snapshot::empty()));
    let shutdown = CancellationToken::new();
    let writer = ConfigWriter::start(
        snapshot.clone(),
        ".".into(),
        TaskTracker::new(),
        shutdown.clone(),
    );
    writer.apply(config).await.expect("applied");
    let graced: SocketAddr = "127.0.0.2:80".parse().unwrap();
    let plain: SocketAddr = "127.0.0.3:80".parse().unwrap();
    let key = |addr| MemberKey {
        group: "pool".into(),
        addr,
    };
    {
        let current = snapshot.load();
        let sessions = &current.vserver("web").unwrap().stats.sessions;
        for (last, addr) in [(1, graced), (2, graced), (3, plain)] {
            let source = std::net::IpAddr::from([10, 0, 0, last]);
            sessions.insert(source, key(addr), Instant::now(), Duration::from_secs(60));
        }
    }

    let mut grace = DrainGrace::default();
    grace.arm(
        &snapshot.load(),
        "pool",
        Some(graced),
        Duration::from_secs(60),
    );
    writer
        .disable_member("pool", graced)
        .await
        .expect("disabled");
    drop(grace);
    writer
        .disable_member("pool", plain)
        .await
        .expect("disabled");

    let current = snapshot.load();
    let members = current.members_of("pool");
    let state = |addr| {
        current.groups["pool"]
            .members
            .iter()
            .find(|m| m.key.addr == addr)
            .unwrap()
            .clone()
    };
    // Within its grace: persistent clients still come, no new ones; its entries count.
    assert!(state(graced).accepts_persistent());
    assert!(!state(graced).is_eligible());
    assert_eq!(members[0].status, MemberStatus::GoingOutOfService);
    assert_eq!(members[0].persistent_sessions, 2);
    assert!(state(graced).drain_grace_left() > Duration::from_secs(59));
    // Disabled without one: nobody, and nothing to count.
    assert!(!state(plain).accepts_persistent());
    assert_eq!(members[1].status, MemberStatus::OutOfService);
    assert_eq!(members[1].persistent_sessions, 0);

    // Enabled again, the grace is over for good.
    writer.enable_member("pool", graced).await.expect("enabled");
    assert_eq!(state(graced).drain_grace_left(), Duration::ZERO);
    shutdown.cancel();
}
