//! Scale bench for the poller (not a timed test).
//!
//! `cargo run --release -p snmp-monitor --example snmp-bench -- [--agents 1000,10000,20000] [--seconds 10] [--warmup 3] [--sockets 2] [--port 16100]`
//!
//! For each N: child processes simulate N v2c agents on 127.1.x.y:PORT (one socket each,
//! answered by `agent::respond`); this process polls all of them every second for 4 OIDs on a
//! single-threaded runtime (one core) and reports polls/s, timeouts, agents that missed an
//! interval, CPU per poll, RSS and latency. Build with `--release` for figures.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use snmp_monitor::agent::process::{parse_rss_kb, parse_stat};
use snmp_monitor::agent::{self, AgentValues};
use snmp_monitor::table::linux;
use snmp_monitor::{
    LoadMonitor, LoadMonitorSpec, Metric, MetricKind, MetricTable, PollResult, Poller,
    PollerConfig, Security,
};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Agents one responder process simulates (each needs a file descriptor).
const PER_RESPONDER: usize = 12_000;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("respond") {
        return respond(&args[1..]);
    }
    let flag = |name: &str, default: &str| -> String {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
            .unwrap_or_else(|| default.into())
    };
    let counts: Vec<usize> = flag("--agents", "1000,5000,10000")
        .split(',')
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    let seconds: u64 = flag("--seconds", "10").parse()?;
    let warmup: u64 = flag("--warmup", "3").parse()?;
    let sockets: usize = flag("--sockets", "2").parse()?;
    let port: u16 = flag("--port", "16100").parse()?;
    println!(
        "{:>7} {:>9} {:>8} {:>7} {:>7} {:>9} {:>10} {:>8} {:>9} {:>9}",
        "agents",
        "ok/s",
        "timeout",
        "missed",
        "skipped",
        "cpu%core",
        "µs/poll",
        "rss MiB",
        "p50 ms",
        "p99 ms"
    );
    for n in counts {
        let report = run_one(n, seconds, warmup, sockets, port)?;
        println!("{report}");
    }
    Ok(())
}

fn agent_addr(i: usize, port: u16) -> SocketAddr {
    let ip = Ipv4Addr::new(
        127,
        1 + (i / 65_024) as u8,
        ((i % 65_024) / 254) as u8,
        (i % 254 + 1) as u8,
    );
    SocketAddr::new(IpAddr::V4(ip), port)
}

