//! `bench tcp`: one bulk transfer per run through each target (the backend directly, or a
//! Ballast `TCP` vserver), alternating, with the relay's CPU per GiB.

use std::net::SocketAddr;

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::backend::{DOWNLOAD, TCP_CHUNK, UPLOAD};
use crate::procstat::{self, CpuWindow};
use crate::report::{self, JsonOut, TcpRun};
use crate::rounds::{self, Turn};
use crate::targets::{Lab, Layer, Pinning, TargetKind};
use crate::{Common, Direction, TcpArgs};

const GIB: f64 = (1u64 << 30) as f64;
/// One unmeasured transfer per target first, so every measured one finds the same warm state.
const WARMUP_BYTES: u64 = 64 << 20;

/// Moves `bytes` over one fresh connection to `addr`; returns when the last byte is confirmed.
pub async fn transfer(addr: SocketAddr, bytes: u64, direction: Direction) -> Result<()> {
    let mut stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    let mut header = [0u8; 9];
    header[0] = match direction {
        Direction::Up => UPLOAD,
        Direction::Down => DOWNLOAD,
    };
    header[1..].copy_from_slice(&bytes.to_be_bytes());
    stream.write_all(&header).await?;
    let mut buf = vec![0u8; TCP_CHUNK];
    let mut remaining = bytes;
    match direction {
        Direction::Up => {
            while remaining > 0 {
                let n = buf
                    .len()
                    .min(usize::try_from(remaining).unwrap_or(usize::MAX));
                stream.write_all(&buf[..n]).await?;
                remaining -= n as u64;
            }
            let mut ack = [0u8; 1];
            stream
                .read_exact(&mut ack)
                .await
                .context("waiting for the sink's acknowledgement")?;
        }
        Direction::Down => {
            while remaining > 0 {
                let n = stream.read(&mut buf).await?;
                if n == 0 {
                    bail!("connection closed with {remaining} bytes to go");
                }
                remaining = remaining.saturating_sub(n as u64);
            }
        }
    }
    Ok(())
}

pub async fn run(args: &TcpArgs, common: &Common, pin: &Pinning) -> Result<()> {
    let mut out = JsonOut::open(common.out.as_deref())?;
    let ballast = common.ballast_path()?;
    let config = common.lab_config(&ballast, 16);
    let targets = common.target_kinds(&[TargetKind::Direct, TargetKind::Ballast]);
    let mut lab = Lab::start(Layer::Tcp(args.relay), &targets, &config, pin).await?;
    let names: Vec<String> = lab.targets.iter().map(|t| t.name.clone()).collect();
    let direction = match args.direction {
        Direction::Up => "up",
        Direction::Down => "down",
    };
    println!(
        "bench tcp: {:.2} GiB {direction} per run ({} KiB writes), {} rounds of [{}]",
        args.bytes as f64 / GIB,
        TCP_CHUNK / 1024,
        common.rounds,
        names.join(", ")
    );
    println!("{}", common.describe(pin, &ballast));
    for (name, version) in &lab.versions {
        println!("{name}: {version}");
    }
    out.write(&serde_json::json!({
        "bench": "tcp-config",
        "bytes": args.bytes,
        "direction": direction,
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

    let runs = rounds(&mut lab, args, common, &mut out).await?;
    lab.check_alive()?;
    println!("\nmedians of the kept runs:");
    print!("{}", report::tcp_summary(&names, &runs));
    Ok(())
}

/// One warm-up transfer per target, then `common.rounds` rounds of one transfer per target (order
/// rotating), retrying disturbed runs; every attempt is written to `out` and returned.
pub async fn rounds(
    lab: &mut Lab,
    args: &TcpArgs,
    common: &Common,
    out: &mut JsonOut,
) -> Result<Vec<TcpRun>> {
    let direction = match args.direction {
        Direction::Up => "up",
        Direction::Down => "down",
    };
    for target in &lab.targets {
        transfer(target.addr, WARMUP_BYTES, args.direction)
            .await
            .with_context(|| format!("warm-up transfer to {}", target.name))?;
    }

    let backend_pid = lab.backend.pid();
    let targets = lab.targets.clone();
    rounds::alternate(lab, &targets, common, out, async |turn: Turn| {
        let target = &turn.target;
        let first = procstat::snapshot(&turn.pids)?;
        let started = Instant::now();
        transfer(target.addr, args.bytes, args.direction)
            .await
            .with_context(|| format!("transfer to {}", target.name))?;
        let seconds = started.elapsed().as_secs_f64();
        let cpu = CpuWindow::between(&first, &procstat::snapshot(&turn.pids)?);
        let gib = args.bytes as f64 / GIB;
        let relay = target.proxy_pid.map(|pid| cpu.of(pid));
        Ok(TcpRun {
            bench: "tcp",
            unix_time: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            target: target.name.clone(),
            round: turn.round,
            attempt: turn.attempt,
            kept: false,
            direction,
            bytes: args.bytes,
            seconds,
            gbit_s: args.bytes as f64 * 8.0 / seconds / 1e9,
            relay_cpu_s_per_gib: relay.map(|c| c.total_s() / gib),
            relay_user_s_per_gib: relay.map(|c| c.user_s / gib),
            relay_sys_s_per_gib: relay.map(|c| c.sys_s / gib),
            endpoints_cpu_s_per_gib: (cpu.generator.total_s() + cpu.of(backend_pid).total_s())
                / gib,
            cpu_busy: cpu.cpu_busy.clone(),
            foreign_cores: cpu.foreign_cores,
            steal_cores: cpu.steal_cores,
            clk_tck: procstat::clk_tck(),
        })
    })
    .await
}
