//! TLS handshake load: new connections at a fixed rate, each a TLS 1.3 handshake and one
//! `GET` with `Connection: close`, as browsers and API clients without keep-alive do.
//!
//! Open loop, like `loadgen`'s: connection `k` is due at `t0 + k/rate`, whether or not earlier
//! ones have finished, and its latency counts from that intended time. The proxy's CPU over the
//! window, divided by the handshakes completed in it, is the cost of one handshake (with its
//! request); `1 / cost` is the handshakes one core could do, which is the figure to compare:
//! the generator shares its core with the backend and could not saturate a proxy's.
//!
//! With [`Sessions::Resumed`] the client keeps the tickets each proxy hands out and offers one
//! on its next connection; the run counts how many handshakes did resume.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use rustls::HandshakeKind;
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Duration, Instant, timeout_at};
use tokio_rustls::TlsConnector;

use crate::Common;
use crate::h1::{self, Framing};
use crate::histogram::Histogram;
use crate::procstat::{self, CpuWindow};
use crate::report::{CpuPerRequest, JsonOut, Percentiles, RunId};
use crate::rounds::{self, Attempt, Turn};
use crate::targets::{Lab, Target};
use crate::tls::{self, Sessions};

const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: bench.ballast.test\r\nConnection: close\r\n\r\n";
/// After the window, connections still in flight get this long before they count as unfinished.
const GRACE: Duration = Duration::from_secs(2);
/// More connections in flight than this means the target has stopped keeping up: the rest of
/// the window's connections are counted as failed rather than opened.
const MAX_IN_FLIGHT: usize = 2_000;

#[derive(Debug, Clone)]
pub struct HandshakeSpec {
    pub addr: SocketAddr,
    /// New connections per second.
    pub rate: f64,
    pub warmup: Duration,
    pub duration: Duration,
    pub sessions: Sessions,
    pub client: Arc<rustls::ClientConfig>,
    pub sample_pids: Vec<u32>,
}

#[derive(Debug, Default)]
struct Tally {
    ok: u64,
    resumed: u64,
    errors: u64,
    latency: Histogram,
    first_error: Option<String>,
    in_flight: usize,
}

#[derive(Debug)]
pub struct HandshakeResult {
    /// Connections due in the window that completed their handshake and response.
    pub ok: u64,
    /// Of those, the handshakes that resumed a session.
    pub resumed: u64,
    pub errors: u64,
    /// Due in the window, not finished `GRACE` after it.
    pub unfinished: u64,
    /// Intended start → response read.
    pub latency: Histogram,
    pub cpu: CpuWindow,
    pub window: Duration,
    pub first_error: Option<String>,
}

