//! `bench`: Ballast measured side by side with a direct connection to the same backend, on the
//! same machine, in the same session.
//!
//! # What it measures
//! * `bench http`: an HTTP/1.1 origin (`bench backend`, hyper on one thread, `200` with a
//!   19-byte body) is reached either `direct`ly or through `ballast` (one `HTTP` vserver,
//!   `ROUNDROBIN`, one member, `workers = 1`). For each target and round: requests/s, errors,
//!   latency percentiles, and the CPU per request of the proxy, the backend and the load
//!   generator, from `/proc/<pid>/stat` over the measured window only (warm-up excluded).
//!   Closed loop by default (N connections, each sends as soon as its last response is in: the
//!   maximum rate); `--rate` switches to an open loop at a fixed rate with latency counted from
//!   each request's intended send time, so stalls are not hidden (coordinated omission).
//!   Afterwards: the proxy's VmRSS at start and after load, and with `--idle-conns N` the bytes
//!   each idle keep-alive connection costs.
//! * `bench tcp`: bulk transfers (1 GiB by default) through a Ballast `TCP` vserver and directly
//!   to a sink/source (`bench tcp-backend`): Gbit/s and relay CPU seconds per GiB.
//! * `bench snmp`: N simulated SNMP agents polled every second by one poller thread (Ballast's
//!   SNMP LOAD monitor): polls/s, CPU per poll, missed intervals, RSS, latency.
//! * `bench autoscale`: `ballast demo` under its own ramp; each scale-out's breach-to-serving
//!   time, less the config's watch time and boot delay.
//! * `bench reconfig`: changes to a 10,000-member servicegroup through the admin API under
//!   load: the API round trip, the time until the data plane acts on each, failed requests.
//! * `bench all`: the scenarios above for direct, Ballast, HAProxy and nginx (`--targets`
//!   selects; `haproxy`/`nginx` work in `http` and `tcp` too), plus HTTP/2 through `h2load`
//!   (h2c and over TLS) and TLS handshakes (full and resumed), written to `BENCHMARKS.md` and
//!   `bench-results.json`; `--quick` for a smoke run of a few minutes, `--only` for some
//!   scenarios.
//!
//! # How to read it
//! * **Ratios, not absolutes.** `ballast / direct` (and later `/ haproxy`, `/ nginx`) measured
//!   minutes apart on one machine is the result; absolute req/s on a small shared VM mostly
//!   measures the VM. A proxy does about twice the socket work of the origin (two connections,
//!   two parses), so ~0.4–0.5× direct req/s is what good proxies reach here.
//! * **CPU per request** is the efficiency figure. In a closed loop the proxy's core is
//!   saturated (`proxy cores` ≈ 1.0), so req/s and µs/req say the same thing; at a fixed
//!   `--rate` below saturation, µs/req is the one to compare. It depends on load (batching,
//!   wake-ups), so compare only runs at the same rate.
//! * **Pinning.** With `taskset`, the generator and the backend share CPU 0 and the proxy has
//!   CPU 1 to itself, so the proxy's core is the bottleneck being measured and the direct run
//!   is bounded by CPU 0. The bench pins itself (`taskset -p`, before any thread exists) and
//!   renices to `--nice` (default -20) when allowed, so other tenants' work at nice 0 gets
//!   little CPU while ours runs. (`unsafe` is forbidden, hence the external tools.)
//! * **Alternation.** Targets take turns within each round, and the order rotates every round,
//!   so slow drift (thermal, other tenants, page cache) spreads over all targets instead of
//!   biasing whichever ran last. The table shows medians over rounds.
//! * **Foreign CPU** is the machine's busy time (`/proc/stat`) minus our processes, in cores.
//!   Each run waits (up to `--quiet-wait`) for a quiet machine; a run with more than
//!   `--max-foreign` cores is retried (`--retries`) and the least disturbed attempt is kept.
//!   Every attempt is in `--out` with its `foreign_cores`, so noisy data can be judged later.
//!
//! Files: `backend.rs` (origins), `loadgen.rs` + `h1.rs` (client), `handshakes.rs` + `tls.rs`
//! (TLS connections, the certificate), `h2load.rs` (HTTP/2 load), `histogram.rs`,
//! `procstat.rs` (`/proc`), `targets.rs` (processes, Ballast's config), `peers.rs` (HAProxy and
//! nginx), `http.rs` / `tcp.rs` / `memory.rs` / `reconfig/` (the benches), `all.rs` (`bench all`),
//! `machine.rs` (CPU, kernel, date, commit), `report.rs` (records and tables), `rounds.rs`
//! (targets taking turns, disturbed runs retried), `markdown.rs`
//! (BENCHMARKS.md and the flat JSON), `units.rs`, `snmp.rs` (SNMP polling at scale: the
//! simulated agents and the poller), `autoscale.rs` (`ballast demo`'s breach-to-serving times),
//! `nitro.rs` (an admin API client for `reconfig`).

