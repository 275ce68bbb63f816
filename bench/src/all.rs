//! `bench all`: every scenario for direct, Ballast, HAProxy and nginx on this machine, in one
//! session, written to `BENCHMARKS.md` and `bench-results.json`.
//!
//! Scenarios: `http1` (closed-loop maximum, then open loop at 25% and 50% of the lowest proxy
//! maximum for latency added over direct and CPU per request), `idle` (RSS per idle keep-alive
//! connection), `l4` (bulk transfer Gbit/s and relay CPU-s/GiB). h2c, TLS, reconfiguration,
//! SNMP and autoscaling appear as "not yet measured" rows: no figure is written that this run
//! did not measure. A peer that is missing is skipped (its columns show `—`); the run fails
//! only when Ballast itself could not be measured.
//!
//! `--quick` (1 round, 1 s windows, 500 idle connections, 64 MiB transfers) is the smoke test
//! `scripts/test.sh` runs with debug binaries: the report then says, loudly, that its figures
//! mean nothing. A full run refuses a debug Ballast unless `--debug-build-ok` is given.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;
use tokio::time::Instant;

use crate::markdown::{self, Report, Row, Table};
use crate::report::{HttpRun, JsonOut, MemoryRun, TcpRun, median};
use crate::targets::{Lab, LabConfig, Layer, Pinning, Relay, TargetKind};
use crate::units::{parse_bytes, parse_duration};
use crate::{Common, Direction, HttpArgs, TcpArgs, http, machine, memory, procstat, tcp};

const ALL_TARGETS: [TargetKind; 4] = [
    TargetKind::Direct,
    TargetKind::Ballast,
    TargetKind::Haproxy,
    TargetKind::Nginx,
];
/// Open-loop rates, as fractions of the lowest proxy maximum.
const LOADS: [(u32, f64); 2] = [(25, 0.25), (50, 0.50)];

#[derive(Debug, Args)]
pub struct AllArgs {
    /// Smoke run of about a minute: 1 round, 1 s windows, 500 idle connections, 64 MiB
    /// transfers. Its figures are not meant to be compared.
    #[arg(long)]
    pub quick: bool,
    /// Where to write the Markdown report.
    #[arg(long, default_value = "BENCHMARKS.md")]
    pub md: PathBuf,
    /// Where to write every figure and ratio as flat JSON keys.
    #[arg(long, default_value = "bench-results.json")]
    pub json: PathBuf,
    /// Do not `apt-get install` a missing HAProxy/nginx (installing is tried only as root).
    #[arg(long)]
    pub no_install_peers: bool,
    /// Measure a debug build of Ballast in a full run anyway (the report says so).
    #[arg(long)]
    pub debug_build_ok: bool,
    /// Keep-alive connections of the HTTP load generator.
    #[arg(long, default_value_t = 50)]
    pub connections: usize,
    /// Measured window per HTTP run [default: 10s; quick: 1s].
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Unmeasured load before each HTTP window [default: 2s; quick: 300ms].
    #[arg(long, value_parser = parse_duration)]
    pub warmup: Option<Duration>,
    /// Idle keep-alive connections per target; 0 skips `idle` [default: 10000; quick: 500].
    #[arg(long)]
    pub idle_conns: Option<usize>,
    /// Bytes per L4 transfer [default: 1GiB; quick: 64MiB].
    #[arg(long, value_parser = parse_bytes)]
    pub l4_bytes: Option<u64>,
    /// Ballast's L4 relay.
    #[arg(long, value_enum, default_value_t = Relay::Splice)]
    pub relay: Relay,
}

/// The sizes of this run, after `--quick` and explicit options.
#[derive(Debug, Clone)]
struct Plan {
    mode: &'static str,
    duration: Duration,
    warmup: Duration,
    idle_conns: usize,
    l4_bytes: u64,
}

impl Plan {
    fn new(args: &AllArgs) -> Self {
        let quick = args.quick;
        Self {
            mode: if quick { "quick" } else { "full" },
            duration: args.duration.unwrap_or(if quick {
                Duration::from_secs(1)
            } else {
                Duration::from_secs(10)
            }),
            warmup: args.warmup.unwrap_or(if quick {
                Duration::from_millis(300)
            } else {
                Duration::from_secs(2)
            }),
            idle_conns: args.idle_conns.unwrap_or(if quick { 500 } else { 10_000 }),
            l4_bytes: args
                .l4_bytes
                .unwrap_or(if quick { 64 << 20 } else { 1 << 30 }),
        }
    }
}

