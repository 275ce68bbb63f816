//! HTTP/2 load with nghttp2's `h2load`: cleartext with prior knowledge (h2c) or over TLS (ALPN
//! `h2`), N connections of M concurrent streams each, closed loop, one thread on the generator's
//! CPU.
//!
//! `h2load` runs its own warm-up (`--warm-up-time`) and then counts requests for `-D`; the
//! proxy's CPU is sampled over the same main window, so CPU per request only counts requests
//! that `h2load` counted. Each proxy turns the streams into HTTP/1.1 requests to the backend.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{Context, Result, bail};
use serde::Serialize;
use tokio::time::{Duration, Instant};

use crate::Common;
use crate::peers;
use crate::procstat::{self, CpuWindow};
use crate::report::{CpuPerRequest, JsonOut};
use crate::rounds::{self, Attempt, Turn};
use crate::targets::{Lab, Target};

/// `h2load`, installing `nghttp2-client` when allowed.
pub fn locate(install: bool) -> Result<PathBuf, String> {
    peers::locate_tool("h2load", "nghttp2-client", install)
}

/// The figures `h2load` prints at the end of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Summary {
    pub rps: f64,
    pub succeeded: u64,
    /// Failed, errored and timed-out requests.
    pub failed: u64,
    /// `2xx` responses.
    pub status_2xx: u64,
}

fn number_before(line: &str, word: &str) -> Option<u64> {
    let mut previous = None;
    for token in line.split([' ', ',']).filter(|t| !t.is_empty()) {
        if token == word {
            return previous.and_then(|p: &str| p.parse().ok());
        }
        previous = Some(token);
    }
    None
}

/// Reads `finished in 10.00s, 45678.90 req/s, ...`, `requests: ... succeeded, ... failed, ...`
/// and `status codes: N 2xx, ...` from `h2load`'s output.
pub fn parse_summary(output: &str) -> Result<Summary> {
    let mut summary = Summary::default();
    let mut seen = 0;
    for line in output.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("finished in ") {
            let rps = rest
                .split(", ")
                .find_map(|part| part.strip_suffix(" req/s"))
                .context("no req/s in h2load's `finished in` line")?;
            summary.rps = rps.parse().context("h2load's req/s")?;
            seen += 1;
        } else if let Some(rest) = line.strip_prefix("requests: ") {
            let count = |word| number_before(rest, word).unwrap_or(0);
            summary.succeeded = count("succeeded");
            summary.failed = count("failed") + count("errored") + count("timeout");
            seen += 1;
        } else if let Some(rest) = line.strip_prefix("status codes: ") {
            summary.status_2xx = number_before(rest, "2xx").unwrap_or(0);
        }
    }
    if seen < 2 {
        bail!("h2load printed no summary");
    }
    Ok(summary)
}

#[derive(Debug, Clone)]
pub struct H2Spec {
    pub addr: SocketAddr,
    pub connections: usize,
    /// Concurrent streams per connection.
    pub streams: usize,
    pub warmup: Duration,
    pub duration: Duration,
    /// `https://` (ALPN `h2`; `h2load` does not verify the certificate) instead of `http://`.
    pub tls: bool,
    pub sample_pids: Vec<u32>,
}

/// Runs `h2load` once against `spec.addr`; the CPU window covers its measured part.
pub async fn run(h2load: &Path, spec: &H2Spec) -> Result<(Summary, CpuWindow)> {
    let secs = |d: Duration| format!("{}ms", d.as_millis().max(1));
    let mut child = tokio::process::Command::new(h2load)
        .args(["-t", "1", "-c", &spec.connections.to_string()])
        .args(["-m", &spec.streams.to_string()])
        .args(["-D", &secs(spec.duration)])
        .args(["--warm-up-time", &secs(spec.warmup)])
        .arg(format!(
            "{}://{}/",
            if spec.tls { "https" } else { "http" },
            spec.addr
        ))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", h2load.display()))?;
    let started = Instant::now();
    let mut pids = spec.sample_pids.clone();
    pids.extend(child.id());
    let stdout = child.stdout.take().context("h2load's stdout")?;
    let stderr = child.stderr.take().context("h2load's stderr")?;
    let read_all = |mut pipe: Box<dyn tokio::io::AsyncRead + Unpin + Send>| async move {
        let mut text = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut pipe, &mut text).await?;
        anyhow::Ok(text)
    };
    let out = tokio::spawn(read_all(Box::new(stdout)));
    let err = tokio::spawn(read_all(Box::new(stderr)));

    tokio::time::sleep_until(started + spec.warmup).await;
    let first = procstat::snapshot(&pids)?;
    tokio::time::sleep_until(started + spec.warmup + spec.duration).await;
    let last = procstat::snapshot(&pids)?;
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .context("h2load did not finish")??;
    let (stdout, stderr) = (out.await??, err.await??);
    if !status.success() {
        bail!(
            "h2load exited ({status}): {}",
            stderr.lines().chain(stdout.lines()).last().unwrap_or("")
        );
    }
    let summary = parse_summary(&stdout)?;
    Ok((summary, CpuWindow::between(&first, &last)))
}

