//! `ballast demo`: the whole system on one machine, under a load it drives itself, so a new
//! user sees a fleet grow and shrink in three minutes.
//!
//! It starts what `ballast run` starts (the local cloud, the proxy, the SNMP LOAD monitors, the
//! autoscale engine, the admin API and `/metrics`) from `configs/demo.toml` (built in), with an
//! admin password made for this run; prints where everything listens; sends its load
//! ([`load`]); shows a live status once a second ([`status`]); and at the end or on Ctrl-C
//! stops everything, checks that no VM process is left, prints a [`summary`] and draws the
//! run as a timeline ([`chart`]).
//!
//! - [`setup`]: the run's directory (config copy, admin password), free ports, the banner.
//! - [`load`]: the open-loop HTTP load and its rate schedule.
//! - [`status`]: the live terminal block, or one plain line a second.
//! - [`summary`]: requests, errors, scale-outs and -ins, breach-to-serving times.
//! - [`chart`]: `ballast-demo.svg`; [`png`]: the same as `ballast-demo.png`.

mod chart;
mod load;
mod png;
mod setup;
mod status;
mod summary;

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use autoscaler::EventRecord;
use clap::{Args, ValueEnum};
use tokio::signal::unix::{SignalKind, signal};
use tokio::time::Instant;

use self::load::{Load, Schedule, Second};
use self::status::{GroupInfo, StatusView};
use crate::app::App;

/// `ballast demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// `ramp`: the demo sends its own load, low → high → low. `none`: the load is yours
    /// (`curl`, `wrk`, a browser); runs until Ctrl-C.
    #[arg(long, value_enum, default_value_t = LoadKind::Ramp)]
    pub load: LoadKind,
    /// How long the ramp takes, such as "3m" or "90s".
    #[arg(long, default_value = "3m", value_parser = duration)]
    pub duration: Duration,
    /// A config to run instead of the built-in configs/demo.toml (it must keep
    /// `passwordfile = "admin.pass"` in `[admin]`, and one autoscale group).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Where ballast-demo.svg, .png and .log are written.
    #[arg(long, default_value = ".")]
    pub out: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LoadKind {
    Ramp,
    None,
}

/// One second of the run, as the status shows it and the chart draws it.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    /// Since the load started.
    pub t: Duration,
    /// The rate the ramp asks for now; `None` without a ramp.
    pub target_rate: Option<f64>,
    pub load: Second,
    pub errors_total: u64,
    /// The group's average of its first metric.
    pub average: Option<f64>,
    /// Members in service.
    pub current: u32,
    pub phase: &'static str,
    pub time_left: Option<Duration>,
    /// VMs by state name, as the engine counts them.
    pub states: BTreeMap<&'static str, u32>,
}

/// Runs the demo.
pub fn demo(args: DemoArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let files = summary::Files::new(&args.out);
    setup::log_to(&files.log)?;
    let run = setup::RunDir::create(args.config.as_deref())?;
    let config = run.load()?;
    setup::check_ports(&config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let group = setup::group_info(&config)?;
        let banner = setup::Banner::new(&config, &run, &files, &group);
        let app = App::start(config, &run.config_path())
            .await
            .context("cannot start the demo")?;
        banner.print();
        let result = drive(&app, &args, &banner, &group).await;
        let vm_pids = setup::vm_processes();
        println!("\nstopping: the load, the proxy, the local cloud and its VMs ...");
        app.shutdown(Duration::from_secs(5)).await;
        let left = setup::wait_for_exit(&vm_pids, Duration::from_secs(10)).await;
        let run_result = result?;
        let report = summary::Report::new(&run_result, vm_pids.len(), left.len());
        println!("{report}");
        chart::write(&files, &group, &run_result).context("cannot write the chart")?;
        println!("{files}");
        if !left.is_empty() {
            anyhow::bail!("VM processes still running: {left:?}");
        }
        Ok(())
    })
}

/// What a run recorded.
#[derive(Debug, Default)]
pub struct RunRecord {
    pub samples: Vec<Sample>,
    pub events: Vec<EventRecord>,
    /// When the load started (event times are drawn relative to it).
    pub started: Option<SystemTime>,
    pub totals: load::Totals,
    /// Each scale-out's time from the start of its breach to its new member UP.
    pub breach_to_serving: Vec<Duration>,
    pub interrupted: bool,
}

/// Waits for the first member, runs the load and the status until the end or a signal.
async fn drive(
    app: &App,
    args: &DemoArgs,
    banner: &setup::Banner,
    group: &GroupInfo,
) -> anyhow::Result<RunRecord> {
    let history = app.autoscale().history().clone();
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    println!("waiting for the first VM to boot and pass its health check ...");
    let first_member = async {
        while history
            .group(&group.name)
            .is_none_or(|g| g.status.current == 0)
        {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::select! {
        _ = tokio::time::timeout(Duration::from_secs(60), first_member) => {}
        _ = interrupt.recv() => return Ok(RunRecord { interrupted: true, ..RunRecord::default() }),
        _ = terminate.recv() => return Ok(RunRecord { interrupted: true, ..RunRecord::default() }),
    }
    let schedule = match args.load {
        LoadKind::Ramp => Schedule::ramp(args.duration),
        LoadKind::None => Schedule::None,
    };
    banner.print_load(&schedule);
    let started = SystemTime::now();
    let start = Instant::now();
    let load = Load::start(banner.vserver, schedule);
    let mut view = StatusView::new(std::io::stdout().is_terminal(), started);
    let mut record = RunRecord {
        started: Some(started),
        ..RunRecord::default()
    };
    // Only scale-outs of this load count (not the first member, which filled minmembers).
    let mut last_scale_out = history
        .group(&group.name)
        .and_then(|g| g.status.last_scale_out);
    let mut ticks =
        tokio::time::interval_at(start + Duration::from_secs(1), Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = interrupt.recv() => { record.interrupted = true; break }
            _ = terminate.recv() => { record.interrupted = true; break }
        }
        let t = start.elapsed();
        let status = history.group(&group.name).map(|g| g.status);
        let events = history.events(|e| e.group == group.name);
        let second = load.take_second();
        let sample = Sample {
            t,
            target_rate: (args.load == LoadKind::Ramp).then(|| schedule.rate(t)),
            load: second,
            errors_total: load.totals().errors,
            average: status
                .as_ref()
                .and_then(|s| s.averages.first().and_then(|(_, v)| *v)),
            current: status.as_ref().map_or(0, |s| s.current),
            phase: status.as_ref().map_or("starting", |s| s.phase.as_str()),
            time_left: status.as_ref().and_then(|s| s.time_left),
            states: status
                .as_ref()
                .map(|s| s.members.clone())
                .unwrap_or_default(),
        };
        if let Some(latest) = status.as_ref().and_then(|s| s.last_scale_out)
            && last_scale_out != Some(latest)
        {
            last_scale_out = Some(latest);
            record.breach_to_serving.push(latest);
        }
        view.show(&sample, group, &events);
        record.samples.push(sample);
        if schedule.duration().is_some_and(|d| t >= d) {
            break;
        }
    }
    record.totals = load.finish().await;
    record.events = history.events(|e| e.group == group.name);
    Ok(record)
}

/// A duration written as the config writes them (`"90s"`, `"3m"`).
fn duration(text: &str) -> Result<Duration, String> {
    ballast_proxy::config::duration::parse(text)
}
