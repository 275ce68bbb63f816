//! What a run produces: one JSON record per run (`--out`), a progress line per run, and at the
//! end a table of medians over rounds with ratios against `direct`.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::histogram::Histogram;
use crate::loadgen::LoadResult;
use crate::procstat::{self, CpuWindow, ProcCpu};
use crate::rounds::Attempt;

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Percentiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub mean: f64,
}

impl Percentiles {
    /// In microseconds.
    pub fn of(h: &Histogram) -> Self {
        Self {
            p50: h.quantile_us(0.50),
            p90: h.quantile_us(0.90),
            p99: h.quantile_us(0.99),
            p999: h.quantile_us(0.999),
            max: h.max() as f64 / 1_000.0,
            mean: h.mean() / 1_000.0,
        }
    }
}

/// One process's CPU over the window, per request and as a share of a core.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct CpuPerRequest {
    pub user_us: f64,
    pub sys_us: f64,
    pub total_us: f64,
    /// Cores' worth of CPU it used (1.0 = one core busy all the window).
    pub cores: f64,
}

impl CpuPerRequest {
    pub fn of(cpu: ProcCpu, requests: u64, seconds: f64) -> Self {
        let per = |s: f64| s * 1e6 / requests.max(1) as f64;
        Self {
            user_us: per(cpu.user_s),
            sys_us: per(cpu.sys_s),
            total_us: per(cpu.total_s()),
            cores: cpu.total_s() / seconds,
        }
    }
}

fn unix_time() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// One measured HTTP run of one target.
#[derive(Debug, Clone, Serialize)]
pub struct HttpRun {
    pub bench: &'static str,
    pub unix_time: u64,
    pub target: String,
    pub round: usize,
    pub attempt: usize,
    /// The attempt kept for the medians (the least disturbed of a round's attempts).
    pub kept: bool,
    pub mode: &'static str,
    pub rate: Option<f64>,
    pub connections: usize,
    pub duration_s: f64,
    pub requests: u64,
    pub errors: u64,
    pub unfinished: u64,
    pub rps: f64,
    pub latency_us: Percentiles,
    pub service_us: Option<Percentiles>,
    pub send_lag_us: Option<Percentiles>,
    pub proxy_cpu: Option<CpuPerRequest>,
    pub backend_cpu: CpuPerRequest,
    pub generator_cpu: CpuPerRequest,
    pub cpu_busy: Vec<f64>,
    pub foreign_cores: f64,
    pub steal_cores: f64,
    pub clk_tck: u64,
    pub first_error: Option<String>,
}

/// Which run this is, for [`HttpRun::new`].
#[derive(Debug, Clone, Copy)]
pub struct RunId<'a> {
    pub target: &'a str,
    pub round: usize,
    pub attempt: usize,
}

impl HttpRun {
    pub fn new(
        id: RunId<'_>,
        result: &LoadResult,
        connections: usize,
        rate: Option<f64>,
        proxy_pid: Option<u32>,
        backend_pid: u32,
    ) -> Self {
        let cpu: &CpuWindow = &result.cpu;
        let (n, secs) = (result.requests, cpu.seconds);
        Self {
            bench: "http",
            unix_time: unix_time(),
            target: id.target.to_string(),
            round: id.round,
            attempt: id.attempt,
            kept: false,
            mode: if rate.is_some() { "open" } else { "closed" },
            rate,
            connections,
            duration_s: result.window.as_secs_f64(),
            requests: result.requests,
            errors: result.errors,
            unfinished: result.unfinished,
            rps: result.rps(),
            latency_us: Percentiles::of(&result.latency),
            service_us: result.service.as_ref().map(Percentiles::of),
            send_lag_us: result.send_lag.as_ref().map(Percentiles::of),
            proxy_cpu: proxy_pid.map(|pid| CpuPerRequest::of(cpu.of(pid), n, secs)),
            backend_cpu: CpuPerRequest::of(cpu.of(backend_pid), n, secs),
            generator_cpu: CpuPerRequest::of(cpu.generator, n, secs),
            cpu_busy: cpu.cpu_busy.clone(),
            foreign_cores: cpu.foreign_cores,
            steal_cores: cpu.steal_cores,
            clk_tck: procstat::clk_tck(),
            first_error: result.first_error.clone(),
        }
    }
}

impl Attempt for HttpRun {
    fn foreign_cores(&self) -> f64 {
        self.foreign_cores
    }

    fn keep(&mut self) {
        self.kept = true;
    }