mod all;
mod autoscale;
mod backend;
mod h1;
mod h2load;
mod handshakes;
mod histogram;
mod http;
mod loadgen;
mod machine;
mod markdown;
mod memory;
mod nitro;
mod paired;
mod peers;
mod procstat;
mod reconfig;
mod report;
mod rounds;
mod snmp;
mod targets;
mod tcp;
mod tls;
mod units;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};

use targets::{LabConfig, Pinning, Relay, TargetKind};
use units::{parse_bytes, parse_duration};

#[derive(Debug, Parser)]
#[command(
    name = "bench",
    about = "Measure Ballast against a direct connection (ratios, CPU per request, memory)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The HTTP origin: hyper on one thread, `200` with a 19-byte body.
    Backend {
        #[arg(long)]
        listen: SocketAddr,
        /// Listen on this many loopback addresses: --listen's, then the next ones (skipping
        /// `.0` and `.255`), all on its port.
        #[arg(long, default_value_t = 1)]
        listeners: usize,
    },
    /// The L4 sink/source for `bench tcp`.
    #[command(hide = true)]
    TcpBackend {
        #[arg(long)]
        listen: SocketAddr,
    },
    /// HTTP/1.1 keep-alive load: req/s, latency, CPU/request, memory per idle connection.
    Http {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        args: HttpArgs,
    },
    /// L4 bulk transfer: Gbit/s and relay CPU seconds per GiB.
    Tcp {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        args: TcpArgs,
    },
    /// SNMP LOAD polling at scale: polls/s, CPU per poll, missed intervals, RSS, latency.
    Snmp {
        /// Simulated agents; one run per count.
        #[arg(long, value_delimiter = ',', default_value = "1000,5000,10000")]
        agents: Vec<usize>,
        #[command(flatten)]
        window: snmp::Window,
    },
    /// Simulated SNMP agents for `bench snmp` (until stdin closes).
    #[command(hide = true)]
    SnmpAgents {
        #[arg(long)]
        first: usize,
        #[arg(long)]
        count: usize,
        #[arg(long)]
        port: u16,
    },
    /// The poller of `bench snmp`: one run, printed as a JSON line.
    #[command(hide = true)]
    SnmpPoller {
        #[arg(long)]
        agents: usize,
        #[command(flatten)]
        window: snmp::Window,
    },
    /// Autoscale reaction: `ballast demo`'s breach-to-serving times, less the config's delays.
    Autoscale {
        /// The `ballast` binary [default: `ballast` next to this binary]
        #[arg(long)]
        ballast: Option<PathBuf>,
        /// The demo's ramp.
        #[arg(long, default_value = "2m", value_parser = parse_duration)]
        duration: Duration,
    },
    /// Changes to a large servicegroup through the admin API under load (Ballast only).
    Reconfig {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        args: reconfig::ReconfigArgs,
    },
    /// Every scenario for Ballast, HAProxy, nginx and direct: writes BENCHMARKS.md and
    /// bench-results.json.
    All {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        args: all::AllArgs,
    },
}

/// Options of both `http` and `tcp`.
#[derive(Debug, Args)]
pub struct Common {
    /// The `ballast` binary [default: `ballast` next to this binary, i.e. target/release/ballast]
    #[arg(long)]
    pub ballast: Option<PathBuf>,
    /// Targets to measure, taking turns within each round [default: direct,ballast; for `all`:
    /// direct,ballast,haproxy,nginx]. A peer that is not installed is skipped.
    #[arg(long, value_enum, value_delimiter = ',')]
    pub targets: Vec<TargetKind>,
    /// Install a missing HAProxy/nginx with `apt-get install -y haproxy nginx-light` (as root).
    #[arg(long)]
    pub install_peers: bool,
    /// Rounds; the table shows the median over rounds.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Append one JSON object per run (every attempt) to this file.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Do not pin processes to CPUs.
    #[arg(long)]
    pub no_pin: bool,
    /// CPU of the load generator and the backend.
    #[arg(long, default_value_t = 0)]
    pub generator_cpu: usize,
    /// CPU of the proxy under test.
    #[arg(long, default_value_t = 1)]
    pub proxy_cpu: usize,
    /// Niceness for this process and its children (needs root for < 0).
    #[arg(long, default_value_t = -20, allow_negative_numbers = true)]
    pub nice: i32,
    /// Keep the default priority.
    #[arg(long)]
    pub no_nice: bool,
    /// A run with more foreign CPU than this (cores) is retried.
    #[arg(long, default_value_t = 0.05)]
    pub max_foreign: f64,
    /// Extra attempts for a disturbed run; the least disturbed is kept.
    #[arg(long, default_value_t = 2)]
    pub retries: usize,
    /// Before each run, wait at most this long for the machine to go quiet.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub quiet_wait: Duration,
}

impl Common {
    pub fn ballast_path(&self) -> Result<PathBuf> {
        if let Some(path) = &self.ballast {
            return Ok(path.clone());
        }
        let me = std::env::current_exe().context("finding the bench binary")?;
        Ok(me.with_file_name("ballast"))
    }

