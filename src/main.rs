//! `ballast`: the whole system on one screen.
//!
//! `run` loads the config and starts everything through [`App::start`]: the data plane
//! (listeners → HTTP/TCP proxy → members), health and SNMP LOAD monitors, the admin API and
//! `/metrics` (if configured) and an embedded local cloud (if `[localcloud]`); then it waits for
//! signals: SIGHUP re-reads the file through the same validation, SIGTERM/SIGINT drain and exit.
//! `check` validates a file. `localcloud` runs only the local cloud; `vm` is the workload each
//! of its VMs runs.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use ballast_proxy::app::App;
use ballast_proxy::config::Config;
use clap::{Parser, Subcommand, ValueEnum};
use tokio::signal::unix::{SignalKind, signal};

#[derive(Debug, Parser)]
#[command(
    name = "ballast",
    version,
    about = "A load-balancing proxy that keeps its own fleet the right size"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
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
    /// The HTTP workload a local-cloud VM runs (also a handy test backend).
    Vm {
        #[arg(long)]
        listen: SocketAddr,
        #[arg(long, default_value = "vm")]
        name: String,
        #[arg(long, value_enum, default_value_t = LogFormat::Text)]
        log_format: LogFormat,
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
    },
    /// Only the CloudStack-compatible local cloud (its VMs are `ballast vm` processes).
    Localcloud {
        #[arg(long)]
        config: PathBuf,
        #[arg(long, value_enum, default_value_t = LogFormat::Text)]
        log_format: LogFormat,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check { config } => return check(&config),
        Command::Run { config, log_format } => {
            init_logging(log_format);
            run(&config)
        }
        Command::Vm {
            listen,
            name,
            log_format,
            id,
            vcpus,
            request_cpu_us,
            response_bytes,
            memory_mb,
            snmp_port,
            snmp_community,
            exit_with_stdin,
        } => {
            init_logging(log_format);
            let options = ballast_proxy::workload::WorkloadOptions {
                id,
                vcpus,
                request_cpu: std::time::Duration::from_micros(request_cpu_us),
                response_bytes,
                memory_mb,
                snmp_port: (snmp_port != 0).then_some(snmp_port),
                snmp_community,
                exit_with_stdin,
                ..ballast_proxy::workload::WorkloadOptions::new(listen, name)
            };
            runtime(Some(1)).and_then(|rt| Ok(rt.block_on(ballast_proxy::workload::run(options))?))
        }
        Command::Localcloud { config, log_format } => {
            init_logging(log_format);
            runtime(None)
                .and_then(|rt| Ok(rt.block_on(cloudstack::localcloud::run_from_file(&config))?))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            eprintln!("ballast: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn check(path: &Path) -> ExitCode {
    match Config::load(path) {
        Ok(config) => {
            println!(
                "{}: OK ({} lbvserver, {} servicegroup, {} lbmonitor, {} sslcertkey)",
                path.display(),
                config.vservers.len(),
                config.service_groups.len(),
                config.monitors.len(),
                config.cert_keys.len()
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("{}: {error}", path.display());
            ExitCode::FAILURE
        }
    }
}

fn run(path: &Path) -> anyhow::Result<()> {
    let config =
        Config::load(path).with_context(|| format!("cannot start with {}", path.display()))?;
    runtime(config.settings.workers)?.block_on(async {
        let shutdown_timeout = config.settings.shutdown_timeout;
        let vservers = config.vservers.len();
        let app = App::start(config, path).await?;
        tracing::info!(vservers, config = %path.display(), "ballast ready");

        let mut hangup = signal(SignalKind::hangup())?;
        let mut terminate = signal(SignalKind::terminate())?;
        let mut interrupt = signal(SignalKind::interrupt())?;
        loop {
            tokio::select! {
                _ = hangup.recv() => reload(&app, path).await,
                _ = terminate.recv() => break,
                _ = interrupt.recv() => break,
            }
        }

        tracing::info!(in_flight = app.in_flight(), "shutting down");
        if !app.shutdown(shutdown_timeout).await {
            tracing::warn!(timeout = ?shutdown_timeout, "in-flight work did not finish in time");
        }
        tracing::info!("stopped");
        Ok(())
    })
}

/// SIGHUP: the same validation as at start; a bad file changes nothing.
async fn reload(app: &App, path: &Path) {
    let config = match Config::load(path) {
        Ok(config) => config,
        Err(error) => {
            let problems: Vec<String> = error.problems.iter().map(ToString::to_string).collect();
            tracing::error!(problems = problems.join("\n"), "config rejected");
            app.writer().record_rejected();
            return;
        }
    };
    let (vservers, servicegroups) = (config.vservers.len(), config.service_groups.len());
    match app.apply(config).await {
        Ok(()) => tracing::info!(vservers, servicegroups, "config reloaded"),
        Err(error) => tracing::error!(problems = %error, "config rejected"),
    }
}

/// One worker: a current-thread runtime (no cross-thread scheduling; measured a few percent
/// cheaper per request). More: a multi-thread runtime with that many workers.
fn runtime(workers: Option<usize>) -> anyhow::Result<tokio::runtime::Runtime> {
    let mut builder = match workers {
        Some(1) => tokio::runtime::Builder::new_current_thread(),
        Some(workers) => {
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            builder.worker_threads(workers);
            builder
        }
        None => tokio::runtime::Builder::new_multi_thread(),
    };
    Ok(builder.enable_all().build()?)
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}