    fn line(&self) -> String {
        let proxy = self.proxy_cpu.map_or(String::new(), |c| {
            format!(" proxy {:.2} µs/req ({:.2} cores)", c.total_us, c.cores)
        });
        let mut line = format!(
            "round {} {:<8} try {}: {:>9.0} req/s  p50 {:.0} p99 {:.0} µs  err {}{}  backend {:.2} µs/req  foreign {:.2} steal {:.2} cores",
            self.round,
            self.target,
            self.attempt,
            self.rps,
            self.latency_us.p50,
            self.latency_us.p99,
            self.errors + self.unfinished,
            proxy,
            self.backend_cpu.total_us,
            self.foreign_cores,
            self.steal_cores,
        );
        if let Some(error) = &self.first_error {
            line.push_str(&format!("  (first error: {error})"));
        }
        line
    }
}

/// Idle-connection memory of one target's server process.
#[derive(Debug, Clone, Serialize)]
pub struct MemoryRun {
    pub bench: &'static str,
    pub unix_time: u64,
    pub target: String,
    /// `proxy` for a proxy, `backend` for `direct`.
    pub process: &'static str,
    pub rss_start_bytes: u64,
    pub rss_after_load_bytes: u64,
    pub idle_conns: usize,
    pub rss_before_idle_bytes: u64,
    pub rss_with_idle_bytes: u64,
    pub bytes_per_idle_conn: f64,
    pub rss_after_close_bytes: u64,
}

impl MemoryRun {
    pub fn new(target: &str, process: &'static str, rss_start: u64, rss_after_load: u64) -> Self {
        Self {
            bench: "http-memory",
            unix_time: unix_time(),
            target: target.to_string(),
            process,
            rss_start_bytes: rss_start,
            rss_after_load_bytes: rss_after_load,
            idle_conns: 0,
            rss_before_idle_bytes: 0,
            rss_with_idle_bytes: 0,
            bytes_per_idle_conn: 0.0,
            rss_after_close_bytes: 0,
        }
    }
}

/// One L4 transfer.
#[derive(Debug, Clone, Serialize)]
pub struct TcpRun {
    pub bench: &'static str,
    pub unix_time: u64,
    pub target: String,
    pub round: usize,
    pub attempt: usize,
    pub kept: bool,
    pub direction: &'static str,
    pub bytes: u64,
    pub seconds: f64,
    pub gbit_s: f64,
    /// Relay (proxy) CPU seconds per GiB moved; `None` for `direct`.
    pub relay_cpu_s_per_gib: Option<f64>,
    pub relay_user_s_per_gib: Option<f64>,
    pub relay_sys_s_per_gib: Option<f64>,
    /// Both endpoints (this process and the sink/source) per GiB.
    pub endpoints_cpu_s_per_gib: f64,
    pub cpu_busy: Vec<f64>,
    pub foreign_cores: f64,
    pub steal_cores: f64,
    pub clk_tck: u64,
}

impl Attempt for TcpRun {
    fn foreign_cores(&self) -> f64 {
        self.foreign_cores
    }

    fn keep(&mut self) {
        self.kept = true;
    }

    fn line(&self) -> String {
        let relay = self
            .relay_cpu_s_per_gib
            .map_or(String::new(), |s| format!("  relay {s:.3} CPU s/GiB"));
        format!(
            "round {} {:<8} try {}: {:>6.2} Gbit/s{}  endpoints {:.3} CPU s/GiB  foreign {:.2} steal {:.2} cores",
            self.round,
            self.target,
            self.attempt,
            self.gbit_s,
            relay,
            self.endpoints_cpu_s_per_gib,
            self.foreign_cores,
            self.steal_cores
        )
    }
}

/// `--out FILE`: JSON lines, appended.
#[derive(Debug)]
pub struct JsonOut(Option<File>);

impl JsonOut {
    pub fn open(path: Option<&Path>) -> Result<Self> {
        let file = path
            .map(|path| {
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .with_context(|| format!("opening {}", path.display()))
            })
            .transpose()?;
        Ok(Self(file))
    }

    pub fn write<T: Serialize>(&mut self, record: &T) -> Result<()> {
        if let Some(file) = &mut self.0 {
            let mut line = serde_json::to_string(record)?;
            line.push('\n');
            file.write_all(line.as_bytes())?;
        }
        Ok(())
    }
}

/// Marks the attempt with the least foreign CPU as kept.
pub fn keep_least_disturbed<T>(
    attempts: &mut [T],
    foreign: impl Fn(&T) -> f64,
    mut keep: impl FnMut(&mut T),
) {
    if let Some(best) = attempts
        .iter()
        .enumerate()
        .min_by(|a, b| foreign(a.1).total_cmp(&foreign(b.1)))
        .map(|(i, _)| i)
    {
        keep(&mut attempts[best]);
    }
}