/// One connection: connect, handshake, request, response. Returns whether it resumed.
async fn one(addr: SocketAddr, connector: &TlsConnector, buf: &mut Vec<u8>) -> Result<bool> {
    let tcp = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    tcp.set_nodelay(true)?;
    let mut stream = connector
        .connect(tls::server_name(), tcp)
        .await
        .context("TLS handshake")?;
    let resumed = stream.get_ref().1.handshake_kind() == Some(HandshakeKind::Resumed);
    stream.write_all(REQUEST).await?;
    buf.clear();
    let mut chunk = [0u8; 2048];
    let head = loop {
        if let Some(head) = h1::parse_head(buf)? {
            break head;
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            bail!("connection closed before the response head");
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    if !(200..400).contains(&head.status) {
        bail!("status {}", head.status);
    }
    let Framing::Length(len) = head.framing else {
        bail!("response not framed by Content-Length");
    };
    let want = head.len as u64 + len;
    while (buf.len() as u64) < want {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            bail!("connection closed mid-body");
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(resumed)
}

pub async fn run(spec: &HandshakeSpec) -> Result<HandshakeResult> {
    if !(spec.rate > 0.0 && spec.rate.is_finite()) {
        bail!("the connection rate must be a positive number");
    }
    tokio::task::LocalSet::new()
        .run_until(run_local(spec))
        .await
}

async fn run_local(spec: &HandshakeSpec) -> Result<HandshakeResult> {
    let t0 = Instant::now();
    let start = t0 + spec.warmup;
    let end = start + spec.duration;
    let tally = Rc::new(RefCell::new(Tally::default()));
    let connector = TlsConnector::from(spec.client.clone());

    let pids = spec.sample_pids.clone();
    let sampler = tokio::task::spawn_local(async move {
        tokio::time::sleep_until(start).await;
        let first = procstat::snapshot(&pids)?;
        tokio::time::sleep_until(end).await;
        let last = procstat::snapshot(&pids)?;
        anyhow::Ok(CpuWindow::between(&first, &last))
    });

    // tokio's timer wakes at most once a millisecond: each tick opens every connection due by
    // then, which at a few thousand per second is a burst of a few.
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut tasks = Vec::new();
    let mut unfinished = 0u64;
    let due_at = |k: u64| t0 + Duration::from_secs_f64(k as f64 / spec.rate);
    let mut k = 0u64;
    while due_at(k) < end {
        tick.tick().await;
        let now = Instant::now();
        while due_at(k) <= now && due_at(k) < end {
            let intended = due_at(k);
            k += 1;
            let counted = intended >= start;
            {
                let mut t = tally.borrow_mut();
                if t.in_flight >= MAX_IN_FLIGHT {
                    if counted {
                        t.errors += 1;
                    }
                    if t.first_error.is_none() {
                        t.first_error = Some(format!("over {MAX_IN_FLIGHT} connections in flight"));
                    }
                    continue;
                }
                t.in_flight += 1;
            }
            let (tally, connector, addr) = (tally.clone(), connector.clone(), spec.addr);
            tasks.push(tokio::task::spawn_local(async move {
                let mut buf = Vec::with_capacity(1024);
                let result = timeout_at(end + GRACE, one(addr, &connector, &mut buf)).await;
                let done = Instant::now();
                let mut t = tally.borrow_mut();
                t.in_flight -= 1;
                match result {
                    Err(_) => return counted,
                    Ok(Ok(resumed)) if counted => {
                        t.ok += 1;
                        t.resumed += u64::from(resumed);
                        t.latency.record_duration(done - intended);
                    }
                    Ok(Ok(_)) => {}
                    Ok(Err(error)) => {
                        t.errors += u64::from(counted);
                        if t.first_error.is_none() {
                            t.first_error = Some(format!("{error:#}"));
                        }
                    }
                }
                false
            }));
        }
    }
    let cpu = sampler.await.context("CPU sampler")??;
    for task in tasks {
        unfinished += u64::from(task.await.context("connection task")?);
    }
    let tally = Rc::try_unwrap(tally)
        .map_err(|_| anyhow::anyhow!("connection tasks still hold the results"))?
        .into_inner();
    Ok(HandshakeResult {
        ok: tally.ok,
        resumed: tally.resumed,
        errors: tally.errors,
        unfinished,
        latency: tally.latency,
        cpu,
        window: spec.duration,
        first_error: tally.first_error,
    })
}

/// One measured handshake run of one target.
#[derive(Debug, Clone, Serialize)]
pub struct HandshakeRun {
    pub bench: &'static str,
    pub target: String,
    pub round: usize,
    pub attempt: usize,
    pub kept: bool,
    pub sessions: &'static str,
    pub rate: f64,
    pub duration_s: f64,
    pub handshakes: u64,
    pub resumed: u64,
    pub errors: u64,
    pub unfinished: u64,
    /// Intended start → response, µs.
    pub latency_us: Percentiles,
    /// The proxy's CPU per completed handshake (with its request).
    pub proxy_cpu: Option<CpuPerRequest>,
    pub foreign_cores: f64,
    pub first_error: Option<String>,
}

impl HandshakeRun {
    fn new(
        id: RunId<'_>,
        spec: &HandshakeSpec,
        result: &HandshakeResult,
        proxy_pid: Option<u32>,
    ) -> Self {
        let cpu = &result.cpu;
        Self {
            bench: "tls",
            target: id.target.to_string(),
            round: id.round,
            attempt: id.attempt,
            kept: false,
            sessions: match spec.sessions {
                Sessions::Full => "full",
                Sessions::Resumed => "resumed",
            },
            rate: spec.rate,
            duration_s: result.window.as_secs_f64(),
            handshakes: result.ok,
            resumed: result.resumed,
            errors: result.errors,
            unfinished: result.unfinished,
            latency_us: Percentiles::of(&result.latency),
            proxy_cpu: proxy_pid.map(|pid| CpuPerRequest::of(cpu.of(pid), result.ok, cpu.seconds)),
            foreign_cores: cpu.foreign_cores,
            first_error: result.first_error.clone(),
        }
    }

    /// Handshakes one core of the proxy could do at this run's cost per handshake.
    pub fn per_core(&self) -> f64 {
        self.proxy_cpu
            .filter(|c| c.total_us > 0.0)
            .map_or(f64::NAN, |c| 1e6 / c.total_us)
    }
}

impl Attempt for HandshakeRun {
    fn foreign_cores(&self) -> f64 {
        self.foreign_cores
    }

    fn keep(&mut self) {
        self.kept = true;
    }

    fn line(&self) -> String {
        let proxy = self.proxy_cpu.map_or(String::new(), |c| {
            format!(
                "  proxy {:.1} µs/handshake ({:.2} cores, {:.0}/s per core)",
                c.total_us,
                c.cores,
                self.per_core()
            )
        });
        let mut line = format!(
            "round {} {:<8} try {}: {} {} handshakes ({} resumed)  p50 {:.0} p99 {:.0} µs  err {}{}  foreign {:.2} cores",
            self.round,
            self.target,
            self.attempt,
            self.handshakes,
            self.sessions,
            self.resumed,
            self.latency_us.p50,
            self.latency_us.p99,
            self.errors + self.unfinished,
            proxy,
            self.foreign_cores,
        );
        if let Some(error) = &self.first_error {
            line.push_str(&format!("  (first error: {error})"));
        }
        line
    }
}

/// `common.rounds` rounds over the lab's proxies (order rotating), each run with a client
/// config of its own, retrying disturbed runs; every attempt is written to `out` and returned.
pub async fn rounds(
    lab: &mut Lab,
    ca: &rustls::pki_types::CertificateDer<'static>,
    sessions: Sessions,
    timing: (f64, Duration, Duration),
    common: &Common,
    out: &mut JsonOut,
) -> Result<Vec<HandshakeRun>> {
    let (rate, warmup, duration) = timing;
    let proxies: Vec<Target> = lab
        .targets
        .iter()
        .filter(|t| t.proxy_pid.is_some())
        .cloned()
        .collect();
    rounds::alternate(lab, &proxies, common, out, async |turn: Turn| {
        let spec = HandshakeSpec {
            addr: turn.target.addr,
            rate,
            warmup,
            duration,
            sessions,
            client: tls::client_config(ca, sessions)?,
            sample_pids: turn.pids,
        };
        let result = run(&spec).await?;
        let id = RunId {
            target: &turn.target.name,
            round: turn.round,
            attempt: turn.attempt,
        };
        Ok(HandshakeRun::new(id, &spec, &result, turn.target.proxy_pid))
    })
    .await
}
