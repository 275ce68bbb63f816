//! `snmp`: how many SNMP LOAD polls one poller thread sustains, Ballast only (HAProxy and nginx
//! have no SNMP monitor).
//!
//! Child processes (`bench snmp-agents`) simulate N v2c agents on 127.1.x.y, one UDP socket
//! each, answered by the VM-side agent's own code (`snmp_monitor::agent::respond`). A fresh
//! process (`bench snmp-poller`, so its CPU and RSS are its own) runs `snmp_monitor::Poller` on
//! a single-threaded runtime and polls every agent once a second for the 4 OIDs of a Linux
//! metric table, over 2 shared sockets, 500 ms timeout and 1 retry. After a warm-up it counts,
//! over the window: OK polls/s, timeouts and other failures, agents that missed an interval,
//! intervals the poller itself fell behind on, its CPU (cores, and µs per OK poll), its VmRSS
//! and the request latency (send to reply). It prints them as one JSON line.
//!
//! `bench snmp --agents 1000,10000,20000` prints one row per count; `bench all` runs one count
//! ([`sizes`]) with the agents on the generator CPU and the poller alone on the proxy CPU.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::Args;
use serde::{Deserialize, Serialize};
use snmp_monitor::agent::{self, AgentValues};
use snmp_monitor::table::linux;
use snmp_monitor::{
    LoadMonitor, LoadMonitorSpec, Metric, MetricKind, MetricTable, PollResult, Poller,
    PollerConfig, Security,
};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::net::UdpSocket;
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio::time::{Duration, Instant};

use crate::histogram::Histogram;
use crate::markdown::{Row, Table};
use crate::report::JsonOut;
use crate::targets::Pinning;
use crate::units::parse_duration;
use crate::{memory, procstat};

pub const TITLE: &str = "SNMP LOAD polling at scale";
/// Agents one `snmp-agents` process simulates (each socket is a file descriptor).
const PER_PROCESS: usize = 12_000;
const COMMUNITY: &str = "public";

/// How long and over what a poll run measures.
#[derive(Debug, Clone, Args)]
pub struct Window {
    /// The measured window.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Polling before the window, not counted.
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    pub warmup: Duration,
    /// UDP sockets the poller sends from.
    #[arg(long, default_value_t = 2)]
    pub sockets: usize,
    /// The agents' UDP port.
    #[arg(long, default_value_t = 16100)]
    pub port: u16,
}

/// What one poller did in its window.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SnmpRun {
    pub agents: usize,
    pub window_s: f64,
    pub polls_ok: u64,
    pub polls_per_s: f64,
    pub timeouts: u64,
    /// Failed polls other than timeouts (decode, agent or send errors).
    pub other_failures: u64,
    /// Agents with fewer OK polls than the window's seconds less one.
    pub agents_missed: usize,
    /// Intervals the poller's schedule fell behind on.
    pub intervals_skipped: u64,
    pub cpu_cores: f64,
    pub cpu_us_per_poll: f64,
    pub rss_bytes: u64,
    pub p50_us: f64,
    pub p99_us: f64,
}

impl SnmpRun {
    pub const HEADER: &str = "  agents      ok/s  timeout  other  missed  skipped  cpu%core  µs/poll  rss MiB    p50 ms    p99 ms";

    pub fn line(&self) -> String {
        format!(
            "{:>8} {:>9.0} {:>8} {:>6} {:>7} {:>8} {:>9.1} {:>8.2} {:>8.1} {:>9.2} {:>9.2}",
            self.agents,
            self.polls_per_s,
            self.timeouts,
            self.other_failures,
            self.agents_missed,
            self.intervals_skipped,
            self.cpu_cores * 100.0,
            self.cpu_us_per_poll,
            self.rss_bytes as f64 / f64::from(1 << 20),
            self.p50_us / 1e3,
            self.p99_us / 1e3,
        )
    }
}

/// The agents and the window of `bench all`: 10,000 agents for 10 s, or 500 for 2 s (quick).
pub fn sizes(quick: bool) -> (usize, Window) {
    let (agents, duration, warmup) = if quick {
        (500, Duration::from_secs(2), Duration::from_secs(1))
    } else {
        (10_000, Duration::from_secs(10), Duration::from_secs(3))
    };
    let window = Window {
        duration,
        warmup,
        sockets: 2,
        port: 16100,
    };
    (agents, window)
}