/// Whether `path` is in a cargo `debug` profile directory (`target/debug/ballast`).
pub fn is_debug_build(path: &Path) -> bool {
    path.components().any(|c| c.as_os_str() == "debug")
}

/// `--quick` shortens rounds and waits; `bench all` installs peers unless told not to; a full
/// run refuses a debug Ballast unless `--debug-build-ok`.
pub fn adjust(common: &mut Common, args: &AllArgs) -> Result<()> {
    common.install_peers = !args.no_install_peers;
    if args.quick {
        common.rounds = 1;
        common.retries = 0;
        common.quiet_wait = Duration::ZERO;
    }
    let ballast = common.ballast_path()?;
    if !args.quick && !args.debug_build_ok && is_debug_build(&ballast) {
        bail!(
            "{} is a debug build: its figures would mean nothing. Build a release \
             (`cargo build --release -p ballast -p ballast-bench`), or pass --quick or --debug-build-ok",
            ballast.display()
        );
    }
    Ok(())
}

/// The idle connections a peer can hold under `fd_limit`: HAProxy wants two descriptors per
/// allowed connection (`maxconn`), so at most about half the limit, less the load connections
/// and spares; rounded down to a hundred.
fn idle_that_fits(requested: usize, connections: usize, fd_limit: u64) -> usize {
    let half = usize::try_from(fd_limit.saturating_sub(64) / 2).unwrap_or(usize::MAX);
    let fit = half.saturating_sub(connections + crate::targets::PEER_SPARE_CONNS);
    if requested <= fit {
        requested
    } else {
        fit / 100 * 100
    }
}

/// Median over the kept runs of `target`.
fn kept<T>(
    runs: &[T],
    target: &str,
    name: impl Fn(&T) -> (&str, bool),
    f: impl Fn(&T) -> f64,
) -> f64 {
    median(
        runs.iter()
            .filter(|r| name(r) == (target, true))
            .map(f)
            .collect(),
    )
}

fn http_kept(runs: &[HttpRun], target: &str, f: impl Fn(&HttpRun) -> f64) -> f64 {
    kept(runs, target, |r| (r.target.as_str(), r.kept), f)
}

fn tcp_kept(runs: &[TcpRun], target: &str, f: impl Fn(&TcpRun) -> f64) -> f64 {
    kept(runs, target, |r| (r.target.as_str(), r.kept), f)
}

/// What the scenarios share.
struct Session<'a> {
    common: &'a Common,
    pin: &'a Pinning,
    plan: Plan,
    connections: usize,
    kinds: Vec<TargetKind>,
    ballast: PathBuf,
    out: JsonOut,
    report: Report,
    /// `(skipped.<scenario>.<peer>, why)` for every peer skipped in some scenario.
    skipped: Vec<(String, String)>,
    /// Ballast figures that could not be measured: the run exits non-zero.
    failures: Vec<String>,
    /// Why `idle` uses fewer connections than asked, if it does.
    idle_note: Option<String>,
}

impl Session<'_> {
    fn lab_config(&self, max_conns: usize) -> LabConfig {
        self.common.lab_config(&self.ballast, max_conns)
    }

    /// Records a lab's skipped peers and versions in the table notes and the meta data.
    fn note_lab(&mut self, lab: &Lab, table: &mut Table) {
        for (name, why) in &lab.skipped {
            table.notes.push(format!("{name}: {why}, skipped."));
            self.skipped
                .push((format!("skipped.{}.{name}", table.scenario), why.clone()));
        }
        for (name, version) in &lab.versions {
            let key = format!("{name}_version");
            if !self.report.meta.iter().any(|(k, _)| *k == key) {
                self.report.meta.push((key, version.clone()));
            }
        }
    }
}

