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
        #[arg(long)]
        config: PathBuf,
        #[arg(long, value_enum, default_value_t = LogFormat::Text)]
        log_format: LogFormat,
    },
    /// Validate a config file, print every problem, exit 1 on any.
    Check {
        #[arg(long)]
        config: PathBuf,
    },
    /// Only the CloudStack-compatible local cloud (its VMs are `ballast vm` processes).
    Localcloud {
        #[arg(long)]
        config: PathBuf,
        #[arg(long, value_enum, default_value_t = LogFormat::Text)]
        log_format: LogFormat,
    },
    /// The HTTP workload a local-cloud VM runs (also a handy test backend).
    Vm(VmArgs),
}

/// `ballast vm`.
#[derive(Debug, Args)]
pub struct VmArgs {
    #[arg(long)]
    listen: SocketAddr,
    #[arg(long, default_value = "vm")]
    name: String,
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
            response_bytes: self.response_bytes,
            memory_mb: self.memory_mb,
            snmp_port: (self.snmp_port != 0).then_some(self.snmp_port),
            snmp_community: self.snmp_community,
            exit_with_stdin: self.exit_with_stdin,
            ..WorkloadOptions::new(self.listen, self.name)
        }
    }
}

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
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