/// One line for the report's method section.
pub fn method(quick: bool) -> String {
    let (agents, window) = sizes(quick);
    format!(
        "`snmp` (Ballast only): {agents} simulated v2c agents on 127.1.x.y (child processes answering with the \
         VM-side agent's code) polled once a second for 4 OIDs by `snmp_monitor::Poller` on one thread in a \
         process of its own, over {} sockets; {:?} window after {:?} warm-up; CPU and VmRSS of that process.",
        window.sockets, window.duration, window.warmup
    )
}

/// `snmp` in `bench all`: one run at [`sizes`], as a table.
pub async fn scenario(quick: bool, pin: &Pinning, out: &mut JsonOut) -> Result<Table> {
    let (agents, window) = sizes(quick);
    println!(
        "\n== snmp: {agents} simulated agents polled every second for {:?}",
        window.duration
    );
    let run = measure(agents, &window, pin.enabled.then_some(pin.proxy_cpu)).await?;
    println!("{}\n{}", SnmpRun::HEADER, run.line());
    out.write(&run)?;
    Ok(table(&run, pin))
}

/// `bench snmp`: one run per agent count, as a table on stdout.
pub async fn run(counts: &[usize], window: &Window) -> Result<()> {
    println!("{}", SnmpRun::HEADER);
    for &agents in counts {
        let run = measure(agents, window, None).await?;
        println!("{}", run.line());
    }
    Ok(())
}