/// One `h2load` run of one target.
#[derive(Debug, Clone, Serialize)]
pub struct H2Run {
    pub bench: &'static str,
    pub target: String,
    pub round: usize,
    pub attempt: usize,
    pub kept: bool,
    pub connections: usize,
    pub streams: usize,
    pub duration_s: f64,
    pub rps: f64,
    pub succeeded: u64,
    pub failed: u64,
    pub proxy_cpu: Option<CpuPerRequest>,
    pub cpu_busy: Vec<f64>,
    pub foreign_cores: f64,
}

impl Attempt for H2Run {
    fn foreign_cores(&self) -> f64 {
        self.foreign_cores
    }

    fn keep(&mut self) {
        self.kept = true;
    }

    fn line(&self) -> String {
        let proxy = self.proxy_cpu.map_or(String::new(), |c| {
            format!("  proxy {:.2} µs/req ({:.2} cores)", c.total_us, c.cores)
        });
        format!(
            "round {} {:<8} try {}: {:>9.0} req/s  failed {}{}  foreign {:.2} cores",
            self.round, self.target, self.attempt, self.rps, self.failed, proxy, self.foreign_cores
        )
    }
}

/// `common.rounds` rounds of `h2load` over the lab's proxies (order rotating), retrying
/// disturbed runs; every attempt is written to `out` and returned.
pub async fn rounds(
    lab: &mut Lab,
    h2load: &Path,
    shape: (usize, usize, Duration, Duration),
    common: &Common,
    out: &mut JsonOut,
) -> Result<Vec<H2Run>> {
    let (connections, streams, warmup, duration) = shape;
    let tls = lab.certs.is_some();
    let proxies: Vec<Target> = lab
        .targets
        .iter()
        .filter(|t| t.proxy_pid.is_some())
        .cloned()
        .collect();
    rounds::alternate(lab, &proxies, common, out, async |turn: Turn| {
        let spec = H2Spec {
            addr: turn.target.addr,
            connections,
            streams,
            warmup,
            duration,
            tls,
            sample_pids: turn.pids,
        };
        let (summary, cpu) = run(h2load, &spec).await?;
        // Requests in the main window: h2load counts only those.
        let requests = (summary.rps * duration.as_secs_f64()).round() as u64;
        Ok(H2Run {
            bench: if tls { "h2" } else { "h2c" },
            target: turn.target.name.clone(),
            round: turn.round,
            attempt: turn.attempt,
            kept: false,
            connections,
            streams,
            duration_s: duration.as_secs_f64(),
            rps: summary.rps,
            succeeded: summary.succeeded,
            failed: summary.failed + summary.succeeded.saturating_sub(summary.status_2xx),
            proxy_cpu: turn
                .target
                .proxy_pid
                .map(|pid| CpuPerRequest::of(cpu.of(pid), requests, cpu.seconds)),
            cpu_busy: cpu.cpu_busy.clone(),
            foreign_cores: cpu.foreign_cores,
        })
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUTPUT: &str = "starting benchmark...
spawning thread #0: 50 total client(s). Timing-based test with 2s of warm-up time and 10s of main duration for measurements.
Warm-up started for thread #0.
progress: 10% of clients started
Warm-up phase is over for thread #0.
Main benchmark duration is started for thread #0.
Main benchmark duration is over for thread #0. Stopping all clients.
Stopped all clients for thread #0

finished in 12.00s, 45678.90 req/s, 1.53MB/s
requests: 456789 total, 456800 started, 456789 done, 456780 succeeded, 9 failed, 2 errored, 1 timeout
status codes: 456700 2xx, 0 3xx, 0 4xx, 80 5xx
traffic: 15.31MB (16053160) total, 1.31MB (1369230) headers (space savings 94.91%), 8.71MB (9132460) data
";

    #[test]
    fn summary_is_read_from_the_last_lines() {
        let s = parse_summary(OUTPUT).unwrap();
        assert_eq!(s.rps, 45678.90);
        assert_eq!(s.succeeded, 456780);
        assert_eq!(s.failed, 12);
        assert_eq!(s.status_2xx, 456700);
    }

    #[test]
    fn output_without_a_summary_is_an_error() {
        assert!(parse_summary("starting benchmark...\nconnect failed\n").is_err());
    }
}
