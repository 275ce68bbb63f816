//! `bench http`: rounds of alternating targets under the same load, then memory.

use anyhow::Result;

use crate::loadgen::{self, LoadSpec};
use crate::memory;
use crate::procstat;
use crate::report::{self, HttpRun, JsonOut, MemoryRun, RunId};
use crate::rounds::{self, Turn};
use crate::targets::{Lab, Layer, Pinning, TargetKind};
use crate::{Common, HttpArgs};

pub async fn run(args: &HttpArgs, common: &Common, pin: &Pinning) -> Result<()> {
    if args.idle_conns > 0 {
        memory::check_fd_limit(args.idle_conns)?;
    }
    let mut out = JsonOut::open(common.out.as_deref())?;
    let ballast = common.ballast_path()?;
    let config = common.lab_config(&ballast, args.connections + args.idle_conns);
    let targets = common.target_kinds(&[TargetKind::Direct, TargetKind::Ballast]);
    let mut lab = Lab::start(Layer::Http, &targets, &config, pin).await?;
    let names: Vec<String> = lab.targets.iter().map(|t| t.name.clone()).collect();

    let mode = match args.rate {
        Some(rate) => format!("open loop at {rate} req/s (pacer tick {:?})", args.tick),
        None => "closed loop".to_string(),
    };
    println!(
        "bench http: {mode}, {} connections, {:?} warm-up + {:?} measured, {} rounds of [{}]",
        args.connections,
        args.warmup,
        args.duration,
        common.rounds,
        names.join(", ")
    );
    println!("{}", common.describe(pin, &ballast));
    for (name, version) in &lab.versions {
        println!("{name}: {version}");
    }
    out.write(&serde_json::json!({
        "bench": "http-config",
        "mode": if args.rate.is_some() { "open" } else { "closed" },
        "rate": args.rate,
        "tick_us": args.tick.as_micros() as u64,
        "connections": args.connections,
        "warmup_s": args.warmup.as_secs_f64(),
        "duration_s": args.duration.as_secs_f64(),
        "rounds": common.rounds,
        "targets": names,
        "skipped": lab.skipped,
        "versions": lab.versions,
        "ballast": ballast.display().to_string(),
        "pinned": pin.enabled,
        "generator_cpu": pin.generator_cpu,
        "proxy_cpu": pin.proxy_cpu,
        "nice": pin.nice,
        "clk_tck": procstat::clk_tck(),
    }))?;

    // Which process's memory each target shows: the proxy's, or the backend's for `direct`.
    let backend_pid = lab.backend.pid();
    let mut memory: Vec<(u32, MemoryRun)> = Vec::new();
    for target in &lab.targets {
        let (pid, process) = match target.proxy_pid {
            Some(pid) => (pid, "proxy"),
            None => (backend_pid, "backend"),
        };
        let rss = procstat::vm_rss(pid)?;
        memory.push((pid, MemoryRun::new(&target.name, process, rss, 0)));
    }

    let runs = rounds(&mut lab, args, common.rounds, common, &mut out).await?;
    lab.check_alive()?;

    for (i, (pid, record)) in memory.iter_mut().enumerate() {
        record.rss_after_load_bytes = procstat::vm_rss(*pid)?;
        if args.idle_conns > 0 {
            idle(record, lab.targets[i].addr, args.idle_conns, *pid).await?;
        }
        out.write(record)?;
    }

    println!("\nmedians of the kept runs (latency in µs, CPU in µs per request):");
    print!("{}", report::http_summary(&names, &runs));
    let memory: Vec<MemoryRun> = memory.into_iter().map(|(_, m)| m).collect();
    println!("\nmemory (VmRSS):");
    print!("{}", report::memory_summary(&memory));
    Ok(())
}

/// Fills `record` with the memory of `conns` idle keep-alive connections to `addr` (server `pid`).
pub async fn idle(
    record: &mut MemoryRun,
    addr: std::net::SocketAddr,
    conns: usize,
    pid: u32,
) -> Result<()> {
    let idle = memory::idle_connections(addr, conns, pid).await?;
    record.idle_conns = conns;
    record.rss_before_idle_bytes = idle.before;
    record.rss_with_idle_bytes = idle.with_idle;
    record.bytes_per_idle_conn = idle.bytes_per_conn(conns);
    record.rss_after_close_bytes = idle.after_close;
    Ok(())
}

/// `rounds` rounds over the lab's targets (order rotating per round) under the load of `args`,
/// retrying disturbed runs; every attempt is written to `out` and returned, the kept ones
/// marked.
pub async fn rounds(
    lab: &mut Lab,
    args: &HttpArgs,
    rounds: usize,
    common: &Common,
    out: &mut JsonOut,
) -> Result<Vec<HttpRun>> {
    let backend_pid = lab.backend.pid();
    let targets = lab.targets.clone();
    rounds::alternate_for(lab, &targets, rounds, common, out, async |turn: Turn| {
        let spec = LoadSpec {
            addr: turn.target.addr,
            connections: args.connections,
            warmup: args.warmup,
            duration: args.duration,
            rate: args.rate,
            tick: args.tick,
            sample_pids: turn.pids,
        };
        let result = loadgen::run(&spec).await?;
        let id = RunId {
            target: &turn.target.name,
            round: turn.round,
            attempt: turn.attempt,
        };
        Ok(HttpRun::new(
            id,
            &result,
            args.connections,
            args.rate,
            turn.target.proxy_pid,
            backend_pid,
        ))
    })
    .await
}
