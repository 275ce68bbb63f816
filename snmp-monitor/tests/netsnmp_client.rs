//! net-snmp's own `snmpget`/`snmpwalk`/`snmpbulkwalk` against the Ballast VM agent: the UCD
//! values come back, and they move when the process burns CPU.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use common::require_tool;
use snmp_monitor::agent::{self, AgentStats, ProcessSampler, VmShare};
use snmp_monitor::table::linux;
use tokio::net::UdpSocket;
use tokio::process::Command;
use tokio::time::Instant;

const MEMORY: u64 = 512 << 20;

async fn start_agent(ip: &str) -> std::net::SocketAddr {
    let socket = UdpSocket::bind((ip, 0)).await.unwrap();
    let addr = socket.local_addr().unwrap();
    let values = ProcessSampler::spawn(
        VmShare {
            vcpus: 1.0,
            memory_bytes: MEMORY,
        },
        Duration::from_millis(250),
    );
    tokio::spawn(agent::serve(
        socket,
        "public",
        move || *values.borrow(),
        Arc::new(AgentStats::default()),
    ));
    addr
}

/// Runs a net-snmp tool with numeric output; returns `OID → value text` and the exit status.
async fn net_snmp(tool: &str, args: &[&str]) -> (bool, HashMap<String, String>, String) {
    require_tool(tool);
    let output = Command::new(tool)
        .args(["-On", "-t", "1", "-r", "1"])
        .args(args)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let values = stdout
        .lines()
        .filter_map(|line| line.split_once(" = "))
        .map(|(oid, value)| (oid.trim_start_matches('.').to_owned(), value.to_owned()))
        .collect();
    let all = stdout + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), values, all)
}

fn integer(values: &HashMap<String, String>, oid: &str) -> i64 {
    let text = values
        .get(oid)
        .unwrap_or_else(|| panic!("{oid} missing from {values:#?}"));
    text.strip_prefix("INTEGER: ")
        .unwrap_or_else(|| panic!("{oid}: {text}"))
        .parse()
        .unwrap()
}

#[tokio::test]
async fn snmpget_reads_the_agent_and_cpu_moves_when_the_process_burns_cpu() {
    let addr = start_agent("127.0.0.31").await;
    let target = addr.to_string();
    let oids = [
        linux::OID_CPU_USER,
        linux::OID_CPU_SYSTEM,
        linux::OID_CPU_IDLE,
        linux::OID_MEM_TOTAL,
        linux::OID_MEM_AVAIL,
        linux::OID_SYS_UPTIME,
    ];
    tokio::time::sleep(Duration::from_millis(600)).await;
    let mut args = vec!["-v2c", "-c", "public", target.as_str()];
    args.extend(oids);
    let (ok, idle, all) = net_snmp("snmpget", &args).await;
    assert!(ok, "{all}");
    assert_eq!(integer(&idle, linux::OID_MEM_TOTAL), 524_288);
    let avail = integer(&idle, linux::OID_MEM_AVAIL);
    assert!(
        avail > 0 && avail < 524_288,
        "available = size - own RSS: {avail}"
    );
    assert!(
        idle[linux::OID_SYS_UPTIME].starts_with("Timeticks: "),
        "{all}"
    );
    let idle_user = integer(&idle, linux::OID_CPU_USER);
    let sum =
        idle_user + integer(&idle, linux::OID_CPU_SYSTEM) + integer(&idle, linux::OID_CPU_IDLE);
    assert_eq!(sum, 100, "{all}");

    // Burn one vCPU's worth for a while, then read again while it still burns.
    let burner = std::thread::spawn(|| {
        let until = Instant::now() + Duration::from_millis(1800);
        let mut x = 0u64;
        while Instant::now() < until {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        }
        x
    });
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let (ok, busy, all) = net_snmp("snmpget", &args).await;
    assert!(ok, "{all}");
    let busy_user = integer(&busy, linux::OID_CPU_USER);
    let busy_idle = integer(&busy, linux::OID_CPU_IDLE);
    let _ = burner.join();
    assert!(
        busy_user >= 40 && busy_user > idle_user + 20,
        "user CPU {idle_user}% idle -> {busy_user}% burning\n{all}"
    );
    assert!(busy_idle <= 60, "{all}");
}

#[tokio::test]
async fn snmpwalk_and_bulkwalk_walk_the_ucd_subtree_and_a_wrong_community_times_out() {
    let addr = start_agent("127.0.0.32").await;
    let target = addr.to_string();
    for tool in ["snmpwalk", "snmpbulkwalk"] {
        let (ok, walked, all) =
            net_snmp(tool, &["-v2c", "-c", "public", &target, "1.3.6.1.4.1.2021"]).await;
        assert!(ok, "{tool}: {all}");
        assert_eq!(walked.len(), 6, "{tool}: cpu x3, memory x2, laLoad: {all}");
        assert!(walked[linux::OID_LOAD_1].starts_with("STRING: "), "{all}");
    }
    let (ok, _, all) = net_snmp(
        "snmpget",
        &["-v2c", "-c", "wrong", &target, linux::OID_CPU_IDLE],
    )
    .await;
    assert!(!ok && all.contains("Timeout"), "{all}");
    let (ok, _, all) = net_snmp(
        "snmpget",
        &["-v2c", "-c", "public", &target, "1.3.6.1.4.1.2021.99.0"],
    )
    .await;
    assert!(ok && all.contains("No Such Object"), "{all}");
}