fn run_one(n: usize, seconds: u64, warmup: u64, sockets: usize, port: u16) -> Result<String> {
    let mut children = Vec::new();
    for first in (0..n).step_by(PER_RESPONDER) {
        let count = PER_RESPONDER.min(n - first);
        children.push(spawn_responder(first, count, port)?);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(poll_all(n, seconds, warmup, sockets, port));
    for mut child in children {
        let _ = child.kill();
        let _ = child.wait();
    }
    result
}

fn spawn_responder(first: usize, count: usize, port: u16) -> Result<Child> {
    let exe = std::env::current_exe()?;
    let mut child = Command::new(exe)
        .args([
            "respond",
            &first.to_string(),
            &count.to_string(),
            &port.to_string(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let stdout = child.stdout.take().context("responder stdout")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    if line.trim() != "ready" {
        bail!("responder failed to start: {line}");
    }
    Ok(child)
}

fn bench_monitor() -> Result<Arc<LoadMonitor>> {
    let oid = |text: &str| text.parse();
    let table = MetricTable::new(
        "bench",
        vec![
            Metric::new("cpu_idle", oid(linux::OID_CPU_IDLE)?, MetricKind::Integer),
            Metric::new("mem_total", oid(linux::OID_MEM_TOTAL)?, MetricKind::Integer),
            Metric::new("mem_avail", oid(linux::OID_MEM_AVAIL)?, MetricKind::Integer),
            Metric::new("load", oid(linux::OID_LOAD_1)?, MetricKind::String),
        ],
    );
    let mut spec = LoadMonitorSpec::new(
        "bench",
        Security::V2c {
            community: "public".into(),
        },
        table,
    );
    spec.interval = Duration::from_secs(1);
    spec.resptimeout = Duration::from_millis(500);
    spec.retries = 1;
    Ok(LoadMonitor::new(spec)?)
}

fn cpu_ticks_and_rss() -> (u64, u64) {
    let ticks = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|t| parse_stat(&t));
    let rss = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|t| parse_rss_kb(&t));
    (ticks.map_or(0, |t| t.user + t.system), rss.unwrap_or(0))
}

async fn poll_all(
    n: usize,
    seconds: u64,
    warmup: u64,
    sockets: usize,
    port: u16,
) -> Result<String> {
    let monitor = bench_monitor()?;
    let (tx, mut rx) = mpsc::channel(n.max(1024) * 2);
    let config = PollerConfig {
        sockets,
        bind_v6: None,
        ..PollerConfig::default()
    };
    let poller = Poller::<u32>::spawn(config, tx)?;
    for i in 0..n {
        poller.watch(i as u32, agent_addr(i, port), monitor.clone());
    }
    let start = Instant::now();
    let window_start = start + Duration::from_secs(warmup);
    let window_end = window_start + Duration::from_secs(seconds);
    let mut ok_per_agent: HashMap<u32, u64> = HashMap::with_capacity(n);
    let mut latencies = Vec::new();
    let (mut ok, mut failed) = (0u64, 0u64);
    let mut at_window_start = None;
    loop {
        let now = Instant::now();
        if at_window_start.is_none() && now >= window_start {
            at_window_start = Some((
                cpu_ticks_and_rss().0,
                poller.stats().snapshot().missed_intervals,
            ));
        }
        if now >= window_end {
            break;
        }
        let Ok(Some(sample)) = tokio::time::timeout_at(
            window_end.min(window_start.max(now + Duration::from_millis(100))),
            rx.recv(),
        )
        .await
        else {
            continue;
        };
        if sample.at < window_start {
            continue;
        }
        if sample.result == PollResult::Ok {
            ok += 1;
            *ok_per_agent.entry(sample.member).or_default() += 1;
            if let Some(latency) = sample.latency {
                latencies.push(latency.as_micros() as u64);
            }
        } else {
            failed += 1;
        }
    }
    let (ticks_end, rss_kb) = cpu_ticks_and_rss();
    let (ticks_start, missed_start) = at_window_start.unwrap_or((ticks_end, 0));
    let skipped = poller.stats().snapshot().missed_intervals - missed_start;
    let cpu_seconds = (ticks_end - ticks_start) as f64 / 100.0;
    let missed = (0..n as u32)
        .filter(|i| ok_per_agent.get(i).copied().unwrap_or(0) + 1 < seconds)
        .count();
    latencies.sort_unstable();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .map_or(0.0, |&us| us as f64 / 1000.0)
    };
    Ok(format!(
        "{:>7} {:>9.0} {:>8} {:>7} {:>7} {:>9.1} {:>10.2} {:>8.1} {:>9.2} {:>9.2}",
        n,
        ok as f64 / seconds as f64,
        failed,
        missed,
        skipped,
        100.0 * cpu_seconds / seconds as f64,
        if ok > 0 {
            cpu_seconds * 1e6 / ok as f64
        } else {
            0.0
        },
        rss_kb as f64 / 1024.0,
        pct(0.5),
        pct(0.99),
    ))
}

/// Child mode: `respond FIRST COUNT PORT` simulates agents FIRST..FIRST+COUNT until stdin closes.
fn respond(args: &[String]) -> Result<()> {
    let [first, count, port] = args else {
        bail!("usage: snmp-bench respond FIRST COUNT PORT")
    };
    let (first, count, port): (usize, usize, u16) = (first.parse()?, count.parse()?, port.parse()?);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let values = AgentValues {
            cpu_idle: 80,
            mem_total_kb: 4 << 20,
            mem_avail_kb: 3 << 20,
            load: Some(0.42),
            ..AgentValues::default()
        };
        for i in first..first + count {
            let socket = UdpSocket::bind(agent_addr(i, port))
                .await
                .with_context(|| format!("bind {}", agent_addr(i, port)))?;
            tokio::spawn(async move {
                let mut buf = [0u8; 1500];
                let started = Instant::now();
                while let Ok((len, from)) = socket.recv_from(&mut buf).await {
                    if let Some(reply) =
                        agent::respond(&buf[..len], b"public", &|| values, started.elapsed())
                    {
                        let _ = socket.send_to(&reply, from).await;
                    }
                }
            });
        }
        println!("ready");
        // Exit when the parent closes our stdin (or dies).
        let mut stdin = tokio::io::stdin();
        let mut sink = [0u8; 64];
        while tokio::io::AsyncReadExt::read(&mut stdin, &mut sink)
            .await
            .map(|n| n > 0)
            .unwrap_or(false)
        {}
        Ok(())
    })
}
