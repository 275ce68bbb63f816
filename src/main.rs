//! `ballast`: the whole system on one screen.
//!
//! `run` loads the config ([`config::AppConfig`]: the data plane's config and `[localcloud]`)
//! and starts everything through [`App::start`]: an embedded local cloud (if `[localcloud]`),
//! the data plane (listeners → HTTP/TCP proxy → members), health and SNMP LOAD monitors, the
//! autoscale engine (one driver per `[[autoscalegroup]]`, [`autoscale`]), the admin API and
//! `/metrics` (if configured); then it waits for signals: SIGHUP re-reads the
//! file through the same validation, SIGUSR1 reopens the access log, SIGTERM/SIGINT drain and
//! exit. `check` validates a file (a
//! Ballast config or a stand-alone local cloud) and, `--online`, tries each autoscale profile
//! against its cloud.
//! `localcloud` runs only the local cloud; `vm` is the workload each of its VMs runs.
//! `simulate` replays a metric trace through an autoscale group's decision core. `demo` runs
//! it all under a load of its own, with a live status, a summary and a chart.
//!
//! Modules: [`cli`] (subcommands and flags), [`config`] (loading a file), [`check`] (the
//! `check` command), [`app`] (starting
//! and stopping the parts), [`autoscale`] (the engine joined to the proxy), [`simulate`] (the
//! `simulate` command), [`demo`] (the `demo` command).

mod app;
mod autoscale;
mod check;
mod cli;
mod config;
mod demo;
mod simulate;

use std::path::Path;
use std::process::ExitCode;

/// mimalloc: a request's short-lived buffers and futures are allocated and freed many times a
/// second, and it has no per-allocation header (`docs/performance.md`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use anyhow::Context;
use clap::Parser;
use tokio::signal::unix::{SignalKind, signal};

use crate::app::App;
use crate::cli::{Cli, Command};
use crate::config::AppConfig;

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Check { config, online } => return check::check(&config, online),
        Command::Run { config, log_format } => {
            log_format.init();
            run(&config)
        }
        Command::Localcloud { config, log_format } => {
            log_format.init();
            runtime(None)
                .and_then(|rt| Ok(rt.block_on(cloudstack::localcloud::run_from_file(&config))?))
        }
        Command::Vm(vm) => {
            vm.log_format.init();
            let workload = ballast_proxy::workload::run(vm.options());
            runtime(Some(1)).and_then(|rt| Ok(rt.block_on(workload)?))
        }
        Command::Simulate(args) => simulate::simulate(&args),
        Command::Demo(args) => demo::demo(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // Once, on stderr: not also as a log line.
            eprintln!("ballast: {}", fatal_message(&error));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes joined by `: `, each said once. Many errors print their cause in
/// their own message (`cannot listen on 127.0.0.1:80: Address already in use`) and also
/// expose it as their source; such a cause is not repeated.
fn fatal_message(error: &anyhow::Error) -> String {
    let mut message = String::new();
    for cause in error.chain() {
        let cause = cause.to_string();
        if message.contains(&cause) {
            continue;
        }
        if !message.is_empty() {
            message.push_str(": ");
        }
        message.push_str(&cause);
    }
    message
}

fn run(path: &Path) -> anyhow::Result<()> {
    let config =
        AppConfig::load(path).with_context(|| format!("cannot start with {}", path.display()))?;
    runtime(config.proxy.settings.workers)?.block_on(async {
        let shutdown_timeout = config.proxy.settings.shutdown_timeout;
        let vservers = config.proxy.vservers.len();
        // Signals are ours before `ready` is said: a SIGHUP sent on seeing it must reload,
        // not find the default action (which ends the process).
        let mut hangup = signal(SignalKind::hangup())?;
        let mut terminate = signal(SignalKind::terminate())?;
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut user1 = signal(SignalKind::user_defined1())?;
        let app = App::start(config, path).await?;
        tracing::info!(vservers, config = %path.display(), "ballast ready");

        loop {
            tokio::select! {
                _ = hangup.recv() => reload(&app, path).await,
                _ = user1.recv() => app.reopen_access_log(),
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

/// SIGHUP: the same validation as at start; a bad file changes nothing. (The local cloud keeps
/// running as it started.) The file and those it names are read on the blocking pool.
async fn reload(app: &App, path: &Path) {
    let owned = path.to_owned();
    let loaded = tokio::task::spawn_blocking(move || AppConfig::load(&owned)).await;
    let loaded = loaded.unwrap_or_else(|failed| {
        Err(ballast_proxy::config::ConfigError {
            problems: vec![ballast_proxy::config::Problem {
                path: String::new(),
                message: format!("reading the config failed: {failed}"),
            }],
        })
    });
    let config = match loaded {
        Ok(config) => config.proxy,
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
