//! The command line: subcommands and their flags, and the log format they share.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use ballast_proxy::workload::WorkloadOptions;
use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "ballast",
    version,
    about = "A load-balancing proxy that keeps its own fleet the right size"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the proxy with a config file.
    Run {
        /// The config file (TOML): vservers, servicegroups, monitors, autoscale groups and,
        /// optionally, `[admin]`, `[metrics]` and `[localcloud]`. SIGHUP re-reads it.
        #[arg(long)]
        config: PathBuf,
        /// How log lines are written to stderr.
        #[arg(long, value_enum, default_value_t = LogFormat::Text)]
        log_format: LogFormat,
    },
    /// Validate a config file (or a `ballast localcloud` file), print every problem, exit 1
    /// on any.
    Check {
        /// The file to validate: a Ballast config, or a stand-alone `ballast localcloud` file.
        #[arg(long)]
        config: PathBuf,
        /// Also call each autoscale profile's CloudStack: prove the keys, resolve the zone,
        /// template, offering and networks, list each group's VMs. Deploys nothing.
        #[arg(long)]
        online: bool,
    },
    /// Only the CloudStack-compatible local cloud (its VMs are `ballast vm` processes).
    Localcloud {
        /// The local cloud's file (TOML): `listen`, VM addresses, API users, zones, templates
        /// and offerings, as in configs/localcloud.toml.
        #[arg(long)]
        config: PathBuf,
        /// How log lines are written to stderr.
        #[arg(long, value_enum, default_value_t = LogFormat::Text)]
        log_format: LogFormat,
    },
    /// The HTTP workload a local-cloud VM runs (also a handy test backend).
    Vm(VmArgs),
    /// Replay a metric trace through an autoscale group's engine in virtual time; print one
    /// JSON event per line.
    Simulate(SimulateArgs),
    /// Everything on this machine under a load of its own: the local cloud, the proxy and the
    /// autoscale engine, a live status, a summary and a timeline chart.
    Demo(crate::demo::DemoArgs),
}

/// `ballast vm`.
#[derive(Debug, Args)]
pub struct VmArgs {
    /// Address and port the HTTP workload listens on, such as 127.77.0.5:8080.
    #[arg(long)]
    listen: SocketAddr,
    /// The VM's name, reported in the `x-ballast-vm` header, the response body and log lines.
    #[arg(long, default_value = "vm")]
    name: String,
    /// How log lines are written to stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// The local cloud's VM id, reported in the `x-ballast-vm-id` header.
    #[arg(long)]
    id: Option<String>,
    /// vCPUs: how many requests burn CPU at the same time.
    #[arg(long, default_value_t = 1)]
    vcpus: usize,
    /// CPU time each request burns, in microseconds.
    #[arg(long, default_value_t = 0)]
    request_cpu_us: u64,
    /// The share of one host core each vCPU gets (0 < share <= 1): a burn spins only this
    /// share of its time, and the SNMP agent reports CPU relative to it.
    #[arg(long, default_value_t = 1.0)]
    cpu_share: f64,
    /// Response body size in bytes.
    #[arg(long, default_value_t = 0)]
    response_bytes: usize,
    /// The VM's memory size in MB.
    #[arg(long)]
    memory_mb: Option<u32>,
    /// UDP port of the VM's SNMP agent on the listen address (0: no agent).
    #[arg(long, default_value_t = 161)]
    snmp_port: u16,
    /// The SNMP agent's v2c community.
    #[arg(long, default_value = "public")]
    snmp_community: String,
    /// Exit when stdin closes (the local cloud holds the other end).
    #[arg(long)]
    exit_with_stdin: bool,
}

impl VmArgs {
    /// What the workload does.
    pub fn options(self) -> WorkloadOptions {
        WorkloadOptions {
            id: self.id,
            vcpus: self.vcpus,
            request_cpu: Duration::from_micros(self.request_cpu_us),
            cpu_share: self.cpu_share,
            response_bytes: self.response_bytes,
            memory_mb: self.memory_mb,
            snmp_port: (self.snmp_port != 0).then_some(self.snmp_port),
            snmp_community: self.snmp_community,
            exit_with_stdin: self.exit_with_stdin,
            ..WorkloadOptions::new(self.listen, self.name)
        }
    }
}

/// `ballast simulate`.
#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// The config file (validated as `ballast run` validates it).
    #[arg(long)]
    pub config: PathBuf,
    /// The `[[autoscalegroup]]` to simulate, by name.
    #[arg(long)]
    pub group: String,
    /// The CSV trace: `t` (seconds), one column per metric, optionally `connections`.
    #[arg(long)]
    pub trace: PathBuf,
    /// Simulated time from a deploy call to its VM Running and bound (UP at the next sample),
    /// such as "60s" or "2m".
    #[arg(long, default_value = "60s", value_parser = duration)]
    pub provision_delay: Duration,
    /// Simulated time from a destroy call to the VM gone.
    #[arg(long, default_value = "10s", value_parser = duration)]
    pub deprovision_delay: Duration,
    /// Also draw the run as an SVG chart to this file.
    #[arg(long)]
    pub chart: Option<PathBuf>,
}

/// A duration written as the config writes them (`"500ms"`, `"10s"`, `"2m"`).
fn duration(text: &str) -> Result<Duration, String> {
    ballast_proxy::config::duration::parse(text)
}

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    /// One line of text per event.
    Text,
    /// One JSON object per event, its fields at the top level.
    Json,
}

impl LogFormat {
    /// Installs the global subscriber; `RUST_LOG` filters (default `info`).
    pub fn init(self) {
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
        let builder = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr);
        match self {
            LogFormat::Text => builder.init(),
            LogFormat::Json => builder.json().flatten_event(true).init(),
        }
    }
}