/// Starts the agents and a poller for `agents` agents (on `poller_cpu`, if given), and returns
/// what the poller measured.
pub async fn measure(agents: usize, window: &Window, poller_cpu: Option<usize>) -> Result<SnmpRun> {
    if agents == 0 || window.duration < Duration::from_secs(1) {
        bail!("need at least one agent and a window of at least 1 s");
    }
    let need = PER_PROCESS.min(agents) as u64 + 256;
    let limit = memory::raise_fd_limit(need);
    if limit < need {
        bail!(
            "the open-files limit is {limit}; simulating {agents} agents needs {need} (`ulimit -n`)"
        );
    }
    let exe = std::env::current_exe().context("finding the bench binary")?;
    let mut simulators = Vec::new();
    for first in (0..agents).step_by(PER_PROCESS) {
        let count = PER_PROCESS.min(agents - first);
        simulators.push(start_agents(&exe, first, count, window.port).await?);
    }
    let mut command = match poller_cpu {
        Some(cpu) => {
            let mut c = Command::new("taskset");
            c.args(["-c", &cpu.to_string()]).arg(&exe);
            c
        }
        None => Command::new(&exe),
    };
    let millis = |d: Duration| format!("{}ms", d.as_millis());
    command
        .arg("snmp-poller")
        .args(["--agents", &agents.to_string()])
        .args(["--duration", &millis(window.duration)])
        .args(["--warmup", &millis(window.warmup)])
        .args(["--sockets", &window.sockets.to_string()])
        .args(["--port", &window.port.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let limit = window.warmup + window.duration + Duration::from_secs(30);
    let output = tokio::time::timeout(limit, command.output())
        .await
        .with_context(|| format!("the poller did not finish within {limit:?}"))?
        .context("running the poller")?;
    drop(simulators);
    if !output.status.success() {
        bail!(
            "the poller failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .last()
        .context("the poller printed nothing")?;
    serde_json::from_str(line).with_context(|| format!("reading the poller's result `{line}`"))
}

/// The `bench all` table of one run.
fn table(run: &SnmpRun, pin: &Pinning) -> Table {
    let figure = |label: &str, key: &str, decimals: usize, value: f64| {
        let mut row = Row::figure(label, key, None, decimals);
        row.set("ballast", value);
        row
    };
    let placement = if pin.enabled {
        format!(
            "the agents run on CPU {} and the poller alone on CPU {}",
            pin.generator_cpu, pin.proxy_cpu
        )
    } else {
        "nothing is pinned".to_string()
    };
    Table {
        scenario: "snmp".into(),
        title: TITLE.into(),
        rows: vec![
            figure(
                &format!("OK polls/s ({} agents, every 1 s)", run.agents),
                "polls_per_s",
                0,
                run.polls_per_s,
            ),
            figure(
                "poller CPU per poll, µs",
                "cpu_per_poll_us",
                2,
                run.cpu_us_per_poll,
            ),
            figure(
                "poller CPU, % of one core",
                "cpu_core_pct",
                1,
                run.cpu_cores * 100.0,
            ),
            figure("timeouts", "timeouts", 0, run.timeouts as f64),
            figure(
                "agents that missed an interval",
                "agents_missed",
                0,
                run.agents_missed as f64,
            ),
            figure(
                "intervals the poller fell behind on",
                "intervals_skipped",
                0,
                run.intervals_skipped as f64,
            ),
            figure("poller RSS, MB", "rss_mb", 1, run.rss_bytes as f64 / 1e6),
            figure("poll latency p99, µs", "p99_us", 0, run.p99_us),
        ],
        notes: vec![format!(
            "Ballast only: HAProxy and nginx have no SNMP monitor, and polling with net-snmp's `snmpget` \
             (a process per request) would measure process start-up, not a poller. The agents are simulated on \
             this machine, so latency is loopback plus the agents' own scheduling; {placement}. Other failed \
             polls in the window: {}.",
            run.other_failures
        )],
    }
}

/// Starts `bench snmp-agents` for agents `first..first + count` and waits until they listen.
async fn start_agents(exe: &Path, first: usize, count: usize, port: u16) -> Result<Child> {
    let mut child = Command::new(exe)
        .arg("snmp-agents")
        .args(["--first", &first.to_string()])
        .args(["--count", &count.to_string()])
        .args(["--port", &port.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("starting the simulated agents")?;
    let stdout = child.stdout.take().context("the agents' stdout")?;
    let mut line = String::new();
    tokio::time::timeout(
        Duration::from_secs(60),
        BufReader::new(stdout).read_line(&mut line),
    )
    .await
    .context("the simulated agents did not start within 60 s")??;
    if line.trim() != "ready" {
        bail!(
            "the simulated agents {first}..{} did not start (see above)",
            first + count
        );
    }
    Ok(child)
}

/// Agent `i`'s address: 127.1.0.1, 127.1.0.2, ... (254 hosts per /24, no .0 or .255).
fn agent_addr(i: usize, port: u16) -> SocketAddr {
    let ip = Ipv4Addr::new(
        127,
        1 + (i / 65_024) as u8,
        ((i % 65_024) / 254) as u8,
        (i % 254 + 1) as u8,
    );
    SocketAddr::new(IpAddr::V4(ip), port)
}

/// `bench snmp-agents`: answers as agents `first..first + count` until stdin closes.
pub fn serve_agents(first: usize, count: usize, port: u16) -> Result<()> {
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
            let addr = agent_addr(i, port);
            let socket = UdpSocket::bind(addr)
                .await
                .with_context(|| format!("binding {addr}"))?;
            tokio::spawn(async move {
                let mut buf = [0u8; 1500];
                let started = Instant::now();
                while let Ok((len, from)) = socket.recv_from(&mut buf).await {
                    let reply = agent::respond(
                        &buf[..len],
                        COMMUNITY.as_bytes(),
                        &|| values,
                        started.elapsed(),
                    );
                    if let Some(reply) = reply {
                        let _ = socket.send_to(&reply, from).await;
                    }
                }
            });
        }
        println!("ready");
        // The parent closes stdin (or dies): stop.
        let mut stdin = tokio::io::stdin();
        let mut sink = [0u8; 64];
        while stdin.read(&mut sink).await.is_ok_and(|n| n > 0) {}
        Ok(())
    })
}

/// `bench snmp-poller`: polls `agents` agents over `window` and prints one JSON [`SnmpRun`].
pub fn poll(agents: usize, window: &Window) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let run = runtime.block_on(poll_all(agents, window))?;
    println!("{}", serde_json::to_string(&run)?);
    Ok(())
}

/// The 4 OIDs a Linux LOAD monitor asks for, every second.
fn monitor() -> Result<Arc<LoadMonitor>> {
    let metric = |name: &str, oid: &str, kind: MetricKind| -> Result<Metric> {
        Ok(Metric::new(name, oid.parse()?, kind))
    };
    let table = MetricTable::new(
        "bench",
        vec![
            metric("cpu_idle", linux::OID_CPU_IDLE, MetricKind::Integer)?,
            metric("mem_total", linux::OID_MEM_TOTAL, MetricKind::Integer)?,
            metric("mem_avail", linux::OID_MEM_AVAIL, MetricKind::Integer)?,
            metric("load", linux::OID_LOAD_1, MetricKind::String)?,
        ],
    );
    let security = Security::V2c {
        community: COMMUNITY.into(),
    };
    let mut spec = LoadMonitorSpec::new("bench", security, table);
    spec.interval = Duration::from_secs(1);
    spec.resptimeout = Duration::from_millis(500);
    spec.retries = 1;
    Ok(LoadMonitor::new(spec)?)
}

/// This process's CPU ticks so far.
fn own_ticks() -> Result<u64> {
    let times = procstat::pid_times(std::process::id())?;
    Ok(times.utime + times.stime)
}

async fn poll_all(agents: usize, window: &Window) -> Result<SnmpRun> {
    let monitor = monitor()?;
    let (tx, mut rx) = mpsc::channel(agents.max(1024) * 2);
    let config = PollerConfig {
        sockets: window.sockets,
        bind_v6: None,
        ..PollerConfig::default()
    };
    let poller = Poller::<u32>::spawn(config, tx)?;
    for i in 0..agents {
        let member = u32::try_from(i).context("too many agents")?;
        poller.watch(member, agent_addr(i, window.port), monitor.clone());
    }
    let window_start = Instant::now() + window.warmup;
    let window_end = window_start + window.duration;
    let mut ok_per_agent: HashMap<u32, u64> = HashMap::with_capacity(agents);
    let mut latency = Histogram::new();
    let (mut ok, mut timeouts, mut other) = (0u64, 0u64, 0u64);
    let mut at_start = None;
    loop {
        let now = Instant::now();
        if at_start.is_none() && now >= window_start {
            at_start = Some((own_ticks()?, poller.stats().snapshot().missed_intervals));
        }
        if now >= window_end {
            break;
        }
        // Wake at the window's start even when nothing arrives, to read the counters then.
        let wake = window_end.min(window_start.max(now + Duration::from_millis(100)));
        let Ok(Some(sample)) = tokio::time::timeout_at(wake, rx.recv()).await else {
            continue;
        };
        if sample.at < window_start {
            continue;
        }
        match sample.result {
            PollResult::Ok => {
                ok += 1;
                *ok_per_agent.entry(sample.member).or_default() += 1;
                if let Some(took) = sample.latency {
                    latency.record_duration(took);
                }
            }
            PollResult::Timeout => timeouts += 1,
            _ => other += 1,
        }
    }
    let ticks_end = own_ticks()?;
    let rss_bytes = procstat::vm_rss(std::process::id())?;
    let (ticks_start, missed_start) = at_start.context("the window never started")?;
    let seconds = window.duration.as_secs_f64();
    let cpu_s = (ticks_end - ticks_start) as f64 / procstat::clk_tck() as f64;
    let expected = window.duration.as_secs();
    let agents_missed = (0..agents)
        .filter(|&i| {
            let polls = ok_per_agent.get(&(i as u32)).copied().unwrap_or(0);
            polls + 1 < expected
        })
        .count();
    Ok(SnmpRun {
        agents,
        window_s: seconds,
        polls_ok: ok,
        polls_per_s: ok as f64 / seconds,
        timeouts,
        other_failures: other,
        agents_missed,
        intervals_skipped: poller.stats().snapshot().missed_intervals - missed_start,
        cpu_cores: cpu_s / seconds,
        cpu_us_per_poll: if ok > 0 { cpu_s * 1e6 / ok as f64 } else { 0.0 },
        rss_bytes,
        p50_us: latency.quantile_us(0.5),
        p99_us: latency.quantile_us(0.99),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_addresses_skip_network_and_broadcast_and_never_repeat() {
        assert_eq!(agent_addr(0, 161).to_string(), "127.1.0.1:161");
        assert_eq!(agent_addr(253, 161).to_string(), "127.1.0.254:161");
        assert_eq!(agent_addr(254, 161).to_string(), "127.1.1.1:161");
        assert_eq!(agent_addr(65_024, 161).to_string(), "127.2.0.1:161");
        let distinct: std::collections::HashSet<SocketAddr> =
            (0..20_000).map(|i| agent_addr(i, 161)).collect();
        assert_eq!(distinct.len(), 20_000);
    }
}
