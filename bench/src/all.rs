//! `bench all`: every scenario for direct, Ballast, HAProxy and nginx on this machine, in one
//! session, written to `BENCHMARKS.md` and `bench-results.json`.
//!
//! Scenarios: `http1` (closed-loop maximum, then open loop at 25% and 50% of the lowest proxy
//! maximum for latency added over direct and CPU per request), `idle` (RSS per idle keep-alive
//! connection), `l4` (bulk transfer Gbit/s and relay CPU-s/GiB), `h2` (`h2load`, h2c and over
//! TLS: max req/s and CPU per request), `tls` (new connections at a fixed rate: CPU per
//! full and per resumed handshake, as handshakes/s per core), and for Ballast alone `snmp`
//! (10,000 simulated SNMP agents polled every second: polls/s, CPU per poll, missed intervals,
//! RSS, latency) and `autoscale` (`ballast demo`'s breach-to-serving times, less the config's
//! watch time and boot delay) and `reconfig` (changes to a 10,000-member servicegroup through
//! the admin API under load: each API round trip, the time until the data plane acts on it, and
//! every failed request). No figure is written that this run did not measure. A peer that is missing is skipped (its columns show `—`); the run fails
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
use crate::paired;
use crate::report::{HttpRun, JsonOut, MemoryRun, TcpRun, median};
use crate::targets::{Lab, LabConfig, Layer, Pinning, Relay, TargetKind};
use crate::tls::Sessions;
use crate::units::{parse_bytes, parse_duration};
use crate::{
    Common, Direction, HttpArgs, TcpArgs, h2load, handshakes, http, machine, memory, procstat, tcp,
};
use crate::{autoscale, snmp};

const ALL_TARGETS: [TargetKind; 4] = [
    TargetKind::Direct,
    TargetKind::Ballast,
    TargetKind::Haproxy,
    TargetKind::Nginx,
];
/// Open-loop rates, as fractions of the lowest proxy maximum.
const LOADS: [(u32, f64); 2] = [(25, 0.25), (50, 0.50)];
/// Every scenario, in the order they run (`--only` picks some).
const SCENARIOS: [&str; 7] = ["http1", "l4", "h2", "tls", "snmp", "autoscale", "reconfig"];
/// Concurrent streams per `h2load` connection.
const H2_STREAMS: usize = 10;
/// TLS connections a proxy must accept at once in `tls`.
const MAX_TLS_IN_FLIGHT: usize = 2_048;

#[derive(Debug, Args)]
pub struct AllArgs {
    /// Smoke run of a few minutes: 1 round, 1 s windows, 500 idle connections, 64 MiB
    /// transfers, small SNMP, autoscale and reconfiguration runs. Its figures are not meant to
    /// be compared.
    #[arg(long)]
    pub quick: bool,
    /// Run only these scenarios (`http1` includes `idle`) [default: all].
    #[arg(long, value_delimiter = ',', value_parser = clap::builder::PossibleValuesParser::new(SCENARIOS))]
    pub only: Vec<String>,
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
    /// Rounds of the open-loop HTTP runs at 25% and 50%, whose p99 moves a lot from run to run
    /// on a shared VM [default: 9; quick: 1].
    #[arg(long)]
    pub open_rounds: Option<usize>,
    /// Measured window per open-loop HTTP run [default: 5s; quick: 1s].
    #[arg(long, value_parser = parse_duration)]
    pub open_duration: Option<Duration>,
    /// Idle keep-alive connections per target; 0 skips `idle` [default: 10000; quick: 500].
    #[arg(long)]
    pub idle_conns: Option<usize>,
    /// Bytes per L4 transfer [default: 1GiB; quick: 64MiB].
    #[arg(long, value_parser = parse_bytes)]
    pub l4_bytes: Option<u64>,
    /// Ballast's L4 relay.
    #[arg(long, value_enum, default_value_t = Relay::Splice)]
    pub relay: Relay,
    /// New TLS connections per second in `tls` [default: 1000; quick: 200].
    #[arg(long)]
    pub tls_rate: Option<f64>,
}

impl AllArgs {
    /// Whether `scenario` is to be measured in this run.
    fn runs(&self, scenario: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|s| s == scenario)
    }
}