/// Median (mean of the middle two for an even count); NaN when empty.
pub fn median(mut values: Vec<f64>) -> f64 {
    values.retain(|v| !v.is_nan());
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

fn cell(value: f64, decimals: usize) -> String {
    if value.is_nan() {
        "-".to_string()
    } else {
        format!("{value:.decimals$}")
    }
}

/// Renders rows as a left-aligned first column and right-aligned others.
fn render(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        for (c, text) in row.iter().enumerate() {
            let pad = widths[c] - text.chars().count();
            if c == 0 {
                out.push_str(text);
                out.push_str(&" ".repeat(pad));
            } else {
                out.push_str("  ");
                out.push_str(&" ".repeat(pad));
                out.push_str(text);
            }
        }
        out.push('\n');
    }
    out
}

/// Medians of the kept runs of one target.
#[derive(Debug, Clone)]
struct HttpMedian {
    target: String,
    runs: usize,
    rps: f64,
    errors: f64,
    p50: f64,
    p90: f64,
    p99: f64,
    max: f64,
    svc_p50: f64,
    svc_p99: f64,
    lag_p99: f64,
    proxy_us: f64,
    proxy_user_us: f64,
    proxy_sys_us: f64,
    proxy_cores: f64,
    backend_us: f64,
    generator_us: f64,
    cpu_busy: Vec<f64>,
    foreign: f64,
    steal: f64,
}

fn http_median(target: &str, runs: &[&HttpRun]) -> HttpMedian {
    let m = |f: &dyn Fn(&HttpRun) -> f64| median(runs.iter().map(|r| f(r)).collect());
    let nan = f64::NAN;
    let cpus = runs.iter().map(|r| r.cpu_busy.len()).max().unwrap_or(0);
    HttpMedian {
        target: target.to_string(),
        runs: runs.len(),
        rps: m(&|r| r.rps),
        errors: m(&|r| (r.errors + r.unfinished) as f64),
        p50: m(&|r| r.latency_us.p50),
        p90: m(&|r| r.latency_us.p90),
        p99: m(&|r| r.latency_us.p99),
        max: m(&|r| r.latency_us.max),
        svc_p50: m(&|r| r.service_us.map_or(nan, |p| p.p50)),
        svc_p99: m(&|r| r.service_us.map_or(nan, |p| p.p99)),
        lag_p99: m(&|r| r.send_lag_us.map_or(nan, |p| p.p99)),
        proxy_us: m(&|r| r.proxy_cpu.map_or(nan, |c| c.total_us)),
        proxy_user_us: m(&|r| r.proxy_cpu.map_or(nan, |c| c.user_us)),
        proxy_sys_us: m(&|r| r.proxy_cpu.map_or(nan, |c| c.sys_us)),
        proxy_cores: m(&|r| r.proxy_cpu.map_or(nan, |c| c.cores)),
        backend_us: m(&|r| r.backend_cpu.total_us),
        generator_us: m(&|r| r.generator_cpu.total_us),
        cpu_busy: (0..cpus)
            .map(|i| m(&|r| r.cpu_busy.get(i).copied().unwrap_or(nan)))
            .collect(),
        foreign: m(&|r| r.foreign_cores),
        steal: m(&|r| r.steal_cores),
    }
}