pub async fn run(args: &AllArgs, common: &Common, pin: &Pinning) -> Result<()> {
    let started = Instant::now();
    let plan = Plan::new(args);
    let ballast = common.ballast_path()?;
    let kinds = common.target_kinds(&ALL_TARGETS);
    if !kinds.contains(&TargetKind::Ballast) {
        bail!("`bench all` compares Ballast with its peers: keep `ballast` in --targets");
    }
    let me = std::env::current_exe().unwrap_or_default();
    let debug = is_debug_build(&ballast) || is_debug_build(&me);

    let mut report = Report::default();
    if debug {
        let warning = "DEBUG BUILD: Ballast and/or the bench are debug builds, so these figures \
                       mean nothing about performance (this run only checks that the bench works)";
        eprintln!("\nbench: !!! {warning} !!!\n");
        report.warnings.push(warning.to_string());
    }
    if args.quick {
        report.warnings.push(
            "Quick mode: 1 round of short windows, a smoke test; do not compare these figures"
                .to_string(),
        );
    }
    report.meta = vec![
        ("date".into(), machine::utc_now()),
        ("commit".into(), machine::git_commit()),
        ("mode".into(), plan.mode.into()),
        ("debug_build".into(), debug.to_string()),
        ("cpu".into(), machine::cpu_model()),
        ("cores".into(), machine::cores()),
        ("kernel".into(), machine::kernel()),
        ("setup".into(), common.describe(pin, &ballast)),
    ];

    // File descriptors for the idle test: ours (client side) and the proxies' (inherited).
    // A proxy may hold more than one descriptor per client connection: ask for three.
    let want = ((plan.idle_conns + args.connections) * 3 + 1024) as u64;
    let fd_limit = memory::raise_fd_limit(want);
    let mut plan = plan;
    let requested = plan.idle_conns;
    plan.idle_conns = idle_that_fits(requested, args.connections, fd_limit);
    let idle_note = (plan.idle_conns < requested).then(|| {
        format!(
            "{requested} idle connections were asked for; {} fit under the open-files limit of \
             {fd_limit} (HAProxy reserves two descriptors per connection and refuses to start otherwise).",
            plan.idle_conns
        )
    });

    report.method = method(&plan, common, pin, args);

    let mut session = Session {
        common,
        pin,
        plan: plan.clone(),
        connections: args.connections,
        kinds,
        ballast,
        out: JsonOut::open(common.out.as_deref())?,
        report,
        skipped: Vec::new(),
        failures: Vec::new(),
        idle_note,
    };
    let mut failures = Vec::new();

    let (http_table, idle_table) = match http_and_idle(&mut session, fd_limit).await {
        Ok(tables) => tables,
        Err(e) => {
            eprintln!("bench: http1/idle failed: {e:#}");
            failures.push(format!("http1/idle: {e:#}"));
            (
                failed_table("http1", "HTTP/1.1 keep-alive", &e),
                failed_table("idle", "Memory per idle keep-alive connection", &e),
            )
        }
    };
    let l4_table = match l4(&mut session, args.relay).await {
        Ok(table) => table,
        Err(e) => {
            eprintln!("bench: l4 failed: {e:#}");
            failures.push(format!("l4: {e:#}"));
            failed_table("l4", "L4 bulk transfer", &e)
        }
    };
    let mut report = session.report;
    report.tables = vec![http_table, idle_table, l4_table];
    report.tables.extend(not_yet_measured());
    report.meta.extend(session.skipped);
    failures.extend(session.failures);
    report.meta.push((
        "elapsed_s".into(),
        format!("{:.1}", started.elapsed().as_secs_f64()),
    ));

    let md = markdown::render_markdown(&report);
    std::fs::write(&args.md, &md).with_context(|| format!("writing {}", args.md.display()))?;
    let json = serde_json::to_string_pretty(&markdown::flat_json(&report))? + "\n";
    std::fs::write(&args.json, json).with_context(|| format!("writing {}", args.json.display()))?;
    println!("\n{md}");
    println!(
        "bench all ({}) took {:.1} s; wrote {} and {}",
        plan.mode,
        started.elapsed().as_secs_f64(),
        args.md.display(),
        args.json.display()
    );
    if debug {
        eprintln!("bench: !!! DEBUG BUILD: the figures above mean nothing !!!");
    }
    if !failures.is_empty() {
        bail!("Ballast could not be measured: {}", failures.join("; "));
    }
    Ok(())
}