/// The sizes of this run, after `--quick` and explicit options.
#[derive(Debug, Clone)]
struct Plan {
    mode: &'static str,
    duration: Duration,
    warmup: Duration,
    /// Rounds and window of the open-loop HTTP runs (latency and CPU per request).
    open_rounds: usize,
    open_duration: Duration,
    idle_conns: usize,
    l4_bytes: u64,
    /// New TLS connections per second in `tls`.
    tls_rate: f64,
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
            open_rounds: args.open_rounds.unwrap_or(if quick { 1 } else { 9 }),
            open_duration: args.open_duration.unwrap_or(if quick {
                Duration::from_secs(1)
            } else {
                Duration::from_secs(5)
            }),
            idle_conns: args.idle_conns.unwrap_or(if quick { 500 } else { 10_000 }),
            l4_bytes: args
                .l4_bytes
                .unwrap_or(if quick { 64 << 20 } else { 1 << 30 }),
            tls_rate: args.tls_rate.unwrap_or(if quick { 200.0 } else { 1000.0 }),
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
    if args.open_rounds == Some(0) {
        bail!("--open-rounds: need at least one round");
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
            let key = format!("skipped.{}.{name}", table.scenario);
            // A scenario with two labs (h2c, then h2 over TLS) says it once.
            if self.skipped.iter().any(|(k, _)| *k == key) {
                continue;
            }
            table.notes.push(format!("{name}: {why}, skipped."));
            self.skipped.push((key, why.clone()));
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

    let mut tables = Vec::new();
    if args.runs("http1") {
        match http_and_idle(&mut session, fd_limit).await {
            Ok((http, idle)) => tables.extend([http, idle]),
            Err(e) => {
                eprintln!("bench: http1/idle failed: {e:#}");
                failures.push(format!("http1/idle: {e:#}"));
                tables.extend([
                    failed_table("http1", "HTTP/1.1 keep-alive", &e),
                    failed_table("idle", "Memory per idle keep-alive connection", &e),
                ]);
            }
        }
    }
    if args.runs("l4") {
        let measured = l4(&mut session, args.relay).await;
        tables.push(outcome(measured, "l4", "L4 bulk transfer", &mut failures));
    }
    if args.runs("h2") {
        let measured = h2(&mut session).await;
        tables.push(outcome(
            measured,
            "h2",
            "HTTP/2 (h2c and over TLS)",
            &mut failures,
        ));
    }
    if args.runs("tls") {
        let measured = tls(&mut session).await;
        tables.push(outcome(measured, "tls", "TLS handshakes", &mut failures));
    }
    if args.runs("snmp") {
        let measured = snmp::scenario(args.quick, session.pin, &mut session.out).await;
        tables.push(outcome(measured, "snmp", snmp::TITLE, &mut failures));
    }
    if args.runs("autoscale") {
        let measured = autoscale::scenario(args.quick, &session.ballast, session.pin).await;
        tables.push(outcome(
            measured,
            "autoscale",
            autoscale::TITLE,
            &mut failures,
        ));
    }
    if args.runs("reconfig") {
        // A request that failed while the group changed fails the run too.
        let measured = crate::reconfig::scenario(args.quick, &session.ballast, pin)
            .await
            .map(|measured| {
                let problems = measured.problems.iter();
                failures.extend(problems.map(|p| format!("reconfig: {p}")));
                measured.table
            });
        tables.push(outcome(
            measured,
            "reconfig",
            crate::reconfig::TITLE,
            &mut failures,
        ));
    }
    let mut report = session.report;
    report.tables = tables;
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
             and CPU come from an open loop at 25% and 50% of the lowest proxy maximum, in {} round(s) of {:?} windows \
             (a run's p99 moves a lot on a shared VM, so it takes more rounds to settle its median), latency counted \
             from each request's intended send time, CPU from `/proc/<pid>/stat` over the window.",
            args.connections, plan.duration, plan.warmup, plan.open_rounds, plan.open_duration
        ),
        format!(
            "`idle`: growth of the server's VmRSS per idle keep-alive connection ({} connections, one request \
             each, after the load rounds; for `direct` the backend). `l4`: {} MiB uploads; relay CPU-s per GiB.",
            plan.idle_conns,
            plan.l4_bytes >> 20
        ),
        format!(
            "`h2`: `h2load` (one thread, {} connections × {H2_STREAMS} streams, closed loop, same windows), with \
             HTTP/2 prior knowledge (h2c) and over TLS; the proxies speak HTTP/1.1 to the backend. `tls`: {:.0} new TLS 1.3 \
             connections/s, each with one request, first with full handshakes, then resuming sessions; the \
             proxy's CPU per connection gives handshakes/s per core.",
            args.connections, plan.tls_rate
        ),
        snmp::method(args.quick),
        autoscale::method(args.quick),
        crate::reconfig::method(args.quick),
        "Ratios are Ballast ÷ peer: above 1 is better for req/s, Gbit/s and handshakes/s; below 1 is better for \
         CPU, latency and memory."
            .to_string(),
    ]
}