    /// The targets asked for, or `default`; duplicates dropped.
    pub fn target_kinds(&self, default: &[TargetKind]) -> Vec<TargetKind> {
        let asked = if self.targets.is_empty() {
            default
        } else {
            &self.targets
        };
        let mut kinds: Vec<TargetKind> = Vec::new();
        for kind in asked {
            if !kinds.contains(kind) {
                kinds.push(*kind);
            }
        }
        kinds
    }

    pub fn lab_config(&self, ballast: &Path, max_conns: usize) -> LabConfig {
        LabConfig {
            ballast: ballast.to_path_buf(),
            install_peers: self.install_peers,
            max_conns,
        }
    }

    fn pinning(&self) -> Pinning {
        Pinning {
            enabled: !self.no_pin,
            generator_cpu: self.generator_cpu,
            proxy_cpu: self.proxy_cpu,
            nice: (!self.no_nice).then_some(self.nice),
        }
    }

    /// One line on how the processes run, for the report.
    pub fn describe(&self, pin: &Pinning, ballast: &Path) -> String {
        let pinning = if pin.enabled {
            format!(
                "generator + backend on CPU {}, proxy on CPU {}",
                pin.generator_cpu, pin.proxy_cpu
            )
        } else {
            "not pinned".to_string()
        };
        let nice = pin
            .nice
            .map_or("default priority".to_string(), |n| format!("nice {n}"));
        format!(
            "{pinning}; {nice}; CLK_TCK {}; retry above {} foreign cores (up to {} times); ballast: {}",
            procstat::clk_tck(),
            self.max_foreign,
            self.retries,
            ballast.display()
        )
    }
}

#[derive(Debug, Args)]
pub struct HttpArgs {
    /// Keep-alive connections of the load generator.
    #[arg(long, default_value_t = 50)]
    pub connections: usize,
    /// Measured window per run.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Unmeasured load before each window.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub warmup: Duration,
    /// Open loop at this many requests/s (latency from the intended send time); closed loop if absent.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Open loop: how often the pacer releases due requests.
    #[arg(long, default_value = "100us", value_parser = parse_duration)]
    pub tick: Duration,
    /// After the rounds, open this many idle keep-alive connections per target and report bytes per connection.
    #[arg(long, default_value_t = 0)]
    pub idle_conns: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Direction {
    /// Client → relay → sink.
    Up,
    /// Source → relay → client.
    Down,
}

#[derive(Debug, Args)]
pub struct TcpArgs {
    /// Bytes per transfer (K/M/G are binary).
    #[arg(long, default_value = "1GiB", value_parser = parse_bytes)]
    pub bytes: u64,
    /// Which way the bytes flow.
    #[arg(long, value_enum, default_value_t = Direction::Up)]
    pub direction: Direction,
    /// Ballast's L4 relay (`[ballast] l4relay`).
    #[arg(long, value_enum, default_value_t = Relay::Splice)]
    pub relay: Relay,
}

/// Runs a bench on one thread (the load generator), stopping the servers on Ctrl-C.
fn drive<F: Future<Output = Result<()>>>(bench: F) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        tokio::select! {
            result = bench => result,
            _ = tokio::signal::ctrl_c() => bail!("interrupted"),
        }
    })
}

fn prepare(common: &Common) -> Result<Pinning> {
    if common.rounds == 0 {
        bail!("need at least one round");
    }
    let mut pin = common.pinning();
    for note in targets::pin_self(&mut pin) {
        eprintln!("bench: {note}");
    }
    Ok(pin)
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Backend { listen, listeners } => backend::serve_http(listen, listeners),
        Command::TcpBackend { listen } => backend::serve_tcp(listen),
        Command::Http { common, args } => {
            if args.connections == 0 || args.duration.is_zero() {
                bail!("need at least one connection and a non-zero --duration");
            }
            let pin = prepare(&common)?;
            drive(http::run(&args, &common, &pin))
        }
        Command::Tcp { common, args } => {
            let pin = prepare(&common)?;
            drive(tcp::run(&args, &common, &pin))
        }
        Command::Snmp { agents, window } => drive(snmp::run(&agents, &window)),
        Command::SnmpAgents { first, count, port } => snmp::serve_agents(first, count, port),
        Command::SnmpPoller { agents, window } => snmp::poll(agents, &window),
        Command::Autoscale { ballast, duration } => {
            let ballast = match ballast {
                Some(path) => path,
                None => std::env::current_exe()?.with_file_name("ballast"),
            };
            drive(autoscale::run(&ballast, duration))
        }
        Command::Reconfig { common, args } => {
            let pin = prepare(&common)?;
            drive(reconfig::run(&args, &common.ballast_path()?, &pin))
        }
        Command::All { mut common, args } => {
            all::adjust(&mut common, &args)?;
            let pin = prepare(&common)?;
            drive(all::run(&args, &common, &pin))
        }
    }
}
