//! LOAD monitors end to end: three members, each with a real SNMP agent on its own address
//! (the agent `ballast vm` runs, serving fixed CPU figures here), a `CUSTOMLOAD` vserver, and
//! a member over its threshold turning BUSY.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::time::Duration;

use ballast_tests::ballast::member_state_changed;
use ballast_tests::nitro::Nitro;
use ballast_tests::prom::{
    OPENMETRICS_ACCEPT, assert_openmetrics_parses, assert_promtool_accepts, sample, scrape,
};
use ballast_tests::{BALLAST_SECTION, Backend, Binary, Net, get, members_toml};
use snmp_monitor::agent::{self, AgentStats, AgentValues};
use tokio::net::UdpSocket;

/// The `ballast` binary cargo built for this test run.
const BALLAST: Binary = Binary::new(env!("CARGO_BIN_EXE_ballast"));

/// An SNMP agent on `ip:port` whose ssCpuIdle is `100 - cpu` (so the linux table's `cpu`
/// metric reads `cpu`); `cpu` can be changed while it runs.
async fn agent(addr: SocketAddr, cpu: u32) -> Arc<AtomicU32> {
    let socket = UdpSocket::bind(addr).await.expect("bind the agent");
    let level = Arc::new(AtomicU32::new(cpu));
    let read = level.clone();
    tokio::spawn(agent::serve(
        socket,
        "public",
        move || {
            let cpu = read.load(Relaxed);
            AgentValues {
                cpu_user: cpu,
                cpu_system: 0,
                cpu_idle: 100 - cpu,
                mem_total_kb: 1 << 20,
                mem_avail_kb: 1 << 19,
                load: Some(f64::from(cpu) / 100.0),
            }
        },
        Arc::new(AgentStats::default()),
    ));
    level
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customload_prefers_the_least_loaded_member_and_busy_members_get_nothing() {
    let net = Net::new();
    let backends = [
        Backend::start(net.free_addr(1), "light").await,
        Backend::start(net.free_addr(2), "medium").await,
        Backend::start(net.free_addr(3), "heavy").await,
    ];
    let snmp_port = ballast_tests::free_port(net.ip(1));
    let mut levels = Vec::new();
    for (host, cpu) in [(1u8, 10u32), (2, 40), (3, 70)] {
        levels.push(agent(SocketAddr::new(net.ip(host), snmp_port), cpu).await);
    }
    let vserver = net.free_addr(250);
    let admin = net.free_addr(251);
    let members: Vec<SocketAddr> = backends.iter().map(Backend::addr).collect();
    let config = format!(
        r#"{BALLAST_SECTION}[admin]
listen = "{admin}"
passwordfile = "admin.pass"

[[lbmonitor]]
monitorname = "load"
type = "LOAD"
destport = {snmp_port}
interval = "200ms"
resptimeout = "100ms"
metrics = [{{ metric = "cpu", metricthreshold = 80 }}]

[[servicegroup]]
servicegroupname = "pool"
servicetype = "HTTP"
monitor = ["load"]
{}

[[lbvserver]]
name = "web"
servicetype = "HTTP"
ipv46 = "{}"
port = {}
lbmethod = "CUSTOMLOAD"
servicegroupname = "pool"
"#,
        members_toml(&members),
        vserver.ip(),
        vserver.port()
    );
    let ballast = BALLAST
        .start_with_files(&config, &[("admin.pass", b"load-test-password\n")])
        .await;
    // Wait until every member has been polled (stat shows a load for all three).
    let nitro = Nitro::new(admin, "nsroot", "load-test-password");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let stat = nitro.get("stat/servicegroup/pool?statbindings=yes").await;
        let members = stat.body["servicegroup"][0]["servicegroupmember"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if members.len() == 3 && members.iter().all(|m| m["load"].is_number()) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "loads never showed up in stat: {:?}",
            stat.body
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut counts = std::collections::BTreeMap::new();
    for _ in 0..60 {
        let reply = get(vserver, "/").await.expect("served");
        *counts
            .entry(reply.backend().unwrap_or("?").to_owned())
            .or_insert(0) += 1;
    }
    let light = counts.get("light").copied().unwrap_or(0);
    assert!(
        light >= 50,
        "the least-loaded member got {light} of 60: {counts:?}"
    );

    // The light member goes over its threshold: BUSY, and new requests go elsewhere.
    levels[0].store(95, Relaxed);
    let busy = ballast
        .wait_for_log(
            member_state_changed(members[0], "BUSY"),
            Duration::from_secs(5),
        )
        .await;
    assert!(
        busy.is_some(),
        "the member over its threshold was not marked BUSY:\n{}",
        ballast.log_text()
    );
    let before = backends[0].requests();
    for _ in 0..30 {
        let reply = get(vserver, "/").await.expect("served");
        assert_ne!(
            reply.backend(),
            Some("light"),
            "a BUSY member got a new request"
        );
    }
    assert_eq!(backends[0].requests(), before);
    // Back under the threshold: UP again.
    levels[0].store(5, Relaxed);
    let up = ballast
        .wait_for_log(
            member_state_changed(members[0], "UP"),
            Duration::from_secs(5),
        )
        .await;
    assert!(up.is_some(), "the member did not come back from BUSY");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poll_results_show_up_by_class_in_metrics() {
    let net = Net::new();
    let good = Backend::start(net.free_addr(1), "good").await;
    let silent = Backend::start(net.free_addr(2), "silent").await;
    let snmp_port = ballast_tests::free_port(net.ip(1));
    // Only the first member has an agent; the monitor of the second group uses a community
    // the agent does not know, so it stays silent: timeouts, as net-snmp reports them too.
    agent(SocketAddr::new(net.ip(1), snmp_port), 25).await;
    let metrics = net.free_addr(250);
    let vserver = net.free_addr(251);
    let config = format!(
        r#"{BALLAST_SECTION}[metrics]
listen = "{metrics}"

[[lbmonitor]]
monitorname = "load"
type = "LOAD"
destport = {snmp_port}
interval = "200ms"
resptimeout = "50ms"
metrics = [{{ metric = "cpu", metricthreshold = 80 }}]

[[lbmonitor]]
monitorname = "wrong-community"
type = "LOAD"
snmpcommunity = "not-the-community"
destport = {snmp_port}
interval = "200ms"
resptimeout = "50ms"

[[servicegroup]]
servicegroupname = "pool"
servicetype = "HTTP"
monitor = ["load"]
{}

[[servicegroup]]
servicegroupname = "other"
servicetype = "HTTP"
monitor = ["wrong-community"]
members = [{{ ip = "{}", port = {} }}, {{ ip = "{}", port = {} }}]

[[lbvserver]]
name = "web"
servicetype = "HTTP"
ipv46 = "{}"
port = {}
servicegroupname = "pool"
"#,
        members_toml(&[good.addr()]),
        good.addr().ip(),
        good.addr().port(),
        silent.addr().ip(),
        silent.addr().port(),
        vserver.ip(),
        vserver.port()
    );
    let _ballast = BALLAST.start(&config).await;
    let cpu = format!(
        "ballast_member_metric{{servicegroup=\"pool\",member=\"{}\",metric=\"cpu\"}}",
        good.addr()
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let text = loop {
        let (_, text) = scrape(metrics, None).await;
        let timeouts = sample(&text, "ballast_snmp_polls_total{result=\"timeout\"}").unwrap_or(0.0);
        if timeouts >= 4.0 && sample(&text, &cpu).is_some() {
            break text;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no timeouts or no cpu metric yet:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(sample(&text, &cpu), Some(25.0), "{text}");
    assert!(sample(&text, "ballast_snmp_polls_total{result=\"ok\"}").unwrap_or(0.0) >= 1.0);
    assert_eq!(
        sample(&text, "ballast_snmp_polls_total{result=\"auth_error\"}"),
        Some(0.0)
    );
    assert_promtool_accepts(&text);
    let (_, openmetrics) = scrape(metrics, Some(OPENMETRICS_ACCEPT)).await;
    assert_openmetrics_parses(&openmetrics);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_metric_table_changed_through_the_api_is_polled_at_once() {
    let net = Net::new();
    let app = Backend::start(net.free_addr(1), "app").await;
    let snmp_port = ballast_tests::free_port(net.ip(1));
    agent(SocketAddr::new(net.ip(1), snmp_port), 25).await;
    let (vserver, admin) = (net.free_addr(250), net.free_addr(251));
    let config = format!(
        r#"{BALLAST_SECTION}[admin]
listen = "{admin}"
passwordfile = "admin.pass"

[[lbmetrictable]]
metrictable = "app"
metrics = [{{ metric = "util", snmpoid = "1.3.6.1.4.1.2021.11.11.0" }}]

[[lbmonitor]]
monitorname = "load"
type = "LOAD"
metrictable = "app"
destport = {snmp_port}
interval = "200ms"
resptimeout = "100ms"

[[servicegroup]]
servicegroupname = "pool"
servicetype = "HTTP"
monitor = ["load"]
{}

[[lbvserver]]
name = "web"
servicetype = "HTTP"
ipv46 = "{}"
port = {}
servicegroupname = "pool"
"#,
        members_toml(&[app.addr()]),
        vserver.ip(),
        vserver.port()
    );
    let _ballast = BALLAST
        .start_with_files(&config, &[("admin.pass", b"table-test-password\n")])
        .await;
    let nitro = Nitro::new(admin, "nsroot", "table-test-password");
    let util = || async {
        let stat = nitro.get("stat/servicegroup/pool?statbindings=yes").await;
        stat.body["servicegroup"][0]["servicegroupmember"][0]["metrics"]["util"].as_f64()
    };
    let until = |wanted: f64| async move {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while tokio::time::Instant::now() < deadline {
            if util().await == Some(wanted) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    };
    assert!(
        until(75.0).await,
        "the table's OID (ssCpuIdle = 75) was never read"
    );
    // Point the metric at ssCpuUser (25): the member is polled with the new table.
    let changed = nitro
        .put(
            "config/lbmetrictable",
            serde_json::json!({"lbmetrictable": {"metrictable": "app", "metrics": [{"metric": "util", "snmpoid": "1.3.6.1.4.1.2021.11.9.0"}]}}),
        )
        .await;
    assert!(changed.status.is_success(), "{:?}", changed.body);
    assert!(until(25.0).await, "the changed table was not polled");
}