fn method(plan: &Plan, common: &Common, pin: &Pinning, args: &AllArgs) -> Vec<String> {
    let placement = if pin.enabled {
        format!(
            "the load generator and the backend share CPU {}, and each proxy runs alone on CPU {}",
            pin.generator_cpu, pin.proxy_cpu
        )
    } else {
        "nothing is pinned".to_string()
    };
    vec![
        format!(
            "`bench all` starts everything on this machine: one backend (`bench backend`, hyper on one thread), and \
             each proxy with one worker/thread, keep-alive to the backend and logs off; {placement}."
        ),
        format!(
            "Targets take turns and the order rotates every round; each figure is the median of {} round(s) \
             (the least disturbed attempt of each).",
            common.rounds
        ),
        format!(
            "`http1`: {} keep-alive connections, {:?} windows after {:?} warm-up. Max req/s is a closed loop; latency \
             and CPU come from an open loop at 25% and 50% of the lowest proxy maximum, latency counted from each \
             request's intended send time, CPU from `/proc/<pid>/stat` over the window.",
            args.connections, plan.duration, plan.warmup
        ),
        format!(
            "`idle`: growth of the server's VmRSS per idle keep-alive connection ({} connections, one request \
             each, after the load rounds; for `direct` the backend). `l4`: {} MiB uploads; relay CPU-s per GiB.",
            plan.idle_conns,
            plan.l4_bytes >> 20
        ),
        "Ratios are Ballast ÷ peer: above 1 is better for req/s and Gbit/s; below 1 is better for CPU, latency \
         and memory."
            .to_string(),
    ]
}

fn failed_table(scenario: &str, title: &str, error: &anyhow::Error) -> Table {
    Table {
        scenario: scenario.to_string(),
        title: title.to_string(),
        rows: vec![Row::not_measured(
            "all figures",
            "all",
            &format!("this run failed: {error:#}"),
        )],
        notes: vec![],
    }
}