/// A scenario's table, or, if it could not be measured, a table that says why (and the reason
/// among the run's failures).
fn outcome(
    measured: Result<Table>,
    scenario: &str,
    title: &str,
    failures: &mut Vec<String>,
) -> Table {
    measured.unwrap_or_else(|e| {
        eprintln!("bench: {scenario} failed: {e:#}");
        failures.push(format!("{scenario}: {e:#}"));
        failed_table(scenario, title, &e)
    })
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
    let closed = http::rounds(&mut lab, &args, s.common.rounds, s.common, &mut s.out).await?;
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

    args.duration = s.plan.open_duration;
    for (pct, fraction) in LOADS {
        let rate = (lowest * fraction).round().max(1.0);
        args.rate = Some(rate);
        println!(
            "\n== http1: open loop at {rate} req/s ({pct}% of the lowest proxy maximum), {} round(s)",
            s.plan.open_rounds
        );
        let rounds = s.plan.open_rounds;
        let runs = http::rounds(&mut lab, &args, rounds, s.common, &mut s.out).await?;
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
        let samples: Vec<paired::Sample<'_>> = runs
            .iter()
            .filter(|r| r.kept)
            .map(|r| (r.target.as_str(), r.round, r.latency_us.p99))
            .collect();
        let peers: Vec<&str> = names
            .iter()
            .map(String::as_str)
            .filter(|n| !matches!(*n, "direct" | "ballast"))
            .collect();
        if let Some(note) = paired::lower_in_rounds(&samples, "ballast", &peers, "µs") {
            table
                .notes
                .push(format!("p99 {at}, round by round: {note}."));
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

/// `h2`: `h2load` through each proxy, closed loop: cleartext with prior knowledge, then over
/// TLS.
async fn h2(s: &mut Session<'_>) -> Result<Table> {
    let mut table = Table {
        scenario: "h2".into(),
        title: "HTTP/2 (h2c and over TLS)".into(),
        rows: vec![],
        notes: vec![],
    };
    let h2load = match h2load::locate(s.common.install_peers) {
        Ok(path) => path,
        Err(why) => {
            table
                .rows
                .push(Row::not_measured("max req/s", "h2c_max_rps", &why));
            return Ok(table);
        }
    };
    for (layer, name) in [(Layer::H2c, "h2c"), (Layer::Tls, "h2")] {
        // Every stream is a request in flight, holding a connection to the backend: each
        // proxy's connection limit must allow them all, as Ballast's `maxconn` bounds requests
        // in flight.
        let config = s.lab_config(s.connections * (H2_STREAMS + 1));
        let mut lab = Lab::start(layer, &s.kinds, &config, s.pin).await?;
        s.note_lab(&lab, &mut table);
        let shape = (s.connections, H2_STREAMS, s.plan.warmup, s.plan.duration);
        println!(
            "\n== {name}: h2load, {} connections × {H2_STREAMS} streams, closed loop",
            s.connections
        );
        let runs = h2load::rounds(&mut lab, &h2load, shape, s.common, &mut s.out).await?;
        lab.check_alive()?;
        let kept = |target: &str, f: fn(&h2load::H2Run) -> f64| {
            kept(&runs, target, |r| (r.target.as_str(), r.kept), f)
        };
        let mut rps = Row::figure(
            &format!("{name}: max req/s (closed loop)"),
            &format!("{name}_max_rps"),
            Some(&format!("{name}_max_rps")),
            0,
        );
        let mut cpu = Row::figure(
            &format!("{name}: proxy CPU per request at that rate, µs"),
            &format!("{name}_cpu_per_request_us"),
            Some(&format!("{name}_cpu_per_request")),
            2,
        );
        let mut cores = Row::figure(
            &format!("{name}: proxy CPU used, cores"),
            &format!("{name}_proxy_cores"),
            None,
            2,
        );
        for target in &lab.targets {
            rps.set(&target.name, kept(&target.name, |r| r.rps));
            cpu.set(
                &target.name,
                kept(&target.name, |r| {
                    r.proxy_cpu.map_or(f64::NAN, |c| c.total_us)
                }),
            );
            cores.set(
                &target.name,
                kept(&target.name, |r| r.proxy_cpu.map_or(f64::NAN, |c| c.cores)),
            );
        }
        table.rows.extend([rps, cpu, cores]);
        for r in runs.iter().filter(|r| r.kept && r.failed > 0) {
            table.notes.push(format!(
                "{name}: {} had {} failed requests.",
                r.target, r.failed
            ));
        }
    }
    table.notes.push(format!(
        "`h2load -t 1 -c {} -m {H2_STREAMS}` on the generator's CPU, `http://` with prior knowledge (h2c), then \
         `https://` with ALPN `h2`; each proxy sends HTTP/1.1 to the backend. When a proxy uses less than a \
         core, the generator's CPU was the limit and CPU per request is the figure to compare.",
        s.connections
    ));
    Ok(table)
}

/// `tls`: new TLS 1.3 connections at a fixed rate, full handshakes and then resumed ones.
async fn tls(s: &mut Session<'_>) -> Result<Table> {
    let mut table = Table {
        scenario: "tls".into(),
        title: "TLS handshakes".into(),
        rows: vec![],
        notes: vec![],
    };
    let config = s.lab_config(MAX_TLS_IN_FLIGHT);
    let mut lab = Lab::start(Layer::Tls, &s.kinds, &config, s.pin).await?;
    s.note_lab(&lab, &mut table);
    let ca = lab
        .certs
        .as_ref()
        .context("the TLS lab has no certificate")?
        .ca
        .clone();
    let rate = s.plan.tls_rate;
    for sessions in [Sessions::Full, Sessions::Resumed] {
        let (word, key) = match sessions {
            Sessions::Full => ("full", "full"),
            Sessions::Resumed => ("resumed", "resumed"),
        };
        println!("\n== tls: {rate} new connections/s, {word} handshakes");
        let timing = (rate, s.plan.warmup, s.plan.duration);
        let runs =
            handshakes::rounds(&mut lab, &ca, sessions, timing, s.common, &mut s.out).await?;
        lab.check_alive()?;
        let kept = |name: &str, f: &dyn Fn(&handshakes::HandshakeRun) -> f64| {
            kept(&runs, name, |r| (r.target.as_str(), r.kept), f)
        };
        let mut per_core = Row::figure(
            &format!("{word} handshakes/s per proxy core"),
            &format!("{key}_handshakes_per_core"),
            Some(&format!("{key}_handshakes_per_core")),
            0,
        );
        let mut cpu = Row::figure(
            &format!("proxy CPU per {word} handshake (with its request), µs"),
            &format!("{key}_cpu_per_handshake_us"),
            Some(&format!("{key}_cpu_per_handshake")),
            1,
        );
        let mut p99 = Row::figure(
            &format!("p99 connect to response, {word}, µs"),
            &format!("{key}_p99_us"),
            Some(&format!("{key}_p99")),
            0,
        );
        for target in &lab.targets {
            let name = target.name.as_str();
            per_core.set(name, kept(name, &|r| r.per_core()));
            cpu.set(
                name,
                kept(name, &|r| r.proxy_cpu.map_or(f64::NAN, |c| c.total_us)),
            );
            p99.set(name, kept(name, &|r| r.latency_us.p99));
        }
        table.rows.extend([per_core, cpu, p99]);
        for r in runs.iter().filter(|r| r.kept) {
            if r.errors + r.unfinished > 0 {
                table.notes.push(format!(
                    "{} had {} failed {word} connections (first error: {}).",
                    r.target,
                    r.errors + r.unfinished,
                    r.first_error.as_deref().unwrap_or("none recorded")
                ));
            }
            if sessions == Sessions::Resumed && r.resumed < r.handshakes {
                table.notes.push(format!(
                    "{}: {} of {} handshakes in round {} resumed; the rest were full.",
                    r.target, r.resumed, r.handshakes, r.round
                ));
            }
        }
    }
    table.notes.push(format!(
        "Open loop at {rate:.0} new connections/s: each is a TCP connect, a TLS 1.3 handshake (X25519, an ECDSA \
         P-256 certificate that the client verifies) and one `GET` with `Connection: close`. Per core = 1 ÷ the \
         proxy's CPU per connection, measured at that rate (the generator shares a core with the backend and \
         cannot saturate a proxy). Resumed: the client offers the TLS 1.3 ticket of its previous connection."
    ));
    Ok(table)
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