/// The final HTTP table: medians of kept runs per target (in `targets` order), then ratios.
pub fn http_summary(targets: &[String], runs: &[HttpRun]) -> String {
    let medians: Vec<HttpMedian> = targets
        .iter()
        .map(|t| {
            let kept: Vec<&HttpRun> = runs.iter().filter(|r| r.kept && &r.target == t).collect();
            http_median(t, &kept)
        })
        .collect();
    let open = runs.iter().any(|r| r.rate.is_some());
    let cpus = medians.iter().map(|m| m.cpu_busy.len()).max().unwrap_or(0);

    let mut header: Vec<String> = [
        "target", "runs", "req/s", "err", "p50 µs", "p90 µs", "p99 µs", "max µs",
    ]
    .map(String::from)
    .to_vec();
    if open {
        header.extend(["svc p50", "svc p99", "lag p99"].map(String::from));
    }
    header.extend(
        [
            "proxy µs/req",
            "(usr",
            "sys)",
            "proxy cores",
            "backend µs/req",
            "gen µs/req",
        ]
        .map(String::from),
    );
    header.extend((0..cpus).map(|i| format!("cpu{i} busy")));
    header.extend(["foreign", "steal"].map(String::from));

    let mut rows = vec![header];
    for m in &medians {
        let mut row = vec![
            m.target.clone(),
            m.runs.to_string(),
            cell(m.rps, 0),
            cell(m.errors, 0),
            cell(m.p50, 1),
            cell(m.p90, 1),
            cell(m.p99, 1),
            cell(m.max, 0),
        ];
        if open {
            row.extend([cell(m.svc_p50, 1), cell(m.svc_p99, 1), cell(m.lag_p99, 1)]);
        }
        row.extend([
            cell(m.proxy_us, 2),
            cell(m.proxy_user_us, 2),
            cell(m.proxy_sys_us, 2),
            cell(m.proxy_cores, 2),
            cell(m.backend_us, 2),
            cell(m.generator_us, 2),
        ]);
        row.extend((0..cpus).map(|i| cell(m.cpu_busy.get(i).copied().unwrap_or(f64::NAN), 2)));
        row.extend([cell(m.foreign, 2), cell(m.steal, 2)]);
        rows.push(row);
    }
    let mut out = render(&rows);

    if let Some(direct) = medians.iter().find(|m| m.target == "direct") {
        for m in medians.iter().filter(|m| m.target != "direct") {
            out.push_str(&format!(
                "{} / direct: req/s {}, p50 {}, p90 {}, p99 {}; proxy CPU/req ÷ direct backend CPU/req {}\n",
                m.target,
                cell(m.rps / direct.rps, 2),
                cell(m.p50 / direct.p50, 2),
                cell(m.p90 / direct.p90, 2),
                cell(m.p99 / direct.p99, 2),
                cell(m.proxy_us / direct.backend_us, 2),
            ));
        }
    }
    out
}

pub fn memory_summary(runs: &[MemoryRun]) -> String {
    let mb = |b: u64| cell(b as f64 / 1e6, 1);
    let mut rows = vec![
        [
            "target",
            "process",
            "RSS start MB",
            "after load MB",
            "idle conns",
            "with idle MB",
            "bytes/conn",
            "after close MB",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for r in runs {
        let idle = r.idle_conns > 0;
        rows.push(vec![
            r.target.clone(),
            r.process.to_string(),
            mb(r.rss_start_bytes),
            mb(r.rss_after_load_bytes),
            r.idle_conns.to_string(),
            if idle {
                mb(r.rss_with_idle_bytes)
            } else {
                "-".into()
            },
            if idle {
                cell(r.bytes_per_idle_conn, 0)
            } else {
                "-".into()
            },
            if idle {
                mb(r.rss_after_close_bytes)
            } else {
                "-".into()
            },
        ]);
    }
    render(&rows)
}

pub fn tcp_summary(targets: &[String], runs: &[TcpRun]) -> String {
    let mut rows = vec![
        [
            "target",
            "runs",
            "Gbit/s",
            "relay CPU s/GiB",
            "(usr",
            "sys)",
            "endpoints CPU s/GiB",
            "foreign",
            "steal",
        ]
        .map(String::from)
        .to_vec(),
    ];
    let mut gbits = Vec::new();
    for t in targets {
        let kept: Vec<&TcpRun> = runs.iter().filter(|r| r.kept && &r.target == t).collect();
        let m = |f: &dyn Fn(&TcpRun) -> f64| median(kept.iter().map(|r| f(r)).collect());
        let nan = f64::NAN;
        let g = m(&|r| r.gbit_s);
        gbits.push((t.clone(), g));
        rows.push(vec![
            t.clone(),
            kept.len().to_string(),
            cell(g, 2),
            cell(m(&|r| r.relay_cpu_s_per_gib.unwrap_or(nan)), 3),
            cell(m(&|r| r.relay_user_s_per_gib.unwrap_or(nan)), 3),
            cell(m(&|r| r.relay_sys_s_per_gib.unwrap_or(nan)), 3),
            cell(m(&|r| r.endpoints_cpu_s_per_gib), 3),
            cell(m(&|r| r.foreign_cores), 2),
            cell(m(&|r| r.steal_cores), 2),
        ]);
    }
    let mut out = render(&rows);
    if let Some((_, direct)) = gbits.iter().find(|(t, _)| t == "direct") {
        for (t, g) in gbits.iter().filter(|(t, _)| t != "direct") {
            out.push_str(&format!(
                "{t} / direct: throughput {}\n",
                cell(g / direct, 2)
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(vec![f64::NAN, 5.0]), 5.0);
        assert!(median(vec![]).is_nan());
    }

    #[test]
    fn table_aligns() {
        let rows = vec![
            vec!["a".to_string(), "1".to_string()],
            vec!["longer".to_string(), "100".to_string()],
        ];
        assert_eq!(render(&rows), "a         1\nlonger  100\n");
    }
}