/// `http1` and, on the same processes afterwards, `idle`.
async fn http_and_idle(s: &mut Session<'_>, fd_limit: u64) -> Result<(Table, Table)> {
    let max_conns = s.connections + s.plan.idle_conns;
    let config = s.lab_config(max_conns);
    let mut lab = Lab::start(Layer::Http, &s.kinds, &config, s.pin).await?;
    let mut table = Table {
        scenario: "http1".into(),
        title: "HTTP/1.1 keep-alive".into(),
        rows: vec![],
        notes: vec![],
    };
    s.note_lab(&lab, &mut table);
    let backend_pid = lab.backend.pid();
    let mut memory: Vec<MemoryRun> = Vec::new();
    for target in &lab.targets {
        let (pid, process) = target
            .proxy_pid
            .map_or((backend_pid, "backend"), |pid| (pid, "proxy"));
        memory.push(MemoryRun::new(
            &target.name,
            process,
            procstat::vm_rss(pid)?,
            0,
        ));
    }

    let mut args = HttpArgs {
        connections: s.connections,
        duration: s.plan.duration,
        warmup: s.plan.warmup,
        rate: None,
        tick: Duration::from_micros(100),
        idle_conns: 0,
    };
    println!("\n== http1: closed loop, {} connections", args.connections);
    let closed = http::rounds(&mut lab, &args, s.common, &mut s.out).await?;
    let names: Vec<String> = lab.targets.iter().map(|t| t.name.clone()).collect();
    let mut max_rps = Row::figure("max req/s (closed loop)", "max_rps", Some("max_rps"), 0);
    for name in &names {
        max_rps.set(name, http_kept(&closed, name, |r| r.rps));
    }
    table.rows.push(max_rps);
    let lowest = lab
        .targets
        .iter()
        .filter(|t| t.proxy_pid.is_some())
        .map(|t| http_kept(&closed, &t.name, |r| r.rps))
        .filter(|v| v.is_finite() && *v > 0.0)
        .fold(f64::INFINITY, f64::min);
    if !lowest.is_finite() {
        bail!("no proxy completed a request in the closed loop");
    }
    errors_note(&closed, "closed loop", &mut table);

    for (pct, fraction) in LOADS {
        let rate = (lowest * fraction).round().max(1.0);
        args.rate = Some(rate);
        println!("\n== http1: open loop at {rate} req/s ({pct}% of the lowest proxy maximum)");
        let runs = http::rounds(&mut lab, &args, s.common, &mut s.out).await?;
        errors_note(&runs, &format!("open loop at {pct}%"), &mut table);
        let at = format!("at {pct}% ({rate:.0} req/s)");
        if pct == 50 {
            let mut cpu = Row::figure(
                &format!("proxy CPU per request {at}, µs"),
                "cpu_per_request_us",
                Some("cpu_per_request"),
                2,
            );
            for name in &names {
                cpu.set(
                    name,
                    http_kept(&runs, name, |r| {
                        r.proxy_cpu.map_or(f64::NAN, |c| c.total_us)
                    }),
                );
            }
            table.rows.push(cpu);
        }
        for (q, pick) in [("p50", 0usize), ("p99", 1)] {
            let latency = |r: &HttpRun| [r.latency_us.p50, r.latency_us.p99][pick];
            let mut abs = Row::figure(
                &format!("{q} latency {at}, µs"),
                &format!("{q}_us_at_{pct}pct"),
                Some(&format!("{q}_at_{pct}pct")),
                0,
            );
            for name in &names {
                abs.set(name, http_kept(&runs, name, latency));
            }
            table.rows.push(abs);
            let label = format!("{q} added over direct {at}, µs");
            let key = format!("{q}_added_us_at_{pct}pct");
            let direct = http_kept(&runs, "direct", latency);
            if direct.is_finite() {
                let mut added =
                    Row::figure(&label, &key, Some(&format!("{q}_added_at_{pct}pct")), 0);
                for name in names.iter().filter(|n| *n != "direct") {
                    added.set(name, http_kept(&runs, name, latency) - direct);
                }
                table.rows.push(added);
            } else {
                table
                    .rows
                    .push(Row::not_measured(&label, &key, "direct was not measured"));
            }
        }
    }
    table
        .notes
        .push("The direct column has no proxy CPU; its latency is the baseline that \"added\" rows subtract.".into());
    lab.check_alive()?;

    let mut idle = Table {
        scenario: "idle".into(),
        title: "Memory per idle keep-alive connection".into(),
        rows: vec![],
        notes: vec![],
    };
    s.note_lab(&lab, &mut idle);
    let n = s.plan.idle_conns;
    idle.notes.extend(s.idle_note.clone());
    let label = format!("RSS per idle connection ({n} connections), bytes");
    if n == 0 {
        idle.rows.push(Row::not_measured(
            &label,
            "rss_per_conn_bytes",
            "--idle-conns 0",
        ));
    } else if fd_limit < n as u64 + 200 {
        idle.rows.push(Row::not_measured(
            &label,
            "rss_per_conn_bytes",
            &format!(
                "the open-files limit is {fd_limit} and could not be raised to {} (`ulimit -n`)",
                n + 200
            ),
        ));
    } else {
        println!("\n== idle: {n} idle keep-alive connections per target");
        let mut measured = Vec::new();
        for (i, record) in memory.iter_mut().enumerate() {
            let target = lab.targets[i].clone();
            let pid = target.proxy_pid.unwrap_or(backend_pid);
            record.rss_after_load_bytes = procstat::vm_rss(pid)?;
            if let Err(e) = http::idle(record, target.addr, n, pid).await {
                // One target failing (a proxy refusing connections) must not hide the others.
                let why = format!("{}: failed: {e:#}", target.name);
                println!("{why}");
                idle.notes.push(format!("{why}."));
                if target.name == "ballast" {
                    s.failures.push(format!("idle: {why}"));
                }
                continue;
            }
            println!(
                "{:<8} {:.0} bytes/conn (RSS {:.1} → {:.1} MB)",
                record.target,
                record.bytes_per_idle_conn,
                record.rss_before_idle_bytes as f64 / 1e6,
                record.rss_with_idle_bytes as f64 / 1e6
            );
            s.out.write(record)?;
            measured.push(record.clone());
        }
        let mut per_conn = Row::figure(&label, "rss_per_conn_bytes", Some("rss_per_conn_bytes"), 0);
        let mut start = Row::figure("RSS at start, MB", "rss_start_mb", Some("rss_start"), 1);
        let mut with = Row::figure(
            &format!("RSS with {n} idle connections, MB"),
            "rss_with_idle_mb",
            Some("rss_with_idle"),
            1,
        );
        for record in &memory {
            start.set(&record.target, record.rss_start_bytes as f64 / 1e6);
        }
        for record in &measured {
            per_conn.set(&record.target, record.bytes_per_idle_conn);
            with.set(&record.target, record.rss_with_idle_bytes as f64 / 1e6);
        }
        idle.rows.extend([per_conn, start, with]);
        idle.notes.push(
            "VmRSS only (kernel socket buffers excluded). The direct column is the backend process, for reference."
                .into(),
        );
    }
    lab.check_alive()?;
    Ok((table, idle))
}

fn errors_note(runs: &[HttpRun], what: &str, table: &mut Table) {
    for r in runs
        .iter()
        .filter(|r| r.kept && r.errors + r.unfinished > 0)
    {
        table.notes.push(format!(
            "{} had {} failed or unanswered requests in the {what} (first error: {}).",
            r.target,
            r.errors + r.unfinished,
            r.first_error.as_deref().unwrap_or("a non-2xx/3xx status")
        ));
    }
}

/// `l4`: bulk uploads through each target.
async fn l4(s: &mut Session<'_>, relay: Relay) -> Result<Table> {
    let config = s.lab_config(16);
    let mut lab = Lab::start(Layer::Tcp(relay), &s.kinds, &config, s.pin).await?;
    let mut table = Table {
        scenario: "l4".into(),
        title: "L4 bulk transfer".into(),
        rows: vec![],
        notes: vec![],
    };
    s.note_lab(&lab, &mut table);
    let args = TcpArgs {
        bytes: s.plan.l4_bytes,
        direction: Direction::Up,
        relay,
    };
    println!("\n== l4: {} MiB uploads", args.bytes >> 20);
    let runs = tcp::rounds(&mut lab, &args, s.common, &mut s.out).await?;
    lab.check_alive()?;
    let mut gbit = Row::figure("throughput, Gbit/s", "gbit_s", Some("gbit_s"), 2);
    let mut cpu = Row::figure(
        "relay CPU per GiB, CPU-s",
        "cpu_s_per_gib",
        Some("cpu_s_per_gib"),
        3,
    );
    for target in &lab.targets {
        gbit.set(&target.name, tcp_kept(&runs, &target.name, |r| r.gbit_s));
        cpu.set(
            &target.name,
            tcp_kept(&runs, &target.name, |r| {
                r.relay_cpu_s_per_gib.unwrap_or(f64::NAN)
            }),
        );
    }
    table.rows.extend([gbit, cpu]);
    let relay = match relay {
        Relay::Splice => "splice",
        Relay::Copy => "copy",
    };
    table.notes.push(format!(
        "Ballast relays with `l4relay = \"{relay}\"`; HAProxy in `mode tcp`, nginx with `stream`. On loopback the \
         endpoints on one CPU usually limit Gbit/s, so relay CPU per GiB is the figure to compare."
    ));
    Ok(table)
}

/// Scenarios the bench cannot measure yet, as explicit rows rather than silence.
fn not_yet_measured() -> Vec<Table> {
    let table = |scenario: &str, title: &str, rows: Vec<Row>| Table {
        scenario: scenario.into(),
        title: title.into(),
        rows,
        notes: vec![],
    };
    vec![
        table(
            "h2",
            "HTTP/2 (h2c)",
            vec![Row::not_measured(
                "max req/s (h2c)",
                "max_rps",
                "the load generator speaks HTTP/1.1 only",
            )],
        ),
        table(
            "tls",
            "TLS",
            vec![Row::not_measured(
                "full handshakes/s",
                "handshakes_per_s",
                "the bench has no TLS client or certificates yet",
            )],
        ),
        table(
            "ops",
            "Reconfiguration, SNMP, autoscaling",
            vec![
                Row::not_measured("reconfiguration under load", "reconfig", "no scenario yet"),
                Row::not_measured(
                    "SNMP polling",
                    "snmp",
                    "measured separately by `snmp-monitor`'s snmp-bench example",
                ),
                Row::not_measured("autoscaling reaction", "autoscale", "no scenario yet"),
            ],
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_count_fits_the_descriptor_limit() {
        assert_eq!(idle_that_fits(500, 50, 20_000), 500);
        assert_eq!(idle_that_fits(10_000, 50, 20_000), 9_800);
        assert_eq!(idle_that_fits(10_000, 50, 1_048_576), 10_000);
        assert_eq!(idle_that_fits(10_000, 50, 100), 0);
    }

    #[test]
    fn debug_builds_are_recognised() {
        assert!(is_debug_build(Path::new("target/debug/ballast")));
        assert!(!is_debug_build(Path::new(
            "/work/main/target/release/ballast"
        )));
    }
}
